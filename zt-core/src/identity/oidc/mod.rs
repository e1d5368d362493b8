//! OpenID Connect single sign-on: a relying party per tenant, with several providers.
//!
//! - **Providers** ([`ProviderConfig`]) are kept in the tenant's store; the client secret is
//!   sealed at rest with every value and never handed back ([`Sso::providers`] returns the
//!   configuration without it). A provider's discovery document and key set are fetched by the
//!   deployment's [`SsoClient`] and cached.
//! - **The code flow** ([`Sso::start`], [`Sso::callback`]): PKCE with S256 only; `state`,
//!   `nonce` and the PKCE verifier are kept server-side under a hash of the state, bound to the
//!   browser that started the flow by a secret it holds ([`SsoStart::binding`], a cookie), used
//!   once and for at most [`FLOW_TTL`]. The RFC 9207 `iss` response parameter must name the
//!   provider that was asked (mix-up defence), and is required where the provider announces it.
//! - **ID tokens** are checked by `openidconnect`'s verifier (signature, issuer, audience,
//!   expiry, nonce, `auth_time` against `max_age`) under the provider's algorithm allow-list,
//!   which admits asymmetric algorithms only (no `none`, no HMAC keyed with a public key), plus
//!   `azp`, `nbf` and issue time, all within the configured skew. RSA signatures (RS*, PS*) are
//!   checked by ring through the key type the verifier is given, which also refuses RSA keys
//!   under 2,048 bits (RFC 7518 section 3.3). A token naming a key the cached set lacks makes one
//!   fetch of the set, at most once per cool-down.
//! - **Accounts** are linked by (issuer, subject), never by e-mail. A subject without a link is
//!   provisioned by the provider's [`Provisioning`]: refused, created, or linked to an existing
//!   account holding the same *verified* address. A deactivated or deleted account, or one whose
//!   link was removed, signs in no more.
//! - **Sessions** of kind [`SessionKind::Sso`] with their own lifetimes, indexed by the
//!   provider's session (`sid`) and by subject, so a **back-channel logout**
//!   ([`Sso::backchannel_logout`]) ends them at once (each `jti` accepted once); realtime streams
//!   close with them, as with any revocation.
//! - **The device flow** (RFC 8628, [`Sso::device_start`], [`Sso::device_poll`]) for clients
//!   without a browser: the server holds the device code; the client holds a handle only.
//!
//! Every sign-in is recorded as `sso.succeeded` or `sso.failed` with the provider and the
//! check that failed ([`SsoRefusal::code`]); no token, code or claim value is ever recorded.

mod keys;
mod remote;
mod service;
mod verify;

use std::fmt;
use std::time::Duration;

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{IssuerUrl, RedirectUrl};
use serde::{Deserialize, Serialize};

pub use remote::{SsoClient, SsoClientConfig};
pub use service::{
    AuthorizationResponse, DevicePoll, DeviceStart, SWEEP_EVERY, SignIn, Sso, SsoStart,
};

use crate::error::{Error, Result};
use crate::ids::{GroupId, UserId};

/// Providers, keyed by name; the value holds the client secret, sealed at rest. Blinded.
pub const SSO_PROVIDERS: &str = "identity.b.sso_providers";
/// Identity links: SHA-256 of (issuer, subject) → the account. Blinded.
pub const SSO_LINKS: &str = "identity.b.sso_links";
/// An account's links: user id ‖ provider name → link key. Blinded by the user id.
pub const SSO_USER_LINKS: &str = "identity.b.sso_user_links";
/// Code flows under way, keyed by SHA-256 of the state. Blinded.
pub const SSO_FLOWS: &str = "identity.b.sso_flows";
/// Device flows under way, keyed by SHA-256 of the client's handle. Blinded.
pub const SSO_DEVICE_FLOWS: &str = "identity.b.sso_devices";
/// SSO sessions by provider session: 16-byte hash of (provider, sid) ‖ token hash. Blinded by
/// the first 16 bytes.
pub const SSO_SID_SESSIONS: &str = "identity.b.sso_sids";
/// SSO sessions by subject: the link key's first 16 bytes ‖ token hash. Blinded by the prefix.
pub const SSO_SUBJECT_SESSIONS: &str = "identity.b.sso_subjects";
/// Logout tokens seen: SHA-256 of (provider, jti) → expiry. Blinded.
pub const SSO_LOGOUT_TOKENS: &str = "identity.b.sso_jtis";
/// The tenant's sign-in settings ([`AuthSettings`], key `settings`). Blinded.
pub const AUTH_SETTINGS: &str = "identity.b.auth_settings";

