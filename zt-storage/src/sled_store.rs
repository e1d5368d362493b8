//! The embedded default backend, [`SledStore`]: sled 0.34 behind a write-ahead log of its own,
//! with group commit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::iter::Peekable;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::keys;
use crate::store::{ExportSink, KvStore};
use crate::types::{
    Batch, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version, Write, check_key,
    check_scan, collect_page,
};
use crate::wal::{self, FRAME_HEADER_LEN, Op, Segment, WAL_DIR};

/// The store's own keys (their namespace is empty, which no user namespace can be).
/// Format 1 only: a version no commit had exceeded (versions were reserved in blocks below it).
const META_CEILING: &[u8] = b"\x00ceiling";
/// The highest version in sled when it was last flushed (a checkpoint).
const META_APPLIED: &[u8] = b"\x00applied";
const META_FORMAT: &[u8] = b"\x00format";

/// The on-disk layout version this code writes. Format 1 (sled flushed on every commit, no
/// write-ahead log) is read and upgraded in place.
const FORMAT_VERSION: u64 = 2;
const FORMAT_NO_LOG: u64 = 1;

/// The marker file next to sled's files. It records, outside sled, that the store exists and a
/// version known to be durable, because sled 0.34 recovers a damaged log silently (as empty, or
/// as its undamaged prefix): the marker turns that into a `Corrupt` error instead of lost data.
const MARKER_FILE: &str = "zt-store";
/// How often the durable version in the marker is refreshed.
const MARKER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// By default a segment of the write-ahead log is closed, and a checkpoint begun, past this
/// many bytes.
const SEGMENT_LIMIT: u64 = 64 << 20;
/// The zeroed room of the first segment after an open (at most the segment size): small, so an
/// open stays cheap; the segments after it are prepared full size in the background.
const FIRST_ROOM: u64 = 1 << 20;
/// How many forgotten pending writes the writer remembers for commits that read before they
/// took the writer lock (a commit that began reading before the oldest re-reads all its keys).
const FORGOTTEN_CAP: usize = 16 * 1024;

/// Reads the durable version recorded in the marker, if the marker exists.
fn read_marker(dir: &Path) -> Result<Option<Version>> {
    let path = dir.join(MARKER_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| Error::corrupt(format!("{} is damaged", path.display()), None))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::backend(format!("cannot read {}", path.display()), e)),
    };
    let mut format = None;
    let mut durable = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("format", v)) => format = v.trim().parse::<u64>().ok(),
            Some(("durable", v)) => durable = v.trim().parse::<u64>().ok(),
            _ => {}
        }
    }
    match (format, durable) {
        (Some(FORMAT_NO_LOG | FORMAT_VERSION), Some(durable)) => Ok(Some(durable)),
        (Some(other), Some(_)) => Err(unsupported_format(other)),
        _ => Err(Error::corrupt(
            format!("{} is damaged", path.display()),
            None,
        )),
    }
}

fn unsupported_format(format: u64) -> Error {
    Error::corrupt(
        format!(
            "data format version {format} is not supported (this build reads {FORMAT_VERSION})"
        ),
        None,
    )
}

/// Replaces the marker atomically: write a temporary file, sync it, rename, sync the directory.
fn write_marker(dir: &Path, durable: Version) -> std::io::Result<()> {
    let temporary = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut file = File::create(&temporary)?;
    writeln!(
        file,
        "# zt-storage sled store; do not edit\nformat={FORMAT_VERSION}\ndurable={durable}"
    )?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(MARKER_FILE))?;
    wal::sync_dir(dir)
}

/// How to open a [`SledStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SledConfig {
    /// The data directory; created (mode 0700) if missing.
    pub path: PathBuf,
    /// sled's page cache size, in bytes.
    pub cache_capacity: u64,
    /// The size past which a segment of the write-ahead log is closed and checkpointed into
    /// sled; opening replays at most about this much.
    pub log_segment_bytes: u64,
}

impl SledConfig {
    /// Defaults for `path`: a 256 MiB cache, 64 MiB log segments.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledConfig {
            path: path.into(),
            cache_capacity: 256 * 1024 * 1024,
            log_segment_bytes: SEGMENT_LIMIT,
        }
    }

    /// Sets the page cache size.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Sets the log segment size (at least 64 KiB).
    pub fn log_segment_bytes(mut self, bytes: u64) -> Self {
        self.log_segment_bytes = bytes.max(64 * 1024);
        self
    }
}

/// What the flusher and the applier publish.
#[derive(Debug, Clone, Default)]
struct FlushState {
    /// Every commit with a version up to this one is on disk (the flusher's).
    durable: Version,
    /// Every commit with a version up to this one is in sled (the applier's; what a checkpoint
    /// records).
    applied: Version,
    /// Set once writing or applying the log failed; the store accepts no more commits.
    failure: Option<Arc<str>>,
}

/// A write ordered but not yet readable from sled: its version, and whether it puts (or deletes).
type PendingWrite = (Version, bool);

/// A write durable in the log that sled may not hold yet: its version and value (`None`: a
/// delete).
#[derive(Clone)]
struct Unapplied {
    version: Version,
    value: Option<Arc<[u8]>>,
}

/// The newest durable write of each stored key that sled may not hold yet. The flusher adds a
/// group here before it acknowledges its commits; the applier takes it out once the whole group
/// is in sled. Reads look here before sled, so they see every acknowledged commit without
/// waiting for the applier, and each commit whole while the applier is half way through it.
#[derive(Default)]
struct UnappliedWrites {
    writes: BTreeMap<Vec<u8>, Unapplied>,
    /// The last version of the newest group added.
    through: Version,
}

/// How many bytes of durable groups the applier may have still to apply before the flusher
/// waits for it (a single larger group still passes alone). Reads do not wait for the applier,
/// so this bounds only the memory of what it has yet to do.
const UNAPPLIED_BUDGET: usize = 64 << 20;

/// How many times a scan reads without holding the applier off before it does.
const OPTIMISTIC_SCANS: usize = 3;

/// State guarded by the writer lock.
struct Writer {
    /// The highest version handed out.
    sequence: Version,
    /// The group the flusher writes next: a frame header's room, then one record per commit.
    group: Vec<u8>,
    /// The version of the group's last record.
    group_last: Version,
    /// The buffer of the group written last, kept for reuse.
    spare: Vec<u8>,
    /// Writes ordered but not yet applied to sled, by stored key: preconditions see them.
    pending: HashMap<Vec<u8>, PendingWrite>,
    /// The pending writes the applier forgot (they are in sled now), newest last, each as its
    /// generation and the hash of its stored key: a commit that read sled before it took the
    /// writer lock reads again only the keys forgotten meanwhile.
    forgotten: VecDeque<(u64, u64)>,
    /// Every forgetting of a generation above this one is in `forgotten`.
    forgotten_floor: u64,
    /// Commits waiting for their version to become durable, in version order: each is woken
    /// alone when its group is synced, not every waiter at every group.
    waiters: VecDeque<(Version, oneshot::Sender<()>)>,
    /// Set by `close` (or the last handle going away): the flusher drains and stops.
    closing: bool,
}

