//! The conformance suite against the backends of this crate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::conformance::{Harness, MemoryHarness};
use crate::{ErrorKind, KvStore};

crate::conformance_tests!(memory, MemoryHarness::default());

/// Opens a sled store in a temporary directory that lives as long as the harness.
#[cfg(feature = "sled")]
pub(crate) struct SledHarness {
    dir: tempfile::TempDir,
}

#[cfg(feature = "sled")]
impl SledHarness {
    pub(crate) fn new() -> Self {
        SledHarness {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[cfg(feature = "sled")]
#[async_trait]
impl Harness for SledHarness {
    async fn open(&self) -> Arc<dyn KvStore> {
        let config = crate::SledConfig::new(self.dir.path()).cache_capacity(32 * 1024 * 1024);
        // The previous handle's last references may take a moment to let go of the file lock.
        for _ in 0..100 {
            match crate::SledStore::open(config.clone()).await {
                Ok(store) => return Arc::new(store),
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("opening sled: {e}"),
            }
        }
        panic!("the sled directory stayed locked");
    }
}

#[cfg(feature = "sled")]
crate::conformance_tests!(sled, SledHarness::new());
