//! The in-memory backend.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::keys;
use crate::store::{ExportSink, KvStore};
use crate::types::{
    Batch, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version, Write, check_key,
    check_scan, scan_page,
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

    /// Every namespace holding at least one row, in name order: for tests and tools that look
    /// at everything a store holds (what a copy of the disk would show).
    ///
    /// ```
    /// use zt_storage::{Batch, KvStore, MemoryStore, Namespace};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let mut batch = Batch::new();
    /// batch.put(&Namespace::new("b")?, b"k", b"").put(&Namespace::new("a")?, b"k", b"");
    /// store.commit(batch).await?;
    /// let names: Vec<_> = store.namespaces().iter().map(|n| n.to_string()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), zt_storage::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn namespaces(&self) -> Vec<Namespace> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<Namespace> = Vec::new();
        for key in state.map.keys() {
            if let Ok(Some((name, _))) = keys::split(key)
                && names.last() != Some(&name)
            {
                names.push(name);
            }
        }
        names.sort();
        names.dedup();
        names
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
        if let Some(page) = check_scan(range, &options)? {
            return Ok(page);
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
        scan_page(iter.map(to_entry), range, options)
    }

    async fn export(&self, sink: &mut dyn ExportSink) -> Result<u64> {
        self.check_open()?;
        // Commits take the write lock, so they wait while this reads.
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut rows = 0;
        for (stored, (value, _)) in &state.map {
            if let Some((namespace, key)) = keys::split(stored)? {
                sink.row(&namespace, key, value)?;
                rows += 1;
            }
        }
        Ok(rows)
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        self.check_open()?;
        batch.validate()?;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        batch.check_preconditions(|ns, key| {
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

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use futures_util::FutureExt;
    use proptest::prelude::*;

    use super::*;

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), Just(0xff)],
            0..4,
        )
    }

    fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        prop_oneof![
            Just(Bound::Unbounded),
            key().prop_map(Bound::Included),
            key().prop_map(Bound::Excluded),
        ]
    }

    proptest! {
        /// Paging through any range, either way, with any page size, gives exactly the model's
        /// keys in order, and never panics (inverted and empty bounds included).
        #[test]
        fn scans_match_a_naive_model(
            keys in proptest::collection::btree_set(key(), 0..20),
            start in bound(),
            end in bound(),
            reverse in any::<bool>(),
            limit in 1usize..5,
        ) {
            let store = MemoryStore::new();
            let ns = Namespace::new("model").unwrap();
            let neighbour = Namespace::new("model-x").unwrap();
            let mut batch = Batch::new();
            for k in &keys {
                batch.put(&ns, k, b"").put(&neighbour, k, b"");
            }
            if !keys.is_empty() {
                store.commit(batch).now_or_never().unwrap().unwrap();
            }
            let range = KeyRange::new(start, end);
            let mut expected: Vec<Vec<u8>> =
                keys.iter().filter(|k| range.contains(k)).cloned().collect();
            if reverse {
                expected.reverse();
            }
            let mut seen = Vec::new();
            let mut next = Some(range);
            let options = ScanOptions::new().reverse(reverse).limit(limit);
            while let Some(r) = next {
                let page = store.scan(&ns, &r, options).now_or_never().unwrap().unwrap();
                prop_assert!(page.entries.len() <= limit);
                seen.extend(page.entries.into_iter().map(|e| e.key));
                next = page.next;
                prop_assert!(seen.len() <= keys.len() + 1, "paging does not end");
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
