//! The behaviour every [`Kms`] adapter must show, as one `pub async fn` per case.
//!
//! An adapter runs the whole suite with [`kms_conformance_tests!`](crate::kms_conformance_tests),
//! which stamps out one named test per case. Each case takes a [`KmsHarness`] that opens a fresh
//! KMS, can reopen it, and can simulate an outage where the adapter allows.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite reports failures by panicking"
)]

use std::sync::Arc;

use async_trait::async_trait;

use crate::{DataKey, EncryptionContext, ErrorKind, KeyId, KeyState, KeyVersion, Kms, WrappedKey};

/// Opens the KMS under test.
#[async_trait]
pub trait KmsHarness: Send + Sync {
    /// Opens the KMS: empty the first time, with everything created before on later calls.
    async fn open(&self) -> Arc<dyn Kms>;

    /// Lets go of `kms` and opens the same keys again.
    async fn reopen(&self, kms: Arc<dyn Kms>) -> Arc<dyn Kms> {
        drop(kms);
        self.open().await
    }

    /// Makes the KMS fail temporarily (`true`) or recover (`false`). Returns `false` when the
    /// adapter cannot simulate an outage; such an adapter stamps the suite with `; no_outage`.
    async fn simulate_outage(&self, _on: bool) -> bool {
        false
    }
}

/// Stamps out one `#[tokio::test]` per KMS conformance case in a module named `$adapter`.
///
/// - `kms_conformance_tests!(name, expr)` runs every case on the harness `expr`.
/// - `kms_conformance_tests!(name, optional: expr)` takes an `Option` of a harness instead; when it
///   is `None` (an outside peer such as an HSM is not configured), each test prints one line saying
///   it was skipped.
/// - A trailing `; no_outage` leaves out [`transient_failures_are_retryable`] for an adapter whose
///   harness cannot simulate an outage. Without it the case is stamped, and it fails when
///   [`KmsHarness::simulate_outage`] says it cannot: a case that would check nothing is not run.
#[macro_export]
macro_rules! kms_conformance_tests {
    ($adapter:ident, optional: $harness:expr $(; $no_outage:ident)?) => {
        $crate::kms_conformance_tests!(@pick $adapter, (match $harness {
            Some(harness) => harness,
            None => {
                println!("skipped: {} (its KMS is not configured)", module_path!());
                return;
            }
        }) $(; $no_outage)?);
    };
    ($adapter:ident, $harness:expr $(; $no_outage:ident)?) => {
        $crate::kms_conformance_tests!(@pick $adapter, ($harness) $(; $no_outage)?);
    };
    (@pick $adapter:ident, $harness:expr; no_outage) => {
        $crate::kms_conformance_tests!(@cases $adapter, $harness, []);
    };
    (@pick $adapter:ident, $harness:expr) => {
        $crate::kms_conformance_tests!(@cases $adapter, $harness, [transient_failures_are_retryable]);
    };
    (@cases $adapter:ident, $harness:expr, [$($extra:ident),*]) => {
        mod $adapter {
            #[allow(unused_imports)]
            use super::*;
            $crate::__kms_conformance_cases!(
                $harness;
                round_trip,
                data_keys_are_fresh,
                wrong_context_fails,
                wrong_key_fails,
                unknown_key_is_not_found,
                create_twice_fails,
                rotation_keeps_old_wraps_readable,
                rewrap_moves_to_current,
                retired_version_is_refused,
                destroyed_key_never_unwraps_again,
                tampered_wrapped_key_fails,
                wrapped_key_bytes_round_trip,
                keys_survive_reopen,
                $($extra,)*
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kms_conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::$case(&harness).await;
            }
        )*
    };
}

fn id(name: &str) -> KeyId {
    KeyId::new(name).unwrap()
}

fn context(tenant: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("tenant", tenant)
        .with("purpose", "conformance")
}

