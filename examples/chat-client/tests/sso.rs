//! Single sign-on end to end: the real server, a real OpenID provider (npm oidc-provider on
//! 127.0.0.1, `ZT_TEST_OIDC_PROVIDER`), a scripted browser for the code flow, the `zt-chat`
//! binary for the device flow, and the provider's back-channel logout closing a realtime
//! stream. Without the provider the test says it was skipped.
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
use std::process::Stdio;
use std::time::Duration;

use cli_support::cli;
use common::{server, start};
use serde_json::{Value, json};
use zt_chat_client::{Client, ServerRecord};
use zt_core::testing::oidc::{Browser, OpenIdProvider, TestClient};

struct Http {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Http {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn audit_kinds(admin: &Http) -> Vec<(String, String, Value)> {
    let (status, page) = admin
        .send(
            reqwest::Method::GET,
            "/api/v1/admin/audit/security?limit=1000",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_code_and_by_device_and_the_provider_ends_the_session() {
    let root = tempfile::tempdir().unwrap();
    let mut command = server();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env("ZT_KMS_PASSPHRASE", "a single sign-on test passphrase");
    let (_server, addr) = start(command);
    let base = format!("http://{addr}");
    let sso = format!("{base}/api/v1/sso/default/corp");
    let mut registered = TestClient::new("zt-chat", &format!("{sso}/callback"));
    registered.backchannel_logout_uri = Some(format!("{sso}/backchannel-logout"));
    let Some(op) = OpenIdProvider::start(vec![registered.clone()], "key-1").await else {
        return;
    };

    // The owner configures the provider through the authentication area.
    let password = std::fs::read_to_string(root.path().join("data.admin-password")).unwrap();
    let anonymous = Client::new(&base).unwrap();
    let identity = anonymous.identity().await.unwrap();
    let anonymous = anonymous.bind(identity);
    let login = anonymous
        .login(None, "admin", password.trim())
        .await
        .unwrap();
    let admin = Http {
        base: base.clone(),
        token: login.token.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let provider = json!({
        "name": "corp", "display_name": "Corp", "issuer": op.issuer(),
        "client_id": registered.client_id, "redirect_uri": format!("{sso}/callback"),
        "scopes": ["email", "profile", "groups"], "provisioning": "create",
        "username_claim": "preferred_username", "email_claim": "email",
        "display_name_claim": "name", "groups_claim": "groups", "groups": [],
        "max_age_seconds": null, "skew_seconds": 60, "algorithms": ["RS256"], "enabled": true,
    });
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/sso/providers/corp",
            Some(json!({"provider": provider, "client_secret": registered.client_secret})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (_, shown) = admin
        .send(reqwest::Method::GET, "/api/v1/admin/sso/providers", None)
        .await;
    assert_eq!(shown[0]["name"], "corp");
    assert!(!shown.to_string().contains(&registered.client_secret));

    // The code flow in a browser: start, the provider's pages, the callback.
    let mut browser = Browser::new();
    let (status, to_provider, _) = browser.get(&format!("{sso}/start")).await;
    assert_eq!(status, 303);
    let back = browser
        .sign_in(&op.issuer(), &to_provider.unwrap(), "alice")
        .await;
    assert!(back.starts_with(&format!("{sso}/callback")), "{back}");
    let (status, _, body) = browser.get(&back).await;
    assert_eq!(status, 201, "{body}");
    let signed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(signed["user"]["username"], "alice");
    let alice = anonymous
        .clone()
        .with_token(signed["token"].as_str().unwrap());
    assert_eq!(alice.me().await.unwrap().username, "alice");
    // The same redirect again is refused: the flow was used.
    let (status, _, body) = browser.get(&back).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unknown_flow"), "{body}");

    // The provider ends its session: the back-channel logout ends alice's, and her stream.
    let mut stream = alice.realtime().await.unwrap();
    browser.end_session(&op.issuer()).await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the stream closes in time")
            .unwrap()
        {
            Some(ServerRecord::Closed { reason }) => break reason,
            Some(_) => continue,
            None => break "eof".into(),
        }
    };
    assert_eq!(closed, "session_ended");
    assert!(alice.me().await.is_err(), "the session is over");

    // RP-initiated logout: the session ends here, and the answer says where to end it there.
    let mut browser = Browser::new();
    let (_, to_provider, _) = browser.get(&format!("{sso}/start")).await;
    let back = browser
        .sign_in(&op.issuer(), &to_provider.unwrap(), "dora")
        .await;
    let (_, _, body) = browser.get(&back).await;
    let dora: Value = serde_json::from_str(&body).unwrap();
    let dora = Http {
        base: base.clone(),
        token: dora["token"].as_str().unwrap().to_owned(),
        http: reqwest::Client::new(),
    };
    let (status, out) = dora
        .send(reqwest::Method::POST, "/api/v1/sso/logout/corp", None)
        .await;
    assert_eq!(status, 200, "{out}");
    let end = out["end_session_url"].as_str().unwrap();
    assert!(
        end.starts_with(&format!("{}/session/end", op.issuer())),
        "{end}"
    );
    let (status, _) = dora
        .send(reqwest::Method::GET, "/api/v1/users/me", None)
        .await;
    assert_eq!(status, 401, "signed out here");

    // The device flow from the command line: it shows a URL and a code, then waits.
    let home = root.path().join("cli");
    let mut device = cli(&home, &base)
        .args(["login", "--sso", "corp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(device.stdout.take().unwrap()).lines();
    let shown = tokio::task::spawn_blocking(move || {
        let first = lines.next().unwrap().unwrap();
        (first, lines)
    })
    .await
    .unwrap();
    let (prompt, mut lines) = shown;
    let code = prompt
        .rsplit("enter the code ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert!(prompt.contains(&op.issuer()), "{prompt}");
    Browser::new()
        .approve_device(&op.issuer(), &code, "bob")
        .await;
    let status = tokio::task::spawn_blocking(move || device.wait().unwrap())
        .await
        .unwrap();
    let done = lines.next().map(|l| l.unwrap()).unwrap_or_default();
    assert!(status.success(), "{done}");
    assert!(done.contains("signed in as bob"), "{done}");
    let whoami = cli(&home, &base).arg("whoami").output().unwrap();
    assert!(String::from_utf8_lossy(&whoami.stdout).contains("bob"));

    // SSO-only: passwords are refused, except the break-glass owner's; the refusal is audited.
    let carol = anonymous
        .clone()
        .with_token(login.token.clone())
        .create_user("carol", "Carol", "velvet harbor comet 58")
        .await
        .unwrap();
    let me = anonymous
        .clone()
        .with_token(login.token.clone())
        .me()
        .await
        .unwrap();
    let (status, body) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/sign-in",
            Some(json!({"sso_only": true, "break_glass": me.id})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(
        anonymous
            .login(None, "carol", "velvet harbor comet 58")
            .await
            .is_err()
    );
    anonymous
        .login(None, "admin", password.trim())
        .await
        .unwrap();

    let events = audit_kinds(&admin).await;
    let has = |kind: &str, pred: &dyn Fn(&String, &Value) -> bool| {
        events
            .iter()
            .any(|(k, actor, d)| k == kind && pred(actor, d))
    };
    assert!(has("sso.succeeded", &|_, d| d["flow"] == "code"));
    assert!(has("sso.succeeded", &|_, d| d["flow"] == "device"));
    assert!(has("sso.failed", &|_, d| d["reason"] == "unknown_flow"));
    assert!(has("session.revoked", &|actor, _| actor == "system:sso:corp"));
    assert!(has("settings.changed", &|_, d| d["provider"] == "corp"));
    assert!(has("settings.changed", &|_, d| d["sso_only"] == true));
    assert!(has("login.failed", &|_, d| d["reason"] == "sso_only"));
    for (_, _, details) in &events {
        assert!(!details.to_string().contains(&registered.client_secret));
    }
    let _ = carol;
}
