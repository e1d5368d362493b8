//! Load generator for the realtime channel: N clients on loopback, one poster, delivered
//! messages per second and delivery latency, beside a bare axum WebSocket broadcast server run
//! by this same binary in the same run; and the server's memory per idle realtime connection.
//!
//! - **zt**: the real `zt-chat-server` binary (sled, local KMS, audit) in its own process. The
//!   clients sign in as 20 users (fewer when N is smaller), each over the Noise channel with its
//!   own handshake, all members of one channel; the poster posts through `POST .../messages`.
//! - **bare**: axum with a `tokio::sync::broadcast` fan-out, plain WebSocket text frames, no
//!   authentication, encryption or storage; this binary run with `--bare-server`, in its own
//!   process like the zt server.
//!
//! The load generator (this process) runs at nice 10: both servers get the CPU they ask for first,
//! as they would with their clients on other machines, and the clients take what is left.
//!
//! Each message carries its send time; each client records when it arrived. Throughput is
//! deliveries divided by the time from the first post to the last delivery. Run with
//! `cargo bench -p zt-chat-server --bench realtime`; under `cargo test --benches` (or with
//! `-- --test`) it is a 10-client smoke run. `ZT_REALTIME_SIZES=1000` picks the client counts.
//!
//! Each run starts with one unmeasured message ([`WARM_UP`]) to both servers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark binary reports failures by panicking"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message as AxumWs, WebSocketUpgrade};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use tokio::sync::{Barrier, broadcast, mpsc};
use zt_chat_client::Client;
use zt_chat_client::ServerRecord;
use zt_chat_client::Visibility;

/// How many messages the poster sends per run.
const MESSAGES: usize = 200;
/// The text of the unmeasured first message of a run: it warms both servers and the clients
/// (first-use allocations and caches), so the figures describe the steady state. It is not a
/// number, so [`latency`] skips it.
const WARM_UP: &str = "warm-up";
/// How long the run waits after the warm-up message.
const SETTLE: Duration = Duration::from_millis(200);
/// How many users the zt clients sign in as.
const USERS: usize = 20;

