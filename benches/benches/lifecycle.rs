//! The data lifecycle (issue 19), on durable sled with the real audit trail, each figure beside
//! its baseline from the same run:
//!
//! - **retention**: a run over a channel of 200,000 messages past their period (2,000 in a smoke
//!   run), with a poster beside it: messages removed per second, against raw batched deletes (as
//!   many keys a commit as the run's batches) of as many rows of the same key and value sizes on
//!   the same sled store, with the same poster beside them, and alone;
//! - **posting during a run**: the p99 latency of posts to another channel of the workspace while
//!   the run goes, against the same posts with no run (and, for reference, while the raw deletes
//!   go, beside a second poster, and beside one thread that only spins on the CPU); the store
//!   settles for two seconds before each measured phase;
//! - **wipe**: the time from the start of a wipe's execution to the moment its keys are destroyed
//!   (every copy unreadable), for a workspace of 10,000 and one of 200,000 messages (500 and
//!   2,000 in a smoke run); the removal of the records after it is printed too.
//!
//! `cargo bench -p zt-benches --bench lifecycle` prints the figures (not a criterion bench: each
//! measures one run, which cannot be repeated on the same data).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "a benchmark stops on a failed set-up step and prints its figures"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zt_audit::checkpoint::NoteSigner;
use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_authz::ChannelVisibility;
use zt_chat::{
    Approved, Caller, Chat, ChatConfig, Deps, RetentionPolicy, RetentionTarget, Workspace,
};
use zt_core::identity::NewUser;
use zt_core::{ChannelId, InProcessBus, ManualClock, Timestamp};
use zt_crypto::{KeyringEvent, Kms as _, SigningKey};
use zt_storage::{Batch, EncryptingStore, KvKeyRecords, KvStore, Namespace};

const PASSWORD: &str = "violet kettle rides at dawn";
const DAY: Duration = Duration::from_secs(24 * 3600);
/// Posters filling a channel at once.
const FILLERS: usize = 32;

struct World {
    chat: Arc<Chat>,
    clock: Arc<ManualClock>,
    inner: Arc<dyn KvStore>,
    /// When the keyring reported each tenant's keys destroyed.
    destroyed: Arc<Mutex<Vec<(String, Instant)>>>,
}

async fn world(inner: Arc<dyn KvStore>) -> World {
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let key = zt_crypto::KeyId::new("tenants").unwrap();
    kms.create_key(&key).await.unwrap();
    let destroyed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&destroyed);
    let keyring = Arc::new(
        zt_crypto::Keyring::new(
            kms,
            Arc::new(KvKeyRecords::standard(inner.clone()).unwrap()),
            key,
            zt_crypto::KeyringConfig::default().kms_key_per_tenant(true),
        )
        .with_events(Arc::new(move |event| {
            if let KeyringEvent::TenantDestroyed { tenant } = event {
                seen.lock().unwrap().push((tenant, Instant::now()));
            }
        })),
    );
    let system = Arc::new(EncryptingStore::new(
        inner.clone(),
        keyring.clone(),
        zt_chat::SYSTEM_TENANT,
    ));
    let audit = Arc::new(AuditTrail::new(
        system,
        NoteSigner::new("zt.bench/audit", SigningKey::generate()).unwrap(),
        AuditConfig::default(),
    ));
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_764_400_000_000,
    )));
    let deps = Deps::with_keyring(
        inner.clone(),
        keyring,
        audit.clone(),
        audit,
        Arc::new(InProcessBus::new(4096)),
        clock.clone(),
    );
    let mut config = ChatConfig {
        password: zt_chat::testing::fast_passwords(),
        wipe_delay_floor: Duration::from_secs(60),
        ..ChatConfig::default()
    };
    config.retention.batch = batch_size();
    World {
        chat: Arc::new(Chat::new(deps, config).unwrap()),
        clock,
        inner,
        destroyed,
    }
}

