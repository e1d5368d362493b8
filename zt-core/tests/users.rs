//! Users over an encrypting store: uniqueness through blinded indexes, the life cycle with its
//! audit events and session revocations, tombstones, and nothing readable at rest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::sync::Arc;

use common::{RecordingSink, contains, stored_bytes};
use zt_core::identity::{NewUser, UserState, UserUpdate, Users};
use zt_core::{Actor, AuditEventKind, BusEvent, Delivery, EventBus, InProcessBus, UserId};
use zt_storage::KvStore;

struct World {
    inner: Arc<dyn KvStore>,
    users: Users,
    audit: Arc<RecordingSink>,
    bus: Arc<InProcessBus>,
}

async fn world() -> World {
    let base = common::base().await;
    let users = Users::new(base.ctx()).unwrap();
    World {
        inner: base.inner,
        users,
        audit: base.audit,
        bus: base.bus,
    }
}

fn admin() -> Actor {
    Actor::User(UserId::from_bytes([9; 16]))
}

fn alice() -> NewUser {
    NewUser {
        username: "Alice".into(),
        email: Some("Alice@Example.com".into()),
        display_name: "Alice Liddell".into(),
    }
}

#[tokio::test]
async fn usernames_and_addresses_are_unique_and_found_without_case() {
    let w = world().await;
    let user = w.users.create(&admin(), alice()).await.unwrap();
    assert_eq!(
        (user.username.as_str(), user.email.as_deref()),
        ("alice", Some("alice@example.com"))
    );
    assert_eq!(
        w.users.find_by_username("ALICE").await.unwrap().unwrap().id,
        user.id
    );
    assert_eq!(
        w.users
            .find_by_email("alice@EXAMPLE.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        user.id
    );
    assert!(w.users.find_by_username("bob").await.unwrap().is_none());
    assert!(
        w.users
            .find_by_username("not a name")
            .await
            .unwrap()
            .is_none()
    );

    let same_name = NewUser {
        email: Some("other@example.com".into()),
        ..alice()
    };
    assert!(
        matches!(w.users.create(&admin(), same_name).await, Err(zt_core::Error::Conflict(m)) if m.contains("username"))
    );
    let same_address = NewUser {
        username: "alice2".into(),
        ..alice()
    };
    assert!(
        matches!(w.users.create(&admin(), same_address).await, Err(zt_core::Error::Conflict(m)) if m.contains("e-mail"))
    );
    // A refused create left nothing behind.
    assert!(w.users.find_by_username("alice2").await.unwrap().is_none());

    // Renaming frees the old name for someone else.
    let renamed = w
        .users
        .update(
            user.id,
            UserUpdate {
                username: Some("alice.l".into()),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.username, "alice.l");
    assert!(w.users.find_by_username("alice").await.unwrap().is_none());
    let bob = w
        .users
        .create(
            &admin(),
            NewUser {
                username: "alice".into(),
                email: None,
                display_name: "Bob".into(),
            },
        )
        .await
        .unwrap();
    assert_ne!(bob.id, user.id);
    assert!(matches!(
        w.users
            .update(
                bob.id,
                UserUpdate {
                    email: Some(Some("ALICE@example.com".into())),
                    ..UserUpdate::default()
                }
            )
            .await,
        Err(zt_core::Error::Conflict(_))
    ));
    assert!(
        w.users
            .create(
                &admin(),
                NewUser {
                    username: "x y".into(),
                    ..alice()
                }
            )
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_racing_for_one_name_cannot_both_win() {
    let w = Arc::new(world().await);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                let new = NewUser {
                    username: "carol".into(),
                    email: Some(format!("c{i}@example.com")),
                    display_name: "Carol".into(),
                };
                w.users.create(&admin(), new).await.is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn the_life_cycle_is_audited_and_ends_sessions() {
    let w = world().await;
    let mut revocations = w.bus.subscribe();
    let user = w.users.create(&admin(), alice()).await.unwrap();
    let deactivated = w.users.deactivate(&admin(), user.id).await.unwrap();
    assert_eq!(deactivated.state, UserState::Deactivated);
    assert_eq!(
        revocations.next().await,
        Delivery::Event(BusEvent::UserSessionsRevoked { user: user.id })
    );
    assert!(
        w.users.deactivate(&admin(), user.id).await.is_err(),
        "not active"
    );
    assert_eq!(
        w.users.reactivate(&admin(), user.id).await.unwrap().state,
        UserState::Active
    );
    let deleted = w.users.delete(&admin(), user.id).await.unwrap();
    assert_eq!(
        revocations.next().await,
        Delivery::Event(BusEvent::UserSessionsRevoked { user: user.id })
    );
    // A tombstone: erased, and the id never comes back.
    assert_eq!(deleted.state, UserState::Deleted);
    assert!(deleted.username.is_empty() && deleted.email.is_none());
    assert_eq!(
        w.users.get(user.id).await.unwrap().unwrap().state,
        UserState::Deleted
    );
    assert!(w.users.reactivate(&admin(), user.id).await.is_err());
    assert!(
        w.users
            .update(
                user.id,
                UserUpdate {
                    display_name: Some("Back".into()),
                    ..UserUpdate::default()
                }
            )
            .await
            .is_err()
    );
    assert!(w.users.delete(&admin(), user.id).await.is_err());
    // The name and address are free again, under a new id.
    let again = w.users.create(&admin(), alice()).await.unwrap();
    assert_ne!(again.id, user.id);
    assert!(matches!(
        w.users.get(UserId::from_bytes([7; 16])).await,
        Ok(None)
    ));
    assert!(matches!(
        w.users
            .deactivate(&admin(), UserId::from_bytes([7; 16]))
            .await,
        Err(zt_core::Error::NotFound(_))
    ));

    let kinds: Vec<_> = w
        .audit
        .events()
        .into_iter()
        .map(|e| (e.kind, e.target))
        .collect();
    let target = Some(user.id.to_string());
    assert_eq!(
        kinds[..4],
        [
            (AuditEventKind::UserCreated, target.clone()),
            (AuditEventKind::UserDeactivated, target.clone()),
            (AuditEventKind::UserReactivated, target.clone()),
            (AuditEventKind::UserDeleted, target),
        ]
    );
}

#[tokio::test]
async fn no_name_or_address_is_readable_at_rest() {
    let w = world().await;
    w.users.create(&admin(), alice()).await.unwrap();
    let bytes = stored_bytes(&*w.inner).await;
    assert!(bytes.len() > 100, "the scan sees the records");
    for needle in ["alice", "Alice", "example.com", "Liddell"] {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "{needle:?} is readable at rest"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_identity_is_created_once_and_sealed_at_rest() {
    use zt_core::identity::{SERVER_IDENTITY, ServerIdentity};
    let base = common::base().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = base.store.clone();
            tokio::spawn(async move {
                ServerIdentity::load_or_create(&*store)
                    .await
                    .unwrap()
                    .fingerprint()
            })
        })
        .collect();
    let mut prints = Vec::new();
    for task in tasks {
        prints.push(task.await.unwrap());
    }
    assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
    let identity = ServerIdentity::load_or_create(&*base.store).await.unwrap();
    assert_eq!(identity.fingerprint(), prints[0]);
    assert!(format!("{identity:?}").contains("SHA256:"));
    // The seed is sealed by the encrypting store: not readable in the inner store.
    let seed = identity.signing_key().to_seed();
    let page = base
        .inner
        .scan(
            &common::ns(SERVER_IDENTITY),
            &zt_storage::KeyRange::all(),
            zt_storage::ScanOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert!(!contains(&page.entries[0].value, &seed[..]));
    // Signatures verify with the public key clients pin.
    let signature = identity.signing_key().sign(b"checkpoint");
    identity
        .verifying_key()
        .verify(b"checkpoint", &signature)
        .unwrap();
}
