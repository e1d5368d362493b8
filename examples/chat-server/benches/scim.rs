//! SCIM provisioning against the reference SCIM server `scim2-server` (PyPI 0.8.3, its in-memory
//! store), both driven by this one load generator in the same run:
//!
//! - **create**: users created per second, 32 POSTs in flight, the first 1,000 users;
//! - **filter**: the latency of `userName eq "…"` (one user, named at random) with 1,000 and
//!   with 10,000 users stored, 200 lookups one after the other each time, and how it grows.
//!   Each is measured once the server has been idle for [`SETTLE`] (what a lookup costs with
//!   that many users); the 10,000 one also right after the 9,000 creates before it, while the
//!   server still writes them back (what a provider's lookups meet in the middle of a push);
//! - **sync**: a 10,000-user initial push as an identity provider makes it, a lookup by
//!   `userName` then a create for each user, 32 users in flight.
//!
//! zt is the real `zt-chat-server` binary (sled, every user committed durably, encrypted at rest
//! under the local KMS, audited), its per-address and per-key limits lifted so the server is what
//! is measured. The peer is its own command line (`scim2-server`: its schemas, provider and
//! in-memory storage) served by waitress, a production WSGI server, in one process so every
//! request shares the store (`scripts/scim2-peer.py`, which says why: the command's own
//! `wsgiref` server drops connections at 32 in flight). `ZT_SCIM2_SERVER` names another command
//! taking `--hostname` and `--port`; by default the venv `scripts/scim-test.sh` installs in
//! `target/scim-venv` runs the script. The load generator runs at nice 10.
//! `cargo bench -p zt-chat-server --bench scim`; under `cargo test --benches` (or `-- --test`)
//! it is a short smoke run on a few hundred users.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary reports failures by panicking"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const IN_FLIGHT: usize = 32;
/// How long the load generator waits, idle, before a latency is measured (none in the smoke run).
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Target {
    name: &'static str,
    base: String,
    bearer: Option<String>,
    client: reqwest::Client,
}

