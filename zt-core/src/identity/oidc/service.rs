//! The relying party of one tenant: providers, flows, accounts, SSO sessions and logouts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::TryStreamExt as _;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, RequestTokenError, Scope,
};
use rand::TryRng as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;
use zt_storage::{Batch, ErrorKind, KeyRange, KvStoreExt, Namespace, ScanOptions, codec};

use super::remote::{Fetched, Metadata, SsoClient};
use super::verify::{self, Checks, IdClaims};
use super::{
    AUTH_SETTINGS, AuthSettings, FLOW_TTL, MAX_PROVIDERS, Parsed, ProviderConfig, Provisioning,
    SSO_DEVICE_FLOWS, SSO_FLOWS, SSO_LINKS, SSO_LOGOUT_TOKENS, SSO_PROVIDERS, SSO_SID_SESSIONS,
    SSO_SUBJECT_SESSIONS, SSO_USER_LINKS, SsoRefusal,
};
use crate::audit::{Actor, AuditEventKind, Outcome};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::context::TenantContext;
use crate::identity::sessions::{Session, SessionKind, SessionToken, Sessions};
use crate::identity::users::{
    MAX_USERNAME_LEN, NewUser, User, UserState, Users, normalize_email, normalize_username,
};
use crate::ids::{GroupId, UserId};

const SETTINGS_KEY: &[u8] = b"settings";

/// A provider as stored: its configuration and client secret.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    config: ProviderConfig,
    secret: String,
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// A code flow under way (keyed by the state's hash).
#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    nonce: String,
    verifier: String,
    /// SHA-256 of the browser's binding secret.
    binding: [u8; 32],
    created: Timestamp,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.nonce.zeroize();
        self.verifier.zeroize();
    }
}

/// A device flow under way (keyed by the client handle's hash).
#[derive(Serialize, Deserialize)]
struct DeviceFlow {
    provider: String,
    device_code: String,
    interval_secs: u64,
    expires: Timestamp,
    next_poll: Timestamp,
}

impl Drop for DeviceFlow {
    fn drop(&mut self) {
        self.device_code.zeroize();
    }
}

/// An identity link: whose account a provider's subject is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Link {
    user: UserId,
    provider: String,
}

/// What [`Sso::start`] gives the browser.
pub struct SsoStart {
    /// Where to send the browser: the provider's authorization endpoint with the request.
    pub url: String,
    /// The secret that binds the flow to this browser: the server sets it as a cookie and
    /// hands it back to [`Sso::callback`].
    pub binding: SecretString,
    /// Whether the callback is `https` (the cookie is then marked `Secure`).
    pub secure_callback: bool,
}

impl fmt::Debug for SsoStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoStart")
            .field("url", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A successful sign-in: the new SSO session and what the provider said of groups.
pub struct SignIn {
    /// The session's token, for the client once.
    pub token: SessionToken,
    /// The session.
    pub session: Session,
    /// The account.
    pub user: User,
    /// The provider.
    pub provider: String,
    /// Groups the provider's claims grant now (from its group mappings).
    pub granted: Vec<GroupId>,
    /// Every group the provider maps: those not granted are no longer given by it.
    pub mapped: Vec<GroupId>,
    /// Whether this sign-in provisioned the account (it holds no role yet).
    pub created: bool,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("user", &self.user.id)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// What [`Sso::device_start`] gives the client to show and to poll with.
pub struct DeviceStart {
    /// Where the user goes on another device.
    pub verification_uri: String,
    /// The same with the code filled in, where the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// The code the user types there.
    pub user_code: String,
    /// The client's handle for [`Sso::device_poll`]; only its holder gets the session.
    pub handle: SecretString,
    /// How long the user has.
    pub expires_in: Duration,
    /// How often to poll.
    pub interval: Duration,
}

impl fmt::Debug for DeviceStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceStart")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Where a device flow stands.
#[derive(Debug)]
pub enum DevicePoll {
    /// The user has not finished; poll again after the interval.
    Pending {
        /// How long to wait.
        interval: Duration,
    },
    /// Signed in.
    Done(Box<SignIn>),
}

/// The relying party of one tenant.
pub struct Sso {
    ctx: TenantContext,
    users: Arc<Users>,
    sessions: Arc<Sessions>,
    client: Arc<SsoClient>,
    providers: Namespace,
    links: Namespace,
    user_links: Namespace,
    flows: Namespace,
    device_flows: Namespace,
    sid_sessions: Namespace,
    subject_sessions: Namespace,
    logout_tokens: Namespace,
    settings: Namespace,
    /// Flows kept since this tenant was opened: every [`SWEEP_EVERY`]th sweeps.
    kept: std::sync::atomic::AtomicU64,
}

/// How many flows are started between two sweeps of what has outlived its use
/// ([`Sso::sweep`]), so flows nobody finishes cannot pile up.
pub const SWEEP_EVERY: u64 = 256;

impl fmt::Debug for Sso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sso")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> Result<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes[..])
        .map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(&bytes[..]))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// The key of an identity link.
fn link_key(issuer: &str, subject: &str) -> [u8; 32] {
    sha256(&[b"link", issuer.as_bytes(), subject.as_bytes()])
}

fn sid_prefix(provider: &str, sid: &str) -> [u8; 16] {
    let hash = sha256(&[b"sid", provider.as_bytes(), sid.as_bytes()]);
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&hash[..16]);
    prefix
}

fn subject_prefix(link: &[u8; 32]) -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&link[..16]);
    prefix
}

