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
