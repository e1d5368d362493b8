//! The independent verifier of a stored log. It shares the record layout ([`crate::layout`]),
//! the entry encoding and the hash functions with the writer, and nothing else: it rebuilds the
//! tree from the entry bytes alone and then holds every stored hash, the head and each signed
//! checkpoint against what it rebuilt.
//!
//! It reports the first problem it can place ([`Finding`]): an entry that does not decode, an
//! entry whose recorded hash it does not match, a missing, surplus or reordered entry, a stored
//! subtree root, head or checkpoint the entries do not produce, and, against a checkpoint the
//! caller holds, truncation or a rollback. The index it names is exact where the tampering left
//! a recorded hash behind; where the tampering also rewrote every hash, no stored data can place
//! it better than the start of the range an authentic hash covers, and that start is named.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use zt_audit::{entry, log::AuditLog, verify::{Verdict, VerifyOptions, verify_log}};
//! use zt_core::{Actor, AuditEvent, AuditEventKind, Timestamp};
//! use zt_storage::{KvStore, MemoryStore, Namespace};
//!
//! let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
//! let ns = Namespace::new("audit.demo")?;
//! let log = AuditLog::new(store.clone(), ns.clone());
//! let at = Timestamp::from_unix_millis(1_764_400_000_000);
//! let event = AuditEvent::new(AuditEventKind::LoginSucceeded, Actor::Anonymous, at);
//! log.append(entry::encode(&event)).await?;
//! let verdict = verify_log(&*store, &ns, &VerifyOptions::default(), &mut |_, _| {}).await?;
//! assert!(matches!(verdict, Verdict::Valid(report) if report.size == 1));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;

use futures_util::{TryStream, TryStreamExt as _};
use zt_storage::{KeyRange, KvStore, KvStoreExt as _, Namespace, ScanOptions};

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::error::{Error, Result};
use crate::layout::{
    BRIDGE, Bridge, CHECKPOINT, CHUNK, Frontier, HEAD, NODE_LEVEL, PRUNED, decode_chunk,
    indexed_key, indexed_range, key_index, node_key, node_key_parts, scan_records,
};
use crate::log::ConsistencyChain;
use crate::merkle::{self, Hash, leaf_hash};

/// A tree head the caller trusts, such as the last checkpoint it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedHead {
    /// The tree size.
    pub size: u64,
    /// The root at that size.
    pub root: Hash,
}

