//! The `Kms` trait: key-encryption keys that never leave their KMS.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::key::DataKey;

/// The name of a key: 1 to 128 bytes of ASCII letters, digits and `_ - . : /`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The longest key id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates `id`.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for an empty, long or odd id.
    pub fn new(id: &str) -> Result<Self> {
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/')
            });
        if valid {
            Ok(KeyId(id.to_string()))
        } else {
            Err(Error::invalid(format!(
                "key id {:?} must be 1 to {} bytes of ASCII letters, digits and _ - . : /",
                id.chars().take(80).collect::<String>(),
                Self::MAX_LEN
            )))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

/// One version of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// The key.
    pub id: KeyId,
    /// The version, from 1.
    pub version: u32,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.id, self.version)
    }
}

/// What a wrapped key is for. It must be given again, equal, to unwrap: a data key wrapped for one
/// tenant or purpose cannot be unwrapped for another.
///
/// ```
/// use zt_crypto::EncryptionContext;
///
/// let a = EncryptionContext::new().with("tenant", "t1").with("purpose", "channel");
/// let b = EncryptionContext::new().with("purpose", "channel").with("tenant", "t1");
/// assert_eq!(a, b); // order does not matter
/// assert_eq!(a.canonical_bytes(), b.canonical_bytes());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The pairs, sorted by key.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// An unambiguous encoding: for each pair in key order, the key and the value, each as a
    /// 32-bit big-endian length and its bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            for part in [k, v] {
                // Lengths beyond u32 cannot occur for strings a caller holds in memory here; cap
                // rather than panic.
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
}

/// A data key wrapped by a KMS key version. Safe to store anywhere.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KMS key version that wrapped it.
    pub key: KeyRef,
    /// The wrapped bytes, in the adapter's format.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WrappedKey({}, {} bytes)",
            self.key,
            self.ciphertext.len()
        )
    }
}

const WRAPPED_MAGIC: &[u8; 4] = b"ZTW1";

impl WrappedKey {
    /// The stored form: `"ZTW1"`, key id length (1 byte), key id, version (u32 BE), ciphertext
    /// length (u16 BE), ciphertext.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.key.id.as_str().as_bytes();
        let mut out = Vec::with_capacity(4 + 1 + id.len() + 4 + 2 + self.ciphertext.len());
        out.extend_from_slice(WRAPPED_MAGIC);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.key.version.to_be_bytes());
        // Wrapped keys are tens of bytes; anything longer is refused when wrapping.
        out.extend_from_slice(&(self.ciphertext.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads the stored form.
    ///
    /// # Errors
    /// [`Corrupt`](crate::ErrorKind::Corrupt) when the bytes are not a wrapped key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt("not a wrapped key".into());
        let rest = bytes
            .strip_prefix(WRAPPED_MAGIC.as_slice())
            .ok_or_else(corrupt)?;
        let (&id_len, rest) = rest.split_first().ok_or_else(corrupt)?;
        let id = rest.get(..usize::from(id_len)).ok_or_else(corrupt)?;
        let id = std::str::from_utf8(id).map_err(|_| corrupt())?;
        let id = KeyId::new(id).map_err(|_| corrupt())?;
        let rest = &rest[usize::from(id_len)..];
        let (version, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
        if rest.len() != usize::from(u16::from_be_bytes(*len)) {
            return Err(corrupt());
        }
        Ok(WrappedKey {
            key: KeyRef {
                id,
                version: u32::from_be_bytes(*version),
            },
            ciphertext: rest.to_vec(),
        })
    }
}

/// The state of one key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// The version new wraps use. Exactly one version of a key is current.
    Current,
    /// An older version: it still unwraps, and rewrap moves its data keys to the current one.
    Enabled,
    /// A retired version: it no longer unwraps.
    Retired,
}

/// One version of a key and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyVersion {
    /// The version number, from 1.
    pub version: u32,
    /// Its state.
    pub state: KeyState,
}

