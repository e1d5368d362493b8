//! Backups of the whole deployment (`manage_backups`): sealed archives of the store as stored,
//! a backup key the KMS wraps, recovery material kept outside the app, restore through either.
//!
//! # What a backup is
//! A [sealed archive](zt_crypto::archive) of kind `backup` holding every row of the
//! deployment's store **as stored**: values stay sealed under the workspaces' keys, which the
//! KMS wraps. The archive is sealed to two kinds of recipient:
//!
//! - the **backup key**: an age identity whose secret is sealed under a data key the KMS wraps
//!   (KMS key [`BACKUP_KMS_KEY`]); the app can open its own backups while the KMS answers;
//! - every **recovery recipient** of [`BackupSettings::recovery`]: the public half of an identity
//!   generated offline, whose secret never enters the app.
//!
//! Its manifest is signed with the server's identity key ([`BackupSettings::signer`]).
//!
//! # Two ways back
//! - **Through the KMS**: the backup key opens the archive, the KMS unwraps the workspaces'
//!   keys: restore with the same KMS (the key file and its passphrase, or the HSM).
//! - **Through the recovery identity**, when the KMS is lost: the identity opens the archive
//!   and the **recovery kit** ([`RECOVERY_KIT_FILE`]), the KMS's key material sealed to the
//!   recovery recipients, from which a new KMS is made
//!   ([`LocalKms::recover`](zt_crypto::LocalKms::recover)). The kit is replaced after every
//!   backup and after every wipe ([`Chat::run_wipes`](crate::Chat::run_wipes)): a wiped
//!   workspace's key is in no kit written after the wipe.
//!
//! So a wipe reaches old backups by both paths: their rows are sealed under keys the KMS no
//! longer has and the current kit does not hold. A copy of an older kit kept elsewhere still
//! holds them: keep only the current one (the threat model says so).
//!
//! # The backup directory
//! ```text
//! <dir>/keys.json                 the backup keys: public recipient, KMS-wrapped secret
//! <dir>/<id>.zt-backup            an archive
//! <dir>/<id>.json                 its catalog entry (no secret)
//! <dir>/recovery-kit.zt-kit       the current KMS recovery kit
//! ```
//!
//! # Consistency and cost
//! The store's [`export`](zt_storage::KvStore::export) reads every row as of one moment:
//! commits wait while it reads (seconds for a store of a gigabyte; see docs/PERFORMANCE.md).
//! Memory stays bounded: rows go out in parts of at most [`PART_BYTES`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zt_core::{Actor, AuditEvent, AuditEventKind, Outcome, TenantId, Timestamp};
use zt_crypto::archive::{
    ArchiveIdentity, ArchiveReader, ArchiveRecipient, ArchiveWriter, Manifest, verify_archive,
};
use zt_crypto::{
    DataKey, EncryptionContext, KeyId, KeyRef, Kms, SigningKey, VerifyingKey, WrappedKey,
};
use zt_storage::{Batch, KvStore, Namespace};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};

/// The archive kind of a backup.
pub const BACKUP_KIND: &str = "backup";
/// The KMS key that wraps the backup keys.
pub const BACKUP_KMS_KEY: &str = "backups";
/// The file of backup keys in the backup directory.
pub const KEYS_FILE: &str = "keys.json";
/// The current KMS recovery kit in the backup directory.
pub const RECOVERY_KIT_FILE: &str = "recovery-kit.zt-kit";
/// The suffix of an archive.
pub const ARCHIVE_SUFFIX: &str = ".zt-backup";
/// The most bytes of rows one part of a backup holds.
pub const PART_BYTES: usize = 4 << 20;
/// The largest part a restore reads: a part is closed once it passes [`PART_BYTES`], so it
/// holds at most that and one more row of the largest size a store takes.
pub const MAX_PART_BYTES: usize =
    PART_BYTES + zt_storage::MAX_VALUE_LEN + zt_storage::MAX_KEY_LEN + 1024;
/// The row format inside a backup's parts.
pub const ROW_FORMAT: &str = "zt-backup-rows/1";

const KEYS_FORMAT: &str = "zt-backup-keys/1";

/// How a deployment backs itself up.
#[derive(Clone)]
pub struct BackupSettings {
    /// The backup directory (created, mode 0700, if missing).
    pub dir: PathBuf,
    /// The recovery recipients: public halves of identities kept offline. At least one.
    pub recovery: Vec<ArchiveRecipient>,
    /// The KMS that wraps the backup keys and writes the recovery kit (the deployment's).
    pub kms: Arc<dyn Kms>,
    /// The key that signs every backup (the server's identity key).
    pub signer: Arc<SigningKey>,
    /// The only workspace whose admins (with `manage_backups`) may manage the deployment's
    /// backups: a backup holds every workspace, so no other workspace's admin may.
    pub operators: TenantId,
}

impl fmt::Debug for BackupSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupSettings")
            .field("dir", &self.dir)
            .field("recovery", &self.recovery)
            .field("signer", &self.signer.verifying_key())
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

/// A backup as its catalog entry describes it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupInfo {
    /// Its id (`bk-<seconds>-<hex>`), also its file name.
    pub id: String,
    /// When it was taken.
    pub created: Timestamp,
    /// The archive's size in bytes.
    pub size: u64,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
    /// How many rows it holds.
    pub rows: u64,
    /// The backup key it is sealed to.
    pub backup_key: String,
    /// The recovery recipients it is sealed to.
    pub recovery: Vec<ArchiveRecipient>,
    /// The signer's public key, base64.
    pub signer: String,
}

impl BackupInfo {
    /// The signer's public key.
    ///
    /// # Errors
    /// [`Error::Tampered`] when the entry's key is not one.
    pub fn signer_key(&self) -> Result<VerifyingKey> {
        BASE64
            .decode(&self.signer)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or_else(|| Error::Tampered(format!("backup {}: its signer is not a key", self.id)))
    }
}

