//! Complete user deletion (issue 19, item 3): nothing of the user's profile left in the store,
//! even read with every key the KMS still holds; an old copy of their record unreadable; their
//! content by the workspace's policy and under legal holds; the last owner kept; a deletion cut
//! short finished by asking again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use std::sync::Arc;

use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{AuthoredContent, Caller, ErrorKind, HoldScope, PageRequest, Workspace};
use zt_core::identity::{NewUser, UserState};
use zt_core::{ChannelId, UserId};
use zt_storage::{KeyRange, KvStore, Namespace, ScanOptions};

use common::{Breakable, id_of, login, member, new_user, password};

struct Setup {
    world: World,
    store: Arc<Breakable>,
    workspace: Arc<Workspace>,
    admin: Caller,
    room: ChannelId,
}

async fn setup() -> Setup {
    let store = Breakable::new();
    let world = World::over(store.clone() as Arc<dyn KvStore>).await;
    let (workspace, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let admin = login(&workspace, "ada").await;
    let room = workspace
        .create_channel(&admin, "general", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    Setup {
        world,
        store,
        workspace,
        admin,
        room,
    }
}

/// The profile the scan looks for: nothing like it is anywhere else in the test.
fn zelda() -> NewUser {
    NewUser {
        username: "zelda-qx7".into(),
        email: Some("zelda.qx7@mail.example".into()),
        display_name: "Zelda Quixotic".into(),
    }
}

const ZELDA_WORDS: [&str; 3] = ["zelda-qx7", "zelda.qx7@mail.example", "Zelda Quixotic"];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Every row of the deployment's store, opened with the tenant's keys where it is the tenant's:
/// `(namespace, stored key, what the row holds readable, whether it failed to open)`.
async fn every_row(s: &Setup) -> Vec<(String, Vec<u8>, Vec<u8>, Option<ErrorKind2>)> {
    let tenant = s.workspace.tenant();
    let sealed = s.world.tenant_store(tenant).await;
    let prefix = format!("t:{}/", hex::encode(tenant.to_bytes()));
    let mut out = Vec::new();
    for namespace in s.store.inner.namespaces() {
        let rows = s
            .store
            .inner
            .scan(&namespace, &KeyRange::all(), ScanOptions::default())
            .await
            .unwrap();
        assert!(rows.next.is_none(), "one page holds a test's namespace");
        let own = namespace
            .as_str()
            .strip_prefix(&prefix)
            .map(|n| Namespace::new(n).unwrap());
        for row in rows.entries {
            let (readable, failed) = match &own {
                Some(ns) => match sealed.open_stored(ns, &row).await {
                    Ok(open) => ([open.key, open.value].concat(), None),
                    Err(e) => (row.value.clone(), Some(ErrorKind2(e.kind()))),
                },
                None => ([row.key.clone(), row.value.clone()].concat(), None),
            };
            out.push((namespace.as_str().to_owned(), row.key, readable, failed));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ErrorKind2(zt_storage::ErrorKind);

/// Zelda, a member with a password, a session, failed sign-ins (lock states under her name),
/// messages (one edited) and a file in the room.
async fn zelda_at_work(s: &Setup) -> (zt_core::identity::SessionToken, Caller, UserId) {
    let w = &s.workspace;
    let user = w.create_user(&s.admin, zelda(), &password()).await.unwrap();
    for _ in 0..2 {
        let wrong = secrecy::SecretString::from("not her password at all");
        assert!(w.login("zelda-qx7", &wrong, None).await.is_err());
    }
    let (token, zelda) = w.login("zelda-qx7", &password(), None).await.unwrap();
    w.add_member(&s.admin, s.room, user.id).await.unwrap();
    let first = w
        .post(&zelda, s.room, "zelda's first draft", None, &[])
        .await
        .unwrap();
    w.edit(&zelda, s.room, first.id, "zelda's second draft")
        .await
        .unwrap();
    w.post(&zelda, s.room, "zelda's other note", None, &[])
        .await
        .unwrap();
    let mut upload = w
        .upload(&zelda, s.room, "zelda-plans.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"the plans of zelda").await.unwrap();
    upload.finish(None).await.unwrap();
    (token, zelda, user.id)
}

#[tokio::test]
async fn nothing_of_a_deleted_user_is_left_even_with_every_key_at_hand() {
    let s = setup().await;
    let w = &s.workspace;
    let (token, _, id) = zelda_at_work(&s).await;
    w.post(&s.admin, s.room, "ada stays", None, &[])
        .await
        .unwrap();
    // Before: the scan finds her (the test can fail), and her record as stored is copied, as a
    // backup or a disk's free pages would keep it.
    let before = every_row(&s).await;
    for word in ZELDA_WORDS {
        assert!(
            before.iter().any(|(_, _, data, _)| contains(data, word)),
            "{word} is stored before"
        );
    }
    let tenant = w.tenant();
    let (users_ns, users_key) = s
        .world
        .raw_row(tenant, zt_core::identity::USERS, &id.to_bytes())
        .await;
    let old_copy = s
        .store
        .inner
        .get(&users_ns, &users_key)
        .await
        .unwrap()
        .unwrap();
    let (cred_ns, cred_key) = s
        .world
        .raw_row(tenant, zt_core::identity::CREDENTIALS, &id.to_bytes())
        .await;
    let old_hash = s
        .store
        .inner
        .get(&cred_ns, &cred_key)
        .await
        .unwrap()
        .unwrap();

    w.set_authored_content(&s.admin, AuthoredContent::Delete)
        .await
        .unwrap();
    let done = w.delete_user(&s.admin, id).await.unwrap();
    assert_eq!(done.user.state, UserState::Deleted);
    assert_eq!((done.messages, done.revisions, done.files), (2, 1, 1));
    assert_eq!(done.sessions, 1);
    assert!(!done.finished_earlier);

    let after = every_row(&s).await;
    for (namespace, key, data, failed) in &after {
        assert_eq!(
            *failed, None,
            "every row left opens (nothing sealed under her destroyed key stays): {namespace} {key:?}"
        );
        for word in ZELDA_WORDS
            .iter()
            .chain(&["zelda's", "the plans of zelda", "zelda-plans"])
        {
            assert!(
                !contains(data, word),
                "{word} is still in {namespace} after the deletion"
            );
        }
    }
    // The copies taken before do not open with any key the KMS still holds.
    let sealed = s.world.tenant_store(tenant).await;
    for (ns, copy) in [
        (zt_core::identity::USERS, &old_copy),
        (zt_core::identity::CREDENTIALS, &old_hash),
    ] {
        let err = sealed
            .open_stored(&Namespace::new(ns).unwrap(), copy)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), zt_storage::ErrorKind::KeyDestroyed, "{ns}");
    }
    // The audit log names her by id only.
    for event in s.world.audit.events() {
        let text = serde_json::to_string(&event).unwrap();
        for word in ZELDA_WORDS {
            assert!(!contains(text.as_bytes(), word), "{word} in {text}");
        }
    }
    let recorded = s
        .world
        .audit
        .events()
        .into_iter()
        .rfind(|e| e.kind == zt_core::AuditEventKind::UserDeleted)
        .unwrap();
    assert_eq!(recorded.target.as_deref(), Some(id.to_string().as_str()));

    // Her session is over, her name free, her password gone, ada's message kept.
    assert!(w.authenticate(&token).await.is_err());
    assert!(w.login("zelda-qx7", &password(), None).await.is_err());
    w.create_user(&s.admin, zelda(), &password()).await.unwrap();
    let page = w
        .messages(&s.admin, s.room, PageRequest::Latest { limit: 50 })
        .await
        .unwrap();
    let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["ada stays"]);
    // Her tombstone keeps her id taken.
    let tombstone = w.user(&s.admin, id).await.unwrap();
    assert_eq!(tombstone.state, UserState::Deleted);
    assert!(tombstone.username.is_empty() && tombstone.email.is_none());
}

/// A workspace made before users had keys of their own kept its users' identity records under
/// their namespaces' shared keys, which deleting a user does not destroy. When it opens, they
/// are sealed again under each user's key, once: a copy of them taken after that (a backup) no
/// longer opens once the user is deleted. (A copy taken before still does; no rewrite can reach
/// it, and docs/threat-model.md says so.)
#[tokio::test]
async fn identity_records_from_before_user_keys_are_sealed_again_when_the_workspace_opens() {
    let s = setup().await;
    let (_, _, id) = zelda_at_work(&s).await;
    let tenant = s.workspace.tenant();
    s.world.as_before_user_keys(tenant, id).await;
    let rows = |ns: &'static str| {
        let world = &s.world;
        async move { world.raw_row(tenant, ns, &id.to_bytes()).await }
    };
    let copy = |(ns, key): (Namespace, Vec<u8>)| {
        let inner = &s.store.inner;
        async move { inner.get(&ns, &key).await.unwrap().unwrap() }
    };
    let users = Namespace::new(zt_core::identity::USERS).unwrap();
    let credentials = Namespace::new(zt_core::identity::CREDENTIALS).unwrap();
    let old_profile = copy(rows(zt_core::identity::USERS).await).await;
    let old_hash = copy(rows(zt_core::identity::CREDENTIALS).await).await;

    // A new process opens the workspace over the same store.
    let world = World::over(s.store.clone() as Arc<dyn KvStore>).await;
    let w = world.chat.workspace(tenant).await.unwrap();
    assert_eq!(
        world.chat.info(tenant).await.unwrap().layout,
        zt_chat::LAYOUT
    );
    let new_profile = copy(rows(zt_core::identity::USERS).await).await;
    let new_hash = copy(rows(zt_core::identity::CREDENTIALS).await).await;
    assert_ne!(new_profile.value, old_profile.value, "sealed again");
    assert_ne!(new_hash.value, old_hash.value, "sealed again");
    let admin = login(&w, "ada").await;
    assert_eq!(w.user(&admin, id).await.unwrap().username, "zelda-qx7");
    // Opening it again reads and rewrites nothing.
    let again = World::over(s.store.clone() as Arc<dyn KvStore>).await;
    again.chat.workspace(tenant).await.unwrap();
    assert_eq!(
        copy(rows(zt_core::identity::USERS).await).await,
        new_profile
    );

    w.delete_user(&admin, id).await.unwrap();
    let sealed = world.tenant_store(tenant).await;
    for (ns, taken_after) in [(&users, &new_profile), (&credentials, &new_hash)] {
        let err = sealed.open_stored(ns, taken_after).await.unwrap_err();
        assert_eq!(err.kind(), zt_storage::ErrorKind::KeyDestroyed, "{ns}");
    }
    // The known limit: what was copied under the shared key still opens.
    assert!(sealed.open_stored(&users, &old_profile).await.is_ok());
}

#[tokio::test]
async fn kept_content_is_pseudonymised_and_held_content_survives_deletion() {
    let s = setup().await;
    let w = &s.workspace;
    let quiet = w
        .create_channel(&s.admin, "quiet", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    let bob = member(w, &s.admin, "bob").await;
    let carol = member(w, &s.admin, "carol").await;
    let dave = member(w, &s.admin, "dave").await;
    for (who, user) in [(&bob, "bob"), (&carol, "carol"), (&dave, "dave")] {
        w.add_member(&s.admin, s.room, id_of(who)).await.unwrap();
        w.add_member(&s.admin, quiet, id_of(who)).await.unwrap();
        w.post(who, s.room, &format!("{user} in general"), None, &[])
            .await
            .unwrap();
        w.post(who, quiet, &format!("{user} in quiet"), None, &[])
            .await
            .unwrap();
    }
    let mut upload = w
        .upload(&bob, s.room, "bob.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"bob's file").await.unwrap();
    let bobs_file = upload.finish(None).await.unwrap();
    w.place_legal_hold(&s.admin, HoldScope::Custodian(id_of(&bob)), "Matter 7")
        .await
        .unwrap();
    w.place_legal_hold(&s.admin, HoldScope::Channel(quiet), "Matter 8")
        .await
        .unwrap();

    // Keep (the default): dave's messages stay, by a nameless tombstone.
    let done = w.delete_user(&s.admin, id_of(&dave)).await.unwrap();
    assert_eq!(done.content, AuthoredContent::Keep);
    assert_eq!((done.messages, done.files), (0, 0));
    let general = w
        .messages(&s.admin, s.room, PageRequest::Latest { limit: 50 })
        .await
        .unwrap();
    let by_dave = general
        .messages
        .iter()
        .find(|m| m.body == "dave in general")
        .unwrap();
    let author = w.user(&s.admin, by_dave.author).await.unwrap();
    assert_eq!(author.state, UserState::Deleted);
    assert!(author.username.is_empty() && author.email.is_none());
    assert!(!author.display_name.contains("dave"));

    // Delete: bob is a custodian (everything of his stays), carol is not (only what the
    // channel hold keeps stays).
    w.set_authored_content(&s.admin, AuthoredContent::Delete)
        .await
        .unwrap();
    let done = w.delete_user(&s.admin, id_of(&bob)).await.unwrap();
    assert_eq!((done.messages, done.files, done.spared), (0, 0, 3));
    let (token, _) = w.login("ada", &password(), None).await.unwrap();
    let mut feed = w.subscribe(&token).await.unwrap();
    let done = w.delete_user(&s.admin, id_of(&carol)).await.unwrap();
    assert_eq!((done.messages, done.spared), (1, 1));
    // Clients showing general drop carol's message.
    let removed = common::removals(&mut feed);
    assert_eq!(removed.len(), 1);
    assert_eq!((removed[0].0, removed[0].1.len()), (s.room, 1));
    let text = |channel| async move {
        let page = w
            .messages(&s.admin, channel, PageRequest::Latest { limit: 50 })
            .await
            .unwrap();
        let mut bodies: Vec<String> = page.messages.into_iter().map(|m| m.body).collect();
        bodies.sort();
        bodies
    };
    assert_eq!(
        text(s.room).await,
        ["bob in general", "dave in general"],
        "carol's message in general went; bob's is held"
    );
    assert_eq!(
        text(quiet).await,
        ["bob in quiet", "carol in quiet", "dave in quiet"]
    );
    let file = w.file(&s.admin, s.room, bobs_file.id).await.unwrap();
    assert!(!file.is_removed(), "the custodian's file is held");
}

#[tokio::test]
async fn the_last_owner_stays_and_strangers_cannot_delete() {
    let s = setup().await;
    let w = &s.workspace;
    let bob = member(w, &s.admin, "bob").await;
    let refused = w.delete_user(&s.admin, id_of(&s.admin)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let refused = w.delete_user(&bob, id_of(&s.admin)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    // Nothing changed: ada still signs in and owns the workspace.
    login(w, "ada").await;
    assert_eq!(
        w.user(&s.admin, id_of(&s.admin)).await.unwrap().state,
        UserState::Active
    );
}

#[tokio::test]
async fn a_deletion_cut_short_is_finished_by_asking_again() {
    let s = setup().await;
    let w = &s.workspace;
    let tenant = w.tenant();
    let (_, _, id) = zelda_at_work(&s).await;
    let (users_ns, users_key) = s
        .world
        .raw_row(tenant, zt_core::identity::USERS, &id.to_bytes())
        .await;
    let old_copy = s
        .store
        .inner
        .get(&users_ns, &users_key)
        .await
        .unwrap()
        .unwrap();
    let sealed = s.world.tenant_store(tenant).await;
    let users = Namespace::new(zt_core::identity::USERS).unwrap();

    // Cut short before the account goes: she cannot sign in, and asking again finishes.
    s.store.fail_on("identity.b.deleted_users", 0);
    let cut = w.delete_user(&s.admin, id).await.unwrap_err();
    assert_eq!(cut.kind(), ErrorKind::Unavailable);
    assert!(w.login("zelda-qx7", &password(), None).await.is_err());
    assert_eq!(
        w.user(&s.admin, id).await.unwrap().state,
        UserState::Deactivated
    );
    // Cut short again, after the account went but before her key was destroyed: her old
    // record still opens.
    s.store.fail_on("zt.keys", 0);
    let cut = w.delete_user(&s.admin, id).await.unwrap_err();
    assert_eq!(cut.kind(), ErrorKind::Unavailable);
    assert_eq!(
        w.user(&s.admin, id).await.unwrap().state,
        UserState::Deleted
    );
    assert!(sealed.open_stored(&users, &old_copy).await.is_ok());

    let done = w.delete_user(&s.admin, id).await.unwrap();
    assert!(done.finished_earlier);
    assert_eq!(
        sealed
            .open_stored(&users, &old_copy)
            .await
            .unwrap_err()
            .kind(),
        zt_storage::ErrorKind::KeyDestroyed
    );
    let deleted = s
        .world
        .audit
        .kinds()
        .into_iter()
        .filter(|k| *k == zt_core::AuditEventKind::UserDeleted)
        .count();
    assert_eq!(deleted, 1, "one deletion, recorded once");
}

#[tokio::test]
async fn a_scim_deletion_goes_through_the_same_checklist() {
    let s = setup().await;
    let w = &s.workspace;
    let (secret, _) = w.create_scim_key(&s.admin, "idp").await.unwrap();
    let caller = w.scim_authenticate(secret.expose()).await.unwrap();
    let call = |method, path: String, body: Option<serde_json::Value>| {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let caller = caller.clone();
        async move {
            w.scim(
                &caller,
                zt_chat::ScimRequest {
                    method,
                    path: &path,
                    query: &[],
                    if_match: None,
                    body: body.as_bytes(),
                    base: "https://chat.example/scim/v2",
                },
            )
            .await
        }
    };
    let created = call(
        zt_chat::ScimMethod::Post,
        "/Users".into(),
        Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "zelda-qx7",
            "externalId": "ext-zelda-qx7-77",
            "displayName": "Zelda Quixotic",
            "emails": [{ "primary": true, "value": "zelda.qx7@mail.example" }],
            "phoneNumbers": [{ "value": "+1 555 0199 4242" }],
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body.unwrap()["id"].as_str().unwrap().to_owned();
    let user: UserId = id.parse().unwrap();
    w.reset_password(&s.admin, user, &password()).await.unwrap();
    let before = every_row(&s).await;
    assert!(
        before
            .iter()
            .any(|(_, _, d, _)| contains(d, "ext-zelda-qx7-77"))
    );
    let tenant = w.tenant();
    let scim_users = zt_core::identity::scim::SCIM_USERS;
    let (doc_ns, doc_key) = s.world.raw_row(tenant, scim_users, &user.to_bytes()).await;
    let old_doc = s.store.inner.get(&doc_ns, &doc_key).await.unwrap().unwrap();
    let (cred_ns, cred_key) = s
        .world
        .raw_row(tenant, zt_core::identity::CREDENTIALS, &user.to_bytes())
        .await;
    assert!(
        s.store
            .inner
            .get(&cred_ns, &cred_key)
            .await
            .unwrap()
            .is_some()
    );

    let gone = call(zt_chat::ScimMethod::Delete, format!("/Users/{id}"), None).await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    for (namespace, key, data, failed) in every_row(&s).await {
        assert_eq!(failed, None, "{namespace} {key:?} does not open");
        for word in ZELDA_WORDS
            .iter()
            .chain(&["ext-zelda-qx7-77", "555 0199 4242"])
        {
            assert!(!contains(&data, word), "{word} is still in {namespace}");
        }
    }
    assert_eq!(
        w.user(&s.admin, user).await.unwrap().state,
        UserState::Deleted
    );
    // The password hash went, and the SCIM document as it was stored no longer opens.
    assert!(
        s.store
            .inner
            .get(&cred_ns, &cred_key)
            .await
            .unwrap()
            .is_none()
    );
    let sealed = s.world.tenant_store(tenant).await;
    let err = sealed
        .open_stored(&Namespace::new(scim_users).unwrap(), &old_doc)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), zt_storage::ErrorKind::KeyDestroyed);
}