impl From<&Checkpoint> for TrustedHead {
    fn from(checkpoint: &Checkpoint) -> Self {
        TrustedHead {
            size: checkpoint.size,
            root: checkpoint.root,
        }
    }
}

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The log's checkpoint key. With it, every stored checkpoint's signature is checked too;
    /// without it, stored checkpoints are still held against the entries.
    pub key: Option<NoteVerifier>,
    /// A checkpoint held from before: the log must still extend it.
    pub trusted: Option<TrustedHead>,
    /// Verify only the entries below this size (a range from the prune point); the head is then
    /// not compared.
    pub through: Option<u64>,
    /// Threads that check and hash entries (0: one per available core).
    pub threads: usize,
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The tree size verified.
    pub size: u64,
    /// The root hash at that size.
    pub root: Hash,
    /// The first index present (the prune point).
    pub first: u64,
    /// How many signed checkpoints were held against the entries.
    pub checkpoints: usize,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The entry's bytes are not a canonical audit entry.
    EntryDamaged(String),
    /// The entry does not match the hash recorded with it.
    EntryHashMismatch,
    /// Entries are missing from here on (dropped, or the log ends early).
    EntriesMissing,
    /// Entries are where none belong (inserted, duplicated, or past the head).
    UnexpectedEntries,
    /// A stored subtree root over the entries from here is not what the entries produce.
    NodeMismatch,
    /// A subtree root the tree needs is not stored.
    NodeMissing,
    /// A stored record cannot be read.
    RecordDamaged(String),
    /// The head does not describe the entries.
    HeadMismatch,
    /// The entries up to a signed checkpoint do not produce its root; the index is the start of
    /// the range the checkpoint covers beyond the last one that matched.
    CheckpointMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// A stored checkpoint's signature does not verify with the log's key.
    BadCheckpoint {
        /// The checkpoint's size (from its key).
        size: u64,
    },
    /// The log holds fewer entries than a trusted checkpoint: it was truncated or rolled back.
    Truncated {
        /// The trusted checkpoint's size.
        trusted: u64,
        /// The log's size.
        have: u64,
    },
    /// The log does not extend the trusted checkpoint: it was rolled back and rewritten.
    NotConsistent {
        /// The trusted checkpoint's size.
        trusted: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::EntryDamaged(why) => write!(f, "the entry is damaged: {why}"),
            Problem::EntryHashMismatch => f.write_str("the entry does not match its recorded hash"),
            Problem::EntriesMissing => f.write_str("entries are missing"),
            Problem::UnexpectedEntries => f.write_str("entries are present where none belong"),
            Problem::NodeMismatch => {
                f.write_str("a stored subtree root does not match the entries it covers")
            }
            Problem::NodeMissing => f.write_str("a subtree root the tree needs is not stored"),
            Problem::RecordDamaged(what) => write!(f, "a stored record is damaged: {what}"),
            Problem::HeadMismatch => f.write_str("the head does not match the entries"),
            Problem::CheckpointMismatch { size } => {
                write!(
                    f,
                    "the entries do not produce the root of the checkpoint at size {size}"
                )
            }
            Problem::BadCheckpoint { size } => {
                write!(f, "the checkpoint at size {size} is not validly signed")
            }
            Problem::Truncated { trusted, have } => write!(
                f,
                "the log has {have} entries, fewer than the {trusted} of the trusted checkpoint \
                 (truncated or rolled back)"
            ),
            Problem::NotConsistent { trusted } => write!(
                f,
                "the log does not extend the trusted checkpoint at size {trusted} (rolled back \
                 and rewritten)"
            ),
        }
    }
}

/// A problem and where: the first bad index, or `None` for the log's own records (head, prune
/// point, checkpoints below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The first bad index, when the problem is at an entry.
    pub index: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "first bad index {index}: {}", self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything checked holds.
    Valid(Report),
    /// The first problem found.
    Invalid(Finding),
}

/// Keeps the finding with the lowest index (an index-less finding ranks after every entry).
#[derive(Default)]
struct Earliest(Option<Finding>);

impl Earliest {
    fn note(&mut self, index: Option<u64>, problem: Problem) {
        let rank = |i: Option<u64>| i.unwrap_or(u64::MAX);
        if self.0.as_ref().is_none_or(|f| rank(index) < rank(f.index)) {
            self.0 = Some(Finding { index, problem });
        }
    }
}

