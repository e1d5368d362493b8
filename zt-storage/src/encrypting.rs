//! `EncryptingStore`: encryption at rest for any `KvStore`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
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
/// - **Prefix-blinded namespaces** ([`blind_prefix`](Self::blind_prefix), opt-in) store the first
///   `len` bytes of each key (an owner's id: a channel, a user) as a 16-byte HMAC under the
///   tenant's index key and keep the rest in clear, so the rows of one owner stay together and in
///   order. A range scan must lie within one owner's keys ([`KeyRange::prefix`] of the owner, or
///   narrower); it is served in key order, either direction, and its pages resume as usual. A
///   whole scan returns every row in no particular order. The original prefix travels inside the
///   encrypted value. Keys shorter than `len`, and prefixes of `len` bytes `0xff` (which have no
///   successor to end a range), are invalid input.
///
/// A whole scan of a blinded or prefix-blinded namespace hands back [`ScanPage::next`] in stored
/// keys: pass it back unchanged. A range open at one end and excluded at the other is read as
/// such a continuation.
///
/// Versions and preconditions are the inner store's, so every [`KvStore`] guarantee still holds.
/// The store runs the whole conformance suite.
pub struct EncryptingStore<S: KvStore> {
    inner: S,
    keyring: Arc<Keyring>,
    tenant: String,
    scopes: ScopeFn,
    blinded: HashMap<Namespace, Blinding>,
    reserved: HashSet<Namespace>,
}

/// What [`EncryptingStore::move_rows`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MovedRows {
    /// Rows moved and sealed again.
    pub moved: u64,
    /// Rows dropped because their scope key was destroyed.
    pub shredded: u64,
    /// Rows dropped because `to` already held a newer copy.
    pub superseded: u64,
    /// Rows left in place because they do not open, or their key does not fit `to`.
    pub damaged: u64,
}

impl MovedRows {
    fn add(&mut self, other: MovedRows) {
        self.moved += other.moved;
        self.shredded += other.shredded;
        self.superseded += other.superseded;
        self.damaged += other.damaged;
    }
}

/// What [`EncryptingStore::reseal_rows`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealedRows {
    /// Rows sealed again under the scope key their row has today.
    pub resealed: u64,
    /// Rows dropped because their scope key was destroyed.
    pub shredded: u64,
    /// Rows left as they were because they do not open.
    pub damaged: u64,
}

/// What [`EncryptingStore::rewrite_rows`] does with a row that opens.
#[derive(Clone, Copy)]
enum Rewrite<'a> {
    /// Move it to this namespace, sealed for its layout.
    MoveTo(&'a Namespace),
    /// Seal it again in place if it is not under its scope's current key.
    Reseal,
}

/// How a namespace's keys are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blinding {
    /// The whole key, as its HMAC.
    Whole,
    /// The first `n` bytes, as a truncated HMAC; the rest in clear.
    Prefix(usize),
}

/// The length of a blinded prefix as stored.
const BLINDED_PREFIX_LEN: usize = 16;

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
    RowContext::new(tenant, namespace).of(key).to_vec()
}

/// [`row_context`] for many rows of one namespace: the tenant and namespace part built once.
struct RowContext {
    buf: Vec<u8>,
    fixed: usize,
}

impl RowContext {
    fn new(tenant: &str, namespace: &Namespace) -> Self {
        let mut buf = b"zt-kv-v1".to_vec();
        for part in [tenant.as_bytes(), namespace.as_str().as_bytes()] {
            buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
            buf.extend_from_slice(part);
        }
        let fixed = buf.len();
        RowContext { buf, fixed }
    }

    fn of(&mut self, key: &[u8]) -> &[u8] {
        self.buf.truncate(self.fixed);
        self.buf
            .extend_from_slice(&(key.len() as u64).to_be_bytes());
        self.buf.extend_from_slice(key);
        &self.buf
    }
}

/// What opening many rows of one namespace carries from row to row: the scope key of the last
/// row (most rows of a page share it), the row binding's fixed part, and the last blinded
/// prefix proven to belong to its owner (HMAC is deterministic: the same owner, the same
/// stored prefix).
struct Opening {
    context: RowContext,
    key: Option<Arc<zt_crypto::envelope::EnvelopeKey>>,
    owner: Option<(Vec<u8>, Vec<u8>)>,
}

