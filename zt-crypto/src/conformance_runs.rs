//! The KMS conformance suite against this crate's adapters.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::conformance::KmsHarness;
use crate::{InsecureFixedKms, KdfParams, Kms, LocalKms};

/// Shares one `InsecureFixedKms`; "reopening" keeps the instance, since its keys live in memory.
#[derive(Default)]
struct FixedHarness(Arc<InsecureFixedKms>);

#[async_trait]
impl KmsHarness for FixedHarness {
    async fn open(&self) -> Arc<dyn Kms> {
        self.0.clone()
    }

    async fn simulate_outage(&self, on: bool) -> bool {
        self.0.set_unavailable(on);
        true
    }
}

/// A key file in a temporary directory.
struct LocalHarness {
    dir: tempfile::TempDir,
}

impl LocalHarness {
    fn new() -> Self {
        LocalHarness {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl KmsHarness for LocalHarness {
    async fn open(&self) -> Arc<dyn Kms> {
        let path = self.dir.path().join("kms.json");
        let pass = SecretString::from("conformance passphrase");
        let kms = if path.exists() {
            LocalKms::open(&path, &pass).await
        } else {
            LocalKms::create(&path, &pass, KdfParams::insecure_for_tests()).await
        };
        Arc::new(kms.expect("local KMS"))
    }
}

crate::kms_conformance_tests!(insecure_fixed, FixedHarness::default());
// A key file has no outage to simulate.
crate::kms_conformance_tests!(local, LocalHarness::new(); no_outage);

/// A PKCS#11 token named by `ZT_TEST_PKCS11_MODULE`, `ZT_TEST_PKCS11_TOKEN` and
/// `ZT_TEST_PKCS11_PIN` (set by `scripts/softhsm-init.sh`). Each harness labels its keys with a
/// prefix of its own, so tests and runs sharing the token never meet.
#[cfg(feature = "kms-pkcs11")]
struct Pkcs11Harness {
    config: crate::Pkcs11Config,
}

#[cfg(feature = "kms-pkcs11")]
impl Pkcs11Harness {
    fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let prefix = format!(
            "zt-test-{}-{:016x}:",
            std::process::id(),
            rand::random::<u64>()
        );
        Some(Pkcs11Harness {
            config: crate::Pkcs11Config {
                module: var("ZT_TEST_PKCS11_MODULE")?.into(),
                token_label: var("ZT_TEST_PKCS11_TOKEN")?,
                pin: SecretString::from(var("ZT_TEST_PKCS11_PIN")?),
                label_prefix: prefix,
            },
        })
    }
}

#[cfg(feature = "kms-pkcs11")]
#[async_trait]
impl KmsHarness for Pkcs11Harness {
    async fn open(&self) -> Arc<dyn Kms> {
        Arc::new(
            crate::Pkcs11Kms::connect(self.config.clone())
                .await
                .expect("PKCS#11 token"),
        )
    }
}

#[cfg(feature = "kms-pkcs11")]
// A token cannot be taken away mid-test here.
crate::kms_conformance_tests!(pkcs11, optional: Pkcs11Harness::from_env(); no_outage);

#[tokio::test]
async fn a_shared_kms_forwards_every_method() {
    crate::conformance::wrapper_forwards_every_method(&|kms| Arc::new(kms) as Arc<dyn Kms>).await;
}

/// The probe itself tells a wrapper that falls back on the provided methods from one that
/// forwards them, so the check above can fail.
#[tokio::test]
#[should_panic(expected = "generate_data_key")]
async fn a_wrapper_that_drops_a_provided_method_is_caught() {
    struct Dropping(Arc<dyn Kms>);
    #[async_trait]
    impl Kms for Dropping {
        async fn create_key(&self, k: &crate::KeyId) -> crate::Result<crate::KeyRef> {
            self.0.create_key(k).await
        }
        async fn key_versions(&self, k: &crate::KeyId) -> crate::Result<Vec<crate::KeyVersion>> {
            self.0.key_versions(k).await
        }
        async fn wrap(
            &self,
            k: &crate::KeyId,
            key: &crate::DataKey,
            c: &crate::EncryptionContext,
        ) -> crate::Result<crate::WrappedKey> {
            self.0.wrap(k, key, c).await
        }
        async fn unwrap(
            &self,
            w: &crate::WrappedKey,
            c: &crate::EncryptionContext,
        ) -> crate::Result<crate::DataKey> {
            self.0.unwrap(w, c).await
        }
        async fn rotate(&self, k: &crate::KeyId) -> crate::Result<u32> {
            self.0.rotate(k).await
        }
        async fn retire(&self, k: &crate::KeyId, v: u32) -> crate::Result<()> {
            self.0.retire(k, v).await
        }
        async fn destroy(&self, k: &crate::KeyId) -> crate::Result<()> {
            self.0.destroy(k).await
        }
    }
    crate::conformance::wrapper_forwards_every_method(&|kms| {
        Arc::new(Dropping(kms)) as Arc<dyn Kms>
    })
    .await;
}