/// The retention batch: the library's default, or `ZT_BENCH_RETENTION_BATCH` to compare sizes;
/// the raw baseline deletes as many keys a commit.
fn batch_size() -> usize {
    std::env::var("ZT_BENCH_RETENTION_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(zt_chat::RetentionConfig::default().batch)
}

fn user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: None,
        display_name: name.into(),
    }
}

/// A workspace with its owner, a second administrator, and a public channel.
async fn workspace(w: &World, name: &str) -> (Arc<Workspace>, Caller, ChannelId) {
    let password = SecretString::from(PASSWORD);
    let (workspace, _) = w
        .chat
        .bootstrap(name, user("owner"), &password)
        .await
        .unwrap();
    let owner = workspace.login("owner", &password, None).await.unwrap().1;
    let second = workspace
        .create_user(&owner, user("second"), &password)
        .await
        .unwrap();
    workspace
        .change_access(
            &owner,
            zt_authz::Change::Grant {
                user: second.id,
                role: zt_authz::SystemRole::Admin.id(),
                at: zt_authz::Scope::Tenant,
            },
        )
        .await
        .unwrap();
    let room = workspace
        .create_channel(&owner, "archive", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    (workspace, owner, room)
}

async fn login(workspace: &Workspace, name: &str) -> Caller {
    workspace
        .login(name, &SecretString::from(PASSWORD), None)
        .await
        .unwrap()
        .1
}

/// Posts `total` messages of about 200 bytes to `room`, `FILLERS` at a time.
async fn fill(workspace: &Arc<Workspace>, owner: Caller, room: ChannelId, total: usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for f in 0..FILLERS {
        let workspace = Arc::clone(workspace);
        tasks.push(tokio::spawn(async move {
            for i in (f..total).step_by(FILLERS) {
                let body = format!("{i:>8} {}", "m".repeat(190));
                workspace
                    .post(&owner, room, &body, None, &[])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!(
        "lifecycle: posted {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(at).copied().unwrap_or_default()
}

/// Lets the store settle before a measured phase: the sled store's applier may still be
/// working off earlier writes (reads and commits do not wait for it, but it takes a core), and
/// each phase is to be measured on its own.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Spins one thread on the CPU until the returned flag is set: what any CPU-bound work beside
/// the posts costs them on this machine.
fn spin() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut turns = 0_u64;
        while !flag.load(Ordering::Relaxed) {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
        turns
    });
    (stop, thread)
}

/// Posts to `room` one after another until `stop`, returning each post's latency.
async fn post_until(
    workspace: Arc<Workspace>,
    caller: Caller,
    room: ChannelId,
    stop: Arc<AtomicBool>,
    at_most: usize,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Acquire) && samples.len() < at_most {
        let start = Instant::now();
        workspace
            .post(&caller, room, "a live message of modest size", None, &[])
            .await
            .unwrap();
        samples.push(start.elapsed());
    }
    samples
}

/// Posts to a channel one after another beside other work, until stopped.
struct Poster {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Duration>>,
}

impl Poster {
    fn start(workspace: &Arc<Workspace>, caller: Caller, room: ChannelId) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(post_until(
            Arc::clone(workspace),
            caller,
            room,
            Arc::clone(&stop),
            usize::MAX,
        ));
        Poster { stop, task }
    }

    /// Stops it; each post's latency.
    async fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Release);
        self.task.await.unwrap()
    }
}

async fn retention(w: &World, total: usize) {
    let (workspace, owner, old) = workspace(w, "Retention").await;
    let live = workspace
        .create_channel(&owner, "live", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    fill(&workspace, owner, old, total).await;
    workspace
        .set_retention(
            &owner,
            RetentionTarget::Workspace,
            Some(RetentionPolicy {
                messages: Some(30 * DAY),
                files: None,
            }),
        )
        .await
        .unwrap();
    // A month on, the archive is past its period; the live channel's new posts are not.
    w.clock.advance(31 * DAY);
    let owner = login(&workspace, "owner").await;

    // Posting with no run: about as many posts as the run sees (its p99 then rests on as many
    // slow ones), and as many for each reference.
    let quiet_posts = if zt_benches::smoke() { 50 } else { 6_000 };
    let posts = || {
        post_until(
            Arc::clone(&workspace),
            owner,
            live,
            Arc::new(AtomicBool::new(false)),
            quiet_posts,
        )
    };
    settle().await;
    let mut quiet = posts().await;
    // For reference: the same posts beside one thread that only spins on the CPU.
    let (spinning, spinner) = spin();
    let mut spun = posts().await;
    spinning.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    // For reference: the same posts beside a second poster writing to the archive (no run): what
    // any other writer of the store costs them.
    settle().await;
    let second = Poster::start(&workspace, owner, old);
    let mut beside = posts().await;
    let archive_posts = second.stop().await.len();

    // The run, with a poster beside it.
    settle().await;
    let poster = Poster::start(&workspace, owner, live);
    let started = Instant::now();
    let report = workspace.run_retention(&owner).await.unwrap();
    let took = started.elapsed();
    let mut busy = poster.stop().await;
    let removed = report.totals().messages;
    assert_eq!(
        removed as usize, total,
        "every message past its period went"
    );
    let zt_rate = removed as f64 / took.as_secs_f64();

    // The baseline: as many rows of the same sizes (a 32-byte key, a value the size of a sealed
    // message) deleted by key in batches of the run's size, on the same store: once with the
    // same poster beside it (the run's conditions), once alone.
    let raw = Namespace::new("bench.raw_retention").unwrap();
    raw_rows(&*w.inner, &raw, 0, total).await;
    settle().await;
    let poster = Poster::start(&workspace, owner, live);
    let raw_loaded = raw_deletes(&*w.inner, &raw, 0, total).await;
    let mut raw_busy = poster.stop().await;
    raw_rows(&*w.inner, &raw, 1, total).await;
    settle().await;
    let raw_alone = raw_deletes(&*w.inner, &raw, 1, total).await;

    let (q50, q99) = (percentile(&mut quiet, 0.5), percentile(&mut quiet, 0.99));
    let (b50, b99) = (percentile(&mut busy, 0.5), percentile(&mut busy, 0.99));
    let (r50, r99) = (
        percentile(&mut raw_busy, 0.5),
        percentile(&mut raw_busy, 0.99),
    );
    let (s50, s99) = (percentile(&mut beside, 0.5), percentile(&mut beside, 0.99));
    let (c50, c99) = (percentile(&mut spun, 0.5), percentile(&mut spun, 0.99));
    eprintln!(
        "lifecycle/retention: {removed} messages in {:.2} s ({:.0}/s, {} batches), a poster \
         beside it; raw batched deletes with the same poster {:.0}/s, ratio {:.2}x; raw \
         batched deletes alone {:.0}/s, ratio {:.2}x",
        took.as_secs_f64(),
        zt_rate,
        report.batches,
        raw_loaded,
        zt_rate / raw_loaded,
        raw_alone,
        zt_rate / raw_alone
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "lifecycle/posting: p50 {:.2} ms, p99 {:.2} ms with no run ({} posts); p50 {:.2} ms, \
         p99 {:.2} ms during the run ({} posts), p99 ratio {:.2}x; p50 {:.2} ms, p99 {:.2} ms \
         during the raw deletes ({} posts), p99 ratio {:.2}x",
        ms(q50),
        ms(q99),
        quiet.len(),
        ms(b50),
        ms(b99),
        busy.len(),
        b99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
        ms(r50),
        ms(r99),
        raw_busy.len(),
        r99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
    );
    eprintln!(
        "lifecycle/posting: p50 {:.2} ms, p99 {:.2} ms beside a second poster and no run ({} \
         posts, {archive_posts} by the second), p99 ratio {:.2}x",
        ms(s50),
        ms(s99),
        beside.len(),
        s99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
    );
    eprintln!(
        "lifecycle/posting: p50 {:.2} ms, p99 {:.2} ms beside one thread spinning on the CPU and \
         no run ({} posts), p99 ratio {:.2}x",
        ms(c50),
        ms(c99),
        spun.len(),
        c99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
    );
}

/// The key of raw row `i` of set `set` (32 bytes, as a message's).
fn raw_key(set: u8, i: u64) -> Vec<u8> {
    [&[set; 16][..], &i.to_be_bytes(), &[0u8; 8]].concat()
}

/// Puts `total` rows of a sealed message's size under 32-byte keys of `raw` (set `set` of
/// them), for [`raw_deletes`].
async fn raw_rows(store: &dyn KvStore, raw: &Namespace, set: u8, total: usize) {
    let value = vec![0x5a_u8; 320];
    for chunk in (0..total as u64).collect::<Vec<_>>().chunks(500) {
        let mut batch = Batch::new();
        for i in chunk {
            batch.put(raw, &raw_key(set, *i), &value);
        }
        store.commit(batch).await.unwrap();
    }
}

/// Deletes the rows [`raw_rows`] put, by key in batches of the run's size; returns the deletes
/// per second.
async fn raw_deletes(store: &dyn KvStore, raw: &Namespace, set: u8, total: usize) -> f64 {
    let started = Instant::now();
    for chunk in (0..total as u64).collect::<Vec<_>>().chunks(batch_size()) {
        let mut batch = Batch::new();
        for i in chunk {
            batch.delete(raw, &raw_key(set, *i));
        }
        store.commit(batch).await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Fills a workspace with `total` messages, schedules, approves and runs its wipe; returns the
/// time to unreadable and the time of the whole wipe.
async fn wipe(w: &World, name: &str, total: usize) -> (Duration, Duration) {
    let (workspace, owner, room) = workspace(w, name).await;
    fill(&workspace, owner, room, total).await;
    let second = login(&workspace, "second").await;
    let schedule = workspace
        .schedule_wipe(&owner, Duration::from_secs(60))
        .await
        .unwrap();
    let approved = workspace.approve(&second, schedule.approval).await.unwrap();
    assert!(
        matches!(approved, Approved::WipeApproved(_)),
        "{approved:?}"
    );
    w.clock.advance(Duration::from_secs(120));
    let tenant = workspace.tenant().to_string();
    drop(workspace);
    // Both wipes start on a settled store: the sled store's applier may still be working off
    // earlier writes (reads do not wait for it, but it takes a core).
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let ran = w.chat.run_wipes().await.unwrap();
    let whole = started.elapsed();
    for (_, result) in ran {
        result.unwrap();
    }
    let at = w
        .destroyed
        .lock()
        .unwrap()
        .iter()
        .find(|(t, _)| *t == tenant)
        .map(|(_, at)| *at)
        .unwrap();
    (at.duration_since(started), whole)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smoke = zt_benches::smoke();
    rt.block_on(async {
        let sled: Arc<dyn KvStore> = Arc::new(
            zt_storage::SledStore::open(zt_storage::SledConfig::new(dir.path()))
                .await
                .unwrap(),
        );
        let w = world(sled).await;
        retention(&w, if smoke { 2_000 } else { 200_000 }).await;
        let (small, large) = if smoke {
            (500, 2_000)
        } else {
            (10_000, 200_000)
        };
        let (small_unreadable, small_whole) = wipe(&w, "Small", small).await;
        let (large_unreadable, large_whole) = wipe(&w, "Large", large).await;
        eprintln!(
            "lifecycle/wipe: time to unreadable {:.2} ms at {small} messages, {:.2} ms at \
             {large}; ratio {:.2}x (whole wipe with the removal: {:.2} s and {:.2} s)",
            small_unreadable.as_secs_f64() * 1e3,
            large_unreadable.as_secs_f64() * 1e3,
            large_unreadable.as_secs_f64() / small_unreadable.as_secs_f64().max(1e-9),
            small_whole.as_secs_f64(),
            large_whole.as_secs_f64()
        );
    });
}
