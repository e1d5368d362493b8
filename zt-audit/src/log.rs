//! The append-only log over a [`KvStore`]: chunks of entries, stored subtree roots, a linear
//! head, signed checkpoints, and pruning that keeps proofs working. The records are described
//! in [`crate::layout`] and docs/audit-format.md.
//!
//! **Appends.** Appends from concurrent tasks are group-committed. Each appender queues its entry
//! and waits for the leader lock. Whoever holds it commits everything queued (up to a commit's
//! limits) as chunk records (of at most 256 entries, split at multiples of 256), the subtree roots it completes and the new head, in one storage
//! commit conditional on the head's version, and hands every appender its index. The commit runs
//! in a task of its own, so an appender that stops waiting strands nobody. Several processes
//! over one store stay linear: a commit whose head moved conflicts, re-reads the head and
//! retries. An append returns once the store's commit does, which is durable.
//!
//! **Proofs.** A subtree root is a stored node (64 leaves and up), the hash over a chunk's leaf
//! hashes (below), or a root the prune point kept, so a proof costs O(log n) reads.
//!
//! **Pruning** ([`AuditLog::prune`]) removes the entries below an index and keeps the frontier
//! of that size, from which every later proof is built. Each signed checkpoint below the prune
//! point gets a bridge: the consistency proof from its size to the prune point, made before the
//! entries go. A consistency proof from such a size is then a chain of RFC 6962 proofs
//! ([`ConsistencyChain`]). Pruning is refused while a legal hold is set.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use zt_audit::log::AuditLog;
//! use zt_storage::{MemoryStore, Namespace};
//!
//! use zt_core::{Actor, AuditEvent, AuditEventKind, Timestamp};
//!
//! let log = AuditLog::new(Arc::new(MemoryStore::new()), Namespace::new("audit.demo")?);
//! let entry = |i: i64| {
//!     let at = Timestamp::from_unix_millis(1_764_400_000_000 + i);
//!     zt_audit::entry::encode(&AuditEvent::new(AuditEventKind::LoginFailed, Actor::Anonymous, at))
//! };
//! for i in 0..5 {
//!     assert_eq!(log.append(entry(i)).await?, i as u64);
//! }
//! let (size, root) = log.tree_head().await?;
//! let proof = log.inclusion_proof(3, size).await?;
//! let leaf = zt_audit::merkle::leaf_hash(&entry(3));
//! zt_audit::merkle::verify_inclusion(3, size, &leaf, &proof, &root)?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::ops::Bound;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};
use zt_storage::{Batch, ErrorKind, KvStore, Namespace};

use crate::checkpoint::{Checkpoint, NoteSigner};
use crate::error::{Error, Result};
use crate::layout::{
    BRIDGE, Bridge, CHECKPOINT, CHUNK, Frontier, HEAD, HOLD, NODE_LEVEL, PRUNED, decode_chunk,
    first_record, indexed_key, indexed_range, key_index, new_chunk, node_key, push_chunk_item,
    scan_records,
};
use crate::merkle::{
    self, Hash, ProofError, consistency_path, empty_root, inclusion_path, leaf_hash, node_hash,
    split,
};

/// The largest entry the log accepts, in bytes.
pub const MAX_ENTRY_LEN: usize = 1 << 20;
/// A group commit stops adding entries at this many bytes…
const MAX_COMMIT_BYTES: usize = 4 << 20;
/// …or this many entries; the rest wait for the next commit.
const MAX_COMMIT_ENTRIES: usize = 4096;
/// A chunk record holds at most this many entries and never crosses a multiple of it, so a
/// proof reads little beyond the leaves it needs.
const CHUNK_SPAN: u64 = 256;
/// Records deleted per commit when pruning.
const PRUNE_DELETES_PER_COMMIT: usize = 2048;

struct Pending {
    entry: Vec<u8>,
    done: oneshot::Sender<Result<u64>>,
}

/// The head as this process's last commit left it, with its version in the store.
type CachedHead = Option<(Frontier, u64)>;

struct Inner {
    store: Arc<dyn KvStore>,
    namespace: Namespace,
    queue: StdMutex<Vec<Pending>>,
    /// Held by the one task committing for everybody (and by pruning).
    leader: Arc<Mutex<CachedHead>>,
}

/// One append-only, verifiable log in one namespace of a [`KvStore`]. Cloning gives another
/// handle on the same log and the same group commit.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

