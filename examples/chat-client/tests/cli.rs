//! The `zt-chat` client binary against the real server, as the README walks a newcomer through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

mod cli_support;
#[path = "../../chat-server/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cli_support::cli;
use common::{server, signal, start, wait_exit};

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
    // What the server holds is printed so it cannot drive the terminal or reorder the line.
    run(cli(&home, &base).args(["set-name", "The \u{202e}nimdA"]));
    let me = stdout(&run(cli(&home, &base).arg("whoami")));
    assert!(me.contains("The \\u{202e}nimdA"), "{me}");
    assert!(!me.contains('\u{202e}'), "{me}");
    let refused = cli(&home, &base)
        .args(["send", "#general", "\u{1b}]0;owned\u{7}"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    run(cli(&home, &base).args(["set-name", "The Admin"]));

    // The owner reads the audit log from the command line.
    let audit = stdout(&run(
        cli(&home, &base).args(["admin", "audit", "--limit", "50"])
    ));
    assert!(audit.contains("login.succeeded"), "{audit}");

    // Retention and legal holds from the command line; a release waits for a second
    // administrator, and the one who asked cannot approve it.
    let policy = stdout(&run(cli(&home, &base).args([
        "admin",
        "set-retention",
        "--messages-days",
        "30",
    ])));
    assert!(
        policy.contains("workspace: messages 30 days, files for ever"),
        "{policy}"
    );
    let policy = stdout(&run(cli(&home, &base).args([
        "admin",
        "set-retention",
        "--channel",
        "general",
    ])));
    assert!(
        policy.contains("messages for ever, files for ever"),
        "{policy}"
    );
    let refused = cli(&home, &base)
        .args(["admin", "set-retention", "--inherit"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let ran = stdout(&run(cli(&home, &base).args(["admin", "run-retention"])));
    assert!(ran.contains("removed 0 messages"), "{ran}");
    let placed = stdout(&run(cli(&home, &base).args([
        "admin",
        "hold",
        "--custodian",
        "admin",
        "--reason",
        "Matter 12",
    ])));
    let hold = placed.trim().strip_prefix("placed ").unwrap().to_owned();
    let holds = stdout(&run(cli(&home, &base).args(["admin", "holds"])));
    assert!(
        holds.contains(&hold) && holds.contains("Matter 12"),
        "{holds}"
    );
    let asked = stdout(&run(cli(&home, &base).args([
        "admin",
        "release-hold",
        &hold,
    ])));
    let approval = asked
        .split_whitespace()
        .find(|w| w.starts_with("apr_"))
        .unwrap()
        .trim_end_matches('`')
        .to_owned();
    let open = stdout(&run(cli(&home, &base).args(["admin", "approvals"])));
    assert!(
        open.contains(&approval) && open.contains("release_legal_hold"),
        "{open}"
    );
    let own = cli(&home, &base)
        .args(["admin", "approve", &approval])
        .output()
        .unwrap();
    assert_eq!(own.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&own.stderr).contains("same-person"));
    let holds = stdout(&run(cli(&home, &base).args(["admin", "holds"])));
    assert!(holds.contains(&hold), "still held: {holds}");

    // Deleting a user: the policy for their content, a confirmation, what went.
    let content = stdout(&run(cli(&home, &base).args([
        "admin",
        "authored-content",
        "delete",
    ])));
    assert!(content.contains("delete (held content stays)"), "{content}");
    run(cli(&home, &base)
        .args(["admin", "create-user", "leaver"])
        .env("ZT_PASSWORD", "quiet harbour lantern 42 wide"));
    let unconfirmed = cli(&home, &base)
        .args(["admin", "delete-user", "leaver"])
        .output()
        .unwrap();
    assert_eq!(unconfirmed.status.code(), Some(2));
    let deleted = stdout(&run(cli(&home, &base).args([
        "admin",
        "delete-user",
        "leaver",
        "--yes",
    ])));
    assert!(
        deleted.contains("deleted leaver") && deleted.contains("content Delete"),
        "{deleted}"
    );
    let gone = cli(&home, &base)
        .args(["admin", "delete-user", "leaver", "--yes"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no user leaver"));

    let storage = stdout(&run(cli(&home, &base).args([
        "admin",
        "storage",
        "--clean-up",
    ])));
    assert!(
        storage.contains("removed") && storage.contains("total:"),
        "{storage}"
    );

    // A wipe: confirmed first, then refused while the hold above stands.
    let unconfirmed = cli(&home, &base)
        .args(["admin", "wipe", "--in-days", "2"])
        .output()
        .unwrap();
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    let held = cli(&home, &base)
        .args(["admin", "wipe", "--in-days", "2", "--yes"])
        .output()
        .unwrap();
    assert_eq!(held.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&held.stderr).contains("legal hold"));
    let none = cli(&home, &base).args(["admin", "wipe"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("404"),
        "{none:?}"
    );

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

/// What an impostor on the pinned address saw: every request's bytes.
struct Impostor {
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Impostor {
    /// Listens on `addr` (the real server's, now stopped) and answers its identity request with
    /// `identity` (the real server's published identity, copied), everything else with 404.
    fn listen(addr: &str, identity: String) -> Self {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind(addr).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Everything the client sends until it waits for an answer or goes.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if request.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                record.lock().unwrap().extend_from_slice(&request);
                let answer = if request.starts_with(b"GET /api/v1/identity ") {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \
                         {}\r\nconnection: close\r\n\r\n{identity}",
                        identity.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(answer.as_bytes());
                // Whatever else arrives on this connection is recorded too.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Impostor { seen }
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).to_lowercase()
    }
}

#[test]
fn an_impostor_on_the_pinned_address_gets_no_credential_and_no_content() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("client");
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "an impostor test passphrase");
    let (mut child, addr) = start(command);
    let base = format!("http://{addr}");
    let password_file = root.path().join("data.admin-password");
    run(cli(&home, &base)
        .args(["login", "--user", "admin", "--password-file"])
        .arg(&password_file));
    run(cli(&home, &base).args(["admin", "create-channel", "general"]));
    let session = std::fs::read_to_string(home.join("session.json")).unwrap();
    let token = serde_json::from_str::<serde_json::Value>(&session).unwrap()["token"]
        .as_str()
        .map(str::to_owned);
    // The identity is public: the impostor copies it, and answers for it on the same address.
    let identity = reqwest_identity(&base);
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    let impostor = Impostor::listen(&addr, identity);

    let password = std::fs::read_to_string(&password_file).unwrap();
    for args in [
        &["whoami"][..],
        &["channels"],
        &["send", "#general", "the", "launch", "codes"],
        &["history", "general"],
        &["sessions"],
        &["tail"],
        &["admin", "audit"],
        &["admin", "create-user", "mallory", "--password-file"],
        &["login", "--user", "admin", "--password-file"],
        &["logout"],
    ] {
        let mut command = cli(&home, &base);
        command.args(args);
        if args.last() == Some(&"--password-file") {
            command.arg(&password_file);
        }
        let output = command.output().unwrap();
        assert!(
            !output.status.success(),
            "{args:?} succeeded at the impostor"
        );
    }
    let seen = impostor.seen();
    assert!(seen.contains("get /api/v1/identity"), "{seen}");
    // The copied identity verified and matched the pin: the client went on to open the channel
    // to the pinned key, which the impostor cannot answer.
    assert!(seen.contains("get /api/v1/tunnel"), "{seen}");
    for secret in ["authorization", "bearer", "launch codes", password.trim()] {
        assert!(
            !seen.contains(&secret.to_lowercase()),
            "the impostor saw {secret:?}: {seen}"
        );
    }
    if let Some(token) = token {
        assert!(
            !seen.contains(&token.to_lowercase()),
            "the impostor saw the token"
        );
    }
    // The sign-out was not confirmed, so the session is kept, and said so.
    assert!(home.join("session.json").exists());
    let logout = cli(&home, &base).arg("logout").output().unwrap();
    let said = String::from_utf8_lossy(&logout.stderr);
    assert!(said.contains("did not confirm"), "{said}");
    assert!(said.contains("still kept"), "{said}");
    // --forget drops it anyway, saying it may still be valid.
    let forgot = cli(&home, &base)
        .args(["logout", "--forget"])
        .output()
        .unwrap();
    assert!(!forgot.status.success());
    assert!(String::from_utf8_lossy(&forgot.stderr).contains("may still be valid"));
    assert!(!home.join("session.json").exists());
}

/// The server's published identity, as anyone can fetch it.
fn reqwest_identity(base: &str) -> String {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /api/v1/identity HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    body.to_owned()
}