fn indexed(prefix: &[u8; 16], hash: &[u8; 32]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(hash);
    key
}

fn user_link_key(user: UserId, provider: &str) -> Vec<u8> {
    let mut key = user.to_bytes().to_vec();
    key.extend_from_slice(provider.as_bytes());
    key
}

/// The claim's string values (a string, or an array of strings).
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the provider says the address is verified (`true`, or the string `"true"`).
fn verified(claims: &IdClaims) -> bool {
    match claims.all.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A username from a claim: the allowed characters kept, lowercased, cut to length.
fn username_from(text: &str) -> Option<String> {
    let name: String = text
        .chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).then_some(c)
        })
        .take(MAX_USERNAME_LEN)
        .collect();
    normalize_username(&name).ok()
}

/// Form-encodes a client credential for HTTP Basic (RFC 6749, section 2.3.1).
fn basic(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| {
        openidconnect::url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
    };
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)))
    )
}

impl Sso {
    /// The relying party of `ctx`'s tenant, over its users and sessions, fetching through the
    /// deployment's `client`.
    ///
    /// # Errors
    /// None in practice: the namespace names are constants.
    pub fn new(
        ctx: TenantContext,
        users: Arc<Users>,
        sessions: Arc<Sessions>,
        client: Arc<SsoClient>,
    ) -> Result<Self> {
        Ok(Sso {
            ctx,
            users,
            sessions,
            client,
            providers: Namespace::new(SSO_PROVIDERS)?,
            links: Namespace::new(SSO_LINKS)?,
            user_links: Namespace::new(SSO_USER_LINKS)?,
            flows: Namespace::new(SSO_FLOWS)?,
            device_flows: Namespace::new(SSO_DEVICE_FLOWS)?,
            sid_sessions: Namespace::new(SSO_SID_SESSIONS)?,
            subject_sessions: Namespace::new(SSO_SUBJECT_SESSIONS)?,
            logout_tokens: Namespace::new(SSO_LOGOUT_TOKENS)?,
            settings: Namespace::new(AUTH_SETTINGS)?,
            kept: std::sync::atomic::AtomicU64::new(0),
        })
    }

    // ----- configuration ----------------------------------------------------------------

    async fn stored(&self, name: &str) -> Result<Option<(Stored, u64)>> {
        Ok(self
            .ctx
            .store
            .get_decoded::<Stored>(&self.providers, name.as_bytes())
            .await?)
    }

    /// Every provider, without secrets, by name.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn providers(&self) -> Result<Vec<ProviderConfig>> {
        let mut found = Vec::new();
        let mut rows =
            self.ctx
                .store
                .scan_stream(&self.providers, KeyRange::all(), ScanOptions::new());
        while let Some(row) = rows.try_next().await? {
            let stored: Stored = codec::decode(&row.value)?;
            found.push(stored.config.clone());
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// The provider `name`, without its secret.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn provider(&self, name: &str) -> Result<Option<ProviderConfig>> {
        Ok(self.stored(name).await?.map(|(s, _)| s.config.clone()))
    }

