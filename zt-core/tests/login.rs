//! Password login on a manual clock: the lockout schedule step by step, decay, a spray across
//! many accounts stopped per address, four failures that look and cost the same, unlocks,
//! rehash, and no password at rest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Base, contains, stored_bytes};
use secrecy::SecretString;
use zt_core::identity::{
    Authenticator, LockoutPolicy, LockoutRule, NewUser, PasswordConfig, PasswordHasher, Users,
};
use zt_core::{Actor, AuditEventKind, Error, UserId};

const PASSWORD: &str = "violet kettle rides at dawn";

struct World {
    base: Base,
    users: Arc<Users>,
    hasher: Arc<PasswordHasher>,
    auth: Authenticator,
}

fn hasher(m_cost_kib: u32) -> Arc<PasswordHasher> {
    Arc::new(
        PasswordHasher::new(PasswordConfig {
            m_cost_kib,
            t_cost: 1,
            allow_weak: true,
            ..PasswordConfig::default()
        })
        .unwrap(),
    )
}

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        account: LockoutRule {
            threshold: 3,
            first_lock: Duration::from_secs(10),
            cap: Duration::from_secs(80),
            decay: Duration::from_secs(60),
        },
        address: LockoutRule {
            threshold: 6,
            first_lock: Duration::from_secs(60),
            cap: Duration::from_secs(600),
            decay: Duration::from_secs(60),
        },
    }
}

async fn world_with(hasher: Arc<PasswordHasher>, base: Option<Base>) -> World {
    let base = match base {
        Some(base) => base,
        None => common::base().await,
    };
    let users = Arc::new(Users::new(base.ctx()).unwrap());
    let auth = Authenticator::new(base.ctx(), users.clone(), hasher.clone(), policy()).unwrap();
    World {
        base,
        users,
        hasher,
        auth,
    }
}

async fn world() -> World {
    world_with(hasher(64), None).await
}

fn admin() -> Actor {
    Actor::User(UserId::from_bytes([9; 16]))
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

impl World {
    async fn user(&self, name: &str) -> UserId {
        let user = self
            .users
            .create(
                &admin(),
                NewUser {
                    username: name.into(),
                    email: Some(format!("{name}@example.com")),
                    display_name: name.into(),
                },
            )
            .await
            .unwrap();
        self.auth
            .set_password(&admin(), user.id, &secret(PASSWORD))
            .await
            .unwrap();
        user.id
    }

    async fn login(&self, name: &str, password: &str, from: &str) -> Result<UserId, Error> {
        let source: IpAddr = from.parse().unwrap();
        self.auth
            .login(name, &secret(password), Some(source))
            .await
            .map(|u| u.id)
    }

    fn advance(&self, seconds: u64) {
        self.base.clock.advance(Duration::from_secs(seconds));
    }
}

#[tokio::test]
async fn the_lockout_schedule_escalates_then_decays() {
    let w = world().await;
    let alice = w.user("alice").await;
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // Failures 1 and 2 from different addresses: no lock yet.
    for from in ["10.0.0.2", "10.0.0.3"] {
        assert!(matches!(
            w.login("alice", "wrong password!", from).await,
            Err(Error::AuthenticationFailed)
        ));
    }
    assert_eq!(
        w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(),
        alice,
        "success resets"
    );
    // Three failures: locked for 10 s; even the right password fails meanwhile, and counts.
    for _ in 0..3 {
        let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    }
    w.advance(9);
    assert!(
        w.login("alice", PASSWORD, "10.0.0.1").await.is_err(),
        "locked 10 s"
    );
    // That attempt was failure 4: a 20 s lock from now.
    w.advance(19);
    assert!(
        w.login("alice", PASSWORD, "10.0.0.1").await.is_err(),
        "locked 20 s"
    );
    // Failure 5: 40 s.
    w.advance(39);
    assert!(
        w.login("alice", PASSWORD, "10.0.0.1").await.is_err(),
        "locked 40 s"
    );
    // Failure 6: 80 s, the cap; after it the right password works again.
    w.advance(80);
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // Decay: two failures, then quiet for two minutes, forgets both; one more does not lock.
    for _ in 0..2 {
        let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    }
    w.advance(120);
    let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);

    let kinds = w.base.audit.kinds();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AuditEventKind::AccountLocked)
            .count(),
        4
    );
    assert!(kinds.contains(&AuditEventKind::LoginSucceeded));
}

#[tokio::test]
async fn a_spray_across_accounts_locks_the_address() {
    let w = world().await;
    let mut victims = Vec::new();
    for n in 0..8 {
        victims.push(w.user(&format!("user{n}")).await);
    }
    // One guess per account from one address: no account locks, but the address does at six.
    for n in 0..6 {
        let _ = w
            .login(&format!("user{n}"), "Summer2025!!", "203.0.113.7")
            .await;
    }
    assert!(
        w.login("user7", PASSWORD, "203.0.113.7").await.is_err(),
        "the address is locked"
    );
    assert_eq!(
        w.login("user7", PASSWORD, "198.51.100.1").await.unwrap(),
        victims[7]
    );
    // An IPv6 sprayer is keyed by its /64, so hopping within it does not help.
    for n in 0..6u8 {
        let _ = w
            .login("user0", "Summer2025!!", &format!("2001:db8:1:2::{n}"))
            .await;
    }
    assert!(
        w.login("user1", PASSWORD, "2001:db8:1:2:ffff::1")
            .await
            .is_err()
    );
    // An administrator lifts the address lock.
    w.auth
        .unlock_address(&admin(), "203.0.113.7".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        w.login("user7", PASSWORD, "203.0.113.7").await.unwrap(),
        victims[7]
    );
}

