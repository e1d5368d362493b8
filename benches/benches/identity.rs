//! Identity on sled behind the encrypting store:
//! - session validation, cached and uncached (on one core);
//! - password login against raw argon2id verification with the same parameters (OWASP minimum);
//! - validation latency (p50, p99) while a flood of wrong-password logins runs on the same
//!   runtime (printed by the `validate_under_login_flood` group as extra lines).
//!
//! `cargo bench -p zt-benches --bench identity`, then `python3 scripts/bench-ratios.py`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordVerifier as _, phc::PasswordHash};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use tokio::runtime::Runtime;
use zt_core::identity::{
    Authenticator, LockoutPolicy, NewUser, PasswordConfig, PasswordHasher, SessionKind,
    SessionToken, Sessions, SignInLimits, TenantContext, Users,
};
use zt_core::{Actor, InProcessBus, SystemClock, TenantId};
use zt_crypto::Kms as _;
use zt_storage::{EncryptingStore, KvKeyRecords, KvStore, Namespace, SledConfig, SledStore};

const PASSWORD: &str = "violet kettle rides at dawn";

struct World {
    _dir: tempfile::TempDir,
    sessions: Arc<Sessions>,
    auth: Arc<Authenticator>,
    tokens: Vec<SessionToken>,
    phc: String,
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

/// A lockout policy that never locks.
fn never_locks() -> LockoutPolicy {
    let mut policy = LockoutPolicy::default();
    for rule in [&mut policy.pair, &mut policy.account, &mut policy.address] {
        rule.threshold = u32::MAX;
    }
    policy
}

fn world(rt: &Runtime, sessions_count: usize) -> World {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn KvStore> =
            Arc::new(SledStore::open(SledConfig::new(dir.path())).await.unwrap());
        let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
        let key = zt_crypto::KeyId::new("tenants").unwrap();
        kms.create_key(&key).await.unwrap();
        let keyring = Arc::new(zt_crypto::Keyring::new(
            kms,
            Arc::new(KvKeyRecords::new(inner.clone(), ns("zt.keys"))),
            key,
            zt_crypto::KeyringConfig::default(),
        ));
        let store = zt_core::identity::blind_identity(
            EncryptingStore::new(inner, keyring, "tenant-1").reserve_namespace(ns("zt.keys")),
        )
        .unwrap();
        let store: Arc<dyn KvStore> = Arc::new(store);
        let tenant = TenantId::from_bytes([1; 16]);
        let clock = Arc::new(SystemClock);
        let audit = Arc::new(zt_core::testing::NullSink);
        let bus = Arc::new(InProcessBus::default());
        let ctx = TenantContext {
            store,
            tenant,
            clock,
            audit,
            bus,
        };
        let users = Arc::new(Users::new(ctx.clone()).unwrap());
        // The sign-in limits are lifted: these benches measure what a login and a flood of them
        // cost once admitted (the limits' own figure is the server's `signin` bench).
        let unlimited = SignInLimits {
            per_address_per_second: Some(1e12),
            per_address_burst: u32::MAX,
            max_waiting: Some(usize::MAX),
        };
        let hasher = Arc::new(
            PasswordHasher::new(PasswordConfig {
                sign_in: unlimited,
                ..PasswordConfig::default()
            })
            .unwrap(),
        );
        let auth = Arc::new(
            Authenticator::new(
                ctx.clone(),
                users.clone(),
                hasher.clone(),
                // No lock either: every flooding attempt runs its hash, the worst case.
                never_locks(),
            )
            .unwrap(),
        );
        let sessions = Arc::new(Sessions::new(ctx, users.clone()).await.unwrap());
        let admin = Actor::System("bench".into());
        let alice = users
            .create(
                &admin,
                NewUser {
                    username: "alice".into(),
                    email: None,
                    display_name: "Alice".into(),
                },
            )
            .await
            .unwrap();
        auth.set_password(&admin, alice.id, &SecretString::from(PASSWORD))
            .await
            .unwrap();
        let mut tokens = Vec::new();
        for _ in 0..sessions_count {
            tokens.push(
                sessions
                    .create(alice.id, SessionKind::Interactive)
                    .await
                    .unwrap()
                    .0,
            );
        }
        let phc = hasher.hash(&SecretString::from(PASSWORD)).await.unwrap();
        World {
            _dir: dir,
            sessions,
            auth,
            tokens,
            phc,
        }
    })
}