/// Verifies the log in `namespace` of `store`. `progress(done, total)` is told how many entries
/// were checked.
///
/// # Errors
/// Only when the store cannot be read; everything wrong with the log is a [`Verdict::Invalid`].
pub async fn verify_log(
    store: &dyn KvStore,
    namespace: &Namespace,
    options: &VerifyOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Verdict> {
    let mut found = Earliest::default();
    let damaged = |what: &str| Problem::RecordDamaged(what.to_owned());
    let head = match store.get(namespace, HEAD).await? {
        None => Frontier::default(),
        Some(record) => match Frontier::decode(&record.value, "head") {
            Ok(head) => head,
            Err(_) => return Ok(invalid(None, damaged("the head"))),
        },
    };
    let pruned = match store.get(namespace, PRUNED).await? {
        None => Frontier::default(),
        Some(record) => match Frontier::decode(&record.value, "prune point") {
            Ok(pruned) => pruned,
            Err(_) => return Ok(invalid(None, damaged("the prune point"))),
        },
    };
    let end = options.through.unwrap_or(head.size);
    if end > head.size {
        found.note(
            Some(head.size),
            Problem::Truncated {
                trusted: end,
                have: head.size,
            },
        );
    }
    // Signed checkpoints, by size.
    let mut checkpoints = BTreeMap::new();
    let mut unreadable = None;
    scan_records(
        store,
        namespace,
        indexed_range(CHECKPOINT, 0, u64::MAX),
        false,
        |record| {
            let size = key_index(CHECKPOINT, &record.key);
            let parsed = size.and_then(|size| {
                let text = String::from_utf8(record.value).ok()?;
                let checkpoint = match &options.key {
                    Some(key) => key.verify(&text).ok()?,
                    None => Checkpoint::parse_note_unverified(&text).ok()?,
                };
                (checkpoint.size == size).then_some(checkpoint)
            });
            match (size, parsed) {
                (Some(size), Some(checkpoint)) => {
                    checkpoints.insert(size, checkpoint.root);
                }
                (size, _) => {
                    unreadable.get_or_insert(size.unwrap_or(0));
                }
            }
            Ok(true)
        },
    )
    .await?;
    if let Some(size) = unreadable {
        found.note(None, Problem::BadCheckpoint { size });
    }

    // Rebuild the tree from the entries, from the prune point's frontier on, a batch of chunk
    // records at a time.
    let mut rebuild = Rebuild {
        tree: pruned.clone(),
        nodes: RebuiltNodes::new(pruned.size),
        roots_at: HashMap::new(),
        wanted: checkpoints
            .keys()
            .copied()
            .chain(options.trusted.map(|t| t.size))
            .filter(|size| *size > pruned.size)
            .collect(),
        end,
        surplus_is_bad: options.through.is_none(),
        threads: match options.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        },
        found: std::mem::take(&mut found),
    };
    if pruned.size == end {
        rebuild.roots_at.insert(end, pruned.root());
    }
    let total = end.saturating_sub(pruned.size);
    progress(0, total);
    let mut chunks = store.scan_stream(
        namespace,
        indexed_range(CHUNK, pruned.size, u64::MAX),
        ScanOptions::new(),
    );
    while let Some(batch) = next_batch(&mut chunks).await? {
        let going = rebuild.feed(batch);
        progress(rebuild.tree.size - pruned.size, total);
        if !going {
            break;
        }
    }
    let Rebuild {
        tree,
        nodes,
        roots_at,
        found: mut_found,
        ..
    } = rebuild;
    found = mut_found;
    // A finding stops the rebuild; what lies past it is not compared with the trusted sizes.
    let complete = found.0.is_none();
    if complete && tree.size < end {
        found.note(Some(tree.size), Problem::EntriesMissing);
    }

    // Every stored subtree root above the prune point, against the rebuilt ones.
    let whole = complete && options.through.is_none();
    check_nodes(store, namespace, &nodes, tree.size, whole, &mut found).await?;

    // Signed checkpoints at or above the prune point, against the rebuilt roots. `anchor` ends
    // up as the largest size whose root an authentic checkpoint confirms: where a change that
    // rewrote every stored hash can first be placed.
    let mut anchor = pruned.size;
    for (&size, root) in checkpoints.range(pruned.size.max(1)..) {
        match roots_at.get(&size) {
            Some(rebuilt) if rebuilt == root => anchor = anchor.max(size),
            Some(_) => found.note(Some(anchor), Problem::CheckpointMismatch { size }),
            None => {}
        }
    }
    if complete && options.through.is_none() {
        // A checkpoint of entries that are not there: the log was cut back.
        if let Some((&size, _)) = checkpoints.range(tree.size.saturating_add(1)..).next() {
            found.note(
                Some(anchor.min(tree.size)),
                Problem::Truncated {
                    trusted: size,
                    have: tree.size,
                },
            );
        }
    }
    // Signed checkpoints below the prune point, through their bridges.
    for (&size, root) in checkpoints.range(1..pruned.size.max(1)) {
        if !bridged(store, namespace, size, root, &pruned).await? {
            found.note(None, Problem::CheckpointMismatch { size });
        }
    }

    if let Some(trusted) = options.trusted.filter(|_| complete) {
        if trusted.size > tree.size {
            found.note(
                Some(anchor.min(tree.size)),
                Problem::Truncated {
                    trusted: trusted.size,
                    have: tree.size,
                },
            );
        } else if trusted.size == 0 {
            if trusted.root != merkle::empty_root() {
                found.note(None, Problem::NotConsistent { trusted: 0 });
            }
        } else if trusted.size <= pruned.size {
            if !bridged(store, namespace, trusted.size, &trusted.root, &pruned).await? {
                found.note(
                    None,
                    Problem::NotConsistent {
                        trusted: trusted.size,
                    },
                );
            }
        } else if roots_at.get(&trusted.size) != Some(&trusted.root) {
            found.note(
                Some(anchor.min(trusted.size)),
                Problem::NotConsistent {
                    trusted: trusted.size,
                },
            );
        }
    }

    if options.through.is_none() && found.0.is_none() && tree != head {
        found.note(None, Problem::HeadMismatch);
    }
    Ok(match found.0 {
        Some(finding) => Verdict::Invalid(finding),
        None => Verdict::Valid(Report {
            size: tree.size,
            root: tree.root(),
            first: pruned.size,
            checkpoints: checkpoints.len(),
        }),
    })
}

