//! Identity: local passwords (this module so far), users, lockout and sessions.

mod password;

pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordConfig, PasswordHasher, PolicyViolation,
    Verified, check_policy,
};
