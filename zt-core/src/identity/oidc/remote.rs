//! What the relying party fetches from providers and keeps: one HTTP client for the deployment
//! (redirects off, short timeouts), each provider's discovery document for a while, and its
//! key set, fetched again for an unknown key at most once per cool-down whatever the number of
//! tokens that ask.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, JsonWebKeySet, ProviderMetadata};
use serde::{Deserialize, Serialize};

use super::SsoRefusal;
use super::keys::{self, KeySet, SigningKey};
use crate::clock::{Clock, Timestamp};
use crate::ids::TenantId;

/// Discovery fields beyond the core set that the relying party uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExtraMetadata {
    /// RFC 8628.
    pub(crate) device_authorization_endpoint: Option<String>,
    /// RP-Initiated Logout 1.0.
    pub(crate) end_session_endpoint: Option<String>,
    /// RFC 9207: the provider sends `iss` with every authorization response.
    pub(crate) authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// A provider's discovery document.
pub(crate) type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How long fetched provider data is trusted, and how the fetches are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsoClientConfig {
    /// How long a discovery document is used before it is fetched again.
    pub metadata_ttl: Duration,
    /// At most one key-set fetch for unknown keys per this long, per provider.
    pub jwks_cooldown: Duration,
    /// The longest a request to a provider may take.
    pub request_timeout: Duration,
}

impl Default for SsoClientConfig {
    fn default() -> Self {
        SsoClientConfig {
            metadata_ttl: Duration::from_secs(3600),
            jwks_cooldown: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// One provider's fetched state.
pub(crate) struct Fetched {
    metadata: Mutex<Option<(Arc<Metadata>, Timestamp)>>,
    jwks: Mutex<Arc<KeySet>>,
    /// Held while a key set is fetched for an unknown key; the last such fetch.
    refetch: tokio::sync::Mutex<Option<Timestamp>>,
    /// Which configuration this state was fetched for (issuer), so a changed provider starts
    /// afresh.
    issuer: String,
}

/// The deployment's client of OpenID providers: shared by every workspace, its caches keyed by
/// workspace and provider.
pub struct SsoClient {
    pub(crate) http: reqwest::Client,
    config: SsoClientConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<HashMap<(TenantId, String), Arc<Fetched>>>,
    fetches: AtomicU64,
}

impl fmt::Debug for SsoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsoClient")
            .field("config", &self.config)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SsoClient {
    /// A client with its own HTTP connection pool: rustls with the webpki roots, no redirects
    /// followed (a provider's answer is never a way to make the server fetch elsewhere), no
    /// proxy from the environment, `config.request_timeout` per request.
    ///
    /// ```
    /// let client = zt_core::identity::SsoClient::new(
    ///     Default::default(),
    ///     std::sync::Arc::new(zt_core::SystemClock),
    /// )?;
    /// assert_eq!(client.fetches(), 0);
    /// # Ok::<_, zt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] when the TLS set-up fails.
    pub fn new(config: SsoClientConfig, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(|e| crate::Error::InvalidInput(format!("the HTTP client: {e}")))?;
        Ok(SsoClient {
            http,
            config,
            clock,
            state: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many documents (discovery and key sets) this client fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The settings.
    pub fn config(&self) -> SsoClientConfig {
        self.config
    }

    /// Forgets what was fetched for `provider` of `tenant` (its configuration changed).
    pub(crate) fn forget(&self, tenant: TenantId, provider: &str) {
        lock(&self.state).remove(&(tenant, provider.to_owned()));
    }

    fn fetched(&self, tenant: TenantId, provider: &str, issuer: &str) -> Arc<Fetched> {
        let mut state = lock(&self.state);
        let key = (tenant, provider.to_owned());
        if let Some(f) = state.get(&key)
            && f.issuer == issuer
        {
            return Arc::clone(f);
        }
        let fresh = Arc::new(Fetched {
            metadata: Mutex::new(None),
            jwks: Mutex::new(Arc::new(JsonWebKeySet::new(Vec::new()))),
            refetch: tokio::sync::Mutex::new(None),
            issuer: issuer.to_owned(),
        });
        state.insert(key, Arc::clone(&fresh));
        fresh
    }

    /// The provider's discovery document (and, with it, its key set), from the cache while it
    /// is fresh.
    pub(crate) async fn metadata(
        &self,
        tenant: TenantId,
        provider: &str,
        issuer: &IssuerUrl,
    ) -> Result<(Arc<Metadata>, Arc<Fetched>), SsoRefusal> {
        let fetched = self.fetched(tenant, provider, issuer.as_str());
        let now = self.clock.now();
        let cached = lock(&fetched.metadata).clone();
        if let Some((metadata, at)) = cached
            && now.saturating_duration_since(at) < self.config.metadata_ttl
        {
            return Ok((metadata, fetched));
        }
        self.fetches.fetch_add(2, Ordering::Relaxed);
        let metadata = Metadata::discover_async(issuer.clone(), &self.http)
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        *lock(&fetched.jwks) = Arc::new(keys::key_set(metadata.jwks()));
        let metadata = Arc::new(metadata);
        *lock(&fetched.metadata) = Some((Arc::clone(&metadata), now));
        Ok((metadata, fetched))
    }

    /// Runs `check` with the provider's key set; when it names a key the set lacks, fetches the
    /// set again (at most once per cool-down for the provider, one fetch however many tokens
    /// wait on it) and runs it once more.
    pub(crate) async fn with_keys<T, F, Fut>(
        &self,
        metadata: &Metadata,
        fetched: &Fetched,
        check: F,
    ) -> Result<T, SsoRefusal>
    where
        F: Fn(Arc<KeySet>) -> Fut,
        Fut: std::future::Future<Output = Result<T, SsoRefusal>>,
    {
        let keys = Arc::clone(&lock(&fetched.jwks));
        match check(Arc::clone(&keys)).await {
            Err(SsoRefusal::UnknownKey) => {}
            other => return other,
        }
        let mut last = fetched.refetch.lock().await;
        let current = Arc::clone(&lock(&fetched.jwks));
        if !Arc::ptr_eq(&current, &keys) {
            // Another token's fetch came in meanwhile.
            return check(current).await;
        }
        let now = self.clock.now();
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.config.jwks_cooldown) {
            return Err(SsoRefusal::UnknownKey);
        }
        *last = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fresh = JsonWebKeySet::<SigningKey>::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|_| SsoRefusal::ProviderUnavailable)?;
        let fresh = Arc::new(fresh);
        *lock(&fetched.jwks) = Arc::clone(&fresh);
        drop(last);
        check(fresh).await
    }
}