    /// Adds or replaces a provider. `secret` `None` keeps the stored one (a new provider needs
    /// one). Returns whether the secret changed. Fetched metadata of the provider is dropped.
    /// Callers authorize and record the change first (zt-chat's authentication area does).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad configuration or secret, a new provider without a
    /// secret, or more than [`MAX_PROVIDERS`]; [`Error::Conflict`] when it changed meanwhile.
    pub async fn set_provider(
        &self,
        config: ProviderConfig,
        secret: Option<&SecretString>,
    ) -> Result<bool> {
        config.check()?;
        if let Some(secret) = secret {
            let text = secret.expose_secret();
            if text.is_empty() || text.len() > 512 || text.chars().any(char::is_control) {
                return Err(Error::InvalidInput(
                    "client_secret: 1 to 512 characters, no controls".into(),
                ));
            }
        }
        let existing = self.stored(&config.name).await?;
        if existing.is_none() && self.providers().await?.len() >= MAX_PROVIDERS {
            return Err(Error::InvalidInput(format!(
                "at most {MAX_PROVIDERS} providers"
            )));
        }
        let (secret_text, changed) = match (secret, &existing) {
            (Some(s), _) => (s.expose_secret().to_owned(), true),
            (None, Some((stored, _))) => (stored.secret.clone(), false),
            (None, None) => {
                return Err(Error::InvalidInput(
                    "client_secret: a new provider needs one".into(),
                ));
            }
        };
        let name = config.name.clone();
        let stored = Stored {
            config,
            secret: secret_text,
        };
        let mut batch = Batch::new();
        let value = codec::encode(&stored)?;
        match &existing {
            Some((_, version)) => {
                batch.put_if_version(&self.providers, name.as_bytes(), *version, &value)
            }
            None => batch.put_if_absent(&self.providers, name.as_bytes(), &value),
        };
        match self.ctx.store.commit(batch).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(Error::Conflict("the provider changed meanwhile".into()));
            }
            Err(e) => return Err(e.into()),
        }
        self.client.forget(self.ctx.tenant, &name);
        Ok(changed)
    }

    /// Removes provider `name`; its accounts' links stay (they work again if it comes back).
    ///
    /// # Errors
    /// [`Error::NotFound`]; the store's errors.
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        if self.stored(name).await?.is_none() {
            return Err(Error::NotFound(format!("provider {name:?}")));
        }
        let mut batch = Batch::new();
        batch.delete(&self.providers, name.as_bytes());
        self.ctx.store.commit(batch).await?;
        self.client.forget(self.ctx.tenant, name);
        Ok(())
    }

    /// The tenant's sign-in settings.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn auth_settings(&self) -> Result<AuthSettings> {
        Ok(self
            .ctx
            .store
            .get_decoded::<AuthSettings>(&self.settings, SETTINGS_KEY)
            .await?
            .map(|(s, _)| s)
            .unwrap_or_default())
    }

    /// Replaces the sign-in settings. Callers check who the break-glass account may be.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for SSO-only without an enabled provider or a break-glass
    /// account; the store's errors.
    pub async fn set_auth_settings(&self, settings: AuthSettings) -> Result<()> {
        if settings.sso_only {
            if settings.break_glass.is_none() {
                return Err(Error::InvalidInput(
                    "break_glass: SSO-only needs a break-glass owner".into(),
                ));
            }
            if !self.providers().await?.iter().any(|p| p.enabled) {
                return Err(Error::InvalidInput(
                    "sso_only: no enabled provider to sign in with".into(),
                ));
            }
        }
        let mut batch = Batch::new();
        batch.put(&self.settings, SETTINGS_KEY, &codec::encode(&settings)?);
        self.ctx.store.commit(batch).await?;
        Ok(())
    }

    /// The enabled provider `name`, parsed, with its metadata.
    async fn open(&self, name: &str) -> Result<(Stored, Parsed, Arc<Metadata>, Arc<Fetched>)> {
        let Some((stored, _)) = self.stored(name).await? else {
            return Err(SsoRefusal::UnknownProvider.into());
        };
        if !stored.config.enabled {
            return Err(SsoRefusal::UnknownProvider.into());
        }
        let parsed = stored.config.parsed()?;
        let (metadata, fetched) = self
            .client
            .metadata(self.ctx.tenant, name, &parsed.issuer)
            .await?;
        Ok((stored, parsed, metadata, fetched))
    }

    fn checks<'a>(
        &self,
        stored: &'a Stored,
        parsed: &'a Parsed,
        client_id: &'a ClientId,
    ) -> Checks<'a> {
        Checks {
            issuer: &parsed.issuer,
            client_id,
            algorithms: &parsed.algorithms,
            now: self.ctx.clock.now(),
            skew: stored.config.skew,
            max_age: stored.config.max_age,
        }
    }

    // ----- audit ------------------------------------------------------------------------

    async fn record_failure(&self, provider: &str, flow: &str, refusal: SsoRefusal) -> Result<()> {
        // The name comes from the request: recorded only when it could name a provider.
        let provider = if super::valid_name(provider) {
            provider
        } else {
            "(not a provider name)"
        };
        let event = self
            .ctx
            .event(AuditEventKind::SsoFailed, Actor::Anonymous)
            .outcome(Outcome::Denied)
            .detail("provider", provider)?
            .detail("flow", flow)?
            .detail("reason", refusal.code())?;
        self.ctx.record(event).await
    }

    /// Records `sso.failed` for a refusal (never for a pending device flow) and passes the
    /// result on.
    async fn audited<T>(&self, provider: &str, flow: &str, result: Result<T>) -> Result<T> {
        if let Err(Error::Sso(refusal)) = &result
            && *refusal != SsoRefusal::Pending
        {
            self.record_failure(provider, flow, *refusal).await?;
        }
        result
    }

    // ----- the code flow ----------------------------------------------------------------

    /// Starts a code flow with provider `name`: the authorization URL (PKCE S256, state, nonce,
    /// `max_age` when configured) and the browser binding.
    ///
    /// # Errors
    /// [`SsoRefusal::UnknownProvider`], [`SsoRefusal::ProviderUnavailable`] as
    /// [`Error::Sso`]; [`Error::Randomness`]; the store's errors.
    pub async fn start(&self, name: &str) -> Result<SsoStart> {
        let result = self.start_inner(name).await;
        self.audited(name, "code", result).await
    }

    async fn start_inner(&self, name: &str) -> Result<SsoStart> {
        let (stored, parsed, metadata, _) = self.open(name).await?;
        let state = random_secret()?;
        let nonce = random_secret()?;
        let verifier = random_secret()?;
        let binding = random_secret()?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(stored.config.client_id.clone()),
            Some(ClientSecret::new(stored.secret.clone())),
        )
        .set_redirect_uri(parsed.redirect.clone());
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        let (state_for_url, nonce_for_url) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for_url),
                move || Nonce::new(nonce_for_url),
            )
            .set_pkce_challenge(challenge);
        for scope in &stored.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(max_age) = stored.config.max_age {
            request = request.set_max_age(max_age);
        }
        let (url, _, _) = request.url();
        let flow = Flow {
            provider: name.to_owned(),
            nonce,
            verifier,
            binding: Sha256::digest(binding.as_bytes()).into(),
            created: self.ctx.clock.now(),
        };
        self.keep_flow(&self.flows, &state, &flow).await?;
        Ok(SsoStart {
            url: url.to_string(),
            binding: SecretString::from(binding),
            secure_callback: parsed.redirect.url().scheme() == "https",
        })
    }

    /// Keeps a new flow under SHA-256 of its secret (`state` or handle), never over another.
    async fn keep_flow<T: Serialize>(
        &self,
        namespace: &Namespace,
        secret: &str,
        flow: &T,
    ) -> Result<()> {
        let mut batch = Batch::new();
        batch.put_if_absent(
            namespace,
            &Sha256::digest(secret.as_bytes()),
            &codec::encode(flow)?,
        );
        self.ctx.store.commit(batch).await?;
        let kept = self.kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if kept % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep().await?;
        }
        Ok(())
    }

    /// Deletes what has outlived its use: code flows older than [`FLOW_TTL`], device flows past
    /// their expiry, and logout-token ids past their token's expiry plus [`MAX_SKEW`](super::MAX_SKEW) (a replay
    /// of such a token is refused as expired). Runs by itself every [`SWEEP_EVERY`] flows; a
    /// deployment may also run it on a schedule. Returns how many rows went. Rows that do not
    /// decode are left for an operator.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn sweep(&self) -> Result<u64> {
        let now = self.ctx.clock.now();
        let ttl = i64::try_from(FLOW_TTL.as_millis()).unwrap_or(i64::MAX);
        let skew = i64::try_from(super::MAX_SKEW.as_millis()).unwrap_or(i64::MAX);
        let mut spent = self
            .spent_in(&self.flows, |value| {
                codec::decode::<Flow>(value)
                    .is_ok_and(|f| now.unix_millis().saturating_sub(f.created.unix_millis()) > ttl)
            })
            .await?;
        spent.extend(
            self.spent_in(&self.device_flows, |value| {
                codec::decode::<DeviceFlow>(value)
                    .is_ok_and(|f| now.unix_millis() >= f.expires.unix_millis())
            })
            .await?,
        );
        spent.extend(
            self.spent_in(&self.logout_tokens, |value| {
                <[u8; 8]>::try_from(value)
                    .map(i64::from_be_bytes)
                    .is_ok_and(|exp| {
                        exp.saturating_mul(1000).saturating_add(skew) < now.unix_millis()
                    })
            })
            .await?,
        );
        let mut gone = 0;
        for chunk in spent.chunks(256) {
            let mut batch = Batch::new();
            for (namespace, key) in chunk {
                batch.delete(namespace, key);
            }
            self.ctx.store.commit(batch).await?;
            gone += chunk.len() as u64;
        }
        Ok(gone)
    }

    /// The flow kept under SHA-256 of `secret`, with its key and version.
    async fn find_flow<T: serde::de::DeserializeOwned>(
        &self,
        namespace: &Namespace,
        secret: &str,
    ) -> Result<([u8; 32], T, u64)> {
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        match self.ctx.store.get_decoded::<T>(namespace, &key).await? {
            Some((flow, version)) => Ok((key, flow, version)),
            None => Err(SsoRefusal::UnknownFlow.into()),
        }
    }

    /// The rows of `namespace` whose value `is_spent` says have outlived their use.
    async fn spent_in(
        &self,
        namespace: &Namespace,
        is_spent: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<(Namespace, Vec<u8>)>> {
        let mut spent = Vec::new();
        let mut rows = self
            .ctx
            .store
            .scan_stream(namespace, KeyRange::all(), ScanOptions::new());
        while let Some(row) = rows.try_next().await? {
            if is_spent(&row.value) {
                spent.push((namespace.clone(), row.key));
            }
        }
        Ok(spent)
    }

    /// Deletes the flow at `key` if it is still at `version`: whoever does so first has used
    /// it; everyone else is told it is unknown.
    async fn use_up(&self, namespace: &Namespace, key: &[u8; 32], version: u64) -> Result<()> {
        let mut batch = Batch::new();
        batch.require_version(namespace, key, version);
        batch.delete(namespace, key);
        match self.ctx.store.commit(batch).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Conflict => Err(SsoRefusal::UnknownFlow.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the flow of `state` (once): checks its age and the browser binding.
    async fn take_flow(&self, state: &str, binding: Option<&str>) -> Result<Flow> {
        let (key, flow, version) = self.find_flow::<Flow>(&self.flows, state).await?;
        let presented: [u8; 32] = Sha256::digest(binding.unwrap_or_default().as_bytes()).into();
        if binding.is_none() || !bool::from(presented.ct_eq(&flow.binding)) {
            return Err(SsoRefusal::WrongBrowser.into());
        }
        self.use_up(&self.flows, &key, version).await?;
        let age = self.ctx.clock.now().saturating_duration_since(flow.created);
        if age > FLOW_TTL {
            return Err(SsoRefusal::UnknownFlow.into());
        }
        Ok(flow)
    }

    /// Completes a code flow at the redirect back from provider `name`: the flow of `state`
    /// (once, from the browser holding `binding`), the provider's `iss` (RFC 9207), the code
    /// exchanged with the PKCE verifier, the ID token checked, the account found or
    /// provisioned, and an SSO session started. Recorded as `sso.succeeded` or `sso.failed`.
    ///
    /// # Errors
    /// [`Error::Sso`] with the check that failed; nothing is created then. The store's errors.
    pub async fn callback(
        &self,
        name: &str,
        response: &AuthorizationResponse,
        binding: Option<&str>,
    ) -> Result<SignIn> {
        let result = self.callback_inner(name, response, binding).await;
        self.audited(name, "code", result).await
    }

    async fn callback_inner(
        &self,
        name: &str,
        response: &AuthorizationResponse,
        binding: Option<&str>,
    ) -> Result<SignIn> {
        let flow = self.take_flow(&response.state, binding).await?;
        if flow.provider != name {
            return Err(SsoRefusal::IssuerMismatch.into());
        }
        let (stored, parsed, metadata, fetched) = self.open(name).await?;
        match &response.iss {
            Some(iss) if iss != parsed.issuer.as_str() => {
                return Err(SsoRefusal::IssuerMismatch.into());
            }
            None if metadata
                .additional_metadata()
                .authorization_response_iss_parameter_supported
                == Some(true) =>
            {
                return Err(SsoRefusal::IssuerMismatch.into());
            }
            _ => {}
        }
        if response.error.is_some() {
            return Err(SsoRefusal::ProviderError.into());
        }
        let Some(code) = &response.code else {
            return Err(SsoRefusal::ProviderError.into());
        };
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(stored.config.client_id.clone()),
            Some(ClientSecret::new(stored.secret.clone())),
        )
        .set_redirect_uri(parsed.redirect.clone());
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .map_err(|_| SsoRefusal::NotOffered)?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&self.client.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(_) => SsoRefusal::CodeRejected,
                _ => SsoRefusal::ProviderUnavailable,
            })?;
        let _ = tokens.access_token();
        let raw = tokens
            .extra_fields()
            .id_token()
            .map(ToString::to_string)
            .ok_or(SsoRefusal::Claims)?;
        self.complete(
            &stored,
            &parsed,
            &metadata,
            &fetched,
            &raw,
            Some(&flow.nonce),
            "code",
        )
        .await
    }

    /// The callback's own work once the code is exchanged: the ID token checked, the account
    /// found or provisioned, the session started, the sign-in recorded.
    #[allow(clippy::too_many_arguments)]
    async fn complete(
        &self,
        stored: &Stored,
        parsed: &Parsed,
        metadata: &Metadata,
        fetched: &Fetched,
        raw: &str,
        nonce: Option<&str>,
        flow: &str,
    ) -> Result<SignIn> {
        let claims = self
            .verify_id_token(stored, parsed, metadata, fetched, raw, nonce)
            .await?;
        self.sign_in(stored, parsed, claims, flow).await
    }

    /// Signs in with an ID token the deployment got from provider `name`'s token endpoint
    /// itself (a native app's own code exchange, or a benchmark): everything
    /// [`Sso::callback`] does after the exchange, recorded as flow `id_token`. The token must
    /// come straight from the provider's token endpoint, or carry a `nonce` this deployment
    /// issued for one flow and checks once: a bare ID token is a bearer credential for as long
    /// as it lives.
    ///
    /// # Errors
    /// As [`Sso::callback`]'s checks of the token and the account.
    pub async fn sign_in_with_id_token(
        &self,
        name: &str,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<SignIn> {
        let result = async {
            let (stored, parsed, metadata, fetched) = self.open(name).await?;
            self.complete(
                &stored, &parsed, &metadata, &fetched, raw, nonce, "id_token",
            )
            .await
        }
        .await;
        self.audited(name, "id_token", result).await
    }

    async fn verify_id_token(
        &self,
        stored: &Stored,
        parsed: &Parsed,
        metadata: &Metadata,
        fetched: &Fetched,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<IdClaims> {
        // The check runs on the calling task. With ring checking RSA (about 40 µs for RS256 on
        // the project's machine, see `keys`), a hop to the blocking pool and back cost more than
        // the check itself; the EC and EdDSA checks cost about as much as RSA's.
        let client_id = ClientId::new(stored.config.client_id.clone());
        let checks = self.checks(stored, parsed, &client_id);
        Ok(self
            .client
            .with_keys(metadata, fetched, |keys| {
                let checked = verify::verify_id_token(raw, &keys, &checks, nonce);
                async move { checked }
            })
            .await?)
    }

    /// Checks an ID token from provider `name` as a callback would (with `nonce`, if one was
    /// sent) and returns its subject: for tools and benchmarks that hold a token already. It
    /// signs nobody in.
    ///
    /// # Errors
    /// [`Error::Sso`] with the check that failed.
    pub async fn check_id_token(
        &self,
        name: &str,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<String> {
        let (stored, parsed, metadata, fetched) = self.open(name).await?;
        let claims = self
            .verify_id_token(&stored, &parsed, &metadata, &fetched, raw, nonce)
            .await?;
        Ok(claims.subject)
    }

    /// Signs in the subject of verified `claims`: finds or provisions the account, starts the
    /// SSO session with its indexes, records `sso.succeeded`.
    async fn sign_in(
        &self,
        stored: &Stored,
        parsed: &Parsed,
        claims: IdClaims,
        flow: &str,
    ) -> Result<SignIn> {
        let name = stored.config.name.as_str();
        let link = link_key(parsed.issuer.as_str(), &claims.subject);
        let (user, created) = self.account(stored, &link, &claims).await?;
        let sid = claims.sid.clone();
        let (sid_ns, subject_ns) = (self.sid_sessions.clone(), self.subject_sessions.clone());
        let (token, session) = self
            .sessions
            .create_with(user.id, SessionKind::Sso, |hash, batch| {
                if let Some(sid) = &sid {
                    batch.put(&sid_ns, &indexed(&sid_prefix(name, sid), hash), b"");
                }
                batch.put(&subject_ns, &indexed(&subject_prefix(&link), hash), b"");
                Ok(())
            })
            .await
            .map_err(|e| match e {
                // The account was deactivated between the lookup and now.
                Error::InvalidInput(_) => Error::Sso(SsoRefusal::AccountInactive),
                other => other,
            })?;
        let values = strings(claims.all.get(&stored.config.claims.groups));
        let mut granted = Vec::new();
        let mut mapped = Vec::new();
        for mapping in &stored.config.groups {
            if !mapped.contains(&mapping.group) {
                mapped.push(mapping.group);
            }
            if values.contains(&mapping.claim) && !granted.contains(&mapping.group) {
                granted.push(mapping.group);
            }
        }
        let event = self
            .ctx
            .event(AuditEventKind::SsoSucceeded, Actor::User(user.id))
            .target(user.id.to_string())
            .detail("provider", name)?
            .detail("flow", flow)?;
        self.ctx.record(event).await?;
        Ok(SignIn {
            token,
            session,
            user,
            provider: name.to_owned(),
            granted,
            mapped,
            created,
        })
    }

    /// The account of the subject behind `link`, provisioned by the provider's policy.
    async fn account(
        &self,
        stored: &Stored,
        link: &[u8; 32],
        claims: &IdClaims,
    ) -> Result<(User, bool)> {
        if let Some((found, _)) = self
            .ctx
            .store
            .get_decoded::<Link>(&self.links, link)
            .await?
        {
            return match self.users.get(found.user).await? {
                Some(user) if user.state == UserState::Active => Ok((user, false)),
                _ => Err(SsoRefusal::AccountInactive.into()),
            };
        }
        let map = &stored.config.claims;
        let email = claims
            .all
            .get(&map.email)
            .and_then(Value::as_str)
            .and_then(|e| normalize_email(e).ok());
        let mut created = false;
        let user = match stored.config.provisioning {
            Provisioning::Off => return Err(SsoRefusal::NotLinked.into()),
            Provisioning::LinkVerifiedEmail => {
                let Some(email) = email else {
                    return Err(SsoRefusal::NotLinked.into());
                };
                if !verified(claims) {
                    return Err(SsoRefusal::EmailNotVerified.into());
                }
                match self.users.find_by_email(&email).await? {
                    Some(user) if user.state == UserState::Active => user,
                    Some(_) => return Err(SsoRefusal::AccountInactive.into()),
                    None => return Err(SsoRefusal::NotLinked.into()),
                }
            }
            Provisioning::Create => {
                let email = email.filter(|_| verified(claims));
                if let Some(address) = &email
                    && self.users.find_by_email(address).await?.is_some()
                {
                    return Err(SsoRefusal::AccountConflict.into());
                }
                let fallback = format!("sso-{}", hex_of(&link[..6]));
                let username = claims
                    .all
                    .get(&map.username)
                    .and_then(Value::as_str)
                    .and_then(username_from)
                    .or_else(|| {
                        email
                            .as_deref()
                            .and_then(|e| e.split('@').next())
                            .and_then(username_from)
                    })
                    .unwrap_or_else(|| fallback.clone());
                let display: String = claims
                    .all
                    .get(&map.display_name)
                    .and_then(Value::as_str)
                    .unwrap_or(&username)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(crate::identity::users::MAX_DISPLAY_NAME_CHARS)
                    .collect();
                let display = if display.trim().is_empty() {
                    username.clone()
                } else {
                    display
                };
                let actor = Actor::System(format!("sso:{}", stored.config.name));
                let new = |username: String| NewUser {
                    username,
                    email: email.clone(),
                    display_name: display.clone(),
                };
                created = true;
                match self.users.create(&actor, new(username.clone())).await {
                    Ok(user) => user,
                    // The name is taken: the subject's own fallback name, once.
                    Err(Error::Conflict(_)) if username != fallback => self
                        .users
                        .create(&actor, new(fallback))
                        .await
                        .map_err(|e| match e {
                            Error::Conflict(_) => Error::Sso(SsoRefusal::AccountConflict),
                            other => other,
                        })?,
                    Err(Error::Conflict(_)) => return Err(SsoRefusal::AccountConflict.into()),
                    Err(e) => return Err(e),
                }
            }
        };
        self.write_link(link, user.id, &stored.config.name).await?;
        Ok((user, created))
    }

    async fn write_link(&self, link: &[u8; 32], user: UserId, provider: &str) -> Result<()> {
        let record = Link {
            user,
            provider: provider.to_owned(),
        };
        let mut batch = Batch::new();
        batch.put_if_absent(&self.links, link, &codec::encode(&record)?);
        batch.put(&self.user_links, &user_link_key(user, provider), link);
        match self.ctx.store.commit(batch).await {
            Ok(_) => Ok(()),
            // A concurrent first sign-in of the same subject linked it first.
            Err(e) if e.kind() == ErrorKind::Conflict => Err(SsoRefusal::AccountConflict.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Links `user` to `subject` at provider `name` (an administrator's decision, for
    /// provisioning `off`). Replaces nothing: a subject linked elsewhere is a conflict.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown provider or user; [`Error::Conflict`].
    pub async fn link(&self, name: &str, user: UserId, subject: &str) -> Result<()> {
        let Some((stored, _)) = self.stored(name).await? else {
            return Err(Error::NotFound(format!("provider {name:?}")));
        };
        if self.users.get(user).await?.is_none() {
            return Err(Error::NotFound(format!("user {user}")));
        }
        let key = link_key(&stored.config.issuer, subject);
        self.write_link(&key, user, name)
            .await
            .map_err(|_| Error::Conflict("that subject is linked already".into()))
    }

    /// Removes `user`'s link at provider `name` and ends the SSO sessions it gave. Returns
    /// whether there was one.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn unlink(&self, actor: &Actor, user: UserId, name: &str) -> Result<bool> {
        let key = user_link_key(user, name);
        let Some(entry) = self.ctx.store.get(&self.user_links, &key).await? else {
            return Ok(false);
        };
        let link: [u8; 32] = entry
            .value
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidInput("a stored identity link is damaged".into()))?;
        let mut batch = Batch::new();
        batch.delete(&self.links, &link);
        batch.delete(&self.user_links, &key);
        self.ctx.store.commit(batch).await?;
        self.end_indexed(actor, &self.subject_sessions, &subject_prefix(&link))
            .await?;
        Ok(true)
    }

    /// The providers `user` is linked at.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn links_of(&self, user: UserId) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut rows = self.ctx.store.scan_stream(
            &self.user_links,
            KeyRange::prefix(&user.to_bytes()),
            ScanOptions::new(),
        );
        while let Some(row) = rows.try_next().await? {
            if let Some(name) = row.key.get(16..) {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        Ok(names)
    }

    // ----- logout -----------------------------------------------------------------------

    /// Ends every session indexed under `prefix` in `namespace`; returns how many.
    async fn end_indexed(
        &self,
        actor: &Actor,
        namespace: &Namespace,
        prefix: &[u8; 16],
    ) -> Result<usize> {
        let mut keys = Vec::new();
        let mut rows =
            self.ctx
                .store
                .scan_stream(namespace, KeyRange::prefix(prefix), ScanOptions::new());
        while let Some(row) = rows.try_next().await? {
            keys.push(row.key);
        }
        drop(rows);
        let mut ended = 0;
        for key in keys {
            if let Some(hash) = key.get(16..).and_then(|h| <[u8; 32]>::try_from(h).ok())
                && self.sessions.is_stored(&hash).await?
            {
                self.sessions.revoke_hash(actor, hash).await?;
                ended += 1;
            }
            let mut batch = Batch::new();
            batch.delete(namespace, &key);
            self.ctx.store.commit(batch).await?;
        }
        Ok(ended)
    }

    /// Handles a back-channel logout token from provider `name`: verified like an ID token
    /// (plus `events`, without `nonce`), its `jti` accepted once; then every zt session of its
    /// `sid` (or, without one, of its subject) ends, each recorded as `session.revoked`.
    /// Returns how many ended.
    ///
    /// # Errors
    /// [`Error::Sso`] with the check that failed ([`SsoRefusal::Replayed`] for a token used
    /// before); the store's errors.
    pub async fn backchannel_logout(&self, name: &str, raw: &str) -> Result<usize> {
        let result = self.backchannel_inner(name, raw).await;
        self.audited(name, "backchannel_logout", result).await
    }

    async fn backchannel_inner(&self, name: &str, raw: &str) -> Result<usize> {
        let (stored, parsed, metadata, fetched) = self.open(name).await?;
        let client_id = ClientId::new(stored.config.client_id.clone());
        let checks = self.checks(&stored, &parsed, &client_id);
        let claims = self
            .client
            .with_keys(&metadata, &fetched, |keys| {
                let verified = verify::verify_logout_token(raw, &keys, &checks);
                async move { verified }
            })
            .await?;
        let seen = sha256(&[b"jti", name.as_bytes(), claims.jti.as_bytes()]);
        let mut batch = Batch::new();
        batch.put_if_absent(&self.logout_tokens, &seen, &claims.exp.to_be_bytes());
        match self.ctx.store.commit(batch).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => return Err(SsoRefusal::Replayed.into()),
            Err(e) => return Err(e.into()),
        }
        let actor = Actor::System(format!("sso:{name}"));
        match (&claims.sid, &claims.subject) {
            (Some(sid), _) => {
                self.end_indexed(&actor, &self.sid_sessions, &sid_prefix(name, sid))
                    .await
            }
            (None, Some(subject)) => {
                let link = link_key(parsed.issuer.as_str(), subject);
                self.end_indexed(&actor, &self.subject_sessions, &subject_prefix(&link))
                    .await
            }
            (None, None) => Err(SsoRefusal::Claims.into()),
        }
    }

    /// Where to send the browser to end the user's session at provider `name` too
    /// (RP-Initiated Logout 1.0), when the provider offers it; `after` is where the provider
    /// sends the browser back (registered with it).
    ///
    /// # Errors
    /// [`Error::Sso`] for an unknown or unreachable provider.
    pub async fn end_session_url(&self, name: &str, after: Option<&str>) -> Result<Option<String>> {
        let (stored, _, metadata, _) = self.open(name).await?;
        let Some(endpoint) = metadata.additional_metadata().end_session_endpoint.clone() else {
            return Ok(None);
        };
        let Ok(mut url) = openidconnect::url::Url::parse(&endpoint) else {
            return Ok(None);
        };
        url.query_pairs_mut()
            .append_pair("client_id", &stored.config.client_id);
        if let Some(after) = after {
            url.query_pairs_mut()
                .append_pair("post_logout_redirect_uri", after);
        }
        Ok(Some(url.to_string()))
    }

    // ----- the device flow ----------------------------------------------------------------

    /// Starts a device authorization grant (RFC 8628) with provider `name`.
    ///
    /// # Errors
    /// [`SsoRefusal::NotOffered`] when the provider has no device endpoint;
    /// [`SsoRefusal::ProviderUnavailable`]; the store's errors.
    pub async fn device_start(&self, name: &str) -> Result<DeviceStart> {
        let result = self.device_start_inner(name).await;
        self.audited(name, "device", result).await
    }

    async fn device_start_inner(&self, name: &str) -> Result<DeviceStart> {
        let (stored, _, metadata, _) = self.open(name).await?;
        let Some(endpoint) = metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
        else {
            return Err(SsoRefusal::NotOffered.into());
        };
        let mut scope = String::from("openid");
        for s in &stored.config.scopes {
            scope.push(' ');
            scope.push_str(s);
        }
        let response = self
            .client
            .http
            .post(&endpoint)
            .header(
                reqwest::header::AUTHORIZATION,
                basic(&stored.config.client_id, &stored.secret),
            )
            .form(&[
                ("client_id", stored.config.client_id.as_str()),
                ("scope", &scope),
            ])
            .send()
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        if !response.status().is_success() {
            return Err(SsoRefusal::ProviderError.into());
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        let answer: DeviceAnswer =
            serde_json::from_slice(&body).map_err(|_| SsoRefusal::ProviderUnavailable)?;
        let now = self.ctx.clock.now();
        let lifetime = Duration::from_secs(answer.expires_in.clamp(1, FLOW_TTL.as_secs()));
        let interval = answer.interval.unwrap_or(5).clamp(1, 60);
        let handle = random_secret()?;
        let flow = DeviceFlow {
            provider: name.to_owned(),
            device_code: answer.device_code.clone(),
            interval_secs: interval,
            expires: now.saturating_add(lifetime),
            next_poll: now,
        };
        self.keep_flow(&self.device_flows, &handle, &flow).await?;
        Ok(DeviceStart {
            verification_uri: answer.verification_uri.clone(),
            verification_uri_complete: answer.verification_uri_complete.clone(),
            user_code: answer.user_code.clone(),
            handle: SecretString::from(handle),
            expires_in: lifetime,
            interval: Duration::from_secs(interval),
        })
    }

    /// Polls the device flow of `handle`: at most once per interval it asks the provider's
    /// token endpoint; once the user is done, checks the ID token and starts an SSO session as
    /// the code flow does. The flow ends with its first result.
    ///
    /// # Errors
    /// [`SsoRefusal::UnknownFlow`] for an unknown, used or expired handle;
    /// [`SsoRefusal::Denied`] when the user refused or the code expired; the ID-token and
    /// account refusals of [`Sso::callback`].
    pub async fn device_poll(&self, handle: &str) -> Result<DevicePoll> {
        let (key, flow, version) = self
            .find_flow::<DeviceFlow>(&self.device_flows, handle)
            .await?;
        let provider = flow.provider.clone();
        let result = self.device_poll_inner(&key, flow, version).await;
        if result.is_err() && !matches!(result, Err(Error::Sso(SsoRefusal::Pending))) {
            let mut batch = Batch::new();
            batch.delete(&self.device_flows, &key);
            self.ctx.store.commit(batch).await?;
        }
        let result = self.audited(&provider, "device", result).await;
        match result {
            Err(Error::Sso(SsoRefusal::Pending)) => Ok(DevicePoll::Pending {
                interval: Duration::from_secs(self.interval_of(&key).await?),
            }),
            other => other,
        }
    }

    async fn interval_of(&self, key: &[u8; 32]) -> Result<u64> {
        Ok(self
            .ctx
            .store
            .get_decoded::<DeviceFlow>(&self.device_flows, key)
            .await?
            .map_or(5, |(f, _)| f.interval_secs))
    }

    async fn device_poll_inner(
        &self,
        key: &[u8; 32],
        mut flow: DeviceFlow,
        version: u64,
    ) -> Result<DevicePoll> {
        let now = self.ctx.clock.now();
        if now.unix_millis() >= flow.expires.unix_millis() {
            return Err(SsoRefusal::UnknownFlow.into());
        }
        if now.unix_millis() < flow.next_poll.unix_millis() {
            return Err(SsoRefusal::Pending.into());
        }
        let (stored, parsed, metadata, fetched) = self.open(&flow.provider).await?;
        let Some(token_url) = metadata.token_endpoint() else {
            return Err(SsoRefusal::NotOffered.into());
        };
        let response = self
            .client
            .http
            .post(token_url.as_str())
            .header(
                reqwest::header::AUTHORIZATION,
                basic(&stored.config.client_id, &stored.secret),
            )
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", flow.device_code.as_str()),
                ("client_id", stored.config.client_id.as_str()),
            ])
            .send()
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        let answer: Value =
            serde_json::from_slice(&body).map_err(|_| SsoRefusal::ProviderUnavailable)?;
        if !status.is_success() {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return match error {
                "authorization_pending" | "slow_down" => {
                    if error == "slow_down" {
                        flow.interval_secs = (flow.interval_secs + 5).min(60);
                    }
                    flow.next_poll = now.saturating_add(Duration::from_secs(flow.interval_secs));
                    let mut batch = Batch::new();
                    batch.put_if_version(&self.device_flows, key, version, &codec::encode(&flow)?);
                    // A concurrent poll wrote first: it said the same.
                    let _ = self.ctx.store.commit(batch).await;
                    Err(SsoRefusal::Pending.into())
                }
                "access_denied" | "expired_token" => Err(SsoRefusal::Denied.into()),
                _ => Err(SsoRefusal::CodeRejected.into()),
            };
        }
        // Done: the flow is used up before anything else, so two polls cannot both sign in.
        self.use_up(&self.device_flows, key, version).await?;
        let raw = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(SsoRefusal::Claims)?;
        let signed = self
            .complete(&stored, &parsed, &metadata, &fetched, raw, None, "device")
            .await?;
        Ok(DevicePoll::Done(Box::new(signed)))
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The provider's answer to a device authorization request.
#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

/// The parameters of the redirect back from a provider.
#[derive(Clone, Default, Deserialize)]
pub struct AuthorizationResponse {
    /// The state sent with the request.
    pub state: String,
    /// The authorization code.
    pub code: Option<String>,
    /// The issuer (RFC 9207).
    pub iss: Option<String>,
    /// An error code instead of a code.
    pub error: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