/// One backup key as kept in [`KEYS_FILE`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupKeyRecord {
    id: String,
    recipient: ArchiveRecipient,
    /// The data key, wrapped by the KMS ([`WrappedKey::to_bytes`]), base64.
    wrapped: String,
    /// The identity's secret sealed under that data key, base64.
    sealed: String,
    created: Timestamp,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    format: String,
    /// Oldest first; the last is current.
    keys: Vec<BackupKeyRecord>,
}

/// The backup keys of a backup directory.
pub struct BackupKeys {
    path: PathBuf,
    kms: Arc<dyn Kms>,
    file: KeysFile,
}

impl fmt::Debug for BackupKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.file.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("BackupKeys")
            .field("keys", &ids)
            .finish_non_exhaustive()
    }
}

fn crypto(what: &str, e: zt_crypto::Error) -> Error {
    use zt_crypto::ErrorKind as K;
    match e.kind() {
        K::Tampered => Error::Tampered(e.to_string()),
        K::Decrypt => Error::Forbidden {
            reasons: vec![format!("{what}: none of the keys given opens it")],
        },
        K::Unavailable => Error::Unavailable {
            message: format!("{what}: the KMS"),
            source: Some(Box::new(e)),
        },
        K::InvalidInput => Error::invalid("backup", format!("{what}: {e}")),
        _ => Error::internal(what, e),
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("{what} {}", path.display()), e)
}

fn key_context(id: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("purpose", "backup-key")
        .with("id", id)
}

/// Writes `bytes` to `path` through a temporary file (mode 0600), synced, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = private_file(&temporary)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| io("replacing", path, e))?;
    sync_dir(path)
}

fn private_file(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| io("creating", path, e))
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io("creating", dir, e))
}

impl BackupKeys {
    /// The keys of the backup directory `dir` (none yet when it has no key file), opened with
    /// `kms`.
    ///
    /// # Errors
    /// [`Error::Internal`] for an unreadable or damaged key file.
    pub fn open(dir: &Path, kms: Arc<dyn Kms>) -> Result<Self> {
        let path = dir.join(KEYS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeysFile = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::damaged(format!("{}: {e}", path.display())))?;
                if file.format != KEYS_FORMAT {
                    return Err(Error::damaged(format!(
                        "{}: unknown format",
                        path.display()
                    )));
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeysFile {
                format: KEYS_FORMAT.into(),
                keys: Vec::new(),
            },
            Err(e) => return Err(io("reading", &path, e)),
        };
        Ok(BackupKeys { path, kms, file })
    }

    /// The current key's id and recipient, if there is one.
    pub fn current(&self) -> Option<(&str, &ArchiveRecipient)> {
        self.file.keys.last().map(|k| (k.id.as_str(), &k.recipient))
    }

    /// Every key's id, oldest first.
    pub fn ids(&self) -> Vec<String> {
        self.file.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Makes a new current key (older ones stay, so their backups still open) and saves the
    /// file. Returns its id.
    ///
    /// # Errors
    /// The KMS's; [`Error::Internal`] when the file cannot be written.
    pub async fn rotate(&mut self, now: Timestamp) -> Result<String> {
        let kms_key = KeyId::new(BACKUP_KMS_KEY).map_err(|e| crypto("backup keys", e))?;
        if self.kms.key_versions(&kms_key).await.is_err() {
            self.kms
                .create_key(&kms_key)
                .await
                .map_err(|e| crypto("the backup KMS key", e))?;
        }
        let mut random = [0u8; 6];
        rand::fill(&mut random);
        let id = format!("key-{}-{}", now.unix_millis() / 1000, hex::encode(random));
        let identity = ArchiveIdentity::generate();
        let (data_key, wrapped) = self
            .kms
            .generate_data_key(&kms_key, &key_context(&id))
            .await
            .map_err(|e| crypto("a backup key", e))?;
        let secret = identity.to_secret_string();
        let sealed = seal_secret(&data_key, &id, secret_bytes(&secret))?;
        self.file.keys.push(BackupKeyRecord {
            id: id.clone(),
            recipient: identity.recipient(),
            wrapped: BASE64.encode(wrapped.to_bytes()),
            sealed: BASE64.encode(sealed),
            created: now,
        });
        let bytes = serde_json::to_vec_pretty(&self.file)
            .map_err(|e| Error::internal("encoding backup keys", e))?;
        if let Some(dir) = self.path.parent() {
            create_dir(dir)?;
        }
        write_atomically(&self.path, &bytes)?;
        Ok(id)
    }

    /// The identity of key `id`, unwrapped through the KMS.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown key; the KMS's (a destroyed or retired KMS key, an
    /// outage).
    pub async fn identity(&self, id: &str) -> Result<ArchiveIdentity> {
        let record = self
            .file
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::NotFound(format!("backup key {id}")))?;
        let damaged = || Error::damaged(format!("backup key {id} is damaged"));
        let wrapped = BASE64.decode(&record.wrapped).map_err(|_| damaged())?;
        let wrapped = WrappedKey::from_bytes(&wrapped).map_err(|_| damaged())?;
        let data_key = self
            .kms
            .unwrap(&wrapped, &key_context(id))
            .await
            .map_err(|e| crypto("the backup key", e))?;
        let sealed = BASE64.decode(&record.sealed).map_err(|_| damaged())?;
        let secret =
            zt_crypto::envelope::open(&data_key, &sealed, id.as_bytes()).map_err(|_| damaged())?;
        let secret = String::from_utf8(secret).map_err(|_| damaged())?;
        ArchiveIdentity::parse(&secrecy::SecretString::from(secret)).map_err(|_| damaged())
    }
}

