//! # zt-storage
//!
//! The storage contract of zt and its backends.
//!
//! Everything zt persists — users, sessions, roles, messages, the audit log — goes through one small,
//! object-safe trait, [`KvStore`]: namespaced, ordered byte keys with [`get`](KvStore::get), paged
//! [`scan`](KvStore::scan) over a prefix or range in either direction, and
//! [`commit`](KvStore::commit), an atomic multi-key write guarded by preconditions (key absent, key
//! at version V). Convenience methods (typed values, streaming scans) are on [`KvStoreExt`].
//!
//! ## Why a key-value contract and not SQL
//! zt embeds into other people's servers. A small contract is easy to implement over an embedded
//! engine, a SQL database or a cloud store, and easy to test exhaustively: every backend runs the
//! same [`conformance`] suite. Conditional batches are enough to build unique indexes, counters and
//! an append-only log head without a query language.
//!
//! ## Durability
//! A commit that returns `Ok` is on disk. The sled backend makes that fast with a write-ahead log
//! of its own and group commit: the commits waiting together cost one write and one `fdatasync`,
//! so throughput grows with concurrency while no commit is acknowledged before its data is
//! durable.
//!
//! ## Backends
//! - [`MemoryStore`]: always built; for tests and tools.
//! - [`SledStore`] (feature `sled`, on by default): the embedded default.
//!
//! Wrappers, each running the same suite: [`EncryptingStore`] (encryption at rest, blinded keys)
//! and [`PrefixedStore`] (one tenant's own namespaces in a shared store).
//!
//! ```
//! use std::sync::Arc;
//! use zt_storage::{Batch, KvStore, KvStoreExt, MemoryStore, Namespace};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
//! let ns = Namespace::new("settings")?;
//! let mut batch = Batch::new();
//! batch.put_encoded(&ns, b"retention-days", &30u32)?;
//! store.commit(batch).await?;
//! let (days, _version) = store.get_decoded::<u32>(&ns, b"retention-days").await?.unwrap();
//! assert_eq!(days, 30);
//! # Ok::<(), zt_storage::Error>(())
//! # }).unwrap();
//! ```

mod encrypting;
mod error;
mod ext;
mod keys;
mod memory;
mod prefixed;
#[cfg(feature = "sled")]
mod sled_store;
mod store;
mod types;
#[cfg(feature = "sled")]
mod wal;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use encrypting::{
    EncryptingStore, KEY_RECORDS, KvKeyRecords, MovedRows, ResealedRows, ScopeFn,
};
pub use error::{BoxError, ConflictDetail, Error, ErrorKind, Result};
pub use ext::{KvStoreExt, MOVE_BATCH, codec};
pub use memory::MemoryStore;
pub use prefixed::PrefixedStore;
#[cfg(feature = "sled")]
pub use sled_store::{SledConfig, SledStore};
pub use store::{ExportSink, KvStore};
pub use types::{
    Batch, Check, Entry, KeyRange, MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_KEY_LEN, MAX_NAMESPACE_LEN,
    MAX_SCAN_LIMIT, MAX_VALUE_LEN, Namespace, PAGE_BYTE_BUDGET, Precondition, ScanOptions,
    ScanPage, Version, Write,
};
#[cfg(feature = "sled")]
#[doc(hidden)]
pub use wal::fuzzing as wal_fuzzing;

#[cfg(test)]
mod conformance_runs;
