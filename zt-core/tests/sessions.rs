//! Sessions on a manual clock: hashed tokens only at rest, revocation seen on the very next
//! validation by another instance, idle and absolute timeouts, a shortened policy ending live
//! sessions, revoke-all, and users who stop being active.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Base, contains, stored_bytes};
use zt_core::identity::{
    NewUser, SessionKind, SessionPolicy, SessionToken, Sessions, Timeouts, Users,
};
use zt_core::{Actor, AuditEventKind, Error, UserId};

struct World {
    base: Base,
    users: Arc<Users>,
    /// Two instances (two processes) over one store and one bus.
    a: Sessions,
    b: Sessions,
}

async fn world() -> World {
    let base = common::base().await;
    let users = Arc::new(Users::new(base.ctx()).unwrap());
    let sessions = || Sessions::new(base.ctx(), users.clone());
    let a = sessions().await.unwrap();
    let b = sessions().await.unwrap();
    World { base, users, a, b }
}

fn admin() -> Actor {
    Actor::User(UserId::from_bytes([9; 16]))
}

impl World {
    async fn user(&self, name: &str) -> UserId {
        self.users
            .create(
                &admin(),
                NewUser {
                    username: name.into(),
                    email: None,
                    display_name: name.into(),
                },
            )
            .await
            .unwrap()
            .id
    }

    fn advance(&self, seconds: u64) {
        self.base.clock.advance(Duration::from_secs(seconds));
    }
}

fn failed(result: Result<zt_core::identity::Session, Error>) -> bool {
    matches!(result, Err(Error::AuthenticationFailed))
}

#[tokio::test]
async fn only_the_token_hash_is_at_rest() {
    let w = world().await;
    let alice = w.user("alice").await;
    let (token, session) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    assert_eq!(token.expose().len(), 43, "32 bytes, base64url");
    assert_eq!(w.a.validate(&token).await.unwrap(), session);
    assert_eq!(format!("{token:?}"), "SessionToken(<redacted>)");
    let bytes = stored_bytes(&*w.base.inner).await;
    assert!(
        !contains(&bytes, token.expose().as_bytes()),
        "the raw token is at rest"
    );
    assert!(contains(&bytes, &token.hash()), "the hash is the key");
    assert!(failed(
        w.a.validate(&SessionToken::from_presented("forged")).await
    ));
}

