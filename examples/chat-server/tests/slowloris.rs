//! Slow and idle clients: a slowloris from one address (heads trickled byte by byte, bodies that
//! stall, connections far past the per-address limit) while another address keeps checking
//! `/healthz` and making a signed-in request. The server answers it throughout, closes the slow
//! connections at their deadlines and refuses the ones over the limit at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use common::{server, signal, start, wait_exit};

/// The attacker's own loopback address: the limits are per address.
const ATTACKER: &str = "127.0.0.2:0";
const PER_ADDRESS: usize = 20;
const ATTACK_CONNECTIONS: usize = 120;

async fn connect_from(source: &str, addr: &str) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(source.parse().unwrap())?;
    socket.connect(addr.parse().unwrap()).await
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar answer before the close is fine.
            Ok(Ok(_)) => {}
        }
    }
}

/// One request on a fresh connection from the default address; the status.
async fn status(addr: &str, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_neither_starves_the_server_nor_keeps_its_connections() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("zt.toml");
    std::fs::write(
        &config,
        format!(
            "[connections]\nper_address = {PER_ADDRESS}\ntotal = 500\nheader_timeout_secs = 2\n\
             body_timeout_secs = 2\n"
        ),
    )
    .unwrap();
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "a slowloris test passphrase");
    let (mut child, addr) = start(command);
    let password = std::fs::read_to_string(root.path().join("data.admin-password")).unwrap();
    let login = format!(r#"{{"username":"admin","password":"{}"}}"#, password.trim());
    let http = reqwest::Client::new();
    let token = http
        .post(format!("http://{addr}/api/v1/sessions"))
        .header("content-type", "application/json")
        .body(login)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The attack: heads trickled a byte at a time, and bodies declared and never sent, far
    // more of them than one address may open.
    let mut slow = Vec::new();
    let mut refused = 0;
    for i in 0..ATTACK_CONNECTIONS {
        let Ok(mut stream) = connect_from(ATTACKER, &addr).await else {
            refused += 1;
            continue;
        };
        let start = if i % 2 == 0 {
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_owned()
        } else {
            "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             content-length: 4096\r\n\r\n{"
                .to_owned()
        };
        if stream.write_all(start.as_bytes()).await.is_err() {
            refused += 1;
            continue;
        }
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        // Keep every head growing by a byte every 300 ms for 6 s: a trickle never completes a
        // head, so only the deadline ends it.
        for _ in 0..20 {
            for stream in &mut slow {
                let _ = stream.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        slow
    });

    // Meanwhile, from another address: health and a signed-in request keep being answered.
    let checks_until = Instant::now() + Duration::from_secs(5);
    let mut checks = 0;
    while Instant::now() < checks_until {
        let health = tokio::time::timeout(
            Duration::from_secs(10),
            status(
                &addr,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ),
        )
        .await
        .expect("/healthz did not answer during the attack");
        assert_eq!(health, 200);
        let me = tokio::time::timeout(
            Duration::from_secs(10),
            http.get(format!("http://{addr}/api/v1/users/me"))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .expect("a signed-in request did not answer during the attack")
        .unwrap();
        assert_eq!(me.status(), 200);
        checks += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checks >= 5, "{checks}");

    // Every slow connection was closed: those over the limit at once, the others at their
    // deadline (2 s), long before the 6 s trickle would have ended.
    let mut slow = trickle.await.unwrap();
    for stream in &mut slow {
        assert!(
            closed_within(stream, Duration::from_secs(1)).await,
            "a slow connection outlived its deadline"
        );
    }
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused_total: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("zt_http_connections_refused_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        refused_total + refused >= ATTACK_CONNECTIONS - PER_ADDRESS,
        "refused {refused_total} + {refused}: {metrics}"
    );
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
}