/// Chunk bytes gathered before their entries are checked together.
const REBUILD_BATCH_BYTES: usize = 1 << 20;
/// Below this many entries, a batch is checked on the calling thread alone.
const PARALLEL_MIN_ENTRIES: usize = 256;

/// The tree rebuilt from the entries so far, and what it is compared with.
struct Rebuild {
    tree: Frontier,
    /// Rebuilt subtree roots from [`NODE_LEVEL`] up, to hold the stored ones against.
    nodes: RebuiltNodes,
    /// Rebuilt roots at the sizes in `wanted`.
    roots_at: HashMap<u64, Hash>,
    wanted: BTreeSet<u64>,
    end: u64,
    surplus_is_bad: bool,
    threads: usize,
    found: Earliest,
}

/// The next chunk records, about [`REBUILD_BATCH_BYTES`] of them; `None` at the end.
async fn next_batch(
    chunks: &mut (impl TryStream<Ok = zt_storage::Entry, Error = zt_storage::Error> + Unpin),
) -> Result<Option<Vec<zt_storage::Entry>>> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while bytes < REBUILD_BATCH_BYTES {
        let Some(record) = chunks.try_next().await? else {
            break;
        };
        bytes += record.value.len();
        batch.push(record);
    }
    Ok((!batch.is_empty()).then_some(batch))
}

impl Rebuild {
    /// Checks the entries of consecutive chunk records and extends the tree with them. Returns
    /// whether to go on (no problem found, the end not reached).
    fn feed(&mut self, records: Vec<zt_storage::Entry>) -> bool {
        // First the structure, in order: chunk keys follow on, chunks parse, nothing past the end.
        let mut items: Vec<(Hash, &[u8])> = Vec::new();
        let mut next = self.tree.size;
        let mut going = true;
        'records: for record in &records {
            let Some(first) = key_index(CHUNK, &record.key) else {
                self.found
                    .note(Some(next), Problem::RecordDamaged("a chunk key".into()));
                going = false;
                break;
            };
            if first != next {
                let problem = if first > next {
                    Problem::EntriesMissing
                } else {
                    Problem::UnexpectedEntries
                };
                self.found.note(Some(next.min(first)), problem);
                going = false;
                break;
            }
            let Ok(chunk) = decode_chunk(&record.value) else {
                self.found
                    .note(Some(first), Problem::RecordDamaged("a chunk".into()));
                going = false;
                break;
            };
            for item in chunk {
                if next >= self.end {
                    if self.surplus_is_bad {
                        self.found.note(Some(next), Problem::UnexpectedEntries);
                    }
                    going = false;
                    break 'records;
                }
                items.push(item);
                next += 1;
            }
        }
        // Then each entry, on several threads: canonical, and its leaf hash; with the roots of
        // the aligned blocks of BLOCK leaves, so most inner hashing is spread too.
        let first = self.tree.size;
        let checked = check_entries(&items, first, self.threads);
        // Then the tree, in order.
        let mut i = 0usize;
        while i < items.len() {
            let index = self.tree.size;
            let block = checked.blocks.get(&index).filter(|_| {
                // A wanted size inside the block needs the leaves one by one.
                self.wanted.range(index + 1..index + BLOCK).next().is_none()
            });
            let span = if block.is_some() { BLOCK as usize } else { 1 };
            for (offset, ((recorded, _), (valid, leaf))) in items[i..i + span]
                .iter()
                .zip(&checked.entries[i..i + span])
                .enumerate()
            {
                if let Err(e) = valid {
                    self.found.note(
                        Some(index + offset as u64),
                        Problem::EntryDamaged(e.to_string()),
                    );
                    return false;
                }
                if leaf != recorded {
                    self.found
                        .note(Some(index + offset as u64), Problem::EntryHashMismatch);
                    return false;
                }
            }
            let nodes = &mut self.nodes;
            let record = |level: u8, index: u64, hash: &Hash| nodes.record(level, index, hash);
            match block {
                Some(root) => self.tree.push_subtree(BLOCK_LEVEL, *root, record),
                None => self.tree.push(checked.entries[i].1, record),
            }
            i += span;
            if self.wanted.contains(&self.tree.size) {
                self.roots_at.insert(self.tree.size, self.tree.root());
            }
        }
        going
    }
}