struct Outcome {
    deliveries: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut latencies: Vec<Duration>, first_post: Instant, last: Instant) -> Outcome {
    latencies.sort();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    let elapsed = last
        .saturating_duration_since(first_post)
        .as_secs_f64()
        .max(1e-9);
    Outcome {
        deliveries: latencies.len(),
        per_second: latencies.len() as f64 / elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

/// Micros since `epoch`, as the message text.
fn stamp(epoch: Instant) -> String {
    epoch.elapsed().as_micros().to_string()
}

/// A delivery: when its message was sent (since the epoch), its latency, and when it arrived.
type Delivery = (Duration, Duration, Instant);

fn latency(epoch: Instant, body: &str) -> Option<Delivery> {
    let sent = Duration::from_micros(body.parse().ok()?);
    let now = Instant::now();
    Some((sent, now.duration_since(epoch).saturating_sub(sent), now))
}

/// Collects every client's latencies until each got `expected` messages.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    expected: usize,
) -> (Vec<Duration>, Instant) {
    let mut latencies = Vec::with_capacity(expected);
    let mut slowest = std::collections::BTreeMap::<Duration, Duration>::new();
    let mut last = Instant::now();
    while latencies.len() < expected {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some((sent, latency, at))) => {
                latencies.push(latency);
                let worst = slowest.entry(sent).or_default();
                *worst = (*worst).max(latency);
                last = at;
            }
            _ => break,
        }
    }
    let mut worst: Vec<Duration> = slowest.into_values().collect();
    worst.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!(
        "  per message, the last delivery: slowest {:?} ms; median {:.1} ms",
        worst
            .iter()
            .take(5)
            .map(|d| (ms(*d) * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        worst.get(worst.len() / 2).map_or(0.0, |d| ms(*d)),
    );
    (latencies, last)
}

// ---- bare axum broadcast baseline -------------------------------------------------------

async fn bare_ws(
    State(tx): State<broadcast::Sender<String>>,
    ws: WebSocketUpgrade,
) -> axum::response::Response {
    ws.on_upgrade(move |mut socket| async move {
        let mut rx = tx.subscribe();
        while let Ok(text) = rx.recv().await {
            if socket.send(AxumWs::Text(text.into())).await.is_err() {
                return;
            }
        }
    })
}

async fn bare_post(State(tx): State<broadcast::Sender<String>>, body: String) {
    let _ = tx.send(body);
}

/// Waits for the `i`th post's slot when paced.
async fn pace(start: Instant, interval: Option<Duration>, i: usize) {
    if let Some(interval) = interval {
        tokio::time::sleep_until((start + interval * u32::try_from(i).unwrap()).into()).await;
    }
}

/// `--bare-server`: the baseline server alone in this process, until killed.
fn bare_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tx, _) = broadcast::channel::<String>(4096);
        let app = axum::Router::new()
            .route("/ws", get(bare_ws))
            .route("/post", post(bare_post))
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("bare listening on {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// Starts the baseline server as a child process of this binary, like the zt server.
fn start_bare() -> (common::Server, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .arg("--bare-server")
        .stdout(std::process::Stdio::piped());
    let mut child = common::Server::spawn(&mut command);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("bare listening on ")
        .unwrap()
        .to_owned();
    (child, addr)
}

async fn bare(addr: &str, clients: usize, messages: usize, interval: Option<Duration>) -> Outcome {
    let epoch = Instant::now();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let ready = Arc::new(Barrier::new(clients + 1));
    for _ in 0..clients {
        let done = done_tx.clone();
        let ready = Arc::clone(&ready);
        let url = format!("ws://{addr}/ws");
        tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            ready.wait().await;
            let mut got = 0;
            while got <= messages {
                match ws.next().await {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                        if let Some(l) = latency(epoch, text.as_str()) {
                            let _ = done.send(l);
                        }
                        got += 1;
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        });
    }
    ready.wait().await;
    // Subscriptions happen right after the upgrade; give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::new();
    let post = |body: String| http.post(format!("http://{addr}/post")).body(body).send();
    post(WARM_UP.to_owned()).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    let first_post = Instant::now();
    for i in 0..messages {
        pace(first_post, interval, i).await;
        post(stamp(epoch)).await.unwrap();
    }
    let (latencies, last) = collect(done_rx, clients * messages).await;
    summarize(latencies, first_post, last)
}

// ---- the zt server ------------------------------------------------------------------------

struct ZtServer {
    child: common::Server,
    base: String,
    dir: tempfile::TempDir,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn start_zt() -> ZtServer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("zt.toml");
    std::fs::write(
        &config,
        "[limits]\nper_address_per_second = 1000000.0\nper_address_burst = 1000000.0\n\
         per_user_per_second = 1000000.0\nper_user_burst = 1000000.0\n\n\
         [connections]\nper_address = 100000\ntotal = 100000\n",
    )
    .unwrap();
    let mut command = common::server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "realtime benchmark passphrase")
        .env("RUST_LOG", "warn");
    let (child, addr) = common::start(command);
    ZtServer {
        child,
        base: format!("http://{addr}"),
        dir,
    }
}

