//! Local passwords: the policy a new password must meet, and argon2id hashing in PHC strings on a
//! bounded blocking pool.
//!
//! - **Hashing**: argon2id v1.3, at least m = 19456 KiB, t = 2, p = 1 (the OWASP minimum;
//!   configurable upwards), a random 16-byte salt per hash, and an optional pepper from the
//!   deployment's configuration (never from the database) as argon2's secret input.
//! - **Rehash**: [`PasswordHasher::verify`] says when a stored hash used other parameters, so a
//!   successful login can store a fresh one.
//! - **Pool**: hashing and verifying run on Tokio's blocking threads, at most
//!   [`PasswordConfig::max_concurrent`] at a time, so a flood of logins queues instead of
//!   stalling the async runtime or exhausting memory (each hash holds `m` KiB).
//! - **Unknown users** cost the same: [`PasswordHasher::verify_dummy`] runs one verification
//!   against a hash of a random password made with the current parameters.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use secrecy::SecretString;
//! use zt_core::identity::{PasswordConfig, PasswordHasher};
//!
//! let hasher = PasswordHasher::new(PasswordConfig::default())?;
//! let password = SecretString::from("correct horse battery staple");
//! let phc = hasher.hash(&password).await?;
//! assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//! assert!(hasher.verify(&password, &phc).await?.matches);
//! # Ok::<_, zt_core::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngExt as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::signin::{SignInLimiter, SignInLimits};
use crate::error::{Error, Result};

/// The shortest password the policy accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password the policy accepts, in characters. Longer ones are refused, never cut.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// How passwords are hashed.
#[derive(Clone)]
pub struct PasswordConfig {
    /// Memory per hash, in KiB (at least 19456).
    pub m_cost_kib: u32,
    /// Passes (at least 2).
    pub t_cost: u32,
    /// Lanes (at least 1).
    pub p_cost: u32,
    /// A secret mixed into every hash, kept in configuration, outside the database. Changing it
    /// invalidates every stored hash.
    pub pepper: Option<Zeroizing<Vec<u8>>>,
    /// Hashes computed at once, at most (0: one per core).
    pub max_concurrent: usize,
    /// Allow parameters below the OWASP minimum. Only for tests, where 19 MiB per hash is slow.
    pub allow_weak: bool,
    /// The sign-in limits applied before a hash runs (sized from the hash's cost by default).
    pub sign_in: SignInLimits,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            m_cost_kib: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
            pepper: None,
            max_concurrent: 0,
            allow_weak: false,
            sign_in: SignInLimits::default(),
        }
    }
}

impl fmt::Debug for PasswordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordConfig")
            .field("m_cost_kib", &self.m_cost_kib)
            .field("t_cost", &self.t_cost)
            .field("p_cost", &self.p_cost)
            .field("pepper", &self.pepper.as_ref().map(|_| "<redacted>"))
            .field("max_concurrent", &self.max_concurrent)
            .field("allow_weak", &self.allow_weak)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password is the one hashed.
    pub matches: bool,
    /// Whether the hash used other parameters than the current ones (store a new hash after a
    /// successful login).
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords (see the module docs).
pub struct PasswordHasher {
    params: Params,
    pepper: Option<Arc<Zeroizing<Vec<u8>>>>,
    permits: Arc<Semaphore>,
    /// A hash of a random password with the current parameters, for unknown users.
    dummy: String,
    verifications: Arc<AtomicU64>,
    capacity: f64,
    sign_in: Arc<SignInLimiter>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("peppered", &self.pepper.is_some())
            .finish_non_exhaustive()
    }
}

/// An argon2id context with the pepper (if any) as its secret input.
fn context<'a>(params: &Params, pepper: Option<&'a [u8]>) -> Result<Argon2<'a>> {
    match pepper {
        None => Ok(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
        )),
        Some(secret) => {
            Argon2::new_with_secret(secret, Algorithm::Argon2id, Version::V0x13, params.clone())
                .map_err(hashing_error)
        }
    }
}

fn hashing_error(e: impl fmt::Display) -> Error {
    Error::InvalidInput(format!("password hashing: {e}"))
}

