//! Single sign-on against a real OpenID provider (npm oidc-provider, `ZT_TEST_OIDC_PROVIDER`;
//! without it the benchmark says it was skipped):
//! - `sso/callback/bare_openidconnect_verify`: the baseline, `openidconnect`'s own verifier on
//!   the provider's RS256 ID token, as an RP using it alone would write it: the verifier built
//!   once over the key set, the token parsed from its text each time and checked with its nonce;
//! - `sso/callback/ring_rs256_signature_only`: the token's signature alone, checked by ring (the
//!   primitive zt's own check uses for RSA: its share of the callback);
//! - `sso/callback/callback_work`: what the callback does once the code is exchanged, on the same
//!   token: the checks (`openidconnect`'s verifier over zt's key type, whose RSA check is ring's,
//!   plus `azp`, `nbf`, `iat`), the identity link's lookup, an SSO session written to sled behind
//!   the encrypting store, and its indexes;
//! - `sso/callback_64_in_flight/…`: the same two with 64 at once on a two-worker runtime (sign-ins
//!   arrive together; the sessions' durable commits share their flushes, as group commit does
//!   for any concurrent writes, and the verifications use both cores in both rows);
//! - `sso/callback_64_in_flight/session_create_only`: the store's own part, 64 SSO sessions
//!   created at once with nothing else (the disk's baseline for the row above);
//! - the key-set behaviour under a flood of 1,000 tokens naming unknown keys: fetches counted,
//!   printed as an extra line (`sso/unknown_kid_flood`).
//!
//! `cargo bench -p zt-benches --bench sso`, then `python3 scripts/bench-ratios.py`;
//! `SSO_BENCH_MEMORY=1` runs the same on the memory store (no disk), to tell the relying party's
//! own work from the durable commit.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use secrecy::SecretString;
use tokio::runtime::Runtime;
use zt_core::identity::{
    ProviderConfig, Provisioning, Sessions, Sso, SsoClient, SsoClientConfig, TenantContext, Users,
};
use zt_core::testing::oidc::{OpenIdProvider, TestClient};
use zt_core::{InProcessBus, SystemClock, TenantId};
use zt_crypto::Kms as _;
use zt_storage::{EncryptingStore, KvKeyRecords, KvStore, Namespace, SledConfig, SledStore};

const NONCE: &str = "a-benchmark-nonce";