fn secret_bytes(secret: &secrecy::SecretString) -> &[u8] {
    secrecy::ExposeSecret::expose_secret(secret).as_bytes()
}

fn seal_secret(key: &DataKey, id: &str, secret: &[u8]) -> Result<Vec<u8>> {
    let key_ref = KeyRef {
        id: KeyId::new(&format!("backup-key/{id}")).map_err(|e| crypto("a backup key", e))?,
        version: 1,
    };
    zt_crypto::envelope::seal(key, &key_ref, secret, id.as_bytes())
        .map_err(|e| crypto("a backup key", e))
}

/// Row encoding inside a part: namespace length (u8), namespace, key length (u32 BE), key,
/// value length (u32 BE), value.
fn encode_row(out: &mut Vec<u8>, namespace: &Namespace, key: &[u8], value: &[u8]) {
    let name = namespace.as_str().as_bytes();
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// The rows of one part, read back; `Err` names what is wrong.
pub(crate) fn decode_rows(
    mut bytes: &[u8],
    mut each: impl FnMut(Namespace, &[u8], &[u8]) -> Result<()>,
) -> std::result::Result<(), String> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
        if bytes.len() < n {
            return Err("a row is cut short".into());
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn length(bytes: &mut &[u8]) -> std::result::Result<usize, String> {
        let raw = take(bytes, 4)?;
        let raw: [u8; 4] = raw
            .try_into()
            .map_err(|_| "a row is cut short".to_string())?;
        Ok(u32::from_be_bytes(raw) as usize)
    }
    while !bytes.is_empty() {
        let name_len = usize::from(take(&mut bytes, 1)?[0]);
        let name = std::str::from_utf8(take(&mut bytes, name_len)?)
            .map_err(|_| "a namespace is not UTF-8".to_string())?;
        let namespace = Namespace::new(name).map_err(|e| format!("a namespace: {e}"))?;
        let key_len = length(&mut bytes)?;
        let key = take(&mut bytes, key_len)?;
        let value_len = length(&mut bytes)?;
        let value = take(&mut bytes, value_len)?;
        each(namespace, key, value).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The archive's output while the export runs: rows gathered into parts of about
/// [`PART_BYTES`].
struct PartSink<W: Write> {
    writer: ArchiveWriter<W>,
    part: Vec<u8>,
    parts: usize,
    rows: u64,
    /// The archive's own error, kept whole (the store sees only that the sink failed).
    failure: Option<zt_crypto::Error>,
}

impl<W: Write> PartSink<W> {
    fn flush_part(&mut self) -> std::result::Result<(), zt_crypto::Error> {
        if self.part.is_empty() {
            return Ok(());
        }
        self.parts += 1;
        let name = format!("store/{:06}.rows", self.parts);
        self.writer.append_bytes(&name, &self.part)?;
        self.part.clear();
        Ok(())
    }
}

impl<W: Write + Send> zt_storage::ExportSink for PartSink<W> {
    fn row(&mut self, namespace: &Namespace, key: &[u8], value: &[u8]) -> zt_storage::Result<()> {
        encode_row(&mut self.part, namespace, key, value);
        self.rows += 1;
        if self.part.len() >= PART_BYTES
            && let Err(e) = self.flush_part()
        {
            self.failure = Some(e);
            return Err(zt_storage::Error::Backend {
                message: "writing the backup failed".into(),
                source: None,
            });
        }
        Ok(())
    }
}

/// The deployment's backups (see the [module](self) documentation).
pub struct Backups {
    settings: BackupSettings,
    store: Arc<dyn KvStore>,
    /// The deployment-wide (sealed) store, where the schedule is kept.
    system: Arc<dyn KvStore>,
    clock: Arc<dyn zt_core::Clock>,
    audit: Arc<dyn zt_core::AuditSink>,
    /// One backup, key rotation or kit refresh at a time.
    busy: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Backups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backups")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Rows written.
    pub rows: u64,
    /// The verified manifest.
    pub manifest: Manifest,
}

impl Backups {
    pub(crate) fn new(
        settings: BackupSettings,
        store: Arc<dyn KvStore>,
        system: Arc<dyn KvStore>,
        clock: Arc<dyn zt_core::Clock>,
        audit: Arc<dyn zt_core::AuditSink>,
    ) -> Result<Self> {
        if settings.recovery.is_empty() {
            return Err(Error::invalid(
                "recovery",
                "backups need at least one recovery recipient (an age public key kept offline)",
            ));
        }
        Ok(Backups {
            settings,
            store,
            system,
            clock,
            audit,
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &BackupSettings {
        &self.settings
    }

    fn event(&self, kind: AuditEventKind, actor: Actor) -> AuditEvent {
        AuditEvent::new(kind, actor, self.clock.now()).tenant(self.settings.operators)
    }

    /// Takes a backup now, as `actor`. Recorded as `backup.created`, or its failure.
    ///
    /// The methods of `Backups` that change something take the actor to record: they are the
    /// deployment's own door, for its schedule and its offline tools (which act as
    /// `Actor::System`). A person goes through [`Workspace::create_backup`] and its kin, which
    /// authorize first.
    ///
    /// # Errors
    /// The store's, the KMS's, the file system's.
    pub async fn create(&self, actor: Actor) -> Result<BackupInfo> {
        let _busy = self.busy.lock().await;
        let outcome = self.create_now().await;
        let event = self.event(AuditEventKind::BackupCreated, actor);
        let event = match &outcome {
            Ok(info) => event
                .target(&info.id)
                .detail("rows", i64::try_from(info.rows).unwrap_or(i64::MAX))?
                .detail("size", i64::try_from(info.size).unwrap_or(i64::MAX))?
                .detail("backup_key", info.backup_key.clone())?,
            Err(e) => event
                .outcome(Outcome::Failure)
                .detail("error", e.to_string())?,
        };
        self.audit.append(event).await?;
        outcome
    }

    async fn create_now(&self) -> Result<BackupInfo> {
        let dir = &self.settings.dir;
        create_dir(dir)?;
        remove_partials(dir);
        let now = self.clock.now();
        let mut keys = BackupKeys::open(dir, Arc::clone(&self.settings.kms))?;
        if keys.current().is_none() {
            keys.rotate(now).await?;
        }
        let (key_id, key_recipient) = keys
            .current()
            .map(|(id, r)| (id.to_string(), r.clone()))
            .ok_or_else(|| Error::damaged("no current backup key"))?;
        let mut random = [0u8; 4];
        rand::fill(&mut random);
        let id = format!("bk-{}-{}", now.unix_millis() / 1000, hex::encode(random));
        let path = dir.join(format!("{id}{ARCHIVE_SUFFIX}"));
        let partial = dir.join(format!("{id}{ARCHIVE_SUFFIX}.partial"));
        let mut recipients = vec![key_recipient];
        recipients.extend(self.settings.recovery.iter().cloned());
        let created = u64::try_from(now.unix_millis() / 1000).unwrap_or(0);

        // Hashed as it is written: the catalog's digest needs no second read of the archive.
        let file = Hashing {
            inner: BufWriter::with_capacity(1 << 20, private_file(&partial)?),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArchiveWriter::new(file, &recipients, BACKUP_KIND, created)
            .map_err(|e| crypto("the backup", e))?;
        let mut sink = PartSink {
            writer,
            part: Vec::with_capacity(PART_BYTES + 64 * 1024),
            parts: 0,
            rows: 0,
            failure: None,
        };
        let store = Arc::clone(&self.store);
        let handle = tokio::runtime::Handle::current();
        let (sink, exported) = tokio::task::spawn_blocking(move || {
            let exported = handle.block_on(store.export(&mut sink));
            (sink, exported)
        })
        .await
        .map_err(|e| Error::internal("the backup task", e))?;
        let mut sink = sink;
        let written = match exported {
            Ok(rows) => rows,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(match sink.failure.take() {
                    Some(failure) => crypto("the backup", failure),
                    None => e.into(),
                });
            }
        };
        let signer = Arc::clone(&self.settings.signer);
        let backup_id = id.clone();
        let signed_key = key_id.clone();
        let signed_recovery = self
            .settings
            .recovery
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let finished = tokio::task::spawn_blocking(move || -> Result<(u64, u64, String)> {
            sink.flush_part().map_err(|e| crypto("the backup", e))?;
            let metadata = BTreeMap::from([
                ("backup".to_string(), backup_id),
                ("rows".to_string(), sink.rows.to_string()),
                ("row_format".to_string(), ROW_FORMAT.to_string()),
                ("backup_key".to_string(), signed_key),
                ("recovery".to_string(), signed_recovery),
                ("created_ms".to_string(), now.unix_millis().to_string()),
            ]);
            let (hashed, _) = sink
                .writer
                .finish(metadata, &signer)
                .map_err(|e| crypto("the backup", e))?;
            let file = hashed
                .inner
                .into_inner()
                .map_err(|e| Error::internal("writing the backup", e.into_error()))?;
            file.sync_all()
                .map_err(|e| Error::internal("syncing the backup", e))?;
            Ok((
                sink.rows,
                hashed.bytes,
                hex::encode(hashed.hasher.finalize()),
            ))
        })
        .await
        .map_err(|e| Error::internal("the backup task", e))?;
        let (rows, size, sha256) = match finished {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        debug_assert_eq!(rows, written);
        std::fs::rename(&partial, &path).map_err(|e| io("naming", &path, e))?;
        sync_dir(&path)?;
        let info = BackupInfo {
            id: id.clone(),
            created: now,
            size,
            sha256,
            rows,
            backup_key: key_id,
            recovery: self.settings.recovery.clone(),
            signer: BASE64.encode(self.settings.signer.verifying_key().to_bytes()),
        };
        let entry = serde_json::to_vec_pretty(&info)
            .map_err(|e| Error::internal("encoding the catalog entry", e))?;
        write_atomically(&dir.join(format!("{id}.json")), &entry)?;
        self.write_recovery_kit(now).await?;
        Ok(info)
    }

    /// Replaces the recovery kit with the KMS's key material as it stands now (nothing when
    /// the KMS cannot give its keys out). Called after every backup and every wipe.
    pub(crate) async fn write_recovery_kit(&self, now: Timestamp) -> Result<bool> {
        let created = u64::try_from(now.unix_millis() / 1000).unwrap_or(0);
        let kit = self
            .settings
            .kms
            .recovery_kit(&self.settings.recovery, &self.settings.signer, created)
            .await
            .map_err(|e| crypto("the recovery kit", e))?;
        let path = self.settings.dir.join(RECOVERY_KIT_FILE);
        match kit {
            Some(kit) => {
                create_dir(&self.settings.dir)?;
                write_atomically(&path, &kit)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Replaces the kit after keys were destroyed (a wipe): the destruction itself is on
    /// record, and the kit no longer holds what it destroyed.
    pub(crate) async fn after_keys_destroyed(&self) -> Result<()> {
        let _busy = self.busy.lock().await;
        self.write_recovery_kit(self.clock.now()).await.map(|_| ())
    }

    /// Every backup in the directory, oldest first.
    ///
    /// # Errors
    /// [`Error::Internal`] for an unreadable directory or a damaged entry.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        list_dir(&self.settings.dir)
    }

    /// Reads backup `id` whole through the backup key (the KMS) and checks it: the file is the
    /// one catalogued, and the archive verifies against the server's key.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming what does not verify; [`Error::NotFound`]; the KMS's.
    pub async fn verify(&self, id: &str) -> Result<Manifest> {
        let info = self.info(id)?;
        let keys = BackupKeys::open(&self.settings.dir, Arc::clone(&self.settings.kms))?;
        let identity = keys.identity(&info.backup_key).await?;
        let signer = self.settings.signer.verifying_key();
        let path = archive_path(&self.settings.dir, id);
        let expected = info.sha256.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| io("opening", &path, e))?;
            let mut hashing = HashingReader {
                inner: std::io::BufReader::with_capacity(1 << 20, file),
                hasher: Sha256::new(),
            };
            let manifest = verify_archive(&mut hashing, &[identity], &signer)
                .map_err(|e| crypto("the backup", e))?;
            std::io::copy(&mut hashing, &mut std::io::sink())
                .map_err(|e| io("reading", &path, e))?;
            if hex::encode(hashing.hasher.finalize()) != expected {
                return Err(Error::Tampered(
                    "the archive is not the file its catalog entry describes".into(),
                ));
            }
            Ok(manifest)
        })
        .await
        .map_err(|e| Error::internal("the verify task", e))?
    }

    fn info(&self, id: &str) -> Result<BackupInfo> {
        check_id(id)?;
        read_info(&self.settings.dir, id)
    }

    /// Brings in a backup archive kept elsewhere (an off-site copy): opened with one of this
    /// deployment's backup keys, verified whole against the server's key, copied into the
    /// backup directory and catalogued from its signed manifest. Recorded as `backup.imported`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when none of the backup keys opens it; [`Error::Tampered`] when it
    /// does not verify or is not a backup; [`Error::Conflict`] when a backup of its id is here
    /// already.
    pub async fn import(&self, source: &Path, actor: Actor) -> Result<BackupInfo> {
        let _busy = self.busy.lock().await;
        let keys = BackupKeys::open(&self.settings.dir, Arc::clone(&self.settings.kms))?;
        let mut identities = Vec::new();
        for id in keys.ids() {
            identities.push(keys.identity(&id).await?);
        }
        let signer = self.settings.signer.verifying_key();
        // The copy is what is verified and kept, so the source cannot change in between.
        create_dir(&self.settings.dir)?;
        let mut random = [0u8; 4];
        rand::fill(&mut random);
        let partial = self.settings.dir.join(format!(
            "import-{}{ARCHIVE_SUFFIX}.partial",
            hex::encode(random)
        ));
        std::fs::copy(source, &partial).map_err(|e| io("copying", source, e))?;
        let outcome = self.import_copy(&partial, identities, signer, actor).await;
        if outcome.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        outcome
    }

    async fn import_copy(
        &self,
        partial: &Path,
        identities: Vec<ArchiveIdentity>,
        signer: VerifyingKey,
        actor: Actor,
    ) -> Result<BackupInfo> {
        let path = partial.to_path_buf();
        let manifest = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| io("opening", &path, e))?;
            verify_archive(
                std::io::BufReader::with_capacity(1 << 20, file),
                &identities,
                &signer,
            )
            .map_err(|e| crypto("the backup", e))
        })
        .await
        .map_err(|e| Error::internal("the import task", e))??;
        let field = |name: &str| {
            manifest.metadata.get(name).cloned().ok_or_else(|| {
                Error::Tampered(format!(
                    "the manifest has no {name}: not a backup of this version"
                ))
            })
        };
        if manifest.kind != BACKUP_KIND {
            return Err(Error::Tampered(format!(
                "a {} archive, not a backup",
                manifest.kind
            )));
        }
        let id = field("backup")?;
        check_id(&id).map_err(|_| Error::Tampered("the manifest names no backup id".into()))?;
        if self.info(&id).is_ok() {
            return Err(Error::Conflict(format!("backup {id} is here already")));
        }
        let number = |name: &str| -> Result<i64> {
            field(name)?
                .parse()
                .map_err(|_| Error::Tampered(format!("the manifest's {name} is not a number")))
        };
        let recovery = field("recovery")?
            .split_whitespace()
            .map(|r| {
                r.parse()
                    .map_err(|e| Error::Tampered(format!("a recovery recipient: {e}")))
            })
            .collect::<Result<Vec<ArchiveRecipient>>>()?;
        self.audit
            .append(
                self.event(AuditEventKind::BackupImported, actor)
                    .target(&id),
            )
            .await?;
        let (size, sha256) = file_digest(partial)?;
        let path = archive_path(&self.settings.dir, &id);
        std::fs::rename(partial, &path).map_err(|e| io("naming", &path, e))?;
        let info = BackupInfo {
            id: id.clone(),
            created: Timestamp::from_unix_millis(number("created_ms")?),
            size,
            sha256,
            rows: u64::try_from(number("rows")?).unwrap_or(0),
            backup_key: field("backup_key")?,
            recovery,
            signer: manifest.signer.clone(),
        };
        let entry = serde_json::to_vec_pretty(&info)
            .map_err(|e| Error::internal("encoding the catalog entry", e))?;
        write_atomically(&self.settings.dir.join(format!("{id}.json")), &entry)?;
        Ok(info)
    }

    /// Deletes backup `id` (archive and entry), recorded as `backup.deleted`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; the file system's.
    pub async fn delete(&self, id: &str, actor: Actor) -> Result<()> {
        let _busy = self.busy.lock().await;
        self.info(id)?;
        self.audit
            .append(self.event(AuditEventKind::BackupDeleted, actor).target(id))
            .await?;
        let archive = archive_path(&self.settings.dir, id);
        std::fs::remove_file(&archive).map_err(|e| io("deleting", &archive, e))?;
        let entry = self.settings.dir.join(format!("{id}.json"));
        std::fs::remove_file(&entry).map_err(|e| io("deleting", &entry, e))?;
        sync_dir(&entry)
    }

    /// Makes a new backup key; later backups are sealed to it, earlier ones keep opening with
    /// theirs. Recorded as `backup.key_rotated` before the key is made.
    ///
    /// # Errors
    /// The KMS's; the file system's.
    pub async fn rotate_key(&self, actor: Actor) -> Result<String> {
        let _busy = self.busy.lock().await;
        let mut keys = BackupKeys::open(&self.settings.dir, Arc::clone(&self.settings.kms))?;
        let previous = keys.current().map(|(id, _)| id.to_string());
        self.audit
            .append(
                self.event(AuditEventKind::BackupKeyRotated, actor)
                    .target("backup-key")
                    .detail("previous", previous.unwrap_or_else(|| "none".into()))?,
            )
            .await?;
        keys.rotate(self.clock.now()).await
    }
}

/// What the recovery material covers ([`Workspace::recovery_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// Each configured recovery recipient and the backups sealed to it.
    pub recipients: Vec<(ArchiveRecipient, Vec<String>)>,
    /// Backups none of today's recipients opens (sealed to recipients since removed): only
    /// their backup key opens them.
    pub uncovered: Vec<String>,
    /// The backup keys, oldest first (the last is current).
    pub backup_keys: Vec<String>,
    /// When the recovery kit was last written; `None` when there is none (no backup yet, or a
    /// KMS whose keys cannot leave it).
    pub kit_written: Option<Timestamp>,
}

impl Backups {
    /// See [`Workspace::recovery_status`].
    ///
    /// # Errors
    /// [`Error::Internal`] for an unreadable backup directory.
    pub fn recovery_status(&self) -> Result<RecoveryStatus> {
        let list = self.list()?;
        let recipients = self
            .settings
            .recovery
            .iter()
            .map(|recipient| {
                let opens = list
                    .iter()
                    .filter(|b| b.recovery.contains(recipient))
                    .map(|b| b.id.clone())
                    .collect();
                (recipient.clone(), opens)
            })
            .collect();
        let uncovered = list
            .iter()
            .filter(|b| {
                !b.recovery
                    .iter()
                    .any(|r| self.settings.recovery.contains(r))
            })
            .map(|b| b.id.clone())
            .collect();
        let keys = BackupKeys::open(&self.settings.dir, Arc::clone(&self.settings.kms))?;
        let kit = self.settings.dir.join(RECOVERY_KIT_FILE);
        let kit_written = std::fs::metadata(&kit)
            .and_then(|m| m.modified())
            .ok()
            .map(Timestamp::from_system_time);
        Ok(RecoveryStatus {
            recipients,
            uncovered,
            backup_keys: keys.ids(),
            kit_written,
        })
    }
}

/// The namespace (deployment-wide store) of the backup schedule.
const SCHEDULE_NS: &str = "chat.backup_schedule";
const SCHEDULE_KEY: &[u8] = b"schedule";
/// The shortest interval between scheduled backups.
pub const MIN_BACKUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// The most backups a schedule may keep.
pub const MAX_KEEP: u32 = 1000;

/// When backups are taken by themselves and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    /// Seconds between scheduled backups; `None`: no schedule.
    pub every_secs: Option<u64>,
    /// How many backups to keep: after a scheduled backup the oldest beyond this are deleted
    /// (at least 1).
    pub keep: u32,
    /// When the last scheduled backup was taken.
    pub last_run: Option<Timestamp>,
}

impl Default for BackupSchedule {
    fn default() -> Self {
        BackupSchedule {
            every_secs: None,
            keep: 7,
            last_run: None,
        }
    }
}

impl Backups {
    fn schedule_ns() -> Result<Namespace> {
        Ok(Namespace::new(SCHEDULE_NS)?)
    }

    /// The schedule and its version (default: none, keep 7).
    ///
    /// # Errors
    /// The store's.
    pub async fn schedule(&self) -> Result<(BackupSchedule, Option<u64>)> {
        use zt_storage::KvStoreExt as _;
        Ok(
            match self
                .system
                .get_decoded::<BackupSchedule>(&Self::schedule_ns()?, SCHEDULE_KEY)
                .await?
            {
                Some((schedule, version)) => (schedule, Some(version)),
                None => (BackupSchedule::default(), None),
            },
        )
    }

    async fn write_schedule(&self, schedule: &BackupSchedule, version: Option<u64>) -> Result<()> {
        let ns = Self::schedule_ns()?;
        let mut batch = Batch::new();
        match version {
            Some(v) => batch.require_version(&ns, SCHEDULE_KEY, v),
            None => batch.require_absent(&ns, SCHEDULE_KEY),
        };
        batch.put(&ns, SCHEDULE_KEY, &zt_storage::codec::encode(schedule)?);
        self.system.commit(batch).await?;
        Ok(())
    }

    /// Sets how often backups are taken by themselves and how many are kept, as `actor`;
    /// recorded as `backup.schedule_changed` before it applies.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an interval under [`MIN_BACKUP_INTERVAL`] or `keep` outside
    /// 1 to [`MAX_KEEP`]; [`Error::Conflict`] when it changed meanwhile; the store's.
    pub async fn set_schedule(
        &self,
        every_secs: Option<u64>,
        keep: u32,
        actor: Actor,
    ) -> Result<BackupSchedule> {
        if every_secs.is_some_and(|s| s < MIN_BACKUP_INTERVAL.as_secs()) {
            return Err(Error::invalid(
                "every_seconds",
                format!("at least {} seconds", MIN_BACKUP_INTERVAL.as_secs()),
            ));
        }
        if !(1..=MAX_KEEP).contains(&keep) {
            return Err(Error::invalid("keep", format!("1 to {MAX_KEEP}")));
        }
        let (mut schedule, version) = self.schedule().await?;
        schedule.every_secs = every_secs;
        schedule.keep = keep;
        let event = self
            .event(AuditEventKind::BackupScheduleChanged, actor)
            .target("backup-schedule")
            .detail(
                "every_seconds",
                every_secs.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX)),
            )?
            .detail("keep", i64::from(keep))?;
        self.audit.append(event).await?;
        self.write_schedule(&schedule, version).await?;
        Ok(schedule)
    }

    /// Takes the scheduled backup when it is due, then deletes the oldest backups beyond the
    /// schedule's `keep` (recorded as the system, `backup-schedule`). Returns the backup taken,
    /// if one was due.
    ///
    /// # Errors
    /// The backup's; the store's.
    pub async fn run_schedule(&self) -> Result<Option<BackupInfo>> {
        let (mut schedule, version) = self.schedule().await?;
        let Some(every) = schedule.every_secs else {
            return Ok(None);
        };
        let now = self.clock.now();
        let due = schedule.last_run.is_none_or(|last| {
            now.saturating_duration_since(last) >= std::time::Duration::from_secs(every)
        });
        if !due {
            return Ok(None);
        }
        let actor = || Actor::System("backup-schedule".into());
        let info = self.create(actor()).await?;
        schedule.last_run = Some(now);
        self.write_schedule(&schedule, version).await?;
        let list = self.list()?;
        let excess = list.len().saturating_sub(schedule.keep as usize);
        for old in list.iter().take(excess) {
            self.delete(&old.id, actor()).await?;
        }
        Ok(Some(info))
    }
}

