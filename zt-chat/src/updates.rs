//! Update administration (`manage_updates`, in the operators' workspace): the running version
//! and storage schema, and the check of a **release manifest** signed with a release key the
//! deployment pins ([`UpdateSettings::release_key`]).
//!
//! A manifest is JSON ([`ReleaseManifest`]) with a detached signature: base64 Ed25519 over
//! `zt-release/1 manifest\n` followed by the manifest's exact bytes. A check refuses a manifest
//! that is unsigned, signed by another key, for another product, or **older than the newest one
//! this deployment has seen** (kept in the deployment-wide store): whoever can serve the
//! manifest file or URL cannot roll the deployment's view back to an old release. Each check is
//! recorded (`update.checked`, with its outcome).
//!
//! ```
//! use zt_chat::updates::{ReleaseManifest, sign_release, verify_release};
//! use zt_crypto::SigningKey;
//!
//! let release_key = SigningKey::generate();
//! let manifest = ReleaseManifest::new("zt", "1.2.0", 1, 1_765_000_000_000, "Fixes.");
//! let (bytes, signature) = sign_release(&manifest, &release_key)?;
//! let checked = verify_release(&bytes, &signature, &release_key.verifying_key(), "zt")?;
//! assert_eq!(checked.version, "1.2.0");
//! let other = SigningKey::generate();
//! assert!(verify_release(&bytes, &signature, &other.verifying_key(), "zt").is_err());
//! # Ok::<(), zt_chat::Error>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zt_core::{AuditEventKind, Outcome, TenantId};
use zt_crypto::{SigningKey, VerifyingKey};
use zt_storage::{Batch, KvStoreExt as _, Namespace};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};

/// The format name of a release manifest.
pub const RELEASE_FORMAT: &str = "zt-release/1";
/// What the signature covers before the manifest's bytes.
const CONTEXT: &[u8] = b"zt-release/1 manifest\n";
/// The largest manifest read.
pub const MANIFEST_LIMIT: usize = 64 * 1024;
const STATE_NS: &str = "chat.updates";
const LAST_SEEN: &[u8] = b"last_seen";

/// A release, as its publisher signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseManifest {
    /// Always [`RELEASE_FORMAT`].
    pub format: String,
    /// The product it is a release of.
    pub product: String,
    /// Its version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The storage schema (layout) it writes.
    pub schema: u32,
    /// When it was released (Unix milliseconds).
    pub released: i64,
    /// What changed, for people.
    pub notes: String,
}

impl ReleaseManifest {
    /// A manifest of the current format.
    pub fn new(product: &str, version: &str, schema: u32, released: i64, notes: &str) -> Self {
        ReleaseManifest {
            format: RELEASE_FORMAT.into(),
            product: product.into(),
            version: version.into(),
            schema,
            released,
            notes: notes.into(),
        }
    }
}

/// A `MAJOR.MINOR.PATCH` version, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// Parses `MAJOR.MINOR.PATCH` (a `-suffix` is refused: releases only).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        let number = |part: &str| -> Option<u64> {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        match parts.as_slice() {
            [a, b, c] => match (number(a), number(b), number(c)) {
                (Some(a), Some(b), Some(c)) => Ok(Version(a, b, c)),
                _ => Err(Error::invalid("version", "MAJOR.MINOR.PATCH, digits only")),
            },
            _ => Err(Error::invalid("version", "MAJOR.MINOR.PATCH, digits only")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn signed(bytes: &[u8]) -> Vec<u8> {
    let mut out = CONTEXT.to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Signs `manifest` with `key`: its bytes and the base64 signature (for the release tooling).
///
/// # Errors
/// [`Error::Internal`] when it cannot be encoded.
pub fn sign_release(manifest: &ReleaseManifest, key: &SigningKey) -> Result<(Vec<u8>, String)> {
    let bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::internal("encoding a release manifest", e))?;
    let signature = BASE64.encode(key.sign(&signed(&bytes)));
    Ok((bytes, signature))
}

/// Checks a manifest's signature against the pinned `key`, then its format, product and version.
///
/// # Errors
/// [`Error::Tampered`] for a missing or bad signature (another key's included), another
/// product, an unknown format; [`Error::InvalidInput`] for a manifest that does not parse.
pub fn verify_release(
    bytes: &[u8],
    signature: &str,
    key: &VerifyingKey,
    product: &str,
) -> Result<ReleaseManifest> {
    if bytes.len() > MANIFEST_LIMIT {
        return Err(Error::invalid("manifest", "too large"));
    }
    let signature = BASE64
        .decode(signature.trim())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| Error::Tampered("the release manifest is not signed".into()))?;
    key.verify(&signed(bytes), &signature).map_err(|_| {
        Error::Tampered("the release manifest is not signed by the pinned release key".into())
    })?;
    let manifest: ReleaseManifest = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("manifest", format!("not a release manifest: {e}")))?;
    if manifest.format != RELEASE_FORMAT {
        return Err(Error::Tampered(format!(
            "unknown manifest format {:?}",
            manifest.format
        )));
    }
    if manifest.product != product {
        return Err(Error::Tampered(format!(
            "a release of {:?}, not of {product:?}",
            manifest.product
        )));
    }
    Version::parse(&manifest.version)?;
    Ok(manifest)
}

