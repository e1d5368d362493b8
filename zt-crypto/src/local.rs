//! `LocalKms`: key-encryption keys in a file sealed by a passphrase.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use std::collections::BTreeMap;

use crate::archive::{
    ArchiveIdentity, ArchiveReader, ArchiveRecipient, ArchiveWriter, RECOVERY_KIT_KIND,
};
use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::keyset::KeySet;
use crate::kms::{EncryptionContext, KeyId, KeyRef, KeyVersion, Kms, WrappedKey};
use crate::signing::{SigningKey, VerifyingKey};

const FILE_FORMAT: &str = "zt-local-kms/1";
const SALT_LEN: usize = 16;

/// The argon2id cost of deriving the file key from the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Cheap parameters for tests: fast, and far too weak for a real passphrase.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            memory_kib: Params::MIN_M_COST,
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// The file on disk (no secret in the clear).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    kdf: KdfParams,
    salt: String,
    /// Proves the passphrase without decrypting: HKDF(file key, "check").
    check: String,
    nonce: String,
    /// The key set, sealed with XChaCha20-Poly1305 under HKDF(file key, "seal").
    sealed: String,
    /// SHA-256 of every other field: tells an altered or damaged file from a wrong passphrase.
    /// (Not a defence: whoever alters the file can recompute it, and then only gets "wrong
    /// passphrase".)
    digest: String,
}

impl KeyFile {
    fn compute_digest(&self) -> String {
        use sha2::Digest as _;
        let mut hasher = Sha256::new();
        hasher.update(self.associated_data());
        hasher.update(b"|");
        hasher.update(self.sealed.as_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        hex::encode(digest)
    }

    /// What the seal authenticates besides the key set: every other field.
    fn associated_data(&self) -> Vec<u8> {
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.format,
            self.kdf.memory_kib,
            self.kdf.iterations,
            self.kdf.parallelism,
            self.salt,
            self.check,
            self.nonce
        )
        .into_bytes()
    }
}

/// The keys derived from the passphrase.
struct FileKeys {
    check: [u8; KEY_LEN],
    seal: Zeroizing<[u8; KEY_LEN]>,
}

fn file_keys(passphrase: &SecretString, salt: &[u8], kdf: KdfParams) -> Result<FileKeys> {
    let params = Params::new(
        kdf.memory_kib,
        kdf.iterations,
        kdf.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| Error::invalid(format!("argon2 parameters: {e}")))?;
    let mut root = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, root.as_mut())
        .map_err(|e| Error::invalid(format!("argon2: {e}")))?;
    let hkdf = Hkdf::<Sha256>::new(None, root.as_ref());
    let mut check = [0u8; KEY_LEN];
    let mut seal = Zeroizing::new([0u8; KEY_LEN]);
    hkdf.expand(b"zt-local-kms check", &mut check)
        .and_then(|()| hkdf.expand(b"zt-local-kms seal", seal.as_mut()))
        .map_err(|_| Error::invalid("HKDF output length"))?;
    Ok(FileKeys { check, seal })
}

struct State {
    keys: KeySet,
    file_keys: FileKeys,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
}

/// A [`Kms`] whose key-encryption keys live in one file, sealed by a passphrase.
///
/// - The file key is derived from the passphrase with argon2id, with the cost stored in the file.
/// - The key versions are sealed with XChaCha20-Poly1305 under that file key.
/// - Data keys are wrapped with AES-256-KWP (RFC 5649) under a key-encryption key derived for the
///   version and the [`EncryptionContext`].
///
/// The file is created with mode 0600 and rewritten atomically (temporary file, fsync, rename,
/// fsync of the directory) on every change.
/// - A wrong passphrase is [`WrongPassphrase`](crate::ErrorKind::WrongPassphrase).
/// - A truncated, altered or unknown file is [`Corrupt`](crate::ErrorKind::Corrupt).
///
/// Keep the file out of backups of the data it protects: it *is* the key.
///
/// ```
/// use secrecy::SecretString;
/// use zt_crypto::{EncryptionContext, KdfParams, KeyId, Kms, LocalKms};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("kms.json");
/// let pass = SecretString::from("correct horse battery staple");
/// let kms = LocalKms::create(&path, &pass, KdfParams::insecure_for_tests()).await?;
/// let tenant_key = KeyId::new("tenant-keys")?;
/// kms.create_key(&tenant_key).await?;
/// let context = EncryptionContext::new().with("tenant", "t1");
/// let (key, wrapped) = kms.generate_data_key(&tenant_key, &context).await?;
///
/// let reopened = LocalKms::open(&path, &pass).await?;
/// assert_eq!(reopened.unwrap(&wrapped, &context).await?, key);
/// # Ok::<(), zt_crypto::Error>(())
/// # }).unwrap();
/// ```
pub struct LocalKms {
    path: PathBuf,
    state: RwLock<State>,
}

