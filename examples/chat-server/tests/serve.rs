//! The `zt-chat-server` binary as a user runs it: start, answer, stop on SIGTERM, flush.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zt-chat-server"))
}

/// Starts `serve` and returns the child with the address it printed.
fn start(mut command: Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("zt-chat-server listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

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

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
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
    assert!(data.path().join("store/zt-store").is_file());
    let mut again = server();
    again
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("store"));
    let (mut child, addr) = start(again);
    assert_eq!(get(&addr, "/healthz").0, 200);
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
    assert!(data.path().join("from-file/zt-store").is_file());
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
    let mut first = server();
    first
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path());
    let (mut child, _) = start(first);
    let output = server()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}