/// How long a code flow may take from start to callback, and a device flow's longest life.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// The largest clock skew a provider may be given.
pub const MAX_SKEW: Duration = Duration::from_secs(300);
/// The longest provider name.
pub const MAX_PROVIDER_NAME: usize = 32;
/// The most providers one tenant may configure.
pub const MAX_PROVIDERS: usize = 16;
/// The most group mappings one provider may have.
pub const MAX_GROUP_MAPPINGS: usize = 1000;

/// The signing algorithms a provider may be allowed: asymmetric ones only.
pub const ALLOWED_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Why single sign-on was refused. Each check has its own answer, so tests and operators can
/// tell them apart; callers of a server see only "single sign-on failed" and the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SsoRefusal {
    /// No enabled provider of that name in the workspace.
    UnknownProvider,
    /// The provider could not be reached or answered something unusable.
    ProviderUnavailable,
    /// The provider does not offer what was asked (the device flow, a logout endpoint).
    NotOffered,
    /// No flow under way has this state or handle (unknown, used, or expired).
    UnknownFlow,
    /// The browser that returned is not the one that started the flow.
    WrongBrowser,
    /// The authorization response's `iss` names another provider, or is missing where the
    /// provider announces it (RFC 9207).
    IssuerMismatch,
    /// The provider answered the authorization request with an error (the user declined...).
    ProviderError,
    /// The token endpoint refused the code: used before, issued for another flow, or the PKCE
    /// verifier does not match.
    CodeRejected,
    /// A token is not a well-formed JWT.
    Malformed,
    /// The token's algorithm is not allowed (`none`, HMAC, or outside the allow-list).
    Algorithm,
    /// The token names a key the provider's key set lacks, even after fetching it again.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// The token's issuer is not the provider's.
    Issuer,
    /// The token is not for this client (or names another, untrusted audience).
    Audience,
    /// `azp` names another client, or is missing with several audiences.
    AuthorizedParty,
    /// The token has expired.
    Expired,
    /// The token is not valid yet (`nbf`, or issued in the future).
    NotYetValid,
    /// The nonce is missing or is not the flow's.
    Nonce,
    /// The user authenticated longer ago than the provider's `max_age`.
    AuthTime,
    /// A required claim is missing or malformed.
    Claims,
    /// No account is linked to this subject and provisioning does not make one.
    NotLinked,
    /// Linking by e-mail needs an address the provider says is verified.
    EmailNotVerified,
    /// Provisioning would take an address or name another account holds.
    AccountConflict,
    /// The linked account is deactivated or deleted.
    AccountInactive,
    /// This logout token was already used.
    Replayed,
    /// The user has not finished at the provider yet (device flow); poll again.
    Pending,
    /// The user refused, or the device code expired at the provider.
    Denied,
}

impl SsoRefusal {
    /// The code recorded in the audit log and shown to callers.
    pub fn code(self) -> &'static str {
        match self {
            SsoRefusal::UnknownProvider => "unknown_provider",
            SsoRefusal::ProviderUnavailable => "provider_unavailable",
            SsoRefusal::NotOffered => "not_offered",
            SsoRefusal::UnknownFlow => "unknown_flow",
            SsoRefusal::WrongBrowser => "wrong_browser",
            SsoRefusal::IssuerMismatch => "issuer_mismatch",
            SsoRefusal::ProviderError => "provider_error",
            SsoRefusal::CodeRejected => "code_rejected",
            SsoRefusal::Malformed => "malformed_token",
            SsoRefusal::Algorithm => "algorithm",
            SsoRefusal::UnknownKey => "unknown_key",
            SsoRefusal::Signature => "signature",
            SsoRefusal::Issuer => "issuer",
            SsoRefusal::Audience => "audience",
            SsoRefusal::AuthorizedParty => "authorized_party",
            SsoRefusal::Expired => "expired",
            SsoRefusal::NotYetValid => "not_yet_valid",
            SsoRefusal::Nonce => "nonce",
            SsoRefusal::AuthTime => "auth_time",
            SsoRefusal::Claims => "claims",
            SsoRefusal::NotLinked => "not_linked",
            SsoRefusal::EmailNotVerified => "email_not_verified",
            SsoRefusal::AccountConflict => "account_conflict",
            SsoRefusal::AccountInactive => "account_inactive",
            SsoRefusal::Replayed => "replayed",
            SsoRefusal::Pending => "pending",
            SsoRefusal::Denied => "denied",
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_temporary(self) -> bool {
        matches!(self, SsoRefusal::ProviderUnavailable | SsoRefusal::Pending)
    }
}

impl fmt::Display for SsoRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl From<SsoRefusal> for Error {
    fn from(refusal: SsoRefusal) -> Self {
        Error::Sso(refusal)
    }
}

/// What happens on a provider's first sign-in of a subject no account is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provisioning {
    /// Refused: an administrator links accounts (or another provider created them).
    Off,
    /// A new account from the claims; refused when its address belongs to another account.
    Create,
    /// Linked to the existing account with the same address, only if the provider says it is
    /// verified (`email_verified`); no account is created.
    LinkVerifiedEmail,
}

