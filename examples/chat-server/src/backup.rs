//! `zt-chat-server backup …`: the deployment's backups, offline (the server must be stopped;
//! while it runs, use the admin API: `POST /api/v1/admin/backups`).
//!
//! - `recovery-identity`: makes an offline recovery identity; its public half goes in
//!   `[backups] recovery_recipients`, its secret is written once (to `--out`, or stdout) and
//!   nowhere else.
//! - `create`, `list`, `verify ID`, `rotate-key`, `import FILE`: as the admin API does them,
//!   recorded as the system (`backup-cli`).
//! - `restore ID --into NEWDIR`: a new data directory from a backup, through the KMS (a copy of
//!   the deployment's KMS file, opened with its passphrase) or, with `--recovery-identity FILE`
//!   when the KMS is lost, through the recovery kit beside the backups (a new KMS file under a
//!   new passphrase). The new directory is removed again if anything fails; the restored
//!   server's identity must be the key that signed the backup. Recorded in the restored
//!   deployment's audit log as `backup.restored` (and `backup.recovery_material_used`).
//!
//! Output: lines for people on a terminal (with a spinner on stderr), one JSON object per
//! result otherwise.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_chat::{BackupInfo, BackupKeys, BackupSettings, Backups, Chat, ChatConfig};
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Clock as _, SystemClock, TenantId};
use zt_crypto::archive::ArchiveIdentity;
use zt_crypto::{KdfParams, LocalKms};
use zt_storage::{KvStore, KvStoreExt as _, Namespace, SledConfig, SledStore};

use crate::config::{BackupConfig, ConfigError, DataArgs, PASSPHRASE_ENV};
use crate::deployment::{
    Deployment, DeploymentError, KMS_FILE, OpenMode, Passphrase, STORE_DIR, TOOL_CACHE,
};

/// The actor the offline commands record.
const ACTOR: &str = "backup-cli";

/// `zt-chat-server backup …`.
#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Make an offline recovery identity: prints its public key (for `[backups]
    /// recovery_recipients`) and writes its secret once, to --out or stdout. Keep the secret
    /// off this machine.
    RecoveryIdentity {
        /// Where to write the secret (created, mode 0600; must not exist).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Take a backup now.
    Create(DataArgs),
    /// List the backups, oldest first.
    List(DataArgs),
    /// Read a backup whole and check it.
    Verify {
        /// The deployment.
        #[command(flatten)]
        data: DataArgs,
        /// The backup's id.
        id: String,
    },
    /// Make a new backup key (earlier backups keep theirs).
    RotateKey(DataArgs),
    /// Bring in an archive kept elsewhere: it must open with one of this deployment's backup
    /// keys and verify whole.
    Import {
        /// The deployment.
        #[command(flatten)]
        data: DataArgs,
        /// The archive.
        file: PathBuf,
    },
    /// Restore a backup into a new data directory.
    Restore {
        /// The deployment backed up: its settings name the backup directory, and (for the KMS
        /// path) its KMS file and passphrase.
        #[command(flatten)]
        data: DataArgs,
        /// The backup's id.
        id: String,
        /// The new data directory (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// The backup directory, when the settings do not say (a disaster's copy).
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// Restore through this recovery identity (a file with `AGE-SECRET-KEY-1…`) and the
        /// recovery kit, without the deployment's KMS. The new KMS file's passphrase comes from
        /// ZT_KMS_PASSPHRASE, else is generated into NEWDIR.kms-passphrase.
        #[arg(long, value_name = "FILE")]
        recovery_identity: Option<PathBuf>,
    },
}

/// Why a `backup` command failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The deployment cannot be opened.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// zt-chat refused or failed.
    #[error("{0}")]
    Chat(#[from] zt_chat::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] zt_storage::Error),
    /// The KMS failed.
    #[error("KMS: {0}")]
    Kms(#[from] zt_crypto::Error),
    /// Backups are not configured.
    #[error(
        "backups are not configured: add [backups] recovery_recipients to the settings file \
         (make one with `zt-chat-server backup recovery-identity`)"
    )]
    NotConfigured,
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else, said plainly.
    #[error("{0}")]
    Refused(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

/// Prints results as lines on a terminal and as JSON objects otherwise.
struct Output<'a> {
    out: &'a mut dyn Write,
    json: bool,
}

impl Output<'_> {
    fn emit(&mut self, text: &str, json: &impl Serialize) -> Result<(), BackupError> {
        let line = if self.json {
            serde_json::to_string(json).map_err(|e| BackupError::Refused(e.to_string()))?
        } else {
            text.to_string()
        };
        writeln!(self.out, "{line}").map_err(io("writing", Path::new("stdout")))
    }
}

