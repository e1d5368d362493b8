//! Single sign-on through a workspace's door, against a real OpenID provider (npm
//! oidc-provider, `ZT_TEST_OIDC_PROVIDER`; skipped without it): the authentication area's
//! providers and sign-in settings (authorized, recorded, no secret shown or recorded), and group
//! claims applied as OIDC memberships that add and remove only what OIDC granted.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod common;

use common::{login, member, new_user, password};
use secrecy::SecretString;
use zt_authz::{ChannelVisibility, GroupVisibility};
use zt_chat::testing::World;
use zt_chat::{Caller, Error, Workspace};
use zt_core::identity::{AuthSettings, GroupMapping, ProviderConfig, Provisioning};
use zt_core::testing::oidc::{Browser, OpenIdProvider, TestClient, response_of};
use zt_core::{AuditEventKind, Timestamp};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

async fn sso_session(
    w: &World,
    ws: &Workspace,
    op: &OpenIdProvider,
    name: &str,
) -> (zt_core::identity::SessionToken, Caller) {
    let start = ws.sso_start("corp").await.unwrap();
    let back = Browser::new().sign_in(&op.issuer(), &start.url, name).await;
    w.clock.set(now());
    let response = response_of(&back);
    let binding = secrecy::ExposeSecret::expose_secret(&start.binding).to_owned();
    ws.sso_callback("corp", &response, Some(&binding))
        .await
        .unwrap()
}

