//! `zt-chat-server audit verify` as an operator runs it, on a data directory with real audit
//! logs: OK with size and root, then the first bad index and a failing exit once tampered with
//! (through the keys, or by altering the sealed bytes on disk).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use secrecy::SecretString;
use zt_audit::checkpoint::NoteSigner;
use zt_audit::trail::{AuditConfig, AuditTrail, LogAddress, LogKind};
use zt_chat_server::deployment::{Deployment, OpenMode, Passphrase};
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Timestamp};
use zt_crypto::SigningKey;
use zt_storage::{Batch, KvStore};

const PASSPHRASE: &str = "the audit test passphrase";

fn verify(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zt-chat-server"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("ZT_DATA_DIR")
        .env_remove("ZT_CONFIG")
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap()
}

/// Runs `f` on the encrypted system store of the deployment in `dir` (created if missing) and on
/// the sealed store below it.
async fn with_store<T>(dir: &Path, f: impl AsyncFnOnce(Arc<dyn KvStore>, &dyn KvStore) -> T) -> T {
    let passphrase = Passphrase::Given(SecretString::from(PASSPHRASE));
    let deployment = Deployment::open(dir, &passphrase, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let out = f(deployment.system_store(), deployment.sealed_store()).await;
    deployment.close().await.unwrap();
    out
}

/// The key of the first chunk record of a log.
fn first_chunk() -> Vec<u8> {
    let mut key = b"b".to_vec();
    key.extend_from_slice(&0u64.to_be_bytes());
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_ok_then_the_first_bad_index() {
    let dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::new("zt.test/audit", SigningKey::generate()).unwrap();
    let vkey = signer.verifier_key();
    let held = with_store(dir.path(), async |store, _| {
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

    let ns = LogAddress {
        tenant: None,
        kind: LogKind::Security,
    }
    .namespace();
    // Whoever holds the keys rewrites entry 0: flip the last byte of its canonical bytes (in
    // the first chunk) and seal it again.
    let sealed_before = with_store(dir.path(), async |store, sealed| {
        let before = sealed
            .get(&ns, &first_chunk())
            .await
            .unwrap()
            .unwrap()
            .value;
        let mut chunk = store.get(&ns, &first_chunk()).await.unwrap().unwrap().value;
        let last = chunk.len() - 1;
        chunk[last] ^= 0x40;
        let mut batch = Batch::new();
        batch.put_owned(&ns, first_chunk(), chunk);
        store.commit(batch).await.unwrap();
        before
    })
    .await;
    let out = verify(dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("FAILED audit/system/security: first bad index 0: "),
        "{stdout}"
    );

    // Whoever holds only the disk alters the sealed bytes instead: the record no longer opens,
    // which fails the log too.
    with_store(dir.path(), async |_, sealed| {
        let mut bytes = sealed_before;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let mut batch = Batch::new();
        batch.put_owned(&ns, first_chunk(), bytes);
        sealed.commit(batch).await.unwrap();
    })
    .await;
    let out = verify(dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED audit/system/security: ") && stdout.contains("did not decrypt"),
        "{stdout}"
    );

    // A directory that is not there cannot be verified at all.
    let out = verify(&dir.path().join("missing"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_changes_no_byte_of_the_evidence_and_refuses_a_running_server() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let signer = NoteSigner::new("zt.test/audit", SigningKey::generate()).unwrap();
    with_store(&dir, async |store, _| {
        let trail = AuditTrail::new(store, signer, AuditConfig::default());
        for n in 0..20 {
            let event = AuditEvent::new(
                AuditEventKind::LoginSucceeded,
                Actor::System("test".into()),
                Timestamp::from_unix_millis(n),
            );
            trail.append(event).await.unwrap();
        }
        trail.checkpoint_due().await.unwrap();
    })
    .await;
    let before = common::file_contents(root.path());
    let verified = verify(&dir, &[]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let shown = Command::new(env!("CARGO_BIN_EXE_zt-chat-server"))
        .args(["identity", "show", "--data-dir"])
        .arg(&dir)
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let after = common::file_contents(root.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files appeared or vanished"
    );
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} changed", path.display());
    }
    // While a server holds the store, verification refuses instead of copying it mid-write.
    let passphrase = Passphrase::Given(SecretString::from(PASSPHRASE));
    let running = Deployment::open(&dir, &passphrase, OpenMode::Existing)
        .await
        .unwrap();
    let refused = verify(&dir, &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    running.close().await.unwrap();
}
