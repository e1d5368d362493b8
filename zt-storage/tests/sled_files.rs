//! The sled backend against its files: damage, foreign data, locking, permissions, and crashes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]
#![cfg(feature = "sled")]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};

use zt_storage::{Batch, ErrorKind, KvStore, Namespace, SledConfig, SledStore};

fn ns() -> Namespace {
    Namespace::new("files").unwrap()
}

async fn write_some(dir: &std::path::Path) {
    let store = SledStore::open(SledConfig::new(dir)).await.unwrap();
    for i in 0u32..200 {
        let mut batch = Batch::new();
        batch.put(&ns(), &i.to_be_bytes(), &[7u8; 300]);
        store.commit(batch).await.unwrap();
    }
    store.close().await.unwrap();
}

/// Every file sled wrote, largest first.
fn files_of(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_give_an_error_not_a_panic() {
    // Several kinds of damage to each file: garbage over the start, truncation, zeroed middle.
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("garbage head", |b| {
            for (i, byte) in b.iter_mut().take(4096).enumerate() {
                *byte = (i * 7 + 13) as u8;
            }
        }),
        ("truncated", |b| b.truncate(b.len() / 3)),
        ("zeroed middle", |b| {
            let mid = b.len() / 2;
            let end = (mid + 4096).min(b.len());
            b[mid..end].fill(0);
        }),
    ];
    let template = tempfile::tempdir().unwrap();
    write_some(template.path()).await;
    let files = files_of(template.path());
    assert!(!files.is_empty());
    let mut outcomes = Vec::new();
    for file in &files {
        for (name, damage) in damages {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            let target = dir.path().join(file.strip_prefix(template.path()).unwrap());
            let mut bytes = std::fs::read(&target).unwrap();
            damage(&mut bytes);
            std::fs::write(&target, &bytes).unwrap();
            // Must return, never unwind out of open.
            let opened = SledStore::open(SledConfig::new(dir.path())).await;
            match opened {
                Ok(store) => {
                    // sled may not notice damage in parts it has not read yet; reading must
                    // still give values or typed errors.
                    let (mut errors, mut present) = (0, 0);
                    for i in 0u32..200 {
                        match store.get(&ns(), &i.to_be_bytes()).await {
                            Ok(Some(_)) => present += 1,
                            Ok(None) => {}
                            Err(_) => errors += 1,
                        }
                    }
                    store.close().await.ok();
                    // Damage sled did not notice must not have cost any acknowledged data.
                    assert!(
                        present == 200 || errors > 0,
                        "{name} on {}: silently lost {} values",
                        file.display(),
                        200 - present
                    );
                    outcomes.push(format!(
                        "{}/{name}: opened, {present} present, {errors} read errors",
                        file.display()
                    ));
                }
                Err(e) => {
                    assert!(
                        matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::Backend),
                        "{name} on {}: unexpected kind {e}",
                        file.display()
                    );
                    outcomes.push(format!("{}/{name}: {:?}", file.display(), e.kind()));
                }
            }
        }
    }
    println!("{}", outcomes.join("\n"));
    assert!(
        outcomes.iter().any(|o| o.ends_with("Corrupt")),
        "some damage must be reported as Corrupt: {outcomes:#?}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_foreign_sled_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"someone else's", b"data").unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(SledConfig::new(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
}