/// Entries checked and hashed, and the roots of the whole aligned blocks among them.
struct Checked {
    entries: Vec<(Result<()>, Hash)>,
    /// Block start index → root of its BLOCK leaves.
    blocks: HashMap<u64, Hash>,
}

/// Blocks of 2^BLOCK_LEVEL leaves are hashed up to their root by the checking threads.
const BLOCK_LEVEL: u8 = NODE_LEVEL;
const BLOCK: u64 = 1 << BLOCK_LEVEL;

/// Validates and hashes each entry (the first is entry `first`) and computes the root of every
/// aligned block of BLOCK leaves that lies wholly among them, splitting the work over up to
/// `threads` threads at block boundaries.
fn check_entries(items: &[(Hash, &[u8])], first: u64, threads: usize) -> Checked {
    let check = |part: &[(Hash, &[u8])], start: u64| -> Checked {
        let entries: Vec<(Result<()>, Hash)> = part
            .iter()
            .map(|(_, entry)| (crate::entry::validate(entry), leaf_hash(entry)))
            .collect();
        let mut blocks = HashMap::new();
        // The first aligned block start at or after `start`, as an offset into `part`.
        let mut offset = (start.next_multiple_of(BLOCK) - start) as usize;
        while offset + BLOCK as usize <= entries.len() {
            let mut leaves = [[0u8; 32]; BLOCK as usize];
            for (leaf, (_, hash)) in leaves.iter_mut().zip(&entries[offset..]) {
                *leaf = *hash;
            }
            blocks.insert(start + offset as u64, merkle::root(&leaves[..], BLOCK));
            offset += BLOCK as usize;
        }
        Checked { entries, blocks }
    };
    if threads <= 1 || items.len() < PARALLEL_MIN_ENTRIES {
        return check(items, first);
    }
    // Split points: after the unaligned head, at multiples of BLOCK from the first block start.
    let head = (first.next_multiple_of(BLOCK) - first) as usize;
    let share = (items.len() - head.min(items.len()))
        .div_ceil(threads)
        .next_multiple_of(BLOCK as usize)
        .max(BLOCK as usize);
    let mut parts = Vec::new();
    let mut from = 0usize;
    let mut to = head.min(items.len());
    while from < items.len() {
        to = (to + share).min(items.len());
        parts.push((from, to));
        from = to;
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .iter()
            .map(|&(from, to)| {
                let part = &items[from..to];
                scope.spawn(move || check(part, first + from as u64))
            })
            .collect();
        let mut out = Checked {
            entries: Vec::with_capacity(items.len()),
            blocks: HashMap::new(),
        };
        for (worker, &(from, to)) in workers.into_iter().zip(&parts) {
            // A worker that panicked (it cannot: checking and hashing do not panic) is redone.
            let part = worker
                .join()
                .unwrap_or_else(|_| check(&items[from..to], first + from as u64));
            out.entries.extend(part.entries);
            out.blocks.extend(part.blocks);
        }
        out
    })
}

