//! The embedded default backend, [`SledStore`]: sled 0.34 with group commit.

use std::fmt;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::keys;
use crate::store::KvStore;
use crate::types::{
    Batch, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version, Write, check_key,
    check_scan, scan_page,
};

/// The store's own keys (their namespace is empty, which no user namespace can be).
/// A version no commit has exceeded: versions are reserved in blocks below it.
const META_CEILING: &[u8] = b"\x00ceiling";
/// The highest version applied when the last flush began.
const META_APPLIED: &[u8] = b"\x00applied";
const META_FORMAT: &[u8] = b"\x00format";

/// The on-disk layout version this code writes and reads.
const FORMAT_VERSION: u64 = 1;

/// The marker file next to sled's files. It records, outside sled, that the store exists and a
/// version known to be durable, because sled 0.34 recovers a damaged log silently (as empty, or
/// as its undamaged prefix): the marker turns that into a `Corrupt` error instead of lost data.
const MARKER_FILE: &str = "zt-store";
/// How many versions are reserved each time the ceiling is raised.
const CEILING_STEP: Version = 1 << 16;
/// How often the flusher refreshes the durable version in the marker.
const MARKER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

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
        (Some(FORMAT_VERSION), Some(durable)) => Ok(Some(durable)),
        (Some(other), Some(_)) => Err(Error::corrupt(
            format!(
                "data format version {other} is not supported (this build reads {FORMAT_VERSION})"
            ),
            None,
        )),
        _ => Err(Error::corrupt(
            format!("{} is damaged", path.display()),
            None,
        )),
    }
}

/// Replaces the marker atomically: write a temporary file, sync it, rename, sync the directory.
fn write_marker(dir: &Path, durable: Version) -> std::io::Result<()> {
    use std::io::Write as _;
    let temporary = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(
        file,
        "# zt-storage sled store; do not edit\nformat={FORMAT_VERSION}\ndurable={durable}"
    )?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(MARKER_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// How to open a [`SledStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SledConfig {
    /// The data directory; created (mode 0700) if missing.
    pub path: PathBuf,
    /// sled's page cache size, in bytes.
    pub cache_capacity: u64,
}

impl SledConfig {
    /// Defaults for `path`: a 256 MiB cache.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledConfig {
            path: path.into(),
            cache_capacity: 256 * 1024 * 1024,
        }
    }

    /// Sets the page cache size.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }
}

/// What the flusher publishes.
#[derive(Debug, Clone, Default)]
struct FlushState {
    /// Every commit with a sequence number up to this one is on disk.
    durable: Version,
    /// Set once a flush failed; the store accepts no more commits.
    failure: Option<Arc<str>>,
}

/// State guarded by the writer lock.
struct Writer {
    /// The highest version applied to sled (durable or not).
    sequence: Version,
    /// The durable ceiling: no version above it is used before it is raised.
    ceiling: Version,
    /// Wakes the flusher; `None` once the store is closed.
    wake: Option<mpsc::Sender<()>>,
}

