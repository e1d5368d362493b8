//! The `zt-chat-server` binary as a user runs it: start, answer, stop on SIGTERM, flush.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use common::{server, signal, start, wait_exit};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A minimal HTTP/1.1 GET; returns the status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn serves_health_and_version_then_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("store"));
    let (mut child, addr) = start(command);

    let (status, body) = get(&addr, "/healthz");
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = get(&addr, "/version");
    assert_eq!(status, 200);
    assert!(body.contains(env!("CARGO_PKG_VERSION")), "{body}");
    assert_eq!(get(&addr, "/no-such-route").0, 404);

    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    // The store was flushed and closed: its marker is there and it reopens.
    assert!(data.path().join("store/store/zt-store").is_file());
    let mut again = server();
    again
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("store"));
    let (mut child, addr) = start(again);
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz").0, 200);
    signal(&child, "INT");
    assert!(wait_exit(&mut child).success());
}

#[test]
fn settings_come_from_env_and_file() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("zt.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:1\"\n",
            data.path().join("from-file")
        ),
    )
    .unwrap();
    let mut command = server();
    // The file sets the data directory; the environment overrides its (unusable) port.
    command
        .arg("serve")
        .env("ZT_CONFIG", &file)
        .env("ZT_LISTEN", "127.0.0.1:0");
    let (mut child, addr) = start(command);
    assert_eq!(get(&addr, "/healthz").0, 200);
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    assert!(data.path().join("from-file/store/zt-store").is_file());
}

#[test]
fn bad_settings_exit_with_a_message() {
    let output = server()
        .args(["serve", "--config", "/nonexistent/zt.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/zt.toml"), "{stderr}");

    let output = server()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn a_busy_data_directory_is_reported() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let mut first = server();
    first
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir);
    let (mut child, _) = start(first);
    let output = server()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}

fn identity_show(dir: &std::path::Path) -> std::process::Output {
    server()
        .args(["identity", "show", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap()
}

fn json_field(body: &str, name: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value[name].as_str().unwrap().to_string()
}

#[test]
fn the_identity_key_is_made_once_signs_the_audit_log_and_is_shown_offline() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let run = || {
        let mut command = server();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir);
        let (mut child, addr) = start(command);
        let (status, body) = get(&addr, "/identity");
        assert_eq!(status, 200);
        signal(&child, "TERM");
        assert!(wait_exit(&mut child).success());
        body
    };
    let first = run();
    // First start: a random passphrase beside the data directory, readable by the owner only.
    let passphrase_file = data.path().join("data.kms-passphrase");
    let passphrase = std::fs::read_to_string(&passphrase_file).unwrap();
    assert_eq!(passphrase.trim_end().len(), 64, "{passphrase:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&passphrase_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(run(), first, "a restart keeps the identity");
    let fingerprint = json_field(&first, "fingerprint");
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");

    // Offline, the same identity; its audit key verifies the logs the server wrote (the
    // identity's creation, signed at shutdown).
    let shown = identity_show(&dir);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8(shown.stdout).unwrap();
    let line = |name: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {shown}"))
            .to_string()
    };
    assert_eq!(line("fingerprint"), fingerprint);
    assert_eq!(line("public-key"), json_field(&first, "public_key"));
    let audit_key = line("audit-key");
    assert_eq!(audit_key, json_field(&first, "audit_key"));
    let verified = server()
        .args(["audit", "verify", "--key", &audit_key, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report = String::from_utf8(verified.stdout).unwrap();
    assert!(verified.status.success(), "{report}");
    assert!(
        report.contains("OK audit/system/security: size 1, root "),
        "{report}"
    );

    // Without its passphrase the deployment does not open; the environment can give it.
    let moved = data.path().join("elsewhere");
    std::fs::rename(&passphrase_file, &moved).unwrap();
    let refused = identity_show(&dir);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("passphrase is missing"), "{stderr}");
    let given = server()
        .args(["identity", "show", "--data-dir"])
        .arg(&dir)
        .env("ZT_KMS_PASSPHRASE", passphrase.trim_end())
        .output()
        .unwrap();
    assert!(given.status.success());
    assert_eq!(String::from_utf8(given.stdout).unwrap(), shown);
    let from_file = server()
        .args(["identity", "show", "--kms-passphrase-file"])
        .arg(&moved)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(from_file.status.success());
    // A directory without a deployment is refused, and left as it was.
    let empty = data.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let refused = identity_show(&empty);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a zt data directory"));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}
