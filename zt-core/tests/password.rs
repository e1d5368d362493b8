//! Password hashing on the blocking pool: PHC strings, the pepper, rehash on changed parameters,
//! the dummy verification, and a bounded pool.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use std::sync::Arc;

use secrecy::SecretString;
use zeroize::Zeroizing;
use zt_core::identity::{PasswordConfig, PasswordHasher};

/// Fast parameters for tests (the OWASP minimum costs ~20 ms a hash on these machines).
fn fast(m_cost_kib: u32) -> PasswordConfig {
    PasswordConfig {
        m_cost_kib,
        t_cost: 1,
        p_cost: 1,
        allow_weak: true,
        ..PasswordConfig::default()
    }
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

#[tokio::test]
async fn hashes_verify_and_say_when_to_rehash() {
    let hasher = PasswordHasher::new(fast(64)).unwrap();
    let phc = hasher
        .hash(&secret("violet kettle rides at dawn"))
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    let again = hasher
        .hash(&secret("violet kettle rides at dawn"))
        .await
        .unwrap();
    assert_ne!(phc, again, "every hash has its own salt");
    let ok = hasher
        .verify(&secret("violet kettle rides at dawn"), &phc)
        .await
        .unwrap();
    assert!(ok.matches && !ok.needs_rehash);
    let wrong = hasher
        .verify(&secret("violet kettle rides at dusk"), &phc)
        .await
        .unwrap();
    assert!(!wrong.matches);
    // Stronger parameters now: the old hash still verifies and asks to be replaced.
    let stronger = PasswordHasher::new(fast(128)).unwrap();
    let old = stronger
        .verify(&secret("violet kettle rides at dawn"), &phc)
        .await
        .unwrap();
    assert!(old.matches && old.needs_rehash);
    // A stored string that is not a PHC hash is an error, not a mismatch.
    assert!(hasher.verify(&secret("x"), "plaintext").await.is_err());
    assert_eq!(hasher.verifications(), 2, "the unparsable one did no work");
}

#[tokio::test]
async fn the_pepper_is_part_of_every_hash() {
    let peppered = |pepper: &[u8]| {
        PasswordHasher::new(PasswordConfig {
            pepper: Some(Zeroizing::new(pepper.to_vec())),
            ..fast(64)
        })
        .unwrap()
    };
    let one = peppered(b"pepper one");
    let phc = one
        .hash(&secret("violet kettle rides at dawn"))
        .await
        .unwrap();
    let password = secret("violet kettle rides at dawn");
    assert!(one.verify(&password, &phc).await.unwrap().matches);
    // Without it, or with another, the right password does not verify: a database dump alone
    // is not enough to test guesses.
    assert!(
        !peppered(b"pepper two")
            .verify(&password, &phc)
            .await
            .unwrap()
            .matches
    );
    let plain = PasswordHasher::new(fast(64)).unwrap();
    assert!(!plain.verify(&password, &phc).await.unwrap().matches);
    assert!(!format!("{one:?}").contains("pepper one"));
}

#[tokio::test]
async fn the_dummy_verification_costs_one_verification() {
    let hasher = PasswordHasher::new(fast(64)).unwrap();
    hasher.verify_dummy(&secret("anything at all")).await;
    assert_eq!(hasher.verifications(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_pool_finishes_every_request() {
    let hasher = Arc::new(
        PasswordHasher::new(PasswordConfig {
            max_concurrent: 2,
            ..fast(256)
        })
        .unwrap(),
    );
    let phc = hasher
        .hash(&secret("violet kettle rides at dawn"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            tokio::spawn(async move {
                let guess = if i % 2 == 0 {
                    "violet kettle rides at dawn"
                } else {
                    "nope"
                };
                hasher.verify(&secret(guess), &phc).await.unwrap().matches
            })
        })
        .collect();
    let mut matched = 0;
    for task in tasks {
        matched += usize::from(task.await.unwrap());
    }
    assert_eq!(matched, 16);
    assert_eq!(hasher.verifications(), 32);
}

#[test]
fn the_owasp_minimum_is_the_default() {
    let config = PasswordConfig::default();
    assert_eq!(
        (config.m_cost_kib, config.t_cost, config.p_cost),
        (19456, 2, 1)
    );
    assert!(!config.allow_weak);
}