/// A proof that one tree is a prefix of another: one RFC 6962 consistency proof per link. It has
/// one link unless the old size was pruned; then the first links are the bridges made when the
/// entries went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyChain {
    /// The links, from the old size to the new one.
    pub links: Vec<ConsistencyLink>,
}

/// One step of a [`ConsistencyChain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyLink {
    /// The tree size it starts from.
    pub from: u64,
    /// The tree size it reaches.
    pub to: u64,
    /// The root at `to` (for the last link, the new root the verifier already holds).
    pub to_root: Hash,
    /// The RFC 6962 consistency proof from `from` to `to`.
    pub proof: Vec<Hash>,
}

impl ConsistencyChain {
    /// Checks that the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).
    ///
    /// # Errors
    /// [`Error::Proof`] when a link does not verify or the links do not join the two trees.
    pub fn verify(
        &self,
        old_size: u64,
        old_root: &Hash,
        new_size: u64,
        new_root: &Hash,
    ) -> Result<()> {
        let (mut size, mut root) = (old_size, *old_root);
        for link in &self.links {
            if link.from != size || link.to < link.from {
                return Err(Error::Proof(ProofError::OutOfRange));
            }
            merkle::verify_consistency(link.from, link.to, &link.proof, &root, &link.to_root)?;
            (size, root) = (link.to, link.to_root);
        }
        if size != new_size {
            return Err(Error::Proof(ProofError::OutOfRange));
        }
        if root != *new_root {
            return Err(Error::Proof(ProofError::RootMismatch));
        }
        Ok(())
    }
}

impl AuditLog {
    /// The log in `namespace` of `store` (empty if nothing was appended yet).
    pub fn new(store: Arc<dyn KvStore>, namespace: Namespace) -> Self {
        AuditLog {
            inner: Arc::new(Inner {
                store,
                namespace,
                queue: StdMutex::default(),
                leader: Arc::new(Mutex::new(None)),
            }),
        }
    }

