//! The server over TLS (rustls) from configured PEM files: HTTPS answers, plaintext does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code reports failures by panicking"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{Server, server, signal, wait_exit};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use zt_chat_client::ServerRecord;
use zt_chat_client::Visibility;
use zt_chat_client::{Client, ClientError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_https_with_the_configured_certificate() {
    let root = tempfile::tempdir().unwrap();
    let cert = root.path().join("cert.pem");
    let key = root.path().join("key.pem");
    // A self-signed certificate for 127.0.0.1 (openssl is part of the base system here and in CI).
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=zt test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success());

    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("ZT_KMS_PASSPHRASE", "a tls test passphrase")
        .stdout(Stdio::piped());
    let mut child = Server::spawn(&mut command);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("zt-chat-server listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: zt\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The client library (and so the CLI, with --ca-cert) speaks HTTPS, and the realtime
    // channel runs inside WSS.
    let base = format!("https://{addr}");
    let anonymous = Client::with_ca(&base, Some(&cert)).unwrap();
    let identity = anonymous.identity().await.unwrap();
    let anonymous = anonymous.bind(identity);
    let password = std::fs::read_to_string(root.path().join("data.admin-password")).unwrap();
    let login = anonymous
        .login(None, "admin", password.trim())
        .await
        .unwrap();
    let admin = anonymous.clone().with_token(login.token);
    let mut stream = admin.realtime().await.unwrap();
    let channel = admin
        .create_channel("tls", Visibility::Public, "")
        .await
        .unwrap();
    admin.post_message(&channel.id, "over tls").await.unwrap();
    loop {
        match stream.next().await.unwrap() {
            Some(ServerRecord::Posted { message }) => {
                assert_eq!(message.body, "over tls");
                break;
            }
            Some(_) => {}
            None => panic!("the stream closed"),
        }
    }
    stream.close().await;
    // Without the CA the client refuses the self-signed server.
    let untrusting = Client::new(&base).unwrap();
    assert!(matches!(
        untrusting.identity().await,
        Err(ClientError::Http(_))
    ));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: zt\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut answer),
    )
    .await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"));

    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}

#[test]
fn a_bad_certificate_stops_the_start() {
    let root = tempfile::tempdir().unwrap();
    let junk = root.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let output = server()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .arg("--tls-cert")
        .arg(&junk)
        .arg("--tls-key")
        .arg(&junk)
        .env("ZT_KMS_PASSPHRASE", "a tls test passphrase")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk.pem"), "{stderr}");
    let half = server()
        .args(["serve", "--tls-cert", "/x.pem"])
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2));
}
