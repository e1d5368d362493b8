//! Identity: users, local passwords, progressive lockout, password login and sessions.

mod context;
mod layout;
mod lockout;
mod login;
mod password;
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
    EMAILS, MAX_DISPLAY_NAME_CHARS, MAX_EMAIL_LEN, MAX_USERNAME_LEN, NewUser, USERNAMES, USERS,
    User, UserState, UserUpdate, Users, normalize_email, normalize_username,
};
