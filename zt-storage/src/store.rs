//! The [`KvStore`] trait.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{Batch, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version};

/// An ordered, namespaced key-value store with atomic conditional batches.
///
/// This is the one storage contract of zt: every higher structure (users by name, messages by
/// channel and time, the audit log's head) is built from `get`, `scan` and `commit`. It is
/// object-safe and used as `Arc<dyn KvStore>`; convenience methods live on
/// [`KvStoreExt`](crate::KvStoreExt), which nobody implements.
///
/// # Contract
/// - Keys are byte strings of at most [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes, ordered as
///   unsigned bytes, inside a [`Namespace`]. Namespaces never see each other's keys.
/// - [`commit`](KvStore::commit) is atomic: every precondition holds and every write lands, or
///   nothing is written and the caller gets [`Conflict`](crate::ErrorKind::Conflict) naming the key.
///   Concurrent commits behave as if they ran one after another.
/// - Every write of a commit gives its key the commit's version. Versions of a key only grow, also
///   across a delete and re-create.
/// - A commit that returns `Ok` is durable: it survives a crash of the process or the machine.
///   Durable backends make this fast by sharing one flush among concurrent commits (group commit),
///   never by acknowledging early.
/// - A scan returns at most `limit` entries (and stops early past
///   [`PAGE_BYTE_BUDGET`](crate::PAGE_BYTE_BUDGET)), with the remaining range in
///   [`ScanPage::next`], so no scan ever loads a whole namespace.
///
/// # Errors
/// Every method returns [`InvalidInput`](crate::ErrorKind::InvalidInput) for a malformed request,
/// [`Closed`](crate::ErrorKind::Closed) after [`close`](KvStore::close), and the backend's own
/// failures as [`Unavailable`](crate::ErrorKind::Unavailable) (temporary),
/// [`Corrupt`](crate::ErrorKind::Corrupt) or [`Backend`](crate::ErrorKind::Backend).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use zt_storage::{Batch, ErrorKind, KeyRange, KvStore, MemoryStore, Namespace, ScanOptions};
///
/// # tokio_test_block_on(async {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
/// let ns = Namespace::new("usernames")?;
///
/// let mut batch = Batch::new();
/// batch.put_if_absent(&ns, b"alice", b"user-1");
/// let v1 = store.commit(batch.clone()).await?;
///
/// // The same batch again fails as a whole: "alice" is taken.
/// let err = store.commit(batch).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Conflict);
///
/// let entry = store.get(&ns, b"alice").await?.expect("stored");
/// assert_eq!((entry.value.as_slice(), entry.version), (&b"user-1"[..], v1));
///
/// let page = store.scan(&ns, &KeyRange::prefix(b"al"), ScanOptions::new()).await?;
/// assert_eq!(page.entries.len(), 1);
/// assert!(page.next.is_none());
/// # Ok::<(), zt_storage::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>>;

    /// Reads one page of the keys of `range`, ascending or (with `options.reverse`) descending.
    ///
    /// `ScanPage::next` is the rest of the range when the page stopped early; pass it back to read
    /// on. A page may hold fewer than `limit` entries and still have a `next`.
    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage>;

    /// Applies a batch atomically and durably, returning the version its writes received.
    ///
    /// A batch with preconditions only writes nothing and returns the store's latest version.
    async fn commit(&self, batch: Batch) -> Result<Version>;

    /// Makes everything acknowledged durable and releases the backend. Later calls on this handle
    /// fail with [`Closed`](crate::ErrorKind::Closed). Closing twice is not an error.
    async fn close(&self) -> Result<()>;

    /// Hands every row of every namespace to `sink`, as of one moment: a commit that comes
    /// while the export runs waits until it returns, so the rows are exactly the state after
    /// some commit and before the next (what a backup needs). The rows come ordered by
    /// namespace, then key; their versions are not part of an export (a restored store gives
    /// its own). Returns how many rows were handed over.
    ///
    /// Wrappers (the encrypting store, a prefixed store) export the **whole store beneath
    /// them, as stored** (sealed values included): a backup is always of the underlying store,
    /// and importing it under the same wrappers gives back what they read.
    ///
    /// The sink runs on the calling thread: for a large store call this from a blocking
    /// context (`spawn_blocking`), not from a task that must keep answering.
    ///
    /// # Errors
    /// The sink's first error, which ends the export; the backend's.
    async fn export(&self, sink: &mut dyn ExportSink) -> Result<u64>;
}

/// Receives the rows of [`KvStore::export`]. Any `FnMut(&Namespace, &[u8], &[u8]) -> Result<()>`
/// closure is one.
pub trait ExportSink: Send {
    /// One row: its namespace, key and value.
    ///
    /// # Errors
    /// Any: it ends the export, which returns it.
    fn row(&mut self, namespace: &Namespace, key: &[u8], value: &[u8]) -> Result<()>;
}

impl<F> ExportSink for F
where
    F: FnMut(&Namespace, &[u8], &[u8]) -> Result<()> + Send,
{
    fn row(&mut self, namespace: &Namespace, key: &[u8], value: &[u8]) -> Result<()> {
        self(namespace, key, value)
    }
}

/// A shared store is a store, so wrappers generic over `S: KvStore` (such as an encrypting store)
/// can wrap an `Arc<dyn KvStore>`.
#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<T: KvStore + ?Sized> KvStore for std::sync::Arc<T> {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        (**self).get(namespace, key).await
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage> {
        (**self).scan(namespace, range, options).await
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        (**self).commit(batch).await
    }

    async fn close(&self) -> Result<()> {
        (**self).close().await
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<u64> {
        (**self).export(sink).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::MemoryStore;

    /// A wrapper generic over its inner store, as later wrappers will be.
    struct Wrapper<S: KvStore>(S);

    #[tokio::test]
    async fn a_shared_store_forwards_every_method() {
        let shared: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let wrapper = Wrapper(Arc::clone(&shared));
        let ns = Namespace::new("n").unwrap();
        let mut batch = Batch::new();
        batch.put(&ns, b"k", b"v");
        let version = wrapper.0.commit(batch).await.unwrap();
        assert_eq!(
            shared.get(&ns, b"k").await.unwrap().unwrap().version,
            version
        );
        let page = wrapper
            .0
            .scan(&ns, &KeyRange::all(), ScanOptions::new())
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 1);
        wrapper.0.close().await.unwrap();
        assert_eq!(
            shared.get(&ns, b"k").await.unwrap_err().kind(),
            crate::ErrorKind::Closed
        );
    }
}
