//! Typed helpers over any [`KvStore`], and the one binary codec of zt.

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DisplayKey, Error, Result};
use crate::store::KvStore;
use crate::types::{Batch, Entry, KeyRange, Namespace, ScanOptions, Version};

/// The binary codec zt uses for typed values: a one-byte format tag, then CBOR (RFC 8949).
///
/// CBOR is self-describing, so a struct can gain `#[serde(default)]` fields without rewriting
/// stored rows, and any CBOR tool can read a value when debugging. The tag (`0x01`) leaves room to
/// change the format later without guessing.
///
/// ```
/// use zt_storage::codec;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String, admin: bool }
///
/// let bytes = codec::encode(&User { name: "alice".into(), admin: false })?;
/// assert_eq!(bytes[0], codec::FORMAT_CBOR);
/// let back: User = codec::decode(&bytes)?;
/// assert_eq!(back.name, "alice");
/// assert!(codec::decode::<User>(b"\x01garbage").is_err());
/// # Ok::<(), zt_storage::Error>(())
/// ```
pub mod codec {
    use super::*;

    /// The format tag of CBOR-encoded values.
    pub const FORMAT_CBOR: u8 = 0x01;

    /// Encodes a value.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when serde refuses the value.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
        let mut out = vec![FORMAT_CBOR];
        ciborium::into_writer(value, &mut out)
            .map_err(|e| Error::InvalidInput(format!("value cannot be encoded: {e}")))?;
        Ok(out)
    }

    /// Decodes a value written by [`encode`].
    ///
    /// # Errors
    /// [`Corrupt`](crate::ErrorKind::Corrupt) when the bytes are not a value of this type.
    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        match bytes.split_first() {
            Some((&FORMAT_CBOR, body)) => ciborium::from_reader(body)
                .map_err(|e| Error::corrupt(format!("stored value does not decode: {e}"), None)),
            Some((tag, _)) => Err(Error::corrupt(
                format!("stored value has unknown format tag {tag:#04x}"),
                None,
            )),
            None => Err(Error::corrupt("stored value is empty", None)),
        }
    }
}

impl Batch {
    /// Stores `value`, encoded with [`codec`], under `key`.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when the value cannot be encoded.
    pub fn put_encoded<T: Serialize + ?Sized>(
        &mut self,
        namespace: &Namespace,
        key: &[u8],
        value: &T,
    ) -> Result<&mut Self> {
        let bytes = codec::encode(value)?;
        Ok(self.put_owned(namespace, key.to_vec(), bytes))
    }
}

/// The rows [`KvStoreExt::move_namespace`] moves in one batch.
pub const MOVE_BATCH: usize = 256;