impl Target {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/scim+json");
        match &self.bearer {
            Some(token) => r.bearer_auth(token),
            None => r,
        }
    }

    /// Sends until the answer is not 429 (waiting as `Retry-After` says), and returns it.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        loop {
            let mut r = self.request(method.clone(), path);
            if let Some(body) = body {
                r = r.body(body.to_string());
            }
            let response = r.send().await.unwrap();
            let status = response.status().as_u16();
            if status == 429 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let bytes = response.bytes().await.unwrap();
            return (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            );
        }
    }

    async fn create(&self, name: &str) {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "name": { "givenName": "Given", "familyName": name },
            "emails": [{ "value": format!("{name}@example.test"), "type": "work", "primary": true }],
            "active": true
        });
        let (status, answer) = self
            .send(reqwest::Method::POST, "/Users", Some(&body))
            .await;
        assert_eq!(status, 201, "{}: creating {name}: {answer}", self.name);
    }

    async fn lookup(&self, name: &str) -> usize {
        let filter = format!("userName eq \"{name}\"");
        let path = format!("/Users?filter={}", urlencode(&filter));
        let (status, answer) = self.send(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{}: {answer}", self.name);
        answer["totalResults"].as_u64().unwrap() as usize
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `work(i)` for `i` in `from..to`, `IN_FLIGHT` at a time; the time it took.
async fn in_flight<F, Fut>(from: usize, to: usize, work: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(from));
    let work = Arc::new(work);
    let started = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (next, work) = (Arc::clone(&next), Arc::clone(&work));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        return;
                    }
                    work(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// `samples` lookups of existing users (of the first `stored`), one after the other: p50, p99.
async fn filter_latency(target: &Target, stored: usize, samples: usize) -> (Duration, Duration) {
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        // Spread over the stored users, deterministically.
        let n = (i * 7919 + 13) % stored;
        let began = Instant::now();
        let found = target.lookup(&format!("load{n:05}")).await;
        latencies.push(began.elapsed());
        assert_eq!(found, 1, "{}: load{n:05}", target.name);
    }
    latencies.sort();
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

struct Figures {
    create_per_second: f64,
    filter_small: (Duration, Duration),
    filter_large: (Duration, Duration),
    filter_large_busy: (Duration, Duration),
    sync: Duration,
}

async fn measure(
    target: &Target,
    small: usize,
    large: usize,
    sync_users: usize,
    samples: usize,
    settle: Duration,
) -> Figures {
    let t = target.clone();
    let took = in_flight(0, small, move |i| {
        let t = t.clone();
        async move { t.create(&format!("load{i:05}")).await }
    })
    .await;
    let create_per_second = small as f64 / took.as_secs_f64();
    tokio::time::sleep(settle).await;
    let filter_small = filter_latency(target, small, samples).await;
    let t = target.clone();
    in_flight(small, large, move |i| {
        let t = t.clone();
        async move { t.create(&format!("load{i:05}")).await }
    })
    .await;
    let filter_large_busy = filter_latency(target, large, samples).await;
    tokio::time::sleep(settle).await;
    let filter_large = filter_latency(target, large, samples).await;
    let t = target.clone();
    let sync = in_flight(0, sync_users, move |i| {
        let t = t.clone();
        async move {
            let name = format!("sync{i:05}");
            if t.lookup(&name).await == 0 {
                t.create(&name).await;
            }
        }
    })
    .await;
    Figures {
        create_per_second,
        filter_small,
        filter_large,
        filter_large_busy,
        sync,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peer_command() -> Command {
    if let Some(path) = std::env::var_os("ZT_SCIM2_SERVER") {
        return Command::new(path);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/scim-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/scim-test.sh once (it installs scim2-cli, scim2-server and \
         waitress), or set ZT_SCIM2_SERVER",
        python.display()
    );
    let mut command = Command::new(python);
    command.arg(root.join("scripts/scim2-peer.py"));
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_up(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer");
}

fn main() {
    let smoke =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let settle = if smoke { Duration::ZERO } else { SETTLE };
    let (small, large, sync_users, samples) = if smoke {
        (50, 200, 100, 20)
    } else {
        (1_000, 10_000, 10_000, 200)
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zt.toml");
    std::fs::write(
        &config,
        "[limits]\nper_address_per_second = 1000000.0\nper_address_burst = 1000000.0\n\
         per_user_per_second = 1000000.0\nper_user_burst = 1000000.0\n\
         per_scim_key_per_second = 1000000.0\nper_scim_key_burst = 1000000.0\n",
    )
    .unwrap();
    let mut command = common::server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "scim benchmark passphrase")
        .env("RUST_LOG", "warn");
    let (mut zt, addr) = common::start(command);
    let password = std::fs::read_to_string(dir.path().join("data.admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    let port = free_port();
    let mut peer = common::Server::spawn(
        peer_command()
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    common::lower_priority();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .unwrap();
        let base = format!("http://{addr}");
        let token: Value = client
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({ "username": "admin", "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key: Value = client
            .post(format!("{base}/api/v1/admin/scim/keys"))
            .bearer_auth(token["token"].as_str().unwrap())
            .json(&json!({ "label": "bench" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let zt = Target {
            name: "zt",
            base: format!("{base}/scim/v2"),
            bearer: Some(key["secret"].as_str().unwrap().to_owned()),
            client: client.clone(),
        };
        let peer_base = format!("http://127.0.0.1:{port}/v2");
        wait_up(&client, &format!("{peer_base}/ServiceProviderConfig")).await;
        let peer = Target {
            name: "scim2-server",
            base: peer_base,
            bearer: None,
            client,
        };
        let peer_figures = measure(&peer, small, large, sync_users, samples, settle).await;
        let zt_figures = measure(&zt, small, large, sync_users, samples, settle).await;
        println!(
            "{:<14} {:>10} {:>14} {:>14} {:>14} {:>14} {:>8} {:>16} {:>16} {:>10}",
            "server",
            "create/s",
            "eq@small p50",
            "eq@small p99",
            "eq@large p50",
            "eq@large p99",
            "growth",
            "busy@large p50",
            "busy@large p99",
            "sync s"
        );
        for (name, f) in [("scim2-server", &peer_figures), ("zt", &zt_figures)] {
            println!(
                "{name:<14} {:>10.0} {:>14.2} {:>14.2} {:>14.2} {:>14.2} {:>8.2} {:>16.2} {:>16.2} {:>10.1}",
                f.create_per_second,
                ms(f.filter_small.0),
                ms(f.filter_small.1),
                ms(f.filter_large.0),
                ms(f.filter_large.1),
                ms(f.filter_large.0) / ms(f.filter_small.0),
                ms(f.filter_large_busy.0),
                ms(f.filter_large_busy.1),
                f.sync.as_secs_f64(),
            );
        }
        println!(
            "zt / scim2-server: create {:.2}x; sync {:.2}x as fast ({small} then {large} users, \
             {sync_users} synced, {samples} lookups each)",
            zt_figures.create_per_second / peer_figures.create_per_second,
            peer_figures.sync.as_secs_f64() / zt_figures.sync.as_secs_f64(),
        );
    });
    common::signal(&zt, "TERM");
    common::wait_exit(&mut zt);
    let _ = peer.kill();
    let _ = peer.wait();
}
