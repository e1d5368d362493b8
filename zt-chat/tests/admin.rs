//! The admin areas and the caller's own sessions, as zt-chat enforces them for every embedder:
//! authorize, record, apply, in that order.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::time::Duration;

use common::{login, member, new_user, password};
use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{AdminArea, Error};
use zt_core::identity::{SessionPolicy, Timeouts};
use zt_core::{AuditEventKind, AuditLogKind, AuditRange, Detail, Outcome};

fn forbidden<T: std::fmt::Debug>(result: zt_chat::Result<T>) {
    assert!(
        matches!(result, Err(Error::Forbidden { .. })),
        "expected Forbidden, got {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_refused_every_admin_area_and_each_refusal_is_recorded() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Doors", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let mallory = member(&ws, &owner, "mallory").await;
    let before = w.audit.events().len();

    forbidden(ws.admin_users(&mallory).await);
    forbidden(ws.session_policy(&mallory).await);
    forbidden(
        ws.set_session_policy(&mallory, SessionPolicy::default())
            .await,
    );
    forbidden(
        ws.audit_page(
            &mallory,
            AuditLogKind::Security,
            AuditRange::Newest { limit: 10 },
        )
        .await,
    );
    forbidden(ws.verify_audit(&mallory, AuditLogKind::Security).await);
    forbidden(ws.audit_retention(&mallory).await);
    forbidden(ws.set_audit_legal_hold(&mallory, false).await);
    forbidden(ws.prune_audit(&mallory, AuditLogKind::Security, 0).await);
    forbidden(ws.admin_channel_directory(&mallory).await);
    forbidden(ws.revoke_user_sessions(&mallory, owner.user()).await);
    forbidden(ws.deactivate_user(&mallory, owner.user()).await);
    forbidden(ws.delete_user(&mallory, owner.user()).await);
    for area in [AdminArea::ServerSettings, AdminArea::Encryption] {
        forbidden(ws.enter_admin_area(&mallory, area).await);
    }

    let denied: Vec<_> = w.audit.events()[before..]
        .iter()
        .filter(|e| e.kind == AuditEventKind::AdminAccessDenied)
        .map(|e| {
            assert_eq!(e.outcome, Outcome::Denied);
            assert_eq!(e.tenant, Some(ws.tenant()));
            e.target.clone().unwrap()
        })
        .collect();
    assert_eq!(
        denied,
        [
            "manage_users",
            "manage_authentication",
            "manage_authentication",
            "view_audit_logs",
            "view_audit_logs",
            "manage_privacy_and_data",
            "manage_privacy_and_data",
            "manage_privacy_and_data",
            "manage_channel_directory",
            "manage_users",
            "manage_users",
            "manage_users",
            "manage_server_settings",
            "manage_encryption",
        ]
    );
    // The owner reads the encryption status: on record before anything is shown.
    ws.enter_admin_area(&owner, AdminArea::Encryption)
        .await
        .unwrap();
    let read = w.audit.events().into_iter().next_back().unwrap();
    assert_eq!(read.kind, AuditEventKind::KeyStatusRead);
    assert_eq!(read.actor, zt_core::Actor::User(owner.user()));
    // The refused policy change did not apply, and nothing but the refusals was recorded.
    assert_eq!(
        ws.session_policy(&owner).await.unwrap(),
        SessionPolicy::default()
    );
    assert!(
        w.audit.events()[before..]
            .iter()
            .all(|e| e.kind == AuditEventKind::AdminAccessDenied
                || e.kind == AuditEventKind::AuditLogRead
                || e.kind == AuditEventKind::KeyStatusRead)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_policy_is_checked_then_recorded_with_every_value_then_applied() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Policy", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let t = |idle, absolute| Timeouts {
        idle: Duration::from_secs(idle),
        absolute: Duration::from_secs(absolute),
    };
    let fine = t(15 * 60, 8 * 3600);
    for (bad, field) in [
        (t(59, 3600), "interactive"),              // too short
        (t(3600, 60), "interactive"),              // idle beyond absolute
        (t(3600, 367 * 24 * 3600), "interactive"), // longer than a year
    ] {
        let before = w.audit.events().len();
        let policy = SessionPolicy {
            interactive: bad,
            api: fine,
            portal: fine,
            sso: fine,
        };
        match ws.set_session_policy(&owner, policy).await {
            Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert_eq!(
            w.audit.events().len(),
            before,
            "a refused policy is not recorded"
        );
    }
    let portal = SessionPolicy {
        interactive: fine,
        api: fine,
        portal: t(120, 59),
        sso: fine,
    };
    assert!(matches!(
        ws.set_session_policy(&owner, portal).await,
        Err(Error::InvalidInput {
            field: "portal",
            ..
        })
    ));

    let policy = SessionPolicy {
        interactive: fine,
        api: t(3600, 30 * 24 * 3600),
        portal: t(300, 3600),
        sso: t(600, 7200),
    };
    ws.set_session_policy(&owner, policy).await.unwrap();
    assert_eq!(ws.session_policy(&owner).await.unwrap(), policy);
    let event = w
        .audit
        .events()
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditEventKind::SettingsChanged)
        .unwrap();
    assert_eq!(event.target.as_deref(), Some("authentication"));
    assert_eq!(event.actor, zt_core::Actor::User(owner.user()));
    for (name, value) in [
        ("interactive_idle_seconds", 900),
        ("interactive_absolute_seconds", 8 * 3600),
        ("api_idle_seconds", 3600),
        ("api_absolute_seconds", 30 * 24 * 3600),
        ("portal_idle_seconds", 300),
        ("portal_absolute_seconds", 3600),
        ("sso_idle_seconds", 600),
        ("sso_absolute_seconds", 7200),
    ] {
        assert_eq!(
            event.details.get(name),
            Some(&Detail::Number(value)),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ones_own_session_can_be_revoked_and_an_admin_ends_anothers() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Sessions", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let bob = member(&ws, &owner, "bob").await;
    let (bob_token, _) = ws.login("bob", &password(), None).await.unwrap();
    let eve = member(&ws, &owner, "eve").await;

    // Eve names one of Bob's sessions: not found, and it lives on.
    let bobs = ws.my_sessions(&bob).await.unwrap();
    assert_eq!(bobs.len(), 2);
    let target = bobs[0].0;
    assert!(matches!(
        ws.revoke_my_session(&eve, target).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(ws.my_sessions(&bob).await.unwrap().len(), 2);
    // Bob ends one of his own.
    ws.revoke_my_session(&bob, target).await.unwrap();
    assert_eq!(ws.my_sessions(&bob).await.unwrap().len(), 1);
    // A member cannot end another's sessions; the owner can, and they all end.
    forbidden(ws.revoke_user_sessions(&eve, bob.user()).await);
    let ended = ws.revoke_user_sessions(&owner, bob.user()).await.unwrap();
    assert_eq!(ended, 1);
    assert!(matches!(
        ws.authenticate(&bob_token).await,
        Err(Error::Unauthenticated)
    ));
    assert!(ws.my_sessions(&bob).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_pages_are_bounded_and_recorded_and_pruning_respects_the_hold() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Audit", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    for limit in [0, 1001] {
        assert!(matches!(
            ws.audit_page(&owner, AuditLogKind::Security, AuditRange::Newest { limit })
                .await,
            Err(Error::InvalidInput { field: "limit", .. })
        ));
    }
    let page = ws
        .audit_page(
            &owner,
            AuditLogKind::Security,
            AuditRange::Newest { limit: 2 },
        )
        .await
        .unwrap();
    assert!(page.events.len() <= 2);
    assert!(page.size >= 2, "the owner's grant and login are in the log");
    assert_eq!(
        page.events.last().map(|(i, _)| *i),
        Some(page.size - 1),
        "the newest events, oldest first"
    );
    assert_eq!(
        w.audit.kinds().last(),
        Some(&AuditEventKind::AuditLogRead),
        "the read is on record"
    );

    ws.set_audit_legal_hold(&owner, true).await.unwrap();
    let retention = ws.audit_retention(&owner).await.unwrap();
    assert!(retention.security.legal_hold && retention.compliance.legal_hold);
    assert!(matches!(
        ws.prune_audit(&owner, AuditLogKind::Security, 1).await,
        Err(Error::Conflict(_))
    ));
    // Releasing takes a second person (zt-chat/tests/lifecycle.rs): the switch refuses, a
    // second administrator's approval releases.
    assert!(matches!(
        ws.set_audit_legal_hold(&owner, false).await,
        Err(Error::Conflict(_))
    ));
    let second = member(&ws, &owner, "second").await;
    ws.change_access(
        &owner,
        zt_authz::Change::Grant {
            user: second.user(),
            role: zt_authz::SystemRole::Admin.id(),
            at: zt_authz::Scope::Tenant,
        },
    )
    .await
    .unwrap();
    let held = ws.legal_holds(&owner).await.unwrap();
    let request = ws
        .request_approval(&owner, zt_chat::Approvable::ReleaseLegalHold(held[0].id))
        .await
        .unwrap();
    ws.approve(&second, request.id).await.unwrap();
    ws.prune_audit(&owner, AuditLogKind::Security, 1)
        .await
        .unwrap();
    assert!(matches!(
        ws.prune_audit(&owner, AuditLogKind::Security, u64::MAX)
            .await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        ws.audit_retention(&owner)
            .await
            .unwrap()
            .security
            .pruned_below,
        1
    );
    let kinds = w.audit.kinds();
    for kind in [
        AuditEventKind::LegalHoldPlaced,
        AuditEventKind::LegalHoldReleased,
        AuditEventKind::RetentionCleanup,
    ] {
        assert!(kinds.contains(&kind), "{kind} recorded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_change_is_recorded_before_it_applies_and_refused_without_the_area() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Directory", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let bob = member(&ws, &owner, "bob").await;
    let room = ws
        .create_channel(&owner, "town", ChannelVisibility::Public, "")
        .await
        .unwrap();
    forbidden(ws.set_listed(&bob, room.id, false).await);
    let info = ws.set_listed(&owner, room.id, false).await.unwrap();
    assert!(!info.listed);
    let event = w
        .audit
        .events()
        .into_iter()
        .rev()
        .find(|e| e.kind == AuditEventKind::SettingsChanged)
        .unwrap();
    assert_eq!(event.target.as_deref(), Some("channel_directory"));
    assert_eq!(event.details.get("listed"), Some(&Detail::Flag(false)));
    assert_eq!(
        event.details.get("channel"),
        Some(&Detail::Text(room.id.to_string()))
    );
    // A private channel is refused before anything is recorded.
    let private = ws
        .create_channel(&owner, "quiet", ChannelVisibility::Private, "")
        .await
        .unwrap();
    let before = w.audit.events().len();
    assert!(matches!(
        ws.set_listed(&owner, private.id, false).await,
        Err(Error::InvalidInput {
            field: "channel",
            ..
        })
    ));
    assert_eq!(w.audit.events().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_reactivates_unlocks_and_resets_and_a_user_changes_their_own() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("People", new_user("owner"), &password())
        .await
        .unwrap();
    let owner = login(&ws, "owner").await;
    let bob = member(&ws, &owner, "bob").await;
    let eve = member(&ws, &owner, "eve").await;
    let new_password = secrecy::SecretString::from("a quiet lantern over seven hills");

    // Strangers get none of it, and each refusal is on record.
    let before = w.audit.events().len();
    forbidden(ws.reactivate_user(&eve, bob.user()).await);
    forbidden(ws.unlock_user(&eve, bob.user()).await);
    forbidden(ws.reset_password(&eve, bob.user(), &new_password).await);
    let denied = w.audit.events()[before..]
        .iter()
        .filter(|e| e.kind == AuditEventKind::AdminAccessDenied)
        .count();
    assert_eq!(denied, 3);

    // Deactivated, then back.
    ws.deactivate_user(&owner, bob.user()).await.unwrap();
    assert!(ws.login("bob", &password(), None).await.is_err());
    ws.reactivate_user(&owner, bob.user()).await.unwrap();
    // Sessions from before the deactivation stay ended; later ones live (the clock moves on).
    w.clock.advance(Duration::from_secs(1));
    ws.login("bob", &password(), None).await.unwrap();
    assert!(matches!(
        ws.reactivate_user(&owner, bob.user()).await,
        Err(Error::InvalidInput { .. })
    ));

    // Locked by failures, then unlocked: the right password works again at once.
    for _ in 0..10 {
        let wrong = secrecy::SecretString::from("not the password at all");
        let _ = ws.login("bob", &wrong, None).await;
    }
    assert!(ws.login("bob", &password(), None).await.is_err(), "locked");
    ws.unlock_user(&owner, bob.user()).await.unwrap();
    ws.login("bob", &password(), None).await.unwrap();
    assert!(w.audit.kinds().contains(&AuditEventKind::AccountUnlocked));

    // A reset ends every session of bob's; the new password signs in, the old does not.
    let (bob_token, _) = ws.login("bob", &password(), None).await.unwrap();
    assert!(
        ws.reset_password(&owner, bob.user(), &new_password)
            .await
            .unwrap()
            >= 1
    );
    assert!(matches!(
        ws.authenticate(&bob_token).await,
        Err(Error::Unauthenticated)
    ));
    assert!(ws.login("bob", &password(), None).await.is_err());
    let (token, bob) = ws.login("bob", &new_password, None).await.unwrap();

    // Bob changes his own: the current password first; his other sessions end, this one stays.
    let (other, _) = ws.login("bob", &new_password, None).await.unwrap();
    let wrong = secrecy::SecretString::from("certainly not the current one");
    assert!(matches!(
        ws.change_password(&bob, &token, &wrong, &password()).await,
        Err(Error::Unauthenticated)
    ));
    // Eve's token with Bob's caller is refused.
    let (eve_token, _) = ws.login("eve", &password(), None).await.unwrap();
    assert!(matches!(
        ws.change_password(&bob, &eve_token, &new_password, &password())
            .await,
        Err(Error::Unauthenticated)
    ));
    let ended = ws
        .change_password(&bob, &token, &new_password, &password())
        .await
        .unwrap();
    assert!(ended >= 1);
    ws.authenticate(&token).await.unwrap();
    assert!(ws.authenticate(&other).await.is_err());
    ws.login("bob", &password(), None).await.unwrap();

    // And his profile.
    let changed = ws
        .update_profile(
            &bob,
            zt_chat::ProfileUpdate {
                display_name: Some("Robert".into()),
                email: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.display_name, "Robert");
    assert_eq!(ws.me(&bob).await.unwrap().display_name, "Robert");
}
