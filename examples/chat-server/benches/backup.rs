//! Backup and restore of a data directory of at least 1 GiB against the `age` command on the
//! same bytes, in the same run (issue 20, item 8).
//!
//! - **the data directory**: a deployment made by the real server (first start: KMS, identity,
//!   default workspace), then filled through its store with 16,384 rows of 64 KiB of
//!   incompressible bytes (as sealed values are), so the directory holds a little over 1 GiB.
//! - **ours**: `zt-chat-server backup create` and `backup restore ID --into NEW` (the offline
//!   commands: the KMS path, every row exported as of one moment, sealed to the backup key and
//!   a recovery recipient, signed; restored into a new sled store, verified to the end).
//! - **the peer**: what a skilled operator would run without zt, streaming like ours (no
//!   temporary tar file): `tar -cf - -C DATA . | age -r RECIPIENT -o OUT` and
//!   `age -d -i KEY OUT | tar -xf - -C NEW`, each in one `bash -c`.
//!
//! Each command runs under `/usr/bin/time -f "%e %M"` (wall seconds; peak resident memory of
//! the largest process, in KiB), alternating ours and the peer's, three times each (once in a
//! smoke run, over 16 MiB). Throughput is the data directory's bytes over the wall time, for
//! both; the figures are the medians. Needs the `age` command (`ZT_TEST_AGE_BIN`, or `age` on
//! the path). `cargo bench -p zt-chat-server --bench backup`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "a benchmark binary reports failures by panicking and prints its figures"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use secrecy::{ExposeSecret as _, SecretString};
use zt_chat_server::deployment::{Deployment, OpenMode, Passphrase};
use zt_crypto::archive::ArchiveIdentity;
use zt_storage::{Batch, KvStore as _, Namespace};

const PASSPHRASE: &str = "the backup bench passphrase";
const ROW: usize = 64 * 1024;

fn smoke() -> bool {
    std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench")
}

/// Wall seconds and peak memory (KiB) of one command under `/usr/bin/time`.
fn timed(program: &str, args: &[&str]) -> (f64, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", program])
        .args(args)
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let mut fields = last.split_whitespace();
    let wall: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap();
    let peak: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap();
    (wall, peak)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Incompressible bytes (xorshift), different for every row.
fn fill_row(seed: u64, out: &mut [u8]) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::main]
async fn main() {
    let age = std::env::var("ZT_TEST_AGE_BIN").unwrap_or_else(|_| "age".into());
    if Command::new(&age).arg("--version").output().is_err() {
        eprintln!("skipped: no age command (set ZT_TEST_AGE_BIN)");
        return;
    }
    let rows: u64 = if smoke() { 256 } else { 16_384 };
    let runs = if smoke() { 1 } else { 3 };
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backups = root.path().join("backups");
    let identity = ArchiveIdentity::generate();
    let key_file = root.path().join("recovery.txt");
    std::fs::write(
        &key_file,
        format!("{}\n", identity.to_secret_string().expose_secret()),
    )
    .unwrap();
    let recipient = identity.recipient().to_string();
    let config = root.path().join("zt.toml");
    std::fs::write(
        &config,
        format!(
            "[backups]\ndir = \"{}\"\nrecovery_recipients = [\"{recipient}\"]\n",
            path(&backups)
        ),
    )
    .unwrap();

    // The deployment, made by the server's first start, then filled through its store.
    let mut command = common::server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE);
    let (mut child, _) = common::start(command);
    common::signal(&child, "TERM");
    assert!(common::wait_exit(&mut child).success());
    let passphrase = Passphrase::Given(SecretString::from(PASSPHRASE));
    let deployment = Deployment::open(&data, &passphrase, OpenMode::Existing)
        .await
        .unwrap();
    let store = deployment.sealed_store().clone();
    let namespace = Namespace::new("bench.fill").unwrap();
    let mut row = vec![0u8; ROW];
    for first in (0..rows).step_by(16) {
        let mut batch = Batch::new();
        for i in first..(first + 16).min(rows) {
            fill_row(i, &mut row);
            batch.put(&namespace, &i.to_be_bytes(), &row);
        }
        store.commit(batch).await.unwrap();
    }
    deployment.close().await.unwrap();
    let bytes = dir_bytes(&data);
    let mib = bytes as f64 / f64::from(1 << 20);
    eprintln!("data directory: {bytes} bytes ({mib:.0} MiB), {rows} rows of {ROW} bytes");

    let server = common::server_binary();
    let server = path(&server).to_owned();
    let sealed = root.path().join("peer.tar.age");
    let (mut ours_backup, mut peer_backup) = (Vec::new(), Vec::new());
    let (mut ours_restore, mut peer_restore) = (Vec::new(), Vec::new());
    let mut last_id = String::new();
    for run in 0..runs {
        // Ours: a backup.
        let before: Vec<PathBuf> = std::fs::read_dir(&backups)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        for old in before {
            if old
                .extension()
                .is_some_and(|e| e == "zt-backup" || e == "json")
            {
                std::fs::remove_file(old).unwrap();
            }
        }
        ours_backup.push(timed(
            &server,
            &[
                "backup",
                "create",
                "--config",
                path(&config),
                "--data-dir",
                path(&data),
            ],
        ));
        let list = Command::new(&server)
            .args([
                "backup",
                "list",
                "--config",
                path(&config),
                "--data-dir",
                path(&data),
            ])
            .output()
            .unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        last_id = listed["id"].as_str().unwrap().to_owned();
        // The peer: tar piped into age.
        let _ = std::fs::remove_file(&sealed);
        let script = format!(
            "tar -cf - -C {} . | {age} -r {recipient} -o {}",
            path(&data),
            path(&sealed)
        );
        peer_backup.push(timed("bash", &["-c", &script]));

        // Ours: a restore into a new directory.
        let into = root.path().join(format!("restored-{run}"));
        ours_restore.push(timed(
            &server,
            &[
                "backup",
                "restore",
                &last_id,
                "--into",
                path(&into),
                "--config",
                path(&config),
                "--data-dir",
                path(&data),
            ],
        ));
        std::fs::remove_dir_all(&into).unwrap();
        // The peer: age piped into tar.
        let out = root.path().join(format!("peer-{run}"));
        std::fs::create_dir(&out).unwrap();
        let script = format!(
            "{age} -d -i {} {} | tar -xf - -C {}",
            path(&key_file),
            path(&sealed),
            path(&out)
        );
        peer_restore.push(timed("bash", &["-c", &script]));
        std::fs::remove_dir_all(&out).unwrap();
    }
    let archive = dir_bytes(&backups);
    let report = |name: &str, ours: &[(f64, u64)], peer: &[(f64, u64)]| {
        let ours_wall = median(ours.iter().map(|r| r.0).collect());
        let peer_wall = median(peer.iter().map(|r| r.0).collect());
        let ours_peak = median(ours.iter().map(|r| r.1 as f64).collect()) / 1024.0;
        let peer_peak = median(peer.iter().map(|r| r.1 as f64).collect()) / 1024.0;
        eprintln!(
            "{name}: ours {:.1} MiB/s ({ours_wall:.2} s, peak {ours_peak:.0} MiB), age {:.1} MiB/s \
             ({peer_wall:.2} s, peak {peer_peak:.0} MiB): throughput {:.2}x of age's",
            mib / ours_wall.max(0.001),
            mib / peer_wall.max(0.001),
            peer_wall / ours_wall.max(0.001),
        );
    };
    eprintln!("backup {last_id}: {archive} bytes in the backup directory");
    report("backup", &ours_backup, &peer_backup);
    report("restore", &ours_restore, &peer_restore);
}