fn spinner(message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Runs a `backup` command, writing results to `out` (JSON when `json`).
///
/// # Errors
/// See [`BackupError`].
pub async fn run(
    command: &BackupCommand,
    out: &mut dyn Write,
    json: bool,
) -> Result<(), BackupError> {
    let mut out = Output { out, json };
    match command {
        BackupCommand::RecoveryIdentity { out: file } => {
            recovery_identity(file.as_deref(), &mut out)
        }
        BackupCommand::List(data) => {
            let config = backup_config(data)?;
            for info in zt_chat::backups::list_dir(&config.dir)? {
                out.emit(&describe(&info), &info)?;
            }
            Ok(())
        }
        BackupCommand::Create(data) => {
            let info = with_backups(data, async |backups| {
                let bar = spinner("taking a backup");
                let info = backups.create(Actor::System(ACTOR.into())).await;
                bar.finish_and_clear();
                Ok(info?)
            })
            .await?;
            out.emit(&format!("OK created {}", describe(&info)), &info)
        }
        BackupCommand::Verify { data, id } => {
            let manifest = with_backups(data, async |backups| {
                let bar = spinner("reading the backup");
                let manifest = backups.verify(id).await;
                bar.finish_and_clear();
                Ok(manifest?)
            })
            .await?;
            #[derive(Serialize)]
            struct Verified<'a> {
                id: &'a str,
                verified: bool,
                parts: usize,
                bytes: u64,
            }
            out.emit(
                &format!(
                    "OK {id}: {} parts, {} bytes, signed by the server",
                    manifest.parts.len(),
                    manifest.total_size()
                ),
                &Verified {
                    id,
                    verified: true,
                    parts: manifest.parts.len(),
                    bytes: manifest.total_size(),
                },
            )
        }
        BackupCommand::Import { data, file } => {
            let info = with_backups(data, async |backups| {
                Ok(backups.import(file, Actor::System(ACTOR.into())).await?)
            })
            .await?;
            out.emit(&format!("OK imported {}", describe(&info)), &info)
        }
        BackupCommand::RotateKey(data) => {
            let key = with_backups(data, async |backups| {
                Ok(backups.rotate_key(Actor::System(ACTOR.into())).await?)
            })
            .await?;
            #[derive(Serialize)]
            struct Rotated<'a> {
                backup_key: &'a str,
            }
            out.emit(
                &format!("OK new backup key {key}: backups from now on are sealed to it"),
                &Rotated { backup_key: &key },
            )
        }
        BackupCommand::Restore {
            data,
            id,
            into,
            backup_dir,
            recovery_identity,
        } => {
            let restored = restore(
                data,
                id,
                into,
                backup_dir.as_deref(),
                recovery_identity.as_deref(),
            )
            .await?;
            out.emit(
                &format!(
                    "OK restored {id} into {} through {}: {} rows{}",
                    into.display(),
                    restored.path,
                    restored.rows,
                    restored
                        .passphrase_file
                        .as_ref()
                        .map(|f| format!("; the new KMS passphrase is in {f}"))
                        .unwrap_or_default()
                ),
                &restored,
            )
        }
    }
}

fn describe(info: &BackupInfo) -> String {
    format!(
        "{} {} bytes, {} rows, backup key {}, created {} ms",
        info.id,
        info.size,
        info.rows,
        info.backup_key,
        info.created.unix_millis()
    )
}

fn recovery_identity(file: Option<&Path>, out: &mut Output<'_>) -> Result<(), BackupError> {
    let identity = ArchiveIdentity::generate();
    let recipient = identity.recipient().to_string();
    let secret = identity.to_secret_string();
    let text = SecretString::from(format!(
        "# zt backup recovery identity; public key: {recipient}\n{}\n",
        secret.expose_secret()
    ));
    #[derive(Serialize)]
    struct Made<'a> {
        recipient: &'a str,
        secret_written_to: Option<String>,
    }
    match file {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(path).map_err(io("creating", path))?;
            f.write_all(text.expose_secret().as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io("writing", path))?;
            out.emit(
                &format!(
                    "recovery recipient: {recipient}\nthe secret is in {}: move it off this machine",
                    path.display()
                ),
                &Made {
                    recipient: &recipient,
                    secret_written_to: Some(path.display().to_string()),
                },
            )
        }
        None => {
            // Printed once, never kept: whoever runs this copies it somewhere safe.
            writeln!(out.out, "{}", text.expose_secret().trim_end())
                .map_err(io("writing", Path::new("stdout")))?;
            eprintln!("recovery recipient (for [backups] recovery_recipients): {recipient}");
            Ok(())
        }
    }
}

fn backup_config(data: &DataArgs) -> Result<BackupConfig, BackupError> {
    data.backups()?.ok_or(BackupError::NotConfigured)
}