/// Which claims fill which user fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMap {
    /// The username (default `preferred_username`; the address's local part when missing).
    pub username: String,
    /// The e-mail address (default `email`), used only when `email_verified` is true.
    pub email: String,
    /// The display name (default `name`).
    pub display_name: String,
    /// The group names (default `groups`): a string or an array of strings.
    pub groups: String,
}

impl Default for ClaimMap {
    fn default() -> Self {
        ClaimMap {
            username: "preferred_username".into(),
            email: "email".into(),
            display_name: "name".into(),
            groups: "groups".into(),
        }
    }
}

/// One value of the groups claim and the group it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMapping {
    /// The value in the provider's groups claim.
    pub claim: String,
    /// The group membership it gives (source OIDC).
    pub group: GroupId,
}

/// A provider as configured: everything but the client secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// The name in URLs and commands: 1 to 32 of `a-z`, `0-9` and `-`.
    pub name: String,
    /// What sign-in pages show.
    pub display_name: String,
    /// The issuer, exactly as the provider names itself: `https://`, or `http://` on a loopback
    /// address only.
    pub issuer: String,
    /// This relying party's client id at the provider.
    pub client_id: String,
    /// Where the provider sends the browser back (the server's callback route).
    pub redirect_uri: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// Claims to user fields.
    pub claims: ClaimMap,
    /// Group claim values to group memberships.
    pub groups: Vec<GroupMapping>,
    /// First sign-in of an unknown subject.
    pub provisioning: Provisioning,
    /// The longest time since the user authenticated at the provider; sent as `max_age` and
    /// checked against `auth_time`.
    pub max_age: Option<Duration>,
    /// The clock skew allowed in token times, at most [`MAX_SKEW`].
    pub skew: Duration,
    /// The signing algorithms accepted, from [`ALLOWED_ALGORITHMS`].
    pub algorithms: Vec<String>,
    /// Whether sign-in through it is open.
    pub enabled: bool,
}

impl ProviderConfig {
    /// A provider with the defaults: `email` and `profile` scopes, the standard claims, no
    /// provisioning, 60 s of skew, RS256 / ES256 / EdDSA, enabled.
    ///
    /// ```
    /// use zt_core::identity::{ProviderConfig, Provisioning};
    /// let mut p = ProviderConfig::new("corp", "https://id.example.com", "zt", "https://chat.example.com/cb");
    /// p.provisioning = Provisioning::Create;
    /// assert!(p.check().is_ok());
    /// p.algorithms = vec!["HS256".into()];
    /// assert!(p.check().is_err());
    /// ```
    pub fn new(name: &str, issuer: &str, client_id: &str, redirect_uri: &str) -> Self {
        ProviderConfig {
            name: name.to_owned(),
            display_name: name.to_owned(),
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes: vec!["email".into(), "profile".into()],
            claims: ClaimMap::default(),
            groups: Vec::new(),
            provisioning: Provisioning::Off,
            max_age: None,
            skew: Duration::from_secs(60),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            enabled: true,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the first field that is wrong.
    pub fn check(&self) -> Result<()> {
        self.parsed().map(drop)
    }

    pub(crate) fn parsed(&self) -> Result<Parsed> {
        let bad = |field: &str, why: &str| Error::InvalidInput(format!("{field}: {why}"));
        if !valid_name(&self.name) {
            return Err(bad("name", "1 to 32 lowercase letters, digits and dashes"));
        }
        if !plain(&self.display_name, 128) {
            return Err(bad("display_name", "1 to 128 characters, no controls"));
        }
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|_| bad("issuer", "not a URL"))
            .and_then(|url| {
                secure_url(url.url())
                    .then_some(url)
                    .ok_or_else(|| bad("issuer", "https, or http on a loopback address"))
            })?;
        if issuer.url().query().is_some() || issuer.url().fragment().is_some() {
            return Err(bad("issuer", "no query or fragment"));
        }
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|_| bad("redirect_uri", "not a URL"))?;
        if !matches!(redirect.url().scheme(), "https" | "http")
            || redirect.url().fragment().is_some()
        {
            return Err(bad("redirect_uri", "an http(s) URL without a fragment"));
        }
        if !plain(&self.client_id, 256) || self.client_id.contains(char::is_whitespace) {
            return Err(bad(
                "client_id",
                "1 to 256 characters, no spaces or controls",
            ));
        }
        if self.scopes.len() > 32
            || self.scopes.iter().any(|s| {
                s.is_empty()
                    || s.len() > 128
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            })
        {
            return Err(bad("scopes", "at most 32 scope tokens"));
        }
        let claims = [
            &self.claims.username,
            &self.claims.email,
            &self.claims.display_name,
            &self.claims.groups,
        ];
        if claims.iter().any(|c| !plain(c, 128)) {
            return Err(bad("claims", "claim names of 1 to 128 characters"));
        }
        if self.groups.len() > MAX_GROUP_MAPPINGS
            || self.groups.iter().any(|g| !plain(&g.claim, 256))
        {
            return Err(bad(
                "groups",
                "at most 1000 mappings of 1 to 256 characters",
            ));
        }
        if self.skew > MAX_SKEW {
            return Err(bad("skew", "at most 300 seconds"));
        }
        if self
            .max_age
            .is_some_and(|m| m.is_zero() || m > Duration::from_secs(30 * 24 * 3600))
        {
            return Err(bad("max_age", "1 second to 30 days"));
        }
        if self.algorithms.is_empty() {
            return Err(bad("algorithms", "at least one"));
        }
        let mut algorithms = Vec::new();
        for name in &self.algorithms {
            if !ALLOWED_ALGORITHMS.contains(&name.as_str()) {
                return Err(bad("algorithms", "asymmetric JWS algorithms only"));
            }
            let alg: CoreJwsSigningAlgorithm =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| bad("algorithms", "unknown algorithm"))?;
            algorithms.push(alg);
        }
        Ok(Parsed {
            issuer,
            redirect,
            algorithms,
        })
    }
}

