//! The records of one log in its storage namespace. The writer ([`crate::log`]) and the verifier
//! ([`crate::verify`]) share this layout, the entry encoding and the hash functions, and nothing
//! else. docs/audit-format.md describes the same layout for other implementations.
//!
//! ```text
//! "h"                      head: the tree size and its frontier (see Frontier)
//! "b" ‖ first (u64)        a chunk: entries first.. of one commit, each as
//!                          leaf hash (32) ‖ length (u32) ‖ canonical entry bytes
//! "n" ‖ level ‖ i (u64)    root of the perfect subtree of 2^level leaves from leaf i·2^level,
//!                          for level >= NODE_LEVEL (smaller subtrees come from chunk hashes)
//! "p"                      the prune point: entries below its size are gone; its frontier stays
//! "l"                      present while a legal hold forbids pruning
//! "c" ‖ size (u64)         a signed checkpoint (signed-note text) at that size
//! "q" ‖ size (u64)         a bridge from a pruned size: target size (u64) ‖ target root ‖ the
//!                          RFC 6962 consistency proof from size to target
//! ```
//!
//! Integers are big endian, so keys sort in index order.

use std::ops::Bound;

use futures_util::TryStreamExt as _;
use zt_storage::{Entry, KeyRange, KvStore, KvStoreExt as _, Namespace, ScanOptions};

use crate::error::{Error, Result};
use crate::merkle::{Hash, empty_root, node_hash};

/// The lowest level whose subtree roots are stored as their own records: 2^6 = 64 leaves. Lower
/// roots come from the leaf hashes in the chunks (a chunk holds up to 256 entries).
pub const NODE_LEVEL: u8 = 6;

pub(crate) const HEAD: &[u8] = b"h";
pub(crate) const PRUNED: &[u8] = b"p";
pub(crate) const HOLD: &[u8] = b"l";
pub(crate) const CHUNK: u8 = b'b';
pub(crate) const NODE: u8 = b'n';
pub(crate) const CHECKPOINT: u8 = b'c';
pub(crate) const BRIDGE: u8 = b'q';

/// The key `tag ‖ index`.
pub(crate) fn indexed_key(tag: u8, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(tag);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The index of a `tag ‖ index` key.
pub(crate) fn key_index(tag: u8, key: &[u8]) -> Option<u64> {
    match key.split_first() {
        Some((&t, rest)) if t == tag => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

pub(crate) fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(10);
    key.push(NODE);
    key.push(level);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The level and index of a node key.
pub(crate) fn node_key_parts(key: &[u8]) -> Option<(u8, u64)> {
    match key {
        [NODE, level, rest @ ..] => Some((*level, u64::from_be_bytes(rest.try_into().ok()?))),
        _ => None,
    }
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("the {what} record is damaged"))
}

/// A tree size and the roots of the perfect subtrees that cover leaves `0..size`, largest first:
/// one per set bit of `size`. Encoded as size (u64) ‖ the roots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Frontier {
    pub(crate) size: u64,
    pub(crate) roots: Vec<Hash>,
}

impl Frontier {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.roots.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for hash in &self.roots {
            out.extend_from_slice(hash);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let (size, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt(what))?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return Err(corrupt(what));
        }
        let roots = rest
            .chunks_exact(32)
            .map(|c| <Hash>::try_from(c).map_err(|_| corrupt(what)))
            .collect::<Result<_>>()?;
        Ok(Frontier { size, roots })
    }

    /// The root of the whole tree.
    pub(crate) fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        match roots.next() {
            None => empty_root(),
            Some(last) => roots.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// The leaf ranges the roots cover, in the same order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + use<> {
        let size = self.size;
        (0..64u32)
            .rev()
            .filter(move |bit| size >> bit & 1 == 1)
            .scan(0u64, |start, bit| {
                let range = (*start, *start + (1u64 << bit));
                *start = range.1;
                Some(range)
            })
    }

    /// The stored root of exactly the range `start..end`, if it is one of the frontier's.
    pub(crate) fn root_of(&self, start: u64, end: u64) -> Option<Hash> {
        self.ranges()
            .zip(&self.roots)
            .find(|(range, _)| *range == (start, end))
            .map(|(_, hash)| *hash)
    }

    /// Appends a leaf; calls `completed(level, index, hash)` for every perfect subtree it
    /// completes, the leaf itself (level 0) first.
    pub(crate) fn push(&mut self, leaf: Hash, completed: impl FnMut(u8, u64, &Hash)) {
        self.push_subtree(0, leaf, completed);
    }

    /// Appends the root of a perfect subtree of 2^`level` leaves; the size must be a multiple
    /// of 2^`level` (a caller's bug otherwise, answered by appending nothing). Calls `completed`
    /// for the subtree itself and every larger one it completes.
    pub(crate) fn push_subtree(
        &mut self,
        level: u8,
        root: Hash,
        mut completed: impl FnMut(u8, u64, &Hash),
    ) {
        let width = 1u64 << level;
        if !self.size.is_multiple_of(width) {
            return;
        }
        let (mut hash, mut position, mut at) = (root, self.size >> level, level);
        completed(at, position, &hash);
        // Like a binary counter: each one bit above `level` merges two subtrees.
        while position & 1 == 1 {
            let Some(left) = self.roots.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            position >>= 1;
            at += 1;
            completed(at, position, &hash);
        }
        self.roots.push(hash);
        self.size += width;
    }
}