/// Runs [`Backups::run_schedule`] every `tick`, logging what each pass did, until the task is
/// aborted or the runtime stops.
pub fn spawn_backups(
    backups: Arc<Backups>,
    tick: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(tick.max(std::time::Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match backups.run_schedule().await {
                Ok(Some(info)) => {
                    tracing::info!(backup = %info.id, rows = info.rows, "scheduled backup taken")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the scheduled backup failed; the next pass tries again")
                }
            }
        }
    })
}

impl Workspace {
    /// The backup schedule (`manage_backups`, operators' workspace).
    ///
    /// # Errors
    /// As [`Workspace::create_backup`].
    pub async fn backup_schedule(&self, caller: &Caller) -> Result<BackupSchedule> {
        Ok(self.backups_for(caller).await?.schedule().await?.0)
    }

    /// Sets the backup schedule (`manage_backups`, operators' workspace); recorded as
    /// `backup.schedule_changed`.
    ///
    /// # Errors
    /// As [`Backups::set_schedule`] and [`Workspace::create_backup`].
    pub async fn set_backup_schedule(
        &self,
        caller: &Caller,
        every_secs: Option<u64>,
        keep: u32,
    ) -> Result<BackupSchedule> {
        self.backups_for(caller)
            .await?
            .set_schedule(every_secs, keep, Actor::User(caller.user()))
            .await
    }
}

