//! `zt-chat-server identity show`: the server identity of a data directory, offline.
//!
//! Prints three lines, `fingerprint SHA256:…`, `public-key <hex>` and `audit-key <vkey>`: what a
//! client pins, and the key `audit verify --key` trusts. A running server serves the same at
//! `GET /identity`.

use std::io::Write;

use crate::config::DataArgs;
use crate::deployment::{Deployment, DeploymentError, OpenMode};
use crate::server::IdentityInfo;

/// Why `identity show` failed.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The deployment cannot be opened.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The checkpoint key cannot be formed.
    #[error("audit: {0}")]
    Audit(#[from] zt_audit::Error),
    /// Writing failed.
    #[error("cannot write: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `identity show`, writing to `out`. Creates nothing: the data directory must hold a
/// deployment.
///
/// # Errors
/// See [`ShowError`].
pub async fn show(args: &DataArgs, out: &mut dyn Write) -> Result<IdentityInfo, ShowError> {
    let settings = args.resolve()?;
    let deployment =
        Deployment::open(&settings.data_dir, &settings.passphrase, OpenMode::Existing).await?;
    let info = IdentityInfo::of(&deployment);
    deployment.close().await?;
    let info = info?;
    writeln!(out, "fingerprint {}", info.fingerprint)?;
    writeln!(out, "public-key {}", info.public_key)?;
    writeln!(out, "audit-key {}", info.audit_key)?;
    Ok(info)
}
