//! `InsecureFixedKms`: a KMS for tests whose keys are derived from a fixed seed.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::keyset::KeySet;
use crate::kms::{EncryptionContext, KeyId, KeyRef, KeyVersion, Kms, WrappedKey};

/// A [`Kms`] for tests. **It provides NO SECURITY**: every key version is derived from a seed in
/// the source (or given by the test), so anyone can recompute it. It exists so tests and known-
/// answer vectors are reproducible; it is only built with the `testing` feature.
///
/// It wraps exactly as [`LocalKms`](crate::LocalKms) does (AES-256-KWP under a KEK per version and
/// context), and it can simulate an outage: [`set_unavailable`](Self::set_unavailable) makes every
/// call fail with a temporary [`Unavailable`](crate::ErrorKind::Unavailable) error.
#[derive(Default)]
pub struct InsecureFixedKms {
    seed: [u8; KEY_LEN],
    keys: Mutex<KeySet>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for InsecureFixedKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InsecureFixedKms(<provides no security>)")
    }
}

impl InsecureFixedKms {
    /// A KMS with the built-in seed.
    pub fn new() -> Self {
        Self::with_seed([0x5a; KEY_LEN])
    }

    /// A KMS whose keys derive from `seed`.
    pub fn with_seed(seed: [u8; KEY_LEN]) -> Self {
        InsecureFixedKms {
            seed,
            keys: Mutex::default(),
            unavailable: false.into(),
        }
    }

    /// Simulates an outage (`true`) or the recovery from one (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    fn material(&self, id: &KeyId, version: u32) -> Result<DataKey> {
        let mut out = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(Some(b"zt-insecure-fixed-kms"), &self.seed)
            .expand_multi_info(&[id.as_str().as_bytes(), &version.to_be_bytes()], &mut out)
            .map_err(|_| Error::invalid("HKDF output length"))?;
        Ok(DataKey::from_bytes(out))
    }

    fn keys<T>(&self, f: impl FnOnce(&mut KeySet) -> Result<T>) -> Result<T> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable("simulated KMS outage", None));
        }
        f(&mut self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl Kms for InsecureFixedKms {
    async fn create_key(&self, key_id: &KeyId) -> Result<KeyRef> {
        let material = self.material(key_id, 1)?;
        self.keys(|keys| keys.create(key_id, material))
    }

    async fn key_versions(&self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        self.keys(|keys| keys.versions(key_id))
    }

    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        self.keys(|keys| keys.wrap(key_id, key, context))
    }

    async fn unwrap(&self, wrapped: &WrappedKey, context: &EncryptionContext) -> Result<DataKey> {
        self.keys(|keys| keys.unwrap(wrapped, context))
    }

    async fn rotate(&self, key_id: &KeyId) -> Result<u32> {
        self.keys(|keys| {
            let next = keys
                .versions(key_id)?
                .last()
                .map_or(1, |v| v.version.saturating_add(1));
            keys.rotate(key_id, self.material(key_id, next)?)
        })
    }

    async fn retire(&self, key_id: &KeyId, version: u32) -> Result<()> {
        self.keys(|keys| keys.retire(key_id, version))
    }

    async fn destroy(&self, key_id: &KeyId) -> Result<()> {
        self.keys(|keys| keys.destroy(key_id))
    }
}

/// Record name → (bytes, version).
type Records = std::collections::HashMap<String, (Vec<u8>, u64)>;

/// [`KeyRecords`](crate::KeyRecords) in memory, for tests. Clones share the records.
#[derive(Debug, Default, Clone)]
pub struct MemoryKeyRecords {
    records: std::sync::Arc<Mutex<Records>>,
}

impl MemoryKeyRecords {
    /// Every record name, for tests that look at what is stored.
    pub fn names(&self) -> Vec<String> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = records.keys().cloned().collect();
        names.sort();
        names
    }

    /// An independent copy of every record (as a backup of them would be): later changes to
    /// either do not reach the other.
    pub fn clone_deep(&self) -> Self {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        MemoryKeyRecords {
            records: std::sync::Arc::new(Mutex::new(records.clone())),
        }
    }

    /// The raw bytes of one record.
    pub fn raw(&self, name: &str) -> Option<Vec<u8>> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.get(name).map(|(bytes, _)| bytes.clone())
    }
}

#[async_trait]
impl crate::KeyRecords for MemoryKeyRecords {
    async fn get(&self, name: &str) -> Result<Option<(Vec<u8>, u64)>> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(name).cloned())
    }

    async fn put(&self, name: &str, value: &[u8], expected: Option<u64>) -> Result<bool> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let current = records.get(name).map(|(_, v)| *v);
        if current != expected {
            return Ok(false);
        }
        let next = current.map_or(1, |v| v + 1);
        records.insert(name.to_string(), (value.to_vec(), next));
        Ok(true)
    }
}