/// Hashes and counts what goes through to `inner`, read or written.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashingReader<R: Read> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Removes what backups and imports cut short left (`*.partial`): one runs at a time, and the
/// store of a deployment is open in one process only, so none is being written now.
fn remove_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "partial")
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(error = %e, file = %path.display(), "cannot remove a cut-short backup");
        }
    }
}

fn check_id(id: &str) -> Result<()> {
    let ok = id.starts_with("bk-")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("backup", "not a backup id"))
    }
}

fn archive_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{ARCHIVE_SUFFIX}"))
}

fn read_info(dir: &Path, id: &str) -> Result<BackupInfo> {
    let path = dir.join(format!("{id}.json"));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!("backup {id}")));
        }
        Err(e) => return Err(io("reading", &path, e)),
    };
    let info: BackupInfo = serde_json::from_slice(&bytes)
        .map_err(|e| Error::damaged(format!("{}: {e}", path.display())))?;
    if info.id != id {
        return Err(Error::Tampered(format!(
            "{} describes another backup",
            path.display()
        )));
    }
    Ok(info)
}

/// The backups catalogued in `dir`, oldest first.
///
/// # Errors
/// [`Error::Internal`] for an unreadable directory or a damaged entry.
pub fn list_dir(dir: &Path) -> Result<Vec<BackupInfo>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading", dir, e)),
    };
    let mut list = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("reading", dir, e))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if check_id(id).is_ok() {
            list.push(read_info(dir, id)?);
        }
    }
    list.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(list)
}

