//! A real OpenID provider for tests: npm `oidc-provider` (scripts/oidc/op.mjs) started on
//! 127.0.0.1, and a scripted browser that signs in at its development login pages, approves
//! device codes and ends sessions there, all over HTTP.
//!
//! The provider is installed by `scripts/oidc-provider-setup.sh`, which prints the variable
//! [`OpenIdProvider::start`] reads (`ZT_TEST_OIDC_PROVIDER`); without it `start` says the test
//! was skipped and returns `None`.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

/// One client registered at the provider.
#[derive(Debug, Clone)]
pub struct TestClient {
    /// Its id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Where the provider sends back-channel logout tokens, if anywhere.
    pub backchannel_logout_uri: Option<String>,
}

impl TestClient {
    /// A client `id` with a secret derived from it and one redirect URI.
    pub fn new(id: &str, redirect_uri: &str) -> Self {
        TestClient {
            client_id: id.to_owned(),
            client_secret: format!("{id}-secret-0123456789-0123456789"),
            redirect_uris: vec![redirect_uri.to_owned()],
            backchannel_logout_uri: None,
        }
    }
}

/// A running provider; stopped when dropped.
#[derive(Debug)]
pub struct OpenIdProvider {
    dir: String,
    port: u16,
    clients: Vec<TestClient>,
    groups: BTreeMap<String, Vec<String>>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl OpenIdProvider {
    /// Starts the provider with `clients` and signing key `kid`, or says the test is skipped
    /// (no `ZT_TEST_OIDC_PROVIDER`) and returns `None`.
    ///
    /// # Panics
    /// When the provider does not start (a test helper: the test fails).
    #[allow(clippy::panic)]
    pub async fn start(clients: Vec<TestClient>, kid: &str) -> Option<Self> {
        let Ok(dir) = std::env::var("ZT_TEST_OIDC_PROVIDER") else {
            println!(
                "skipped: set ZT_TEST_OIDC_PROVIDER (eval \"$(bash scripts/oidc-provider-setup.sh)\")"
            );
            return None;
        };
        let mut provider = OpenIdProvider {
            dir,
            port: free_port(),
            clients,
            groups: BTreeMap::new(),
            child: None,
        };
        provider.spawn(kid, true).await;
        Some(provider)
    }

    #[allow(clippy::panic)]
    async fn spawn(&mut self, kid: &str, may_move: bool) {
        let clients: Vec<_> = self
            .clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "redirect_uris": c.redirect_uris,
                    "backchannel_logout_uri": c.backchannel_logout_uri,
                    "post_logout_redirect_uris": c.redirect_uris,
                })
            })
            .collect();
        // Up to three tries: the port picked may be taken by the time node binds it (tests
        // run side by side), and node starts slowly on a busy machine.
        for _ in 0..3 {
            let config = json!({
                "port": self.port,
                "clients": clients,
                "kid": kid,
                "id_token_ttl": 3600,
                "groups": self.groups,
            });
            let child = Command::new("node")
                .arg(format!("{}/op.mjs", self.dir))
                .env("OP_CONFIG", config.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("node op.mjs: {e}"));
            self.child = Some(child);
            if self.wait_ready().await {
                return;
            }
            self.stop();
            if may_move {
                self.port = free_port();
            }
        }
        panic!("the OpenID provider did not start on port {}", self.port);
    }

    /// Whether the provider answers its discovery document within 30 s (false as soon as the
    /// process has exited).
    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::new();
        let url = format!("{}/.well-known/openid-configuration", self.issuer());
        for _ in 0..600 {
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stops the provider and starts it again on the same port with signing key `kid`: a key
    /// rotation (sessions and codes at the provider are lost).
    pub async fn restart(&mut self, kid: &str) {
        self.stop();
        // The issuer names the port: a restart keeps it.
        self.spawn(kid, false).await;
    }

    /// Gives `login` the groups claim `groups` from the next start on (a restart with signing
    /// key `kid` applies it).
    pub async fn set_groups(&mut self, login: &str, groups: &[&str], kid: &str) {
        self.groups.insert(
            login.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
        self.restart(kid).await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A logout token for `client` about `sub` (and `sid`), minted as the provider mints the
    /// ones it sends, with id `jti`.
    ///
    /// # Panics
    /// When the provider does not answer.
    #[allow(clippy::panic)]
    pub async fn logout_token(
        &self,
        client: &str,
        sub: &str,
        sid: Option<&str>,
        jti: &str,
    ) -> String {
        let mut url = format!(
            "{}/test/logout-token?client={client}&sub={sub}&jti={jti}",
            self.issuer()
        );
        if let Some(sid) = sid {
            url.push_str(&format!("&sid={sid}"));
        }
        let response = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("logout token: {e}"));
        response
            .text()
            .await
            .unwrap_or_else(|e| panic!("logout token: {e}"))
    }
}

impl OpenIdProvider {
    /// An ID token for `client` about `login`, with `nonce`: the code flow driven by the test
    /// itself (its own PKCE verifier and token request), for tests that check tokens directly.
    ///
    /// # Panics
    /// When the provider does not answer as it should.
    #[allow(clippy::panic)]
    pub async fn id_token(&self, client: &TestClient, login: &str, nonce: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let verifier = "a-test-pkce-verifier-that-is-long-enough-0123456789";
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let redirect = client.redirect_uris.first().cloned().unwrap_or_default();
        let mut url = reqwest::Url::parse(&format!("{}/auth", self.issuer()))
            .unwrap_or_else(|e| panic!("issuer: {e}"));
        url.query_pairs_mut()
            .append_pair("client_id", &client.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile groups")
            .append_pair("redirect_uri", &redirect)
            .append_pair("state", "s")
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let back = Browser::new()
            .sign_in(&self.issuer(), url.as_str(), login)
            .await;
        let code = reqwest::Url::parse(&back)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_else(|| panic!("no code in {back}"));
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect.as_str()),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap_or_else(|e| panic!("token: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("token: {e}"));
        answer["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token in {answer}"))
            .to_owned()
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The authorization response in the query of `url`, the redirect back to a relying party.
pub fn response_of(url: &str) -> crate::identity::AuthorizationResponse {
    let mut response = crate::identity::AuthorizationResponse::default();
    let Ok(url) = reqwest::Url::parse(url) else {
        return response;
    };
    for (k, v) in url.query_pairs() {
        match &*k {
            "state" => response.state = v.into_owned(),
            "code" => response.code = Some(v.into_owned()),
            "iss" => response.iss = Some(v.into_owned()),
            "error" => response.error = Some(v.into_owned()),
            _ => {}
        }
    }
    response
}

/// A scripted browser: one cookie jar (for 127.0.0.1, whatever the port, as browsers keep
/// them; each cookie sent only under its `Path`), redirects read, not followed.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// name → (value, path).
    cookies: BTreeMap<String, (String, String)>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// A hidden form field's value in `html`.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + 7;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].to_owned())
}

impl Browser {
    /// A browser with an empty cookie jar.
    ///
    /// # Panics
    /// When no HTTP client can be built.
    #[allow(clippy::panic)]
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_else(|e| panic!("client: {e}")),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> String {
        let path = reqwest::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        self.cookies
            .iter()
            .filter(|(_, (_, scope))| path.starts_with(scope.as_str()))
            .map(|(k, (v, _))| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let pair = parts.next().unwrap_or_default();
            let path = parts
                .filter_map(|a| a.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .map_or_else(|| "/".to_owned(), |(_, v)| v.to_owned());
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies
                        .insert(k.trim().to_owned(), (v.to_owned(), path));
                }
            }
        }
    }

    /// GETs `url`; returns the status, the `Location` (made absolute against `url`) and the
    /// body.
    ///
    /// # Panics
    /// When the request fails.
    #[allow(clippy::panic)]
    pub async fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header(url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.answer(url, response).await
    }

    /// POSTs the form `fields` to `url`; as [`Browser::get`].
    ///
    /// # Panics
    /// When the request fails.
    #[allow(clippy::panic)]
    pub async fn post(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::COOKIE, self.cookie_header(url))
            .form(fields)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.answer(url, response).await
    }

    async fn answer(
        &mut self,
        url: &str,
        response: reqwest::Response,
    ) -> (u16, Option<String>, String) {
        self.keep(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(url).ok()?.join(l).ok())
            .map(|u| u.to_string());
        let body = response.text().await.unwrap_or_default();
        (status, location, body)
    }

    /// Follows redirects from `url` at the provider, signing in as `login` and consenting
    /// whenever it asks, until it redirects somewhere outside `issuer`: returns that URL (the
    /// relying party's callback with `code`, `state` and `iss`), or the last page's URL.
    ///
    /// # Panics
    /// When the provider's pages are not what its development interactions serve.
    #[allow(clippy::panic)]
    pub async fn sign_in(&mut self, issuer: &str, url: &str, login: &str) -> String {
        self.walk(issuer, url, login).await.0
    }

    /// As [`Browser::sign_in`], with the last page's body.
    #[allow(clippy::panic)]
    async fn walk(&mut self, issuer: &str, url: &str, login: &str) -> (String, String) {
        let mut url = url.to_owned();
        let mut last = String::new();
        for _ in 0..12 {
            if !url.starts_with(issuer) {
                return (url, last);
            }
            let (status, location, body) = self.get(&url).await;
            if let Some(next) = location {
                url = next;
                continue;
            }
            if status != 200 {
                panic!("{url}: {status} {body}");
            }
            // An interaction page: the login form or the consent form.
            let fields: Vec<(&str, &str)> = if body.contains("name=\"login\"") {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else if body.contains("consent") || body.contains("Authorize") {
                vec![("prompt", "consent")]
            } else {
                return (url, body);
            };
            let (_, location, body) = self.post(&url, &fields).await;
            url = location.unwrap_or_else(|| panic!("no redirect after the form: {body}"));
            last = body;
        }
        (url, last)
    }

    /// Approves device code `user_code` at the provider, signing in as `login`.
    ///
    /// # Panics
    /// When the provider's device pages are not what it serves by default.
    #[allow(clippy::panic)]
    pub async fn approve_device(&mut self, issuer: &str, user_code: &str, login: &str) {
        let device = format!("{issuer}/device");
        let (_, _, page) = self.get(&device).await;
        let xsrf = hidden(&page, "xsrf").unwrap_or_else(|| panic!("no xsrf on {page}"));
        let (_, _, confirm) = self
            .post(&device, &[("xsrf", &xsrf), ("user_code", user_code)])
            .await;
        // The confirmation page: the same form with `confirm=yes`.
        let xsrf = hidden(&confirm, "xsrf").unwrap_or_else(|| panic!("no confirm form: {confirm}"));
        let (_, location, body) = self
            .post(
                &device,
                &[
                    ("xsrf", &xsrf),
                    ("user_code", user_code),
                    ("confirm", "yes"),
                ],
            )
            .await;
        let next = location.unwrap_or_else(|| panic!("device confirm: {body}"));
        let (_, page) = self.walk(issuer, &next, login).await;
        if !page.contains("Sign-in Success") {
            panic!("device approval: {page}");
        }
    }

    /// Ends the session at the provider (RP-initiated logout's confirmation page), which makes
    /// it send back-channel logout tokens to the clients the session signed in to.
    ///
    /// # Panics
    /// When the provider's logout page is not what it serves by default.
    #[allow(clippy::panic)]
    pub async fn end_session(&mut self, issuer: &str) {
        let (_, _, page) = self.get(&format!("{issuer}/session/end")).await;
        let xsrf = hidden(&page, "xsrf").unwrap_or_else(|| panic!("no xsrf on {page}"));
        let (status, _, body) = self
            .post(
                &format!("{issuer}/session/end/confirm"),
                &[("xsrf", &xsrf), ("logout", "yes")],
            )
            .await;
        if status >= 400 {
            panic!("end session: {status} {body}");
        }
    }
}