impl Writer {
    /// The writer of a store whose versions so far end at `sequence`.
    fn new(sequence: Version) -> Self {
        Writer {
            sequence,
            group: wal::new_group(Vec::new()),
            group_last: sequence,
            spare: Vec::new(),
            pending: HashMap::new(),
            forgotten: VecDeque::new(),
            forgotten_floor: 0,
            waiters: VecDeque::new(),
            closing: false,
        }
    }

    /// Which keys a commit that read sled when the forgetting generation was `read_at` must read
    /// again, now that it is `now`.
    fn forgotten_since(&self, read_at: u64, now: u64) -> Forgotten {
        if now == read_at {
            Forgotten::Keys(std::collections::HashSet::new())
        } else if self.forgotten_floor <= read_at {
            Forgotten::Keys(
                self.forgotten
                    .iter()
                    .rev()
                    .take_while(|(generation, _)| *generation > read_at)
                    .map(|(_, hash)| *hash)
                    .collect(),
            )
        } else {
            Forgotten::All
        }
    }

    /// Forgets the pending write of `key` if it is the one of `version` (a later commit's write
    /// to the same key stays), remembering it under `generation`.
    fn forget(&mut self, key: &[u8], version: Version, generation: u64) {
        if self.pending.get(key).is_some_and(|(v, _)| *v == version) {
            self.pending.remove(key);
            self.forgotten.push_back((generation, key_hash(key)));
        }
    }

    /// Drops the oldest forgettings past the cap.
    fn trim_forgotten(&mut self) {
        while self.forgotten.len() > FORGOTTEN_CAP {
            if let Some((generation, _)) = self.forgotten.pop_front() {
                self.forgotten_floor = self.forgotten_floor.max(generation);
            }
        }
    }
}

/// The keys a commit must read again under the writer lock.
enum Forgotten {
    /// Those whose hash is here.
    Keys(std::collections::HashSet<u64>),
    /// Every key (the writer no longer remembers that far back).
    All,
}

impl Forgotten {
    fn covers(&self, key: &[u8]) -> bool {
        match self {
            Forgotten::Keys(hashes) => !hashes.is_empty() && hashes.contains(&key_hash(key)),
            Forgotten::All => true,
        }
    }
}

/// A short hash of a stored key (a collision only costs a read).
fn key_hash(key: &[u8]) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault};
    BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(key)
}

/// The version of a stored key in sled.
fn stored_version(db: &sled::Db, stored: &[u8]) -> Result<Option<Version>> {
    match db
        .get(stored)
        .map_err(|e| map_sled("reading for a precondition", e))?
    {
        None => Ok(None),
        Some(value) => decode_value(&value).map(|(v, _)| Some(v)),
    }
}

/// What the store's handles and its two threads share.
struct Shared {
    /// The database; `None` once closed, so closing releases sled's file lock even while other
    /// handles exist (closing takes it exclusively; everyone else shares it).
    db: RwLock<Option<sled::Db>>,
    /// What reads see before sled (see [`UnappliedWrites`]).
    unapplied: RwLock<UnappliedWrites>,
    /// The last version of the group the applier began applying last.
    applying: AtomicU64,
    /// Held exclusively by the applier while it applies a group; a scan that kept meeting a
    /// group begun under it holds it shared (see `scan`).
    apply_gate: RwLock<()>,
    /// The bytes of the groups sent to the applier and not yet applied (at most
    /// [`UNAPPLIED_BUDGET`] but for a single larger group), and what tells the flusher of room.
    behind: Mutex<usize>,
    room: Condvar,
    path: PathBuf,
    writer: Mutex<Writer>,
    /// Wakes the flusher when a group has records or the store is closing.
    work: Condvar,
    /// The generation of the applier's last forgetting of pending writes (changed under the
    /// writer lock, read before it too).
    forgetting: AtomicU64,
}

impl Shared {
    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database, shared with other readers (held while a read looks at it, so the applier
    /// never shows it half a group).
    fn read_db(&self) -> std::sync::RwLockReadGuard<'_, Option<sled::Db>> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// A handle on the open database, or `Closed`.
    fn db(&self) -> Result<sled::Db> {
        self.read_db().clone().ok_or(Error::Closed)
    }

    fn unapplied(&self) -> std::sync::RwLockReadGuard<'_, UnappliedWrites> {
        self.unapplied
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn unapplied_mut(&self) -> std::sync::RwLockWriteGuard<'_, UnappliedWrites> {
        self.unapplied
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits (the flusher) until the applier is less than [`UNAPPLIED_BUDGET`] behind, or has
    /// stopped (`stopped`), then counts a group of `len` bytes sent to it.
    fn wait_for_room(&self, len: usize, stopped: impl Fn() -> bool) {
        let mut behind = self.behind.lock().unwrap_or_else(PoisonError::into_inner);
        while *behind > 0 && *behind + len > UNAPPLIED_BUDGET && !stopped() {
            behind = self
                .room
                .wait_timeout(behind, std::time::Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *behind += len;
    }

    /// Counts a group of `len` bytes as done by the applier (applied or skipped).
    fn applied_bytes(&self, len: usize) {
        let mut behind = self.behind.lock().unwrap_or_else(PoisonError::into_inner);
        *behind = behind.saturating_sub(len);
        drop(behind);
        self.room.notify_all();
    }

    /// Makes a group that is durable in the log readable (before its commits are acknowledged).
    fn publish_unapplied(&self, payload: &[u8], last: Version) -> Result<()> {
        // Copied before the lock is taken, so a read never waits for the copying.
        let mut writes = Vec::new();
        wal::for_each_op(payload, |version, op| {
            writes.push(match op {
                Op::Put(key, value) => (
                    key.to_vec(),
                    Unapplied {
                        version,
                        value: Some(Arc::from(value)),
                    },
                ),
                Op::Delete(key) => (
                    key.to_vec(),
                    Unapplied {
                        version,
                        value: None,
                    },
                ),
            });
            Ok(())
        })?;
        let mut unapplied = self.unapplied_mut();
        unapplied.writes.extend(writes);
        unapplied.through = last;
        Ok(())
    }
}

struct Inner {
    shared: Arc<Shared>,
    durable: watch::Receiver<FlushState>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// Commits hold it shared while they take their version; an export holds it alone, so
    /// no commit is ordered while it reads (fair: a waiting export stops new commits).
    commit_gate: tokio::sync::RwLock<()>,
}

impl Drop for Inner {
    /// The last handle went away without `close`: let the flusher finish on its own.
    fn drop(&mut self) {
        self.shared.writer().closing = true;
        self.shared.work.notify_all();
    }
}

/// The sled-backed [`KvStore`], durable on every acknowledged commit, with group commit.
///
/// # How a commit becomes durable
/// The store keeps a write-ahead log of its own next to sled's files (format in the `wal`
/// module's documentation) and never relies on sled's flush for a commit:
///
/// 1. `commit` takes the writer lock, checks the batch's preconditions (against writes still on
///    their way to sled first, then sled), gives the batch the next version, appends it as one
///    record to the group being formed, and wakes the flusher. No I/O happens under the lock.
/// 2. A flusher thread loops: it takes the whole group, writes it to the log with one `write`
///    and makes it durable with one `fdatasync`, then wakes the group's commits, which return.
///    While it syncs, the next group forms.
/// 3. Before it wakes them, the flusher makes the group's writes readable from memory; an
///    applier thread then applies the group to sled, one write at a time, while the flusher
///    syncs the next group, and forgets the in-memory copy once the whole group is in sled.
/// 4. A read looks at those in-memory writes first, then at sled: it sees every acknowledged
///    commit and nothing that is not durable, sees each commit whole, and never waits for the
///    applier (a scan holds the applier off only while it reads its page).
///
/// So a group of 64 concurrent commits costs one device write and one flush, and a commit is
/// acknowledged only after the flush of its group returned. If writing the log ever fails the store refuses further commits:
/// after a failed fsync nobody knows what is on disk.
///
/// A second thread checkpoints: when a log segment passes 64 MiB (configurable) the flusher starts a new one,
/// and the checkpointer flushes sled (which writes what the segment holds into sled's own
/// files) and then deletes the old segment. Opening replays the log into sled (cutting off a
/// torn last write, refusing damage anywhere else as `Corrupt`), checkpoints and starts a new
/// segment; so does closing.
///
/// # Threads
/// Reads and ordering run on the calling task: sled serves reads from its page cache in
/// microseconds, and handing each one to a blocking thread cost 40 times more than the work on
/// a two-core machine (see docs/PERFORMANCE.md). A read of a page not in cache blocks that task for
/// one disk read. The log writes, checkpoints, opening and closing run on threads of their own.
///
/// # Use
///
/// Cloning gives another handle on the same open database. Open each data directory once per
/// process: sled holds a file lock on it, and a second open fails with
/// [`Unavailable`](crate::ErrorKind::Unavailable).
///
/// ```
/// use zt_storage::{Batch, KvStore, Namespace, SledConfig, SledStore};
///
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SledStore::open(SledConfig::new(dir.path())).await?;
/// let ns = Namespace::new("n")?;
/// let mut batch = Batch::new();
/// batch.put(&ns, b"k", b"v");
/// let version = store.commit(batch).await?; // on disk when this returns
/// store.close().await?;
///
/// let store = SledStore::open(SledConfig::new(dir.path())).await?;
/// assert_eq!(store.get(&ns, b"k").await?.unwrap().version, version);
/// # Ok::<(), zt_storage::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.inner.shared.path)
            .field("durable", &self.inner.durable.borrow().durable)
            .finish_non_exhaustive()
    }
}

fn map_sled(context: &str, e: sled::Error) -> Error {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            Error::unavailable(
                format!("{context}: the data directory is in use by another store"),
                Some(Box::new(io)),
            )
        }
        sled::Error::Corruption { .. } => Error::corrupt(format!("{context}: {e}"), None),
        sled::Error::Unsupported(message) => {
            Error::corrupt(format!("{context}: unsupported database: {message}"), None)
        }
        other => Error::backend(context.to_string(), other),
    }
}