struct Inner {
    /// The database; `None` once closed, so closing releases sled's file lock even while other
    /// handles exist.
    db: RwLock<Option<sled::Db>>,
    path: PathBuf,
    writer: Mutex<Writer>,
    applied: Arc<AtomicU64>,
    durable: watch::Receiver<FlushState>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// The sled-backed [`KvStore`], durable on every acknowledged commit, with group commit.
///
/// # How a commit becomes durable
/// sled keeps writes in memory until it is flushed. This backend turns sled's background flush
/// off and flushes itself:
///
/// 1. `commit` applies the batch under a writer lock (preconditions read; one `insert` or
///    `remove` for a single write, one atomic `apply_batch` for several) and wakes the flusher.
/// 2. One flusher thread loops: it notes the highest applied version, records it in sled, calls
///    `Db::flush` and then `fdatasync` on sled's log file, and publishes that version as durable.
/// 3. `commit` waits until the durable version reaches its own, then returns.
///
/// Two sled 0.34 facts shape this (both measured here, see docs/architecture.md):
/// - `apply_batch` writes the log to disk by itself, twice per call, so only single-write commits
///   can share a flush; multi-write commits stay atomic but pay their own writes.
/// - `Db::flush` ends with `sync_file_range`, which neither flushes the device's write cache nor
///   persists the file's growth; the `fdatasync` after it does.
///
/// Versions come from one store-wide counter. Writing it with every commit would turn single
/// writes into batches, so the store reserves versions in blocks: a durable ceiling is raised
/// (in the same atomic write as the commit that crosses it) before any version above it is used,
/// and a reopened store starts above the ceiling. Versions therefore grow across restarts and
/// crashes, with gaps.
///
/// Commits that arrive while a flush is running all ride on the next one, so 64 concurrent
/// committers pay for a handful of fsyncs rather than 64. No commit returns before a flush that
/// started after its apply has finished. If a flush ever fails the store refuses further commits:
/// after a failed fsync nobody knows what is on disk.
///
/// Readers may see a write whose commit has not returned yet; any commit that depends on it
/// (through a precondition or a later version) is acknowledged only after it is durable.
///
/// # Threads
/// Reads and the apply step run on the calling task: sled serves them from its page cache in
/// microseconds, and handing each one to a blocking thread cost 40 times more than the work on
/// a two-core machine (see docs/PERFORMANCE.md). A read of a page not in cache blocks that task for
/// one disk read. Only the flush (an fsync), opening and closing run on threads of their own.
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
            .field("path", &self.inner.path)
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
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| {
        Error::backend(
            format!("cannot create data directory {}", path.display()),
            e,
        )
    })
}

/// A database just opened.
struct Opened {
    db: sled::Db,
    /// New versions start above this one.
    sequence: Version,
    /// The applied version recorded in sled (and in the marker).
    recorded: Version,
}

/// Opens sled and checks (or writes) the format marker.
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
    match read_u64(&db, META_FORMAT)? {
        Some(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(Error::corrupt(
                format!(
                    "data format version {other} is not supported (this build reads {FORMAT_VERSION})"
                ),
                None,
            ));
        }
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
        None if db.is_empty() => {
            db.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())
                .map_err(|e| map_sled("initialising the database", e))?;
            db.flush()
                .map_err(|e| map_sled("initialising the database", e))?;
        }
        None => {
            return Err(Error::corrupt(
                "the database holds data but no zt format marker",
                None,
            ));
        }
    }
    let ceiling = read_u64(&db, META_CEILING)?.unwrap_or(0);
    let applied = read_u64(&db, META_APPLIED)?.unwrap_or(0);
    if let Some(durable) = marker.filter(|&durable| applied < durable) {
        return Err(Error::corrupt(
            format!(
                "the database files in {} are damaged: sled recovered up to version \
                 {applied}, but version {durable} had been made durable",
                config.path.display()
            ),
            None,
        ));
    }
    // Every version ever handed out is at most the ceiling; start above it.
    let sequence = ceiling.max(applied);
    write_marker(&config.path, applied)
        .map_err(|e| Error::backend("cannot write the store marker", e))?;
    Ok(Opened {
        db,
        sequence,
        recorded: applied,
    })
}

/// The flusher thread: coalesces wake-ups, flushes, publishes the durable version.
struct Flusher {
    db: sled::Db,
    dir: PathBuf,
    /// sled's log file, for the `fdatasync` after sled's own flush.
    log_file: std::io::Result<std::fs::File>,
    applied: Arc<AtomicU64>,
    publish: watch::Sender<FlushState>,
    /// The version last recorded in sled as applied-and-flushed; what the marker may claim.
    recorded: Version,
    marker_written: std::time::Instant,
}

