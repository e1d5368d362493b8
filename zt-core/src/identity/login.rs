//! Password login: credentials, limits, lockout and the two answers a caller ever sees.
//!
//! [`Authenticator::login`] first asks the hasher's [`SignInLimiter`](super::SignInLimiter)
//! (per address, and in all), then the lockout, both before any hash runs; either refusal is
//! [`Error::TooManyAttempts`] with the time to wait. Otherwise it runs exactly one argon2
//! verification (a dummy one where there is nothing to verify) and answers an unknown user, a
//! wrong password and a deactivated account with the same [`Error::AuthenticationFailed`], so
//! neither the answer nor its cost tells them apart. The reason goes to the audit log only.
//!
//! Lock states are keyed by the username as typed (normalised), not by the account, so an
//! account that does not exist locks exactly like one that does: a lock confirms nothing.
//! A correct password during a lock is refused without being checked, and nothing refused during
//! a lock counts as a new failure, so no one extends a lock by trying. A lock's refusals are
//! recorded once per lock, not once per attempt. See [`LockoutPolicy`] and docs/threat-model.md.
//!
//! Credentials ([`CREDENTIALS`]) are PHC strings keyed by user id; lock states ([`LOCKOUT`],
//! blinded, since usernames and source addresses are personal data) are keyed by pair, account
//! name or address. Both are encrypted at rest by the deployment's store.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zt_storage::{Batch, ErrorKind, KvStoreExt, Namespace, codec};

use super::context::TenantContext;
use std::time::Duration;

use super::lockout::{LockRecord, LockState, LockoutPolicy, LockoutRule};
use super::password::{PasswordHasher, check_policy};
use super::signin::address_bytes;
use super::users::normalize_username;
use super::users::{User, UserState, Users};
use crate::audit::{Actor, AuditEventKind, Outcome};
use crate::error::{Error, Result};
use crate::ids::UserId;

/// Password hashes (PHC strings), keyed by user id. Blinded.
pub const CREDENTIALS: &str = "identity.b.credentials";
/// Lock states ([`LockRecord`]), keyed by `"P" ‖ name length ‖ name ‖ address` (a pair),
/// `"A" ‖ name` (an account) or `"S" ‖ address`. Blinded.
pub const LOCKOUT: &str = "identity.lockout";

/// Why a login failed, for the audit log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    UnknownUser,
    WrongPassword,
    NoPassword,
    Deactivated,
    SsoOnly,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownUser => "unknown_user",
            Reason::WrongPassword => "wrong_password",
            Reason::NoPassword => "no_password",
            Reason::Deactivated => "deactivated",
            Reason::SsoOnly => "sso_only",
        }
    }
}

/// The name lock states are kept under: the username normalised, or as typed (trimmed,
/// lowercased) when it is not a valid username, so every name locks alike.
fn lock_name(username: &str) -> Vec<u8> {
    normalize_username(username)
        .unwrap_or_else(|_| username.trim().to_lowercase())
        .into_bytes()
}

fn address_key(source: Option<IpAddr>) -> Vec<u8> {
    let mut key = b"S".to_vec();
    key.extend_from_slice(&source.map(address_bytes).unwrap_or_default());
    key
}

fn account_key(name: &[u8]) -> Vec<u8> {
    let mut key = b"A".to_vec();
    key.extend_from_slice(name);
    key
}

fn pair_key(name: &[u8], source: Option<IpAddr>) -> Vec<u8> {
    let mut key = b"P".to_vec();
    key.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    key.extend_from_slice(name);
    key.extend_from_slice(&source.map(address_bytes).unwrap_or_default());
    key
}

/// The three lock records of one attempt.
struct Locks {
    pair: (Vec<u8>, LockRecord, Option<u64>),
    account: (Vec<u8>, LockRecord, Option<u64>),
    address: (Vec<u8>, LockRecord, Option<u64>),
}

