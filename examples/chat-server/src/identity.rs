//! `zt-chat-server identity show`: the server identity of a data directory, offline.
//!
//! Prints three lines, `fingerprint SHA256:…`, `public-key <hex>` and `audit-key <vkey>`: what a
//! client pins, and the key `audit verify --key` trusts. A running server serves the same at
//! `GET /identity`.

use std::io::Write;

use crate::config::DataArgs;
use crate::deployment::{Deployment, DeploymentError, OpenMode};
use zt_audit::checkpoint::NoteSigner;
use zt_crypto::channel as noise;

use zt_chat_protocol::views::{ChannelKeyView, IdentityView};

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
        Deployment::open(&settings.data_dir, &settings.passphrase, OpenMode::ReadOnly).await?;
    let info = IdentityInfo::of(&deployment);
    deployment.close().await?;
    let info = info?;
    writeln!(out, "fingerprint {}", info.fingerprint)?;
    writeln!(out, "public-key {}", info.public_key)?;
    writeln!(out, "audit-key {}", info.audit_key)?;
    Ok(info)
}

/// The name the server signs audit checkpoints under, and the origin prefix of its logs.
pub const AUDIT_ORIGIN: &str = "zt/audit";

/// What clients pin: the server identity's public parts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdentityInfo {
    /// `SHA256:` and the unpadded base64 of SHA-256 over the public key.
    pub fingerprint: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// The signed-note verifier key of the audit checkpoints (same key, named [`AUDIT_ORIGIN`]).
    pub audit_key: String,
}

impl IdentityInfo {
    /// The public parts of the deployment's identity.
    ///
    /// # Errors
    /// Only if [`AUDIT_ORIGIN`] were not a valid key name.
    pub fn of(deployment: &Deployment) -> Result<Self, zt_audit::Error> {
        let identity = deployment.identity();
        Ok(IdentityInfo {
            fingerprint: identity.fingerprint(),
            public_key: hex::encode(identity.verifying_key().to_bytes()),
            audit_key: checkpoint_signer(deployment)?.verifier_key(),
        })
    }
}

/// The identity clients pin: [`IdentityInfo`] and the realtime channel key, signed by the
/// identity key.
///
/// # Errors
/// Only if [`AUDIT_ORIGIN`] were not a valid key name.
pub fn signed_identity(deployment: &Deployment) -> Result<IdentityView, zt_audit::Error> {
    let info = IdentityInfo::of(deployment)?;
    let static_key = deployment.channel_key().public();
    let signature = deployment
        .identity()
        .signing_key()
        .sign(&noise::channel_key_message(&static_key));
    Ok(IdentityView {
        fingerprint: info.fingerprint,
        public_key: info.public_key,
        audit_key: info.audit_key,
        channel: ChannelKeyView {
            protocol: noise::PROTOCOL.into(),
            prologue: String::from_utf8_lossy(noise::PROLOGUE).into_owned(),
            static_key: hex::encode(static_key),
            signature: hex::encode(signature),
        },
    })
}

pub(crate) fn checkpoint_signer(deployment: &Deployment) -> Result<NoteSigner, zt_audit::Error> {
    NoteSigner::new(AUDIT_ORIGIN, deployment.identity().signing_key())
}
