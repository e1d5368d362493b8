//! Interop: a JavaScript realtime client (npm `noise-handshake` 4.2.0, what a browser can run)
//! against the real server: it verifies the signed channel key, completes Noise XK with its token
//! inside, pings, and receives a message; pinning another key fails the handshake.
//!
//! Needs Node and the packages `scripts/noise-interop-setup.sh` installs, named by
//! `ZT_TEST_NOISE_INTEROP_DIR`; without it the test says it was skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{server, signal, start, wait_exit};
use zt_chat_client::Client;
use zt_chat_client::Visibility;

fn node(dir: &str, base: &str, mode: &str, token: &str, channel: &str) -> (bool, String) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/noise-interop/client.cjs");
    let output = Command::new("node")
        .arg(script)
        .arg(mode)
        .env("NODE_PATH", PathBuf::from(dir).join("node_modules"))
        .env("ZT_BASE", base)
        .env("ZT_TOKEN", token)
        .env("ZT_CHANNEL", channel)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_noise_client_talks_to_the_server() {
    let Ok(dir) = std::env::var("ZT_TEST_NOISE_INTEROP_DIR") else {
        println!(
            "skipped: set ZT_TEST_NOISE_INTEROP_DIR (eval \"$(bash scripts/noise-interop-setup.sh)\")"
        );
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "a noise interop test passphrase");
    let (mut child, addr) = start(command);
    let base = format!("http://{addr}");
    let password = std::fs::read_to_string(root.path().join("data.admin-password")).unwrap();
    let anonymous = Client::new(&base).unwrap();
    let identity = anonymous.identity().await.unwrap();
    let anonymous = anonymous.bind(identity);
    let login = anonymous
        .login(None, "admin", password.trim())
        .await
        .unwrap();
    let admin = anonymous.clone().with_token(login.token.clone());
    let channel = admin
        .create_channel("interop", Visibility::Public, "")
        .await
        .unwrap();

    let (ok, text) = node(&dir, &base, "good", &login.token, &channel.id);
    assert!(ok && text.contains("interop ok"), "{text}");
    let (ok, text) = node(&dir, &base, "wrong-key", "", "");
    assert!(ok && text.contains("refused"), "{text}");

    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}