fn file_digest(path: &Path) -> Result<(u64, String)> {
    let file = std::fs::File::open(path).map_err(|e| io("reading", path, e))?;
    let mut hashing = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let size =
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| io("reading", path, e))?;
    Ok((size, hex::encode(hashing.hasher.finalize())))
}

/// Restores the backup archive at `path` into `target`, which must be empty: opened with
/// `identity` (the backup key's, from [`BackupKeys::identity`], or a recovery identity), its
/// rows written in batches, and the whole archive verified against `signer` at the end.
///
/// When verification fails the rows already written stay in `target`: restore into a new
/// store and discard it on error (the server's `backup restore` removes the new directory).
///
/// # Errors
/// [`Error::Conflict`] when `target` holds rows; [`Error::Tampered`] when the archive does not
/// verify; [`Error::Forbidden`] when `identity` does not open it; the store's.
pub async fn restore_archive(
    path: &Path,
    identity: ArchiveIdentity,
    signer: VerifyingKey,
    target: Arc<dyn KvStore>,
) -> Result<Restored> {
    let mut empty = true;
    let mut probe = |_: &Namespace, _: &[u8], _: &[u8]| {
        empty = false;
        Err(zt_storage::Error::Closed)
    };
    match target.export(&mut probe).await {
        Ok(_) => {}
        Err(_) if !empty => {}
        Err(e) => return Err(e.into()),
    }
    if !empty {
        return Err(Error::Conflict(
            "restore into an empty store: the target holds data".into(),
        ));
    }
    let path = path.to_path_buf();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| io("opening", &path, e))?;
        let input = std::io::BufReader::with_capacity(1 << 20, file);
        let mut reader =
            ArchiveReader::open(input, &[identity]).map_err(|e| crypto("the backup", e))?;
        let mut rows = 0u64;
        let mut bytes = Vec::new();
        while let Some(mut part) = reader.next_part().map_err(|e| crypto("the backup", e))? {
            let name = part.name().to_string();
            if !name.starts_with("store/") || part.size() > MAX_PART_BYTES as u64 {
                return Err(Error::Tampered(format!(
                    "part {name} is not a part of a backup"
                )));
            }
            bytes.clear();
            part.read_to_end(&mut bytes)
                .map_err(|e| Error::Tampered(format!("part {name}: {e}")))?;
            let mut batch = Batch::new();
            let mut batch_bytes = 0usize;
            let mut commits = Vec::new();
            decode_rows(&bytes, |namespace, key, value| {
                batch.put(&namespace, key, value);
                batch_bytes += key.len() + value.len();
                rows += 1;
                if batch.writes().len() >= 1000 || batch_bytes >= 1 << 20 {
                    commits.push(std::mem::take(&mut batch));
                    batch_bytes = 0;
                }
                Ok(())
            })
            .map_err(|m| Error::Tampered(format!("part {name}: {m}")))?;
            commits.push(batch);
            for batch in commits {
                if !batch.is_empty() {
                    handle.block_on(target.commit(batch))?;
                }
            }
        }
        let manifest = reader
            .finish(&signer)
            .map_err(|e| crypto("the backup", e))?;
        if manifest.kind != BACKUP_KIND {
            return Err(Error::Tampered(format!(
                "a {} archive, not a backup",
                manifest.kind
            )));
        }
        if manifest.metadata.get("rows") != Some(&rows.to_string()) {
            return Err(Error::Tampered(
                "the row count differs from the manifest's".into(),
            ));
        }
        Ok(Restored { rows, manifest })
    })
    .await
    .map_err(|e| Error::internal("the restore task", e))?
}