fn one_core() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn validate(c: &mut Criterion) {
    let rt = one_core();
    let w = world(&rt, 1000);
    let mut group = c.benchmark_group("identity/validate");
    group.throughput(Throughput::Elements(1));
    let token = &w.tokens[0];
    rt.block_on(w.sessions.validate(token)).unwrap();
    group.bench_function("cached_one_core", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    w.sessions.validate(token).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    let mut i = 0usize;
    group.bench_function("uncached_sled", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    w.sessions.clear_cache();
                    i = (i + 1) % w.tokens.len();
                    let start = Instant::now();
                    w.sessions.validate(&w.tokens[i]).await.unwrap();
                    spent += start.elapsed();
                }
                spent
            })
        })
    });
    group.finish();
}

fn login(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let w = Arc::new(world(&rt, 0));
    let mut group = c.benchmark_group("identity/login");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let phc = w.phc.clone();
    // The baseline: argon2id verifications of the same hash, one per core at a time.
    group.bench_function("raw_argon2id_verify", |b| {
        b.iter_custom(|iters| {
            let phc = phc.clone();
            zt_benches::time_concurrent(&rt, cores, iters, move |_, _| {
                let phc = phc.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let parsed = PasswordHash::new(&phc).unwrap();
                        argon2::Argon2::default()
                            .verify_password(PASSWORD.as_bytes(), &parsed)
                            .unwrap();
                    })
                    .await
                    .unwrap();
                }
            })
        })
    });
    group.bench_function("password_login", |b| {
        b.iter_custom(|iters| {
            let w = w.clone();
            zt_benches::time_concurrent(&rt, cores * 4, iters, move |_, _| {
                let w = w.clone();
                async move {
                    w.auth
                        .login("alice", &SecretString::from(PASSWORD), None)
                        .await
                        .unwrap();
                }
            })
        })
    });
    group.finish();
}

/// Validation latency while wrong-password logins flood the same runtime. Criterion reports the
/// mean; the percentiles are printed.
fn validate_under_flood(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let w = Arc::new(world(&rt, 1000));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..64)
        .map(|n| {
            let (w, stop) = (w.clone(), stop.clone());
            rt.spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let source = std::net::IpAddr::from([10, 1, (n / 256) as u8, (n % 256) as u8]);
                    let _ = w
                        .auth
                        .login(
                            "alice",
                            &SecretString::from("wrong password!"),
                            Some(source),
                        )
                        .await;
                    // A refused attempt (limited or locked) runs no hash and may complete
                    // without suspending; attempts arriving over a network would yield here.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut group = c.benchmark_group("identity/validate_under_login_flood");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut latencies = Vec::new();
    group.bench_function("validate", |b| {
        b.iter_custom(|iters| {
            // The validations run as a task on the flooded runtime's worker threads.
            let w = w.clone();
            let task = rt.spawn(async move {
                let mut took = Vec::with_capacity(iters as usize);
                for n in 0..iters as usize {
                    let start = Instant::now();
                    w.sessions
                        .validate(&w.tokens[n % w.tokens.len()])
                        .await
                        .unwrap();
                    took.push(start.elapsed());
                }
                took
            });
            let took = rt.block_on(task).unwrap();
            let spent = took.iter().sum();
            // A sample of each run is enough for the percentiles.
            latencies.extend(took.into_iter().step_by(16));
            spent
        })
    });
    group.finish();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in flood {
        rt.block_on(task).unwrap();
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    if !latencies.is_empty() {
        println!(
            "identity/validate_under_login_flood: {} sampled validations, p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            at(0.50),
            at(0.99),
            at(1.0)
        );
    }
}

criterion_group!(benches, validate, login, validate_under_flood);
criterion_main!(benches);