/// Checks passwords and keeps the lock states of one tenant.
pub struct Authenticator {
    ctx: TenantContext,
    users: Arc<Users>,
    hasher: Arc<PasswordHasher>,
    policy: LockoutPolicy,
    credentials: Namespace,
    lockout: Namespace,
    settings: Namespace,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tenant", &self.ctx.tenant)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Logins of the `users` of `ctx`'s tenant.
    ///
    /// # Errors
    /// None in practice: the namespace names are constants.
    pub fn new(
        ctx: TenantContext,
        users: Arc<Users>,
        hasher: Arc<PasswordHasher>,
        policy: LockoutPolicy,
    ) -> Result<Self> {
        Ok(Authenticator {
            ctx,
            users,
            hasher,
            policy,
            credentials: Namespace::new(CREDENTIALS)?,
            lockout: Namespace::new(LOCKOUT)?,
            settings: Namespace::new(super::oidc::AUTH_SETTINGS)?,
        })
    }

    async fn record(
        &self,
        kind: AuditEventKind,
        actor: Actor,
        target: Option<UserId>,
        outcome: Outcome,
        source: Option<IpAddr>,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut event = self.ctx.event(kind, actor).outcome(outcome);
        if let Some(user) = target {
            event = event.target(user.to_string());
        }
        if let Some(source) = source {
            event = event.source(source);
        }
        if let Some(reason) = reason {
            event = event.detail("reason", reason)?;
        }
        self.ctx.record(event).await
    }

    /// Records an administrative action on `user` that succeeded.
    async fn record_done(&self, kind: AuditEventKind, actor: &Actor, user: UserId) -> Result<()> {
        self.record(
            kind,
            actor.clone(),
            Some(user),
            Outcome::Success,
            None,
            None,
        )
        .await
    }