#[tokio::test]
async fn a_revoked_token_fails_on_its_very_next_use_everywhere() {
    let w = world().await;
    let alice = w.user("alice").await;
    let (token, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    // Both instances have it cached now.
    w.a.validate(&token).await.unwrap();
    w.b.validate(&token).await.unwrap();
    w.a.revoke(&admin(), &token).await.unwrap();
    assert!(
        failed(w.b.validate(&token).await),
        "b's cache was not invalidated"
    );
    assert!(failed(w.a.validate(&token).await));
    assert!(
        w.base
            .audit
            .kinds()
            .contains(&AuditEventKind::SessionRevoked)
    );
    // Revoking again is harmless.
    w.b.revoke(&admin(), &token).await.unwrap();
}

#[tokio::test]
async fn revoke_all_keeps_the_one_asked_and_lists_the_rest() {
    let w = world().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let mut tokens = Vec::new();
    for kind in [
        SessionKind::Interactive,
        SessionKind::Api,
        SessionKind::Portal,
    ] {
        tokens.push(w.a.create(alice, kind).await.unwrap().0);
    }
    let (bobs, _) = w.a.create(bob, SessionKind::Interactive).await.unwrap();
    for token in &tokens {
        w.b.validate(token).await.unwrap();
    }
    assert_eq!(w.a.list(alice).await.unwrap().len(), 3);
    // After a password change: every other session of alice ends.
    assert_eq!(
        w.a.revoke_all(&admin(), alice, Some(&tokens[0]))
            .await
            .unwrap(),
        2
    );
    w.b.validate(&tokens[0]).await.unwrap();
    assert!(failed(w.b.validate(&tokens[1]).await));
    assert!(failed(w.b.validate(&tokens[2]).await));
    w.b.validate(&bobs).await.unwrap();
    let listed = w.a.list(alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, tokens[0].hash());
}

#[tokio::test]
async fn idle_and_absolute_timeouts_follow_the_policy_in_force() {
    let w = world().await;
    let alice = w.user("alice").await;
    let policy = SessionPolicy {
        interactive: Timeouts {
            idle: Duration::from_secs(600),
            absolute: Duration::from_secs(3600),
        },
        ..SessionPolicy::default()
    };
    w.a.set_policy(policy).await.unwrap();
    let (token, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    // Used every 9 minutes it stays alive (the last use is written back)...
    for _ in 0..6 {
        w.advance(540);
        w.b.validate(&token).await.unwrap();
    }
    // ...until the absolute limit, 60 minutes after creation.
    w.advance(400);
    assert!(failed(w.b.validate(&token).await));
    // Idle: 10 minutes unused ends it.
    let (idle, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    w.advance(599);
    w.b.validate(&idle).await.unwrap();
    w.advance(600);
    assert!(failed(w.b.validate(&idle).await));
    // A shorter policy ends live sessions at their next use, on every instance.
    let (live, _) = w.a.create(alice, SessionKind::Api).await.unwrap();
    w.advance(3600);
    w.b.validate(&live).await.unwrap();
    w.a.set_policy(SessionPolicy {
        api: Timeouts {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(1800),
        },
        ..policy
    })
    .await
    .unwrap();
    assert!(
        failed(w.b.validate(&live).await),
        "the shortened policy applies to b at once"
    );
}

#[tokio::test]
async fn sessions_end_with_deactivation_and_deletion() {
    let w = world().await;
    let alice = w.user("alice").await;
    let (cached, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    let (uncached, _) = w.a.create(alice, SessionKind::Api).await.unwrap();
    let (unused, _) = w.a.create(alice, SessionKind::Portal).await.unwrap();
    w.b.validate(&cached).await.unwrap();
    w.users.deactivate(&admin(), alice).await.unwrap();
    assert!(
        failed(w.b.validate(&cached).await),
        "the bus event reached b's cache"
    );
    assert!(
        failed(w.b.validate(&uncached).await),
        "the store path checks the user"
    );
    assert!(
        w.a.create(alice, SessionKind::Portal).await.is_err(),
        "not while deactivated"
    );
    w.advance(1);
    w.users.reactivate(&admin(), alice).await.unwrap();
    // Sessions ended by deactivation stay ended, even one nobody used meanwhile.
    assert!(failed(w.a.validate(&cached).await));
    assert!(failed(w.a.validate(&unused).await));
    let (fresh, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    w.b.validate(&fresh).await.unwrap();
    w.users.delete(&admin(), alice).await.unwrap();
    assert!(failed(w.b.validate(&fresh).await));
}

#[tokio::test]
async fn no_user_id_is_in_a_key_at_rest_and_the_earlier_layout_moves_on_open() {
    use zt_core::identity::{USER_SESSIONS, USERS};
    use zt_storage::{Batch, KvStore as _};
    let w = world().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let (token, _) = w.a.create(alice, SessionKind::Interactive).await.unwrap();
    w.a.create(bob, SessionKind::Interactive).await.unwrap();
    let no_id_at_rest = |bytes: &[u8]| {
        for id in [alice, bob] {
            assert!(!contains(bytes, &id.to_bytes()), "{id} is readable at rest");
        }
    };
    no_id_at_rest(&stored_bytes(&*w.base.inner).await);

    // Put alice's records back where the earlier layout kept them, keyed by her id in clear.
    let store = &w.base.store;
    let mut legacy = Batch::new();
    for (old, new, key) in [
        ("identity.users", USERS, alice.to_bytes().to_vec()),
        (
            "identity.user_sessions",
            USER_SESSIONS,
            [&alice.to_bytes()[..], &token.hash()].concat(),
        ),
    ] {
        let entry = store.get(&common::ns(new), &key).await.unwrap().unwrap();
        legacy.put(&common::ns(old), &key, &entry.value);
        legacy.delete(&common::ns(new), &key);
    }
    store.commit(legacy).await.unwrap();
    let old_users = || async {
        w.base
            .inner
            .scan(
                &common::ns("identity.users"),
                &zt_storage::KeyRange::all(),
                zt_storage::ScanOptions::new(),
            )
            .await
            .unwrap()
            .entries
    };
    assert_eq!(old_users().await[0].key, alice.to_bytes(), "the old layout");
    assert!(w.users.get(alice).await.unwrap().is_none(), "not yet moved");

    // Opening the tenant's sessions moves them, and everything reads as before.
    let reopened = Sessions::new(w.base.ctx(), w.users.clone()).await.unwrap();
    assert_eq!(reopened.list(alice).await.unwrap().len(), 1);
    assert_eq!(w.users.get(alice).await.unwrap().unwrap().username, "alice");
    assert!(old_users().await.is_empty());
    no_id_at_rest(&stored_bytes(&*w.base.inner).await);
}
