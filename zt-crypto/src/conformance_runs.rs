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
