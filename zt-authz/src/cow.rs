//! An ordered map that clones in time proportional to its size over [`CHUNK`], not its size:
//! what lets [`Model`](crate::Model) be copied for every change (the service judges a change by
//! the model before and after it) in a tenant of tens of thousands of users.
//!
//! The entries live in chunks of at most `2 * CHUNK`, each behind an [`Arc`] and keyed by a
//! lower bound of its keys; a clone shares every chunk, and a change copies only the chunk it
//! touches. Iteration is in key order, as a `BTreeMap`'s.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Entries per chunk after a split; a chunk splits past twice this.
pub(crate) const CHUNK: usize = 64;

/// See the module's docs.
#[derive(Clone)]
pub(crate) struct CowMap<K, V> {
    /// Each chunk by a lower bound of its keys: every key of a chunk is at least its bound and
    /// below the next chunk's.
    chunks: BTreeMap<K, Arc<BTreeMap<K, V>>>,
    len: usize,
}

impl<K: Ord + Copy, V: Clone> CowMap<K, V> {
    pub(crate) fn new() -> Self {
        CowMap {
            chunks: BTreeMap::new(),
            len: 0,
        }
    }

    /// The bound of the chunk that holds (or would hold) `key`, if any chunk's bound is at or
    /// below it.
    fn bound_of(&self, key: &K) -> Option<K> {
        self.chunks.range(..=*key).next_back().map(|(k, _)| *k)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let bound = self.bound_of(key)?;
        self.chunks.get(&bound)?.get(key)
    }

    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let bound = self.bound_of(key)?;
        let chunk = self.chunks.get_mut(&bound)?;
        if !chunk.contains_key(key) {
            return None;
        }
        Arc::make_mut(chunk).get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let bound = match self.bound_of(&key) {
            Some(bound) => bound,
            None => {
                // Below every bound (or empty): the first chunk is now bounded by `key`.
                let first = self.chunks.pop_first();
                let chunk = first.map(|(_, c)| c).unwrap_or_default();
                self.chunks.insert(key, chunk);
                key
            }
        };
        let chunk = Arc::make_mut(self.chunks.get_mut(&bound)?);
        let old = chunk.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        if chunk.len() > 2 * CHUNK
            && let Some(middle) = chunk.keys().nth(chunk.len() / 2).copied()
        {
            let upper = chunk.split_off(&middle);
            self.chunks.insert(middle, Arc::new(upper));
        }
        old
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let bound = self.bound_of(key)?;
        let chunk = self.chunks.get_mut(&bound)?;
        if !chunk.contains_key(key) {
            return None;
        }
        let inner = Arc::make_mut(chunk);
        let old = inner.remove(key);
        if inner.is_empty() {
            self.chunks.remove(&bound);
        }
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.chunks.values().flat_map(|c| c.iter())
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The entries from `lo` to `hi`, both included, in order.
    pub(crate) fn range(&self, lo: K, hi: K) -> impl Iterator<Item = (&K, &V)> + '_ {
        let start = self.bound_of(&lo).unwrap_or(lo);
        // An empty range (lo above hi) reads nothing; the chunks' own ranges would refuse it.
        let chunks = if lo <= hi && start <= hi {
            Some(self.chunks.range(start..=hi))
        } else {
            None
        };
        chunks
            .into_iter()
            .flatten()
            .flat_map(move |(_, c)| c.range(lo..=hi))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl<K: Ord + Copy, V: Clone> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap::new()
    }
}

impl<K: Ord + Copy, V: Clone> FromIterator<(K, V)> for CowMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = CowMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<K: Ord + Copy, V: Clone + PartialEq> PartialEq for CowMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Copy, V: Clone + Eq> Eq for CowMap<K, V> {}

impl<K: Ord + Copy + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        Bump(u16),
        Clone,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..600, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (0u16..600).prop_map(Op::Remove),
            1 => (0u16..600).prop_map(Op::Bump),
            1 => Just(Op::Clone),
        ]
    }

    proptest! {
        /// Every operation answers as a `BTreeMap`'s, and a clone taken along the way keeps
        /// what the map held then, whatever the original does afterwards.
        #[test]
        fn behaves_as_a_btree_map_and_clones_stay_apart(ops in proptest::collection::vec(op(), 1..1500)) {
            let mut map = CowMap::new();
            let mut model = BTreeMap::new();
            let mut frozen: Vec<(CowMap<u16, u8>, BTreeMap<u16, u8>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    Op::Bump(k) => {
                        if let Some(v) = map.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                        if let Some(v) = model.get_mut(&k) {
                            *v = v.wrapping_add(1);
                        }
                    }
                    Op::Clone => frozen.push((map.clone(), model.clone())),
                }
                prop_assert_eq!(map.len(), model.len());
            }
            prop_assert!(map.iter().eq(model.iter()));
            for k in [0u16, 1, 100, 300, 599, 700] {
                prop_assert_eq!(map.get(&k), model.get(&k));
                prop_assert_eq!(map.contains_key(&k), model.contains_key(&k));
            }
            for (lo, hi) in [(0u16, 599u16), (10, 20), (250, 251), (300, 100), (598, 700)] {
                let got: Vec<_> = map.range(lo, hi).collect();
                let want: Vec<_> = if lo <= hi { model.range(lo..=hi).collect() } else { Vec::new() };
                prop_assert_eq!(got, want);
            }
            for (copy, then) in frozen {
                prop_assert!(copy.iter().eq(then.iter()));
                prop_assert_eq!(copy.len(), then.len());
            }
        }
    }

    #[test]
    fn a_clone_shares_its_chunks_until_one_is_changed() {
        let mut map: CowMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let copy = map.clone();
        let shared = |a: &CowMap<u32, u32>, b: &CowMap<u32, u32>| {
            a.chunks
                .values()
                .zip(b.chunks.values())
                .filter(|(x, y)| Arc::ptr_eq(x, y))
                .count()
        };
        let chunks = map.chunks.len();
        assert!(chunks >= 10_000 / (2 * CHUNK), "{chunks}");
        assert_eq!(shared(&map, &copy), chunks);
        map.insert(5_000, 0);
        assert_eq!(shared(&map, &copy), chunks - 1);
        assert_eq!(copy.get(&5_000), Some(&5_000));
    }
}
