//! Identity: users, local passwords, progressive lockout, password login, sessions, OpenID
//! Connect single sign-on, and SCIM's filter language.

mod context;
mod layout;
mod lockout;
mod login;
mod oidc;
mod password;
pub mod scim;
mod server;
mod service;
mod sessions;
mod signin;
mod users;

pub use context::TenantContext;
pub use layout::{
    BLINDED_NAMESPACES, LEGACY_NAMESPACES, PREFIX_BLINDED_NAMESPACES, blind_identity,
    move_legacy_records,
};
pub use lockout::{LockRecord, LockState, LockoutPolicy, LockoutRule};
pub use login::{Authenticator, CREDENTIALS, LOCKOUT};
pub use oidc::{
    ALLOWED_ALGORITHMS, AUTH_SETTINGS, AuthSettings, AuthorizationResponse, ClaimMap, DevicePoll,
    DeviceStart, FLOW_TTL, GroupMapping, MAX_GROUP_MAPPINGS, MAX_PROVIDER_NAME, MAX_PROVIDERS,
    MAX_SKEW, ProviderConfig, Provisioning, SSO_DEVICE_FLOWS, SSO_FLOWS, SSO_LINKS,
    SSO_LOGOUT_TOKENS, SSO_PROVIDERS, SSO_SID_SESSIONS, SSO_SUBJECT_SESSIONS, SSO_USER_LINKS,
    SWEEP_EVERY, SignIn, Sso, SsoClient, SsoClientConfig, SsoRefusal, SsoStart, token_checks,
};
pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordConfig, PasswordHasher, PolicyViolation,
    Verified, check_policy,
};
pub use server::{SERVER_IDENTITY, SERVER_IDENTITY_KEY, ServerIdentity, fingerprint};
pub use service::Identity;
pub use sessions::{
    CACHE_CAPACITY, LAST_SEEN_STEP, SESSION_POLICY, SESSIONS, Session, SessionKind, SessionPolicy,
    SessionToken, Sessions, Timeouts, USER_SESSIONS,
};
pub use signin::{Admission, SignInLimiter, SignInLimits};
pub use users::{
    DELETED_USERS, EMAILS, MAX_DISPLAY_NAME_CHARS, MAX_EMAIL_LEN, MAX_USERNAME_LEN, NewUser,
    USERNAMES, USERS, User, UserState, UserUpdate, Users, normalize_email, normalize_username,
};