/// Runs blocking sled work off the async runtime.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend("storage task failed", e))?
}

fn encode_value(version: Version, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn decode_value(stored: &[u8]) -> Result<(Version, &[u8])> {
    match stored.split_first_chunk::<8>() {
        Some((version, value)) => Ok((Version::from_be_bytes(*version), value)),
        None => Err(Error::corrupt(
            "stored value is shorter than its version header",
            None,
        )),
    }
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<Option<u64>> {
    match db.get(key).map_err(|e| map_sled("reading metadata", e))? {
        None => Ok(None),
        Some(bytes) => match <[u8; 8]>::try_from(bytes.as_ref()) {
            Ok(raw) => Ok(Some(u64::from_be_bytes(raw))),
            Err(_) => Err(Error::corrupt("metadata value has the wrong length", None)),
        },
    }
}

/// Creates the data directory (mode 0700), or checks that an existing one is a store's or empty,
/// so a mistyped path never scatters database files among someone's own.
fn prepare_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        let unreadable = |e| Error::backend(format!("cannot read {}", path.display()), e);
        let is_store = path.join(MARKER_FILE).exists() || path.join("conf").exists();
        let is_empty = std::fs::read_dir(path)
            .map_err(unreadable)?
            .next()
            .is_none();
        if !is_store && !is_empty {
            return Err(Error::invalid(format!(
                "{} is neither empty nor a zt store; choose an empty or new directory",
                path.display()
            )));
        }
        return Ok(());
    }
    create_private_dir(path).map_err(|e| {
        Error::backend(
            format!("cannot create data directory {}", path.display()),
            e,
        )
    })
}

/// Creates a directory and its missing parents, readable by the owner only.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Applies one write of the log to sled.
fn apply_op(db: &sled::Db, version: Version, op: Op<'_>) -> Result<()> {
    let done = match op {
        Op::Put(key, value) => db.insert(key, encode_value(version, value)).map(|_| ()),
        Op::Delete(key) => db.remove(key).map(|_| ()),
    };
    done.map_err(|e| map_sled("applying the write-ahead log", e))
}

/// How many times the applier offers its garbage for collection after a group (see
/// [`free_garbage`]).
const COLLECT_ROUNDS: usize = 4;

/// Frees, on the applier's thread, the node copies its group left behind. sled defers freeing a
/// replaced node until no reader can hold it (crossbeam's epochs), and whichever thread pins
/// next after that frees it: mostly the readers, which pin far more often than the applier (a
/// scan pins once per entry). A retention run then spent over a third of its thread freeing
/// the applier's copies. Each round here hands the thread's deferred frees to the global queue,
/// lets the epoch advance once and frees what has expired; a copy expires two advances after it
/// was deferred, so a few rounds free most of the group's garbage here.
fn free_garbage() {
    for _ in 0..COLLECT_ROUNDS {
        sled::pin().flush();
    }
}

/// Flushes sled and syncs its log file: everything applied before the call is then in sled's
/// own files.
fn flush_sled(db: &sled::Db, sled_log: &std::io::Result<File>) -> Result<()> {
    db.flush().map_err(|e| map_sled("flushing sled", e))?;
    match sled_log {
        // sled's flush ends with sync_file_range, which neither flushes the device's write cache
        // nor persists the file's growth; fdatasync does both.
        Ok(file) => file
            .sync_data()
            .map_err(|e| Error::backend("cannot sync sled's log file", e)),
        Err(e) => Err(Error::backend(
            "cannot open sled's log file",
            std::io::Error::new(e.kind(), e.to_string()),
        )),
    }
}

/// A database just opened: the log replayed, checkpointed, and a fresh segment begun.
struct Opened {
    db: sled::Db,
    /// New versions start above this one.
    sequence: Version,
    /// The open segment and its index.
    segment: wal::Open,
    index: u64,
}