/// The format byte of a chunk.
const CHUNK_V1: u8 = 1;

/// Appends one item to a chunk being built (start a chunk with [`new_chunk`]).
pub(crate) fn push_chunk_item(chunk: &mut Vec<u8>, leaf: &Hash, entry: &[u8]) {
    chunk.extend_from_slice(leaf);
    // Entries are limited far below 4 GiB before they get here.
    let len = u32::try_from(entry.len()).unwrap_or(u32::MAX);
    chunk.extend_from_slice(&len.to_be_bytes());
    chunk.extend_from_slice(entry);
}

pub(crate) fn new_chunk() -> Vec<u8> {
    vec![CHUNK_V1]
}

/// The items of a chunk: (recorded leaf hash, entry bytes).
pub(crate) fn decode_chunk(bytes: &[u8]) -> Result<Vec<(Hash, &[u8])>> {
    let damaged = || Error::Corrupt("a chunk record is damaged".into());
    let Some((&CHUNK_V1, mut rest)) = bytes.split_first() else {
        return Err(damaged());
    };
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (leaf, tail) = rest.split_first_chunk::<32>().ok_or_else(damaged)?;
        let (len, tail) = tail.split_first_chunk::<4>().ok_or_else(damaged)?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(damaged());
        }
        let (entry, tail) = tail.split_at(len);
        items.push((*leaf, entry));
        rest = tail;
    }
    if items.is_empty() {
        return Err(damaged());
    }
    Ok(items)
}

/// What a pruned size is bridged to: a later size, its root, and the RFC 6962 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bridge {
    pub(crate) to: u64,
    pub(crate) to_root: Hash,
    pub(crate) proof: Vec<Hash>,
}

impl Bridge {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.to.to_be_bytes().to_vec();
        out.extend_from_slice(&self.to_root);
        for hash in &self.proof {
            out.extend_from_slice(hash);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let (to, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("bridge"))?;
        let (to_root, rest) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| corrupt("bridge"))?;
        if rest.len() % 32 != 0 {
            return Err(corrupt("bridge"));
        }
        let proof = rest
            .chunks_exact(32)
            .map(|c| <Hash>::try_from(c).map_err(|_| corrupt("bridge")))
            .collect::<Result<_>>()?;
        Ok(Bridge {
            to: u64::from_be_bytes(*to),
            to_root: *to_root,
            proof,
        })
    }
}