fn invalid(index: Option<u64>, problem: Problem) -> Verdict {
    Verdict::Invalid(Finding { index, problem })
}

/// The subtree roots the rebuild completed, from [`NODE_LEVEL`] up: at each level, in index
/// order from the first node that reaches past the prune point.
struct RebuiltNodes {
    pruned: u64,
    levels: Vec<Vec<Hash>>,
}

impl RebuiltNodes {
    fn new(pruned: u64) -> Self {
        RebuiltNodes {
            pruned,
            levels: Vec::new(),
        }
    }

    /// The index of the first node at `level` that reaches past the prune point.
    fn first(&self, level: u8) -> u64 {
        self.pruned >> level
    }

    fn level(&self, level: u8) -> &[Hash] {
        self.levels
            .get(usize::from(level - NODE_LEVEL))
            .map_or(&[], Vec::as_slice)
    }

    fn record(&mut self, level: u8, index: u64, hash: &Hash) {
        if level < NODE_LEVEL {
            return;
        }
        let at = usize::from(level - NODE_LEVEL);
        if self.levels.len() <= at {
            self.levels.resize_with(at + 1, Vec::new);
        }
        let first = self.first(level);
        let built = &mut self.levels[at];
        // The tree completes the nodes of a level in order; anything else is not recorded.
        if index == first + built.len() as u64 {
            built.push(*hash);
        }
    }
}

/// Holds every stored subtree root that reaches past the prune point against the rebuilt ones;
/// notes the one over the lowest leaves that differs, is missing, or (when `whole`, the rebuild
/// reached the head) should not exist.
async fn check_nodes(
    store: &dyn KvStore,
    namespace: &Namespace,
    rebuilt: &RebuiltNodes,
    size: u64,
    whole: bool,
    found: &mut Earliest,
) -> Result<()> {
    for level in NODE_LEVEL..64 {
        let from = rebuilt.first(level);
        let built = rebuilt.level(level);
        if size >> level == 0 && from == 0 {
            break;
        }
        let built_end = from + built.len() as u64;
        let mut next = from;
        scan_records(
            store,
            namespace,
            KeyRange::new(
                Bound::Included(node_key(level, from)),
                Bound::Excluded(node_key(level.saturating_add(1), 0)),
            ),
            false,
            |record| {
                let Some((_, index)) = node_key_parts(&record.key) else {
                    found.note(None, Problem::RecordDamaged("a node key".into()));
                    return Ok(false);
                };
                if index > next && next < built_end {
                    found.note(Some(next << level), Problem::NodeMissing);
                }
                next = index + 1;
                let start = index << level;
                match usize::try_from(index - from)
                    .ok()
                    .and_then(|i| built.get(i))
                {
                    Some(hash) if hash.as_slice() == record.value.as_slice() => {}
                    Some(_) => found.note(Some(start), Problem::NodeMismatch),
                    // Past the rebuilt size: surplus, unless only a prefix was rebuilt.
                    None if (index + 1) << level > size => {
                        if whole {
                            found.note(Some(size.min(start)), Problem::UnexpectedEntries);
                        }
                    }
                    // The rebuild completes every node up to its size.
                    None => found.note(Some(start), Problem::NodeMismatch),
                }
                Ok(true)
            },
        )
        .await?;
        if next < built_end {
            found.note(Some(next << level), Problem::NodeMissing);
        }
    }
    Ok(())
}

/// Whether the stored bridges lead from (`size`, `root`) to the prune point's tree.
async fn bridged(
    store: &dyn KvStore,
    namespace: &Namespace,
    size: u64,
    root: &Hash,
    pruned: &Frontier,
) -> Result<bool> {
    let (mut size, mut root) = (size, *root);
    while size < pruned.size {
        let Some(record) = store.get(namespace, &indexed_key(BRIDGE, size)).await? else {
            return Ok(false);
        };
        let Ok(bridge) = Bridge::decode(&record.value) else {
            return Ok(false);
        };
        if bridge.to <= size
            || merkle::verify_consistency(size, bridge.to, &bridge.proof, &root, &bridge.to_root)
                .is_err()
        {
            return Ok(false);
        }
        (size, root) = (bridge.to, bridge.to_root);
    }
    Ok(size == pruned.size && root == pruned.root())
}

