//! `zt-chat-server data verify` as an operator runs it: OK on a served data directory, then the
//! damaged record named and a failing exit once a sealed message is altered on disk, with no byte
//! of the directory changed by checking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use secrecy::SecretString;
use serde_json::json;
use zt_chat_server::deployment::{Deployment, OpenMode, Passphrase};
use zt_storage::{Batch, KeyRange, KvStore, Namespace, ScanOptions};

const PASSPHRASE: &str = "the data verify test passphrase";

fn data_verify(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zt-chat-server"))
        .args(["data", "verify", "--data-dir"])
        .arg(dir)
        .env_remove("ZT_DATA_DIR")
        .env_remove("ZT_CONFIG")
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_verify_finds_a_damaged_message_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mut command = common::server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE);
    let (mut child, addr) = common::start(command);
    let password = std::fs::read_to_string(root.path().join("data.admin-password")).unwrap();
    let http = reqwest::Client::new();
    // One JSON request, with the token once signed in; its answer's JSON.
    let post = async |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = http.post(format!("http://{addr}/api/v1{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json::<serde_json::Value>().await.unwrap()
    };
    let login = post(
        "/sessions",
        None,
        json!({"username": "admin", "password": password.trim()}),
    )
    .await;
    let token = login["token"].as_str().unwrap();
    let channel = post(
        "/channels",
        Some(token),
        json!({"name": "general", "visibility": "public", "topic": ""}),
    )
    .await;
    let messages = format!("/channels/{}/messages", channel["id"].as_str().unwrap());
    let posted = post(&messages, Some(token), json!({"body": "to be damaged"})).await;
    assert!(posted["id"].is_string(), "{posted}");
    common::signal(&child, "TERM");
    assert!(common::wait_exit(&mut child).success());

    let before = common::file_contents(root.path());
    let ok = data_verify(&dir);
    let report = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(report.starts_with("OK tnt_"), "{report}");
    assert_eq!(
        before,
        common::file_contents(root.path()),
        "checking changed the directory"
    );

    // One sealed message altered on disk.
    let passphrase = Passphrase::Given(SecretString::from(PASSPHRASE));
    let deployment = Deployment::open(&dir, &passphrase, OpenMode::Existing)
        .await
        .unwrap();
    let tenant = login["workspace"]
        .as_str()
        .unwrap()
        .parse::<zt_core::TenantId>()
        .unwrap();
    let namespace = Namespace::new(&format!(
        "t:{}/chat.b.messages",
        hex::encode(tenant.to_bytes())
    ))
    .unwrap();
    let sealed = deployment.sealed_store();
    let page = sealed
        .scan(&namespace, &KeyRange::all(), ScanOptions::default())
        .await
        .unwrap();
    let entry = page.entries.first().unwrap();
    let mut damaged = entry.value.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let mut batch = Batch::new();
    batch.put(&namespace, &entry.key, &damaged);
    sealed.commit(batch).await.unwrap();
    deployment.close().await.unwrap();

    let failed = data_verify(&dir);
    let report = String::from_utf8_lossy(&failed.stdout).to_string();
    assert_eq!(failed.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAILED") && report.contains("chat.b.messages"),
        "{report}"
    );
    assert!(report.contains(&hex::encode(&entry.key)), "{report}");
}