impl Workspace {
    /// The deployment's backups, for a caller allowed `area` (`manage_backups`, or
    /// `manage_encryption` for the recovery status) in the operators' workspace
    /// ([`BackupSettings::operators`]); a refusal is recorded.
    async fn backups_in(&self, caller: &Caller, area: AdminArea) -> Result<Arc<Backups>> {
        self.enter_admin_area(caller, area).await?;
        let backups = self.backups.clone().ok_or_else(|| {
            Error::invalid("backups", "backups are not configured for this deployment")
        })?;
        self.require_operators(caller, area, backups.settings.operators)
            .await?;
        Ok(backups)
    }

    /// Refuses (recorded as `admin.access_denied`) a caller outside `operators`, the one
    /// workspace whose administrators may act for the whole deployment in `area`.
    pub(crate) async fn require_operators(
        &self,
        caller: &Caller,
        area: AdminArea,
        operators: TenantId,
    ) -> Result<()> {
        if operators == self.tenant() {
            return Ok(());
        }
        let event = self
            .event(AuditEventKind::AdminAccessDenied, caller)
            .target(area.permission().name())
            .outcome(Outcome::Denied);
        self.ctx.audit.append(event).await?;
        Err(Error::Forbidden {
            reasons: vec!["operators_workspace_only".into()],
        })
    }