impl PasswordHasher {
    /// A hasher with `config`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for parameters below the OWASP minimum (unless
    /// [`PasswordConfig::allow_weak`]) or that argon2 refuses, or a pepper over 4 KiB.
    pub fn new(config: PasswordConfig) -> Result<Self> {
        let weak = config.m_cost_kib < Params::DEFAULT_M_COST
            || config.t_cost < Params::DEFAULT_T_COST
            || config.p_cost < 1;
        if weak && !config.allow_weak {
            return Err(Error::InvalidInput(format!(
                "argon2id parameters m={} KiB, t={}, p={} are below the minimum m=19456, t=2, p=1",
                config.m_cost_kib, config.t_cost, config.p_cost
            )));
        }
        if config.pepper.as_ref().is_some_and(|p| p.len() > 4096) {
            return Err(Error::InvalidInput("the pepper is over 4 KiB".into()));
        }
        let params = Params::new(config.m_cost_kib, config.t_cost, config.p_cost, None)
            .map_err(hashing_error)?;
        let permits = match config.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let pepper = config.pepper.map(Arc::new);
        let mut random = Zeroizing::new([0u8; 32]);
        rand::rng().fill(&mut random[..]);
        // The dummy hash is also the measure of what one hash costs here.
        let started = std::time::Instant::now();
        let dummy = hash_blocking(
            &params,
            pepper.as_deref().map(|p| p.as_slice()),
            &random[..],
        )?;
        let seconds = started.elapsed().as_secs_f64().max(1e-4);
        let capacity = permits as f64 / seconds;
        let sign_in = Arc::new(SignInLimiter::new(&config.sign_in, capacity, permits));
        Ok(PasswordHasher {
            params,
            pepper,
            permits: Arc::new(Semaphore::new(permits)),
            dummy,
            verifications: Arc::new(AtomicU64::new(0)),
            capacity,
            sign_in,
        })
    }

    /// Hashes per second this hasher can do, as measured when it started.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// The sign-in limiter sized to this hasher, shared by everyone who signs in through it.
    pub fn sign_in_limiter(&self) -> &SignInLimiter {
        &self.sign_in
    }

    /// How many verifications ran (real and dummy), for metrics and tests.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn pooled<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::InvalidInput("the password pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| Error::InvalidInput(format!("password hashing failed: {e}")))?
    }

    /// The PHC string of `password` under the current parameters. The policy is not checked
    /// here (see [`check_policy`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when hashing fails.
    pub async fn hash(&self, password: &SecretString) -> Result<String> {
        let password = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
        let (params, pepper) = (self.params.clone(), self.pepper.clone());
        self.pooled(move || {
            hash_blocking(&params, pepper.as_deref().map(|p| p.as_slice()), &password)
        })
        .await
    }

    /// Checks `password` against the stored PHC string `phc`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stored string that is not an argon2 PHC hash.
    pub async fn verify(&self, password: &SecretString, phc: &str) -> Result<Verified> {
        let parsed = PasswordHash::new(phc).map_err(hashing_error)?;
        let needs_rehash = parsed.algorithm.as_str() != "argon2id"
            || Params::try_from(&parsed).map_or(true, |p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (
                        self.params.m_cost(),
                        self.params.t_cost(),
                        self.params.p_cost(),
                    )
            });
        let password = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
        let phc = phc.to_owned();
        let (params, pepper) = (self.params.clone(), self.pepper.clone());
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matches = self
            .pooled(move || {
                verify_blocking(
                    &params,
                    pepper.as_deref().map(|p| p.as_slice()),
                    &password,
                    &phc,
                )
            })
            .await?;
        Ok(Verified {
            matches,
            needs_rehash,
        })
    }

    /// Runs one verification that cannot succeed and costs what a real one costs: for a login
    /// whose user does not exist, so that it cannot be told apart by time.
    pub async fn verify_dummy(&self, password: &SecretString) {
        let dummy = self.dummy.clone();
        // The outcome is always a mismatch; only the work matters.
        let _ = self.verify(password, &dummy).await;
    }
}

fn hash_blocking(params: &Params, pepper: Option<&[u8]>, password: &[u8]) -> Result<String> {
    let hash = context(params, pepper)?
        .hash_password(password)
        .map_err(hashing_error)?;
    Ok(hash.to_string())
}

fn verify_blocking(
    params: &Params,
    pepper: Option<&[u8]>,
    password: &[u8],
    phc: &str,
) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(hashing_error)?;
    // The stored string's own parameters are used; the context only supplies the pepper.
    match context(params, pepper)?.verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(hashing_error(e)),
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters (refused, never truncated).
    #[error("the password is longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    /// A commonly used password, or one made of a common word, a sequence or a keyboard row.
    #[error("the password is too common or too easy to guess")]
    Common,
    /// It contains the account's own name or e-mail address.
    #[error("the password contains the account's name")]
    ContainsAccountName,
}

/// Common passwords and the words they are built from (lowercase), checked whole and as the
/// base of a password with digits or symbols added.
const COMMON: &str = include_str!("common-passwords.txt");

/// Keyboard rows and alphabetic and numeric runs: a password made only of a stretch of one of
/// these (forwards or backwards, possibly repeated) is refused.
const RUNS: [&str; 6] = [
    "1234567890",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qazwsxedcrfvtgbyhnujmikolp",
];

fn is_common_word(word: &str) -> bool {
    !word.is_empty()
        && COMMON
            .lines()
            .map(str::trim)
            .any(|line| !line.is_empty() && !line.starts_with('#') && line == word)
}