async fn zt(
    server: &ZtServer,
    clients: usize,
    messages: usize,
    interval: Option<Duration>,
    run: &str,
) -> (Outcome, f64) {
    let password = std::fs::read_to_string(server.dir.path().join("data.admin-password")).unwrap();
    let anonymous = Client::new(&server.base).unwrap();
    let identity = anonymous.identity().await.unwrap();
    let anonymous = anonymous.bind(identity);
    let admin_login = anonymous
        .login(None, "admin", password.trim())
        .await
        .unwrap();
    let admin = anonymous.clone().with_token(admin_login.token);
    let channel = admin
        .create_channel(&format!("load-{clients}-{run}"), Visibility::Private, "")
        .await
        .unwrap();
    let users = USERS.min(clients);
    let mut tokens = Vec::new();
    for i in 0..users {
        let name = format!("load{clients}-{i}");
        let user_password = format!("benchmark password {i} {clients}");
        let user = match admin.find_user(&name).await.unwrap() {
            Some(user) => user,
            None => admin
                .create_user(&name, &name, &user_password)
                .await
                .unwrap(),
        };
        admin.add_member(&channel.id, &user.id).await.unwrap();
        tokens.push(
            anonymous
                .login(None, &name, &user_password)
                .await
                .unwrap()
                .token,
        );
    }
    let before = rss_kib(server.child.id());
    let epoch = Instant::now();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let ready = Arc::new(Barrier::new(clients + 1));
    for i in 0..clients {
        let client = anonymous.clone().with_token(tokens[i % users].clone());
        let done = done_tx.clone();
        let ready = Arc::clone(&ready);
        tokio::spawn(async move {
            let mut stream = client.realtime().await.unwrap();
            ready.wait().await;
            let mut got = 0;
            while got <= messages {
                match stream.next().await {
                    Ok(Some(ServerRecord::Posted { message })) => {
                        if let Some(l) = latency(epoch, &message.body) {
                            let _ = done.send(l);
                        }
                        got += 1;
                    }
                    Ok(Some(_)) => {}
                    _ => return,
                }
            }
            stream.close().await;
        });
    }
    ready.wait().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_kib = rss_kib(server.child.id()).saturating_sub(before);
    let per_connection = idle_kib as f64 * 1024.0 / clients as f64;
    admin.post_message(&channel.id, WARM_UP).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    let first_post = Instant::now();
    let mut posts = Vec::with_capacity(messages);
    for i in 0..messages {
        pace(first_post, interval, i).await;
        let start = Instant::now();
        admin
            .post_message(&channel.id, &stamp(epoch))
            .await
            .unwrap();
        posts.push(start.elapsed());
    }
    posts.sort();
    eprintln!(
        "zt N={clients} {run}: POST p50 {:.2} ms, p99 {:.2} ms",
        ms(posts[posts.len() / 2]),
        ms(posts[(posts.len() - 1) * 99 / 100])
    );
    let (latencies, last) = collect(done_rx, clients * messages).await;
    (summarize(latencies, first_post, last), per_connection)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(server: &str, run: &str, n: usize, o: &Outcome, ratio: f64, memory: Option<f64>) {
    println!(
        "{server:<6} {run:<6} {n:>6} {:>12} {:>14.0} {:>9.2} {:>9.2} {ratio:>8.2} {:>12}",
        o.deliveries,
        o.per_second,
        ms(o.p50),
        ms(o.p99),
        memory.map_or_else(|| "-".to_owned(), |m| format!("{m:.0}"))
    );
}

fn main() {
    if std::env::args().any(|a| a == "--bare-server") {
        bare_server();
        return;
    }
    // Both servers run in their own processes at normal priority; the load generator (this
    // process, whose runtime threads are started after this) runs at nice 10, so on a machine
    // it shares with them it takes the CPU they leave, as clients on other machines would.
    let zt = start_zt();
    let (bare, bare_addr) = start_bare();
    common::lower_priority();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(zt, bare, &bare_addr));
}

async fn run(mut server: ZtServer, bare_server: common::Server, bare_addr: &str) {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: there (or with `--test`)
    // this is a quick smoke run, as criterion does.
    let smoke =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    // `burst`: the poster posts as fast as its requests return (throughput); `paced`: 20
    // messages a second (delivery latency below saturation).
    let (mut sizes, burst, paced): (Vec<usize>, usize, usize) = if smoke {
        (vec![10], 5, 5)
    } else {
        (vec![100, 1000], MESSAGES, 100)
    };
    // `ZT_REALTIME_SIZES=1000` runs only the sizes given (comma-separated).
    if let Ok(given) = std::env::var("ZT_REALTIME_SIZES") {
        sizes = given
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
    }
    let interval = Some(Duration::from_millis(50));
    println!(
        "{:<6} {:<6} {:>6} {:>12} {:>14} {:>9} {:>9} {:>8} {:>12}",
        "server",
        "run",
        "N",
        "deliveries",
        "delivered/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "idle B/conn"
    );
    // `ZT_REALTIME_RUNS=paced` runs only the runs given (comma-separated).
    let runs = std::env::var("ZT_REALTIME_RUNS").unwrap_or_else(|_| "burst,paced".into());
    for &n in &sizes {
        for (run, messages, interval) in [("burst", burst, None), ("paced", paced, interval)] {
            if !runs.split(',').any(|r| r.trim() == run) {
                continue;
            }
            let base = bare(bare_addr, n, messages, interval).await;
            row("bare", run, n, &base, 1.0, None);
            let (outcome, memory) = zt(&server, n, messages, interval, run).await;
            row(
                "zt",
                run,
                n,
                &outcome,
                outcome.per_second / base.per_second,
                Some(memory),
            );
            assert_eq!(
                outcome.deliveries,
                n * messages,
                "every message reaches every client"
            );
            assert_eq!(base.deliveries, n * messages);
        }
    }
    common::signal(&server.child, "TERM");
    common::wait_exit(&mut server.child);
    drop(bare_server);
}
