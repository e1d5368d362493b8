//! Single sign-on on the wire: the device flow the CLI uses, and the provider configuration of
//! the authentication area.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A device sign-in under way: what the user is shown, and the handle the client polls with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceStartView {
    /// Where the user goes, on any device with a browser.
    pub verification_uri: String,
    /// The same with the code filled in, where the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// The code to type there.
    pub user_code: String,
    /// The client's secret handle for polling; only its holder gets the session.
    pub handle: String,
    /// Seconds the user has.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

/// A poll of a device sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePollRequest {
    /// The handle from the start.
    #[schema(max_length = 128)]
    pub handle: String,
}

/// The user has not finished at the provider yet.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DevicePending {
    /// Always `pending`.
    pub status: String,
    /// Seconds to wait before the next poll.
    pub interval: u64,
}

/// One value of a provider's groups claim and the group it grants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMappingView {
    /// The claim value.
    pub claim: String,
    /// The group id.
    pub group: String,
}

/// A provider of the workspace, as configured (the client secret is never shown).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderView {
    /// Its name in URLs: 1 to 32 of `a-z`, `0-9` and `-`.
    pub name: String,
    /// What sign-in pages show.
    pub display_name: String,
    /// The issuer (`https://`, or `http://` on a loopback address).
    pub issuer: String,
    /// The client id at the provider.
    pub client_id: String,
    /// The callback URL registered with the provider.
    pub redirect_uri: String,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// `off`, `create` or `link_verified_email`.
    pub provisioning: String,
    /// The claim of the username.
    pub username_claim: String,
    /// The claim of the e-mail address.
    pub email_claim: String,
    /// The claim of the display name.
    pub display_name_claim: String,
    /// The claim of the groups.
    pub groups_claim: String,
    /// Group claim values to groups.
    pub groups: Vec<GroupMappingView>,
    /// The longest time since the user authenticated at the provider, in seconds.
    pub max_age_seconds: Option<u64>,
    /// The clock skew allowed, in seconds (at most 300).
    pub skew_seconds: u64,
    /// The signing algorithms accepted (asymmetric only).
    pub algorithms: Vec<String>,
    /// Whether sign-in through it is open.
    pub enabled: bool,
}

/// A provider to add or replace: its configuration and, for a new one or to change it, the
/// client secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderUpdate {
    /// The configuration (its name must be the one in the path).
    pub provider: ProviderView,
    /// The client secret; absent keeps the stored one.
    #[schema(max_length = 512)]
    pub client_secret: Option<String>,
}

/// The sign-in settings of a workspace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInSettingsView {
    /// Password sign-in refused except for `break_glass`.
    pub sso_only: bool,
    /// The owner who may still sign in with a password.
    pub break_glass: Option<String>,
}

/// Where to end the session at the provider too.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SsoLogoutView {
    /// The provider's end-session URL, when it offers one.
    pub end_session_url: Option<String>,
}