async fn sso_sign_in(w: &World, ws: &Workspace, op: &OpenIdProvider, name: &str) -> Caller {
    sso_session(w, ws, op, name).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_configured_through_the_door_and_group_claims_sync_only_their_own() {
    let client = TestClient::new("zt-chat", CALLBACK);
    let Some(mut op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    // The provider rotates its key twice within seconds here; no cool-down between fetches.
    let w = World::with(std::sync::Arc::new(zt_storage::MemoryStore::new()), |c| {
        c.sso.jwks_cooldown = std::time::Duration::ZERO;
    })
    .await;
    w.clock.set(now());
    let (ws, _) = w
        .chat
        .bootstrap("Sso", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let mallory = member(&ws, &owner, "mallory").await;
    let staff = ws
        .create_group(&owner, "staff-team", GroupVisibility::Private, None)
        .await
        .unwrap();
    let admins = ws
        .create_group(&owner, "admin-team", GroupVisibility::Private, None)
        .await
        .unwrap();
    let room = ws
        .create_channel(&owner, "admins-room", ChannelVisibility::Private, "")
        .await
        .unwrap();
    ws.link_channel(&owner, admins.id, room.id, true)
        .await
        .unwrap();

    let mut config = ProviderConfig::new("corp", &op.issuer(), &client.client_id, CALLBACK);
    config.scopes = vec!["email".into(), "profile".into(), "groups".into()];
    config.provisioning = Provisioning::Create;
    config.algorithms = vec!["RS256".into()];
    config.groups = vec![
        GroupMapping {
            claim: "staff".into(),
            group: staff.id,
        },
        GroupMapping {
            claim: "admins".into(),
            group: admins.id,
        },
    ];
    let secret = SecretString::from(client.client_secret.clone());

    // Only the authentication area may see or change providers; a refusal is recorded.
    let refused = ws.sso_providers(&mallory).await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );
    let refused = ws
        .set_sso_provider(&mallory, config.clone(), Some(secret.clone()))
        .await;
    assert!(
        matches!(refused, Err(Error::Forbidden { .. })),
        "{refused:?}"
    );
    assert!(w.audit.kinds().contains(&AuditEventKind::AdminAccessDenied));
    // A new provider needs its secret; a mapping needs a group that exists.
    let missing = ws.set_sso_provider(&owner, config.clone(), None).await;
    assert!(matches!(
        missing,
        Err(Error::InvalidInput {
            field: "client_secret",
            ..
        })
    ));
    let mut unknown = config.clone();
    unknown.groups[0].group = zt_core::GroupId::from_bytes([9; 16]);
    let refused = ws
        .set_sso_provider(&owner, unknown, Some(secret.clone()))
        .await;
    assert!(matches!(
        refused,
        Err(Error::InvalidInput {
            field: "groups",
            ..
        })
    ));

    ws.set_sso_provider(&owner, config.clone(), Some(secret.clone()))
        .await
        .unwrap();
    let shown = ws.sso_providers(&owner).await.unwrap();
    assert_eq!(shown, [config.clone()]);
    let recorded = w
        .audit
        .events()
        .into_iter()
        .rfind(|e| e.kind == AuditEventKind::SettingsChanged)
        .unwrap();
    assert_eq!(recorded.target.as_deref(), Some("sso_provider"));
    assert_eq!(
        recorded.details.get("client_authentication"),
        Some(&zt_core::Detail::Text("replaced".into()))
    );
    for event in w.audit.events() {
        assert!(!format!("{event:?}").contains(&client.client_secret));
    }

    // alice's claims say staff: she is in the staff group, not in the admins' room.
    let alice = sso_sign_in(&w, &ws, &op, "alice").await;
    assert!(ws.post(&alice, room.id, "in?", None, &[]).await.is_err());

    // The provider now says admins: OIDC adds her there.
    op.set_groups("alice", &["admins"], "key-2").await;
    let alice = sso_sign_in(&w, &ws, &op, "alice").await;
    ws.post(&alice, room.id, "in via OIDC", None, &[])
        .await
        .unwrap();

    // An administrator adds her by hand too; the provider drops admins again: the manual
    // membership stays, so she is still in.
    ws.set_group_member(&owner, admins.id, alice.user(), true)
        .await
        .unwrap();
    op.set_groups("alice", &["staff"], "key-3").await;
    let alice = sso_sign_in(&w, &ws, &op, "alice").await;
    ws.post(&alice, room.id, "still in by hand", None, &[])
        .await
        .unwrap();
    // Without the manual one, nothing is left: OIDC did remove its own.
    ws.set_group_member(&owner, admins.id, alice.user(), false)
        .await
        .unwrap();
    assert!(ws.post(&alice, room.id, "out", None, &[]).await.is_err());

    // Signing out: an SSO session learns where to end the provider's session too; a password
    // session just ends.
    let (token, _) = {
        let start = ws.sso_start("corp").await.unwrap();
        let back = Browser::new()
            .sign_in(&op.issuer(), &start.url, "alice")
            .await;
        w.clock.set(now());
        let binding = secrecy::ExposeSecret::expose_secret(&start.binding).to_owned();
        ws.sso_callback("corp", &response_of(&back), Some(&binding))
            .await
            .unwrap()
    };
    let end = ws.sso_logout(&token, "corp", None).await.unwrap();
    assert!(end.is_some_and(|u| u.starts_with(&op.issuer())));
    assert!(ws.authenticate(&token).await.is_err());
    let (password_token, _) = ws.login("mallory", &password(), None).await.unwrap();
    assert_eq!(
        ws.sso_logout(&password_token, "corp", None).await.unwrap(),
        None
    );
    assert!(ws.authenticate(&password_token).await.is_err());

    // SSO-only needs an active owner as break-glass; then passwords are refused but the owner's.
    let refused = ws
        .set_sign_in_settings(
            &owner,
            AuthSettings {
                sso_only: true,
                break_glass: Some(mallory.user()),
            },
        )
        .await;
    assert!(matches!(
        refused,
        Err(Error::InvalidInput {
            field: "break_glass",
            ..
        })
    ));
    ws.set_sign_in_settings(
        &owner,
        AuthSettings {
            sso_only: true,
            break_glass: Some(owner.user()),
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        ws.login("mallory", &password(), None).await,
        Err(Error::Unauthenticated)
    ));
    login(&ws, "owner").await;
    // The last provider of an SSO-only workspace cannot be removed.
    assert!(matches!(
        ws.remove_sso_provider(&owner, "corp").await,
        Err(Error::Conflict(_))
    ));
}

/// A user an identity provider provisioned by SCIM and who then signs in by OIDC is one account:
/// the provider links by the verified address SCIM gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_provisioned_by_scim_signs_in_by_oidc_as_the_same_account() {
    let client = TestClient::new("zt-chat", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let w = World::new().await;
    w.clock.set(now());
    let (ws, _) = w
        .chat
        .bootstrap("ScimSso", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let mut config = ProviderConfig::new("corp", &op.issuer(), &client.client_id, CALLBACK);
    config.scopes = vec!["email".into(), "profile".into()];
    config.provisioning = Provisioning::LinkVerifiedEmail;
    config.algorithms = vec!["RS256".into()];
    ws.set_sso_provider(
        &owner,
        config,
        Some(SecretString::from(client.client_secret.clone())),
    )
    .await
    .unwrap();

    let (secret, _) = ws.create_scim_key(&owner, "idp").await.unwrap();
    let idp = ws.scim_authenticate(secret.expose()).await.unwrap();
    let body = serde_json::json!({
        "userName": "Carol@Example.test",
        "emails": [{ "value": "carol@example.test", "primary": true, "type": "work" }],
    })
    .to_string();
    let created = ws
        .scim(
            &idp,
            zt_chat::ScimRequest {
                method: zt_chat::ScimMethod::Post,
                path: "/Users",
                query: &[],
                if_match: None,
                body: body.as_bytes(),
                base: "http://127.0.0.1/scim/v2",
            },
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body.unwrap()["id"].as_str().unwrap().to_owned();

    let carol = sso_sign_in(&w, &ws, &op, "carol").await;
    assert_eq!(carol.user().to_string(), id, "one account");
    assert_eq!(
        ws.admin_users(&owner).await.unwrap().len(),
        2,
        "no second account"
    );
}
