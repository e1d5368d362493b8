//! The `zt-chat` client binary against the real server, as the README walks a newcomer through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

#[path = "../../chat-server/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{server, signal, start, wait_exit};

fn cli(home: &Path, server: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zt-chat"));
    command
        .env("ZT_CHAT_HOME", home)
        .env("ZT_SERVER", server)
        .env_remove("ZT_PASSWORD")
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_newcomer_logs_in_sends_and_tails_and_a_changed_server_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let home = root.path().join("client");
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("ZT_KMS_PASSPHRASE", "a command-line test passphrase");
    let (mut child, addr) = start(command);
    let base = format!("http://{addr}");
    let password_file = root.path().join("data.admin-password");

    let login = run(cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&password_file));
    assert!(stdout(&login).contains("signed in as admin"));
    let shown = String::from_utf8_lossy(&login.stderr).to_string();
    assert!(shown.contains("fingerprint SHA256:"), "{shown}");
    // The token is in the OS keyring where the process may use it (containers often may not),
    // else in the 0600 file; the file never holds it beside a keyring copy.
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("session.json")).unwrap()).unwrap();
    if session["in_keyring"] == true {
        assert!(session.get("token").is_none(), "{session}");
        assert!(shown.contains("session kept in the OS keyring"), "{shown}");
    } else {
        assert!(
            session["token"].as_str().unwrap().contains('.'),
            "{session}"
        );
        assert!(shown.contains("session.json"), "{shown}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    run(cli(&home, &base).args(["admin", "create-channel", "general", "--topic", "all of us"]));
    let channels = stdout(&run(cli(&home, &base).arg("channels")));
    assert!(channels.contains("#general public all of us"), "{channels}");

    // `tail` follows the realtime channel in another process.
    let mut tail = cli(&home, &base)
        .args(["tail", "general"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let out = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });
    // `tail` prints "following" once its stream is ready.
    let mut err = BufReader::new(tail.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("following") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "tail ended early");
    }
    run(cli(&home, &base).args(["send", "#general", "hello", "from", "the", "cli"]));
    let got = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(got.ends_with("hello from the cli"), "{got}");
    let history = stdout(&run(cli(&home, &base).args(["history", "general"])));
    assert!(history.contains("hello from the cli"));

    // Channel administration: rename, topic, archive (posting is then refused), delete (only
    // with --yes).
    run(cli(&home, &base).args(["admin", "create-channel", "scratch"]));
    run(cli(&home, &base).args(["admin", "rename-channel", "scratch", "scrap"]));
    run(cli(&home, &base).args(["admin", "set-topic", "scrap", "to be deleted"]));
    let channels = stdout(&run(cli(&home, &base).arg("channels")));
    assert!(
        channels.contains("#scrap public to be deleted"),
        "{channels}"
    );
    let archived = stdout(&run(cli(&home, &base).args(["admin", "archive", "scrap"])));
    assert!(archived.contains("#scrap archived"), "{archived}");
    let refused = cli(&home, &base)
        .args(["send", "scrap", "into the archive"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    run(cli(&home, &base).args(["admin", "archive", "scrap", "--undo"]));
    let unconfirmed = cli(&home, &base)
        .args(["admin", "delete-channel", "scrap"])
        .output()
        .unwrap();
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    run(cli(&home, &base).args(["admin", "delete-channel", "scrap", "--yes"]));
    let channels = stdout(&run(cli(&home, &base).arg("channels")));
    assert!(!channels.contains("#scrap"), "{channels}");
    run(cli(&home, &base).args(["set-name", "The Admin"]));
    let me = stdout(&run(cli(&home, &base).arg("whoami")));
    assert!(me.contains("The Admin"), "{me}");

    // The owner reads the audit log from the command line.
    let audit = stdout(&run(
        cli(&home, &base).args(["admin", "audit", "--limit", "50"])
    ));
    assert!(audit.contains("login.succeeded"), "{audit}");

    // Signing out ends the tail: its session is gone.
    run(cli(&home, &base).arg("logout"));
    let status = tail.wait().unwrap();
    assert!(!status.success());
    assert!(!home.join("session.json").exists());

    // The pinned identity changes: the client refuses, naming both fingerprints.
    let known = home.join("known_servers");
    let pinned = std::fs::read_to_string(&known).unwrap();
    let real = pinned.split_whitespace().nth(1).unwrap().to_owned();
    let forged = format!(
        "{base} SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA {}\n",
        "11".repeat(32)
    );
    std::fs::write(&known, forged).unwrap();
    let refused = cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&password_file)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let warning = String::from_utf8_lossy(&refused.stderr);
    assert!(warning.contains("CHANGED"), "{warning}");
    assert!(
        warning.contains("SHA256:AAAA") && warning.contains(&real),
        "{warning}"
    );
    // Until the pin is removed.
    run(cli(&home, &base).arg("forget-server"));
    run(cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&password_file));

    // A new password of one's own: the current one first; this session stays.
    let new_password = root.path().join("new-password");
    std::fs::write(&new_password, "an orchard of quiet copper bells\n").unwrap();
    let changed = stdout(&run(cli(&home, &base)
        .args(["password", "--current-file"])
        .arg(&password_file)
        .arg("--new-file")
        .arg(&new_password)));
    assert!(changed.contains("password changed"), "{changed}");
    run(cli(&home, &base).arg("whoami"));
    let old = cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(!old.status.success(), "the old password still signs in");
    run(cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&new_password));

    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}