/// A client's memory of a log: the latest checkpoint it verified. It accepts a new checkpoint only
/// when it is validly signed, of the same log, not smaller, and proven to extend the one held.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use zt_audit::{checkpoint::{NoteSigner, NoteVerifier}, log::AuditLog, verify::CheckpointTracker};
/// use zt_storage::{MemoryStore, Namespace};
///
/// let signer = NoteSigner::new("zt.example/audit", zt_crypto::SigningKey::generate())?;
/// let key = NoteVerifier::from_verifier_key(&signer.verifier_key())?;
/// let log = AuditLog::new(Arc::new(MemoryStore::new()), Namespace::new("audit.demo")?);
/// let entry = |i: i64| {
///     let at = zt_core::Timestamp::from_unix_millis(1_764_400_000_000 + i);
///     let event = zt_core::AuditEvent::new(zt_core::AuditEventKind::LoginFailed, zt_core::Actor::Anonymous, at);
///     zt_audit::entry::encode(&event)
/// };
/// log.append(entry(1)).await?;
/// let mut tracker = CheckpointTracker::new(key, "zt.example/demo");
/// tracker.accept(&log.checkpoint(&signer, "zt.example/demo").await?, None)?;
/// log.append(entry(2)).await?;
/// let note = log.checkpoint(&signer, "zt.example/demo").await?;
/// let proof = log.consistency_proof(1, 2).await?;
/// tracker.accept(&note, Some(&proof))?;
/// assert_eq!(tracker.held().map(|c| c.size), Some(2));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointTracker {
    key: NoteVerifier,
    origin: String,
    held: Option<Checkpoint>,
}

impl CheckpointTracker {
    /// A tracker for the log `origin` whose checkpoints `key` signs, holding nothing yet.
    pub fn new(key: NoteVerifier, origin: impl Into<String>) -> Self {
        CheckpointTracker {
            key,
            origin: origin.into(),
            held: None,
        }
    }

    /// The checkpoint held.
    pub fn held(&self) -> Option<&Checkpoint> {
        self.held.as_ref()
    }

    /// Verifies `note` and, if it extends the checkpoint held (by `proof`, which is needed once
    /// one is held and the sizes differ), holds it instead.
    ///
    /// # Errors
    /// [`Error::BadSignature`] or [`Error::MalformedCheckpoint`] for a note that does not verify,
    /// [`Error::InvalidInput`] for another log's, [`Error::Rollback`] for a smaller one, and
    /// [`Error::Proof`] when it is not proven to extend the one held. The held one stays.
    pub fn accept(&mut self, note: &str, proof: Option<&ConsistencyChain>) -> Result<&Checkpoint> {
        let checkpoint = self.key.verify(note)?;
        if checkpoint.origin != self.origin {
            return Err(Error::InvalidInput(format!(
                "the checkpoint is of {:?}, not {:?}",
                checkpoint.origin, self.origin
            )));
        }
        if let Some(held) = &self.held {
            if checkpoint.size < held.size {
                return Err(Error::Rollback {
                    held: held.size,
                    offered: checkpoint.size,
                });
            }
            if checkpoint.size == held.size {
                if checkpoint.root != held.root {
                    return Err(Error::Proof(crate::merkle::ProofError::RootMismatch));
                }
            } else if held.size > 0 {
                // The empty tree is a prefix of every tree; anything larger needs its proof.
                let proof = proof.ok_or(Error::Proof(crate::merkle::ProofError::WrongLength))?;
                proof.verify(held.size, &held.root, checkpoint.size, &checkpoint.root)?;
            }
        }
        Ok(self.held.insert(checkpoint))
    }
}

impl From<Finding> for Error {
    fn from(finding: Finding) -> Self {
        Error::Corrupt(finding.to_string())
    }
}
