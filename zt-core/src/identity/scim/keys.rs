//! SCIM API keys of one workspace: the bearer tokens an identity provider provisions with.
//!
//! - A key is shown once, when it is made; the store keeps its SHA-256 only, under a random
//!   key id, in a blinded namespace. Its text names the workspace and the key id, so a server
//!   finds both without a scan: `ztscim.<tenant>.<key id>.<secret>`.
//! - **Rotation without downtime:** rotating a key makes a new one and gives the old one an
//!   end, `overlap` from now, in one commit, so the identity provider's configuration can change
//!   while both work. A revoked key ends at once.
//! - Making, rotating and revoking are audited as `scim.api_key_rotated`, with the action and
//!   the key ids (never the secret).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zt_storage::{Batch, KeyRange, KvStoreExt as _, Namespace, ScanOptions, codec};

use crate::audit::{Actor, AuditEventKind};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::context::TenantContext;
use crate::ids::TenantId;

/// SCIM API keys, by key id. Blinded.
pub const SCIM_KEYS: &str = "identity.scim.keys";
/// The most keys a workspace holds at once (rotation needs two).
pub const MAX_KEYS: usize = 16;
/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// The longest overlap a rotation may give the old key.
pub const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

const PREFIX: &str = "ztscim";

/// A key's secret text, as shown once. Its `Debug` is redacted.
pub struct ScimSecret(SecretString);

impl ScimSecret {
    /// The text to give the identity provider.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ScimSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScimSecret(<redacted>)")
    }
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScimKeyInfo {
    /// The key id (hex).
    pub id: String,
    /// What the administrator called it.
    pub label: String,
    /// When it was made.
    pub created: Timestamp,
    /// When it stops working (set by rotation), if ever.
    pub expires: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    info: ScimKeyInfo,
    hash: [u8; 32],
}

/// The workspace a presented key names, for a server to find it before verifying; `None` for
/// text that is not a SCIM key.
pub fn key_tenant(presented: &str) -> Option<TenantId> {
    let mut parts = presented.split('.');
    if parts.next()? != PREFIX {
        return None;
    }
    parts.next()?.parse().ok()
}

