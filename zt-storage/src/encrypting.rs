//! `EncryptingStore`: encryption at rest for any `KvStore`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use zt_crypto::Keyring;
use zt_crypto::envelope::EnvelopeHeader;

use crate::error::{Error, Result};
use crate::store::KvStore;
use crate::types::{
    Batch, Check, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version, Write,
};

/// Chooses the scope key that encrypts a row: its namespace and key in, a scope name out.
pub type ScopeFn = Arc<dyn Fn(&Namespace, &[u8]) -> String + Send + Sync>;

fn crypto_error(e: zt_crypto::Error) -> Error {
    use zt_crypto::ErrorKind as K;
    match e.kind() {
        K::KeyDestroyed => Error::KeyDestroyed(e.to_string()),
        K::Unavailable => Error::unavailable("the key service is unavailable", Some(Box::new(e))),
        // An envelope that does not open was altered, moved to another row or tenant, or
        // damaged. Which of those is deliberately not said.
        K::Decrypt => Error::corrupt("a stored value did not decrypt", None),
        K::Corrupt | K::KeyNotFound => Error::corrupt(
            "stored key material is missing or damaged",
            Some(Box::new(e)),
        ),
        K::InvalidInput => Error::InvalidInput(e.to_string()),
        _ => Error::backend("key service", e),
    }
}

/// Encrypts every value of the stores it wraps, for one tenant.
///
/// - **Values** are sealed as `zt_crypto` envelopes under a scope key from the [`Keyring`]. By
///   default each namespace has its own scope key (`ns/<namespace>`); [`with_scopes`](Self::with_scopes)
///   chooses finer scopes, such as one per channel, so that destroying that scope key shreds
///   exactly that data.
/// - The **associated data** binds tenant, namespace and row key, and the envelope header binds the
///   scope key and its version. A value copied to another row, namespace or tenant does not open
///   ([`Corrupt`](crate::ErrorKind::Corrupt)).
/// - **Blinded namespaces** ([`blind_namespace`](Self::blind_namespace), opt-in) store each key
///   as an HMAC under the tenant's index key. Names, e-mail addresses and the like never reach
///   disk. The original key travels inside the encrypted value, so scans still return it. A
///   blinded namespace can be read by key or scanned whole, in no particular order; a range scan
///   over it is invalid input.
///
/// Versions and preconditions are the inner store's, so every [`KvStore`] guarantee still holds.
/// The store runs the whole conformance suite.
pub struct EncryptingStore<S: KvStore> {
    inner: S,
    keyring: Arc<Keyring>,
    tenant: String,
    scopes: ScopeFn,
    blinded: HashSet<Namespace>,
    reserved: HashSet<Namespace>,
}

impl<S: KvStore> fmt::Debug for EncryptingStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingStore")
            .field("tenant", &self.tenant)
            .field("blinded", &self.blinded)
            .finish_non_exhaustive()
    }
}