    /// Sets `user`'s password after checking it against the policy (audited as
    /// `user.password_changed` by `actor`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a password the policy refuses (saying why) or a deleted user;
    /// [`Error::NotFound`]; the store's errors.
    pub async fn set_password(
        &self,
        actor: &Actor,
        user: UserId,
        password: &SecretString,
    ) -> Result<()> {
        let account = self
            .users
            .get(user)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user}")))?;
        if account.state == UserState::Deleted {
            return Err(Error::InvalidInput("a deleted user has no password".into()));
        }
        let local = account
            .email
            .as_deref()
            .and_then(|e| e.split('@').next())
            .unwrap_or_default();
        check_policy(password.expose_secret(), &[&account.username, local])
            .map_err(|why| Error::InvalidInput(why.to_string()))?;
        let phc = self.hasher.hash(password).await?;
        let mut batch = Batch::new();
        batch.put(&self.credentials, &user.to_bytes(), phc.as_bytes());
        self.ctx.store.commit(batch).await?;
        self.record_done(AuditEventKind::PasswordChanged, actor, user)
            .await
    }

    async fn lock_record(&self, key: Vec<u8>) -> Result<(Vec<u8>, LockRecord, Option<u64>)> {
        Ok(
            match self.ctx.store.get_decoded(&self.lockout, &key).await? {
                Some((record, version)) => (key, record, Some(version)),
                None => (key, LockRecord::default(), None),
            },
        )
    }

    async fn locks(&self, name: &[u8], source: Option<IpAddr>) -> Result<Locks> {
        let pair = self.lock_record(pair_key(name, source)).await?;
        let account = self.lock_record(account_key(name)).await?;
        let address = self.lock_record(address_key(source)).await?;
        let mut locks = Locks {
            pair,
            account,
            address,
        };
        // An unlock of the account sets aside the failures its pairs counted before it.
        if locks.pair.1.epoch < locks.account.1.epoch {
            locks.pair.1.state = LockState::default();
            locks.pair.1.reported_until = None;
        }
        Ok(locks)
    }

    /// Changes the record at `key` with `change`, retrying on a concurrent update.
    /// Changes the record at `key` with `change`, starting from `known` (the record and version
    /// this attempt already read) and reading again only after a concurrent update; returns what
    /// was written.
    async fn update(
        &self,
        key: &[u8],
        known: Option<(LockRecord, Option<u64>)>,
        change: impl Fn(LockRecord) -> LockRecord,
    ) -> Result<LockRecord> {
        let mut known = known;
        loop {
            let (record, version) = match known.take() {
                Some(known) => known,
                None => {
                    let (_, record, version) = self.lock_record(key.to_vec()).await?;
                    (record, version)
                }
            };
            let next = change(record);
            if version.is_some() && next == record {
                return Ok(next);
            }
            let mut batch = Batch::new();
            match version {
                None => batch.put_if_absent(&self.lockout, key, &codec::encode(&next)?),
                Some(v) => batch.put_if_version(&self.lockout, key, v, &codec::encode(&next)?),
            };
            match self.ctx.store.commit(batch).await {
                Ok(_) => return Ok(next),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records a failure at `lock` under `rule`; whether it earned a lock.
    async fn fail(
        &self,
        lock: &(Vec<u8>, LockRecord, Option<u64>),
        rule: &LockoutRule,
        epoch: u64,
    ) -> Result<bool> {
        let now = self.ctx.clock.now();
        let (key, record, version) = lock;
        let written = self
            .update(key, Some((*record, *version)), |record| {
                // Failures counted before the account's last unlock are set aside.
                let counted = if record.epoch < epoch {
                    LockState::default()
                } else {
                    record.state
                };
                LockRecord {
                    state: rule.fail(&counted, now).0,
                    epoch: record.epoch.max(epoch),
                    ..record
                }
            })
            .await?;
        Ok(rule.lock_for(written.state.failures).is_some())
    }

    /// Checks `username` and `password` from `source`; returns the user on success.
    ///
    /// # Errors
    /// [`Error::TooManyAttempts`] when a limit or a lock refuses the attempt (before any hash
    /// runs, alike for accounts that do not exist); [`Error::AuthenticationFailed`] for every
    /// other failure (see the module docs); the store's and the audit sink's errors.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<IpAddr>,
    ) -> Result<User> {
        let now = self.ctx.clock.now();
        let _admission = match self.hasher.sign_in_limiter().admit(source, now) {
            Ok(admission) => admission,
            Err(refused) => {
                if refused.report {
                    self.refused(None, source, "rate_limited", refused.retry_after, true)
                        .await?;
                }
                return Err(Error::TooManyAttempts {
                    retry_after: refused.retry_after,
                });
            }
        };
        let name = lock_name(username);
        let locks = self.locks(&name, source).await?;
        let familiar = locks.pair.1.last_success.is_some_and(|at| {
            now.unix_millis().saturating_sub(at.unix_millis())
                < i64::try_from(self.policy.familiar_for.as_millis()).unwrap_or(i64::MAX)
        });
        let user = self.users.find_by_username(username).await?;
        // The locks that apply here: the pair's always; the account's and the address's only
        // where the account is not familiar with the address.
        let mut waits = vec![(
            self.policy.pair.remaining(&locks.pair.1.state, now),
            &locks.pair,
        )];
        if !familiar {
            waits.push((
                self.policy.account.remaining(&locks.account.1.state, now),
                &locks.account,
            ));
            waits.push((
                self.policy.address.remaining(&locks.address.1.state, now),
                &locks.address,
            ));
        }
        let longest = waits
            .into_iter()
            .filter_map(|(wait, lock)| wait.map(|wait| (wait, lock)))
            .max_by_key(|(wait, _)| *wait);
        if let Some((wait, (key, record, version))) = longest {
            // Said once per lock, whichever addresses try: the first refusal records it.
            let until = record.state.locked_until;
            if record.reported_until != until {
                self.update(key, Some((*record, *version)), |record| LockRecord {
                    reported_until: until,
                    ..record
                })
                .await?;
                self.refused(user.as_ref().map(|u| u.id), source, "locked", wait, false)
                    .await?;
            }
            return Err(Error::TooManyAttempts {
                retry_after: Duration::from_secs(wait.as_secs().max(1)),
            });
        }
        // SSO-only: every account but the break-glass one is refused without a hash of its
        // own (the dummy runs, so the cost is alike), recorded, and counted as no failure.
        if let Some(account) = &user
            && self.sso_only_refuses(account.id).await?
        {
            self.hasher.verify_dummy(password).await;
            self.record(
                AuditEventKind::LoginFailed,
                Actor::Anonymous,
                Some(account.id),
                Outcome::Denied,
                source,
                Some(Reason::SsoOnly.as_str()),
            )
            .await?;
            return Err(Error::AuthenticationFailed);
        }
        let phc = match &user {
            Some(user) => self
                .ctx
                .store
                .get(&self.credentials, &user.id.to_bytes())
                .await?
                .map(|entry| String::from_utf8(entry.value))
                .transpose()
                .map_err(|_| Error::InvalidInput("a stored credential is damaged".into()))?,
            None => None,
        };
        // Exactly one argon2 verification, whatever the case.
        let reason = match (&user, &phc) {
            (None, _) => Err(Reason::UnknownUser),
            (Some(u), _) if u.state != UserState::Active => Err(Reason::Deactivated),
            (Some(_), None) => Err(Reason::NoPassword),
            (Some(_), Some(phc)) => Ok(phc),
        };
        let outcome = match reason {
            Ok(phc) => {
                let verified = self.hasher.verify(password, phc).await?;
                if verified.matches {
                    Ok(verified.needs_rehash)
                } else {
                    Err(Reason::WrongPassword)
                }
            }
            Err(reason) => {
                self.hasher.verify_dummy(password).await;
                Err(reason)
            }
        };
        match (outcome, user) {
            (Ok(needs_rehash), Some(user)) => {
                self.succeeded(&user, password, &locks, needs_rehash, source)
                    .await?;
                Ok(user)
            }
            (Err(reason), user) => {
                self.failed(
                    user.as_ref().map(|u| u.id),
                    reason,
                    &locks,
                    familiar,
                    source,
                )
                .await?;
                Err(Error::AuthenticationFailed)
            }
            // A match needs a user; this arm is never taken.
            (Ok(_), None) => Err(Error::AuthenticationFailed),
        }
    }

    /// Whether the tenant is SSO-only and `user` is not its break-glass account.
    async fn sso_only_refuses(&self, user: UserId) -> Result<bool> {
        let settings = self
            .ctx
            .store
            .get_decoded::<super::oidc::AuthSettings>(&self.settings, b"settings")
            .await?
            .map(|(s, _)| s)
            .unwrap_or_default();
        Ok(settings.sso_only && settings.break_glass != Some(user))
    }

    /// Records a refused attempt (rate limit or lock) as `login.failed` with its reason.
    async fn refused(
        &self,
        user: Option<UserId>,
        source: Option<IpAddr>,
        reason: &str,
        wait: Duration,
        rate_limited: bool,
    ) -> Result<()> {
        let kind = if rate_limited {
            AuditEventKind::RateLimited
        } else {
            AuditEventKind::LoginFailed
        };
        let mut event = self
            .ctx
            .event(kind, Actor::Anonymous)
            .outcome(Outcome::Denied)
            .detail("reason", reason)?
            .detail("retry_after_secs", wait.as_secs().max(1).to_string())?;
        if let Some(user) = user {
            event = event.target(user.to_string());
        }
        if let Some(source) = source {
            event = event.source(source);
        }
        self.ctx.record(event).await
    }

    async fn succeeded(
        &self,
        user: &User,
        password: &SecretString,
        locks: &Locks,
        needs_rehash: bool,
        source: Option<IpAddr>,
    ) -> Result<()> {
        let now = self.ctx.clock.now();
        // The pair's failures end and the address becomes (or stays) familiar; refreshed at
        // most daily, so a plain login writes little but its audit event.
        let pair = &locks.pair.1;
        let stale = pair
            .last_success
            .is_none_or(|at| now.unix_millis().saturating_sub(at.unix_millis()) > 86_400_000);
        if stale || pair.state != LockState::default() {
            let epoch = locks.account.1.epoch;
            self.update(
                &locks.pair.0,
                Some((locks.pair.1, locks.pair.2)),
                |record| LockRecord {
                    state: LockState::default(),
                    last_success: Some(now),
                    reported_until: None,
                    epoch: record.epoch.max(epoch),
                },
            )
            .await?;
        }
        if needs_rehash {
            let phc = self.hasher.hash(password).await?;
            let mut batch = Batch::new();
            batch.put(&self.credentials, &user.id.to_bytes(), phc.as_bytes());
            self.ctx.store.commit(batch).await?;
        }
        self.record(
            AuditEventKind::LoginSucceeded,
            Actor::User(user.id),
            Some(user.id),
            Outcome::Success,
            source,
            None,
        )
        .await
    }

    async fn failed(
        &self,
        user: Option<UserId>,
        reason: Reason,
        locks: &Locks,
        familiar: bool,
        source: Option<IpAddr>,
    ) -> Result<()> {
        let epoch = locks.account.1.epoch;
        let mut locked = self.fail(&locks.pair, &self.policy.pair, epoch).await?;
        // A familiar address's typos count against that pair only: they feed neither the
        // account's count of strangers nor the address's spray count.
        if !familiar {
            locked |= self
                .fail(&locks.account, &self.policy.account, epoch)
                .await?;
            locked |= self.fail(&locks.address, &self.policy.address, 0).await?;
        }
        let actor = Actor::Anonymous;
        self.record(
            AuditEventKind::LoginFailed,
            actor.clone(),
            user,
            Outcome::Failure,
            source,
            Some(reason.as_str()),
        )
        .await?;
        if locked {
            self.record(
                AuditEventKind::AccountLocked,
                actor,
                user,
                Outcome::Denied,
                source,
                Some(reason.as_str()),
            )
            .await?;
        }
        Ok(())
    }

    /// Lifts the locks of `user` and forgets their failures, at every address (audited as
    /// `login.unlocked`).
    ///
    /// # Errors
    /// [`Error::NotFound`]; the store's and the audit sink's errors.
    pub async fn unlock(&self, actor: &Actor, user: UserId) -> Result<()> {
        let account = self
            .users
            .get(user)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user}")))?;
        let name = lock_name(&account.username);
        self.update(&account_key(&name), None, |record| LockRecord {
            state: LockState::default(),
            last_success: None,
            reported_until: None,
            epoch: record.epoch.saturating_add(1),
        })
        .await?;
        self.record_done(AuditEventKind::AccountUnlocked, actor, user)
            .await
    }

    /// Forgets everything kept to sign `user` in: the password hash, and the lock states of
    /// their name (the account's and every name-and-address pair's), so that nothing of theirs
    /// is left once they are deleted. Not audited: the deletion that calls it is. Idempotent.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn forget(&self, user: &User) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.credentials, &user.id.to_bytes());
        if !user.username.is_empty() {
            let name = lock_name(&user.username);
            batch.delete(&self.lockout, &account_key(&name));
            let pairs = pair_key(&name, None);
            // Blinded whole: the pairs of one name are found by reading every lock state.
            let mut rows = self.ctx.store.scan_stream(
                &self.lockout,
                zt_storage::KeyRange::all(),
                zt_storage::ScanOptions::new(),
            );
            while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                if row.key.starts_with(&pairs) {
                    batch.delete(&self.lockout, &row.key);
                }
            }
        }
        self.ctx.store.commit(batch).await?;
        Ok(())
    }

    /// Lifts the lock of a source address (audited as `login.unlocked`).
    ///
    /// # Errors
    /// The store's and the audit sink's errors.
    pub async fn unlock_address(&self, actor: &Actor, source: IpAddr) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.lockout, &address_key(Some(source)));
        self.ctx.store.commit(batch).await?;
        self.record(
            AuditEventKind::AccountUnlocked,
            actor.clone(),
            None,
            Outcome::Success,
            Some(source),
            None,
        )
        .await
    }
}
