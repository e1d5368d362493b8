//! The chat service end to end (authorization, encryption, storage, audit), in one run beside its
//! baseline:
//! - post-and-fan-out: one 256-byte message posted through `Workspace::post` and received by
//!   1,000 realtime subscribers (1,000 users, members of the channel), on the memory store and
//!   on sled (each post a durable commit), against a bare tokio broadcast of the same payload to
//!   1,000 receiving tasks;
//! - a page of 100 messages from a channel of 100,000 (2,000 in a smoke run), against a bare
//!   scan of 100 rows of the same size from a memory store of as many.
//!
//! The audit log is zt-audit's trail over the same store as the chat data.
//!
//! `cargo bench -p zt-benches --bench chat`, then `python3 scripts/bench-ratios.py`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, broadcast};
use zt_audit::checkpoint::NoteSigner;
use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_authz::ChannelVisibility;
use zt_chat::{Caller, Chat, ChatConfig, Deps, PageRequest, Workspace};
use zt_core::identity::NewUser;
use zt_core::{ChannelId, InProcessBus, SystemClock};
use zt_crypto::{Kms as _, SigningKey};
use zt_storage::{EncryptingStore, KvKeyRecords, KvStore, MemoryStore};

const SUBSCRIBERS: usize = 1_000;
const PAYLOAD: usize = 256;
const PASSWORD: &str = "violet kettle rides at dawn";

/// Counts deliveries and wakes the poster once a message reached every subscriber.
struct Arrivals {
    count: AtomicUsize,
    all: Notify,
}

impl Arrivals {
    fn arrived(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == SUBSCRIBERS {
            self.all.notify_one();
        }
    }

    async fn wait_all(&self) {
        while self.count.load(Ordering::Acquire) < SUBSCRIBERS {
            self.all.notified().await;
        }
        self.count.store(0, Ordering::Release);
    }
}

async fn chat(inner: Arc<dyn KvStore>) -> Chat {
    let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
    let key = zt_crypto::KeyId::new("tenants").unwrap();
    kms.create_key(&key).await.unwrap();
    let keyring = Arc::new(zt_crypto::Keyring::new(
        kms,
        Arc::new(KvKeyRecords::standard(inner.clone()).unwrap()),
        key,
        zt_crypto::KeyringConfig::default(),
    ));
    // The real audit trail, over the deployment-wide store as a server keeps it.
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
    let deps = Deps::with_keyring(
        inner,
        keyring,
        audit.clone(),
        audit,
        Arc::new(InProcessBus::new(4096)),
        Arc::new(SystemClock),
    );
    let config = ChatConfig {
        // Logins are set-up here, not what is measured.
        password: zt_chat::testing::fast_passwords(),
        subscriber_queue: 4096,
        ..ChatConfig::default()
    };
    Chat::new(deps, config).unwrap()
}

fn user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: None,
        display_name: name.into(),
    }
}

/// A workspace with a private channel whose 1,000 members each hold one subscription, drained
/// by its own task, counting deliveries.
struct Room {
    _chat: Chat,
    workspace: Arc<Workspace>,
    owner: Caller,
    room: ChannelId,
    arrivals: Arc<Arrivals>,
}