/// The associated data of a row: a domain label, then tenant, namespace and key, each
/// length-prefixed.
fn row_context(tenant: &str, namespace: &Namespace, key: &[u8]) -> Vec<u8> {
    let mut out = b"zt-kv-v1".to_vec();
    for part in [tenant.as_bytes(), namespace.as_str().as_bytes(), key] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// The namespace of the keyring's records in the store below encryption
/// ([`KvKeyRecords::standard`]). Every [`EncryptingStore`] refuses it, so no tenant store can
/// read or overwrite the wrapped keys, whether or not its builder remembered to reserve it.
pub const KEY_RECORDS: &str = "zt.keys";

fn key_records_namespace() -> HashSet<Namespace> {
    Namespace::new(KEY_RECORDS).into_iter().collect()
}

impl<S: KvStore> EncryptingStore<S> {
    /// Wraps `inner` for `tenant`, with keys from `keyring`. The keyring's records namespace,
    /// [`KEY_RECORDS`], is reserved from the start.
    pub fn new(inner: S, keyring: Arc<Keyring>, tenant: impl Into<String>) -> Self {
        EncryptingStore {
            inner,
            keyring,
            tenant: tenant.into(),
            scopes: Arc::new(|namespace, _| format!("ns/{namespace}")),
            blinded: HashSet::new(),
            reserved: key_records_namespace(),
        }
    }

    /// Chooses the scope key of each row.
    pub fn with_scopes(mut self, scopes: ScopeFn) -> Self {
        self.scopes = scopes;
        self
    }

    /// Stores the keys of `namespace` blinded (see the type's docs).
    pub fn blind_namespace(mut self, namespace: Namespace) -> Self {
        self.blinded.insert(namespace);
        self
    }

    /// Refuses `namespace` through this wrapper, such as the one holding the keyring's records
    /// in the same inner store.
    pub fn reserve_namespace(mut self, namespace: Namespace) -> Self {
        self.reserved.insert(namespace);
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check_namespace(&self, namespace: &Namespace) -> Result<()> {
        if self.reserved.contains(namespace) {
            return Err(Error::InvalidInput(format!(
                "namespace {namespace} is reserved for the key store"
            )));
        }
        Ok(())
    }

    /// The tenant's index key when any of `namespaces` is blinded, fetched once per operation.
    async fn index_for<'a>(
        &self,
        mut namespaces: impl Iterator<Item = &'a Namespace>,
    ) -> Result<Option<zt_crypto::IndexKey>> {
        if !namespaces.any(|ns| self.blinded.contains(ns)) {
            return Ok(None);
        }
        self.keyring
            .index_key(&self.tenant)
            .await
            .map(Some)
            .map_err(crypto_error)
    }

    /// The key as stored: itself, or its HMAC in a blinded namespace (`index` is then the
    /// tenant's index key, from [`index_for`](Self::index_for)).
    fn stored_key(
        &self,
        namespace: &Namespace,
        key: &[u8],
        index: Option<&zt_crypto::IndexKey>,
    ) -> Result<Vec<u8>> {
        if !self.blinded.contains(namespace) {
            return Ok(key.to_vec());
        }
        let index = index.ok_or_else(|| Error::backend("blinding", "index key not fetched"))?;
        Ok(index.blind(namespace.as_str(), key).to_vec())
    }

    /// Seals a row's value. The associated data binds the key as stored (`stored`: the key, or
    /// its HMAC in a blinded namespace), so a value moved to another row does not open.
    async fn seal(
        &self,
        namespace: &Namespace,
        key: &[u8],
        stored: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>> {
        let scope = (self.scopes)(namespace, key);
        let scope_key = self
            .keyring
            .scope_key(&self.tenant, &scope)
            .await
            .map_err(crypto_error)?;
        let context = row_context(&self.tenant, namespace, stored);
        if self.blinded.contains(namespace) {
            // Keep the original key inside, so scans can return it.
            let mut plain = Vec::with_capacity(8 + key.len() + value.len());
            plain.extend_from_slice(&(key.len() as u64).to_be_bytes());
            plain.extend_from_slice(key);
            plain.extend_from_slice(value);
            scope_key.seal(&plain, &context).map_err(crypto_error)
        } else {
            scope_key.seal(value, &context).map_err(crypto_error)
        }
    }

    /// Opens a stored row; returns its original key and value.
    async fn open(
        &self,
        namespace: &Namespace,
        stored: &[u8],
        sealed: &[u8],
        index: Option<&zt_crypto::IndexKey>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let header = EnvelopeHeader::parse(sealed).map_err(crypto_error)?;
        let scope_key = self
            .keyring
            .existing_scope_key(&self.tenant, header.key.id.as_str())
            .await
            .map_err(crypto_error)?;
        let context = row_context(&self.tenant, namespace, stored);
        let plain = scope_key.open(sealed, &context).map_err(crypto_error)?;
        if !self.blinded.contains(namespace) {
            return Ok((stored.to_vec(), plain));
        }
        let (len, rest) = plain
            .split_first_chunk::<8>()
            .ok_or_else(|| Error::corrupt("a blinded value is too short", None))?;
        let len = usize::try_from(u64::from_be_bytes(*len))
            .ok()
            .filter(|&l| l <= rest.len())
            .ok_or_else(|| Error::corrupt("a blinded value is damaged", None))?;
        let (key, value) = rest.split_at(len);
        if self.stored_key(namespace, key, index)? != stored {
            return Err(Error::corrupt(
                "a blinded value does not belong to its row",
                None,
            ));
        }
        Ok((key.to_vec(), value.to_vec()))
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KvStore> KvStore for EncryptingStore<S> {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        self.check_namespace(namespace)?;
        crate::types::check_key(key)?;
        let index = self.index_for(std::iter::once(namespace)).await?;
        let stored = self.stored_key(namespace, key, index.as_ref())?;
        let Some(entry) = self.inner.get(namespace, &stored).await? else {
            return Ok(None);
        };
        let (_, value) = self
            .open(namespace, &stored, &entry.value, index.as_ref())
            .await?;
        Ok(Some(Entry {
            key: key.to_vec(),
            value,
            version: entry.version,
        }))
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage> {
        self.check_namespace(namespace)?;
        let blinded = self.blinded.contains(namespace);
        if blinded && *range != KeyRange::all() && !is_resumed_full_scan(range) {
            return Err(Error::InvalidInput(format!(
                "namespace {namespace} is blinded: it can only be scanned whole"
            )));
        }
        let page = self.inner.scan(namespace, range, options).await?;
        let index = self.index_for(std::iter::once(namespace)).await?;
        let mut entries = Vec::with_capacity(page.entries.len());
        for entry in page.entries {
            let (key, value) = self
                .open(namespace, &entry.key, &entry.value, index.as_ref())
                .await?;
            entries.push(Entry {
                key,
                value,
                version: entry.version,
            });
        }
        Ok(ScanPage {
            entries,
            next: page.next,
        })
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        batch.validate()?;
        let index = self
            .index_for(
                batch
                    .writes()
                    .iter()
                    .map(Write::namespace)
                    .chain(batch.checks().iter().map(|c| &c.namespace)),
            )
            .await?;
        let (writes, checks) = batch.into_parts();
        let mut sealed = Batch::new();
        // Blinded keys checked, to name the caller's key if a precondition fails.
        let mut originals = Vec::new();
        for Check {
            namespace,
            key,
            precondition,
        } in checks
        {
            self.check_namespace(&namespace)?;
            let stored = self.stored_key(&namespace, &key, index.as_ref())?;
            sealed.require(&namespace, &stored, precondition);
            if stored != key {
                originals.push((stored, key));
            }
        }
        for write in writes {
            self.check_namespace(write.namespace())?;
            let stored = self.stored_key(write.namespace(), write.key(), index.as_ref())?;
            match write {
                Write::Put {
                    namespace,
                    key,
                    value,
                } => {
                    let value = self.seal(&namespace, &key, &stored, &value).await?;
                    sealed.put_owned(&namespace, stored, value);
                }
                Write::Delete { namespace, .. } => {
                    sealed.delete(&namespace, &stored);
                }
            }
        }
        match self.inner.commit(sealed).await {
            Err(Error::Conflict(mut detail)) => {
                // The inner store names the key as stored; give the caller back its own key.
                if let Some((_, original)) = originals.into_iter().find(|(s, _)| *s == detail.key) {
                    detail.key = original;
                }
                Err(Error::Conflict(detail))
            }
            other => other,
        }
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

/// A page boundary handed back by a whole-namespace scan: an open range after (or before) one
/// stored key.
fn is_resumed_full_scan(range: &KeyRange) -> bool {
    use std::ops::Bound::{Excluded, Unbounded};
    matches!(
        (&range.start, &range.end),
        (Excluded(_), Unbounded) | (Unbounded, Excluded(_))
    )
}

/// The keyring's records in a namespace of a [`KvStore`] (normally the inner store of the
/// [`EncryptingStore`]s that use the keyring). Records hold only wrapped keys.
pub struct KvKeyRecords<S: KvStore> {
    store: S,
    namespace: Namespace,
}

impl<S: KvStore> KvKeyRecords<S> {
    /// Records in `namespace` of `store`. Reserve that namespace in every `EncryptingStore` over
    /// the same store (unless it is [`KEY_RECORDS`], which they all reserve).
    pub fn new(store: S, namespace: Namespace) -> Self {
        KvKeyRecords { store, namespace }
    }

    /// Records in [`KEY_RECORDS`] of `store`, the namespace every `EncryptingStore` reserves.
    ///
    /// # Errors
    /// None in practice: the constant is a valid name.
    pub fn standard(store: S) -> Result<Self> {
        Ok(KvKeyRecords {
            store,
            namespace: Namespace::new(KEY_RECORDS)?,
        })
    }
}

fn records_error(e: Error) -> zt_crypto::Error {
    if e.is_temporary() {
        zt_crypto::Error::unavailable("the key record store is unavailable", Some(Box::new(e)))
    } else {
        zt_crypto::Error::backend("the key record store failed", e)
    }
}

#[async_trait]
impl<S: KvStore> zt_crypto::KeyRecords for KvKeyRecords<S> {
    async fn get(&self, name: &str) -> zt_crypto::Result<Option<(Vec<u8>, u64)>> {
        let entry = self
            .store
            .get(&self.namespace, name.as_bytes())
            .await
            .map_err(records_error)?;
        Ok(entry.map(|e| (e.value, e.version)))
    }

    async fn put(
        &self,
        name: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> zt_crypto::Result<bool> {
        let mut batch = Batch::new();
        match expected {
            None => batch.require_absent(&self.namespace, name.as_bytes()),
            Some(version) => batch.require_version(&self.namespace, name.as_bytes(), version),
        };
        batch.put(&self.namespace, name.as_bytes(), value);
        match self.store.commit(batch).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::Conflict => Ok(false),
            Err(e) => Err(records_error(e)),
        }
    }
}
