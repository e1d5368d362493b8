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
crate::kms_conformance_tests!(local, LocalHarness::new());

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
crate::kms_conformance_tests!(pkcs11, optional: Pkcs11Harness::from_env());
