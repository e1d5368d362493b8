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

/// The child side of the crash test: commits forever, printing each acknowledged key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var("ZT_CRASH_CHILD_DIR") else {
        return; // Only meaningful when started by `acknowledged_commits_survive_kill_9`.
    };
    let store = SledStore::open(SledConfig::new(dir)).await.unwrap();
    let store = std::sync::Arc::new(store);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for writer in 0u32..8 {
        let store = store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0u32.. {
                let key = format!("{writer:02}-{i:08}");
                let mut batch = Batch::new();
                batch.put(&ns(), key.as_bytes(), &[1u8; 100]);
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
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("ZT_CRASH_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(key) = line.strip_prefix("ACK ") {
                acked.push(key.to_string());
                if acked.len() == 300 + round * 200 {
                    // SIGKILL: no destructor, no flush, no clean shutdown.
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(!acked.is_empty(), "the child acknowledged nothing");
        let store = SledStore::open(SledConfig::new(dir.path())).await.unwrap();
        for key in &acked {
            assert!(
                store.get(&ns(), key.as_bytes()).await.unwrap().is_some(),
                "round {round}: acknowledged {key} was lost"
            );
        }
        store.close().await.unwrap();
    }
}

/// More commits than one block of reserved versions: the ceiling is raised mid-run, and after a
/// reopen every version is still below the new ones.
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