impl Flusher {
    fn run(mut self, wake: mpsc::Receiver<()>) {
        while wake.recv().is_ok() {
            // Everything applied before now rides on this flush; drop the wake-ups it covers.
            while wake.try_recv().is_ok() {}
            if self.flush().is_err() {
                return;
            }
            if self.marker_written.elapsed() >= MARKER_INTERVAL {
                self.refresh_marker();
            }
        }
        // The store is closing: make the last commits durable.
        if self.flush().is_ok() {
            self.refresh_marker();
        }
    }

    /// Makes everything applied so far durable and publishes it.
    fn flush(&mut self) -> std::result::Result<(), ()> {
        let target = self.applied.load(Ordering::Acquire);
        if target <= self.publish.borrow().durable {
            return Ok(());
        }
        let flushed = self
            .db
            .insert(META_APPLIED, &target.to_be_bytes())
            .and_then(|_| self.db.flush())
            .map_err(|e| e.to_string())
            .and_then(|_| match &self.log_file {
                Ok(file) => file.sync_data().map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot open sled's log file: {e}")),
            });
        match flushed {
            Ok(()) => {
                self.recorded = target;
                self.publish
                    .send_modify(|state| state.durable = state.durable.max(target));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "sled flush failed; the store refuses further commits");
                self.publish.send_modify(|state| {
                    state.failure = Some(Arc::from(format!("flushing to disk failed: {e}")));
                });
                Err(())
            }
        }
    }

    fn refresh_marker(&mut self) {
        self.marker_written = std::time::Instant::now();
        if let Err(e) = write_marker(&self.dir, self.recorded) {
            // The marker only sharpens damage detection; commits stay correct without it.
            tracing::warn!(error = %e, "cannot refresh the store marker");
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store in `config.path`.
    ///
    /// # Errors
    /// - [`Unavailable`](crate::ErrorKind::Unavailable) when another store holds the directory.
    /// - [`Corrupt`](crate::ErrorKind::Corrupt) when the files are damaged, not a zt store, or of
    ///   a format this build does not read.
    /// - [`Backend`](crate::ErrorKind::Backend) for other I/O failures.
    pub async fn open(config: SledConfig) -> Result<Self> {
        let path = config.path.clone();
        let opened = blocking(move || open_db(&config)).await?;
        Ok(Self::start(opened, path))
    }

    fn start(opened: Opened, path: PathBuf) -> Self {
        let Opened {
            db,
            sequence,
            recorded,
        } = opened;
        let applied = Arc::new(AtomicU64::new(sequence));
        let (publish, durable) = watch::channel(FlushState {
            durable: sequence,
            failure: None,
        });
        let (wake_tx, wake_rx) = mpsc::channel();
        let flusher = Flusher {
            db: db.clone(),
            dir: path.clone(),
            log_file: std::fs::File::open(path.join("db")),
            applied: Arc::clone(&applied),
            publish,
            recorded,
            marker_written: std::time::Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("zt-sled-flusher".into())
            .spawn(move || flusher.run(wake_rx));
        let (wake, flusher) = match thread {
            Ok(handle) => (Some(wake_tx), Some(handle)),
            Err(e) => {
                // Without a flusher no commit could be acknowledged; refuse them instead.
                tracing::error!(error = %e, "cannot start the sled flusher thread");
                (None, None)
            }
        };
        SledStore {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(db)),
                path,
                writer: Mutex::new(Writer {
                    sequence,
                    ceiling: sequence,
                    wake,
                }),
                applied,
                durable,
                flusher: Mutex::new(flusher),
            }),
        }
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies `batch` under the writer lock; returns its version and the sequence number that
    /// must be durable before it is acknowledged.
    fn apply(inner: &Inner, batch: Batch) -> Result<(Version, Version)> {
        let mut writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.wake.is_none() {
            return Err(Error::Closed);
        }
        if let Some(failure) = &inner.durable.borrow().failure {
            return Err(Error::Backend {
                message: format!("{failure}; reopen the store"),
                source: None,
            });
        }
        let db = inner.db()?;
        batch.check_preconditions(|ns, key| {
            match db
                .get(keys::encode(ns, key))
                .map_err(|e| map_sled("reading for a precondition", e))?
            {
                None => Ok(None),
                Some(stored) => decode_value(&stored).map(|(v, _)| Some(v)),
            }
        })?;
        if batch.writes().is_empty() {
            return Ok((writer.sequence, writer.sequence));
        }
        let version = writer.sequence + 1;
        // Raise the durable ceiling, in the same atomic write, before using a version above it.
        let raise = (version > writer.ceiling).then(|| version + CEILING_STEP);
        let mut writes = batch.into_writes();
        let applied = match (writes.pop(), writes.is_empty(), raise) {
            // One write and no ceiling to raise: a plain insert or remove, which sled only
            // buffers, so it shares the next flush with every other commit.
            (Some(write), true, None) => {
                let stored = keys::encode(write.namespace(), write.key());
                match write {
                    Write::Put { value, .. } => {
                        db.insert(stored, encode_value(version, &value)).map(|_| ())
                    }
                    Write::Delete { .. } => db.remove(stored).map(|_| ()),
                }
            }
            (last, _, raise) => {
                let mut sled_batch = sled::Batch::default();
                for write in writes.into_iter().chain(last) {
                    let stored = keys::encode(write.namespace(), write.key());
                    match write {
                        Write::Put { value, .. } => {
                            sled_batch.insert(stored, encode_value(version, &value))
                        }
                        Write::Delete { .. } => sled_batch.remove(stored),
                    }
                }
                if let Some(ceiling) = raise {
                    sled_batch.insert(META_CEILING, &ceiling.to_be_bytes());
                }
                db.apply_batch(sled_batch)
            }
        };
        applied.map_err(|e| map_sled("applying a batch", e))?;
        if let Some(ceiling) = raise {
            writer.ceiling = ceiling;
        }
        writer.sequence = version;
        inner.applied.store(version, Ordering::Release);
        // A send fails only if the flusher died, which it does after publishing a failure that
        // the wait below reports.
        if let Some(wake) = &writer.wake {
            let _ = wake.send(());
        }
        Ok((version, version))
    }

    async fn wait_durable(&self, ticket: Version) -> Result<()> {
        let mut durable = self.inner.durable.clone();
        let state = durable
            .wait_for(|s| s.durable >= ticket || s.failure.is_some())
            .await
            .map_err(|_| Error::Closed)?;
        if state.durable >= ticket {
            return Ok(());
        }
        Err(Error::Backend {
            message: state
                .failure
                .as_deref()
                .unwrap_or("flushing to disk failed")
                .to_string(),
            source: None,
        })
    }
}

impl Inner {
    /// A handle on the open database, or `Closed`.
    fn db(&self) -> Result<sled::Db> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)
    }
}

#[async_trait]
impl KvStore for SledStore {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        let db = self.inner.db()?;
        match db
            .get(keys::encode(namespace, key))
            .map_err(|e| map_sled("reading a key", e))?
        {
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
        let db = self.inner.db()?;
        if let Some(page) = check_scan(range, &options)? {
            return Ok(page);
        }
        let bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>) = keys::bounds(namespace, range);
        let iter = db.range(bounds);
        let to_entry = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(|e| map_sled("scanning", e))?;
            let (version, value) = decode_value(&v)?;
            Ok(Entry {
                key: keys::decode(namespace, &k)?.to_vec(),
                value: value.to_vec(),
                version,
            })
        };
        scan_page(iter.map(to_entry), range, options)
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        batch.validate()?;
        let (version, ticket) = Self::apply(&self.inner, batch)?;
        self.wait_durable(ticket).await?;
        Ok(version)
    }

    async fn close(&self) -> Result<()> {
        let ticket = {
            let mut writer = self
                .inner
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Dropping the sender tells the flusher to make everything durable and stop.
            writer.wake = None;
            writer.sequence
        };
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
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        durable
    }
}