fn parse(presented: &str) -> Option<(TenantId, [u8; 16], &str)> {
    let mut parts = presented.splitn(4, '.');
    if parts.next()? != PREFIX {
        return None;
    }
    let tenant = parts.next()?.parse().ok()?;
    let id_hex = parts.next()?;
    let secret = parts.next()?;
    if id_hex.len() != 32 || secret.is_empty() || secret.len() > 64 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(id_hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((tenant, id, secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random<const N: usize>() -> Result<zeroize::Zeroizing<[u8; N]>> {
    let mut bytes = zeroize::Zeroizing::new([0u8; N]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes[..])
        .map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(bytes)
}

/// The SCIM API keys of one workspace.
pub struct ScimKeys {
    ctx: TenantContext,
    ns: Namespace,
}

impl fmt::Debug for ScimKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimKeys")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

impl ScimKeys {
    /// The keys of `ctx`'s workspace.
    ///
    /// # Errors
    /// None in practice: the namespace name is a constant.
    pub fn new(ctx: TenantContext) -> Result<Self> {
        Ok(ScimKeys {
            ctx,
            ns: Namespace::new(SCIM_KEYS)?,
        })
    }

    async fn stored(&self) -> Result<Vec<(Stored, u64)>> {
        let page = self
            .ctx
            .store
            .scan(
                &self.ns,
                &KeyRange::all(),
                ScanOptions::new().limit(MAX_KEYS * 4),
            )
            .await?;
        page.entries
            .iter()
            .map(|e| Ok((codec::decode::<Stored>(&e.value)?, e.version)))
            .collect()
    }

    /// The keys that still work (or will, until their end), oldest first.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(&self) -> Result<Vec<ScimKeyInfo>> {
        let now = self.ctx.clock.now();
        let mut keys: Vec<ScimKeyInfo> = self
            .stored()
            .await?
            .into_iter()
            .map(|(s, _)| s.info)
            .filter(|k| k.expires.is_none_or(|e| e > now))
            .collect();
        keys.sort_by_key(|k| k.created);
        Ok(keys)
    }

    fn mint(&self, label: &str) -> Result<(ScimSecret, Stored, [u8; 16])> {
        let label = label.trim();
        let chars = label.chars().count();
        if chars == 0 || chars > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
            return Err(Error::InvalidInput(format!(
                "a key label has 1 to {MAX_LABEL_CHARS} characters and no control characters"
            )));
        }
        let id = *random::<16>()?;
        let secret = random::<32>()?;
        let text = format!(
            "{PREFIX}.{}.{}.{}",
            self.ctx.tenant,
            hex(&id),
            URL_SAFE_NO_PAD.encode(&secret[..])
        );
        let hash: [u8; 32] = Sha256::digest(URL_SAFE_NO_PAD.encode(&secret[..]).as_bytes()).into();
        let stored = Stored {
            info: ScimKeyInfo {
                id: hex(&id),
                label: label.to_owned(),
                created: self.ctx.clock.now(),
                expires: None,
            },
            hash,
        };
        Ok((ScimSecret(SecretString::from(text)), stored, id))
    }

    async fn audit(&self, actor: &Actor, action: &str, key: &str, old: Option<&str>) -> Result<()> {
        let mut event = self
            .ctx
            .event(AuditEventKind::ScimApiKeyRotated, actor.clone())
            .target(format!("scim_key:{key}"))
            .detail("action", action)?;
        if let Some(old) = old {
            event = event.detail("replaces", old)?;
        }
        self.ctx.record(event).await
    }

    /// Makes a key called `label`; its secret is returned once and never again.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad label or when the workspace has [`MAX_KEYS`] already.
    pub async fn create(&self, actor: &Actor, label: &str) -> Result<(ScimSecret, ScimKeyInfo)> {
        if self.list().await?.len() >= MAX_KEYS {
            return Err(Error::InvalidInput(format!(
                "a workspace has at most {MAX_KEYS} SCIM keys; revoke one first"
            )));
        }
        let (secret, stored, id) = self.mint(label)?;
        let mut batch = Batch::new();
        batch.put_if_absent(&self.ns, &id, &codec::encode(&stored)?);
        self.ctx.store.commit(batch).await?;
        self.audit(actor, "created", &stored.info.id, None).await?;
        Ok((secret, stored.info))
    }

    async fn find(&self, id: &str) -> Result<(Stored, [u8; 16], u64)> {
        let not_found = || Error::NotFound("SCIM key".into());
        let raw = parse(&format!("{PREFIX}.{}.{id}.x", self.ctx.tenant))
            .map(|(_, raw, _)| raw)
            .ok_or_else(not_found)?;
        let (stored, version) = self
            .ctx
            .store
            .get_decoded::<Stored>(&self.ns, &raw)
            .await?
            .ok_or_else(not_found)?;
        let now = self.ctx.clock.now();
        if stored.info.expires.is_some_and(|e| e <= now) {
            return Err(not_found());
        }
        Ok((stored, raw, version))
    }

    /// Replaces key `id` with a new one (same label): the old one keeps working for `overlap`
    /// (at most [`MAX_OVERLAP`]), then stops; both changes in one commit.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a key that is not live; [`Error::InvalidInput`] for an overlap
    /// over the limit; [`Error::Conflict`] when the key changed meanwhile.
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: &str,
        overlap: Duration,
    ) -> Result<(ScimSecret, ScimKeyInfo)> {
        if overlap > MAX_OVERLAP {
            return Err(Error::InvalidInput(format!(
                "the overlap is at most {} days",
                MAX_OVERLAP.as_secs() / 86_400
            )));
        }
        let (mut old, old_raw, version) = self.find(id).await?;
        let (secret, stored, new_raw) = self.mint(&old.info.label)?;
        let end = self.ctx.clock.now().saturating_add(overlap);
        old.info.expires = Some(old.info.expires.map_or(end, |e| e.min(end)));
        let mut batch = Batch::new();
        batch.put_if_version(&self.ns, &old_raw, version, &codec::encode(&old)?);
        batch.put_if_absent(&self.ns, &new_raw, &codec::encode(&stored)?);
        self.ctx
            .store
            .commit(batch)
            .await
            .map_err(|e| match e.kind() {
                zt_storage::ErrorKind::Conflict => {
                    Error::Conflict("the key changed meanwhile".into())
                }
                _ => e.into(),
            })?;
        self.audit(actor, "rotated", &stored.info.id, Some(&old.info.id))
            .await?;
        Ok((secret, stored.info))
    }

    /// Ends key `id` now.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a key that is not live.
    pub async fn revoke(&self, actor: &Actor, id: &str) -> Result<()> {
        let (stored, raw, version) = self.find(id).await?;
        let mut batch = Batch::new();
        batch.require_version(&self.ns, &raw, version);
        batch.delete(&self.ns, &raw);
        self.ctx.store.commit(batch).await?;
        self.audit(actor, "revoked", &stored.info.id, None).await
    }

    /// The live key `presented` is, if it is one of this workspace's.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] for anything else (malformed, unknown, wrong secret,
    /// ended), told apart to nobody.
    pub async fn verify(&self, presented: &str) -> Result<ScimKeyInfo> {
        let (tenant, raw, secret) = parse(presented).ok_or(Error::AuthenticationFailed)?;
        if tenant != self.ctx.tenant {
            return Err(Error::AuthenticationFailed);
        }
        let Some((stored, _)) = self.ctx.store.get_decoded::<Stored>(&self.ns, &raw).await? else {
            return Err(Error::AuthenticationFailed);
        };
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let now = self.ctx.clock.now();
        if !bool::from(hash.ct_eq(&stored.hash)) || stored.info.expires.is_some_and(|e| e <= now) {
            return Err(Error::AuthenticationFailed);
        }
        Ok(stored.info)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn key_text_is_parsed_strictly() {
        let tenant = TenantId::generate(&crate::SystemClock);
        let text = format!("ztscim.{tenant}.{}.abc", "0f".repeat(16));
        assert_eq!(key_tenant(&text), Some(tenant));
        assert!(parse(&text).is_some());
        for bad in [
            format!("ztscim.{tenant}.{}.abc", "0f".repeat(15)),
            format!("ztscim.{tenant}.{}.", "0f".repeat(16)),
            format!("zts.{tenant}.{}.abc", "0f".repeat(16)),
            format!("ztscim.{tenant}.{}.abc", "zz".repeat(16)),
            format!("ztscim.{tenant}.{}é.abc", "0f".repeat(15)),
            "ztscim".into(),
            String::new(),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
        assert!(format!("{:?}", ScimSecret(SecretString::from("s3cr3t"))).contains("redacted"));
    }
}