/// Convenience methods on every [`KvStore`]. Implemented for all stores; never implement it.
#[async_trait]
pub trait KvStoreExt: KvStore {
    /// Reads a key that must exist.
    ///
    /// # Errors
    /// [`NotFound`](crate::ErrorKind::NotFound) when it does not.
    async fn get_required(&self, namespace: &Namespace, key: &[u8]) -> Result<Entry> {
        self.get(namespace, key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{namespace}/{}", DisplayKey(key))))
    }

    /// Reads and decodes a value written with [`Batch::put_encoded`].
    ///
    /// # Errors
    /// [`Corrupt`](crate::ErrorKind::Corrupt) when the stored bytes do not decode as `T`.
    async fn get_decoded<T: DeserializeOwned>(
        &self,
        namespace: &Namespace,
        key: &[u8],
    ) -> Result<Option<(T, Version)>> {
        match self.get(namespace, key).await? {
            None => Ok(None),
            Some(entry) => Ok(Some((codec::decode(&entry.value)?, entry.version))),
        }
    }

    /// Moves every row of namespace `from` to namespace `to`, keys and values unchanged, in
    /// batches of [`MOVE_BATCH`] rows that each put the new rows and delete the old ones
    /// atomically, so a crash leaves every row in exactly one of the two. Returns how many rows
    /// moved. Through an [`EncryptingStore`](crate::EncryptingStore) each row is sealed again
    /// under `to`'s layout: this is how a namespace changes how it is stored.
    ///
    /// A row changed while it moves is not lost: each batch requires the old rows at the versions
    /// read, and a row already present under `to` (written there by newer code) is kept and its
    /// old copy dropped.
    ///
    /// ```
    /// use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt, MemoryStore, Namespace, ScanOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let (old, new) = (Namespace::new("posts")?, Namespace::new("posts.v2")?);
    /// let mut batch = Batch::new();
    /// batch.put(&old, b"a", b"1").put(&old, b"b", b"2");
    /// store.commit(batch).await?;
    /// assert_eq!(store.move_namespace(&old, &new).await?, 2);
    /// assert!(store.get(&old, b"a").await?.is_none());
    /// assert_eq!(store.get(&new, b"b").await?.unwrap().value, b"2");
    /// assert_eq!(store.move_namespace(&old, &new).await?, 0);
    /// # Ok::<(), zt_storage::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// The store's errors.
    async fn move_namespace(&self, from: &Namespace, to: &Namespace) -> Result<u64> {
        let mut moved = 0u64;
        loop {
            let page = self
                .scan(from, &KeyRange::all(), ScanOptions::new().limit(MOVE_BATCH))
                .await?;
            if page.entries.is_empty() {
                return Ok(moved);
            }
            let mut batch = Batch::new();
            for entry in &page.entries {
                batch.require_version(from, &entry.key, entry.version);
                batch.require_absent(to, &entry.key);
                batch.put(to, &entry.key, &entry.value);
                batch.delete(from, &entry.key);
            }
            match self.commit(batch).await {
                Ok(_) => moved += page.entries.len() as u64,
                Err(e) if e.kind() == crate::ErrorKind::Conflict => {
                    // Row by row: one changed since it was read is read again on the next
                    // page; one already under `to` keeps the newer copy.
                    for entry in page.entries {
                        let mut one = Batch::new();
                        one.require_version(from, &entry.key, entry.version);
                        if self.get(to, &entry.key).await?.is_none() {
                            one.require_absent(to, &entry.key);
                            one.put(to, &entry.key, &entry.value);
                        }
                        one.delete(from, &entry.key);
                        match self.commit(one).await {
                            Ok(_) => moved += 1,
                            Err(e) if e.kind() == crate::ErrorKind::Conflict => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Streams every entry of `range`, one page of `options.limit` entries at a time, so memory
    /// stays bounded by one page however large the range.
    ///
    /// ```
    /// use futures_util::TryStreamExt;
    /// use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt, MemoryStore, Namespace, ScanOptions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let ns = Namespace::new("n")?;
    /// let mut batch = Batch::new();
    /// for i in 0u32..25 {
    ///     batch.put(&ns, &i.to_be_bytes(), b"");
    /// }
    /// store.commit(batch).await?;
    /// let all: Vec<_> = store
    ///     .scan_stream(&ns, KeyRange::all(), ScanOptions::new().limit(10).reverse(true))
    ///     .try_collect()
    ///     .await?;
    /// assert_eq!(all.len(), 25);
    /// assert_eq!(all[0].key, 24u32.to_be_bytes());
    /// # Ok::<(), zt_storage::Error>(())
    /// # }).unwrap();
    /// ```
    fn scan_stream<'a>(
        &'a self,
        namespace: &'a Namespace,
        range: KeyRange,
        options: ScanOptions,
    ) -> BoxStream<'a, Result<Entry>> {
        paged_stream(self, namespace, range, options)
    }
}

impl<S: KvStore + ?Sized> KvStoreExt for S {}

fn paged_stream<'a>(
    store: &'a (impl KvStore + ?Sized),
    namespace: &'a Namespace,
    range: KeyRange,
    options: ScanOptions,
) -> BoxStream<'a, Result<Entry>> {
    let pages = stream::try_unfold(Some(range), move |next| async move {
        let Some(range) = next else {
            return Ok(None);
        };
        let page = store.scan(namespace, &range, options).await?;
        Ok(Some((page.entries, page.next)))
    });
    pages
        .map(|page: Result<Vec<Entry>>| match page {
            Ok(entries) => stream::iter(entries.into_iter().map(Ok)).left_stream(),
            Err(e) => stream::iter(std::iter::once(Err(e))).right_stream(),
        })
        .flatten()
        .boxed()
}
