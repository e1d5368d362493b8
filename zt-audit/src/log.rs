//! The append-only log over a [`KvStore`]: entries, Merkle node hashes, and a linear head.
//!
//! Layout in the log's namespace:
//!
//! ```text
//! "h"                         head: tree size (u64) ‖ left frontier (32-byte roots of the
//!                             perfect subtrees that make up the tree, largest first)
//! "e" ‖ index (u64)           the entry's canonical bytes
//! "n" ‖ level (u8) ‖ i (u64)  root of the perfect subtree of 2^level leaves starting at
//!                             leaf i·2^level (level 0: the leaf hash)
//! ```
//!
//! **Appends.** Appends from concurrent tasks are group-committed. Each appender queues its entry
//! and waits for the leader lock. Whoever holds the lock commits everything queued in one storage
//! commit, conditional on the head's version, and hands every appender its index. No queued entry
//! can be missed, because every appender takes the lock after queueing. Several processes over one
//! store stay linear: a commit whose head moved conflicts, re-reads the head and retries. An append
//! returns once the store's commit does, which is durable.
//!
//! **Proofs.** Any subtree root is at most O(log n) node reads, so a proof costs O(log² n) reads.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use tokio::sync::{Mutex, oneshot};
use zt_storage::{Batch, ErrorKind, KvStore, Namespace};

use crate::error::{Error, Result};
use crate::merkle::{Hash, ProofError, empty_root, inclusion_path, leaf_hash, node_hash, split};

const HEAD: &[u8] = b"h";

