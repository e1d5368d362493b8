//! Password login: credentials, lockout and the one failure a caller ever sees.
//!
//! [`Authenticator::login`] answers an unknown user, a wrong password, a locked account or
//! address, and a deactivated account with the same [`Error::AuthenticationFailed`], and runs
//! exactly one argon2 verification for each (a dummy one where there is nothing to verify), so
//! neither the answer nor its cost tells them apart. The reason goes to the audit log only.
//!
//! Credentials ([`CREDENTIALS`]) are PHC strings keyed by user id; lock states ([`LOCKOUT`],
//! blinded, since source addresses are personal data) are keyed by account or address. Both are
//! encrypted at rest by the deployment's store.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zt_storage::{Batch, ErrorKind, KvStoreExt, Namespace, codec};

use super::context::TenantContext;
use super::lockout::{LockState, LockoutPolicy, LockoutRule};
use super::password::{PasswordHasher, check_policy};
use super::users::{User, UserState, Users};
use crate::audit::{Actor, AuditEventKind, Outcome};
use crate::error::{Error, Result};
use crate::ids::UserId;

/// Password hashes (PHC strings), keyed by user id.
pub const CREDENTIALS: &str = "identity.credentials";
/// Lock states, keyed by `"a" ‖ user id` or `"s" ‖ source address`. Blinded.
pub const LOCKOUT: &str = "identity.lockout";

/// Why a login failed, for the audit log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    UnknownUser,
    WrongPassword,
    NoPassword,
    Deactivated,
    AccountLocked,
    AddressLocked,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownUser => "unknown_user",
            Reason::WrongPassword => "wrong_password",
            Reason::NoPassword => "no_password",
            Reason::Deactivated => "deactivated",
            Reason::AccountLocked => "account_locked",
            Reason::AddressLocked => "address_locked",
        }
    }
}

/// The key of a source address: the IPv4 address, or the /64 of an IPv6 address (one host's
/// share, which an attacker can otherwise rotate through freely).
fn address_key(source: IpAddr) -> Vec<u8> {
    let mut key = b"s".to_vec();
    match source {
        IpAddr::V4(v4) => key.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => key.extend_from_slice(&v4.octets()),
            None => key.extend_from_slice(&v6.octets()[..8]),
        },
    }
    key
}

fn account_key(user: UserId) -> Vec<u8> {
    let mut key = b"a".to_vec();
    key.extend_from_slice(&user.to_bytes());
    key
}

/// Checks passwords and keeps the lock states of one tenant.
pub struct Authenticator {
    ctx: TenantContext,
    users: Arc<Users>,
    hasher: Arc<PasswordHasher>,
    policy: LockoutPolicy,
    credentials: Namespace,
    lockout: Namespace,
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

    async fn lock_state(&self, key: &[u8]) -> Result<(LockState, Option<u64>)> {
        Ok(
            match self.ctx.store.get_decoded(&self.lockout, key).await? {
                Some((state, version)) => (state, Some(version)),
                None => (LockState::default(), None),
            },
        )
    }

    /// Records a failure against `key` under `rule`, retrying on a concurrent update; returns
    /// whether it started a lock.
    async fn fail(&self, key: &[u8], rule: &LockoutRule) -> Result<bool> {
        loop {
            let (state, version) = self.lock_state(key).await?;
            let (next, locked) = rule.fail(&state, self.ctx.clock.now());
            let mut batch = Batch::new();
            match version {
                None => batch.put_if_absent(&self.lockout, key, &codec::encode(&next)?),
                Some(v) => batch.put_if_version(&self.lockout, key, v, &codec::encode(&next)?),
            };
            match self.ctx.store.commit(batch).await {
                Ok(_) => return Ok(locked.is_some()),
                Err(e) if e.kind() == ErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Checks `username` and `password` from `source`; returns the user on success.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] for every kind of failure (see the module docs); the
    /// store's and the audit sink's errors.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<IpAddr>,
    ) -> Result<User> {
        let now = self.ctx.clock.now();
        let address = source.map(address_key);
        let address_locked = match &address {
            Some(key) => self
                .policy
                .address
                .is_locked(&self.lock_state(key).await?.0, now),
            None => false,
        };
        let user = self.users.find_by_username(username).await?;
        let (account_locked, had_failures, phc) = match &user {
            Some(user) => {
                let (state, version) = self.lock_state(&account_key(user.id)).await?;
                let phc = self
                    .ctx
                    .store
                    .get(&self.credentials, &user.id.to_bytes())
                    .await?
                    .map(|entry| String::from_utf8(entry.value))
                    .transpose()
                    .map_err(|_| Error::InvalidInput("a stored credential is damaged".into()))?;
                (
                    self.policy.account.is_locked(&state, now),
                    version.is_some(),
                    phc,
                )
            }
            None => (false, false, None),
        };
        // Exactly one argon2 verification, whatever the case.
        let reason = match (&user, &phc) {
            _ if address_locked => Err(Reason::AddressLocked),
            (None, _) => Err(Reason::UnknownUser),
            (Some(_), _) if account_locked => Err(Reason::AccountLocked),
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
                self.succeeded(&user, password, had_failures, needs_rehash, source)
                    .await?;
                Ok(user)
            }
            (Err(reason), user) => {
                self.failed(user.as_ref().map(|u| u.id), reason, address, source)
                    .await?;
                Err(Error::AuthenticationFailed)
            }
            // A match needs a user; this arm is never taken.
            (Ok(_), None) => Err(Error::AuthenticationFailed),
        }
    }

    async fn succeeded(
        &self,
        user: &User,
        password: &SecretString,
        had_failures: bool,
        needs_rehash: bool,
        source: Option<IpAddr>,
    ) -> Result<()> {
        // A plain login writes nothing but its audit event.
        let mut batch = Batch::new();
        if had_failures {
            batch.delete(&self.lockout, &account_key(user.id));
        }
        if needs_rehash {
            let phc = self.hasher.hash(password).await?;
            batch.put(&self.credentials, &user.id.to_bytes(), phc.as_bytes());
        }
        if !batch.is_empty() {
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
        address: Option<Vec<u8>>,
        source: Option<IpAddr>,
    ) -> Result<()> {
        let mut locked = false;
        if let Some(key) = &address {
            locked |= self.fail(key, &self.policy.address).await?;
        }
        if let Some(user) = user {
            locked |= self.fail(&account_key(user), &self.policy.account).await?;
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

    /// Lifts the lock of `user` and forgets their failures (audited as `login.unlocked`).
    ///
    /// # Errors
    /// The store's and the audit sink's errors.
    pub async fn unlock(&self, actor: &Actor, user: UserId) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.lockout, &account_key(user));
        self.ctx.store.commit(batch).await?;
        self.record_done(AuditEventKind::AccountUnlocked, actor, user)
            .await
    }

    /// Lifts the lock of a source address (audited as `login.unlocked`).
    ///
    /// # Errors
    /// The store's and the audit sink's errors.
    pub async fn unlock_address(&self, actor: &Actor, source: IpAddr) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.lockout, &address_key(source));
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