    /// The namespace the log lives in.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// The store the log lives in.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.inner.store
    }

    /// Appends an entry (canonical bytes, see [`crate::entry`]); returns its index once it is
    /// durable. If the caller stops waiting, the entry may still be committed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an entry over [`MAX_ENTRY_LEN`], [`Error::MalformedEntry`] for
    /// bytes that are not a canonical audit entry (the log holds nothing else, so the verifier can
    /// hold every entry to the encoding); the store's errors. A conflict with another writer is
    /// retried, never returned.
    pub async fn append(&self, entry: Vec<u8>) -> Result<u64> {
        if entry.len() > MAX_ENTRY_LEN {
            return Err(Error::InvalidInput(format!(
                "an audit entry of {} bytes is over the limit of {MAX_ENTRY_LEN}",
                entry.len()
            )));
        }
        crate::entry::validate(&entry)?;
        let (done, mut answer) = oneshot::channel();
        self.inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Pending { entry, done });
        let leader = Arc::clone(&self.inner.leader).lock_owned().await;
        // A previous leader may have committed this entry already.
        if let Ok(outcome) = answer.try_recv() {
            return outcome;
        }
        // Appenders woken together (the answers of the last group) are ready to run: let them
        // queue their entries first, so they share this commit instead of waiting for the next.
        tokio::task::yield_now().await;
        let inner = Arc::clone(&self.inner);
        // A panic in the task drops the senders, which the receive below reports.
        let _ = tokio::spawn(async move { inner.commit_queued(leader).await }).await;
        answer.await.map_err(|_| {
            Error::Corrupt("the commit of an append failed without an answer".into())
        })?
    }

    /// The current tree size and root.
    pub async fn tree_head(&self) -> Result<(u64, Hash)> {
        let (head, _) = self.inner.read_head().await?;
        Ok((head.size, head.root()))
    }

    /// The first index that was not pruned (0 if nothing was).
    pub async fn pruned_below(&self) -> Result<u64> {
        Ok(self.inner.prune_point().await?.size)
    }

    /// The entry at `index`, or `None` when the log does not have it (yet, or any more).
    pub async fn entry(&self, index: u64) -> Result<Option<Vec<u8>>> {
        let (head, _) = self.inner.read_head().await?;
        if index >= head.size || index < self.inner.prune_point().await?.size {
            return Ok(None);
        }
        let mut items = self.inner.items(index, index + 1).await?;
        Ok(items.pop().map(|(_, entry)| entry))
    }

    /// The entries `start..end`, in order.
    ///
    /// # Errors
    /// [`Error::Pruned`] when `start` is below the prune point, [`Error::OutOfRange`] when `end`
    /// is beyond the tree, [`Error::InvalidInput`] when `start` is past `end`.
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>> {
        let (head, _) = self.inner.read_head().await?;
        if start > end {
            return Err(Error::InvalidInput(format!(
                "the range {start}..{end} runs backwards"
            )));
        }
        if end > head.size {
            return Err(Error::OutOfRange {
                asked: end,
                size: head.size,
            });
        }
        let pruned = self.inner.prune_point().await?.size;
        if start < pruned {
            return Err(Error::Pruned { below: pruned });
        }
        Ok(self
            .inner
            .items(start, end)
            .await?
            .into_iter()
            .map(|(_, entry)| entry)
            .collect())
    }

    /// The root of the first `size` entries (a past tree head).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] beyond the tree; [`Error::Pruned`] for a size that pruning removed.
    pub async fn root_at(&self, size: u64) -> Result<Hash> {
        let (head, _) = self.inner.read_head().await?;
        if size > head.size {
            return Err(Error::OutOfRange {
                asked: size,
                size: head.size,
            });
        }
        let pruned = self.inner.prune_point().await?;
        self.inner.subtree_root(0, size, &pruned).await
    }

    /// The inclusion proof of entry `index` in the tree of the first `size` entries.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a size beyond the tree, [`Error::Proof`] for an index beyond
    /// the size; [`Error::Pruned`] when the entry was pruned.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let (head, _) = self.inner.read_head().await?;
        if size > head.size {
            return Err(Error::OutOfRange {
                asked: size,
                size: head.size,
            });
        }
        let pruned = self.inner.prune_point().await?;
        if index < pruned.size {
            return Err(Error::Pruned { below: pruned.size });
        }
        self.inner
            .roots_of(inclusion_path(index, size)?, &pruned)
            .await
    }

    /// The proof that the tree of `old_size` entries is a prefix of the tree of `new_size`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a new size beyond the tree, [`Error::Proof`] for an old size
    /// above the new one; [`Error::Pruned`] for an old size below
    /// the prune point that no bridge starts from (only signed checkpoints get bridges).
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyChain> {
        let (head, _) = self.inner.read_head().await?;
        if new_size > head.size {
            return Err(Error::OutOfRange {
                asked: new_size,
                size: head.size,
            });
        }
        if old_size > new_size {
            return Err(Error::Proof(ProofError::OutOfRange));
        }
        let pruned = self.inner.prune_point().await?;
        let mut links = Vec::new();
        let mut from = old_size;
        // Below the prune point, follow the bridges to it.
        while from < pruned.size && from != 0 {
            let record = self
                .inner
                .store
                .get(&self.inner.namespace, &indexed_key(BRIDGE, from))
                .await?
                .ok_or(Error::Pruned { below: pruned.size })?;
            let bridge = Bridge::decode(&record.value)?;
            if bridge.to <= from {
                return Err(Error::Corrupt(format!(
                    "the bridge from size {from} goes backwards"
                )));
            }
            links.push(ConsistencyLink {
                from,
                to: bridge.to,
                to_root: bridge.to_root,
                proof: bridge.proof,
            });
            from = bridge.to;
        }
        if from > new_size {
            // Bridges lead to the prune point; a new size below it has no proof any more.
            return Err(Error::Pruned { below: pruned.size });
        }
        let proof = self
            .inner
            .roots_of(consistency_path(from, new_size)?, &pruned)
            .await?;
        links.push(ConsistencyLink {
            from,
            to: new_size,
            to_root: self.inner.subtree_root(0, new_size, &pruned).await?,
            proof,
        });
        Ok(ConsistencyChain { links })
    }

    /// Signs the current tree head as a checkpoint of `origin`, stores it, and returns the signed
    /// note.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unusable origin; the store's errors.
    pub async fn checkpoint(&self, signer: &NoteSigner, origin: &str) -> Result<String> {
        let (head, _) = self.inner.read_head().await?;
        let note = signer.sign(&Checkpoint {
            origin: origin.to_owned(),
            size: head.size,
            root: head.root(),
            extensions: Vec::new(),
        })?;
        let mut batch = Batch::new();
        batch.put(
            &self.inner.namespace,
            &indexed_key(CHECKPOINT, head.size),
            note.as_bytes(),
        );
        self.inner.store.commit(batch).await?;
        Ok(note)
    }

    /// The latest stored checkpoint (signed-note text), if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>> {
        let latest = first_record(
            &*self.inner.store,
            &self.inner.namespace,
            &indexed_range(CHECKPOINT, 0, u64::MAX),
            true,
        )
        .await?;
        latest
            .map(|record| record.value)
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| Error::Corrupt("a stored checkpoint is not UTF-8".into()))
            })
            .transpose()
    }

    /// Sets or clears the legal hold. While it is set, [`AuditLog::prune`] refuses.
    pub async fn set_legal_hold(&self, hold: bool) -> Result<()> {
        let mut batch = Batch::new();
        if hold {
            batch.put(&self.inner.namespace, HOLD, b"1");
        } else {
            batch.delete(&self.inner.namespace, HOLD);
        }
        self.inner.store.commit(batch).await?;
        Ok(())
    }

    /// Whether a legal hold is set.
    pub async fn legal_hold(&self) -> Result<bool> {
        Ok(self
            .inner
            .store
            .get(&self.inner.namespace, HOLD)
            .await?
            .is_some())
    }

    /// Removes the entries below `below`, keeping what every later proof needs: the frontier at
    /// `below`, the stored roots of subtrees that reach past it, and a bridge from each signed
    /// checkpoint below it. Pruning to or below the current prune point does nothing.
    ///
    /// # Errors
    /// [`Error::LegalHold`] while a legal hold is set (checked in the same atomic commit);
    /// [`Error::OutOfRange`] when `below` is beyond the tree; the store's errors.
    pub async fn prune(&self, below: u64) -> Result<()> {
        let _leader = self.inner.leader.lock().await;
        loop {
            let (head, _) = self.inner.read_head().await?;
            if below > head.size {
                return Err(Error::OutOfRange {
                    asked: below,
                    size: head.size,
                });
            }
            let record = self.inner.store.get(&self.inner.namespace, PRUNED).await?;
            let pruned = match &record {
                None => Frontier::default(),
                Some(r) => Frontier::decode(&r.value, "prune point")?,
            };
            if below <= pruned.size {
                break;
            }
            match self
                .inner
                .prune_once(below, &pruned, record.map(|r| r.version))
                .await
            {
                Err(Error::Storage(e)) if e.kind() == ErrorKind::Conflict => {
                    if self.legal_hold().await? {
                        return Err(Error::LegalHold);
                    }
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        self.inner.collect_pruned().await
    }
}

impl Inner {
    /// Commits everything queued, a chunk at a time, answering each appender.
    async fn commit_queued(&self, mut head: OwnedMutexGuard<CachedHead>) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let (mut count, mut bytes) = (0usize, 0usize);
                for pending in queue.iter() {
                    if count > 0
                        && (count == MAX_COMMIT_ENTRIES
                            || bytes + pending.entry.len() > MAX_COMMIT_BYTES)
                    {
                        break;
                    }
                    count += 1;
                    bytes += pending.entry.len();
                }
                queue.drain(..count).collect()
            };
            if batch.is_empty() {
                return;
            }
            match self.commit(&mut head, &batch).await {
                Ok(first) => {
                    for (offset, pending) in (0u64..).zip(batch) {
                        // A receiver that went away (its caller stopped waiting) needs no answer.
                        let _ = pending.done.send(Ok(first + offset));
                    }
                }
                Err(e) => {
                    // Every appender of the group gets the leader's error itself, with its kind:
                    // a damaged log is not reported as something a retry could cure.
                    let shared = Arc::new(e);
                    for pending in batch {
                        let _ = pending
                            .done
                            .send(Err(Error::GroupCommit(Arc::clone(&shared))));
                    }
                }
            }
        }
    }

    /// Commits `entries` after the current head, retrying when another writer moved it. Returns
    /// the index of the first entry.
    async fn commit(&self, cached: &mut CachedHead, entries: &[Pending]) -> Result<u64> {
        loop {
            let (mut head, version) = match cached.take() {
                Some((head, version)) => (head, Some(version)),
                None => self.read_head().await?,
            };
            let first = head.size;
            let ns = &self.namespace;
            let mut batch = Batch::new();
            match version {
                None => batch.require_absent(ns, HEAD),
                Some(v) => batch.require_version(ns, HEAD, v),
            };
            let (mut chunk, mut chunk_first) = (new_chunk(), first);
            for pending in entries {
                let index = head.size;
                if index != chunk_first && index.is_multiple_of(CHUNK_SPAN) {
                    let full = std::mem::replace(&mut chunk, new_chunk());
                    batch.put_owned(ns, indexed_key(CHUNK, chunk_first), full);
                    chunk_first = index;
                }
                let leaf = leaf_hash(&pending.entry);
                head.push(leaf, |level, index, hash| {
                    if level >= NODE_LEVEL {
                        batch.put(ns, &node_key(level, index), hash);
                    }
                });
                push_chunk_item(&mut chunk, &leaf, &pending.entry);
            }
            batch.put_owned(ns, indexed_key(CHUNK, chunk_first), chunk);
            batch.put_owned(ns, HEAD.to_vec(), head.encode());
            match self.store.commit(batch).await {
                Ok(version) => {
                    *cached = Some((head, version));
                    return Ok(first);
                }
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(Error::Storage(e)),
            }
        }
    }

    async fn read_head(&self) -> Result<(Frontier, Option<u64>)> {
        match self.store.get(&self.namespace, HEAD).await? {
            None => Ok((Frontier::default(), None)),
            Some(entry) => Ok((Frontier::decode(&entry.value, "head")?, Some(entry.version))),
        }
    }

    async fn prune_point(&self) -> Result<Frontier> {
        match self.store.get(&self.namespace, PRUNED).await? {
            None => Ok(Frontier::default()),
            Some(entry) => Frontier::decode(&entry.value, "prune point"),
        }
    }

    /// The recorded leaf hashes and entries `start..end` (`start` not pruned, `end` within the
    /// tree).
    async fn items(&self, start: u64, end: u64) -> Result<Vec<(Hash, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        // The chunk holding `start` is the last one that begins at or before it.
        let from = first_record(
            &*self.store,
            &self.namespace,
            &indexed_range(CHUNK, 0, start + 1),
            true,
        )
        .await?
        .and_then(|record| key_index(CHUNK, &record.key));
        let from = from.ok_or_else(|| Error::Corrupt(format!("no chunk holds entry {start}")))?;
        let mut items = Vec::new();
        let mut next = from;
        scan_records(
            &*self.store,
            &self.namespace,
            indexed_range(CHUNK, from, end),
            false,
            |record| {
                let first = key_index(CHUNK, &record.key)
                    .ok_or_else(|| Error::Corrupt("a chunk key is damaged".into()))?;
                if first != next {
                    return Err(Error::Corrupt(format!(
                        "entries {next}..{first} are missing"
                    )));
                }
                for (leaf, entry) in decode_chunk(&record.value)? {
                    if (start..end).contains(&next) {
                        items.push((leaf, entry.to_vec()));
                    }
                    next += 1;
                }
                Ok(true)
            },
        )
        .await?;
        if next < end {
            return Err(Error::Corrupt(format!("entries {next}..{end} are missing")));
        }
        Ok(items)
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

    /// The root of leaves `start..end`: from the prune point's frontier below it, stored nodes
    /// from 64 leaves up, and chunk leaf hashes below that.
    async fn subtree_root(&self, start: u64, end: u64, pruned: &Frontier) -> Result<Hash> {
        let n = end - start;
        if n == 0 {
            return Ok(empty_root());
        }
        if (start, end) == (0, pruned.size) {
            return Ok(pruned.root());
        }
        if end <= pruned.size {
            return pruned
                .root_of(start, end)
                .ok_or(Error::Pruned { below: pruned.size });
        }
        let perfect = n.is_power_of_two() && start.is_multiple_of(n);
        let level = n.trailing_zeros();
        if perfect && level >= u32::from(NODE_LEVEL) {
            // Stored nodes reaching past the prune point survive it.
            return self.node(level as u8, start / n).await;
        }
        if perfect && start >= pruned.size {
            let leaves: Vec<Hash> = self
                .items(start, end)
                .await?
                .into_iter()
                .map(|(leaf, _)| leaf)
                .collect();
            return Ok(merkle::root(&leaves, n));
        }
        let k = split(n);
        let left = Box::pin(self.subtree_root(start, start + k, pruned)).await?;
        let right = Box::pin(self.subtree_root(start + k, end, pruned)).await?;
        Ok(node_hash(&left, &right))
    }

    /// The roots of `ranges`, in order: a proof from its path.
    async fn roots_of(&self, ranges: Vec<(u64, u64)>, pruned: &Frontier) -> Result<Vec<Hash>> {
        let mut roots = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            roots.push(self.subtree_root(start, end, pruned).await?);
        }
        Ok(roots)
    }

    /// Records the prune point `below` (with bridges from the signed checkpoints it passes) and
    /// trims the chunk that straddles it, in one commit conditional on the legal hold being
    /// absent and the prune record being as read.
    async fn prune_once(&self, below: u64, pruned: &Frontier, version: Option<u64>) -> Result<()> {
        let ns = &self.namespace;
        let mut frontier = Frontier {
            size: below,
            roots: Vec::new(),
        };
        frontier.roots = self.roots_of(frontier.ranges().collect(), pruned).await?;
        let mut batch = Batch::new();
        batch.require_absent(ns, HOLD);
        match version {
            None => batch.require_absent(ns, PRUNED),
            Some(v) => batch.require_version(ns, PRUNED, v),
        };
        // Bridges from the old prune point and every signed size in between.
        let mut sizes = Vec::new();
        if pruned.size > 0 {
            sizes.push(pruned.size);
        }
        scan_records(
            &*self.store,
            ns,
            indexed_range(CHECKPOINT, pruned.size.max(1), below),
            false,
            |record| {
                sizes.extend(key_index(CHECKPOINT, &record.key).filter(|s| *s > pruned.size));
                Ok(true)
            },
        )
        .await?;
        let to_root = frontier.root();
        for from in sizes {
            let proof = self
                .roots_of(consistency_path(from, below)?, pruned)
                .await?;
            let bridge = Bridge {
                to: below,
                to_root,
                proof,
            };
            batch.put_owned(ns, indexed_key(BRIDGE, from), bridge.encode());
        }
        // The chunk holding `below` keeps only the entries from `below` on, under a new key.
        let straddling =
            first_record(&*self.store, ns, &indexed_range(CHUNK, 0, below + 1), true).await?;
        if let Some(record) = straddling {
            let first = key_index(CHUNK, &record.key)
                .ok_or_else(|| Error::Corrupt("a chunk key is damaged".into()))?;
            if first < below {
                let items = decode_chunk(&record.value)?;
                let keep = usize::try_from(below - first).unwrap_or(usize::MAX);
                if keep < items.len() {
                    let mut chunk = new_chunk();
                    for (leaf, entry) in &items[keep..] {
                        push_chunk_item(&mut chunk, leaf, entry);
                    }
                    batch.put_owned(ns, indexed_key(CHUNK, below), chunk);
                }
                batch.delete(ns, &record.key);
            }
        }
        batch.put_owned(ns, PRUNED.to_vec(), frontier.encode());
        self.store.commit(batch).await?;
        Ok(())
    }

    /// Deletes the chunks and nodes wholly below the prune point, a bounded batch at a time.
    /// Readers ignore them already; this only frees the space, and a crash part-way leaves
    /// records the next prune deletes.
    async fn collect_pruned(&self) -> Result<()> {
        let below = self.prune_point().await?.size;
        let ns = &self.namespace;
        let mut doomed = Vec::new();
        scan_records(
            &*self.store,
            ns,
            indexed_range(CHUNK, 0, below),
            false,
            |record| {
                doomed.push(record.key);
                Ok(true)
            },
        )
        .await?;
        // At each level, the nodes whose subtrees end at or below the prune point.
        for level in NODE_LEVEL..64 {
            let whole = below >> level;
            if whole == 0 {
                break;
            }
            scan_records(
                &*self.store,
                ns,
                zt_storage::KeyRange::new(
                    Bound::Included(node_key(level, 0)),
                    Bound::Excluded(node_key(level, whole)),
                ),
                false,
                |record| {
                    doomed.push(record.key);
                    Ok(true)
                },
            )
            .await?;
        }
        for keys in doomed.chunks(PRUNE_DELETES_PER_COMMIT) {
            let mut batch = Batch::new();
            for key in keys {
                batch.delete(ns, key);
            }
            self.store.commit(batch).await?;
        }
        Ok(())
    }
}