/// A key management service: it holds key-encryption keys and wraps and unwraps data keys with
/// them, bound to an [`EncryptionContext`]. Key material never leaves it.
///
/// Adapters: [`LocalKms`](crate::LocalKms) (a passphrase-sealed key file), and
/// [`InsecureFixedKms`](crate::InsecureFixedKms) for tests. Every adapter runs the shared
/// [`conformance`](crate::conformance) suite.
///
/// # Contract
/// - `wrap` uses the key's current version; `unwrap` uses the version named in the wrapped key.
/// - `unwrap` with another context, another key, or an altered ciphertext fails with the opaque
///   [`Decrypt`](crate::ErrorKind::Decrypt) error.
/// - `rotate` adds a version that becomes current; older versions keep unwrapping until
///   `retire`d, after which unwrapping fails with [`KeyRetired`](crate::ErrorKind::KeyRetired).
///   The current version cannot be retired.
/// - `destroy` removes every version's material for good (crypto-shredding everything wrapped
///   under the key); retiring only disables a version.
/// - Failures that a retry may cure are [`Unavailable`](crate::ErrorKind::Unavailable), whose
///   `is_temporary()` is true.
#[async_trait]
pub trait Kms: Send + Sync + 'static {
    /// Creates key `key_id` with a first version.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) if it exists already.
    async fn create_key(&self, key_id: &KeyId) -> Result<KeyRef>;

    /// The versions of `key_id` with their states, oldest first.
    async fn key_versions(&self, key_id: &KeyId) -> Result<Vec<KeyVersion>>;

    /// Wraps `key` under the current version of `key_id`, bound to `context`.
    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey>;

    /// Unwraps a key wrapped under `context`.
    async fn unwrap(&self, wrapped: &WrappedKey, context: &EncryptionContext) -> Result<DataKey>;

    /// Adds a new current version of `key_id`; returns its number.
    async fn rotate(&self, key_id: &KeyId) -> Result<u32>;

    /// Retires `version` of `key_id`: it will no longer unwrap.
    async fn retire(&self, key_id: &KeyId, version: u32) -> Result<()>;

    /// Destroys `key_id`, every version of it, for good: its material is gone from the KMS, so
    /// nothing wrapped under it ever unwraps again, wherever a copy of the wrapped key is kept.
    /// Idempotent. Afterwards every call naming the key fails with
    /// [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed) where the adapter keeps a tombstone (so
    /// the id is never created again) and [`KeyNotFound`](crate::ErrorKind::KeyNotFound) where it
    /// cannot.
    ///
    /// # Errors
    /// [`KeyNotFound`](crate::ErrorKind::KeyNotFound) for a key that never existed.
    async fn destroy(&self, key_id: &KeyId) -> Result<()>;

    /// A fresh data key and its wrapped form.
    async fn generate_data_key(
        &self,
        key_id: &KeyId,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey)> {
        let key = DataKey::generate();
        let wrapped = self.wrap(key_id, &key, context).await?;
        Ok((key, wrapped))
    }

    /// Re-wraps a wrapped key under the current version of its key.
    async fn rewrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        let key = self.unwrap(wrapped, context).await?;
        self.wrap(&wrapped.key.id, &key, context).await
    }

    /// A **recovery kit**: this KMS's key material as it stands (destroyed keys are absent),
    /// sealed inside the KMS to `recipients` as a [sealed archive](crate::archive) of kind
    /// [`RECOVERY_KIT_KIND`](crate::archive::RECOVERY_KIT_KIND) signed by `signer`, for the day
    /// the KMS itself is lost (a forgotten passphrase, a dead disk). `None` from a KMS whose keys
    /// cannot leave it (an HSM: its own key backup is the recovery path); that is the default.
    ///
    /// Material sealed here outlives a later `destroy` in every copy of the kit: keep only the
    /// newest kit (zt's backups replace it after each backup and each destruction).
    async fn recovery_kit(
        &self,
        recipients: &[crate::archive::ArchiveRecipient],
        signer: &crate::SigningKey,
        created: u64,
    ) -> Result<Option<Vec<u8>>> {
        let _ = (recipients, signer, created);
        Ok(None)
    }
}

/// A shared KMS is a KMS. Every method forwards, the provided ones too, so an adapter's own
/// `generate_data_key` or `rewrap` (an HSM that re-encrypts inside the token) is what runs;
/// [`conformance::wrapper_forwards_every_method`](crate::conformance::wrapper_forwards_every_method)
/// checks it.
#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<T: Kms + ?Sized> Kms for std::sync::Arc<T> {
    async fn create_key(&self, key_id: &KeyId) -> Result<KeyRef> {
        (**self).create_key(key_id).await
    }
    async fn key_versions(&self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        (**self).key_versions(key_id).await
    }
    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        (**self).wrap(key_id, key, context).await
    }
    async fn unwrap(&self, wrapped: &WrappedKey, context: &EncryptionContext) -> Result<DataKey> {
        (**self).unwrap(wrapped, context).await
    }
    async fn rotate(&self, key_id: &KeyId) -> Result<u32> {
        (**self).rotate(key_id).await
    }
    async fn retire(&self, key_id: &KeyId, version: u32) -> Result<()> {
        (**self).retire(key_id, version).await
    }
    async fn destroy(&self, key_id: &KeyId) -> Result<()> {
        (**self).destroy(key_id).await
    }
    async fn generate_data_key(
        &self,
        key_id: &KeyId,
        context: &EncryptionContext,
    ) -> Result<(DataKey, WrappedKey)> {
        (**self).generate_data_key(key_id, context).await
    }
    async fn rewrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        (**self).rewrap(wrapped, context).await
    }
    async fn recovery_kit(
        &self,
        recipients: &[crate::archive::ArchiveRecipient],
        signer: &crate::SigningKey,
        created: u64,
    ) -> Result<Option<Vec<u8>>> {
        (**self).recovery_kit(recipients, signer, created).await
    }
}
