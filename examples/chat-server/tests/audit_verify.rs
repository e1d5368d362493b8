//! `zt-chat-server audit verify` as an operator runs it, on a data directory with real audit
//! logs: OK with size and root, then the first bad index and a failing exit once tampered with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use zt_audit::checkpoint::NoteSigner;
use zt_audit::trail::{AuditConfig, AuditTrail, LogAddress, LogKind};
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Timestamp};
use zt_crypto::SigningKey;
use zt_storage::{Batch, KvStore, SledConfig, SledStore};

fn verify(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zt-chat-server"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("ZT_DATA_DIR")
        .output()
        .unwrap()
}

async fn with_store<T>(dir: &Path, f: impl AsyncFnOnce(Arc<dyn KvStore>) -> T) -> T {
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(SledConfig::new(dir)).await.unwrap());
    let out = f(store.clone()).await;
    store.close().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_ok_then_the_first_bad_index() {
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::new("zt.test/audit", SigningKey::generate()).unwrap();
    let vkey = signer.verifier_key();
    let held = with_store(dir.path(), async |store| {
        let trail = AuditTrail::new(
            store,
            signer,
            AuditConfig {
                checkpoint_every: 8,
                ..AuditConfig::default()
            },
        );
        for i in 0..40 {
            let event = AuditEvent::new(
                AuditEventKind::LoginFailed,
                Actor::Anonymous,
                Timestamp::from_unix_millis(1_764_400_000_000 + i),
            );
            trail.append(event).await.unwrap();
        }
        trail
            .checkpoint(&LogAddress {
                tenant: None,
                kind: LogKind::Security,
            })
            .await
            .unwrap()
    })
    .await;
    let checkpoint = dir.path().join("held.note");
    std::fs::write(&checkpoint, &held).unwrap();

    let out = verify(dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("OK audit/system/security: size 40, root "),
        "{stdout}"
    );
    // Piped: no progress bar at all.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held_file = checkpoint.to_str().unwrap();
    assert!(
        verify(dir.path(), &["--checkpoint", held_file, "--key", &vkey])
            .status
            .success()
    );
    // Another key does not vouch for these checkpoints.
    let stranger = NoteSigner::new("zt.test/audit", SigningKey::generate()).unwrap();
    let out = verify(dir.path(), &["--key", &stranger.verifier_key()]);
    assert_eq!(out.status.code(), Some(1));

    // Flip one byte of entry 0's canonical bytes (its last byte, in the first chunk).
    with_store(dir.path(), async |store| {
        let ns = LogAddress {
            tenant: None,
            kind: LogKind::Security,
        }
        .namespace();
        let mut key = b"b".to_vec();
        key.extend_from_slice(&0u64.to_be_bytes());
        let mut chunk = store.get(&ns, &key).await.unwrap().unwrap().value;
        let last = chunk.len() - 1;
        chunk[last] ^= 0x40;
        let mut batch = Batch::new();
        batch.put_owned(&ns, key, chunk);
        store.commit(batch).await.unwrap();
    })
    .await;
    let out = verify(dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("FAILED audit/system/security: first bad index 0: "),
        "{stdout}"
    );

    // A directory that is not there cannot be verified at all.
    let out = verify(&dir.path().join("missing"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
