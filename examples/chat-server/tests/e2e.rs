//! End to end: the real `zt-chat-server` binary on loopback, clients over HTTP and the Noise
//! realtime channel, then the audit log read back offline after a clean stop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{server, signal, start, wait_exit};
use secrecy::SecretString;
use zt_audit::trail::{AuditConfig, AuditTrail, LogAddress, LogKind};
use zt_chat_client::ServerRecord;
use zt_chat_client::Visibility;
use zt_chat_client::{Client, ClientError, KnownServers, Pin, RealtimeStream};
use zt_chat_server::deployment::{Deployment, OpenMode, Passphrase};
use zt_core::{Actor, AuditEventKind};

const PASSPHRASE: &str = "an end-to-end test passphrase";
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    child: common::Server,
    base: String,
}

fn start_server(dir: &Path, log: &Path) -> Running {
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("ZT_KMS_PASSPHRASE", PASSPHRASE)
        .env("RUST_LOG", "debug")
        .env("ZT_LOG_FORMAT", "json")
        .stderr(std::fs::File::create(log).unwrap());
    let (child, addr) = start(command);
    Running {
        child,
        base: format!("http://{addr}"),
    }
}

/// The next record that is not about permissions or memberships (which depend on timing).
async fn next_message(stream: &mut RealtimeStream) -> Option<ServerRecord> {
    loop {
        let record = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a record in time")
            .expect("a readable record");
        match record {
            Some(
                ServerRecord::PermissionsChanged
                | ServerRecord::MembershipChanged { .. }
                | ServerRecord::ChannelChanged { .. },
            ) => {}
            other => return other,
        }
    }
}