/// The default workspace recorded by the server's first start: the operators' workspace.
async fn operators(system: &dyn KvStore) -> Result<TenantId, BackupError> {
    let namespace = Namespace::new(crate::bootstrap::DEFAULT_WORKSPACE)?;
    match system.get_decoded::<TenantId>(&namespace, b"id").await? {
        Some((tenant, _)) => Ok(tenant),
        None => Err(BackupError::Refused(
            "this deployment has no default workspace yet: start the server once".into(),
        )),
    }
}

/// The audit trail of an opened deployment, as the server keeps it.
fn trail(deployment: &Deployment) -> Result<Arc<AuditTrail>, BackupError> {
    let signer = crate::identity::checkpoint_signer(deployment)
        .map_err(|e| BackupError::Refused(format!("the audit signer: {e}")))?;
    Ok(Arc::new(AuditTrail::new(
        deployment.system_store(),
        signer,
        AuditConfig {
            origin: crate::identity::AUDIT_ORIGIN.into(),
            ..AuditConfig::default()
        },
    )))
}

/// Opens the deployment (which must exist, with the server stopped), sets its backups up as
/// the server does and runs `f` on them.
async fn with_backups<T>(
    data: &DataArgs,
    f: impl AsyncFnOnce(&Backups) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let config = backup_config(data)?;
    let settings = data.resolve()?;
    let deployment =
        Deployment::open(&settings.data_dir, &settings.passphrase, OpenMode::Existing).await?;
    let outcome = async {
        let trail = trail(&deployment)?;
        let deps = deployment.chat_deps(
            Arc::clone(&trail) as Arc<dyn AuditSink>,
            trail,
            Arc::new(zt_core::InProcessBus::default()),
        );
        let chat = Chat::new(deps, ChatConfig::default())?.with_backups(BackupSettings {
            dir: config.dir.clone(),
            recovery: config.recovery.clone(),
            kms: deployment.kms(),
            signer: Arc::new(deployment.identity().signing_key()),
            operators: operators(&*deployment.system_store()).await?,
        })?;
        let backups = chat
            .deployment_backups()
            .ok_or(BackupError::NotConfigured)?;
        f(backups).await
    }
    .await;
    let closed = deployment.close().await;
    let value = outcome?;
    closed?;
    Ok(value)
}

/// What a restore did.
#[derive(Debug, Serialize)]
struct RestoreReport {
    id: String,
    into: String,
    /// `kms` or `recovery`.
    path: &'static str,
    rows: u64,
    /// The generated passphrase file of the new KMS (recovery path, no ZT_KMS_PASSPHRASE).
    passphrase_file: Option<String>,
}

async fn restore(
    data: &DataArgs,
    id: &str,
    into: &Path,
    backup_dir: Option<&Path>,
    recovery_identity: Option<&Path>,
) -> Result<RestoreReport, BackupError> {
    let dir = match backup_dir {
        Some(dir) => dir.to_path_buf(),
        None => backup_config(data)?.dir,
    };
    let info = zt_chat::backups::list_dir(&dir)?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| BackupError::Refused(format!("no backup {id} in {}", dir.display())))?;
    let signer = info.signer_key()?;
    if into.exists()
        && std::fs::read_dir(into)
            .map_err(io("reading", into))?
            .next()
            .is_some()
    {
        return Err(BackupError::Refused(format!(
            "{} is not empty: restore into a new directory",
            into.display()
        )));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(into).map_err(io("creating", into))?;
    let passphrase_file = crate::deployment::beside(into, "kms-passphrase");
    let generated = std::cell::Cell::new(false);
    let outcome = restore_into(
        data,
        &info,
        &dir,
        into,
        recovery_identity,
        &passphrase_file,
        &generated,
    )
    .await;
    match outcome {
        Ok((path, passphrase, rows)) => {
            // The restored deployment: its identity must be the key that signed the backup.
            let deployment = Deployment::open(into, &passphrase, OpenMode::Existing).await?;
            let checked = record_restore(&deployment, &info, path, signer).await;
            let closed = deployment.close().await;
            if let Err(e) = checked.and(closed.map_err(BackupError::from)) {
                remove_restored(into, &passphrase_file, generated.get());
                return Err(e);
            }
            Ok(RestoreReport {
                id: info.id.clone(),
                into: into.display().to_string(),
                path,
                rows,
                passphrase_file: generated
                    .get()
                    .then(|| passphrase_file.display().to_string()),
            })
        }
        Err(e) => {
            remove_restored(into, &passphrase_file, generated.get());
            Err(e)
        }
    }
}

