//! The server's identity: one Ed25519 key per deployment, created on first start and kept in
//! the store. It signs the audit checkpoints and is the key clients pin.
//!
//! The seed is stored in [`SERVER_IDENTITY`]; through the deployment's `EncryptingStore` it is
//! sealed under a keyring scope key like every value, so it is wrapped by the KMS at rest.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use zt_core::identity::ServerIdentity;
//! use zt_storage::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let first = ServerIdentity::load_or_create(&store).await?;
//! let again = ServerIdentity::load_or_create(&store).await?;
//! assert!(first.was_created() && !again.was_created());
//! assert_eq!(first.fingerprint(), again.fingerprint());
//! assert!(first.fingerprint().starts_with("SHA256:"));
//! # Ok::<_, zt_core::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;

use zt_crypto::{SigningKey, VerifyingKey};
use zt_storage::{Batch, ErrorKind, KvStore, Namespace};

use crate::error::{Error, Result};

/// Where the identity key's seed lives (key [`SERVER_IDENTITY_KEY`]).
pub const SERVER_IDENTITY: &str = "identity.server";
/// The key of the identity's seed in [`SERVER_IDENTITY`].
pub const SERVER_IDENTITY_KEY: &[u8] = b"signing";
const KEY: &[u8] = SERVER_IDENTITY_KEY;

/// The server's signing key.
pub struct ServerIdentity {
    key: SigningKey,
    created: bool,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// The identity in `store`, created (from the OS CSPRNG) if there is none. Two processes
    /// starting at once agree on one key: the write is conditional, and the loser reads the
    /// winner's.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stored seed that is not 32 bytes; the store's errors.
    pub async fn load_or_create(store: &dyn KvStore) -> Result<Self> {
        let namespace = Namespace::new(SERVER_IDENTITY)?;
        loop {
            if let Some(entry) = store.get(&namespace, KEY).await? {
                let seed: [u8; 32] = entry.value.as_slice().try_into().map_err(|_| {
                    Error::InvalidInput("the stored server identity key is damaged".into())
                })?;
                return Ok(ServerIdentity {
                    key: SigningKey::from_seed(&seed),
                    created: false,
                });
            }
            let key = SigningKey::generate();
            let mut batch = Batch::new();
            batch.put_if_absent(&namespace, KEY, &key.to_seed()[..]);
            match store.commit(batch).await {
                Ok(_) => return Ok(ServerIdentity { key, created: true }),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether this call created the key (the deployment's first start), which the caller
    /// records as [`ServerIdentityCreated`](crate::AuditEventKind::ServerIdentityCreated).
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A copy of the signing key, for a checkpoint signer.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.key.to_seed())
    }

    /// `SHA256:` and the unpadded base64 of SHA-256 over the public key, as clients show it
    /// when they pin it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key.verifying_key())
    }
}

/// `SHA256:` and the unpadded base64 of SHA-256 over `key`: how a server identity is shown to
/// people, by the server and by clients that pin it.
///
/// ```
/// let key = zt_crypto::SigningKey::from_seed(&[7; 32]).verifying_key();
/// let shown = zt_core::identity::fingerprint(&key);
/// assert!(shown.starts_with("SHA256:") && shown.len() == 7 + 43);
/// ```
pub fn fingerprint(key: &VerifyingKey) -> String {
    key.fingerprint()
}
