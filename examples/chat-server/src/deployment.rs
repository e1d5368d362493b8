//! A deployment's data directory opened with its keys: the sled store, the local KMS that wraps
//! every key, the keyring, the encrypted system store and the server identity.
//!
//! ```text
//! <data dir>/            mode 0700
//!   store/               the sled store (every value sealed, see below)
//!   kms.json             the LocalKms key file, sealed by the KMS passphrase (argon2id)
//! <data dir>.kms-passphrase   the passphrase, unless given otherwise (mode 0600)
//! ```
//!
//! Values reach the store only through an [`EncryptingStore`]: each is sealed under a scope key of
//! the keyring, whose tenant keys the KMS wraps. The passphrase is what unlocks the KMS file. It
//! comes from `ZT_KMS_PASSPHRASE`, else from a file. On the very first start, when neither the
//! passphrase file nor the KMS exists, a random passphrase is written to that file, and the log
//! says where. Keep it apart from the data directory and its backups: the data cannot be read
//! without it, and anyone holding both can read everything.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::TryRng as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use zt_core::identity::ServerIdentity;
use zt_core::{AuditLogs, AuditSink, EventBus, SystemClock};
use zt_crypto::{
    ErrorKind as CryptoErrorKind, KdfParams, KeyId, Keyring, KeyringConfig, KeyringEvent, Kms,
    LocalKms,
};
use zt_storage::{Batch, EncryptingStore, KvKeyRecords, KvStore, Namespace, SledConfig, SledStore};

use crate::metrics::{CountingKms, KmsStats};
use zt_crypto::channel::StaticKeypair;

/// The store directory inside the data directory.
pub const STORE_DIR: &str = "store";
/// The KMS key file inside the data directory.
pub const KMS_FILE: &str = "kms.json";
/// The store's page cache in the offline tools, in bytes (the server keeps sled's default).
pub const TOOL_CACHE: u64 = 32 << 20;
/// The KMS key that wraps the tenant keys.
pub const KMS_KEY: &str = "tenants";
/// The keyring tenant of deployment-wide data (the server identity, the audit trail): zt-chat's.
pub use zt_chat::SYSTEM_TENANT;
/// The shortest passphrase accepted from an operator.
pub const MIN_PASSPHRASE_LEN: usize = 16;

/// Where the KMS passphrase comes from.
#[derive(Clone)]
pub enum Passphrase {
    /// Given directly (from `ZT_KMS_PASSPHRASE`).
    Given(SecretString),
    /// Read from this file: its content, without a final line break.
    File(PathBuf),
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Passphrase::Given(_) => f.write_str("Given(<redacted>)"),
            Passphrase::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Passphrase::Given(a), Passphrase::Given(b)) => a.expose_secret() == b.expose_secret(),
            (Passphrase::File(a), Passphrase::File(b)) => a == b,
            _ => false,
        }
    }
}

impl Passphrase {
    /// The passphrase file used when none is configured: beside the data directory, named after
    /// it (`./zt-data` → `./zt-data.kms-passphrase`), so it is not inside a copy of the directory.
    pub fn default_file(data_dir: &Path) -> PathBuf {
        beside(data_dir, "kms-passphrase")
    }
}

/// The file `DIR.<suffix>` next to the data directory `DIR` (secrets kept out of its backups).
pub fn beside(data_dir: &Path, suffix: &str) -> PathBuf {
    let name = data_dir
        .file_name()
        .map_or_else(|| "zt-data".into(), |n| n.to_string_lossy().into_owned());
    data_dir.with_file_name(format!("{name}.{suffix}"))
}

/// Whether opening may create a new deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the directory, the KMS, the passphrase file and the identity if missing (`serve`).
    CreateIfMissing,
    /// Only open what exists.
    Existing,
    /// Only open what exists, and change none of it: the store and the key file are copied into
    /// a private temporary directory (refused while a server holds the store), which is opened
    /// instead and removed when the deployment is dropped. What the offline tools use (`audit
    /// verify`, `identity show`): opening a sled store writes to it (recovery, snapshots, zt's
    /// marker), and evidence must not change by being checked.
    ReadOnly,
}

