//! Sign-in under a flood: the p50 and p99 of an ordinary user's sign-in while one address floods
//! `POST /api/v1/sessions`, as a ratio to the same sign-ins with no flood, measured in the same
//! run against the same server.
//!
//! - **the server**: the real `zt-chat-server` binary (default argon2id, sled, local KMS, audit)
//!   in its own process, with the API's general request limits lifted so that only the sign-in
//!   limits of zt-core act.
//! - **victims**: four loopback addresses (127.0.0.3 to .6), each signing in as the owner (right
//!   password) in turn, one sign-in every 150 ms in all, so no victim is near its own limit.
//! - **the flood**: 127.0.0.2, 32 connections posting wrong passwords (half at the owner's name,
//!   half at names nobody has) as fast as answers return.
//!
//! The idle run comes first, then the flooded run; each records every victim's sign-in
//! latency. The load generator (this process) runs at nice 10, as attackers and users on other
//! machines would take no CPU from the server. `cargo bench -p zt-chat-server --bench signin`;
//! under `cargo test --benches` (or `-- --test`) it is a short smoke run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary reports failures by panicking"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const VICTIMS: [&str; 4] = ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];
const FLOODER: &str = "127.0.0.2";
const FLOOD_CONNECTIONS: usize = 32;
const PACE: Duration = Duration::from_millis(150);

fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

struct Summary {
    p50: Duration,
    p99: Duration,
    samples: usize,
}

fn summarize(mut latencies: Vec<Duration>) -> Summary {
    latencies.sort();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    Summary {
        p50: pick(0.50),
        p99: pick(0.99),
        samples: latencies.len(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `samples` sign-ins of the owner, round robin over the victims' addresses.
async fn victims(base: &str, password: &str, samples: usize) -> Summary {
    let clients: Vec<reqwest::Client> = VICTIMS.iter().map(|a| client_from(a)).collect();
    let mut latencies = Vec::with_capacity(samples);
    let start = Instant::now();
    for i in 0..samples {
        let due = start + PACE * u32::try_from(i).unwrap();
        tokio::time::sleep_until(due.into()).await;
        let began = Instant::now();
        let response = clients[i % clients.len()]
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let _ = response.bytes().await;
        latencies.push(began.elapsed());
        assert_eq!(status, reqwest::StatusCode::CREATED, "a victim was refused");
    }
    summarize(latencies)
}

fn main() {
    let smoke =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let samples = if smoke { 12 } else { 200 };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zt.toml");
    std::fs::write(
        &config,
        "[limits]\nper_address_per_second = 1000000.0\nper_address_burst = 1000000.0\n\
         per_user_per_second = 1000000.0\nper_user_burst = 1000000.0\n",
    )
    .unwrap();
    let mut command = common::server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "sign-in benchmark passphrase")
        .env("RUST_LOG", "warn");
    let (mut child, addr) = common::start(command);
    let base = format!("http://{addr}");
    let password = std::fs::read_to_string(dir.path().join("data.admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    common::lower_priority();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Warm-up: each victim address signs in once (and so becomes familiar to the account).
        let _ = victims(&base, &password, VICTIMS.len()).await;
        let idle = victims(&base, &password, samples).await;

        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let mut flood = Vec::new();
        for n in 0..FLOOD_CONNECTIONS {
            let (stop, counts, base) = (Arc::clone(&stop), Arc::clone(&counts), base.clone());
            flood.push(tokio::spawn(async move {
                let client = client_from(FLOODER);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let name = if (n + i as usize).is_multiple_of(2) {
                        "admin".to_owned()
                    } else {
                        format!("nobody{n}-{i}")
                    };
                    i += 1;
                    let status = client
                        .post(format!("{base}/api/v1/sessions"))
                        .json(&json!({"username": name, "password": "guess number one"}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    let slot = match status {
                        Ok(429) => 0,
                        Ok(401) => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Let the flood reach its steady state before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let flood_started = Instant::now();
        let flooded = victims(&base, &password, samples).await;
        let flood_seconds = flood_started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for task in flood {
            let _ = task.await;
        }
        let [refused, hashed, other] = [0, 1, 2].map(|i| counts[i].load(Ordering::Relaxed));
        let total = (refused + hashed + other) as f64;
        println!(
            "{:<8} {:>8} {:>9} {:>9} {:>9}",
            "run", "samples", "p50 ms", "p99 ms", "p99 ratio"
        );
        for (name, s) in [("idle", &idle), ("flooded", &flooded)] {
            println!(
                "{name:<8} {:>8} {:>9.1} {:>9.1} {:>9.2}",
                s.samples,
                ms(s.p50),
                ms(s.p99),
                ms(s.p99) / ms(idle.p99)
            );
        }
        println!(
            "flood: {:.0} attempts/s from one address; {:.1}% refused before the hash (429), \
             {:.1}% hashed (401), {other} other",
            total / flood_seconds.max(1e-9),
            100.0 * refused as f64 / total.max(1.0),
            100.0 * hashed as f64 / total.max(1.0),
        );
    });
    common::signal(&child, "TERM");
    common::wait_exit(&mut child);
}