#[tokio::test]
async fn four_failures_look_and_cost_the_same() {
    let w = world().await;
    w.user("alice").await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    w.users.deactivate(&admin(), bob).await.unwrap();
    for _ in 0..3 {
        let _ = w.login("carol", "wrong password!", "10.9.0.1").await;
    }
    let cases = [
        ("nobody", PASSWORD),         // unknown user
        ("alice", "wrong password!"), // wrong password
        ("carol", PASSWORD),          // locked account, right password
        ("bob", PASSWORD),            // deactivated account, right password
    ];
    let mut errors = Vec::new();
    for (n, (name, password)) in cases.iter().enumerate() {
        let before = w.hasher.verifications();
        let error = w
            .login(name, password, &format!("10.1.0.{n}"))
            .await
            .unwrap_err();
        assert_eq!(
            w.hasher.verifications() - before,
            1,
            "{name}: one argon2 verification"
        );
        errors.push(format!("{error:?} / {error}"));
    }
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    // The reasons are in the audit log, and never a password.
    let reasons: Vec<String> = w
        .base
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditEventKind::LoginFailed)
        .filter_map(|e| match e.details.get("reason") {
            Some(zt_core::Detail::Text(reason)) => Some(reason.clone()),
            _ => None,
        })
        .collect();
    for reason in [
        "unknown_user",
        "wrong_password",
        "account_locked",
        "deactivated",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    // An administrator unlocks carol (audited).
    w.auth.unlock(&admin(), carol).await.unwrap();
    assert_eq!(w.login("carol", PASSWORD, "10.9.0.2").await.unwrap(), carol);
    assert!(
        w.base
            .audit
            .kinds()
            .contains(&AuditEventKind::AccountUnlocked)
    );
}

#[tokio::test]
async fn login_rehashes_under_new_parameters_and_leaves_no_password_at_rest() {
    let w = world().await;
    let alice = w.user("alice").await;
    // The deployment raises the cost: the next login stores a hash with the new parameters.
    let stronger = world_with(hasher(128), Some(w.base)).await;
    let stored = || async {
        let entry = stronger
            .base
            .store
            .get(
                &common::ns(zt_core::identity::CREDENTIALS),
                &alice.to_bytes(),
            )
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(entry.value).unwrap()
    };
    assert!(stored().await.starts_with("$argon2id$v=19$m=64,"));
    assert_eq!(
        stronger.login("alice", PASSWORD, "10.0.0.1").await.unwrap(),
        alice
    );
    assert!(
        stored().await.starts_with("$argon2id$v=19$m=128,"),
        "rehashed on login"
    );
    let bytes = stored_bytes(&*stronger.base.inner).await;
    assert!(
        !contains(&bytes, PASSWORD.as_bytes()),
        "the password is at rest"
    );
    assert!(
        !contains(&bytes, b"$argon2id$"),
        "a readable hash is at rest"
    );
    assert!(!contains(&bytes, b"10.0.0.1"));
    let before = stronger.hasher.verifications();
    assert_eq!(
        stronger.login("alice", PASSWORD, "10.0.0.1").await.unwrap(),
        alice
    );
    assert_eq!(stronger.hasher.verifications() - before, 1);
    // The policy applies to new passwords, and never cuts one.
    let err = stronger
        .auth
        .set_password(&admin(), alice, &secret("alice-is-great-2024"))
        .await;
    assert!(matches!(err, Err(Error::InvalidInput(m)) if m.contains("name")));
    assert!(
        stronger
            .auth
            .set_password(&admin(), alice, &secret("Password2024!"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_logout_ends_its_own() {
    use zt_core::identity::{Identity, SessionKind, Sessions};
    let w = world().await;
    let alice = w.user("alice").await;
    let sessions = Arc::new(Sessions::new(w.base.ctx(), w.users.clone()).await.unwrap());
    let auth = Arc::new(
        Authenticator::new(w.base.ctx(), w.users.clone(), w.hasher.clone(), policy()).unwrap(),
    );
    let identity = Identity::new(w.base.ctx(), w.users.clone(), auth, sessions.clone());
    let (correct, wrong) = (secret(PASSWORD), secret("nope nope nope"));
    let kind = SessionKind::Interactive;
    let laptop = identity
        .login("alice", &correct, None, kind)
        .await
        .unwrap()
        .0;
    let phone = identity
        .login("ALICE", &correct, None, kind)
        .await
        .unwrap()
        .0;
    assert!(identity.login("alice", &wrong, None, kind).await.is_err());
    let ended = identity
        .change_password(
            &Actor::User(alice),
            alice,
            &secret("amber otter sings twice"),
            Some(&laptop),
        )
        .await
        .unwrap();
    assert_eq!(ended, 1);
    assert!(sessions.validate(&phone).await.is_err());
    sessions.validate(&laptop).await.unwrap();
    identity.logout(&laptop).await.unwrap();
    assert!(sessions.validate(&laptop).await.is_err());
    assert!(identity.logout(&laptop).await.is_err());
    let kinds = w.base.audit.kinds();
    for kind in [
        AuditEventKind::PasswordChanged,
        AuditEventKind::SessionRevoked,
        AuditEventKind::Logout,
    ] {
        assert!(kinds.contains(&kind), "{kind:?}");
    }
}