/// Why a deployment cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The data directory does not exist (and may not be created).
    #[error("{0} does not exist")]
    NoDataDir(PathBuf),
    /// The directory exists but holds no deployment.
    #[error("{0} is not a zt data directory (it has no {KMS_FILE} and no {STORE_DIR}/)")]
    NotADeployment(PathBuf),
    /// The KMS exists but its passphrase is nowhere to be found.
    #[error(
        "the KMS passphrase is missing: set ZT_KMS_PASSPHRASE or put it in {file} \
         (--kms-passphrase-file)"
    )]
    MissingPassphrase {
        /// The file that was looked for.
        file: PathBuf,
    },
    /// The passphrase given is unusable.
    #[error("the KMS passphrase is unusable: {0}")]
    BadPassphrase(String),
    /// The passphrase does not open the KMS file.
    #[error("the KMS passphrase does not open {0}")]
    WrongPassphrase(PathBuf),
    /// A file or directory could not be read or written.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The KMS failed.
    #[error("KMS: {0}")]
    Kms(#[from] zt_crypto::Error),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] zt_storage::Error),
    /// The server identity could not be loaded or created.
    #[error("server identity: {0}")]
    Identity(#[from] zt_core::Error),
    /// A stored key is damaged, or no randomness was available to make one.
    #[error("damaged deployment: {0}")]
    Damaged(String),
    /// A running server holds the store.
    #[error("{0} is in use by a running server; stop it first")]
    InUse(PathBuf),
}

/// A private copy of a deployment's store and key file, removed when dropped.
#[derive(Debug)]
struct Snapshot {
    dir: PathBuf,
}

impl Snapshot {
    /// Copies `data_dir`'s store and key file into a new directory (mode 0700) under the
    /// system's temporary directory, holding the store's lock meanwhile so a running server is
    /// refused rather than copied mid-write.
    fn of(data_dir: &Path) -> Result<Self, DeploymentError> {
        let store = data_dir.join(STORE_DIR);
        let lock_file = store.join("db");
        let lock = std::fs::File::open(&lock_file).map_err(io("open", &lock_file))?;
        match lock.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(DeploymentError::InUse(store)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(DeploymentError::Io {
                    what: "lock",
                    path: lock_file,
                    source: e,
                });
            }
        }
        let mut name = [0u8; 8];
        rand::rngs::SysRng
            .try_fill_bytes(&mut name)
            .map_err(|e| DeploymentError::Damaged(format!("no randomness: {e}")))?;
        let dir = std::env::temp_dir().join(format!("zt-verify-{}", hex::encode(name)));
        create_private_dir(&dir)?;
        let snapshot = Snapshot { dir };
        copy_tree(&store, &snapshot.dir.join(STORE_DIR))?;
        let kms = data_dir.join(KMS_FILE);
        std::fs::copy(&kms, snapshot.dir.join(KMS_FILE)).map_err(io("copy", &kms))?;
        drop(lock);
        Ok(snapshot)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove the store copy");
        }
    }
}

/// Copies the directory `from` to `to` (regular files and directories only).
fn copy_tree(from: &Path, to: &Path) -> Result<(), DeploymentError> {
    create_private_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(io("read", from))? {
        let entry = entry.map_err(io("read", from))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io("read", &path))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &target).map_err(io("copy", &path))?;
        } else {
            return Err(DeploymentError::NotADeployment(path));
        }
    }
    Ok(())
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DeploymentError {
    let path = path.to_path_buf();
    move |source| DeploymentError::Io { what, path, source }
}

