//! The in-memory backend.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::{ConflictDetail, Error, Result};
use crate::keys;
use crate::store::KvStore;
use crate::types::{
    Batch, Entry, KeyRange, Namespace, Precondition, ScanOptions, ScanPage, Version, Write,
    check_key, check_scan, collect_page,
};

#[derive(Default)]
struct State {
    map: BTreeMap<Vec<u8>, (Vec<u8>, Version)>,
    sequence: Version,
}

/// A [`KvStore`] held in memory: for tests, caches and single-process tools. Nothing survives the
/// process; a commit is "durable" once it returns because there is nothing to flush.
///
/// Clones are handles on the same data. [`close`](KvStore::close) closes one handle; a clone taken
/// before (or from a handle still open) keeps working, which is how tests "reopen" it.
///
/// ```
/// use zt_storage::{KvStore, MemoryStore};
///
/// let store = MemoryStore::new();
/// let again = store.clone(); // same data
/// # let _ = (store, again);
/// ```
pub struct MemoryStore {
    state: Arc<RwLock<State>>,
    closed: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            state: Arc::default(),
            closed: AtomicBool::new(false),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for MemoryStore {
    fn clone(&self) -> Self {
        MemoryStore {
            state: Arc::clone(&self.state),
            closed: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Checks every precondition of `batch` against `current`, which reads a key's version.
pub(crate) fn check_preconditions(
    batch: &Batch,
    mut current: impl FnMut(&Namespace, &[u8]) -> Result<Option<Version>>,
) -> Result<()> {
    for check in batch.checks() {
        let found = current(&check.namespace, &check.key)?;
        let holds = match check.precondition {
            Precondition::Absent => found.is_none(),
            Precondition::Version(v) => found == Some(v),
        };
        if !holds {
            return Err(Error::Conflict(Box::new(ConflictDetail {
                namespace: check.namespace.to_string(),
                key: check.key.clone(),
                expected: check.precondition,
                found,
            })));
        }
    }
    Ok(())
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        self.check_open()?;
        check_key(key)?;
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(state
            .map
            .get(&keys::encode(namespace, key))
            .map(|(value, version)| Entry {
                key: key.to_vec(),
                value: value.clone(),
                version: *version,
            }))
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage> {
        self.check_open()?;
        let limit = check_scan(range, &options)?;
        if range.is_empty() {
            return Ok(ScanPage::new(range, options.reverse, Vec::new(), false));
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let to_entry = |(k, (value, version)): (&Vec<u8>, &(Vec<u8>, Version))| {
            Ok(Entry {
                key: keys::decode(namespace, k)?.to_vec(),
                value: value.clone(),
                version: *version,
            })
        };
        let iter = state.map.range(keys::bounds(namespace, range));
        let (entries, more) = if options.reverse {
            collect_page(iter.rev().map(to_entry), limit)?
        } else {
            collect_page(iter.map(to_entry), limit)?
        };
        Ok(ScanPage::new(range, options.reverse, entries, more))
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        self.check_open()?;
        batch.validate()?;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        check_preconditions(&batch, |ns, key| {
            Ok(state.map.get(&keys::encode(ns, key)).map(|(_, v)| *v))
        })?;
        if batch.writes().is_empty() {
            return Ok(state.sequence);
        }
        state.sequence += 1;
        let version = state.sequence;
        for write in batch.into_writes() {
            let stored = keys::encode(write.namespace(), write.key());
            match write {
                Write::Put { value, .. } => {
                    state.map.insert(stored, (value, version));
                }
                Write::Delete { .. } => {
                    state.map.remove(&stored);
                }
            }
        }
        Ok(version)
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
