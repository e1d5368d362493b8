//! The keyring: tenant keys wrapped by the KMS, scope keys wrapped by tenant keys, an index key
//! for blinded lookups, caching, crypto-shredding and outage handling.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::envelope::{EnvelopeHeader, EnvelopeKey};
use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::kms::{EncryptionContext, KeyId, KeyRef, Kms, WrappedKey};

/// The version a record was read at, for a conditional write.
pub type RecordVersion = u64;

/// Where a keyring keeps its records: wrapped keys only, never key material in the clear.
///
/// zt-crypto depends on no other zt crate, so this is the keyring's own small port.
/// `zt_storage` implements it over any `KvStore`; tests use `MemoryKeyRecords` (feature
/// `testing`).
#[async_trait]
pub trait KeyRecords: Send + Sync + 'static {
    /// Reads a record and its version.
    async fn get(&self, name: &str) -> Result<Option<(Vec<u8>, RecordVersion)>>;

    /// Writes `value` if the record is still at `expected` (`None`: still absent). Returns
    /// `false`, writing nothing, when it is not.
    async fn put(&self, name: &str, value: &[u8], expected: Option<RecordVersion>) -> Result<bool>;
}

/// What the keyring does while the KMS is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutagePolicy {
    /// Refuse every key, cached or not, until the KMS answers again (the default).
    #[default]
    FailClosed,
    /// Keep serving cached keys until their time-to-live ends; refuse the rest.
    ServeCached,
}

/// How a keyring caches and behaves.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct KeyringConfig {
    /// How long an unwrapped key stays cached.
    pub ttl: Duration,
    /// The most keys cached at once (tenant and scope keys together).
    pub max_cached: usize,
    /// Behaviour during a KMS outage.
    pub outage: OutagePolicy,
    /// Whether each tenant's keys are wrapped under a KMS key of its own
    /// (`<KMS key>/<tenant>`, created on first use), which [`Keyring::destroy_tenant`] destroys
    /// in the KMS. Off by default: every tenant under the one KMS key.
    pub kms_key_per_tenant: bool,
}

impl Default for KeyringConfig {
    fn default() -> Self {
        KeyringConfig {
            ttl: Duration::from_secs(300),
            max_cached: 10_000,
            outage: OutagePolicy::FailClosed,
            kms_key_per_tenant: false,
        }
    }
}

impl KeyringConfig {
    /// Sets the time-to-live of cached keys.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the cache bound.
    pub fn max_cached(mut self, max: usize) -> Self {
        self.max_cached = max;
        self
    }

    /// Sets the outage policy.
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// Wraps each tenant's keys under a KMS key of its own (see the field).
    pub fn kms_key_per_tenant(mut self, on: bool) -> Self {
        self.kms_key_per_tenant = on;
        self
    }
}

/// Something the keyring reports; the audit log records these once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringEvent {
    /// A KMS call failed with a temporary error: the keyring is now in an outage.
    KmsOutage {
        /// The error, as text (it holds no key material).
        error: String,
    },
    /// The KMS answered again after an outage.
    KmsRecovered,
    /// A scope key was destroyed; its data can no longer be read by anyone.
    ScopeKeyDestroyed {
        /// The tenant.
        tenant: String,
        /// The scope.
        scope: String,
    },
    /// A tenant's keys were destroyed: none of its data can be read again.
    TenantDestroyed {
        /// The tenant.
        tenant: String,
    },
}

/// What [`Keyring::destroy_tenant`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantDestroyed {
    /// Whether the tenant's own KMS key was destroyed in the KMS: then no copy of the tenant's
    /// key record (a backup's) unwraps either.
    pub kms_key_destroyed: bool,
    /// Tenant key versions that were wrapped under a shared KMS key (written before
    /// [`KeyringConfig::kms_key_per_tenant`]): gone from this store, but a copy of the record
    /// taken before still unwraps while that KMS key lives.
    pub shared_versions: usize,
}

