//! `zt-chat-server data verify`: checks every workspace's stored messages and files, offline.
//!
//! For each workspace it opens every sealed record of its channels, messages, history, files,
//! chunks, previews and groups, and adds up each live file's chunks against its record
//! ([`zt_chat::Chat::check_data`]), on a private copy of the store ([`OpenMode::ReadOnly`]), so
//! not a byte of the directory changes. It prints `OK <workspace>: N records, F files` or
//! `FAILED <workspace>: <namespace> <key>: <why>` per damaged record, and exits 1 when anything
//! is damaged, 2 when the check cannot run.

use std::io::Write;
use std::sync::Arc;

use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_chat::{Chat, ChatConfig};
use zt_core::InProcessBus;

use crate::config::{ConfigError, DataArgs};
use crate::deployment::{Deployment, DeploymentError, OpenMode};

/// Why `data verify` could not run (as opposed to finding damage).
#[derive(Debug, thiserror::Error)]
pub enum DataVerifyError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The deployment cannot be opened.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The chat service failed (the store or the KMS is out).
    #[error("chat: {0}")]
    Chat(#[from] zt_chat::Error),
    /// The audit trail of the copy could not be set up.
    #[error("audit: {0}")]
    Audit(String),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// Checks every workspace of the deployment `args` names, writing the report to `out`; `true`
/// when nothing is damaged.
///
/// # Errors
/// When the check cannot run: see [`DataVerifyError`].
pub async fn verify(args: &DataArgs, out: &mut dyn Write) -> Result<bool, DataVerifyError> {
    let settings = args.resolve()?;
    let deployment =
        Deployment::open(&settings.data_dir, &settings.passphrase, OpenMode::ReadOnly).await?;
    let outcome = check(&deployment, out).await;
    let closed = deployment.close().await;
    let ok = outcome?;
    closed?;
    Ok(ok)
}

async fn check(deployment: &Deployment, out: &mut dyn Write) -> Result<bool, DataVerifyError> {
    // The trail of the copy: whatever the service records goes there and is thrown away with it.
    let signer = crate::identity::checkpoint_signer(deployment)
        .map_err(|e| DataVerifyError::Audit(e.to_string()))?;
    let trail = Arc::new(AuditTrail::new(
        deployment.system_store(),
        signer,
        AuditConfig {
            origin: crate::identity::AUDIT_ORIGIN.into(),
            ..AuditConfig::default()
        },
    ));
    let deps = deployment.chat_deps(
        Arc::clone(&trail) as Arc<dyn zt_core::AuditSink>,
        trail,
        Arc::new(InProcessBus::default()),
    );
    let chat = Chat::new(deps, ChatConfig::default())?;
    let mut all_ok = true;
    let workspaces = chat.workspaces().await?;
    if workspaces.is_empty() {
        writeln!(out, "no workspaces")?;
    }
    for info in workspaces {
        let check = chat.check_data(info.id).await?;
        if check.is_ok() {
            writeln!(
                out,
                "OK {}: {} records, {} files, {} shredded",
                info.id, check.opened, check.files, check.shredded
            )?;
        } else {
            all_ok = false;
            for damage in &check.damaged {
                writeln!(
                    out,
                    "FAILED {}: {} {}: {}",
                    info.id, damage.namespace, damage.key, damage.why
                )?;
            }
        }
    }
    Ok(all_ok)
}
