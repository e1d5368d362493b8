//! Password login on a manual clock: the pair lockout step by step to its cap, decay, strangers
//! who cannot lock an owner out, a spray across many accounts stopped per address but not for the
//! address's own users, the sign-in limiter before the hash, three failures that look and cost
//! the same, unlocks, rehash, and no password at rest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Base, contains, stored_bytes};
use secrecy::SecretString;
use zt_core::identity::{
    Authenticator, LockoutPolicy, LockoutRule, NewUser, PasswordConfig, PasswordHasher,
    SignInLimits, Users,
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
        pair: LockoutRule {
            threshold: 3,
            first_lock: Duration::from_secs(10),
            cap: Duration::from_secs(80),
            decay: Duration::from_secs(60),
        },
        account: LockoutRule {
            threshold: 6,
            first_lock: Duration::from_secs(20),
            cap: Duration::from_secs(80),
            decay: Duration::from_secs(600),
        },
        address: LockoutRule {
            threshold: 6,
            first_lock: Duration::from_secs(60),
            cap: Duration::from_secs(600),
            decay: Duration::from_secs(60),
        },
        familiar_for: Duration::from_secs(86_400),
    }
}

/// The wait of a refusal, or a panic naming what came instead.
fn wait_of(result: Result<UserId, Error>) -> Duration {
    match result {
        Err(Error::TooManyAttempts { retry_after }) => retry_after,
        other => panic!("expected a refusal with a wait, got {other:?}"),
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
async fn the_pair_lock_escalates_to_its_cap_and_trying_during_it_extends_nothing() {
    let w = world().await;
    let alice = w.user("alice").await;
    // Alice signs in from home: home is familiar to her account now.
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // A guesser at 10.0.0.2: three failures lock alice there for 10 s.
    for _ in 0..3 {
        assert!(matches!(
            w.login("alice", "wrong password!", "10.0.0.2").await,
            Err(Error::AuthenticationFailed)
        ));
    }
    let before = w.hasher.verifications();
    assert_eq!(
        wait_of(w.login("alice", PASSWORD, "10.0.0.2").await),
        Duration::from_secs(10)
    );
    // Refusals during the lock run no hash, count for nothing, and are recorded once.
    for _ in 0..5 {
        let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    }
    assert_eq!(w.hasher.verifications(), before, "no hash during a lock");
    let locked_refusals = |w: &World| {
        w.base
            .audit
            .events()
            .into_iter()
            .filter(|e| {
                e.kind == AuditEventKind::LoginFailed
                    && matches!(e.details.get("reason"), Some(zt_core::Detail::Text(r)) if r == "locked")
            })
            .count()
    };
    assert_eq!(locked_refusals(&w), 1);
    // Alice at home is not locked by any of it.
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // The right password during the lock did not extend it: 10 s later it works there too.
    w.advance(10);
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.2").await.unwrap(), alice);
    // Escalation there (familiar now, so only the pair's own failures count): 10, 20, 40,
    // then the 80 s cap.
    for _ in 0..3 {
        let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    }
    for expected in [10, 20, 40, 80, 80] {
        assert_eq!(
            wait_of(w.login("alice", "wrong password!", "10.0.0.2").await),
            Duration::from_secs(expected)
        );
        w.advance(expected);
        let _ = w.login("alice", "wrong password!", "10.0.0.2").await;
    }
    // Decay: quiet time forgets the failures; the right password works again.
    w.advance(80 + 60 * 10);
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.2").await.unwrap(), alice);
    assert!(locked_refusals(&w) >= 6, "one record per lock");
    assert!(
        w.base
            .audit
            .kinds()
            .contains(&AuditEventKind::AccountLocked)
    );
}

#[tokio::test]
async fn strangers_cannot_lock_an_owner_out_and_a_lock_confirms_no_account() {
    let w = world().await;
    let alice = w.user("alice").await;
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // Six strangers, one guess each, at alice and at a name that does not exist.
    for n in 0..6 {
        for name in ["alice", "nobody"] {
            let _ = w
                .login(name, "wrong password!", &format!("192.0.2.{n}"))
                .await;
        }
    }
    // From a seventh stranger's address, both answer the same refusal with the same wait.
    let alice_elsewhere = w.login("alice", PASSWORD, "192.0.2.99").await;
    let nobody_elsewhere = w.login("nobody", PASSWORD, "192.0.2.99").await;
    assert_eq!(wait_of(alice_elsewhere), Duration::from_secs(20));
    assert_eq!(wait_of(nobody_elsewhere), Duration::from_secs(20));
    // Alice at home is untouched, however many strangers fail.
    assert_eq!(w.login("alice", PASSWORD, "10.0.0.1").await.unwrap(), alice);
    // An administrator's unlock lifts the account lock everywhere.
    w.auth.unlock(&admin(), alice).await.unwrap();
    assert_eq!(
        w.login("alice", PASSWORD, "192.0.2.99").await.unwrap(),
        alice
    );
}

#[tokio::test]
async fn a_spray_locks_the_address_for_strangers_but_not_for_its_own_users() {
    let w = world().await;
    let mut victims = Vec::new();
    for n in 0..8 {
        victims.push(w.user(&format!("user{n}")).await);
    }
    // user7 works behind the office NAT and signed in there before.
    let nat = "203.0.113.7";
    assert_eq!(w.login("user7", PASSWORD, nat).await.unwrap(), victims[7]);
    // One guess per account from the NAT: no account locks, but the address does at six.
    for n in 0..6 {
        let _ = w.login(&format!("user{n}"), "Summer2025!!", nat).await;
    }
    assert_eq!(
        wait_of(w.login("user6", PASSWORD, nat).await),
        Duration::from_secs(60),
        "the address is locked for accounts it does not know"
    );
    assert_eq!(w.login("user7", PASSWORD, nat).await.unwrap(), victims[7]);
    assert_eq!(
        w.login("user6", PASSWORD, "198.51.100.1").await.unwrap(),
        victims[6]
    );
    // An IPv6 sprayer is keyed by its /64, so hopping within it does not help.
    for n in 0..6u8 {
        let _ = w
            .login(
                &format!("user{n}"),
                "Summer2025!!",
                &format!("2001:db8:1:2::{n}"),
            )
            .await;
    }
    assert!(
        w.login("user1", PASSWORD, "2001:db8:1:2:ffff::1")
            .await
            .is_err()
    );
    // An administrator lifts the address lock.
    w.auth
        .unlock_address(&admin(), nat.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(w.login("user6", PASSWORD, nat).await.unwrap(), victims[6]);
}

#[tokio::test]
async fn the_sign_in_limiter_refuses_before_the_hash_and_per_address() {
    let hasher = Arc::new(
        PasswordHasher::new(PasswordConfig {
            m_cost_kib: 64,
            t_cost: 1,
            allow_weak: true,
            sign_in: SignInLimits {
                per_address_per_second: Some(0.0),
                per_address_burst: 3,
                max_waiting: None,
            },
            ..PasswordConfig::default()
        })
        .unwrap(),
    );
    let w = world_with(hasher, None).await;
    let alice = w.user("alice").await;
    for _ in 0..3 {
        let _ = w.login("alice", "wrong password!", "198.51.100.5").await;
    }
    let before = w.hasher.verifications();
    for _ in 0..4 {
        assert_eq!(
            wait_of(w.login("alice", PASSWORD, "198.51.100.5").await),
            Duration::from_secs(3600)
        );
    }
    assert_eq!(w.hasher.verifications(), before, "refused before any hash");
    assert_eq!(
        w.login("alice", PASSWORD, "198.51.100.6").await.unwrap(),
        alice
    );
    let limited = w
        .base
        .audit
        .kinds()
        .into_iter()
        .filter(|k| *k == AuditEventKind::RateLimited)
        .count();
    assert_eq!(limited, 1, "a flood is recorded once a window");
}

#[tokio::test]
async fn three_failures_look_and_cost_the_same() {
    let w = world().await;
    w.user("alice").await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    w.users.deactivate(&admin(), bob).await.unwrap();
    let cases = [
        ("nobody", PASSWORD),         // unknown user
        ("alice", "wrong password!"), // wrong password
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
    for reason in ["unknown_user", "wrong_password", "deactivated"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    // A lock on carol at one address; an administrator's unlock lifts it (audited).
    for _ in 0..3 {
        let _ = w.login("carol", "wrong password!", "10.9.0.1").await;
    }
    assert!(matches!(
        w.login("carol", PASSWORD, "10.9.0.1").await,
        Err(Error::TooManyAttempts { .. })
    ));
    w.auth.unlock(&admin(), carol).await.unwrap();
    assert_eq!(w.login("carol", PASSWORD, "10.9.0.1").await.unwrap(), carol);
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