/// The keyed hash that blinds lookup keys (user names, e-mail addresses) for a tenant.
pub struct IndexKey(Zeroizing<[u8; KEY_LEN]>);

impl IndexKey {
    /// The blinded form of `value` for lookups of kind `purpose` (`"username"`, ...):
    /// HMAC-SHA256(index key, len(purpose) ‖ purpose ‖ value).
    pub fn blind(&self, purpose: &str, value: &[u8]) -> [u8; 32] {
        // HMAC zero-pads its key to the 64-byte block; doing it here gives the infallible
        // fixed-size constructor the same key.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..KEY_LEN].copy_from_slice(self.0.as_ref());
        let mut mac = <Hmac<Sha256>>::new(&(*block).into());
        mac.update(&(purpose.len() as u64).to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(<redacted>)")
    }
}

const TENANT_RECORD: &[u8; 4] = b"ZTT1";
/// The record of a destroyed tenant: no key versions, and none is ever made again.
const TENANT_DESTROYED: &[u8; 4] = b"ZTT0";
const SCOPE_RECORD: &[u8; 4] = b"ZTS1";
const SCOPE_LIVE: u8 = 0;
const SCOPE_DESTROYED: u8 = 1;
/// The scope whose key the index key is derived from. Scopes starting with `_` are the
/// keyring's own; callers cannot name them.
const INDEX_SCOPE: &str = "_index";

/// A tenant's key versions, each wrapped by the KMS.
struct TenantRecord {
    current: u32,
    versions: Vec<(u32, WrappedKey)>,
}

impl TenantRecord {
    fn encode(&self) -> Vec<u8> {
        let mut out = TENANT_RECORD.to_vec();
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(&(self.versions.len() as u16).to_be_bytes());
        for (version, wrapped) in &self.versions {
            let bytes = wrapped.to_bytes();
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt("tenant key record".into());
        let rest = bytes
            .strip_prefix(TENANT_RECORD.as_slice())
            .ok_or_else(corrupt)?;
        let (current, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let (count, mut rest) = rest.split_first_chunk::<2>().ok_or_else(corrupt)?;
        let mut versions = Vec::new();
        for _ in 0..u16::from_be_bytes(*count) {
            let (version, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let (len, tail) = tail.split_first_chunk::<2>().ok_or_else(corrupt)?;
            let len = usize::from(u16::from_be_bytes(*len));
            let wrapped = WrappedKey::from_bytes(tail.get(..len).ok_or_else(corrupt)?)?;
            versions.push((u32::from_be_bytes(*version), wrapped));
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(corrupt());
        }
        Ok(TenantRecord {
            current: u32::from_be_bytes(*current),
            versions,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Tenant(String, u32),
    Scope(String, String),
}

struct Cached {
    key: Arc<EnvelopeKey>,
    expires: Instant,
}

/// Tenant and scope keys, unwrapped on demand and cached.
///
/// Two levels sit under the KMS:
/// - **Tenant keys** are data keys wrapped by the KMS key, bound to the context
///   `{tenant, purpose: "tenant-key"}`. They are versioned: `rotate_tenant_key` adds a version
///   that new scope keys are wrapped under.
/// - **Scope keys** (one per channel, user, file, ...) are data keys sealed as envelopes under a
///   tenant key version. Destroying one is crypto-shredding: its record becomes a tombstone, its
///   cached copy is dropped, and later reads fail with [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed).
///
/// The **index key** is derived with HKDF from the tenant's `index` scope key. It stays the same
/// across tenant key rotations, so blinded lookup keys keep working.
///
/// **Caching.** Unwrapped keys are cached for [`KeyringConfig::ttl`], at most
/// [`KeyringConfig::max_cached`] of them.
///
/// **Outages.** When the KMS fails with a temporary error, the keyring reports
/// [`KeyringEvent::KmsOutage`] and follows [`KeyringConfig::outage`]:
/// - by default it fails closed, and even cached keys are refused until a KMS call succeeds again;
/// - with `ServeCached`, cached keys are served until their TTL ends.
///
/// The recovery is reported as [`KeyringEvent::KmsRecovered`].
pub struct Keyring {
    kms: Arc<dyn Kms>,
    records: Arc<dyn KeyRecords>,
    kms_key: KeyId,
    config: KeyringConfig,
    cache: Mutex<HashMap<CacheKey, Cached>>,
    in_outage: AtomicBool,
    events: Option<Arc<dyn Fn(KeyringEvent) + Send + Sync>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("kms_key", &self.kms_key)
            .field("config", &self.config)
            .field("in_outage", &self.in_outage.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn tenant_context(tenant: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("tenant", tenant)
        .with("purpose", "tenant-key")
}

/// The context binding a scope key's envelope to its tenant and scope.
fn scope_context(tenant: &str, scope: &str) -> Vec<u8> {
    let mut out = b"zt-scope-key".to_vec();
    for part in [tenant, scope] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn tenant_key_ref(tenant: &str, version: u32) -> Result<KeyRef> {
    Ok(KeyRef {
        id: KeyId::new(&format!("tenant/{tenant}"))?,
        version,
    })
}

/// Refuses the keyring's reserved scope names.
fn public_scope(scope: &str) -> Result<&str> {
    if scope.starts_with('_') {
        return Err(Error::invalid(format!(
            "scope {scope:?} is reserved (names starting with '_' are)"
        )));
    }
    Ok(scope)
}

fn scope_key_ref(scope: &str) -> Result<KeyRef> {
    Ok(KeyRef {
        id: KeyId::new(scope)?,
        version: 1,
    })
}

impl Keyring {
    /// A keyring whose tenant keys are wrapped by `kms_key` in `kms`, with records in `records`.
    pub fn new(
        kms: Arc<dyn Kms>,
        records: Arc<dyn KeyRecords>,
        kms_key: KeyId,
        config: KeyringConfig,
    ) -> Self {
        Keyring {
            kms,
            records,
            kms_key,
            config,
            cache: Mutex::default(),
            in_outage: AtomicBool::new(false),
            events: None,
        }
    }

    /// Reports [`KeyringEvent`]s to `listener`.
    pub fn with_events(mut self, listener: Arc<dyn Fn(KeyringEvent) + Send + Sync>) -> Self {
        self.events = Some(listener);
        self
    }

    fn emit(&self, event: KeyringEvent) {
        tracing::info!(?event, "keyring event");
        if let Some(listener) = &self.events {
            listener(event);
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<Arc<EnvelopeKey>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.get(key) {
            Some(entry) if entry.expires > Instant::now() => Some(Arc::clone(&entry.key)),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: CacheKey, value: Arc<EnvelopeKey>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if cache.len() >= self.config.max_cached {
            cache.retain(|_, entry| entry.expires > now);
        }
        if cache.len() >= self.config.max_cached {
            // Still full: drop the entry closest to expiry.
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        if self.config.max_cached > 0 {
            cache.insert(
                key,
                Cached {
                    key: value,
                    expires: now + self.config.ttl,
                },
            );
        }
    }

    /// Runs a KMS call, tracking outages and recoveries.
    async fn kms_call<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match call.await {
            Ok(value) => {
                if self.in_outage.swap(false, Ordering::SeqCst) {
                    self.emit(KeyringEvent::KmsRecovered);
                }
                Ok(value)
            }
            Err(e) if e.is_temporary() => {
                if !self.in_outage.swap(true, Ordering::SeqCst) {
                    self.emit(KeyringEvent::KmsOutage {
                        error: e.to_string(),
                    });
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Serves a cached key, unless the policy says an outage forbids it.
    async fn serve_cached(&self, tenant: &str, key: &CacheKey) -> Result<Option<Arc<EnvelopeKey>>> {
        let Some(found) = self.cached(key) else {
            return Ok(None);
        };
        if self.in_outage.load(Ordering::SeqCst) && self.config.outage == OutagePolicy::FailClosed {
            // Probe the KMS: serve only once it answers again.
            self.probe(tenant).await?;
        }
        Ok(Some(found))
    }

    /// One KMS round trip proving it answers (unwrapping the tenant's current key).
    async fn probe(&self, tenant: &str) -> Result<()> {
        let (record, _) = self.tenant_record(tenant).await?;
        let (_, wrapped) = record
            .versions
            .iter()
            .find(|(v, _)| *v == record.current)
            .ok_or_else(|| Error::Corrupt("tenant key record has no current version".into()))?;
        self.kms_call(self.kms.unwrap(wrapped, &tenant_context(tenant)))
            .await
            .map(|_| ())
    }

    /// The tenant's record, created on first use, with the version it was read at (`None`
    /// when this call created it).
    async fn tenant_record(&self, tenant: &str) -> Result<(TenantRecord, Option<RecordVersion>)> {
        let name = format!("tenant/{tenant}");
        loop {
            if let Some((bytes, at)) = self.records.get(&name).await? {
                if bytes == TENANT_DESTROYED {
                    return Err(Error::KeyDestroyed(format!("tenant/{tenant}")));
                }
                return Ok((TenantRecord::decode(&bytes)?, Some(at)));
            }
            let kms_key = self.ensure_tenant_kms_key(tenant).await?;
            let (_, wrapped) = self
                .kms_call(
                    self.kms
                        .generate_data_key(&kms_key, &tenant_context(tenant)),
                )
                .await?;
            let record = TenantRecord {
                current: 1,
                versions: vec![(1, wrapped)],
            };
            if self.records.put(&name, &record.encode(), None).await? {
                return Ok((record, None));
            }
            // Another node created it first; read theirs.
        }
    }

    /// The tenant key `version` (its current version when `None`).
    async fn tenant_key(&self, tenant: &str, version: Option<u32>) -> Result<Arc<EnvelopeKey>> {
        if let Some(v) = version {
            let key = CacheKey::Tenant(tenant.to_string(), v);
            if let Some(found) = self.serve_cached(tenant, &key).await? {
                return Ok(found);
            }
        }
        let (record, _) = self.tenant_record(tenant).await?;
        let version = version.unwrap_or(record.current);
        let cache_key = CacheKey::Tenant(tenant.to_string(), version);
        if let Some(found) = self.serve_cached(tenant, &cache_key).await? {
            return Ok(found);
        }
        let (_, wrapped) = record
            .versions
            .iter()
            .find(|(v, _)| *v == version)
            .ok_or_else(|| Error::KeyNotFound(format!("tenant/{tenant}#{version}")))?;
        let key = self
            .kms_call(self.kms.unwrap(wrapped, &tenant_context(tenant)))
            .await?;
        let envelope_key = Arc::new(EnvelopeKey::new(&key, tenant_key_ref(tenant, version)?)?);
        self.remember(cache_key, Arc::clone(&envelope_key));
        Ok(envelope_key)
    }

    /// Adds a tenant key version; new scope keys are wrapped under it, older ones stay readable.
    ///
    /// # Errors
    /// As the KMS and the records store fail.
    pub async fn rotate_tenant_key(&self, tenant: &str) -> Result<u32> {
        let name = format!("tenant/{tenant}");
        loop {
            // A record this call just created has no known version yet: read it back once.
            let (mut record, Some(at)) = self.tenant_record(tenant).await? else {
                continue;
            };
            // The record counts versions in 16 bits; refuse rather than write one that cannot
            // be read.
            if record.versions.len() >= usize::from(u16::MAX) {
                return Err(Error::invalid(format!(
                    "tenant {tenant} holds the most key versions it can"
                )));
            }
            let next = record
                .versions
                .iter()
                .map(|(v, _)| *v)
                .max()
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| Error::invalid("tenant key versions exhausted"))?;
            let kms_key = self.ensure_tenant_kms_key(tenant).await?;
            let (_, wrapped) = self
                .kms_call(
                    self.kms
                        .generate_data_key(&kms_key, &tenant_context(tenant)),
                )
                .await?;
            record.versions.push((next, wrapped));
            record.current = next;
            if self.records.put(&name, &record.encode(), Some(at)).await? {
                return Ok(next);
            }
        }
    }

    /// Re-wraps every version of the tenant's key under the KMS key's current version, after a
    /// KMS key rotation. No data and no scope key is re-encrypted. Once every tenant has been
    /// rewrapped, the old KMS key version can be retired. Returns how many versions were
    /// rewrapped.
    ///
    /// # Errors
    /// As the KMS and the records store fail; a concurrent change is retried.
    pub async fn rewrap_tenant_keys(&self, tenant: &str) -> Result<usize> {
        let name = format!("tenant/{tenant}");
        loop {
            let Some((bytes, at)) = self.records.get(&name).await? else {
                return Ok(0);
            };
            if bytes == TENANT_DESTROYED {
                return Ok(0);
            }
            let mut record = TenantRecord::decode(&bytes)?;
            let mut rewrapped = 0;
            for (_, wrapped) in &mut record.versions {
                let moved = self
                    .kms_call(self.kms.rewrap(wrapped, &tenant_context(tenant)))
                    .await?;
                if moved.key != wrapped.key {
                    rewrapped += 1;
                }
                *wrapped = moved;
            }
            if self.records.put(&name, &record.encode(), Some(at)).await? {
                return Ok(rewrapped);
            }
        }
    }

    /// Rotates the KMS key that wraps `tenant`'s keys (its own with
    /// [`KeyringConfig::kms_key_per_tenant`], else the keyring's, which every tenant shares) and
    /// re-wraps every version of the tenant's key under the new KMS key version. Returns the new
    /// KMS key version and how many tenant key versions were rewrapped. Other tenants under a
    /// shared KMS key are rewrapped when their own turn comes ([`rewrap_tenant_keys`](Self::rewrap_tenant_keys)).
    ///
    /// # Errors
    /// As the KMS and the records store fail.
    pub async fn rotate_tenant_kms_key(&self, tenant: &str) -> Result<(u32, usize)> {
        let key = self.ensure_tenant_kms_key(tenant).await?;
        let version = self.kms_call(self.kms.rotate(&key)).await?;
        let rewrapped = self.rewrap_tenant_keys(tenant).await?;
        Ok((version, rewrapped))
    }

    /// The key of `scope` in `tenant`, created on first use.
    ///
    /// # Errors
    /// [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed) after [`destroy_scope_key`](Self::destroy_scope_key);
    /// [`Unavailable`](crate::ErrorKind::Unavailable) during a KMS outage (see the policy).
    pub async fn scope_key(&self, tenant: &str, scope: &str) -> Result<Arc<EnvelopeKey>> {
        self.scope_key_inner(tenant, public_scope(scope)?, true)
            .await
    }

    /// The key of an existing scope; [`KeyNotFound`](crate::ErrorKind::KeyNotFound) if it was
    /// never created. Readers use this, so that reading never creates keys.
    pub async fn existing_scope_key(&self, tenant: &str, scope: &str) -> Result<Arc<EnvelopeKey>> {
        self.scope_key_inner(tenant, public_scope(scope)?, false)
            .await
    }

    async fn scope_key_inner(
        &self,
        tenant: &str,
        scope: &str,
        create: bool,
    ) -> Result<Arc<EnvelopeKey>> {
        let key_ref = scope_key_ref(scope)?;
        let cache_key = CacheKey::Scope(tenant.to_string(), scope.to_string());
        if let Some(found) = self.serve_cached(tenant, &cache_key).await? {
            return Ok(found);
        }
        let name = format!("scope/{tenant}/{scope}");
        let context = scope_context(tenant, scope);
        loop {
            let key = match self.records.get(&name).await? {
                Some((bytes, _)) => match bytes
                    .strip_prefix(SCOPE_RECORD.as_slice())
                    .and_then(<[u8]>::split_first)
                {
                    Some((&SCOPE_LIVE, sealed)) => {
                        let header = EnvelopeHeader::parse(sealed)
                            .map_err(|_| Error::Corrupt(format!("scope key record {name}")))?;
                        let tenant_key = self.tenant_key(tenant, Some(header.key.version)).await?;
                        let material = tenant_key.open(sealed, &context)?;
                        DataKey::from_slice(&material)?
                    }
                    Some((&SCOPE_DESTROYED, _)) => {
                        return Err(Error::KeyDestroyed(format!("{tenant}/{scope}")));
                    }
                    _ => return Err(Error::Corrupt(format!("scope key record {name}"))),
                },
                None if !create => {
                    return Err(Error::KeyNotFound(format!("{tenant}/{scope}")));
                }
                None => {
                    let key = DataKey::generate();
                    let tenant_key = self.tenant_key(tenant, None).await?;
                    let mut record = SCOPE_RECORD.to_vec();
                    record.push(SCOPE_LIVE);
                    record.extend_from_slice(&tenant_key.seal(key.expose(), &context)?);
                    if !self.records.put(&name, &record, None).await? {
                        continue; // created concurrently: use theirs
                    }
                    key
                }
            };
            let envelope_key = Arc::new(EnvelopeKey::new(&key, key_ref)?);
            self.remember(cache_key, Arc::clone(&envelope_key));
            return Ok(envelope_key);
        }
    }

    /// Crypto-shreds `scope`: its key is gone for good, and with it every envelope sealed under
    /// it. Idempotent; a scope that never had a key gets a tombstone, so none is ever made.
    pub async fn destroy_scope_key(&self, tenant: &str, scope: &str) -> Result<()> {
        self.destroy(tenant, scope, true).await.map(|_| ())
    }

    /// Crypto-shreds `scope` as [`destroy_scope_key`](Self::destroy_scope_key) does if it has a
    /// key record, and writes nothing if it has none (for scopes of an earlier naming, which
    /// may never have existed). Returns whether there was a record.
    pub async fn destroy_existing_scope_key(&self, tenant: &str, scope: &str) -> Result<bool> {
        self.destroy(tenant, scope, false).await
    }

    async fn destroy(&self, tenant: &str, scope: &str, absent_too: bool) -> Result<bool> {
        scope_key_ref(public_scope(scope)?)?;
        let name = format!("scope/{tenant}/{scope}");
        let existed = loop {
            let current = self.records.get(&name).await?;
            if current.is_none() && !absent_too {
                break false;
            }
            let tombstone = [SCOPE_RECORD.as_slice(), &[SCOPE_DESTROYED]].concat();
            if current
                .as_ref()
                .is_some_and(|(bytes, _)| *bytes == tombstone)
            {
                break true;
            }
            let existed = current.is_some();
            let expected = current.map(|(_, at)| at);
            if self.records.put(&name, &tombstone, expected).await? {
                break existed;
            }
        };
        if !existed && !absent_too {
            return Ok(false);
        }
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&CacheKey::Scope(tenant.to_string(), scope.to_string()));
        self.emit(KeyringEvent::ScopeKeyDestroyed {
            tenant: tenant.to_string(),
            scope: scope.to_string(),
        });
        Ok(existed)
    }

    /// The KMS key `tenant`'s keys are wrapped under: its own with
    /// [`KeyringConfig::kms_key_per_tenant`], else the keyring's.
    fn tenant_kms_key(&self, tenant: &str) -> Result<KeyId> {
        if self.config.kms_key_per_tenant {
            KeyId::new(&format!("{}/{tenant}", self.kms_key.as_str()))
        } else {
            Ok(self.kms_key.clone())
        }
    }

    /// [`tenant_kms_key`](Self::tenant_kms_key), created in the KMS if it is the tenant's own
    /// and does not exist yet.
    async fn ensure_tenant_kms_key(&self, tenant: &str) -> Result<KeyId> {
        let key = self.tenant_kms_key(tenant)?;
        if self.config.kms_key_per_tenant {
            // Called when a tenant's first key (or a new version) is made: the key is new as a
            // rule, so creating it is the one call; one that exists already is fine.
            match self.kms_call(self.kms.create_key(&key)).await {
                Ok(_) => {}
                Err(e) if e.kind() == crate::ErrorKind::InvalidInput => {}
                Err(e) => return Err(e),
            }
        }
        Ok(key)
    }

    /// Destroys every key of `tenant`, for good: its own KMS key in the KMS (with
    /// [`KeyringConfig::kms_key_per_tenant`]), so no copy of its records, wherever kept, ever
    /// unwraps again; then its key record becomes a tombstone, so no key of the tenant is ever
    /// made or served again ([`KeyDestroyed`](crate::ErrorKind::KeyDestroyed)), and the cache
    /// forgets its keys. Takes the same time whatever the tenant holds. Idempotent: one cut
    /// short is finished by calling again.
    ///
    /// # Errors
    /// As the KMS and the records store fail (nothing is reported destroyed until it is).
    pub async fn destroy_tenant(&self, tenant: &str) -> Result<TenantDestroyed> {
        let name = format!("tenant/{tenant}");
        let own = self.tenant_kms_key(tenant)?;
        let mut report = TenantDestroyed {
            kms_key_destroyed: false,
            shared_versions: 0,
        };
        loop {
            let current = self.records.get(&name).await?;
            let versions = match &current {
                Some((bytes, _)) if bytes == TENANT_DESTROYED => Vec::new(),
                Some((bytes, _)) => TenantRecord::decode(bytes)?.versions,
                None => Vec::new(),
            };
            report.shared_versions = versions
                .iter()
                .filter(|(_, wrapped)| !self.config.kms_key_per_tenant || wrapped.key.id != own)
                .count();
            if self.config.kms_key_per_tenant {
                match self.kms_call(self.kms.destroy(&own)).await {
                    Ok(()) => report.kms_key_destroyed = true,
                    // Never made (a tenant that never wrote), or gone already.
                    Err(e)
                        if matches!(
                            e.kind(),
                            crate::ErrorKind::KeyNotFound | crate::ErrorKind::KeyDestroyed
                        ) =>
                    {
                        report.kms_key_destroyed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            if current
                .as_ref()
                .is_some_and(|(bytes, _)| bytes == TENANT_DESTROYED)
            {
                break;
            }
            let expected = current.map(|(_, at)| at);
            if self.records.put(&name, TENANT_DESTROYED, expected).await? {
                break;
            }
        }
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| match key {
                CacheKey::Tenant(t, _) | CacheKey::Scope(t, _) => t != tenant,
            });
        self.emit(KeyringEvent::TenantDestroyed {
            tenant: tenant.to_string(),
        });
        Ok(report)
    }

    /// The tenant's index key, for blinding lookup keys.
    pub async fn index_key(&self, tenant: &str) -> Result<IndexKey> {
        let scope = self.scope_key_inner(tenant, INDEX_SCOPE, true).await?;
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(b"zt-index-key-v1"), scope.export_secret().as_ref())
            .expand(tenant.as_bytes(), out.as_mut())
            .map_err(|_| Error::invalid("HKDF output length"))?;
        Ok(IndexKey(out))
    }
}