impl Opening {
    fn new(tenant: &str, namespace: &Namespace) -> Self {
        Opening {
            context: RowContext::new(tenant, namespace),
            key: None,
            owner: None,
        }
    }
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
            blinded: HashMap::new(),
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
        self.blinded.insert(namespace, Blinding::Whole);
        self
    }

    /// Stores the first `len` bytes of every key of `namespace` blinded and the rest in clear
    /// (see the type's docs): the rows of one owner (the prefix) stay in order for range scans,
    /// and which owner they belong to is not on disk.
    ///
    /// ```
    /// use std::ops::Bound;
    /// use std::sync::Arc;
    /// use zt_storage::{Batch, EncryptingStore, KeyRange, KvKeyRecords, KvStore, MemoryStore, Namespace, ScanOptions};
    /// use zt_crypto::Kms as _;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    /// let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    /// let root = zt_crypto::KeyId::new("root")?;
    /// kms.create_key(&root).await?;
    /// let records = Arc::new(KvKeyRecords::standard(Arc::clone(&inner))?);
    /// let keyring = Arc::new(zt_crypto::Keyring::new(kms, records, root, Default::default()));
    /// let messages = Namespace::new("messages")?;
    /// let store = EncryptingStore::new(Arc::clone(&inner), keyring, "tenant-1")
    ///     .blind_prefix(messages.clone(), 4);
    ///
    /// let mut batch = Batch::new();
    /// for (channel, message) in [(b"chnA", 1u8), (b"chnA", 2), (b"chnB", 1)] {
    ///     batch.put(&messages, &[&channel[..], &[message]].concat(), b"hello");
    /// }
    /// store.commit(batch).await?;
    ///
    /// // One channel's messages, newest first, with their own keys.
    /// let page = store
    ///     .scan(&messages, &KeyRange::prefix(b"chnA"), ScanOptions::new().reverse(true))
    ///     .await?;
    /// let keys: Vec<_> = page.entries.iter().map(|e| e.key.clone()).collect();
    /// assert_eq!(keys, [b"chnA\x02".to_vec(), b"chnA\x01".to_vec()]);
    ///
    /// // On disk, no key names its channel.
    /// let raw = inner.scan(&messages, &KeyRange::all(), ScanOptions::new()).await?;
    /// assert!(raw.entries.iter().all(|e| !e.key.starts_with(b"chn")));
    /// // A whole scan is served, in no particular order; a range over two channels is refused.
    /// let all = store.scan(&messages, &KeyRange::all(), ScanOptions::new()).await?;
    /// assert_eq!(all.entries.len(), 3);
    /// let across = KeyRange::new(Bound::Included(b"chnA".to_vec()), Bound::Excluded(b"chnC".to_vec()));
    /// assert!(store.scan(&messages, &across, ScanOptions::new()).await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// A `len` of 0 is taken as 1.
    pub fn blind_prefix(mut self, namespace: Namespace, len: usize) -> Self {
        self.blinded.insert(namespace, Blinding::Prefix(len.max(1)));
        self
    }

    /// Moves every row of namespace `from` to namespace `to`, sealing each again under `to`'s
    /// layout (its blinding and row binding): how a namespace changes how it is stored. Unlike
    /// [`KvStoreExt::move_namespace`](crate::KvStoreExt::move_namespace), which reads through the
    /// wrapper, it reads the inner store row by row, so a row that does not open does not stop
    /// the move:
    ///
    /// - a row whose scope key was destroyed (shredded data) is deleted, since it can never be
    ///   read again and its bytes hold nothing readable;
    /// - a damaged row stays where it is, untouched, for a verifier to report;
    /// - a row already under `to` (written there by newer code) is kept, and the old copy
    ///   dropped.
    ///
    /// Each batch of up to [`MOVE_BATCH`](crate::MOVE_BATCH) rows puts the new rows and deletes
    /// the old ones in one commit, requiring the old rows at the versions read, so a crash leaves
    /// every row in exactly one place and a concurrent change is not lost.
    ///
    /// # Errors
    /// The store's and the key service's errors (a damaged row is not one).
    pub async fn move_rows(&self, from: &Namespace, to: &Namespace) -> Result<MovedRows> {
        self.rewrite_rows(from, Rewrite::MoveTo(to)).await
    }

    /// Seals again every row of `namespace` that is not sealed under the scope key the store's
    /// [scopes](Self::with_scopes) choose for it today, keeping its key and value: a row
    /// written before its namespace got finer scopes (one per user, say) still opens under the
    /// shared key its envelope names, and would survive the destruction of its owner's key.
    /// After this, destroying a scope key shreds every live row of that scope, old ones
    /// included. (Copies made before, such as backups, keep the old sealing: no rewrite reaches
    /// them.) A row already under its scope's current key is left alone, so a second call only
    /// reads.
    ///
    /// It reads the inner store row by row, like [`move_rows`](Self::move_rows), with the same
    /// rules: a row whose scope key was destroyed is deleted (nothing readable is left in it), a
    /// damaged row stays as it is for a verifier to report. Each batch of up to
    /// [`MOVE_BATCH`](crate::MOVE_BATCH) rows is one commit requiring the rows at the versions
    /// read; a page that changed meanwhile is read again.
    ///
    /// # Errors
    /// The store's and the key service's errors (a damaged row is not one).
    pub async fn reseal_rows(&self, namespace: &Namespace) -> Result<ResealedRows> {
        let done = self.rewrite_rows(namespace, Rewrite::Reseal).await?;
        Ok(ResealedRows {
            resealed: done.moved,
            shredded: done.shredded,
            damaged: done.damaged,
        })
    }

    /// Reads the inner store's rows of `from` page by page and rewrites each that opens as
    /// `rewrite` says ([`move_rows`](Self::move_rows), [`reseal_rows`](Self::reseal_rows)):
    /// a shredded row is deleted, a damaged one left as it is; each page is one commit requiring
    /// the rows at the versions read, and a page that changed meanwhile is read again. `moved`
    /// counts the rows rewritten.
    async fn rewrite_rows(&self, from: &Namespace, rewrite: Rewrite<'_>) -> Result<MovedRows> {
        self.check_namespace(from)?;
        let index = match rewrite {
            Rewrite::MoveTo(to) => {
                self.check_namespace(to)?;
                self.index_for([from, to].into_iter()).await?
            }
            Rewrite::Reseal => self.index_for(std::iter::once(from)).await?,
        };
        let mut report = MovedRows::default();
        let mut range = Some(KeyRange::all());
        // After a conflict the page is read again, and a moved row's destination is looked up
        // first (one written there meanwhile is kept); until then the batch's own check does it.
        let mut careful = false;
        while let Some(next) = range {
            let page = self
                .inner
                .scan(from, &next, ScanOptions::new().limit(crate::MOVE_BATCH))
                .await?;
            let mut batch = Batch::new();
            let mut this = MovedRows::default();
            let mut opening = Opening::new(&self.tenant, from);
            for entry in &page.entries {
                let opened = self
                    .open(
                        from,
                        &entry.key,
                        entry.value.clone(),
                        index.as_ref(),
                        &mut opening,
                    )
                    .await;
                let (key, value) = match opened {
                    Ok(opened) => opened,
                    Err(e) if e.kind() == crate::ErrorKind::KeyDestroyed => {
                        this.shredded += 1;
                        batch.require_version(from, &entry.key, entry.version);
                        batch.delete(from, &entry.key);
                        continue;
                    }
                    Err(e) if e.kind() == crate::ErrorKind::Corrupt => {
                        this.damaged += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match rewrite {
                    Rewrite::MoveTo(to) => {
                        let stored = match self.stored_key(to, &key, index.as_ref()) {
                            Ok(stored) => stored,
                            // A key the new layout cannot hold stays where it is.
                            Err(e) if e.kind() == crate::ErrorKind::InvalidInput => {
                                this.damaged += 1;
                                continue;
                            }
                            Err(e) => return Err(e),
                        };
                        if careful && self.inner.get(to, &stored).await?.is_some() {
                            this.superseded += 1;
                        } else {
                            let sealed = self.seal(to, &key, &stored, &value).await?;
                            batch.require_absent(to, &stored);
                            batch.put_owned(to, stored, sealed);
                            this.moved += 1;
                        }
                        batch.require_version(from, &entry.key, entry.version);
                        batch.delete(from, &entry.key);
                    }
                    Rewrite::Reseal => {
                        let scope = (self.scopes)(from, &key);
                        let current = self
                            .keyring
                            .scope_key(&self.tenant, &scope)
                            .await
                            .map_err(crypto_error)?;
                        if current.names(&entry.value) {
                            continue;
                        }
                        let sealed = self.seal(from, &key, &entry.key, &value).await?;
                        batch.require_version(from, &entry.key, entry.version);
                        batch.put_owned(from, entry.key.clone(), sealed);
                        this.moved += 1;
                    }
                }
            }
            let committed = batch.is_empty()
                || match self.inner.commit(batch).await {
                    Ok(_) => true,
                    // A row changed since it was read, or one was written where it goes.
                    Err(e) if e.kind() == crate::ErrorKind::Conflict => false,
                    Err(e) => return Err(e),
                };
            if committed {
                report.add(this);
                range = page.next;
                careful = false;
            } else {
                range = Some(next);
                careful = true;
            }
        }
        Ok(report)
    }

    /// The key under which the inner store holds `key` of `namespace` (blinded or not): for
    /// tools that locate one record on disk, such as a repair or a test that damages it.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for a key the namespace's layout cannot
    /// hold; the key service's errors.
    pub async fn stored_key_of(&self, namespace: &Namespace, key: &[u8]) -> Result<Vec<u8>> {
        self.check_namespace(namespace)?;
        let index = self.index_for(std::iter::once(namespace)).await?;
        self.stored_key(namespace, key, index.as_ref())
    }

    /// Opens one row as the inner store holds it (its stored key and sealed value), returning
    /// the row with its original key: for verifiers that read the inner store row by row, so
    /// that one damaged row does not hide the others.
    ///
    /// # Errors
    /// [`Corrupt`](crate::ErrorKind::Corrupt) when the row does not open or does not belong to its
    /// key; [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed) for a shredded row; the key service's
    /// errors.
    pub async fn open_stored(&self, namespace: &Namespace, stored: &Entry) -> Result<Entry> {
        self.check_namespace(namespace)?;
        let index = self.index_for(std::iter::once(namespace)).await?;
        let (key, value) = self
            .open(
                namespace,
                &stored.key,
                stored.value.clone(),
                index.as_ref(),
                &mut Opening::new(&self.tenant, namespace),
            )
            .await?;
        Ok(Entry {
            key,
            value,
            version: stored.version,
        })
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
        if !namespaces.any(|ns| self.blinded.contains_key(ns)) {
            return Ok(None);
        }
        self.keyring
            .index_key(&self.tenant)
            .await
            .map(Some)
            .map_err(crypto_error)
    }

    /// The key as stored: itself, its HMAC in a blinded namespace, or its prefix's HMAC and the
    /// rest in a prefix-blinded one (`index` is then the tenant's index key, from
    /// [`index_for`](Self::index_for)).
    fn stored_key(
        &self,
        namespace: &Namespace,
        key: &[u8],
        index: Option<&zt_crypto::IndexKey>,
    ) -> Result<Vec<u8>> {
        self.stored_key_reusing(namespace, key, index, &mut None)
    }

    /// [`stored_key`](Self::stored_key), reusing the owner prefix blinded last while the keys of
    /// one operation share it (a batch of one channel's messages blinds its channel once).
    fn stored_key_reusing(
        &self,
        namespace: &Namespace,
        key: &[u8],
        index: Option<&zt_crypto::IndexKey>,
        last: &mut Option<(Namespace, Vec<u8>, [u8; BLINDED_PREFIX_LEN])>,
    ) -> Result<Vec<u8>> {
        let Some(&blinding) = self.blinded.get(namespace) else {
            return Ok(key.to_vec());
        };
        let index = index.ok_or_else(|| Error::backend("blinding", "index key not fetched"))?;
        let n = match blinding {
            Blinding::Whole => return Ok(index.blind(namespace.as_str(), key).to_vec()),
            Blinding::Prefix(n) => n,
        };
        let (prefix, rest) = split_prefix(namespace, key, n)?;
        let blinded = match last {
            Some((ns, owner, blinded)) if ns == namespace && owner.as_slice() == prefix => *blinded,
            _ => {
                let blinded = blinded_prefix(index, namespace, prefix);
                *last = Some((namespace.clone(), prefix.to_vec(), blinded));
                blinded
            }
        };
        let mut stored = Vec::with_capacity(BLINDED_PREFIX_LEN + rest.len());
        stored.extend_from_slice(&blinded);
        stored.extend_from_slice(rest);
        Ok(stored)
    }

    /// The stored form of a range within one owner of a prefix-blinded namespace (see the
    /// type's docs), or `None` when the range goes to the inner store as it is: any range of an
    /// unblinded namespace, a whole scan, or its continuation.
    fn stored_range(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        index: Option<&zt_crypto::IndexKey>,
    ) -> Result<Option<KeyRange>> {
        let Some(&blinding) = self.blinded.get(namespace) else {
            return Ok(None);
        };
        if *range == KeyRange::all() || is_resumed_full_scan(range) {
            return Ok(None);
        }
        let one_owner = || {
            Error::InvalidInput(format!(
                "namespace {namespace} is blinded: a range scan must stay within one owner's keys"
            ))
        };
        let Blinding::Prefix(n) = blinding else {
            return Err(Error::InvalidInput(format!(
                "namespace {namespace} is blinded: it can only be scanned whole"
            )));
        };
        let (Bound::Included(first) | Bound::Excluded(first)) = &range.start else {
            return Err(one_owner());
        };
        let prefix = first.get(..n).ok_or_else(one_owner)?;
        let index = index.ok_or_else(|| Error::backend("blinding", "index key not fetched"))?;
        let stored_prefix = blinded_prefix(index, namespace, prefix);
        let within = |key: &[u8]| -> Option<Vec<u8>> {
            let rest = key.strip_prefix(prefix)?;
            let mut stored = stored_prefix.to_vec();
            stored.extend_from_slice(rest);
            Some(stored)
        };
        let start = match &range.start {
            Bound::Included(k) => Bound::Included(within(k).ok_or_else(one_owner)?),
            Bound::Excluded(k) => Bound::Excluded(within(k).ok_or_else(one_owner)?),
            Bound::Unbounded => return Err(one_owner()),
        };
        let past_owner = || match crate::types::prefix_successor(&stored_prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        };
        let end = match &range.end {
            Bound::Included(k) => Bound::Included(within(k).ok_or_else(one_owner)?),
            Bound::Excluded(k) => match within(k) {
                Some(stored) => Bound::Excluded(stored),
                None if crate::types::prefix_successor(prefix).as_deref() == Some(k) => {
                    past_owner()
                }
                None => return Err(one_owner()),
            },
            Bound::Unbounded => return Err(one_owner()),
        };
        Ok(Some(KeyRange::new(start, end)))
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
        match self.blinded.get(namespace) {
            // Keep the original key inside, so scans can return it.
            Some(Blinding::Whole) => {
                let mut plain = Vec::with_capacity(8 + key.len() + value.len());
                plain.extend_from_slice(&(key.len() as u64).to_be_bytes());
                plain.extend_from_slice(key);
                plain.extend_from_slice(value);
                scope_key.seal(&plain, &context).map_err(crypto_error)
            }
            // Keep the original prefix inside; `stored_key` checked its length.
            Some(&Blinding::Prefix(n)) => {
                let (prefix, _) = split_prefix(namespace, key, n)?;
                let mut plain = Vec::with_capacity(n + value.len());
                plain.extend_from_slice(prefix);
                plain.extend_from_slice(value);
                scope_key.seal(&plain, &context).map_err(crypto_error)
            }
            None => scope_key.seal(value, &context).map_err(crypto_error),
        }
    }

    /// Opens a stored row; returns its original key and value. `opening` carries what rows of
    /// the same namespace share (one per page).
    async fn open(
        &self,
        namespace: &Namespace,
        stored: &[u8],
        sealed: Vec<u8>,
        index: Option<&zt_crypto::IndexKey>,
        opening: &mut Opening,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let scope_key = match opening.key.take().filter(|key| key.names(&sealed)) {
            Some(key) => key,
            None => {
                let header = EnvelopeHeader::parse(&sealed).map_err(crypto_error)?;
                self.keyring
                    .existing_scope_key(&self.tenant, header.key.id.as_str())
                    .await
                    .map_err(crypto_error)?
            }
        };
        let opened = scope_key.open_owned(sealed, opening.context.of(stored));
        opening.key = Some(scope_key);
        let mut plain = opened.map_err(crypto_error)?;
        let key = match self.blinded.get(namespace) {
            None => return Ok((stored.to_vec(), plain)),
            Some(&Blinding::Prefix(n)) => {
                if plain.len() < n {
                    return Err(Error::corrupt("a blinded value is too short", None));
                }
                let (stored_prefix, rest) = stored
                    .split_at_checked(BLINDED_PREFIX_LEN)
                    .ok_or_else(|| Error::corrupt("a blinded key is too short", None))?;
                let key = [&plain[..n], rest].concat();
                plain.drain(..n);
                let known = opening.owner.as_ref().is_some_and(|(prefix, blinded)| {
                    key.starts_with(prefix) && blinded.as_slice() == stored_prefix
                });
                if !known {
                    self.check_belongs(namespace, &key, stored, index)?;
                    opening.owner = Some((key[..n].to_vec(), stored_prefix.to_vec()));
                }
                return Ok((key, plain));
            }
            Some(Blinding::Whole) => {
                let (len, rest) = plain
                    .split_first_chunk::<8>()
                    .ok_or_else(|| Error::corrupt("a blinded value is too short", None))?;
                let len = usize::try_from(u64::from_be_bytes(*len))
                    .ok()
                    .filter(|&l| l <= rest.len())
                    .ok_or_else(|| Error::corrupt("a blinded value is damaged", None))?;
                let key = rest[..len].to_vec();
                plain.drain(..8 + len);
                key
            }
        };
        self.check_belongs(namespace, &key, stored, index)?;
        Ok((key, plain))
    }

    /// Refuses a blinded row whose original key (from inside its value) does not blind to the
    /// key it is stored under: a value moved between rows.
    fn check_belongs(
        &self,
        namespace: &Namespace,
        key: &[u8],
        stored: &[u8],
        index: Option<&zt_crypto::IndexKey>,
    ) -> Result<()> {
        if self.stored_key(namespace, key, index)? != stored {
            return Err(Error::corrupt(
                "a blinded value does not belong to its row",
                None,
            ));
        }
        Ok(())
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
            .open(
                namespace,
                &stored,
                entry.value,
                index.as_ref(),
                &mut Opening::new(&self.tenant, namespace),
            )
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
        let index = self.index_for(std::iter::once(namespace)).await?;
        let stored_range = self.stored_range(namespace, range, index.as_ref())?;
        let page = self
            .inner
            .scan(namespace, stored_range.as_ref().unwrap_or(range), options)
            .await?;
        let mut entries = Vec::with_capacity(page.entries.len());
        let mut opening = Opening::new(&self.tenant, namespace);
        for entry in page.entries {
            let (key, value) = self
                .open(
                    namespace,
                    &entry.key,
                    entry.value,
                    index.as_ref(),
                    &mut opening,
                )
                .await?;
            entries.push(Entry {
                key,
                value,
                version: entry.version,
            });
        }
        // A range within one owner continues in the caller's keys; a whole scan, in stored ones.
        let next = match (page.next, stored_range) {
            (Some(_), Some(_)) => Some(match entries.last() {
                Some(last) => range.remaining_after(&last.key, options.reverse),
                None => range.clone(),
            }),
            (next, _) => next,
        };
        Ok(ScanPage { entries, next })
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
        let mut last_owner = None;
        for Check {
            namespace,
            key,
            precondition,
        } in checks
        {
            self.check_namespace(&namespace)?;
            let stored =
                self.stored_key_reusing(&namespace, &key, index.as_ref(), &mut last_owner)?;
            sealed.require(&namespace, &stored, precondition);
            if stored != key {
                originals.push((stored, key));
            }
        }
        for write in writes {
            self.check_namespace(write.namespace())?;
            let stored = self.stored_key_reusing(
                write.namespace(),
                write.key(),
                index.as_ref(),
                &mut last_owner,
            )?;
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

    /// The whole store beneath, as stored (see [`KvStore::export`]).
    async fn export(&self, sink: &mut dyn crate::ExportSink) -> Result<u64> {
        self.inner.export(sink).await
    }
}

/// Splits a key of a prefix-blinded namespace into its prefix of `n` bytes and the rest.
fn split_prefix<'k>(
    namespace: &Namespace,
    key: &'k [u8],
    n: usize,
) -> Result<(&'k [u8], &'k [u8])> {
    let (prefix, rest) = key.split_at_checked(n).ok_or_else(|| {
        Error::InvalidInput(format!(
            "keys of namespace {namespace} start with a {n}-byte owner id"
        ))
    })?;
    if prefix.iter().all(|&b| b == u8::MAX) {
        return Err(Error::InvalidInput(format!(
            "an owner id of namespace {namespace} is all 0xff bytes"
        )));
    }
    Ok((prefix, rest))
}

/// The stored form of an owner's prefix: the first bytes of its HMAC.
fn blinded_prefix(
    index: &zt_crypto::IndexKey,
    namespace: &Namespace,
    prefix: &[u8],
) -> [u8; BLINDED_PREFIX_LEN] {
    let mac = index.blind(namespace.as_str(), prefix);
    let mut out = [0u8; BLINDED_PREFIX_LEN];
    out.copy_from_slice(&mac[..BLINDED_PREFIX_LEN]);
    out
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests report failures by panicking")]

    use std::sync::Arc;

    use zt_crypto::Kms as _;

    use super::*;
    use crate::{KvKeyRecords, MemoryStore};

    /// A row sealed under its own stored key (so it opens) but holding another owner's prefix
    /// is refused when a page reads it, whether it comes first or after rows whose owner the
    /// page already proved (the memo must not wave it through).
    #[tokio::test]
    async fn a_prefix_blinded_row_holding_another_owners_prefix_is_refused_in_a_page() {
        let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
        let root = zt_crypto::KeyId::new("root").unwrap();
        kms.create_key(&root).await.unwrap();
        let records = Arc::new(KvKeyRecords::standard(Arc::clone(&inner)).unwrap());
        let keyring = Arc::new(Keyring::new(kms, records, root, Default::default()));
        let ns = Namespace::new("posts").unwrap();
        let store =
            EncryptingStore::new(Arc::clone(&inner), keyring, "t1").blind_prefix(ns.clone(), 4);
        let mut batch = Batch::new();
        for i in 1..=3u8 {
            batch.put(&ns, &[b"ownA".as_slice(), &[i]].concat(), b"fine");
        }
        store.commit(batch).await.unwrap();
        let index = store.index_for(std::iter::once(&ns)).await.unwrap();
        // Row ownA/4 carrying ownB's prefix inside, and ownA/0 the same: last and first.
        for i in [4u8, 0] {
            let row = [b"ownA".as_slice(), &[i]].concat();
            let stored = store.stored_key(&ns, &row, index.as_ref()).unwrap();
            let claimed = [b"ownB".as_slice(), &[i]].concat();
            let sealed = store.seal(&ns, &claimed, &stored, b"moved").await.unwrap();
            let mut raw = Batch::new();
            raw.put(&ns, &stored, &sealed);
            inner.commit(raw).await.unwrap();
            for reverse in [false, true] {
                let err = store
                    .scan(
                        &ns,
                        &KeyRange::prefix(b"ownA"),
                        ScanOptions::new().reverse(reverse),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
            }
            let mut raw = Batch::new();
            raw.delete(&ns, &stored);
            inner.commit(raw).await.unwrap();
        }
        // Without the bad rows the page reads.
        let page = store
            .scan(&ns, &KeyRange::prefix(b"ownA"), ScanOptions::new())
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 3);
    }
}