/// Waits until no one holds the lock sled takes on `file` (at most `limit`): sled releases it
/// from its own threads shortly after its last handle goes. A file that cannot be opened, or a
/// lock still held at the limit, ends the wait; the next open reports it.
fn wait_unlocked(file: &Path, limit: std::time::Duration) {
    let Ok(file) = File::open(file) else {
        return;
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                return;
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

/// Opens sled, checks (or writes) the format marker, replays the write-ahead log into sled and
/// checkpoints.
fn open_db(config: &SledConfig) -> Result<Opened> {
    prepare_dir(&config.path)?;
    let sled_config = sled::Config::new()
        .path(&config.path)
        .cache_capacity(config.cache_capacity)
        .flush_every_ms(None);
    // sled 0.34 can panic on some damaged files; a damaged file must be an error, not a crash.
    let db = match catch_unwind(AssertUnwindSafe(|| sled_config.open())) {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(map_sled("opening the sled database", e)),
        Err(_) => {
            return Err(Error::corrupt(
                format!(
                    "the sled database in {} cannot be read (the engine panicked on it)",
                    config.path.display()
                ),
                None,
            ));
        }
    };
    let marker = read_marker(&config.path)?;
    let format = read_u64(&db, META_FORMAT)?;
    match format {
        Some(FORMAT_NO_LOG | FORMAT_VERSION) => {}
        Some(other) => return Err(unsupported_format(other)),
        None if marker.is_some() => {
            return Err(Error::corrupt(
                format!(
                    "the database files in {} are damaged: the store was initialised, but sled \
                     recovered no data",
                    config.path.display()
                ),
                None,
            ));
        }
        None if db.is_empty() => {}
        None => {
            return Err(Error::corrupt(
                "the database holds data but no zt format marker",
                None,
            ));
        }
    }
    let applied = read_u64(&db, META_APPLIED)?.unwrap_or(0);
    let mut sequence = applied.max(read_u64(&db, META_CEILING)?.unwrap_or(0));
    let wal_dir = config.path.join(WAL_DIR);
    let segments = wal::list_segments(&wal_dir)?;
    if format == Some(FORMAT_VERSION) && segments.is_empty() {
        return Err(Error::corrupt(
            format!(
                "the write-ahead log of the store in {} is missing",
                config.path.display()
            ),
            None,
        ));
    }
    let newest = segments.last().map(|(index, _)| *index);
    for (position, (index, path)) in segments.into_iter().enumerate() {
        let segment = Segment::read(path, Some(index) == newest)?;
        if position == 0 && segment.base > applied {
            // The oldest segment begins after sled's last checkpoint: sled lost data.
            return Err(Error::corrupt(
                format!(
                    "the database files in {} are damaged: sled recovered up to version \
                     {applied}, but its write-ahead log begins at {}",
                    config.path.display(),
                    segment.base
                ),
                None,
            ));
        }
        sequence = sequence.max(segment.base);
        for payload in segment.payloads() {
            if let Some(last) = wal::for_each_op(payload, |v, op| apply_op(&db, v, op))? {
                sequence = sequence.max(last);
            }
        }
        if segment.torn() {
            segment
                .cut_torn_tail()
                .map_err(|e| Error::backend("cannot cut a torn write off the log", e))?;
        }
    }
    if let Some(durable) = marker.filter(|&durable| sequence < durable) {
        return Err(Error::corrupt(
            format!(
                "the database files in {} are damaged: they hold versions up to {sequence}, but \
                 version {durable} had been made durable",
                config.path.display()
            ),
            None,
        ));
    }
    // Checkpoint what was replayed, then begin a segment of its own.
    let meta = |db: &sled::Db| -> sled::Result<()> {
        db.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
        db.insert(META_APPLIED, &sequence.to_be_bytes())?;
        db.remove(META_CEILING)?;
        Ok(())
    };
    meta(&db).map_err(|e| map_sled("recording a checkpoint", e))?;
    flush_sled(&db, &File::open(config.path.join("db")))?;
    prepare_wal_dir(&wal_dir)?;
    let index = newest.map_or(1, |newest| newest + 1);
    let room = FIRST_ROOM.min(config.log_segment_bytes);
    let segment = wal::create_segment(&wal_dir, index, sequence, room, true)
        .map_err(|e| Error::backend("cannot create a log segment", e))?;
    wal::remove_segments_below(&wal_dir, index)?;
    write_marker(&config.path, sequence)
        .map_err(|e| Error::backend("cannot write the store marker", e))?;
    Ok(Opened {
        db,
        sequence,
        segment,
        index,
    })
}

fn prepare_wal_dir(dir: &Path) -> Result<()> {
    create_private_dir(dir)
        .map_err(|e| Error::backend(format!("cannot create {}", dir.display()), e))?;
    if let Some(parent) = dir.parent() {
        wal::sync_dir(parent)
            .map_err(|e| Error::backend(format!("cannot sync {}", parent.display()), e))?;
    }
    Ok(())
}

/// The checkpointer thread: flushes sled when the flusher closed a segment, then removes the
/// segments sled now holds; refreshes the marker in between.
struct Checkpointer {
    shared: Arc<Shared>,
    durable: watch::Receiver<FlushState>,
    /// sled's log file, for the `fdatasync` after sled's own flush.
    sled_log: std::io::Result<File>,
    /// The durable version the marker holds.
    marked: Version,
    /// The size of the segments it prepares.
    segment_bytes: u64,
}

/// What the checkpointer is asked to do.
enum Request {
    /// Checkpoint, then remove the segments below this index (from the applier).
    Checkpoint(u64),
    /// Prepare zeroed room for the next segment (from the flusher, half way through one).
    Prepare,
}

impl Checkpointer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        let wal_dir = self.shared.path.join(WAL_DIR);
        loop {
            match requests.recv_timeout(MARKER_INTERVAL) {
                Ok(Request::Checkpoint(below)) => {
                    if let Err(e) = self.checkpoint(below) {
                        // The log keeps every segment until a checkpoint succeeds.
                        tracing::warn!(error = %e, "checkpoint failed; the log keeps its segments");
                    }
                }
                Ok(Request::Prepare) => {
                    if let Err(e) = wal::prepare_room(&wal_dir, self.segment_bytes) {
                        // The next segment makes its room itself.
                        tracing::warn!(error = %e, "cannot prepare the next log segment");
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.refresh_marker(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Err(e) = wal::remove_room(&wal_dir) {
            tracing::warn!(error = %e, "cannot remove the prepared log segment");
        }
    }

    /// Makes sled's files hold everything applied so far, then removes the segments below
    /// `below` (which hold nothing newer).
    fn checkpoint(&mut self, below: u64) -> Result<()> {
        let applied = self.durable.borrow().applied;
        let db = self.shared.db()?;
        db.insert(META_APPLIED, &applied.to_be_bytes())
            .map_err(|e| map_sled("recording a checkpoint", e))?;
        flush_sled(&db, &self.sled_log)?;
        wal::remove_segments_below(&self.shared.path.join(WAL_DIR), below)?;
        self.refresh_marker();
        Ok(())
    }

    fn refresh_marker(&mut self) {
        let durable = self.durable.borrow().durable;
        if durable == self.marked {
            return;
        }
        match write_marker(&self.shared.path, durable) {
            Ok(()) => self.marked = durable,
            // The marker only sharpens damage detection; commits stay correct without it.
            Err(e) => tracing::warn!(error = %e, "cannot refresh the store marker"),
        }
    }
}

/// What the flusher hands the applier, in log order.
enum Step {
    /// A group that is durable in the log: its buffer (frame header included) and last version.
    Group(Vec<u8>, Version),
    /// A new segment was begun: the segments below this index hold only groups sent before.
    Rotated(u64),
    /// Writing the log failed (the flusher published it): nothing more comes.
    Failed,
}

/// The flusher thread: takes each group as it forms, writes it to the log with one `write` and
/// one `fdatasync`, and hands it to the applier, so the next group syncs while this one is
/// applied.
struct Flusher {
    shared: Arc<Shared>,
    segment: wal::Open,
    index: u64,
    segment_len: u64,
    /// Whether the checkpointer was asked to prepare the next segment's room.
    prepare_asked: bool,
    prepare: Option<mpsc::Sender<Request>>,
    /// The version of the last group written.
    written: Version,
    steps: mpsc::Sender<Step>,
    applier: Option<JoinHandle<()>>,
    publish: Arc<watch::Sender<FlushState>>,
}

impl Flusher {
    fn run(mut self) {
        match self.write_groups() {
            // Closing: begin an empty segment, so the closing checkpoint leaves only it.
            Ok(()) => match self.rotate(false) {
                Ok(()) => {
                    let _ = self.steps.send(Step::Rotated(self.index));
                }
                Err(e) => {
                    // Everything is durable in the log, which the next open replays.
                    tracing::warn!(error = %e, "cannot begin the closing segment");
                }
            },
            Err(e) => {
                let message = format!("writing to disk failed: {e}");
                tracing::error!(error = %message, "the store refuses further commits");
                self.publish
                    .send_modify(|state| state.failure = Some(Arc::from(message.as_str())));
                // Their commits see the failure (set first, so none waits after this).
                self.shared.writer().waiters.clear();
                let _ = self.steps.send(Step::Failed);
            }
        }
        // The applier finishes what was sent, then the checkpointer the last checkpoint.
        let Flusher {
            steps,
            applier,
            prepare,
            ..
        } = self;
        drop((steps, prepare));
        if let Some(applier) = applier {
            let _ = applier.join();
        }
    }

    /// Writes groups until the store closes (`Ok`) or a write fails.
    fn write_groups(&mut self) -> Result<()> {
        loop {
            let (mut group, last) = {
                let mut writer = self.shared.writer();
                loop {
                    if writer.group.len() > FRAME_HEADER_LEN {
                        break;
                    }
                    if writer.closing {
                        return Ok(());
                    }
                    writer = self
                        .shared
                        .work
                        .wait(writer)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                let fresh = wal::new_group(std::mem::take(&mut writer.spare));
                (
                    std::mem::replace(&mut writer.group, fresh),
                    writer.group_last,
                )
            };
            let len = group.len() as u64;
            if self.segment_len > wal::SEGMENT_HEADER_LEN as u64
                && self.segment_len + len > self.segment.room
            {
                // Full: the group goes into the next segment's room.
                self.rotate(true)?;
                let _ = self.steps.send(Step::Rotated(self.index));
            }
            self.write_group(&mut group)?;
            self.shared
                .publish_unapplied(group.get(FRAME_HEADER_LEN..).unwrap_or_default(), last)?;
            self.written = last;
            if !self.prepare_asked && self.segment_len > self.segment.room / 2 {
                self.prepare_asked = true;
                if let Some(prepare) = &self.prepare {
                    let _ = prepare.send(Request::Prepare);
                }
            }
            self.acknowledge(last);
            // Waits while the applier is `UNAPPLIED_BUDGET` behind, which holds commits back.
            // (A send to an applier that stopped fails, below.)
            let applier = &self.applier;
            self.shared.wait_for_room(group.len(), || {
                applier.as_ref().is_none_or(JoinHandle::is_finished)
            });
            let sent = self.steps.send(Step::Group(group, last));
            if sent.is_err() {
                // The applier stopped after a failure it published.
                return Ok(());
            }
        }
    }

    /// Publishes `last` as durable and wakes the commits it covers.
    fn acknowledge(&self, last: Version) {
        self.publish
            .send_modify(|state| state.durable = state.durable.max(last));
        let done: Vec<_> = {
            let mut writer = self.shared.writer();
            let done = writer
                .waiters
                .iter()
                .take_while(|(ticket, _)| *ticket <= last)
                .count();
            writer.waiters.drain(..done).collect()
        };
        for (_, waiter) in done {
            // A commit that stopped waiting needs no answer.
            let _ = waiter.send(());
        }
    }

    /// One write and one `fdatasync` for the whole group.
    fn write_group(&mut self, group: &mut [u8]) -> Result<()> {
        if !wal::seal(group) {
            return Err(Error::invalid(
                "a group of commits is too large for one log frame",
            ));
        }
        let file = &mut self.segment.file;
        file.write_all(group)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::backend("cannot write the log", e))?;
        self.segment_len += group.len() as u64;
        Ok(())
    }

    /// Begins the next segment, at the version written last: in the prepared room if
    /// `use_ready` and it is there, else in room made now (none when closing).
    fn rotate(&mut self, use_ready: bool) -> Result<()> {
        let index = self.index + 1;
        let room = if use_ready { FIRST_ROOM } else { 0 };
        let dir = self.shared.path.join(WAL_DIR);
        self.segment = wal::create_segment(&dir, index, self.written, room, use_ready)
            .map_err(|e| Error::backend("cannot create a log segment", e))?;
        self.index = index;
        self.segment_len = wal::SEGMENT_HEADER_LEN as u64;
        self.prepare_asked = false;
        Ok(())
    }
}

/// The applier thread: applies durable groups to sled in log order, forgets each as unapplied
/// and pending, publishes it as applied, and passes rotations on to the checkpointer once every
/// group before them is in sled.
struct Applier {
    shared: Arc<Shared>,
    publish: Arc<watch::Sender<FlushState>>,
    checkpoints: Option<mpsc::Sender<Request>>,
    checkpointer: Option<JoinHandle<()>>,
}

impl Applier {
    fn run(mut self, steps: mpsc::Receiver<Step>) {
        let mut failed = false;
        while let Ok(step) = steps.recv() {
            match step {
                Step::Group(group, last) if !failed => {
                    let len = group.len();
                    match self.apply_group(group, last) {
                        Ok(()) => {
                            self.publish
                                .send_modify(|state| state.applied = state.applied.max(last));
                        }
                        Err(e) => {
                            self.fail(&format!("applying the log to sled failed: {e}"));
                            failed = true;
                        }
                    }
                    self.shared.applied_bytes(len);
                    free_garbage();
                }
                Step::Group(group, _) => self.shared.applied_bytes(group.len()),
                Step::Rotated(below) if !failed => {
                    if let Some(checkpoints) = &self.checkpoints {
                        // A send fails only when the checkpointer stopped.
                        let _ = checkpoints.send(Request::Checkpoint(below));
                    }
                }
                Step::Failed => failed = true,
                Step::Rotated(_) => {}
            }
        }
        // Let the checkpointer finish its last checkpoint.
        self.checkpoints = None;
        if let Some(checkpointer) = self.checkpointer.take() {
            let _ = checkpointer.join();
        }
    }

    fn fail(&self, message: &str) {
        tracing::error!(error = %message, "the store refuses further commits");
        self.publish
            .send_modify(|state| state.failure = Some(Arc::from(message)));
        // Their commits see the failure (set first, so none waits after this).
        self.shared.writer().waiters.clear();
    }

    /// Applies a durable group to sled, then forgets its writes as unapplied and as pending.
    fn apply_group(&self, group: Vec<u8>, last: Version) -> Result<()> {
        let payload = group.get(FRAME_HEADER_LEN..).unwrap_or_default();
        let db = self.shared.db()?;
        {
            // Readers never wait for this (a scan that keeps meeting groups begun under it
            // does, once).
            let _gate = self
                .shared
                .apply_gate
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // Announced before the first write reaches sled: a scan that saw any of them sees
            // this too.
            self.shared.applying.store(last, Ordering::SeqCst);
            wal::for_each_op(payload, |version, op| apply_op(&db, version, op))?;
        }
        {
            let mut unapplied = self.shared.unapplied_mut();
            let unapplied = &mut unapplied.writes;
            wal::for_each_op(payload, |version, op| {
                let key = match op {
                    Op::Put(key, _) | Op::Delete(key) => key,
                };
                // A later group's write to the same key stays.
                if unapplied.get(key).is_some_and(|u| u.version == version) {
                    unapplied.remove(key);
                }
                Ok(())
            })?;
        }
        let mut writer = self.shared.writer();
        let generation = self.shared.forgetting.load(Ordering::Relaxed) + 1;
        wal::for_each_op(payload, |version, op| {
            let key = match op {
                Op::Put(key, _) | Op::Delete(key) => key,
            };
            writer.forget(key, version, generation);
            Ok(())
        })?;
        writer.trim_forgotten();
        // After the writes are in sled: whoever reads this generation reads them there.
        self.shared.forgetting.store(generation, Ordering::Release);
        writer.spare = group;
        Ok(())
    }
}

impl SledStore {
    /// Opens (or creates) the store in `config.path`, replaying its write-ahead log.
    ///
    /// # Errors
    /// - [`Unavailable`](crate::ErrorKind::Unavailable) when another store holds the directory.
    /// - [`Corrupt`](crate::ErrorKind::Corrupt) when the files are damaged, not a zt store, or of
    ///   a format this build does not read.
    /// - [`Backend`](crate::ErrorKind::Backend) for other I/O failures.
    pub async fn open(config: SledConfig) -> Result<Self> {
        let (path, segment_limit) = (config.path.clone(), config.log_segment_bytes);
        let opened = blocking(move || open_db(&config)).await?;
        Self::start(opened, path, segment_limit)
    }

    fn start(opened: Opened, path: PathBuf, segment_limit: u64) -> Result<Self> {
        let Opened {
            db,
            sequence,
            segment,
            index,
        } = opened;
        let sled_log = File::open(path.join("db"));
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(db)),
            unapplied: RwLock::new(UnappliedWrites::default()),
            applying: AtomicU64::new(0),
            apply_gate: RwLock::new(()),
            behind: Mutex::new(0),
            room: Condvar::new(),
            path,
            writer: Mutex::new(Writer::new(sequence)),
            work: Condvar::new(),
            forgetting: AtomicU64::new(0),
        });
        let (publish, durable) = watch::channel(FlushState {
            durable: sequence,
            applied: sequence,
            failure: None,
        });
        let publish = Arc::new(publish);
        let cannot_start = |e| Error::backend("cannot start the store's threads", e);
        let (checkpoints, requests) = mpsc::channel();
        let checkpointer = Checkpointer {
            shared: Arc::clone(&shared),
            durable: durable.clone(),
            sled_log,
            marked: sequence,
            segment_bytes: segment_limit,
        };
        let checkpointer = std::thread::Builder::new()
            .name("zt-sled-checkpoint".into())
            .spawn(move || checkpointer.run(requests))
            .map_err(cannot_start)?;
        // How far the applier may fall behind: `UNAPPLIED_BUDGET`.
        let (steps, received) = mpsc::channel();
        let applier = Applier {
            shared: Arc::clone(&shared),
            publish: Arc::clone(&publish),
            checkpoints: Some(checkpoints.clone()),
            checkpointer: Some(checkpointer),
        };
        let applier = std::thread::Builder::new()
            .name("zt-sled-apply".into())
            .spawn(move || applier.run(received))
            .map_err(cannot_start)?;
        let flusher = Flusher {
            shared: Arc::clone(&shared),
            segment,
            index,
            segment_len: wal::SEGMENT_HEADER_LEN as u64,
            prepare_asked: false,
            prepare: Some(checkpoints),
            written: sequence,
            steps,
            applier: Some(applier),
            publish,
        };
        let flusher = std::thread::Builder::new()
            .name("zt-sled-flusher".into())
            .spawn(move || flusher.run())
            .map_err(cannot_start)?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                shared,
                durable,
                flusher: Mutex::new(Some(flusher)),
                commit_gate: tokio::sync::RwLock::new(()),
            }),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Orders `batch` under the writer lock into the group being formed; returns its version
    /// and, unless what it depends on is durable already, what wakes it once it is.
    fn order(&self, batch: Batch) -> Result<(Version, Option<oneshot::Receiver<()>>)> {
        let shared = &self.inner.shared;
        // Stored keys are built before the lock is taken.
        let stored: Vec<Vec<u8>> = batch
            .writes()
            .iter()
            .map(|write| keys::encode(write.namespace(), write.key()))
            .collect();
        // The keys checked are read from sled before the writer lock, so commits do not queue
        // behind a large batch's reads; under the lock a key is read again only if a write to
        // it reached sled meanwhile.
        let checked: Vec<Vec<u8>> = batch
            .checks()
            .iter()
            .map(|check| keys::encode(&check.namespace, &check.key))
            .collect();
        let read_at = shared.forgetting.load(Ordering::Acquire);
        let read_before = if checked.is_empty() {
            Vec::new()
        } else {
            let db = shared.read_db();
            let db = db.as_ref().ok_or(Error::Closed)?;
            checked
                .iter()
                .map(|stored| stored_version(db, stored))
                .collect::<Result<Vec<_>>>()?
        };
        let mut guard = shared.writer();
        let writer = &mut *guard;
        if writer.closing {
            return Err(Error::Closed);
        }
        if let Some(failure) = &self.inner.durable.borrow().failure {
            return Err(Error::Backend {
                message: format!("{failure}; reopen the store"),
                source: None,
            });
        }
        let pending = &writer.pending;
        // (Nothing to work out for a batch without checks: this runs under the lock.)
        let forgotten = if checked.is_empty() {
            Forgotten::Keys(std::collections::HashSet::new())
        } else {
            writer.forgotten_since(read_at, shared.forgetting.load(Ordering::Relaxed))
        };
        let mut read = checked.iter().zip(&read_before);
        // In the order of the checks, as read above.
        batch.check_preconditions(|_, _| {
            let Some((stored, before)) = read.next() else {
                return Err(Error::invalid(
                    "a batch's checks changed while it committed",
                ));
            };
            if let Some(&(version, present)) = pending.get(stored) {
                return Ok(present.then_some(version));
            }
            if !forgotten.covers(stored) {
                return Ok(*before);
            }
            let db = shared.read_db();
            stored_version(db.as_ref().ok_or(Error::Closed)?, stored)
        })?;
        if stored.is_empty() {
            // Only preconditions: acknowledged once what they saw is durable.
            let ticket = writer.sequence;
            if ticket <= self.inner.durable.borrow().durable {
                return Ok((ticket, None));
            }
            let (wake, woken) = oneshot::channel();
            writer.waiters.push_back((ticket, wake));
            return Ok((ticket, Some(woken)));
        }
        let version = writer.sequence + 1;
        let writes = batch.writes();
        wal::push_record(
            &mut writer.group,
            version,
            writes.iter().zip(&stored).map(|(write, key)| match write {
                Write::Put { value, .. } => Op::Put(key, value),
                Write::Delete { .. } => Op::Delete(key),
            }),
        );
        for (write, key) in writes.iter().zip(stored) {
            let puts = matches!(write, Write::Put { .. });
            writer.pending.insert(key, (version, puts));
        }
        writer.sequence = version;
        writer.group_last = version;
        let (wake, woken) = oneshot::channel();
        writer.waiters.push_back((version, wake));
        drop(guard);
        shared.work.notify_one();
        Ok((version, Some(woken)))
    }

    /// Reads one page of a scan: sled's entries merged with the unapplied writes of the range.
    /// `None` when the applier began a group the page may show in part (the caller reads again).
    ///
    /// The page is read without holding the applier off, then checked: if the applier began no
    /// group newer than the unapplied writes taken, everything of a group sled showed is among
    /// them, and the page shows each commit whole. From the last attempt on, the scan holds the
    /// applier off between two groups instead, and always succeeds.
    fn scan_once(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>),
        options: ScanOptions,
        attempt: usize,
    ) -> Result<Option<ScanPage>> {
        let shared = &self.inner.shared;
        let gate = (attempt >= OPTIMISTIC_SCANS).then(|| {
            shared
                .apply_gate
                .read()
                .unwrap_or_else(PoisonError::into_inner)
        });
        let db = shared.read_db();
        let db = db.as_ref().ok_or(Error::Closed)?;
        let (unapplied, through): (Vec<(Vec<u8>, Unapplied)>, Version) = {
            let unapplied = shared.unapplied();
            let writes = unapplied
                .writes
                .range::<Vec<u8>, _>((bounds.0.as_ref(), bounds.1.as_ref()))
                .map(|(key, write)| (key.clone(), write.clone()))
                .collect();
            (writes, unapplied.through)
        };
        let iter = db.range(bounds.clone());
        let to_entry = |item: Result<(Vec<u8>, Version, Vec<u8>)>| {
            let (k, version, value) = item?;
            Ok(Entry {
                key: keys::decode(namespace, &k)?.to_vec(),
                value,
                version,
            })
        };
        let (entries, more) = if options.reverse {
            collect_page(
                Merged::new(iter.rev(), unapplied.into_iter().rev(), true).map(to_entry),
                options.limit,
            )?
        } else {
            collect_page(
                Merged::new(iter, unapplied.into_iter(), false).map(to_entry),
                options.limit,
            )?
        };
        if gate.is_none() && shared.applying.load(Ordering::SeqCst) > through {
            return Ok(None);
        }
        Ok(Some(ScanPage::new(range, options.reverse, entries, more)))
    }

    /// The error of a commit whose waiter was dropped unanswered.
    fn unanswered(&self) -> Error {
        match &self.inner.durable.borrow().failure {
            Some(failure) => Error::Backend {
                message: failure.to_string(),
                source: None,
            },
            None => Error::Closed,
        }
    }

    async fn wait_durable(&self, ticket: Version) -> Result<()> {
        self.wait_until(|s| s.durable >= ticket, "writing to disk failed")
            .await
    }

    /// Waits until `reached` holds of what the threads publish, or for their failure.
    async fn wait_until(
        &self,
        reached: impl Fn(&FlushState) -> bool,
        otherwise: &str,
    ) -> Result<()> {
        let mut state = self.inner.durable.clone();
        let state = state
            .wait_for(|s| reached(s) || s.failure.is_some())
            .await
            .map_err(|_| Error::Closed)?;
        if reached(&state) {
            return Ok(());
        }
        Err(Error::Backend {
            message: format!(
                "{}; reopen the store",
                state.failure.as_deref().unwrap_or(otherwise)
            ),
            source: None,
        })
    }
}