async fn room(inner: Arc<dyn KvStore>) -> Room {
    let password = SecretString::from(PASSWORD);
    let chat = chat(inner).await;
    let (workspace, _) = chat
        .bootstrap("Bench", user("owner"), &password)
        .await
        .unwrap();
    let owner = workspace.login("owner", &password, None).await.unwrap().1;
    let room = workspace
        .create_channel(&owner, "town", ChannelVisibility::Private, "")
        .await
        .unwrap()
        .id;
    let arrivals = Arc::new(Arrivals {
        count: AtomicUsize::new(0),
        all: Notify::new(),
    });
    for i in 0..SUBSCRIBERS {
        let name = format!("user{i}");
        let u = workspace
            .create_user(&owner, user(&name), &password)
            .await
            .unwrap();
        workspace.add_member(&owner, room, u.id).await.unwrap();
        let (token, _) = workspace.login(&name, &password, None).await.unwrap();
        let mut feed = workspace.subscribe(&token).await.unwrap();
        let arrivals = Arc::clone(&arrivals);
        tokio::spawn(async move {
            while let Ok(event) = feed.next().await {
                if matches!(*event, zt_chat::Event::Posted(_)) {
                    arrivals.arrived();
                }
            }
        });
    }
    Room {
        _chat: chat,
        workspace,
        owner,
        room,
        arrivals,
    }
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let memory = rt.block_on(room(Arc::new(MemoryStore::new())));
    let sled: Arc<dyn KvStore> = Arc::new(
        rt.block_on(zt_storage::SledStore::open(zt_storage::SledConfig::new(
            dir.path(),
        )))
        .unwrap(),
    );
    let on_sled = rt.block_on(room(sled));
    let body = "x".repeat(PAYLOAD);

    let mut group = c.benchmark_group("chat");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    for (name, world) in [
        ("post_and_fan_out_1000", &memory),
        ("post_and_fan_out_1000_sled", &on_sled),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        world
                            .workspace
                            .post(&world.owner, world.room, &body, None, &[])
                            .await
                            .unwrap();
                        world.arrivals.wait_all().await;
                    }
                    start.elapsed()
                })
            });
        });
    }

    // The baseline: the same payload through a bare broadcast to 1,000 receiving tasks.
    let (tx, _) = broadcast::channel::<Arc<Vec<u8>>>(4096);
    let received = Arc::new(Arrivals {
        count: AtomicUsize::new(0),
        all: Notify::new(),
    });
    rt.block_on(async {
        for _ in 0..SUBSCRIBERS {
            let mut rx = tx.subscribe();
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                while rx.recv().await.is_ok() {
                    received.arrived();
                }
            });
        }
    });
    let payload = Arc::new(vec![b'x'; PAYLOAD]);
    group.bench_function("bare_broadcast_1000", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(Arc::clone(&payload)).unwrap();
                    received.wait_all().await;
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    // A page of 100 from a channel of 100,000 (in memory).
    let total = if zt_benches::smoke() { 2_000 } else { 100_000 };
    let (workspace, owner) = (Arc::clone(&memory.workspace), memory.owner);
    let big = rt
        .block_on(workspace.create_channel(&owner, "archive", ChannelVisibility::Public, ""))
        .unwrap();
    let big_id = big.id;
    let filled = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..8usize {
            let workspace = Arc::clone(&workspace);
            tasks.push(tokio::spawn(async move {
                for i in (w..total).step_by(8) {
                    workspace
                        .post(&owner, big_id, &format!("message {i}"), None, &[])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    eprintln!(
        "chat: posted {total} messages in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let middle = rt
        .block_on(workspace.messages(&owner, big.id, PageRequest::Latest { limit: 100 }))
        .unwrap()
        .older
        .unwrap();
    let mut group = c.benchmark_group("chat");
    group.throughput(Throughput::Elements(100));
    group.bench_function("list_100_latest", |b| {
        b.iter(|| {
            rt.block_on(workspace.messages(&owner, big.id, PageRequest::Latest { limit: 100 }))
                .unwrap()
        });
    });
    group.bench_function("list_100_before_cursor", |b| {
        b.iter(|| {
            rt.block_on(workspace.messages(
                &owner,
                big.id,
                PageRequest::Before {
                    id: middle,
                    limit: 100,
                },
            ))
            .unwrap()
        });
    });
    // The floor: a bare reverse scan of 100 rows of about the stored size (a sealed message)
    // from 100,000 in a memory store, no decryption, no decoding, no authorization.
    let raw = MemoryStore::new();
    let raw_ns = zt_storage::Namespace::new("bench.raw").unwrap();
    rt.block_on(async {
        for chunk in (0..total as u64).collect::<Vec<_>>().chunks(1_000) {
            let mut batch = zt_storage::Batch::new();
            for i in chunk {
                let key = [&[7u8; 16][..], &i.to_be_bytes(), &[0u8; 8]].concat();
                batch.put(&raw_ns, &key, &[0x5a; 180]);
            }
            raw.commit(batch).await.unwrap();
        }
    });
    group.bench_function("raw_scan_100", |b| {
        b.iter(|| {
            rt.block_on(raw.scan(
                &raw_ns,
                &zt_storage::KeyRange::all(),
                zt_storage::ScanOptions::new().reverse(true).limit(101),
            ))
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