/// Whether `text` is nothing but one short unit repeated (`abcabcabc`, `aaaa`).
fn is_repetition(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (1..=chars.len() / 2).any(|unit| {
        chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|c| c == &chars[..unit])
    })
}

/// Whether `text` is a stretch of one of the runs, forwards or backwards, wrapping around.
fn is_run(text: &str) -> bool {
    text.chars().count() >= 4
        && RUNS.iter().any(|run| {
            // Runs wrap around (`...8901234`), so look in enough copies of the run.
            let copies = text.len() / run.len() + 2;
            let reversed: String = run.chars().rev().collect();
            run.repeat(copies).contains(text) || reversed.repeat(copies).contains(text)
        })
}

/// Checks a new password against the policy: 12 to 1024 characters, not a common password or
/// built from one (a common word, a run or a repetition, with digits and symbols around it), and
/// not containing any of `account_names` (the username, the e-mail's local part).
///
/// # Errors
/// The first [`PolicyViolation`].
///
/// ```
/// use zt_core::identity::{PolicyViolation, check_policy};
///
/// assert_eq!(check_policy("short", &[]), Err(PolicyViolation::TooShort));
/// assert_eq!(check_policy("Password2024!", &[]), Err(PolicyViolation::Common));
/// assert_eq!(check_policy("1234567890123", &[]), Err(PolicyViolation::Common));
/// assert_eq!(check_policy("alice-is-here-2024", &["alice"]), Err(PolicyViolation::ContainsAccountName));
/// assert_eq!(check_policy("violet kettle rides at dawn", &["alice"]), Ok(()));
/// ```
pub fn check_policy(password: &str, account_names: &[&str]) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(PolicyViolation::TooShort);
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    let lower = password.to_lowercase();
    // The core once digits, spaces and symbols around it are taken away.
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let letters_and_digits: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    let guessable = |text: &str| {
        is_common_word(text)
            || is_repetition(text)
            || is_run(text)
            || COMMON.lines().map(str::trim).any(|word| {
                word.chars().count() >= 4
                    && !word.starts_with('#')
                    && text.len() > word.len()
                    && text.len().is_multiple_of(word.len())
                    && text
                        .as_bytes()
                        .chunks(word.len())
                        .all(|c| c == word.as_bytes())
            })
    };
    if guessable(&lower) || guessable(core) || guessable(&letters_and_digits) {
        return Err(PolicyViolation::Common);
    }
    if account_names
        .iter()
        .map(|name| name.trim().to_lowercase())
        .any(|name| name.chars().count() >= 3 && lower.contains(&name))
    {
        return Err(PolicyViolation::ContainsAccountName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_the_guessable_and_keeps_the_long() {
        for refused in [
            "password1234",
            "Password2024!",
            "qwertyuiop12",
            "123456789012",
            "abcdefghijkl",
            "aaaaaaaaaaaa",
            "abcabcabcabc",
            "iloveyou!!!!",
            "passwordpassword",
            "0987654321098",
            "letmein12345",
            "LETMEINLETMEIN",
            "welcome2025#",
        ] {
            assert_eq!(
                check_policy(refused, &[]),
                Err(PolicyViolation::Common),
                "{refused}"
            );
        }
        for accepted in [
            "correct horse battery staple",
            "violet kettle rides at dawn",
            "Tr4ff0rd-Moss-Lantern",
            "ünïcödé-pässwörd-ok",
        ] {
            assert_eq!(check_policy(accepted, &[]), Ok(()), "{accepted}");
        }
        // Length counts characters, and nothing is ever cut.
        assert_eq!(
            check_policy("ünïcödé-päs", &[]),
            Err(PolicyViolation::TooShort)
        );
        let long = "x7".repeat(MAX_PASSWORD_CHARS / 2) + "q";
        assert_eq!(check_policy(&long, &[]), Err(PolicyViolation::TooLong));
        assert_eq!(
            check_policy("my name is Bartholomew!", &["bartholomew"]),
            Err(PolicyViolation::ContainsAccountName)
        );
    }

    #[test]
    fn weak_parameters_need_an_explicit_opt_in() {
        let weak = PasswordConfig {
            m_cost_kib: 64,
            t_cost: 1,
            ..PasswordConfig::default()
        };
        assert!(PasswordHasher::new(weak.clone()).is_err());
        assert!(
            PasswordHasher::new(PasswordConfig {
                allow_weak: true,
                ..weak
            })
            .is_ok()
        );
        let debug = format!(
            "{:?}",
            PasswordConfig {
                pepper: Some(Zeroizing::new(b"sekrit-pepper".to_vec())),
                ..PasswordConfig::default()
            }
        );
        assert!(!debug.contains("sekrit"), "{debug}");
    }
}