    async fn backups_for(&self, caller: &Caller) -> Result<Arc<Backups>> {
        self.backups_in(caller, AdminArea::Backups).await
    }

    /// Which backups each recovery recipient opens, which none of today's recipients does,
    /// the backup keys, and when the recovery kit was last written (`manage_encryption`, in
    /// the operators' workspace).
    ///
    /// # Errors
    /// As [`Workspace::create_backup`].
    pub async fn recovery_status(&self, caller: &Caller) -> Result<RecoveryStatus> {
        self.backups_in(caller, AdminArea::Encryption)
            .await?
            .recovery_status()
    }

    /// Takes a backup of the whole deployment now (`manage_backups`, operators' workspace).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] when backups are not configured; the
    /// store's, the KMS's, the file system's.
    pub async fn create_backup(&self, caller: &Caller) -> Result<BackupInfo> {
        let backups = self.backups_for(caller).await?;
        backups.create(Actor::User(caller.user())).await
    }

    /// The backups, oldest first.
    ///
    /// # Errors
    /// As [`Workspace::create_backup`].
    pub async fn backups(&self, caller: &Caller) -> Result<Vec<BackupInfo>> {
        self.backups_for(caller).await?.list()
    }

    /// Reads backup `id` whole and checks it.
    ///
    /// # Errors
    /// [`Error::Tampered`] naming what does not verify; [`Error::NotFound`].
    pub async fn verify_backup(&self, caller: &Caller, id: &str) -> Result<Manifest> {
        self.backups_for(caller).await?.verify(id).await
    }

    /// Deletes backup `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; as [`Workspace::create_backup`].
    pub async fn delete_backup(&self, caller: &Caller, id: &str) -> Result<()> {
        self.backups_for(caller)
            .await?
            .delete(id, Actor::User(caller.user()))
            .await
    }

    /// Makes a new backup key (earlier backups keep opening with theirs). Returns its id.
    ///
    /// # Errors
    /// As [`Workspace::create_backup`].
    pub async fn rotate_backup_key(&self, caller: &Caller) -> Result<String> {
        self.backups_for(caller)
            .await?
            .rotate_key(Actor::User(caller.user()))
            .await
    }
}