/// How a deployment checks for updates.
#[derive(Clone)]
pub struct UpdateSettings {
    /// The key release manifests must be signed with (pinned by the deployment).
    pub release_key: VerifyingKey,
    /// The product name manifests must carry.
    pub product: String,
    /// The running version.
    pub running: String,
    /// The only workspace whose admins (`manage_updates`) may check (as for backups).
    pub operators: TenantId,
}

impl fmt::Debug for UpdateSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSettings")
            .field("release_key", &self.release_key.fingerprint())
            .field("product", &self.product)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    /// The running version.
    pub running: String,
    /// The storage schema this build writes.
    pub schema: u32,
    /// The newest release the manifest names.
    pub latest: ReleaseManifest,
    /// Whether it is newer than the running version.
    pub available: bool,
}

impl Workspace {
    /// Checks a release manifest and its signature (`manage_updates`, operators' workspace):
    /// refused when unsigned, signed by another key than the pinned one, for another product,
    /// or older than the newest manifest this deployment has seen. Recorded as
    /// `update.checked` (denied when refused).
    ///
    /// # Errors
    /// [`Error::Tampered`] as above; [`Error::Forbidden`]; [`Error::InvalidInput`] when updates
    /// are not configured or the manifest does not parse.
    pub async fn check_updates(
        &self,
        caller: &Caller,
        manifest: &[u8],
        signature: &str,
    ) -> Result<UpdateStatus> {
        self.enter_admin_area(caller, AdminArea::Updates).await?;
        let settings = self.updates.clone().ok_or_else(|| {
            Error::invalid(
                "updates",
                "update checks are not configured for this deployment",
            )
        })?;
        self.require_operators(caller, AdminArea::Updates, settings.operators)
            .await?;
        let outcome = self.checked_release(&settings, manifest, signature).await;
        let event = self.event(AuditEventKind::UpdateChecked, caller);
        let event = match &outcome {
            Ok(status) => event
                .target(&status.latest.version)
                .detail("available", status.available)?,
            Err(e) => event
                .outcome(Outcome::Denied)
                .detail("refused", e.to_string())?,
        };
        self.ctx.audit.append(event).await?;
        outcome
    }

    async fn checked_release(
        &self,
        settings: &UpdateSettings,
        manifest: &[u8],
        signature: &str,
    ) -> Result<UpdateStatus> {
        let latest = verify_release(
            manifest,
            signature,
            &settings.release_key,
            &settings.product,
        )?;
        let version = Version::parse(&latest.version)?;
        let ns = Namespace::new(STATE_NS)?;
        let seen = self.system.get_decoded::<String>(&ns, LAST_SEEN).await?;
        if let Some((last, _)) = &seen
            && let Ok(last) = Version::parse(last)
            && version < last
        {
            return Err(Error::Tampered(format!(
                "release {version} is older than {last}, the newest this deployment has seen: \
                 a rollback is refused"
            )));
        }
        let newer = seen
            .as_ref()
            .is_none_or(|(last, _)| Version::parse(last).is_ok_and(|last| version > last));
        if newer {
            let mut batch = Batch::new();
            match &seen {
                Some((_, at)) => batch.require_version(&ns, LAST_SEEN, *at),
                None => batch.require_absent(&ns, LAST_SEEN),
            };
            batch.put(&ns, LAST_SEEN, &zt_storage::codec::encode(&latest.version)?);
            self.system.commit(batch).await?;
        }
        let available = Version::parse(&settings.running).is_ok_and(|running| version > running);
        Ok(UpdateStatus {
            running: settings.running.clone(),
            schema: crate::LAYOUT,
            latest,
            available,
        })
    }
}