#[tokio::test]
async fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"\x00format", &99u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(SledConfig::new(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("99"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_is_unavailable_and_close_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    let other_handle = first.clone();
    let err = SledStore::open(SledConfig::new(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    first.close().await.unwrap();
    // Another handle of the closed store is still alive, yet the directory is free.
    let mut reopened = None;
    for _ in 0..100 {
        match SledStore::open(SledConfig::new(dir.path())).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(reopened.is_some(), "close did not release the directory");
    assert_eq!(
        other_handle.get(&ns(), b"k").await.unwrap_err().kind(),
        ErrorKind::Closed
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("nested/data");
    let store = SledStore::open(SledConfig::new(&dir)).await.unwrap();
    store.close().await.unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[tokio::test]
async fn a_directory_holding_other_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let err = SledStore::open(SledConfig::new(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["notes.txt"],
        "nothing was written next to the user's file"
    );
}

#[tokio::test]
async fn a_path_that_is_a_file_is_an_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = SledStore::open(SledConfig::new(file.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
}

/// Small log segments, so crash runs cross rotations and checkpoints.
const CRASH_SEGMENT_BYTES: u64 = 64 * 1024;

/// The child side of the crash test: commits forever, printing each acknowledged key. Every
/// third commit writes three keys at once, and every fifth deletes an earlier key of its writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var("ZT_CRASH_CHILD_DIR") else {
        return; // Only meaningful when started by `acknowledged_commits_survive_kill_9`.
    };
    let config = SledConfig::new(dir).log_segment_bytes(CRASH_SEGMENT_BYTES);
    let store = std::sync::Arc::new(SledStore::open(config).await.unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = std::process::id();
    for writer in 0u32..16 {
        let store = store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0u32.. {
                let key = format!("{start}-{writer:02}-{i:08}");
                let mut batch = Batch::new();
                batch.put(&ns(), key.as_bytes(), &[1u8; 100]);
                if i.is_multiple_of(3) {
                    batch.put(&ns(), format!("{key}.a").as_bytes(), &[2u8; 50]);
                    batch.put(&ns(), format!("{key}.b").as_bytes(), &[3u8; 50]);
                }
                if i % 5 == 4 {
                    let gone = format!("{start}-{writer:02}-{:08}.gone", i - 4);
                    batch.delete(&ns(), gone.as_bytes());
                }
                store.commit(batch).await.unwrap();
                tx.send(key).unwrap();
            }
        });
    }
    let mut out = std::io::stdout().lock();
    while let Some(key) = rx.recv().await {
        writeln!(out, "ACK {key}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for round in 0..12usize {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("ZT_CRASH_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        // Kill points spread over a run: early (mid-open checkpoint work), mid-segment, and
        // after several rotations.
        let kill_after = 1 + (round * 397) % 2500;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(key) = line.strip_prefix("ACK ") {
                acked.push(key.to_string());
                if acked.len() == kill_after {
                    // SIGKILL: no destructor, no flush, no clean shutdown.
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(!acked.is_empty(), "the child acknowledged nothing");
        total += acked.len();
        let config = SledConfig::new(dir.path()).log_segment_bytes(CRASH_SEGMENT_BYTES);
        let store = SledStore::open(config).await.unwrap();
        for key in &acked {
            let main = store.get(&ns(), key.as_bytes()).await.unwrap();
            assert!(main.is_some(), "round {round}: acknowledged {key} was lost");
            let i: u32 = key.rsplit('-').next().unwrap().parse().unwrap();
            if i.is_multiple_of(3) {
                // A batch is all or nothing.
                for part in ["a", "b"] {
                    let k = format!("{key}.{part}");
                    let got = store.get(&ns(), k.as_bytes()).await.unwrap();
                    assert_eq!(got.unwrap().version, main.as_ref().unwrap().version);
                }
            }
        }
        store.close().await.unwrap();
    }
    println!("{total} acknowledged commits over 12 kills, none lost");
}

/// Commits of a store that is still open, copied as a crash would leave them: the log holds
/// them and sled does not. Replay finds them all; a torn last frame is cut off; damage to an
/// earlier frame is `Corrupt`, not a silently shorter history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_replayed_torn_tails_cut_and_damage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    for i in 0u32..10 {
        let mut batch = Batch::new();
        batch.put(&ns(), &i.to_be_bytes(), &[i as u8; 64]);
        store.commit(batch).await.unwrap();
    }
    let crashed = |mutate: &dyn Fn(&mut Vec<u8>)| {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let wal = copy.path().join("wal");
        let segment = std::fs::read_dir(&wal)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        mutate(&mut bytes);
        std::fs::write(&segment, &bytes).unwrap();
        copy
    };
    let present = |store: &SledStore| {
        let store = store.clone();
        async move {
            let mut found = Vec::new();
            for i in 0u32..10 {
                if let Some(entry) = store.get(&ns(), &i.to_be_bytes()).await.unwrap() {
                    assert_eq!(entry.value, vec![i as u8; 64]);
                    found.push(i);
                }
            }
            found
        }
    };

    let whole = crashed(&|_| {});
    let reopened = SledStore::open(SledConfig::new(whole.path()))
        .await
        .unwrap();
    assert_eq!(present(&reopened).await, (0..10).collect::<Vec<_>>());
    reopened.close().await.unwrap();

    // Frames are written into zeroed room: a write torn 7 bytes short of the tenth frame's end
    // leaves zeros there.
    const FRAMES_END: usize = 20 + 10 * 107;
    let torn = crashed(&|bytes| bytes[FRAMES_END - 7..FRAMES_END].fill(0));
    let reopened = SledStore::open(SledConfig::new(torn.path())).await.unwrap();
    assert_eq!(present(&reopened).await, (0..9).collect::<Vec<_>>());
    // The next commit goes after what survived, and the store keeps working.
    let mut batch = Batch::new();
    batch.put(&ns(), b"after", b"");
    reopened.commit(batch).await.unwrap();
    reopened.close().await.unwrap();

    // One flipped byte inside the third frame (frames: a 12-byte header and a 95-byte record:
    // version 8, count 4, tag 1, key 4 + 10, value 4 + 64; after a 20-byte segment header).
    let damaged = crashed(&|bytes| bytes[20 + 2 * 107 + 40] ^= 0x10);
    let err = SledStore::open(SledConfig::new(damaged.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    store.close().await.unwrap();
}

/// A store written by the format-1 code (sled flushed on every commit, no log) opens, keeps
/// its data and versions, and is upgraded in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"\x00format", &1u64.to_be_bytes()).unwrap();
        db.insert(b"\x00applied", &7u64.to_be_bytes()).unwrap();
        db.insert(b"\x00ceiling", &65_543u64.to_be_bytes()).unwrap();
        let mut stored = vec![5u8];
        stored.extend_from_slice(b"files");
        stored.extend_from_slice(b"old");
        let mut value = 7u64.to_be_bytes().to_vec();
        value.extend_from_slice(b"kept");
        db.insert(stored, value).unwrap();
        db.flush().unwrap();
    }
    std::fs::write(
        dir.path().join("zt-store"),
        "# zt-storage sled store; do not edit\nformat=1\ndurable=7\n",
    )
    .unwrap();
    let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    let old = store.get(&ns(), b"old").await.unwrap().unwrap();
    assert_eq!((old.value.as_slice(), old.version), (&b"kept"[..], 7));
    let mut batch = Batch::new();
    batch.put(&ns(), b"new", b"");
    // Above every version the old code could have handed out.
    assert!(store.commit(batch).await.unwrap() > 65_543);
    store.close().await.unwrap();
    let marker = std::fs::read_to_string(dir.path().join("zt-store")).unwrap();
    assert!(marker.contains("format=2"), "{marker}");
    let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    assert!(store.get(&ns(), b"new").await.unwrap().is_some());
    store.close().await.unwrap();
}

/// Small segments: the log rotates and checkpoints while writes go on; after a close one empty
/// segment is left and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_rotate_and_checkpoints_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = || SledConfig::new(dir.path()).log_segment_bytes(64 * 1024);
    let store = std::sync::Arc::new(SledStore::open(config()).await.unwrap());
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..250u32 {
                    let mut batch = Batch::new();
                    batch.put(&ns(), &(t * 1000 + i).to_be_bytes(), &[t as u8; 1000]);
                    store.commit(batch).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // 2 MB through 64 KiB segments: about 30 rotations, each checkpointed.
    store.close().await.unwrap();
    let segments: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert_eq!(std::fs::metadata(&segments[0]).unwrap().len(), 20);
    let store = SledStore::open(config()).await.unwrap();
    for t in 0..8u32 {
        for i in 0..250u32 {
            let entry = store
                .get(&ns(), &(t * 1000 + i).to_be_bytes())
                .await
                .unwrap();
            assert_eq!(entry.unwrap().value, vec![t as u8; 1000]);
        }
    }
    store.close().await.unwrap();
}

/// Many concurrent commits (more than format 1's blocks of reserved versions): after a reopen
/// every version is still below the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_cross_reserved_blocks_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(SledConfig::new(dir.path())).await.unwrap());
    let per_task = 1100u32;
    let tasks: Vec<_> = (0..64u32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut highest = 0;
                for i in 0..per_task {
                    let mut batch = Batch::new();
                    batch.put(&ns(), &(t * per_task + i).to_be_bytes(), b"");
                    highest = highest.max(store.commit(batch).await.unwrap());
                }
                highest
            })
        })
        .collect();
    let mut highest = 0;
    for task in tasks {
        highest = highest.max(task.await.unwrap());
    }
    assert!(
        highest > 65_536 + 1,
        "the run must cross a block: {highest}"
    );
    store.close().await.unwrap();
    drop(store);
    let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
    let mut batch = Batch::new();
    batch.put(&ns(), b"after", b"");
    assert!(store.commit(batch).await.unwrap() > highest);
    let sample = store
        .get(&ns(), &(64 * per_task - 1).to_be_bytes())
        .await
        .unwrap();
    assert!(sample.is_some());
}
