//! Single sign-on against a real OpenID provider (npm oidc-provider, started per test on
//! 127.0.0.1): the code flow, each refusal with its own answer and nothing created, token checks,
//! key rotation and a flood of unknown keys, provisioning, back-channel logout and the device
//! flow. Without `ZT_TEST_OIDC_PROVIDER` each test says it was skipped.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use zt_core::identity::{
    AuthSettings, Authenticator, AuthorizationResponse, DevicePoll, LockoutPolicy, NewUser,
    PasswordConfig, PasswordHasher, ProviderConfig, Provisioning, SessionKind, Sessions, SignIn,
    Sso, SsoClient, SsoClientConfig, SsoRefusal, Users,
};
use zt_core::testing::oidc::{Browser, OpenIdProvider, TestClient, response_of};
use zt_core::{AuditEventKind, Error, ErrorKind, Timestamp};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

struct Rp {
    base: common::Base,
    users: Arc<Users>,
    sessions: Arc<Sessions>,
    sso: Sso,
    client: Arc<SsoClient>,
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

async fn rp() -> Rp {
    let base = common::base().await;
    base.clock.set(now());
    let ctx = base.ctx();
    let users = Arc::new(Users::new(ctx.clone()).unwrap());
    let sessions = Arc::new(Sessions::new(ctx.clone(), users.clone()).await.unwrap());
    let client = Arc::new(SsoClient::new(SsoClientConfig::default(), base.clock.clone()).unwrap());
    let sso = Sso::new(ctx, users.clone(), sessions.clone(), client.clone()).unwrap();
    Rp {
        base,
        users,
        sessions,
        sso,
        client,
    }
}

fn provider(
    op: &OpenIdProvider,
    client: &TestClient,
    provisioning: Provisioning,
) -> ProviderConfig {
    let mut config = ProviderConfig::new("corp", &op.issuer(), &client.client_id, CALLBACK);
    config.scopes = vec!["email".into(), "profile".into(), "groups".into()];
    config.provisioning = provisioning;
    config.algorithms = vec!["RS256".into()];
    config
}

async fn configure(rp: &Rp, op: &OpenIdProvider, client: &TestClient, provisioning: Provisioning) {
    rp.sso
        .set_provider(
            provider(op, client, provisioning),
            Some(&SecretString::from(client.client_secret.clone())),
        )
        .await
        .unwrap();
}

/// Starts a flow and signs in at the provider as `login`: the redirect back and the binding.
async fn authorize(
    rp: &Rp,
    op: &OpenIdProvider,
    login: &str,
) -> (AuthorizationResponse, SecretString) {
    let start = rp.sso.start("corp").await.unwrap();
    let back = Browser::new()
        .sign_in(&op.issuer(), &start.url, login)
        .await;
    assert!(back.starts_with(CALLBACK), "{back}");
    // The test clock stands still; the provider's does not.
    rp.base.clock.set(now());
    (response_of(&back), start.binding)
}

async fn sign_in(rp: &Rp, op: &OpenIdProvider, login: &str) -> SignIn {
    let (response, binding) = authorize(rp, op, login).await;
    rp.sso
        .callback(
            "corp",
            &response,
            Some(secrecy::ExposeSecret::expose_secret(&binding)),
        )
        .await
        .unwrap()
}

/// A whole sign-in as `login` that must be refused: why.
async fn refused_sign_in(rp: &Rp, op: &OpenIdProvider, login: &str) -> SsoRefusal {
    let (response, binding) = authorize(rp, op, login).await;
    let e = rp
        .sso
        .callback("corp", &response, Some(expose(&binding)))
        .await;
    refusal(e.unwrap_err())
}

fn refusal(e: Error) -> SsoRefusal {
    match e.kind() {
        ErrorKind::Sso(r) => r,
        other => panic!("not an SSO refusal: {other:?} ({e})"),
    }
}

fn count(rp: &Rp, kind: AuditEventKind) -> usize {
    rp.base.audit.kinds().iter().filter(|k| **k == kind).count()
}

fn failures(rp: &Rp) -> Vec<String> {
    rp.base
        .audit
        .events()
        .iter()
        .filter(|e| e.kind == AuditEventKind::SsoFailed)
        .map(|e| text(e.details.get("reason")))
        .collect()
}

fn text(detail: Option<&zt_core::Detail>) -> String {
    match detail {
        Some(zt_core::Detail::Text(t)) => t.clone(),
        other => format!("{other:?}"),
    }
}

fn expose(s: &SecretString) -> &str {
    secrecy::ExposeSecret::expose_secret(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_signs_in_and_links_the_account_by_issuer_and_subject() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;

    let first = sign_in(&rp, &op, "alice").await;
    assert_eq!(first.user.username, "alice");
    assert_eq!(first.user.email.as_deref(), Some("alice@example.test"));
    assert_eq!(first.session.kind, SessionKind::Sso);
    let session = rp.sessions.validate(&first.token).await.unwrap();
    assert_eq!(session.user, first.user.id);
    assert_eq!(count(&rp, AuditEventKind::SsoSucceeded), 1);
    assert_eq!(count(&rp, AuditEventKind::UserCreated), 1);

    // The same subject again: the same account, no second one.
    let again = sign_in(&rp, &op, "alice").await;
    assert_eq!(again.user.id, first.user.id);
    assert_eq!(count(&rp, AuditEventKind::UserCreated), 1);
    assert_eq!(rp.sso.links_of(first.user.id).await.unwrap(), ["corp"]);

    // RP-initiated logout: the provider's end-session endpoint, for this client.
    let end = rp
        .sso
        .end_session_url("corp", Some(CALLBACK))
        .await
        .unwrap()
        .unwrap();
    assert!(
        end.starts_with(&format!("{}/session/end?", op.issuer())),
        "{end}"
    );
    assert!(end.contains("client_id=zt-a"), "{end}");

    // An account that merely holds a matching name is not the subject's: bob's name is taken
    // by a local account, so the provider's bob gets a name of his own.
    let local = rp
        .users
        .create(
            &zt_core::Actor::System("test".into()),
            NewUser {
                username: "bob".into(),
                email: None,
                display_name: "Local Bob".into(),
            },
        )
        .await
        .unwrap();
    let bob = sign_in(&rp, &op, "bob").await;
    assert_ne!(bob.user.id, local.id);
    assert!(
        bob.user.username.starts_with("sso-"),
        "{}",
        bob.user.username
    );

    // The secret is never handed back, and no event carries it.
    let shown = format!("{:?}", rp.sso.providers().await.unwrap());
    assert!(!shown.contains(&client.client_secret));
    for event in rp.base.audit.events() {
        assert!(!format!("{event:?}").contains(&client.client_secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_of_the_code_flow_has_its_own_answer_and_creates_nothing() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;

    // A state nobody issued.
    let (mut response, binding) = authorize(&rp, &op, "carol").await;
    let state = response.state.clone();
    response.state = "forged".into();
    let e = rp
        .sso
        .callback("corp", &response, Some(expose(&binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::UnknownFlow);
    response.state = state;

    // Another browser (no binding, or another's).
    let e = rp.sso.callback("corp", &response, None).await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::WrongBrowser);
    let e = rp
        .sso
        .callback("corp", &response, Some("another browser"))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::WrongBrowser);

    // `iss` of another provider, and `iss` missing where the provider announces it.
    let mut mixed = response.clone();
    mixed.iss = Some("https://evil.example".into());
    let e = rp
        .sso
        .callback("corp", &mixed, Some(expose(&binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::IssuerMismatch);
    let (mut bare, bare_binding) = authorize(&rp, &op, "carol").await;
    bare.iss = None;
    let e = rp
        .sso
        .callback("corp", &bare, Some(expose(&bare_binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::IssuerMismatch);

    // A wrong PKCE verifier: flow B's state (and verifier) with flow A's unused code.
    let (a, _) = authorize(&rp, &op, "carol").await;
    let (mut b, b_binding) = authorize(&rp, &op, "carol").await;
    let a_code = a.code.clone();
    b.code = a_code.clone();
    let e = rp.sso.callback("corp", &b, Some(expose(&b_binding))).await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::CodeRejected);

    // A replayed code: one that signed in once already, under a fresh flow.
    let (ok, ok_binding) = authorize(&rp, &op, "carol").await;
    let used = rp
        .sso
        .callback("corp", &ok, Some(expose(&ok_binding)))
        .await
        .unwrap();
    let users_after_one = count(&rp, AuditEventKind::UserCreated);
    let (mut replay, replay_binding) = authorize(&rp, &op, "carol").await;
    replay.code = ok.code.clone();
    let e = rp
        .sso
        .callback("corp", &replay, Some(expose(&replay_binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::CodeRejected);

    // An intercepted code is worthless without the flow's PKCE verifier, which never leaves
    // the server: the provider refuses to redeem it without one.
    let (stolen, _) = authorize(&rp, &op, "carol").await;
    let status = reqwest::Client::new()
        .post(format!("{}/token", op.issuer()))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", stolen.code.as_deref().unwrap()),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);

    // A reused state: the completed flow's redirect again.
    let e = rp
        .sso
        .callback("corp", &ok, Some(expose(&ok_binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::UnknownFlow);

    // A wrong nonce: the browser's request altered on its way to the provider.
    let start = rp.sso.start("corp").await.unwrap();
    let mut url = reqwest::Url::parse(&start.url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "attacker-nonce".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let back = Browser::new()
        .sign_in(&op.issuer(), url.as_str(), "mallory")
        .await;
    rp.base.clock.set(now());
    let e = rp
        .sso
        .callback("corp", &response_of(&back), Some(expose(&start.binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::Nonce);

    // The provider's error answer.
    let (mut declined, declined_binding) = authorize(&rp, &op, "carol").await;
    declined.code = None;
    declined.error = Some("access_denied".into());
    let e = rp
        .sso
        .callback("corp", &declined, Some(expose(&declined_binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::ProviderError);

    // Nothing but the one good sign-in created a user or a session.
    assert_eq!(count(&rp, AuditEventKind::UserCreated), users_after_one);
    assert_eq!(count(&rp, AuditEventKind::SsoSucceeded), 1);
    assert!(
        rp.users
            .find_by_username("mallory")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(rp.sessions.list(used.user.id).await.unwrap().len(), 1);
    assert_eq!(
        failures(&rp),
        [
            "unknown_flow",
            "wrong_browser",
            "wrong_browser",
            "issuer_mismatch",
            "issuer_mismatch",
            "code_rejected",
            "code_rejected",
            "unknown_flow",
            "nonce",
            "provider_error"
        ]
    );
}

async fn id_token_for(op: &OpenIdProvider, client: &TestClient, nonce: &str) -> String {
    op.id_token(client, "dave", nonce).await
}

fn part(raw: &str, i: usize) -> serde_json::Value {
    let segment = raw.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn encode(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_are_checked_for_audience_algorithm_signature_and_time() {
    let a = TestClient::new("zt-a", CALLBACK);
    let b = TestClient::new("zt-b", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![a.clone(), b.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &a, Provisioning::Create).await;
    let check = |raw: String, nonce: &'static str| {
        let sso = &rp.sso;
        async move { sso.check_id_token("corp", &raw, Some(nonce)).await }
    };

    let good = id_token_for(&op, &a, "n-1").await;
    assert_eq!(check(good.clone(), "n-1").await.unwrap(), "dave");
    assert_eq!(
        refusal(check(good.clone(), "n-2").await.unwrap_err()),
        SsoRefusal::Nonce
    );

    // Another workspace's client: the token is not for this one.
    let other = id_token_for(&op, &b, "n-1").await;
    assert_eq!(
        refusal(check(other, "n-1").await.unwrap_err()),
        SsoRefusal::Audience
    );

    // `alg: none`, and HS256 keyed with the provider's public key.
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("{}.{payload}.", encode(&serde_json::json!({"alg": "none"})));
    assert_eq!(
        refusal(check(none, "n-1").await.unwrap_err()),
        SsoRefusal::Algorithm
    );
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", op.issuer()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0].to_string();
    let header = encode(&serde_json::json!({"alg": "HS256", "kid": "key-1"}));
    let signed = format!("{header}.{payload}");
    let mac = {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()).unwrap();
        mac.update(signed.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    let hs = format!("{signed}.{mac}");
    assert_eq!(
        refusal(check(hs, "n-1").await.unwrap_err()),
        SsoRefusal::Algorithm
    );

    // A changed claim under the provider's signature.
    let mut claims = part(&good, 1);
    claims["sub"] = "admin".into();
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);
    assert_eq!(
        refusal(check(forged, "n-1").await.unwrap_err()),
        SsoRefusal::Signature
    );

    // Expired (an hour past, beyond the skew), and issued in the future.
    let real = now();
    rp.base
        .clock
        .set(real.saturating_add(Duration::from_secs(2 * 3600)));
    assert_eq!(
        refusal(check(good.clone(), "n-1").await.unwrap_err()),
        SsoRefusal::Expired
    );
    rp.base
        .clock
        .set(Timestamp::from_unix_millis(real.unix_millis() - 600_000));
    assert_eq!(
        refusal(check(good.clone(), "n-1").await.unwrap_err()),
        SsoRefusal::NotYetValid
    );
    rp.base.clock.set(real);

    // `max_age`: the request asks for it, the token must say when the user signed in, and not
    // longer ago than that.
    let mut strict = provider(&op, &a, Provisioning::Create);
    strict.max_age = Some(Duration::from_secs(60));
    rp.sso.set_provider(strict, None).await.unwrap();
    assert_eq!(
        refusal(check(good.clone(), "n-1").await.unwrap_err()),
        SsoRefusal::AuthTime,
        "a token without auth_time"
    );
    let fresh = sign_in(&rp, &op, "dave").await;
    assert_eq!(fresh.user.username, "dave");
    let (late, late_binding) = authorize(&rp, &op, "dave").await;
    // Five minutes on: past `max_age` and the skew, within the flow's ten minutes.
    rp.base
        .clock
        .set(now().saturating_add(Duration::from_secs(300)));
    let e = rp
        .sso
        .callback("corp", &late, Some(expose(&late_binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::AuthTime);
    rp.base.clock.set(real);
    rp.sso
        .set_provider(provider(&op, &a, Provisioning::Create), None)
        .await
        .unwrap();
    // A changed provider is discovered afresh: once, by this check.
    assert_eq!(check(good.clone(), "n-1").await.unwrap(), "dave");

    // A flood of tokens naming keys the provider never had: one key-set fetch in all.
    let fetched = rp.client.fetches();
    for i in 0..1000 {
        let header = encode(&serde_json::json!({"alg": "RS256", "kid": format!("nope-{i}")}));
        let raw = format!("{header}.{payload}.{}", parts[2]);
        assert_eq!(
            refusal(check(raw, "n-1").await.unwrap_err()),
            SsoRefusal::UnknownKey
        );
    }
    assert!(
        rp.client.fetches() - fetched <= 1,
        "{} fetches",
        rp.client.fetches() - fetched
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_once_and_an_expired_token_is_refused() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(mut op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;
    let first = sign_in(&rp, &op, "erin").await;

    // The provider rotates its key: the next token names a key the cache lacks.
    op.restart("key-2").await;
    let fetched = rp.client.fetches();
    let second = sign_in(&rp, &op, "erin").await;
    assert_eq!(second.user.id, first.user.id);
    assert_eq!(rp.client.fetches() - fetched, 1, "one key-set fetch");

    // A token that expired on the way: the relying party's clock is two hours ahead (the
    // provider's tokens live one), so the flow is fresh but the token is not.
    let ahead = || now().saturating_add(Duration::from_secs(2 * 3600));
    rp.base.clock.set(ahead());
    let start = rp.sso.start("corp").await.unwrap();
    let back = Browser::new()
        .sign_in(&op.issuer(), &start.url, "erin")
        .await;
    rp.base.clock.set(ahead());
    let e = rp
        .sso
        .callback("corp", &response_of(&back), Some(expose(&start.binding)))
        .await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_follows_the_policy_and_links_only_by_verified_email() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    let system = zt_core::Actor::System("test".into());
    let frank = rp
        .users
        .create(
            &system,
            NewUser {
                username: "frank.local".into(),
                email: Some("frank@example.test".into()),
                display_name: "Frank".into(),
            },
        )
        .await
        .unwrap();
    rp.users
        .create(
            &system,
            NewUser {
                username: "gina.local".into(),
                email: Some("unverified-gina@example.test".into()),
                display_name: "Gina".into(),
            },
        )
        .await
        .unwrap();

    // Off: nobody unlinked signs in, and no account appears.
    configure(&rp, &op, &client, Provisioning::Off).await;
    assert_eq!(
        refused_sign_in(&rp, &op, "frank").await,
        SsoRefusal::NotLinked
    );

    // Linking by e-mail: only a verified address links.
    configure(&rp, &op, &client, Provisioning::LinkVerifiedEmail).await;
    let linked = sign_in(&rp, &op, "frank").await;
    assert_eq!(linked.user.id, frank.id);
    assert_eq!(
        refused_sign_in(&rp, &op, "unverified-gina").await,
        SsoRefusal::EmailNotVerified
    );

    // A deactivated account signs in no more; nor does an unlinked one.
    rp.users.deactivate(&system, frank.id).await.unwrap();
    assert_eq!(
        refused_sign_in(&rp, &op, "frank").await,
        SsoRefusal::AccountInactive
    );
    rp.users.reactivate(&system, frank.id).await.unwrap();
    let again = sign_in(&rp, &op, "frank").await;
    assert!(rp.sso.unlink(&system, frank.id, "corp").await.unwrap());
    assert!(
        rp.sessions.validate(&again.token).await.is_err(),
        "unlinking ends its sessions"
    );
    configure(&rp, &op, &client, Provisioning::Off).await;
    assert_eq!(
        refused_sign_in(&rp, &op, "frank").await,
        SsoRefusal::NotLinked
    );
    assert_eq!(count(&rp, AuditEventKind::UserCreated), 2);
}

/// A one-request HTTP listener: the body of the first POST it gets (the provider's
/// back-channel logout), answered 200.
async fn capture_one_post() -> (String, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        'connections: loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some(at) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if data.len() >= at + 4 + length {
                        let body = text[at + 4..at + 4 + length].to_owned();
                        socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await
                        .unwrap();
                        let token = body
                            .strip_prefix("logout_token=")
                            .unwrap_or(&body)
                            .to_owned();
                        let _ = tx.send(token);
                        return;
                    }
                }
                if n == 0 {
                    continue 'connections;
                }
            }
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backchannel_logout_ends_that_provider_session_once() {
    let (uri, captured) = capture_one_post().await;
    let mut client = TestClient::new("zt-a", CALLBACK);
    client.backchannel_logout_uri = Some(uri);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;

    // Two browsers, two provider sessions of the same user; a password session besides.
    let start = rp.sso.start("corp").await.unwrap();
    let mut browser = Browser::new();
    let back = browser.sign_in(&op.issuer(), &start.url, "henry").await;
    rp.base.clock.set(now());
    let ended = rp
        .sso
        .callback("corp", &response_of(&back), Some(expose(&start.binding)))
        .await
        .unwrap();
    let kept = sign_in(&rp, &op, "henry").await;
    assert_eq!(kept.user.id, ended.user.id);
    let (local, _) = rp
        .sessions
        .create(ended.user.id, SessionKind::Interactive)
        .await
        .unwrap();

    // The user signs out at the provider in the first browser: it posts a logout token.
    browser.end_session(&op.issuer()).await;
    let token = tokio::time::timeout(Duration::from_secs(10), captured)
        .await
        .unwrap()
        .unwrap();
    let token = percent(&token);
    assert_eq!(rp.sso.backchannel_logout("corp", &token).await.unwrap(), 1);
    assert!(rp.sessions.validate(&ended.token).await.is_err());
    assert!(
        rp.sessions.validate(&kept.token).await.is_ok(),
        "another sid stays"
    );
    assert!(rp.sessions.validate(&local).await.is_ok());
    assert!(count(&rp, AuditEventKind::SessionRevoked) >= 1);

    // The same token again is refused; so is one for another client.
    let e = rp.sso.backchannel_logout("corp", &token).await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::Replayed);

    // A logout by subject ends every SSO session of it, not the password one.
    let by_subject = op.logout_token("zt-a", "henry", None, "jti-sub-1").await;
    assert_eq!(
        rp.sso
            .backchannel_logout("corp", &by_subject)
            .await
            .unwrap(),
        1
    );
    assert!(rp.sessions.validate(&kept.token).await.is_err());
    assert!(rp.sessions.validate(&local).await.is_ok());
    assert_eq!(failures(&rp), ["replayed"]);
}

/// Decodes the form-encoded token.
fn percent(text: &str) -> String {
    reqwest::Url::parse(&format!("http://x/?t={text}"))
        .unwrap()
        .query_pairs()
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_signs_in_once_the_user_approves_at_the_provider() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;
    let device = rp.sso.device_start("corp").await.unwrap();
    assert!(device.verification_uri.starts_with(&op.issuer()));
    let handle = expose(&device.handle).to_owned();
    assert!(matches!(
        rp.sso.device_poll(&handle).await.unwrap(),
        DevicePoll::Pending { .. }
    ));
    Browser::new()
        .approve_device(&op.issuer(), &device.user_code, "ivy")
        .await;
    // Polls wait out the interval (the manual clock moves it).
    rp.base
        .clock
        .set(now().saturating_add(Duration::from_secs(10)));
    let DevicePoll::Done(signed) = rp.sso.device_poll(&handle).await.unwrap() else {
        panic!("still pending");
    };
    assert_eq!(signed.user.username, "ivy");
    assert_eq!(signed.session.kind, SessionKind::Sso);
    rp.sessions.validate(&signed.token).await.unwrap();
    let e = rp.sso.device_poll(&handle).await;
    assert_eq!(refusal(e.unwrap_err()), SsoRefusal::UnknownFlow);
    assert_eq!(count(&rp, AuditEventKind::SsoSucceeded), 1);
}

#[tokio::test]
async fn an_sso_only_tenant_refuses_passwords_except_for_its_break_glass_owner() {
    let rp = rp().await;
    let ctx = rp.base.ctx();
    let hasher = Arc::new(
        PasswordHasher::new(PasswordConfig {
            m_cost_kib: 64,
            t_cost: 1,
            allow_weak: true,
            ..PasswordConfig::default()
        })
        .unwrap(),
    );
    let auth = Authenticator::new(ctx, rp.users.clone(), hasher, LockoutPolicy::default()).unwrap();
    let system = zt_core::Actor::System("test".into());
    let mut ids = Vec::new();
    for name in ["owner", "member"] {
        let user = rp
            .users
            .create(
                &system,
                NewUser {
                    username: name.into(),
                    email: None,
                    display_name: name.into(),
                },
            )
            .await
            .unwrap();
        let password = SecretString::from(format!("a long passphrase 42 of {}", name.len()));
        auth.set_password(&system, user.id, &password)
            .await
            .unwrap();
        ids.push((user.id, password));
    }
    let mut config = ProviderConfig::new("corp", "https://id.example.com", "zt", CALLBACK);
    config.provisioning = Provisioning::Off;
    // SSO-only needs an enabled provider and a break-glass account.
    let refused = rp
        .sso
        .set_auth_settings(AuthSettings {
            sso_only: true,
            break_glass: Some(ids[0].0),
        })
        .await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidInput);
    rp.sso
        .set_provider(config, Some(&SecretString::from("s3cret")))
        .await
        .unwrap();
    let refused = rp
        .sso
        .set_auth_settings(AuthSettings {
            sso_only: true,
            break_glass: None,
        })
        .await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidInput);
    rp.sso
        .set_auth_settings(AuthSettings {
            sso_only: true,
            break_glass: Some(ids[0].0),
        })
        .await
        .unwrap();

    auth.login("owner", &ids[0].1, None).await.unwrap();
    let e = auth.login("member", &ids[1].1, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthenticationFailed);
    let refusal = rp
        .base
        .audit
        .events()
        .into_iter()
        .rfind(|e| e.kind == AuditEventKind::LoginFailed)
        .unwrap();
    assert_eq!(text(refusal.details.get("reason")), "sso_only");

    // A provider name from a request is recorded only when it could be one.
    let e = rp.sso.start("\u{1b}[31mcorp").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Sso(SsoRefusal::UnknownProvider));
    let e = rp.sso.start("nobody").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Sso(SsoRefusal::UnknownProvider));
    let shown: Vec<String> = rp
        .base
        .audit
        .events()
        .iter()
        .filter(|e| e.kind == AuditEventKind::SsoFailed)
        .map(|e| text(e.details.get("provider")))
        .collect();
    assert_eq!(shown, ["(not a provider name)", "nobody"]);
    assert_eq!(
        refusal.target.as_deref(),
        Some(ids[1].0.to_string().as_str())
    );
}

/// Rows a namespace holds below encryption.
async fn rows(rp: &Rp, name: &str) -> usize {
    let page = rp
        .base
        .inner
        .scan(
            &common::ns(name),
            &zt_storage::KeyRange::all(),
            zt_storage::ScanOptions::new().limit(10_000),
        )
        .await
        .unwrap();
    page.entries.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_nobody_finishes_and_spent_logout_tokens_are_swept() {
    let client = TestClient::new("zt-a", CALLBACK);
    let Some(op) = OpenIdProvider::start(vec![client.clone()], "key-1").await else {
        return;
    };
    let rp = rp().await;
    configure(&rp, &op, &client, Provisioning::Create).await;
    let start = now();
    // Ten flows started and abandoned, and a logout token used.
    for _ in 0..10 {
        rp.sso.start("corp").await.unwrap();
    }
    let token = op.logout_token("zt-a", "nobody", None, "jti-swept").await;
    rp.sso.backchannel_logout("corp", &token).await.unwrap();
    assert_eq!(rows(&rp, zt_core::identity::SSO_FLOWS).await, 10);
    assert_eq!(rows(&rp, zt_core::identity::SSO_LOGOUT_TOKENS).await, 1);

    // Eleven minutes later, more starts: the one that completes a round of SWEEP_EVERY sweeps
    // the abandoned ten, and the logout token's id (the provider's logout tokens live two
    // minutes; a replay now is refused as expired).
    rp.base
        .clock
        .set(start.saturating_add(Duration::from_secs(11 * 60)));
    let more = zt_core::identity::SWEEP_EVERY as usize - 10;
    for _ in 0..more {
        rp.sso.start("corp").await.unwrap();
    }
    assert_eq!(rows(&rp, zt_core::identity::SSO_FLOWS).await, more);
    assert_eq!(rows(&rp, zt_core::identity::SSO_LOGOUT_TOKENS).await, 0);
    let e = rp.sso.backchannel_logout("corp", &token).await.unwrap_err();
    assert_eq!(refusal(e), SsoRefusal::Expired);

    // A day later a sweep takes the rest.
    rp.base
        .clock
        .set(start.saturating_add(Duration::from_secs(24 * 3600)));
    assert_eq!(rp.sso.sweep().await.unwrap(), more as u64);
    assert_eq!(rows(&rp, zt_core::identity::SSO_FLOWS).await, 0);
    assert_eq!(rows(&rp, zt_core::identity::SSO_LOGOUT_TOKENS).await, 0);
}