impl fmt::Debug for LocalKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKms")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend("KMS task failed", e))?
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::backend(format!("cannot {what} {}", path.display()), e)
}

impl LocalKms {
    /// Creates a new, empty key file at `path` (which must not exist).
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) if the file exists or the parameters are
    /// invalid; [`Backend`](crate::ErrorKind::Backend) for I/O failures.
    pub async fn create(path: &Path, passphrase: &SecretString, kdf: KdfParams) -> Result<Self> {
        if path.exists() {
            return Err(Error::invalid(format!("{} exists already", path.display())));
        }
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let passphrase = passphrase.clone();
        let file_keys = blocking(move || file_keys(&passphrase, &salt, kdf)).await?;
        let kms = LocalKms {
            path: path.to_path_buf(),
            state: RwLock::new(State {
                keys: KeySet::default(),
                file_keys,
                kdf,
                salt,
            }),
        };
        kms.persist().await?;
        Ok(kms)
    }

    /// Opens the key file at `path` with `passphrase`.
    ///
    /// # Errors
    /// - [`WrongPassphrase`](crate::ErrorKind::WrongPassphrase) when the passphrase is wrong.
    /// - [`Corrupt`](crate::ErrorKind::Corrupt) when the file is truncated, altered, or not a key
    ///   file.
    /// - [`Backend`](crate::ErrorKind::Backend) when it cannot be read.
    pub async fn open(path: &Path, passphrase: &SecretString) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io_error("read", path, e))?;
        let corrupt = |why: &str| Error::Corrupt(format!("{}: {why}", path.display()));
        let file: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|_| corrupt("not a zt key file, or truncated"))?;
        if file.format != FILE_FORMAT {
            return Err(corrupt("unknown key file format"));
        }
        if file.compute_digest() != file.digest {
            return Err(corrupt("the file was altered or damaged"));
        }
        let salt: [u8; SALT_LEN] = hex::decode(&file.salt)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("bad salt"))?;
        let check = hex::decode(&file.check).map_err(|_| corrupt("bad check value"))?;
        let nonce: [u8; 24] = hex::decode(&file.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| corrupt("bad nonce"))?;
        let sealed = hex::decode(&file.sealed).map_err(|_| corrupt("bad sealed keys"))?;
        let kdf = file.kdf;
        let passphrase = passphrase.clone();
        let file_keys = blocking(move || file_keys(&passphrase, &salt, kdf)).await?;
        if !bool::from(file_keys.check.as_slice().ct_eq(&check)) {
            return Err(Error::WrongPassphrase(path.display().to_string()));
        }
        let cipher = XChaCha20Poly1305::new(&(*file_keys.seal).into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &sealed,
                        aad: &file.associated_data(),
                    },
                )
                .map_err(|_| corrupt("the sealed keys were altered"))?,
        );
        let keys = KeySet::decode(&plain)?;
        Ok(LocalKms {
            path: path.to_path_buf(),
            state: RwLock::new(State {
                keys,
                file_keys,
                kdf,
                salt,
            }),
        })
    }

    /// Seals the current state and replaces the file atomically.
    async fn persist(&self) -> Result<()> {
        let (bytes, path) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            let mut nonce = [0u8; 24];
            rand::rng().fill_bytes(&mut nonce);
            let mut file = KeyFile {
                format: FILE_FORMAT.into(),
                kdf: state.kdf,
                salt: hex::encode(state.salt),
                check: hex::encode(state.file_keys.check),
                nonce: hex::encode(nonce),
                sealed: String::new(),
                digest: String::new(),
            };
            let cipher = XChaCha20Poly1305::new(&(*state.file_keys.seal).into());
            let sealed = cipher
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &state.keys.encode(),
                        aad: &file.associated_data(),
                    },
                )
                .map_err(|_| Error::invalid("the key set is too large to seal"))?;
            file.sealed = hex::encode(sealed);
            file.digest = file.compute_digest();
            let bytes = serde_json::to_vec_pretty(&file)
                .map_err(|e| Error::invalid(format!("key file encoding: {e}")))?;
            (bytes, self.path.clone())
        };
        blocking(move || write_private_atomically(&path, &bytes)).await
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> Result<T>) -> Result<T> {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn change<T>(&self, f: impl FnOnce(&mut KeySet) -> Result<T>) -> Result<T> {
        let result = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            f(&mut state.keys)?
        };
        self.persist().await?;
        Ok(result)
    }
}