fn assert_kind<T>(result: crate::Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        Ok(_) => panic!("{what}: expected {kind:?}, got Ok"),
    }
}

/// A generated data key unwraps to the same key.
pub async fn round_trip(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("round-trip");
    let created = kms.create_key(&key_id).await.unwrap();
    assert_eq!(created.version, 1);
    let (key, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert_eq!(wrapped.key, created);
    assert!(
        wrapped.ciphertext != key.expose().as_slice(),
        "the wrapped key is not the key"
    );
    assert_eq!(kms.unwrap(&wrapped, &context("t1")).await.unwrap(), key);
    let mine = DataKey::generate();
    let wrapped = kms.wrap(&key_id, &mine, &context("t1")).await.unwrap();
    assert_eq!(kms.unwrap(&wrapped, &context("t1")).await.unwrap(), mine);
}

/// Every generated data key is new.
pub async fn data_keys_are_fresh(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("fresh");
    kms.create_key(&key_id).await.unwrap();
    let (a, _) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    let (b, _) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert!(a != b);
}

/// A key wrapped for one context does not unwrap for another (tenant, purpose, or extra pair).
pub async fn wrong_context_fails(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("context");
    kms.create_key(&key_id).await.unwrap();
    let (_, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    for other in [
        context("t2"),
        EncryptionContext::new().with("tenant", "t1"),
        context("t1").with("extra", "x"),
        EncryptionContext::new(),
    ] {
        assert_kind(
            kms.unwrap(&wrapped, &other).await,
            ErrorKind::Decrypt,
            "other context",
        );
    }
}

/// A wrapped key relabelled as another key's does not unwrap.
pub async fn wrong_key_fails(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let (a, b) = (id("key-a"), id("key-b"));
    kms.create_key(&a).await.unwrap();
    kms.create_key(&b).await.unwrap();
    let (_, mut wrapped) = kms.generate_data_key(&a, &context("t1")).await.unwrap();
    wrapped.key.id = b;
    assert_kind(
        kms.unwrap(&wrapped, &context("t1")).await,
        ErrorKind::Decrypt,
        "key b",
    );
}

/// Unknown keys and versions are `KeyNotFound`.
pub async fn unknown_key_is_not_found(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let missing = id("missing");
    assert_kind(
        kms.wrap(&missing, &DataKey::generate(), &context("t1"))
            .await,
        ErrorKind::KeyNotFound,
        "wrap",
    );
    assert_kind(kms.rotate(&missing).await, ErrorKind::KeyNotFound, "rotate");
    let key_id = id("present");
    kms.create_key(&key_id).await.unwrap();
    let (_, mut wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    wrapped.key.version = 9;
    assert_kind(
        kms.unwrap(&wrapped, &context("t1")).await,
        ErrorKind::KeyNotFound,
        "version",
    );
}

/// Creating a key twice is invalid input, and leaves the key as it was.
pub async fn create_twice_fails(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("twice");
    kms.create_key(&key_id).await.unwrap();
    let (key, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert_kind(
        kms.create_key(&key_id).await,
        ErrorKind::InvalidInput,
        "second create",
    );
    assert_eq!(kms.unwrap(&wrapped, &context("t1")).await.unwrap(), key);
}

/// After rotation new wraps use the new version and old wraps still unwrap.
pub async fn rotation_keeps_old_wraps_readable(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("rotate");
    kms.create_key(&key_id).await.unwrap();
    let (old_key, old) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    let v2 = kms.rotate(&key_id).await.unwrap();
    assert_eq!(v2, 2);
    let (new_key, new) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert_eq!(new.key.version, 2);
    assert_eq!(old.key.version, 1);
    assert_eq!(kms.unwrap(&old, &context("t1")).await.unwrap(), old_key);
    assert_eq!(kms.unwrap(&new, &context("t1")).await.unwrap(), new_key);
    assert_eq!(
        kms.key_versions(&key_id).await.unwrap(),
        vec![
            KeyVersion {
                version: 1,
                state: KeyState::Enabled
            },
            KeyVersion {
                version: 2,
                state: KeyState::Current
            },
        ]
    );
}

/// Rewrap moves a wrapped key to the current version, same data key.
pub async fn rewrap_moves_to_current(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("rewrap");
    kms.create_key(&key_id).await.unwrap();
    let (key, old) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    kms.rotate(&key_id).await.unwrap();
    kms.rotate(&key_id).await.unwrap();
    let moved = kms.rewrap(&old, &context("t1")).await.unwrap();
    assert_eq!(moved.key.version, 3);
    assert_eq!(kms.unwrap(&moved, &context("t1")).await.unwrap(), key);
    assert_kind(
        kms.rewrap(&old, &context("t2")).await,
        ErrorKind::Decrypt,
        "rewrap context",
    );
}

/// A retired version no longer unwraps; the current version cannot be retired.
pub async fn retired_version_is_refused(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("retire");
    kms.create_key(&key_id).await.unwrap();
    let (_, old) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert_kind(
        kms.retire(&key_id, 1).await,
        ErrorKind::InvalidInput,
        "retire current",
    );
    kms.rotate(&key_id).await.unwrap();
    let (new_key, new) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    kms.retire(&key_id, 1).await.unwrap();
    assert_kind(
        kms.unwrap(&old, &context("t1")).await,
        ErrorKind::KeyRetired,
        "retired",
    );
    assert_kind(
        kms.rewrap(&old, &context("t1")).await,
        ErrorKind::KeyRetired,
        "rewrap retired",
    );
    assert_eq!(kms.unwrap(&new, &context("t1")).await.unwrap(), new_key);
    assert_eq!(
        kms.key_versions(&key_id).await.unwrap()[0].state,
        KeyState::Retired
    );
    assert_kind(
        kms.retire(&key_id, 7).await,
        ErrorKind::KeyNotFound,
        "retire unknown",
    );
}

/// A destroyed key unwraps nothing ever again, every version of it, after a reopen too; the
/// id is not created afresh; destroying twice is no error; an unknown key is not found.
pub async fn destroyed_key_never_unwraps_again(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("destroy");
    let other = id("destroy-other");
    kms.create_key(&key_id).await.unwrap();
    kms.create_key(&other).await.unwrap();
    let (_, first) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    kms.rotate(&key_id).await.unwrap();
    let (_, second) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    let (kept, kept_wrapped) = kms.generate_data_key(&other, &context("t1")).await.unwrap();
    kms.destroy(&key_id).await.unwrap();
    kms.destroy(&key_id).await.unwrap();
    let gone = |r: crate::Result<DataKey>, what: &str| match r {
        Err(e) if matches!(e.kind(), ErrorKind::KeyDestroyed | ErrorKind::KeyNotFound) => {}
        other => panic!("{what}: {other:?}"),
    };
    gone(kms.unwrap(&first, &context("t1")).await, "first version");
    gone(kms.unwrap(&second, &context("t1")).await, "second version");
    assert!(kms.wrap(&key_id, &kept, &context("t1")).await.is_err());
    assert!(kms.rotate(&key_id).await.is_err());
    let kms = harness.reopen(kms).await;
    gone(kms.unwrap(&first, &context("t1")).await, "after a reopen");
    if let Ok(created) = kms.create_key(&key_id).await {
        // An adapter without tombstones may let the id be made again: never with the old
        // material.
        let _ = created;
        gone(
            kms.unwrap(&second, &context("t1")).await,
            "a key made again",
        );
    }
    assert_eq!(
        kms.unwrap(&kept_wrapped, &context("t1")).await.unwrap(),
        kept,
        "another key is untouched"
    );
    assert_kind(
        kms.destroy(&id("never-made")).await,
        ErrorKind::KeyNotFound,
        "destroy unknown",
    );
}

/// Any altered byte or length of a wrapped key fails opaquely.
pub async fn tampered_wrapped_key_fails(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("tamper");
    kms.create_key(&key_id).await.unwrap();
    let (_, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    for i in 0..wrapped.ciphertext.len() {
        let mut bad = wrapped.clone();
        bad.ciphertext[i] ^= 0x01;
        assert_kind(
            kms.unwrap(&bad, &context("t1")).await,
            ErrorKind::Decrypt,
            "flipped",
        );
    }
    let mut short = wrapped.clone();
    short.ciphertext.pop();
    assert_kind(
        kms.unwrap(&short, &context("t1")).await,
        ErrorKind::Decrypt,
        "truncated",
    );
    let mut long = wrapped.clone();
    long.ciphertext.push(0);
    assert_kind(
        kms.unwrap(&long, &context("t1")).await,
        ErrorKind::Decrypt,
        "extended",
    );
}

/// The stored form of a wrapped key round-trips; garbage is `Corrupt`.
pub async fn wrapped_key_bytes_round_trip(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("bytes");
    kms.create_key(&key_id).await.unwrap();
    let (key, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    let stored = wrapped.to_bytes();
    let read = WrappedKey::from_bytes(&stored).unwrap();
    assert_eq!(read, wrapped);
    assert_eq!(kms.unwrap(&read, &context("t1")).await.unwrap(), key);
    for cut in 0..stored.len() {
        assert_kind(
            WrappedKey::from_bytes(&stored[..cut]),
            ErrorKind::Corrupt,
            "cut",
        );
    }
}

/// Keys, versions and states survive a reopen.
pub async fn keys_survive_reopen(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("persist");
    kms.create_key(&key_id).await.unwrap();
    let (k1, w1) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    kms.rotate(&key_id).await.unwrap();
    let (k2, w2) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    kms.rotate(&key_id).await.unwrap();
    kms.retire(&key_id, 2).await.unwrap();
    let kms = harness.reopen(kms).await;
    assert_eq!(kms.unwrap(&w1, &context("t1")).await.unwrap(), k1);
    assert_kind(
        kms.unwrap(&w2, &context("t1")).await,
        ErrorKind::KeyRetired,
        "retired",
    );
    let _ = k2;
    let (_, w3) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert_eq!(w3.key.version, 3);
}

/// During an outage calls fail with a temporary error; after it, they work again.
pub async fn transient_failures_are_retryable(harness: &dyn KmsHarness) {
    let kms = harness.open().await;
    let key_id = id("outage");
    kms.create_key(&key_id).await.unwrap();
    let (key, wrapped) = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap();
    assert!(
        harness.simulate_outage(true).await,
        "this harness cannot simulate an outage: stamp the suite with `; no_outage`"
    );
    let err = kms.unwrap(&wrapped, &context("t1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    let err = kms
        .generate_data_key(&key_id, &context("t1"))
        .await
        .unwrap_err();
    assert!(err.is_temporary());
    harness.simulate_outage(false).await;
    assert_eq!(kms.unwrap(&wrapped, &context("t1")).await.unwrap(), key);
}

/// A KMS that notes which of its methods ran, so a test can check that a wrapper around it
/// forwards each method to the method of the same name (see [`wrapper_forwards_every_method`]).
/// It overrides the provided `generate_data_key` and `rewrap` as an HSM would, so a wrapper that
/// falls back on the trait's defaults shows up as `wrap` or `unwrap` calls.
#[derive(Debug, Default)]
pub struct ProbeKms {
    inner: crate::InsecureFixedKms,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl ProbeKms {
    fn note(&self, name: &'static str) {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name);
    }

    /// The methods that ran since the last call, in order.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(
            &mut *self
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Kms for ProbeKms {
    async fn create_key(&self, key_id: &KeyId) -> crate::Result<crate::KeyRef> {
        self.note("create_key");
        self.inner.create_key(key_id).await
    }
    async fn key_versions(&self, key_id: &KeyId) -> crate::Result<Vec<KeyVersion>> {
        self.note("key_versions");
        self.inner.key_versions(key_id).await
    }
    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> crate::Result<WrappedKey> {
        self.note("wrap");
        self.inner.wrap(key_id, key, context).await
    }
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> crate::Result<DataKey> {
        self.note("unwrap");
        self.inner.unwrap(wrapped, context).await
    }
    async fn rotate(&self, key_id: &KeyId) -> crate::Result<u32> {
        self.note("rotate");
        self.inner.rotate(key_id).await
    }
    async fn retire(&self, key_id: &KeyId, version: u32) -> crate::Result<()> {
        self.note("retire");
        self.inner.retire(key_id, version).await
    }
    async fn destroy(&self, key_id: &KeyId) -> crate::Result<()> {
        self.note("destroy");
        self.inner.destroy(key_id).await
    }
    async fn generate_data_key(
        &self,
        key_id: &KeyId,
        context: &EncryptionContext,
    ) -> crate::Result<(DataKey, WrappedKey)> {
        self.note("generate_data_key");
        self.inner.generate_data_key(key_id, context).await
    }
    async fn rewrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> crate::Result<WrappedKey> {
        self.note("rewrap");
        self.inner.rewrap(wrapped, context).await
    }
    async fn recovery_kit(
        &self,
        recipients: &[crate::archive::ArchiveRecipient],
        signer: &crate::SigningKey,
        created: u64,
    ) -> crate::Result<Option<Vec<u8>>> {
        self.note("recovery_kit");
        self.inner.recovery_kit(recipients, signer, created).await
    }
}

/// A KMS wrapper (`Arc`, a metrics counter, a cache) forwards every method of [`Kms`] to the same
/// method of the KMS it wraps, the provided ones included: an adapter's own `rewrap` (an HSM
/// re-encrypting inside the token) must not be replaced by the default's unwrap-then-wrap.
/// `wrap` builds the wrapper around the KMS it is given.
pub async fn wrapper_forwards_every_method(wrap: &dyn Fn(Arc<dyn Kms>) -> Arc<dyn Kms>) {
    let probe = Arc::new(ProbeKms::default());
    let kms = wrap(probe.clone());
    let key_id = id("forwarded");
    let ctx = context("t1");
    kms.create_key(&key_id).await.unwrap();
    assert_eq!(probe.take(), ["create_key"]);
    kms.key_versions(&key_id).await.unwrap();
    assert_eq!(probe.take(), ["key_versions"]);
    let (key, wrapped) = kms.generate_data_key(&key_id, &ctx).await.unwrap();
    assert_eq!(probe.take(), ["generate_data_key"], "generate_data_key");
    kms.wrap(&key_id, &key, &ctx).await.unwrap();
    assert_eq!(probe.take(), ["wrap"]);
    assert_eq!(kms.unwrap(&wrapped, &ctx).await.unwrap(), key);
    assert_eq!(probe.take(), ["unwrap"]);
    assert_eq!(kms.rotate(&key_id).await.unwrap(), 2);
    assert_eq!(probe.take(), ["rotate"]);
    let moved = kms.rewrap(&wrapped, &ctx).await.unwrap();
    assert_eq!(moved.key.version, 2);
    assert_eq!(probe.take(), ["rewrap"], "rewrap");
    kms.retire(&key_id, 1).await.unwrap();
    assert_eq!(probe.take(), ["retire"]);
    kms.destroy(&key_id).await.unwrap();
    assert_eq!(probe.take(), ["destroy"]);
    let recipient = crate::archive::ArchiveIdentity::generate().recipient();
    kms.recovery_kit(&[recipient], &crate::SigningKey::generate(), 0)
        .await
        .unwrap();
    assert_eq!(probe.take(), ["recovery_kit"]);
}