#[async_trait]
impl KvStore for SledStore {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        let shared = &self.inner.shared;
        let db = shared.read_db();
        let db = db.as_ref().ok_or(Error::Closed)?;
        let stored = keys::encode(namespace, key);
        if let Some(write) = shared.unapplied().writes.get(&stored) {
            return Ok(write.value.as_ref().map(|value| Entry {
                key: key.to_vec(),
                value: value.to_vec(),
                version: write.version,
            }));
        }
        match db.get(stored).map_err(|e| map_sled("reading a key", e))? {
            None => Ok(None),
            Some(stored) => {
                let (version, value) = decode_value(&stored)?;
                Ok(Some(Entry {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    version,
                }))
            }
        }
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage> {
        if let Some(page) = check_scan(range, &options)? {
            self.inner.shared.db()?;
            return Ok(page);
        }
        let bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>) = keys::bounds(namespace, range);
        for attempt in 0..=OPTIMISTIC_SCANS {
            if let Some(page) = self.scan_once(namespace, range, &bounds, options, attempt)? {
                return Ok(page);
            }
        }
        Err(Error::unavailable(
            "a scan could not read a steady view of the store",
            None,
        ))
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        batch.validate()?;
        let gate = self.inner.commit_gate.read().await;
        let ordered = self.order(batch);
        drop(gate);
        let (version, woken) = ordered?;
        if let Some(woken) = woken {
            woken.await.map_err(|_| self.unanswered())?;
        }
        Ok(version)
    }

    async fn close(&self) -> Result<()> {
        let ticket = {
            let mut writer = self.inner.shared.writer();
            writer.closing = true;
            writer.sequence
        };
        self.inner.shared.work.notify_all();
        let handle = self
            .inner
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            blocking(move || {
                handle
                    .join()
                    .map_err(|_| Error::unavailable("the flusher thread panicked", None))
            })
            .await?;
        }
        let durable = self.wait_durable(ticket).await;
        // Let go of sled; its file lock goes with the last in-flight read.
        self.inner
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // sled lets go of its file lock a moment later, from its own threads: wait for it, so
        // that the directory can be opened again as soon as `close` returns.
        let lock = self.inner.shared.path.join("db");
        blocking(move || {
            wait_unlocked(&lock, std::time::Duration::from_secs(5));
            Ok(())
        })
        .await?;
        durable
    }

    /// Stops new commits, waits until every commit ordered before is in sled (the log's
    /// in-memory copy then holds nothing sled lacks), and reads sled's tree in key order.
    async fn export(&self, sink: &mut dyn ExportSink) -> Result<u64> {
        let _gate = self.inner.commit_gate.write().await;
        let through = self.inner.shared.writer().sequence;
        let applied = self.wait_until(|s| s.applied >= through, "applying the log failed");
        tokio::time::timeout(EXPORT_SETTLE_LIMIT, applied)
            .await
            .map_err(|_| {
                Error::unavailable(
                    "an export waited too long for earlier commits to reach the database",
                    None,
                )
            })??;
        let db = self.inner.shared.db()?;
        let mut rows = 0;
        for item in db.iter() {
            let (stored, value) = item.map_err(|e| map_sled("exporting", e))?;
            if let Some((namespace, key)) = keys::split(&stored)? {
                let (_, value) = decode_value(&value)?;
                sink.row(&namespace, key, value)?;
                rows += 1;
            }
        }
        Ok(rows)
    }
}