/// Visits the records of `range` in key order (descending with `reverse`) until `visit` says
/// stop by returning `false`.
pub(crate) async fn scan_records(
    store: &dyn KvStore,
    namespace: &Namespace,
    range: KeyRange,
    reverse: bool,
    mut visit: impl FnMut(Entry) -> Result<bool>,
) -> Result<()> {
    let mut records = store.scan_stream(namespace, range, ScanOptions::new().reverse(reverse));
    while let Some(record) = records.try_next().await? {
        if !visit(record)? {
            break;
        }
    }
    Ok(())
}

/// The first record of `range` in key order (the last with `reverse`).
pub(crate) async fn first_record(
    store: &dyn KvStore,
    namespace: &Namespace,
    range: &KeyRange,
    reverse: bool,
) -> Result<Option<Entry>> {
    let page = store
        .scan(
            namespace,
            range,
            ScanOptions::new().reverse(reverse).limit(1),
        )
        .await?;
    Ok(page.entries.into_iter().next())
}

/// The keys `tag ‖ from ..` up to, not including, `tag ‖ to`.
pub(crate) fn indexed_range(tag: u8, from: u64, to: u64) -> KeyRange {
    KeyRange::new(
        Bound::Included(indexed_key(tag, from)),
        Bound::Excluded(indexed_key(tag, to)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    #[test]
    fn frontier_tracks_the_root_and_its_ranges() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::default();
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf, |_, _, _| {});
            let size = i as u64 + 1;
            assert_eq!(frontier.root(), root(&leaves, size));
            for ((start, end), hash) in frontier.ranges().zip(&frontier.roots) {
                assert_eq!(
                    *hash,
                    root(&leaves[start as usize..end as usize], end - start)
                );
            }
            let decoded = Frontier::decode(&frontier.encode(), "head").unwrap();
            assert_eq!(decoded, frontier);
        }
        assert!(Frontier::decode(&[0; 9], "head").is_err());
        // Whole subtrees pushed at once give the same frontier as their leaves.
        let mut by_blocks = Frontier::default();
        by_blocks.push(leaves[0], |_, _, _| {});
        by_blocks.push(leaves[1], |_, _, _| {});
        by_blocks.push_subtree(1, root(&leaves[2..4], 2), |_, _, _| {});
        by_blocks.push_subtree(2, root(&leaves[4..8], 4), |_, _, _| {});
        by_blocks.push_subtree(3, root(&leaves[8..16], 8), |_, _, _| {});
        let mut completed = Vec::new();
        by_blocks.push_subtree(4, root(&leaves[16..32], 16), |l, i, _| {
            completed.push((l, i))
        });
        assert_eq!(completed, vec![(4, 1), (5, 0)]);
        assert_eq!(by_blocks.root(), root(&leaves, 32));
        let before = by_blocks.clone();
        by_blocks.push_subtree(3, [0; 32], |_, _, _| {});
        by_blocks.push(leaves[32], |_, _, _| {});
        by_blocks.push_subtree(4, [0; 32], |_, _, _| panic!("misaligned"));
        assert_eq!(by_blocks.size, 41, "a misaligned subtree is refused");
        assert_ne!(before, by_blocks);
    }

    #[test]
    fn chunks_round_trip_and_refuse_damage() {
        let mut chunk = new_chunk();
        push_chunk_item(&mut chunk, &[1; 32], b"one");
        push_chunk_item(&mut chunk, &[2; 32], b"");
        let items = decode_chunk(&chunk).unwrap();
        assert_eq!(items, vec![([1; 32], &b"one"[..]), ([2; 32], &b""[..])]);
        assert!(decode_chunk(&chunk[..chunk.len() - 1]).is_err());
        assert!(decode_chunk(&new_chunk()).is_err());
        assert!(decode_chunk(&[]).is_err());
    }
}
