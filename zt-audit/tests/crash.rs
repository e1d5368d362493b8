//! The audit log over the sled store under SIGKILL: a writing process is killed many times, and
//! after each kill every acknowledged entry is at its index and the whole log verifies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;

use zt_audit::entry;
use zt_audit::log::AuditLog;
use zt_audit::verify::{Verdict, VerifyOptions, verify_log};
use zt_core::{Actor, AuditEvent, AuditEventKind, Timestamp};
use zt_storage::{KvStore, Namespace, SledConfig, SledStore};

fn ns() -> Namespace {
    Namespace::new("audit.security").unwrap()
}

/// Small log segments, so the runs cross rotations and checkpoints.
fn config(dir: &str) -> SledConfig {
    SledConfig::new(dir).log_segment_bytes(64 * 1024)
}

fn event(round: u64, writer: u64, i: u64) -> Vec<u8> {
    entry::encode(
        &AuditEvent::new(
            AuditEventKind::LoginFailed,
            Actor::System("crash".into()),
            Timestamp::from_unix_millis(1_764_400_000_000 + i as i64),
        )
        .target(format!("round:{round}/writer:{writer}/{i}")),
    )
}

/// The child: 16 writers append forever, printing each acknowledged index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let (Ok(dir), Ok(round)) = (
        std::env::var("ZT_AUDIT_CRASH_DIR"),
        std::env::var("ZT_AUDIT_CRASH_ROUND"),
    ) else {
        return; // Only meaningful when started by `acknowledged_appends_survive_kill_9`.
    };
    let round: u64 = round.parse().unwrap();
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(config(&dir)).await.unwrap());
    let log = AuditLog::new(store, ns());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for writer in 0u64..16 {
        let (log, tx) = (log.clone(), tx.clone());
        tokio::spawn(async move {
            for i in 0u64.. {
                let index = log.append(event(round, writer, i)).await.unwrap();
                tx.send((index, writer, i)).unwrap();
            }
        });
    }
    let mut out = std::io::stdout().lock();
    while let Some((index, writer, i)) = rx.recv().await {
        writeln!(out, "ACK {index} {writer} {i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut total = 0;
    for round in 0..10u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("ZT_AUDIT_CRASH_DIR", &path)
            .env("ZT_AUDIT_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let kill_after = 1 + (round as usize * 613) % 3000;
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
            acked.push((fields[0], fields[1], fields[2]));
            if acked.len() == kill_after {
                child.kill().unwrap(); // SIGKILL: no destructor, no flush.
                break;
            }
        }
        child.wait().unwrap();
        total += acked.len();
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(config(&path)).await.unwrap());
        let log = AuditLog::new(store.clone(), ns());
        for &(index, writer, i) in &acked {
            let found = log.entry(index).await.unwrap();
            assert_eq!(
                found,
                Some(event(round, writer, i)),
                "round {round}: acknowledged entry {index} is lost or changed"
            );
        }
        let verdict = verify_log(&*store, &ns(), &VerifyOptions::default(), &mut |_, _| {})
            .await
            .unwrap();
        assert!(
            matches!(verdict, Verdict::Valid(_)),
            "round {round}: {verdict:?}"
        );
        store.close().await.unwrap();
    }
    println!("{total} acknowledged appends over 10 kills, none lost, the log verifies");
}