struct World {
    _dir: tempfile::TempDir,
    _op: OpenIdProvider,
    sso: Sso,
    sessions: Arc<Sessions>,
    user: zt_core::UserId,
    client: Arc<SsoClient>,
    token: String,
    /// Built once, as an RP using `openidconnect` alone keeps it for as long as the key set.
    verifier: CoreIdTokenVerifier<'static>,
    /// The provider's RSA key (n, e), for the bare signature row.
    rsa: (Vec<u8>, Vec<u8>),
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

fn world(rt: &Runtime) -> Option<World> {
    rt.block_on(async {
        let registered = TestClient::new("zt-bench", "http://127.0.0.1:9/callback");
        let op = OpenIdProvider::start(vec![registered.clone()], "key-1").await?;
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn KvStore> = if std::env::var("SSO_BENCH_MEMORY").is_ok() {
            Arc::new(zt_storage::MemoryStore::new())
        } else {
            Arc::new(SledStore::open(SledConfig::new(dir.path())).await.unwrap())
        };
        let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
        let key = zt_crypto::KeyId::new("tenants").unwrap();
        kms.create_key(&key).await.unwrap();
        let keyring = Arc::new(zt_crypto::Keyring::new(
            kms,
            Arc::new(KvKeyRecords::new(inner.clone(), ns("zt.keys"))),
            key,
            zt_crypto::KeyringConfig::default(),
        ));
        let store = zt_core::identity::blind_identity(
            EncryptingStore::new(inner, keyring, "tenant-1").reserve_namespace(ns("zt.keys")),
        )
        .unwrap();
        let clock = Arc::new(SystemClock);
        let ctx = TenantContext {
            store: Arc::new(store),
            tenant: TenantId::from_bytes([1; 16]),
            clock: clock.clone(),
            audit: Arc::new(zt_core::testing::NullSink),
            bus: Arc::new(InProcessBus::default()),
        };
        let users = Arc::new(Users::new(ctx.clone()).unwrap());
        let sessions = Arc::new(Sessions::new(ctx.clone(), users.clone()).await.unwrap());
        let client = Arc::new(SsoClient::new(SsoClientConfig::default(), clock).unwrap());
        let sso = Sso::new(ctx, users, sessions.clone(), client.clone()).unwrap();
        let mut config = ProviderConfig::new(
            "corp",
            &op.issuer(),
            &registered.client_id,
            "http://127.0.0.1:9/callback",
        );
        config.provisioning = Provisioning::Create;
        config.algorithms = vec!["RS256".into()];
        sso.set_provider(
            config,
            Some(&SecretString::from(registered.client_secret.clone())),
        )
        .await
        .unwrap();
        let token = op.id_token(&registered, "bench-user", NONCE).await;
        // The first sign-in provisions the account and links it; the measured ones find it.
        let user = sso
            .sign_in_with_id_token("corp", &token, Some(NONCE))
            .await
            .unwrap()
            .user
            .id;
        let jwks_text = reqwest::get(format!("{}/jwks", op.issuer()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let jwks: CoreJsonWebKeySet = serde_json::from_str(&jwks_text).unwrap();
        let key: serde_json::Value = serde_json::from_str(&jwks_text).unwrap();
        let component = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(key["keys"][0][name].as_str().unwrap())
                .unwrap()
        };
        let rsa = (component("n"), component("e"));
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new("zt-bench".into()),
            IssuerUrl::new(op.issuer()).unwrap(),
            jwks,
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        Some(World {
            _dir: dir,
            _op: op,
            sso,
            sessions,
            user,
            client,
            token,
            verifier,
            rsa,
        })
    })
}

/// What an RP using `openidconnect` alone does for an ID token: parse it, verify it.
fn bare_verify(world: &World) -> String {
    let token: CoreIdToken = world.token.parse().unwrap();
    let nonce = Nonce::new(NONCE.into());
    let claims = token.claims(&world.verifier, &nonce).unwrap();
    claims.subject().as_str().to_owned()
}

/// The token's RS256 signature alone, checked by ring: the primitive under zt's own check.
fn ring_signature_only(world: &World) -> bool {
    let dot = world.token.rfind('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(&world.token[dot + 1..]).unwrap();
    let (n, e) = &world.rsa;
    ring::signature::RsaPublicKeyComponents { n, e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &world.token.as_bytes()[..dot],
            &signature,
        )
        .is_ok()
}

/// Runs `n` copies of `work` at once as tasks of the runtime and waits for all of them.
async fn in_flight<F, Fut, T>(world: &Arc<World>, n: usize, work: F)
where
    F: Fn(Arc<World>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(work(world.clone()))).collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn bench_callback(c: &mut Criterion) {
    // Two workers: the machine's two cores, for both rows.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(world) = world(&rt) else {
        return;
    };
    let world = Arc::new(world);
    let mut group = c.benchmark_group("sso/callback");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare_openidconnect_verify", |b| {
        b.iter(|| bare_verify(&world));
    });
    group.bench_function("ring_rs256_signature_only", |b| {
        b.iter(|| assert!(ring_signature_only(&world)));
    });
    group.bench_function("callback_work", |b| {
        b.to_async(&rt).iter(|| async {
            world
                .sso
                .sign_in_with_id_token("corp", &world.token, Some(NONCE))
                .await
                .unwrap()
        });
    });
    group.finish();

    const IN_FLIGHT: usize = 64;
    let mut group = c.benchmark_group("sso/callback_64_in_flight");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("bare_openidconnect_verify", |b| {
        b.to_async(&rt)
            .iter(|| in_flight(&world, IN_FLIGHT, |w| async move { bare_verify(&w) }));
    });
    group.bench_function("ring_rs256_signature_only", |b| {
        b.to_async(&rt).iter(|| {
            in_flight(&world, IN_FLIGHT, |w| async move {
                assert!(ring_signature_only(&w));
            })
        });
    });
    group.bench_function("callback_work", |b| {
        b.to_async(&rt).iter(|| {
            in_flight(&world, IN_FLIGHT, |w| async move {
                w.sso
                    .sign_in_with_id_token("corp", &w.token, Some(NONCE))
                    .await
                    .unwrap();
            })
        });
    });
    group.bench_function("session_create_only", |b| {
        b.to_async(&rt).iter(|| {
            in_flight(&world, IN_FLIGHT, |w| async move {
                w.sessions
                    .create(w.user, zt_core::identity::SessionKind::Sso)
                    .await
                    .unwrap();
            })
        });
    });
    group.finish();

    // A flood of tokens naming keys the provider never had: how many key-set fetches it makes.
    let before = world.client.fetches();
    let payload = world.token.split('.').nth(1).unwrap().to_owned();
    let signature = world.token.split('.').nth(2).unwrap().to_owned();
    let started = std::time::Instant::now();
    rt.block_on(async {
        for i in 0..1000 {
            let header = URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"RS256","kid":"flood-{i}"}}"#).as_bytes());
            let raw = format!("{header}.{payload}.{signature}");
            let refused = world.sso.check_id_token("corp", &raw, Some(NONCE)).await;
            assert!(refused.is_err());
        }
    });
    println!(
        "sso/unknown_kid_flood: 1000 tokens with unknown kids, {} key-set fetches, {:.1} ms",
        world.client.fetches() - before,
        started.elapsed().as_secs_f64() * 1000.0
    );
}

criterion_group!(benches, bench_callback);
criterion_main!(benches);