fn posted_body(record: Option<ServerRecord>) -> String {
    match record {
        Some(ServerRecord::Posted { message }) => message.body,
        other => panic!("expected a posted message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_chat_in_realtime_and_the_channel_holds() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let log = root.path().join("server.log");
    let mut running = start_server(&dir, &log);
    let base = running.base.clone();

    // The first start made a workspace whose owner's password is in a 0600 file.
    let admin_password = std::fs::read_to_string(root.path().join("data.admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    let anonymous = Client::new(&base).unwrap();
    let identity = anonymous.identity().await.unwrap();
    let known = KnownServers::new(root.path().join("known_servers"));
    assert_eq!(known.check(&base, &identity.view).unwrap(), Pin::New);
    known.pin(&base, &identity.view).unwrap();
    assert_eq!(known.check(&base, &identity.view).unwrap(), Pin::Matches);
    // Nothing that carries a credential or content leaves an unbound client.
    let unbound = anonymous.login(None, "admin", &admin_password).await;
    assert!(
        matches!(unbound, Err(ClientError::Unverified)),
        "{unbound:?}"
    );
    let anonymous = anonymous.bind(identity.clone());

    let login = anonymous
        .login(None, "admin", &admin_password)
        .await
        .unwrap();
    let admin = anonymous.clone().with_token(login.token.clone());
    let bob_password = "tangerine orbit lantern 41";
    let carol_password = "granite meadow quiver 72";
    let bob_user = admin.create_user("bob", "Bob", bob_password).await.unwrap();
    let carol_user = admin
        .create_user("carol", "Carol", carol_password)
        .await
        .unwrap();
    let ops = admin
        .create_channel("ops", Visibility::Private, "")
        .await
        .unwrap();
    let lobby = admin
        .create_channel("lobby", Visibility::Public, "")
        .await
        .unwrap();
    for (channel, user) in [
        (&ops.id, &bob_user.id),
        (&ops.id, &carol_user.id),
        (&lobby.id, &carol_user.id),
    ] {
        admin.add_member(channel, user).await.unwrap();
    }

    let bob_login = anonymous.login(None, "bob", bob_password).await.unwrap();
    let bob = anonymous.clone().with_token(bob_login.token.clone());
    let carol_login = anonymous
        .login(Some(&login.workspace), "carol", carol_password)
        .await
        .unwrap();
    let carol = anonymous.clone().with_token(carol_login.token.clone());
    let mut bob_stream = bob.realtime().await.unwrap();
    let mut carol_stream = carol.realtime().await.unwrap();

    // A message reaches both members as it is posted.
    admin.post_message(&ops.id, "deploy at noon").await.unwrap();
    assert_eq!(
        posted_body(next_message(&mut bob_stream).await),
        "deploy at noon"
    );
    assert_eq!(
        posted_body(next_message(&mut carol_stream).await),
        "deploy at noon"
    );
    bob_stream.ping().await.unwrap();
    assert_eq!(
        next_message(&mut bob_stream).await,
        Some(ServerRecord::Pong)
    );
    // The API agrees with the stream.
    let page = carol.messages(&ops.id, 10).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].body, "deploy at noon");

    // Carol is removed mid-stream: Bob still receives, Carol receives nothing more from ops
    // (what she receives next is the marker posted afterwards in a channel she is still in).
    admin.remove_member(&ops.id, &carol_user.id).await.unwrap();
    admin
        .post_message(&ops.id, "after carol left")
        .await
        .unwrap();
    admin.post_message(&lobby.id, "marker").await.unwrap();
    assert_eq!(
        posted_body(next_message(&mut bob_stream).await),
        "after carol left"
    );
    assert_eq!(posted_body(next_message(&mut carol_stream).await), "marker");
    // Bob may read the public lobby too.
    assert_eq!(posted_body(next_message(&mut bob_stream).await), "marker");
    let refused = carol.messages(&ops.id, 10).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::Api { status: 404, .. }),
        "{refused}"
    );

    // Carol's session is revoked (she signs out elsewhere): her stream closes, saying why.
    carol.logout().await.unwrap();
    assert_eq!(
        next_message(&mut carol_stream).await,
        Some(ServerRecord::Closed {
            reason: "session_ended".into()
        })
    );
    assert_eq!(next_message(&mut carol_stream).await, None);
    let gone = carol.channels().await.unwrap_err();
    assert!(
        matches!(gone, ClientError::Api { status: 401, .. }),
        "{gone}"
    );

    // A plaintext frame on an established channel closes it.
    bob_stream
        .send_raw(br#"{"type":"ping"}"#.to_vec())
        .await
        .unwrap();
    let after = tokio::time::timeout(WAIT, bob_stream.next()).await.unwrap();
    assert!(matches!(after, Ok(None) | Err(_)), "{after:?}");

    // A client pinning another key cannot complete the handshake, and a pinned identity that
    // changed is refused with both fingerprints.
    let impostor_key = zt_crypto::channel::StaticKeypair::generate().unwrap();
    let impostor = zt_chat_client::VerifiedIdentity {
        view: identity.view.clone(),
        channel_key: impostor_key.public(),
    };
    let wrong = bob.clone().bind(impostor).realtime().await.unwrap_err();
    assert!(matches!(wrong, ClientError::Realtime(_)), "{wrong}");
    let other = KnownServers::new(root.path().join("other_known"));
    let mut changed = identity.view.clone();
    changed.fingerprint = "SHA256:somebody-else".into();
    changed.public_key = "00".repeat(32);
    other.pin(&base, &changed).unwrap();
    let mismatch = other.check(&base, &identity.view).unwrap_err();
    let warning = mismatch.to_string();
    assert!(
        warning.contains("SHA256:somebody-else") && warning.contains(&identity.view.fingerprint),
        "{warning}"
    );

    // Errors have one shape and the right status.
    let secret = admin
        .create_channel("secret", Visibility::Private, "")
        .await
        .unwrap();
    let not_member = bob.post_message(&secret.id, "hi").await.unwrap_err();
    assert!(
        matches!(&not_member, ClientError::Api { status: 404, kind, .. } if kind == "not_found"),
        "{not_member}"
    );
    let taken = admin
        .create_channel("Secret", Visibility::Public, "")
        .await
        .unwrap_err();
    assert!(
        matches!(&taken, ClientError::Api { status: 409, .. }),
        "{taken}"
    );
    let unauthenticated = anonymous.channels().await.unwrap_err();
    assert!(
        matches!(&unauthenticated, ClientError::Api { status: 401, .. }),
        "{unauthenticated}"
    );
    let bad_id = bob.messages("chn_nonsense", 10).await.unwrap_err();
    assert!(
        matches!(&bad_id, ClientError::Api { status: 400, kind, .. } if kind == "invalid_input"),
        "{bad_id}"
    );
    let wrong_password = anonymous
        .login(None, "bob", "not it at all")
        .await
        .unwrap_err();
    assert!(
        matches!(wrong_password, ClientError::Api { status: 401, .. }),
        "{wrong_password}"
    );

    // The metrics saw all of it, labelled by route template, never by id.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "zt_http_requests_total{method=\"POST\",route=\"/api/v1/channels/{channel}/messages\",status=\"201\"} 3"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(&ops.id));
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("zt_audit_appends_total") > 0);
    assert!(value("zt_kms_calls_total") > 0);
    assert_eq!(value("zt_kms_errors_total"), 0);
    // Carol's stream ended with her session, Bob's at the plaintext frame, the impostor's at the
    // handshake.
    assert_eq!(value("zt_realtime_connections"), 0);

    bob_stream.close().await;
    // Shutdown drains realtime: a connected client is told why its stream ends.
    let mut admin_stream = admin.realtime().await.unwrap();
    signal(&running.child, "TERM");
    assert_eq!(
        next_message(&mut admin_stream).await,
        Some(ServerRecord::Closed {
            reason: "shutdown".into()
        })
    );
    assert!(wait_exit(&mut running.child).success());

    // Offline: the transport's security events are in the audit logs.
    let deployment = Deployment::open(
        &dir,
        &Passphrase::Given(SecretString::from(PASSPHRASE)),
        OpenMode::Existing,
    )
    .await
    .unwrap();
    let trail = AuditTrail::new(
        deployment.system_store(),
        zt_audit::checkpoint::NoteSigner::new(
            zt_chat_server::AUDIT_ORIGIN,
            deployment.identity().signing_key(),
        )
        .unwrap(),
        AuditConfig::default(),
    );
    let reader = Actor::System("e2e test".into());
    let mut kinds = Vec::new();
    for tenant in [None, Some(login.workspace.parse().unwrap())] {
        let address = LogAddress {
            tenant,
            kind: LogKind::Security,
        };
        let export = trail.export(&reader, &address).await.unwrap();
        for entry in &export.entries {
            kinds.push(zt_audit::entry::decode(entry).unwrap().kind);
        }
    }
    assert!(
        kinds.contains(&AuditEventKind::PlaintextPacketRejected),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&AuditEventKind::KeyExchangeFailed),
        "{kinds:?}"
    );
    deployment.close().await.unwrap();

    // No secret this scenario used is in the server's log.
    let text = std::fs::read_to_string(&log).unwrap();
    // Structured: every line is one JSON object with a level and a message.
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            record["level"].is_string() && record["fields"].is_object(),
            "{line}"
        );
    }
    assert!(text.contains("listening") && text.contains("deployment opened"));
    for secret in [
        PASSPHRASE,
        admin_password.as_str(),
        bob_password,
        carol_password,
        login.token.as_str(),
        bob_login.token.as_str(),
        carol_login.token.as_str(),
    ] {
        assert!(!text.contains(secret), "the server log holds a secret");
    }
    let secret_part = login.token.split_once('.').unwrap().1;
    assert!(!text.contains(secret_part));
}