fn remove_restored(into: &Path, passphrase_file: &Path, generated: bool) {
    if let Err(e) = std::fs::remove_dir_all(into) {
        tracing::warn!(error = %e, dir = %into.display(), "could not remove the failed restore");
    }
    if generated {
        let _ = std::fs::remove_file(passphrase_file);
    }
}

/// The KMS file and the store of the new directory; returns the path taken, the new
/// deployment's passphrase and the rows written.
async fn restore_into(
    data: &DataArgs,
    info: &BackupInfo,
    dir: &Path,
    into: &Path,
    recovery_identity: Option<&Path>,
    passphrase_file: &Path,
    generated: &std::cell::Cell<bool>,
) -> Result<(&'static str, Passphrase, u64), BackupError> {
    let signer = info.signer_key()?;
    let kms_file = into.join(KMS_FILE);
    let (path, identity, passphrase) = match recovery_identity {
        None => {
            // Through the KMS: a copy of the deployment's key file, its passphrase unchanged.
            let settings = data.resolve()?;
            let source = settings.data_dir.join(KMS_FILE);
            std::fs::copy(&source, &kms_file).map_err(io("copying", &source))?;
            let (secret, _) = crate::deployment::read_passphrase(&settings.passphrase, false)?;
            let kms = LocalKms::open(&kms_file, &secret).await?;
            let keys = BackupKeys::open(dir, Arc::new(kms))?;
            let identity = keys.identity(&info.backup_key).await?;
            ("kms", identity, settings.passphrase)
        }
        Some(file) => {
            // Through the recovery identity: the kit beside the backups makes a new KMS file.
            let text = std::fs::read_to_string(file).map_err(io("reading", file))?;
            let identity = ArchiveIdentity::parse(&SecretString::from(text))?;
            let kit_path = dir.join(zt_chat::backups::RECOVERY_KIT_FILE);
            let kit = std::fs::read(&kit_path).map_err(io("reading", &kit_path))?;
            let passphrase = match std::env::var(PASSPHRASE_ENV) {
                Ok(value) if !value.is_empty() => Passphrase::Given(SecretString::from(value)),
                _ => {
                    crate::deployment::generate_secret_file(passphrase_file)?;
                    generated.set(true);
                    Passphrase::File(passphrase_file.to_path_buf())
                }
            };
            let (secret, _) = crate::deployment::read_passphrase(&passphrase, false)?;
            LocalKms::recover(
                &kit,
                &identity,
                &signer,
                &kms_file,
                &secret,
                KdfParams::default(),
            )
            .await?;
            ("recovery", identity, passphrase)
        }
    };
    let store =
        SledStore::open(SledConfig::new(into.join(STORE_DIR)).cache_capacity(TOOL_CACHE)).await?;
    let bar = spinner("restoring");
    let archive = dir.join(format!("{}{}", info.id, zt_chat::backups::ARCHIVE_SUFFIX));
    let restored = zt_chat::restore_archive(
        &archive,
        identity,
        signer,
        Arc::new(store.clone()) as Arc<dyn KvStore>,
    )
    .await;
    bar.finish_and_clear();
    let closed = store.close().await;
    let restored = restored?;
    closed?;
    Ok((path, passphrase, restored.rows))
}

/// Checks the restored identity against the backup's signer and records the restore in the
/// restored deployment's audit log.
async fn record_restore(
    deployment: &Deployment,
    info: &BackupInfo,
    path: &'static str,
    signer: zt_crypto::VerifyingKey,
) -> Result<(), BackupError> {
    if deployment.identity().verifying_key() != signer {
        return Err(BackupError::Refused(format!(
            "the restored server identity {} is not the key that signed the backup ({})",
            deployment.identity().fingerprint(),
            signer.fingerprint()
        )));
    }
    let trail = trail(deployment)?;
    let operators = operators(&*deployment.system_store()).await?;
    let now = SystemClock.now();
    let actor = Actor::System(ACTOR.into());
    let restored = AuditEvent::new(AuditEventKind::BackupRestored, actor.clone(), now)
        .tenant(operators)
        .target(&info.id)
        .detail("through", path)
        .map_err(|e| BackupError::Refused(e.to_string()))?;
    trail
        .append(restored)
        .await
        .map_err(|e| BackupError::Refused(format!("recording the restore: {e}")))?;
    if path == "recovery" {
        let used = AuditEvent::new(AuditEventKind::RecoveryMaterialUsed, actor, now)
            .tenant(operators)
            .target(&info.id)
            .detail("material", "recovery identity and KMS recovery kit")
            .map_err(|e| BackupError::Refused(e.to_string()))?;
        trail
            .append(used)
            .await
            .map_err(|e| BackupError::Refused(format!("recording the restore: {e}")))?;
    }
    Ok(())
}