/// An opened deployment. Close it with [`Deployment::close`] so the store is flushed.
pub struct Deployment {
    sled: SledStore,
    kms: Arc<dyn Kms>,
    keyring: Arc<Keyring>,
    system: Arc<dyn KvStore>,
    identity: ServerIdentity,
    channel_key: StaticKeypair,
    kms_stats: Arc<KmsStats>,
    keyring_events: Option<mpsc::UnboundedReceiver<KeyringEvent>>,
    generated_passphrase: Option<PathBuf>,
    /// The private copy opened instead of the directory ([`OpenMode::ReadOnly`]); removed after
    /// the store closes.
    snapshot: Option<Snapshot>,
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("store", &self.sled.path())
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Deployment {
    /// Opens the deployment in `data_dir`, unlocking its KMS with `passphrase`.
    ///
    /// The store is opened first, so a directory in use by a running server is reported before
    /// anything is created.
    ///
    /// # Errors
    /// See [`DeploymentError`]; nothing is created when opening fails in
    /// [`OpenMode::Existing`].
    pub async fn open(
        data_dir: &Path,
        passphrase: &Passphrase,
        mode: OpenMode,
    ) -> Result<Self, DeploymentError> {
        let mut kms_file = data_dir.join(KMS_FILE);
        let mut store_dir = data_dir.join(STORE_DIR);
        let mut snapshot = None;
        match mode {
            OpenMode::CreateIfMissing => create_private_dir(data_dir)?,
            OpenMode::Existing | OpenMode::ReadOnly => {
                if !data_dir.is_dir() {
                    return Err(DeploymentError::NoDataDir(data_dir.to_path_buf()));
                }
                if !kms_file.is_file() || !store_dir.is_dir() {
                    return Err(DeploymentError::NotADeployment(data_dir.to_path_buf()));
                }
                if mode == OpenMode::ReadOnly {
                    let copy = Snapshot::of(data_dir)?;
                    kms_file = copy.dir.join(KMS_FILE);
                    store_dir = copy.dir.join(STORE_DIR);
                    snapshot = Some(copy);
                }
            }
        }
        let config = match mode {
            OpenMode::CreateIfMissing => SledConfig::new(&store_dir),
            // The offline tools read (or write) once through the store: a small cache keeps
            // their memory low whatever the store's size.
            OpenMode::Existing | OpenMode::ReadOnly => {
                SledConfig::new(&store_dir).cache_capacity(TOOL_CACHE)
            }
        };
        let sled = SledStore::open(config).await?;
        match Self::open_keys(sled.clone(), &kms_file, passphrase, mode).await {
            Ok(mut deployment) => {
                deployment.snapshot = snapshot;
                Ok(deployment)
            }
            Err(e) => {
                if let Err(close) = sled.close().await {
                    tracing::warn!(error = %close, "closing the store after a failed open");
                }
                Err(e)
            }
        }
    }

    async fn open_keys(
        sled: SledStore,
        kms_file: &Path,
        passphrase: &Passphrase,
        mode: OpenMode,
    ) -> Result<Self, DeploymentError> {
        let kms_exists = kms_file.is_file();
        let (secret, generated_passphrase) =
            read_passphrase(passphrase, !kms_exists && mode == OpenMode::CreateIfMissing)?;
        let kms = if kms_exists {
            LocalKms::open(kms_file, &secret).await.map_err(|e| {
                if e.kind() == CryptoErrorKind::WrongPassphrase {
                    DeploymentError::WrongPassphrase(kms_file.to_path_buf())
                } else {
                    DeploymentError::Kms(e)
                }
            })?
        } else {
            LocalKms::create(kms_file, &secret, KdfParams::default()).await?
        };
        let kms_key = KeyId::new(KMS_KEY)?;
        match kms.key_versions(&kms_key).await {
            Ok(versions) if !versions.is_empty() => {}
            // A new KMS, or one whose first key was not written before a crash.
            Ok(_) => {
                kms.create_key(&kms_key).await?;
            }
            Err(e) if e.kind() == CryptoErrorKind::KeyNotFound => {
                kms.create_key(&kms_key).await?;
            }
            Err(e) => return Err(e.into()),
        }
        let (events, keyring_events) = mpsc::unbounded_channel();
        let kms_stats = Arc::new(KmsStats::default());
        let kms: Arc<dyn Kms> = Arc::new(CountingKms::new(kms, Arc::clone(&kms_stats)));
        let keyring = Arc::new(
            Keyring::new(
                Arc::clone(&kms),
                Arc::new(KvKeyRecords::standard(sled.clone())?),
                kms_key,
                // A workspace wipe destroys the workspace's own KMS key.
                KeyringConfig::default().kms_key_per_tenant(true),
            )
            .with_events(Arc::new(move |event| {
                // The receiver is gone only once the server stops; then nobody records anyway.
                let _ = events.send(event);
            })),
        );
        let system: Arc<dyn KvStore> = Arc::new(EncryptingStore::new(
            sled.clone(),
            Arc::clone(&keyring),
            SYSTEM_TENANT,
        ));
        let identity = ServerIdentity::load_or_create(&*system).await?;
        let channel_key = load_or_create_channel_key(&*system).await?;
        Ok(Deployment {
            sled,
            kms,
            keyring,
            system,
            identity,
            channel_key,
            kms_stats,
            keyring_events: Some(keyring_events),
            generated_passphrase,
            snapshot: None,
        })
    }

    /// What the chat service needs from this deployment: the store below encryption and the
    /// keyring over it, with the given audit sink, audit logs and bus.
    pub fn chat_deps(
        &self,
        audit: Arc<dyn AuditSink>,
        audit_logs: Arc<dyn AuditLogs>,
        bus: Arc<dyn EventBus>,
    ) -> zt_chat::Deps {
        zt_chat::Deps::with_keyring(
            Arc::new(self.sled.clone()),
            Arc::clone(&self.keyring),
            audit,
            audit_logs,
            bus,
            Arc::new(SystemClock),
        )
    }

    /// The encrypted store of deployment-wide data (tenant [`SYSTEM_TENANT`]).
    pub fn system_store(&self) -> Arc<dyn KvStore> {
        Arc::clone(&self.system)
    }

    /// The store below the encryption: what it returns is sealed bytes (and blinded keys). For
    /// tooling that moves or inspects ciphertext, never for reading data.
    pub fn sealed_store(&self) -> &SledStore {
        &self.sled
    }

    /// The KMS (the local key file), for what wraps keys outside the keyring (backups).
    pub fn kms(&self) -> Arc<dyn Kms> {
        Arc::clone(&self.kms)
    }

    /// The keyring, for tenant stores.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The server identity key.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// The static key of the realtime channel (Noise XK), which the identity key signs.
    pub fn channel_key(&self) -> &StaticKeypair {
        &self.channel_key
    }

    /// How many calls the keyring made to the KMS, and how many failed.
    pub fn kms_stats(&self) -> Arc<KmsStats> {
        Arc::clone(&self.kms_stats)
    }

    /// The passphrase file written by this open, on a first start that generated one.
    pub fn generated_passphrase(&self) -> Option<&Path> {
        self.generated_passphrase.as_deref()
    }

    /// The keyring's events (KMS outage, recovery, key destroyed), for the audit trail. `None`
    /// after the first call.
    pub fn take_keyring_events(&mut self) -> Option<mpsc::UnboundedReceiver<KeyringEvent>> {
        self.keyring_events.take()
    }

    /// Flushes and closes the store.
    ///
    /// # Errors
    /// The store's.
    pub async fn close(self) -> Result<(), DeploymentError> {
        self.sled.close().await?;
        Ok(())
    }
}

/// The namespace of the realtime channel's static key, in the system store (sealed at rest).
pub const CHANNEL_KEY: &str = "server.channel_key";

/// The realtime channel's static key in `store`, created on first use. Two processes starting at
/// once agree on one key: the write is conditional and the loser reads the winner's.
async fn load_or_create_channel_key(store: &dyn KvStore) -> Result<StaticKeypair, DeploymentError> {
    let namespace = Namespace::new(CHANNEL_KEY)?;
    loop {
        if let Some(entry) = store.get(&namespace, b"static").await? {
            let (private, public) = entry.value.split_at(entry.value.len().min(32));
            return StaticKeypair::from_parts(private, public)
                .map_err(|e| DeploymentError::Damaged(format!("the channel key: {e}")));
        }
        let key = StaticKeypair::generate()
            .map_err(|e| DeploymentError::Damaged(format!("the channel key: {e}")))?;
        let mut value = zeroize::Zeroizing::new(key.private().to_vec());
        value.extend_from_slice(&key.public());
        let mut batch = Batch::new();
        batch.put_if_absent(&namespace, b"static", &value);
        match store.commit(batch).await {
            Ok(_) => return Ok(key),
            Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates `dir` (and its parents) if missing; a new directory gets mode 0700.
fn create_private_dir(dir: &Path) -> Result<(), DeploymentError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io("create", dir))
}

/// The passphrase, and the file it was generated into when `may_generate` and none exists.
pub(crate) fn read_passphrase(
    source: &Passphrase,
    may_generate: bool,
) -> Result<(SecretString, Option<PathBuf>), DeploymentError> {
    let path = match source {
        Passphrase::Given(secret) => return Ok((checked(secret.clone())?, None)),
        Passphrase::File(path) => path,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            warn_if_readable_by_others(path);
            let text = String::from_utf8(bytes).map_err(|_| {
                DeploymentError::BadPassphrase(format!("{} is not UTF-8 text", path.display()))
            })?;
            let line = text.strip_suffix('\n').unwrap_or(&text);
            let line = line.strip_suffix('\r').unwrap_or(line);
            Ok((checked(SecretString::from(line))?, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_generate => {
            let secret = generate_secret_file(path)?;
            Ok((secret, Some(path.clone())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(DeploymentError::MissingPassphrase { file: path.clone() })
        }
        Err(e) => Err(io("read", path)(e)),
    }
}

fn checked(secret: SecretString) -> Result<SecretString, DeploymentError> {
    let len = secret.expose_secret().chars().count();
    if len < MIN_PASSPHRASE_LEN {
        return Err(DeploymentError::BadPassphrase(format!(
            "it has {len} characters; at least {MIN_PASSPHRASE_LEN} are required"
        )));
    }
    Ok(secret)
}

/// Writes 32 bytes from the OS CSPRNG, hex-encoded, to a new file of mode 0600, and returns them
/// (the KMS passphrase, the first owner's password).
pub(crate) fn generate_secret_file(path: &Path) -> Result<SecretString, DeploymentError> {
    let mut random = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut random[..])
        .map_err(|e| DeploymentError::BadPassphrase(format!("no randomness: {e}")))?;
    let text = zeroize::Zeroizing::new(hex::encode(&random[..]));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io("create", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io("write", path))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The new name is durable once its directory is.
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", parent))?;
    }
    Ok(SecretString::from(text.as_str()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "the KMS passphrase file is readable by other users; make it mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_passphrase_file_is_beside_the_data_directory() {
        assert_eq!(
            Passphrase::default_file(Path::new("./zt-data")),
            PathBuf::from("./zt-data.kms-passphrase")
        );
        assert_eq!(
            Passphrase::default_file(Path::new("/srv/zt/")),
            PathBuf::from("/srv/zt.kms-passphrase")
        );
    }

    #[test]
    fn short_passphrases_are_refused_and_never_printed() {
        let err = checked(SecretString::from("hunter2")).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let given = Passphrase::Given(SecretString::from("correct horse battery staple"));
        assert!(!format!("{given:?}").contains("horse"));
    }
}