/// Writes `bytes` to `path` through a 0600 temporary file, fsync, rename and directory fsync.
fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} is not a file path", path.display())))?;
    let mut temporary_name = name.to_os_string();
    temporary_name.push(".tmp");
    let temporary = dir.join(temporary_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .map_err(|e| io_error("create", &temporary, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("write", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| io_error("replace", path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync", dir, e))
}

#[async_trait]
impl Kms for LocalKms {
    async fn create_key(&self, key_id: &KeyId) -> Result<KeyRef> {
        self.change(|keys| keys.create(key_id, DataKey::generate()))
            .await
    }

    async fn key_versions(&self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        self.with_state(|s| s.keys.versions(key_id))
    }

    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        self.with_state(|s| s.keys.wrap(key_id, key, context))
    }

    async fn unwrap(&self, wrapped: &WrappedKey, context: &EncryptionContext) -> Result<DataKey> {
        self.with_state(|s| s.keys.unwrap(wrapped, context))
    }

    async fn rotate(&self, key_id: &KeyId) -> Result<u32> {
        self.change(|keys| keys.rotate(key_id, DataKey::generate()))
            .await
    }

    async fn retire(&self, key_id: &KeyId, version: u32) -> Result<()> {
        self.change(|keys| keys.retire(key_id, version)).await
    }

    /// Drops the key's material from memory and rewrites the key file without it (a copy of
    /// the file taken before still holds it: keep none, as with any key file).
    async fn destroy(&self, key_id: &KeyId) -> Result<()> {
        self.change(|keys| keys.destroy(key_id)).await
    }

    /// The key set (every key's versions and their states; destroyed keys as tombstones, with
    /// no material) in one part, `kms/keys`. [`LocalKms::recover`] writes a key file from it.
    async fn recovery_kit(
        &self,
        recipients: &[ArchiveRecipient],
        signer: &SigningKey,
        created: u64,
    ) -> Result<Option<Vec<u8>>> {
        let keys = self.with_state(|s| Ok(s.keys.encode()))?;
        let mut writer = ArchiveWriter::new(Vec::new(), recipients, RECOVERY_KIT_KIND, created)?;
        writer.append_bytes(KIT_PART, &keys)?;
        let (kit, _) = writer.finish(BTreeMap::new(), signer)?;
        Ok(Some(kit))
    }
}

/// The part of a recovery kit that holds the key set.
const KIT_PART: &str = "kms/keys";

impl LocalKms {
    /// Writes a new key file at `path` (which must not exist), sealed by `passphrase`, holding
    /// the keys of a [recovery kit](Kms::recovery_kit) opened with `identity` and signed by
    /// `signer`: the way back when the old passphrase or key file is lost.
    ///
    /// # Errors
    /// [`Decrypt`](crate::ErrorKind::Decrypt) when `identity` does not open the kit;
    /// [`Tampered`](crate::ErrorKind::Tampered) when it does not verify or is not a kit;
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when `path` exists.
    pub async fn recover(
        kit: &[u8],
        identity: &ArchiveIdentity,
        signer: &VerifyingKey,
        path: &Path,
        passphrase: &SecretString,
        kdf: KdfParams,
    ) -> Result<Self> {
        let mut reader = ArchiveReader::open(kit, std::slice::from_ref(identity))?;
        let mut keys = None;
        while let Some(mut part) = reader.next_part()? {
            if part.name() != KIT_PART || keys.is_some() || part.size() > KIT_LIMIT {
                return Err(Error::tampered("this is not a KMS recovery kit"));
            }
            let mut bytes = Zeroizing::new(Vec::new());
            std::io::Read::read_to_end(&mut part, &mut bytes)
                .map_err(|e| Error::tampered(format!("the recovery kit: {e}")))?;
            keys = Some(bytes);
        }
        let manifest = reader.finish(signer)?;
        let keys = match keys {
            Some(keys) if manifest.kind == RECOVERY_KIT_KIND => KeySet::decode(&keys)?,
            _ => return Err(Error::tampered("this is not a KMS recovery kit")),
        };
        let kms = LocalKms::create(path, passphrase, kdf).await?;
        kms.change(|set| {
            *set = keys;
            Ok(())
        })
        .await?;
        Ok(kms)
    }
}

/// The largest key set a kit may hold (far above any real one).
const KIT_LIMIT: u64 = 64 << 20;
