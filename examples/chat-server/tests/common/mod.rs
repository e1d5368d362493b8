//! Running the real binaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub,
    reason = "test helpers report failures by panicking; not every test uses every helper"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary: cargo's own path in the server's tests; beside the test executable
/// (`target/<profile>/`) in the client's, which share these helpers. `cargo test --workspace`
/// builds it; `cargo test -p zt-chat-client` alone uses the one last built.
pub fn server_binary() -> std::path::PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_zt-chat-server") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(format!("zt-chat-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the server first (cargo build -p zt-chat-server), or run the whole \
         suite (cargo test --workspace)",
        path.display()
    );
    path
}

/// The binary, with none of the caller's `ZT_*` settings.
pub fn server() -> Command {
    let mut command = Command::new(server_binary());
    for name in [
        "ZT_CONFIG",
        "ZT_DATA_DIR",
        "ZT_LISTEN",
        "ZT_KMS_PASSPHRASE",
        "ZT_KMS_PASSPHRASE_FILE",
        "ZT_LOG_FORMAT",
    ] {
        command.env_remove(name);
    }
    command
}

/// A server process that is killed if the test ends without stopping it (a failed assertion),
/// so no server outlives its test.
pub struct Server(Child);

impl Server {
    /// Spawns `command` as a server that dies with the test.
    pub fn spawn(command: &mut Command) -> Self {
        Server(command.spawn().unwrap())
    }
}

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `serve` and returns the child with the address it printed (stderr as the command has
/// it: inherited unless redirected).
pub fn start(mut command: Command) -> (Server, String) {
    let mut child = Server::spawn(command.stdout(Stdio::piped()));
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

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lowers this process's scheduling priority (nice 10; and so that of the threads it starts
/// next): a load generator sharing the machine with the server takes the CPU the server leaves,
/// as clients on other machines would.
pub fn lower_priority() {
    let lowered = Command::new("renice")
        .args(["-n", "10", "-p", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    if !lowered.is_ok_and(|s| s.success()) {
        eprintln!("note: could not renice the load generator; it competes with the server");
    }
}

/// Every file under `dir` with its bytes: to show that a command changed none of them.
pub fn file_contents(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}