/// How long an export waits for the applier to catch up before it gives up.
const EXPORT_SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// sled's entries of a range merged with the unapplied writes of the same range, both in the
/// scan's order: an unapplied write replaces sled's entry of its key, an unapplied delete hides
/// it. Yields stored keys with their versions and values.
struct Merged<S: Iterator, U: Iterator> {
    sled: Peekable<S>,
    unapplied: Peekable<U>,
    reverse: bool,
}

impl<S, U> Merged<S, U>
where
    S: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    U: Iterator<Item = (Vec<u8>, Unapplied)>,
{
    fn new(sled: S, unapplied: U, reverse: bool) -> Self {
        Merged {
            sled: sled.peekable(),
            unapplied: unapplied.peekable(),
            reverse,
        }
    }
}

impl<S, U> Iterator for Merged<S, U>
where
    S: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    U: Iterator<Item = (Vec<u8>, Unapplied)>,
{
    type Item = Result<(Vec<u8>, Version, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // Which comes first in the scan's order: sled's next entry or the next unapplied
            // write (on the same key, the write, and sled's entry is dropped).
            let from_sled = match (self.sled.peek(), self.unapplied.peek()) {
                (None, None) => return None,
                (Some(_), None) | (Some(Err(_)), _) => true,
                (None, Some(_)) => false,
                (Some(Ok((stored, _))), Some((key, _))) => {
                    let order = stored.as_ref().cmp(key.as_slice());
                    if order == std::cmp::Ordering::Equal {
                        self.sled.next();
                        false
                    } else {
                        (order == std::cmp::Ordering::Less) != self.reverse
                    }
                }
            };
            if from_sled {
                let item = self.sled.next()?;
                return Some(item.map_err(|e| map_sled("scanning", e)).and_then(
                    |(key, stored)| {
                        let (version, value) = decode_value(&stored)?;
                        Ok((key.to_vec(), version, value.to_vec()))
                    },
                ));
            }
            let (key, write) = self.unapplied.next()?;
            if let Some(value) = write.value {
                return Some(Ok((key, write.version, value.to_vec())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_commit_reads_again_exactly_the_keys_forgotten_since_it_read() {
        let mut w = Writer::new(0);
        for (version, key) in [(1, b"a"), (2, b"b"), (3, b"c")] {
            w.pending.insert(key.to_vec(), (version, true));
        }
        // A later write to `b` is pending: forgetting the earlier one keeps it.
        w.pending.insert(b"b".to_vec(), (9, true));
        w.forget(b"a", 1, 1);
        w.forget(b"b", 2, 1);
        w.forget(b"c", 3, 2);
        assert!(w.pending.contains_key(b"b".as_slice()));
        assert!(!w.forgotten_since(2, 2).covers(b"a"));
        let since_0 = w.forgotten_since(0, 2);
        assert!(since_0.covers(b"a") && since_0.covers(b"c") && !since_0.covers(b"b"));
        let since_1 = w.forgotten_since(1, 2);
        assert!(since_1.covers(b"c") && !since_1.covers(b"a"));
        // Past the cap the oldest go, and a commit that read before them reads every key again.
        for i in 0..=FORGOTTEN_CAP as u64 {
            let key = i.to_be_bytes();
            w.pending.insert(key.to_vec(), (100 + i, true));
            w.forget(&key, 100 + i, 3 + i);
        }
        w.trim_forgotten();
        assert_eq!(w.forgotten.len(), FORGOTTEN_CAP);
        assert!(w.forgotten_since(1, 1_000_000).covers(b"never written"));
        assert!(!w.forgotten_since(4, 1_000_000).covers(b"never written"));
    }

    /// With the applier held off (as if it were slow), acknowledged commits are read at once,
    /// by key and by scan in both directions, from the writes it has not applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(
        clippy::await_holding_lock,
        clippy::readonly_write_lock,
        reason = "the test holds the applier off, as the applier's own hold does, across commits"
    )]
    async fn reads_do_not_wait_for_the_applier() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
        let n = Namespace::new("held").unwrap();
        let mut first = Batch::new();
        first.put(&n, b"k1", b"one").put(&n, b"k2", b"two");
        store.commit(first).await.unwrap();
        let gate = store.inner.shared.apply_gate.write().unwrap();
        let mut second = Batch::new();
        second
            .put(&n, b"k1", b"uno")
            .delete(&n, b"k2")
            .put(&n, b"k3", b"tres");
        let version = store.commit(second).await.unwrap();
        let in_sled = store
            .inner
            .shared
            .db()
            .unwrap()
            .get(keys::encode(&n, b"k1"))
            .unwrap();
        assert!(
            in_sled.is_none_or(|stored| decode_value(&stored).unwrap().1 != b"uno"),
            "the applier was held off"
        );
        let k1 = store.get(&n, b"k1").await.unwrap().unwrap();
        assert_eq!(
            (k1.value.as_slice(), k1.version),
            (b"uno".as_slice(), version)
        );
        assert_eq!(store.get(&n, b"k2").await.unwrap(), None);
        for reverse in [false, true] {
            let page = store
                .scan(&n, &KeyRange::all(), ScanOptions { reverse, limit: 10 })
                .await
                .unwrap();
            let mut seen: Vec<_> = page.entries.iter().map(|e| e.key.clone()).collect();
            if reverse {
                seen.reverse();
            }
            assert_eq!(seen, vec![b"k1".to_vec(), b"k3".to_vec()]);
        }
        drop(gate);
        store.close().await.unwrap();
    }

    /// The scan that holds the applier off (after the optimistic attempts failed) sees each
    /// commit whole too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_holding_the_applier_off_sees_each_commit_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
        let n = Namespace::new("whole").unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, n, done) = (store.clone(), n.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let range = KeyRange::all();
                let bounds = keys::bounds(&n, &range);
                let mut seen = 0;
                while !done.load(Ordering::Acquire) {
                    let page = store
                        .scan_once(
                            &n,
                            &range,
                            &bounds,
                            ScanOptions::default(),
                            OPTIMISTIC_SCANS,
                        )
                        .unwrap()
                        .unwrap();
                    if let Some(first) = page.entries.first() {
                        assert_eq!(page.entries.len(), 128, "a commit seen in part");
                        assert!(page.entries.iter().all(|e| e.version == first.version));
                        seen += 1;
                    }
                    tokio::task::yield_now().await;
                }
                seen
            })
        };
        for i in 0..300u32 {
            let mut batch = Batch::new();
            for k in 0..128u16 {
                if i % 3 == 2 {
                    batch.delete(&n, &k.to_be_bytes());
                } else {
                    batch.put(
                        &n,
                        &k.to_be_bytes(),
                        &[&i.to_be_bytes()[..], &[7; 500]].concat(),
                    );
                }
            }
            store.commit(batch).await.unwrap();
        }
        done.store(true, Ordering::Release);
        assert!(reader.await.unwrap() > 0);
        store.close().await.unwrap();
    }
}
