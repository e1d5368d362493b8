//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs, and their verification.
//!
//! - Leaf hash `= SHA-256(0x00 ‖ entry)`, node hash `= SHA-256(0x01 ‖ left ‖ right)`, and the root
//!   of the empty tree `= SHA-256("")`.
//! - A tree of `n` leaves splits at `k`, the largest power of two below `n`: the left subtree
//!   holds the first `k` leaves.
//!
//! Proof *generation* ([`inclusion_proof`], [`consistency_proof`]) follows RFC 6962 §2.1.1–2.1.2
//! over a [`LeafHashes`] source. Proof *verification* ([`verify_inclusion`],
//! [`verify_consistency`]) follows the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, and
//! shares nothing with the generator but the two hash functions. The verifier is checked against
//! the transparency-dev vectors in the shared test data.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The index or sizes are impossible (an index beyond the tree, a first size above the
    /// second).
    #[error("the proof's index or sizes are out of range")]
    OutOfRange,
    /// The proof has too many or too few hashes for the sizes.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The proof leads to another root.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// The hash of a leaf holding `entry`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`): where a tree of `n` leaves splits.
pub(crate) fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proof generation reads leaf hashes from: memory here, storage in the log.
pub trait LeafHashes {
    /// How many leaves there are.
    fn len(&self) -> u64;

    /// The hash of leaf `index` (`index < len()`).
    fn leaf(&self, index: u64) -> Hash;

    /// The root of the subtree over leaves `start..end`. The default recomputes it from the
    /// leaves; a store that keeps inner nodes answers faster.
    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        match end - start {
            0 => empty_root(),
            1 => self.leaf(start),
            n => {
                let k = split(n);
                node_hash(
                    &self.subtree_root(start, start + k),
                    &self.subtree_root(start + k, end),
                )
            }
        }
    }

    /// Whether there are no leaves.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LeafHashes for [Hash] {
    fn len(&self) -> u64 {
        <[Hash]>::len(self) as u64
    }

    fn leaf(&self, index: u64) -> Hash {
        // Callers stay below len(); an out-of-range index is a bug in this module, answered
        // with a hash that verifies nothing rather than a panic.
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .unwrap_or([0; 32])
    }
}

impl LeafHashes for Vec<Hash> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn leaf(&self, index: u64) -> Hash {
        self.as_slice().leaf(index)
    }
}

/// The root of the first `size` leaves of `leaves`.
pub fn root(leaves: &(impl LeafHashes + ?Sized), size: u64) -> Hash {
    leaves.subtree_root(0, size)
}

/// The leaf ranges whose subtree roots form the audit path of leaf `index` in a tree of `size`
/// leaves (RFC 6962 `PATH`), leaf side first. Every generator maps these through its own source
/// of subtree roots: memory here, stored nodes in the log.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `index < size`.
pub fn inclusion_path(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let mut ranges = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    // Walk down from the root, collecting siblings; RFC order is leaf-side first, so reverse.
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
            m -= k;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 `PATH`).
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `index < size <= leaves.len()`.
pub fn inclusion_proof(
    leaves: &(impl LeafHashes + ?Sized),
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if size > leaves.len() {
        return Err(ProofError::OutOfRange);
    }
    Ok(inclusion_path(index, size)?
        .into_iter()
        .map(|(start, end)| leaves.subtree_root(start, end))
        .collect())
}

/// The leaf ranges whose subtree roots form the proof that the tree of `old_size` leaves is a
/// prefix of the tree of `new_size` leaves (RFC 6962 `PROOF`), in proof order. Like
/// [`inclusion_path`], every generator maps them through its own source of subtree roots.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `old_size <= new_size`.
pub fn consistency_path(old_size: u64, new_size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::OutOfRange);
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let mut path = Vec::new();
    let (mut start, mut end, mut m, mut whole) = (0u64, new_size, old_size, true);
    // SUBPROOF(m, D[start..end], whole), unrolled; ranges collected top-down, then reversed.
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                path.push((start, end));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            path.push((start + k, end));
            end = start + k;
        } else {
            path.push((start, start + k));
            start += k;
            m -= k;
            whole = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// The proof that the tree of the first `old_size` leaves is a prefix of the tree of the first
/// `new_size` (RFC 6962 `PROOF`).
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `old_size <= new_size <= leaves.len()`.
pub fn consistency_proof(
    leaves: &(impl LeafHashes + ?Sized),
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if new_size > leaves.len() {
        return Err(ProofError::OutOfRange);
    }
    Ok(consistency_path(old_size, new_size)?
        .into_iter()
        .map(|(start, end)| leaves.subtree_root(start, end))
        .collect())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
///
/// # Errors
/// Which check failed, as a [`ProofError`].
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). A proof from the empty tree is
/// refused as meaningless.
///
/// # Errors
/// Which check failed, as a [`ProofError`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OutOfRange);
    }
    if old_size == 0 {
        // Every tree extends the empty one, so such a proof proves nothing and is refused (as
        // the transparency-dev vectors expect). A holder of an empty checkpoint needs no proof.
        return Err(ProofError::OutOfRange);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // When the old tree is a complete subtree, its root is the proof's implicit first hash.
    let mut hashes = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *hashes.next().ok_or(ProofError::WrongLength)?
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in hashes {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