fn entry_key(index: u64) -> Vec<u8> {
    let mut key = b"e".to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut key = b"n".to_vec();
    key.push(level);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The head: the tree size and the left frontier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Head {
    size: u64,
    /// Roots of the perfect subtrees covering leaves `0..size`, largest first: one per set bit
    /// of `size`.
    frontier: Vec<Hash>,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for hash in &self.frontier {
            out.extend_from_slice(hash);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = || Error::Corrupt("the log head is damaged".into());
        let (size, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return Err(corrupt());
        }
        let frontier = rest
            .chunks_exact(32)
            .map(|c| <Hash>::try_from(c).map_err(|_| corrupt()))
            .collect::<Result<_>>()?;
        Ok(Head { size, frontier })
    }

    /// The root of the whole tree.
    fn root(&self) -> Hash {
        let mut roots = self.frontier.iter().rev();
        match roots.next() {
            None => empty_root(),
            Some(last) => roots.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Appends a leaf; returns the node hashes it completes as (level, index, hash), the leaf
    /// itself first.
    fn push(&mut self, leaf: Hash) -> Vec<(u8, u64, Hash)> {
        let index = self.size;
        let mut nodes = vec![(0u8, index, leaf)];
        let (mut hash, mut position, mut level) = (leaf, index, 0u8);
        // Like a binary counter: each trailing one bit of the old size merges two subtrees.
        while position & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            position >>= 1;
            level += 1;
            nodes.push((level, position, hash));
        }
        self.frontier.push(hash);
        self.size += 1;
        nodes
    }
}

struct Pending {
    entry: Vec<u8>,
    done: oneshot::Sender<Result<u64>>,
}

/// One append-only, verifiable log in one namespace of a [`KvStore`].
pub struct AuditLog {
    store: Arc<dyn KvStore>,
    namespace: Namespace,
    queue: StdMutex<Vec<Pending>>,
    leader: Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// The log in `namespace` of `store` (empty if nothing was appended yet).
    pub fn new(store: Arc<dyn KvStore>, namespace: Namespace) -> Self {
        AuditLog {
            store,
            namespace,
            queue: StdMutex::default(),
            leader: Mutex::new(()),
        }
    }

    /// Appends an entry (canonical bytes, see [`crate::entry`]); returns its index once it is
    /// durable.
    ///
    /// # Errors
    /// The store's errors; a conflict with another writer is retried, never returned.
    pub async fn append(&self, entry: Vec<u8>) -> Result<u64> {
        let (done, mut result) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Pending { entry, done });
        let _leader = self.leader.lock().await;
        // A previous leader may have committed this entry already.
        if let Ok(outcome) = result.try_recv() {
            return outcome;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        let entries: Vec<&[u8]> = batch.iter().map(|p| p.entry.as_slice()).collect();
        match self.commit(&entries).await {
            Ok(first) => {
                for (offset, pending) in (0u64..).zip(batch) {
                    // A receiver that went away (its task was cancelled) no longer needs the index.
                    let _ = pending.done.send(Ok(first + offset));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for pending in batch {
                    let _ = pending
                        .done
                        .send(Err(Error::Storage(zt_storage::Error::unavailable(
                            message.clone(),
                            None,
                        ))));
                }
            }
        }
        result
            .await
            .map_err(|_| Error::Corrupt("an append was dropped without an answer".into()))?
    }

    /// Commits `entries` after the current head, retrying when another writer moved it. Returns
    /// the index of the first entry.
    async fn commit(&self, entries: &[&[u8]]) -> Result<u64> {
        loop {
            let (mut head, version) = self.read_head().await?;
            let first = head.size;
            let mut batch = Batch::new();
            match version {
                None => batch.require_absent(&self.namespace, HEAD),
                Some(v) => batch.require_version(&self.namespace, HEAD, v),
            };
            for (offset, entry) in (0u64..).zip(entries) {
                for (level, index, hash) in head.push(leaf_hash(entry)) {
                    batch.put(&self.namespace, &node_key(level, index), &hash);
                }
                batch.put(&self.namespace, &entry_key(first + offset), entry);
            }
            batch.put_owned(&self.namespace, HEAD.to_vec(), head.encode());
            match self.store.commit(batch).await {
                Ok(_) => return Ok(first),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(Error::Storage(e)),
            }
        }
    }

    async fn read_head(&self) -> Result<(Head, Option<u64>)> {
        match self.store.get(&self.namespace, HEAD).await? {
            None => Ok((Head::default(), None)),
            Some(entry) => Ok((Head::decode(&entry.value)?, Some(entry.version))),
        }
    }

    /// The current tree size and root.
    pub async fn tree_head(&self) -> Result<(u64, Hash)> {
        let (head, _) = self.read_head().await?;
        Ok((head.size, head.root()))
    }

    /// The entry at `index`.
    pub async fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .store
            .get(&self.namespace, &entry_key(index))
            .await?
            .map(|e| e.value))
    }

    async fn node(&self, level: u8, index: u64) -> Result<Hash> {
        let stored = self
            .store
            .get(&self.namespace, &node_key(level, index))
            .await?
            .ok_or_else(|| Error::Corrupt(format!("node {level}/{index} is missing")))?;
        <Hash>::try_from(stored.value.as_slice())
            .map_err(|_| Error::Corrupt(format!("node {level}/{index} is damaged")))
    }

    /// The root of leaves `start..end`, from stored perfect-subtree roots.
    async fn subtree_root(&self, start: u64, end: u64) -> Result<Hash> {
        let n = end - start;
        if n == 0 {
            return Ok(empty_root());
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.node(n.trailing_zeros() as u8, start / n).await;
        }
        let k = split(n);
        let left = Box::pin(self.subtree_root(start, start + k)).await?;
        let right = Box::pin(self.subtree_root(start + k, end)).await?;
        Ok(node_hash(&left, &right))
    }

    /// The inclusion proof of entry `index` in the tree of the first `size` entries.
    ///
    /// # Errors
    /// [`Error::Proof`] when `index` or `size` is out of range.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let (head, _) = self.read_head().await?;
        if size > head.size {
            return Err(Error::Proof(ProofError::OutOfRange));
        }
        let mut proof = Vec::new();
        for (start, end) in inclusion_path(index, size)? {
            proof.push(self.subtree_root(start, end).await?);
        }
        Ok(proof)
    }

    /// The root of the first `size` entries (a past tree head).
    pub async fn root_at(&self, size: u64) -> Result<Hash> {
        let (head, _) = self.read_head().await?;
        if size > head.size {
            return Err(Error::Proof(ProofError::OutOfRange));
        }
        self.subtree_root(0, size).await
    }
}