/// A configuration checked and parsed.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) issuer: IssuerUrl,
    pub(crate) redirect: RedirectUrl,
    pub(crate) algorithms: Vec<CoreJwsSigningAlgorithm>,
}

pub(crate) fn valid_name(name: &str) -> bool {
    (1..=MAX_PROVIDER_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn plain(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// `https`, or `http` to a loopback address (a provider on the same host, as in tests).
fn secure_url(url: &openidconnect::url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// The token checks on their own, over a key set given as JWKS text: what a callback and a
/// back-channel logout apply, for tools and the fuzz targets (`fuzz/checks/sso_tokens.rs`). The
/// algorithms are RS256, ES256 and EdDSA; the skew is 60 s.
///
/// ```
/// use zt_core::identity::{SsoRefusal, token_checks};
/// let refused = token_checks::logout_token(
///     "eyJhbGciOiJub25lIn0.e30.",
///     r#"{"keys":[]}"#,
///     "https://id.example.com",
///     "zt",
///     zt_core::Timestamp::EPOCH,
/// );
/// assert_eq!(refused.unwrap_err(), SsoRefusal::Algorithm);
/// ```
pub mod token_checks {
    use std::time::Duration;

    use openidconnect::core::CoreJwsSigningAlgorithm;
    use openidconnect::{ClientId, IssuerUrl};

    use super::SsoRefusal;
    use super::keys::KeySet;
    use super::verify::{self, Checks};
    use crate::clock::Timestamp;

    fn with_checks<T>(
        jwks: &str,
        issuer: &str,
        client_id: &str,
        now: Timestamp,
        run: impl FnOnce(&KeySet, &Checks<'_>) -> Result<T, SsoRefusal>,
    ) -> Result<T, SsoRefusal> {
        let keys: KeySet = serde_json::from_str(jwks).map_err(|_| SsoRefusal::Malformed)?;
        let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|_| SsoRefusal::Issuer)?;
        let client_id = ClientId::new(client_id.to_owned());
        let algorithms = [
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ];
        let checks = Checks {
            issuer: &issuer,
            client_id: &client_id,
            algorithms: &algorithms,
            now,
            skew: Duration::from_secs(60),
            max_age: None,
        };
        run(&keys, &checks)
    }

    /// Checks an ID token (with `nonce`, if one was sent); returns its subject.
    ///
    /// # Errors
    /// The check that failed.
    pub fn id_token(
        raw: &str,
        jwks: &str,
        issuer: &str,
        client_id: &str,
        nonce: Option<&str>,
        now: Timestamp,
    ) -> Result<String, SsoRefusal> {
        with_checks(jwks, issuer, client_id, now, |keys, checks| {
            verify::verify_id_token(raw, keys, checks, nonce).map(|c| c.subject)
        })
    }

    /// Checks a back-channel logout token; returns its `jti`.
    ///
    /// # Errors
    /// The check that failed.
    pub fn logout_token(
        raw: &str,
        jwks: &str,
        issuer: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<String, SsoRefusal> {
        with_checks(jwks, issuer, client_id, now, |keys, checks| {
            verify::verify_logout_token(raw, keys, checks).map(|c| c.jti)
        })
    }
}

/// A tenant's sign-in settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSettings {
    /// Password sign-in is refused (single sign-on only), except for `break_glass`.
    pub sso_only: bool,
    /// The one account that may still sign in with a password when `sso_only` is on (an owner,
    /// for when the provider is down).
    pub break_glass: Option<UserId>,
}
