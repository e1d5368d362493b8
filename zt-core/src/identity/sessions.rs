//! Sessions: opaque 256-bit tokens, stored only as their SHA-256, checked against the tenant's
//! current policy on every use, and revocable one by one or per user.
//!
//! - **Tokens** come from the OS CSPRNG (32 bytes, base64url without padding). The store keeps
//!   `SHA-256(token)` as the key ([`SESSIONS`]); the token itself exists only with its holder, so
//!   a database dump signs nobody in. [`SessionToken`]'s `Debug` is redacted.
//! - **Policy**: idle and absolute timeouts per [`SessionKind`]. Expiry is computed at each use
//!   from the policy in force, so a shortened policy ends live sessions at once.
//! - **Validation** is the hot path: a cache in front of the store. Before it answers, it applies
//!   every revocation already published on the [`EventBus`], so a token revoked anywhere fails on
//!   its very next use. A cache miss also checks that the user is still active.
//! - The last use is written back at most once per [`LAST_SEEN_STEP`], not on every request.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::TryStreamExt as _;
use rand::TryRng as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt, Namespace, codec};

use super::context::TenantContext;

use super::users::{UserState, Users};
use crate::audit::{Actor, AuditEventKind};
use crate::bus::{BusEvent, Delivery, Subscription};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::UserId;

/// Sessions, keyed by SHA-256 of the token.
pub const SESSIONS: &str = "identity.sessions";
/// A user's sessions: `user id ‖ token hash` → nothing, for listing and revoking them all.
/// Blinded by the user-id prefix.
pub const USER_SESSIONS: &str = "identity.b.user_sessions";
/// The tenant's session policy (key `policy`).
pub const SESSION_POLICY: &str = "identity.session_policy";
/// Sessions a cache holds at most; past it, an arbitrary one is dropped for each added.
pub const CACHE_CAPACITY: usize = 100_000;
/// How stale the stored last use may get before a validation writes it back.
pub const LAST_SEEN_STEP: Duration = Duration::from_secs(60);

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A person at a client.
    Interactive,
    /// A program with an API token.
    Api,
    /// The administration portal.
    Portal,
    /// A person signed in through an OpenID provider (single sign-on), bound to the provider's
    /// session, which can end it ([`Sso::backchannel_logout`](super::Sso::backchannel_logout)).
    Sso,
}

/// Idle and absolute timeouts for one kind of session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Ends after this long unused.
    pub idle: Duration,
    /// Ends this long after creation, used or not.
    pub absolute: Duration,
}

/// A tenant's session policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// For [`SessionKind::Interactive`].
    pub interactive: Timeouts,
    /// For [`SessionKind::Api`].
    pub api: Timeouts,
    /// For [`SessionKind::Portal`].
    pub portal: Timeouts,
    /// For [`SessionKind::Sso`]; a policy stored before single sign-on existed gets the default.
    #[serde(default = "default_sso")]
    pub sso: Timeouts,
}

fn default_sso() -> Timeouts {
    SessionPolicy::default().sso
}

impl Default for SessionPolicy {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        SessionPolicy {
            interactive: Timeouts {
                idle: hours(8),
                absolute: hours(24 * 14),
            },
            api: Timeouts {
                idle: hours(24 * 30),
                absolute: hours(24 * 90),
            },
            portal: Timeouts {
                idle: Duration::from_secs(15 * 60),
                absolute: hours(8),
            },
            sso: Timeouts {
                idle: hours(8),
                absolute: hours(24),
            },
        }
    }
}

impl SessionPolicy {
    /// The timeouts of `kind`.
    pub fn timeouts(&self, kind: SessionKind) -> Timeouts {
        match kind {
            SessionKind::Interactive => self.interactive,
            SessionKind::Api => self.api,
            SessionKind::Portal => self.portal,
            SessionKind::Sso => self.sso,
        }
    }
}

/// A session token as its holder has it. `Debug` shows nothing of it.
pub struct SessionToken(SecretString);

impl SessionToken {
    /// The token text, to hand to the client once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Reads a token a client presented.
    pub fn from_presented(text: &str) -> Self {
        SessionToken(SecretString::from(text))
    }

    /// SHA-256 of the token: what the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose_secret().as_bytes()).into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// A session as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Whose it is.
    pub user: UserId,
    /// What it is for.
    pub kind: SessionKind,
    /// When it began.
    pub created: Timestamp,
    /// When it was last used (as stored: at most [`LAST_SEEN_STEP`] behind).
    pub last_seen: Timestamp,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Session {
    /// Whether the session is still alive at `now` under `policy`.
    pub fn alive(&self, policy: &SessionPolicy, now: Timestamp) -> bool {
        let timeouts = policy.timeouts(self.kind);
        let now = now.unix_millis();
        now < self
            .created
            .unix_millis()
            .saturating_add(millis(timeouts.absolute))
            && now
                < self
                    .last_seen
                    .unix_millis()
                    .saturating_add(millis(timeouts.idle))
    }
}

/// What validation keeps in memory.
struct Cache {
    subscription: Box<dyn Subscription>,
    /// The bus's ready counter, and its value at the last drain: draining is skipped while it
    /// has not moved.
    ready: Arc<AtomicU64>,
    seen: u64,
    policy: SessionPolicy,
    entries: HashMap<[u8; 32], Session>,
}

impl Cache {
    /// Applies every event already published. Returns whether the policy must be reloaded.
    fn drain(&mut self) -> bool {
        let ready = self.ready.load(Ordering::Acquire);
        if ready == self.seen {
            return false;
        }
        // Every event counted by `ready` is in the receiver now.
        self.seen = ready;
        let mut reload = false;
        while let Some(delivery) = self.subscription.try_next() {
            match delivery {
                Delivery::Event(BusEvent::SessionRevoked { token_hash }) => {
                    self.entries.remove(&token_hash);
                }
                Delivery::Event(BusEvent::UserSessionsRevoked { user }) => {
                    self.entries.retain(|_, session| session.user != user);
                }
                Delivery::Event(BusEvent::SessionPolicyChanged { .. }) => reload = true,
                // Other components' changes.
                Delivery::Event(_) => {}
                // Missed events: nothing cached can be trusted.
                Delivery::Lagged => {
                    self.entries.clear();
                    reload = true;
                }
                // No bus any more (it cannot happen while this holds it): cache nothing.
                Delivery::Closed => {
                    self.entries.clear();
                    return true;
                }
            }
        }
        reload
    }
}

/// The sessions of one tenant.
pub struct Sessions {
    ctx: TenantContext,
    users: Arc<Users>,
    cache: Mutex<Cache>,
    sessions: Namespace,
    user_sessions: Namespace,
    policy_ns: Namespace,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

const POLICY_KEY: &[u8] = b"policy";

fn user_session_key(user: UserId, hash: &[u8; 32]) -> Vec<u8> {
    let mut key = user.to_bytes().to_vec();
    key.extend_from_slice(hash);
    key
}

impl Sessions {
    /// The sessions of the `users` of `ctx`'s tenant, loading its policy. Opening a tenant's
    /// identity, it first moves identity records kept in the earlier layout
    /// ([`move_legacy_records`](super::move_legacy_records)).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn new(ctx: TenantContext, users: Arc<Users>) -> Result<Self> {
        let policy_ns = Namespace::new(SESSION_POLICY)?;
        let subscription = ctx.bus.subscribe();
        let ready = subscription.ready_counter();
        // Not the current value: the first validation drains whatever came before it.
        let seen = ready.load(Ordering::Acquire).wrapping_sub(1);
        super::layout::move_legacy_records(&*ctx.store).await?;
        let policy = load_policy(&*ctx.store, &policy_ns).await?;
        Ok(Sessions {
            ctx,
            users,
            cache: Mutex::new(Cache {
                subscription,
                ready,
                seen,
                policy,
                entries: HashMap::new(),
            }),
            sessions: Namespace::new(SESSIONS)?,
            user_sessions: Namespace::new(USER_SESSIONS)?,
            policy_ns,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets every cached session (the next validations read the store).
    pub fn clear_cache(&self) {
        self.cache().entries.clear();
    }

    /// The policy in force.
    pub fn policy(&self) -> SessionPolicy {
        self.cache().policy
    }

    /// Replaces the tenant's policy; it applies to every live session at its next use.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn set_policy(&self, policy: SessionPolicy) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(&self.policy_ns, POLICY_KEY, &codec::encode(&policy)?);
        self.ctx.store.commit(batch).await?;
        self.cache().policy = policy;
        self.ctx.bus.publish(BusEvent::SessionPolicyChanged {
            tenant: self.ctx.tenant,
        });
        Ok(())
    }

    /// Starts a session for `user`; the token is returned once and never stored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless the user is active; [`Error::Randomness`] when the OS
    /// random number generator fails; the store's errors.
    pub async fn create(&self, user: UserId, kind: SessionKind) -> Result<(SessionToken, Session)> {
        self.create_with(user, kind, |_, _| Ok(())).await
    }

    /// As [`Sessions::create`], with `index` adding writes (keyed by the token hash) to the same
    /// commit: what single sign-on keeps to end the session when the provider asks.
    pub(crate) async fn create_with(
        &self,
        user: UserId,
        kind: SessionKind,
        index: impl FnOnce(&[u8; 32], &mut Batch) -> Result<()>,
    ) -> Result<(SessionToken, Session)> {
        if !self
            .users
            .get(user)
            .await?
            .is_some_and(|u| u.state == UserState::Active)
        {
            return Err(Error::InvalidInput(format!("user {user} is not active")));
        }
        // Straight from the OS CSPRNG (getrandom), not a user-space generator seeded from it.
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::SysRng
            .try_fill_bytes(&mut bytes[..])
            .map_err(|e| Error::Randomness(e.to_string()))?;
        let token = SessionToken(SecretString::from(URL_SAFE_NO_PAD.encode(&bytes[..])));
        let now = self.ctx.clock.now();
        let session = Session {
            user,
            kind,
            created: now,
            last_seen: now,
        };
        let hash = token.hash();
        let mut batch = Batch::new();
        batch.put_if_absent(&self.sessions, &hash, &codec::encode(&session)?);
        batch.put(&self.user_sessions, &user_session_key(user, &hash), b"");
        index(&hash, &mut batch)?;
        self.ctx.store.commit(batch).await?;
        Ok((token, session))
    }

    /// The session of `token`, if it is alive; extends its idle time.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] for an unknown, expired or revoked token, or one whose
    /// user is no longer active; the store's errors.
    pub async fn validate(&self, token: &SessionToken) -> Result<Session> {
        let hash = token.hash();
        let now = self.ctx.clock.now();
        let reload = {
            let mut cache = self.cache();
            let reload = cache.drain();
            if !reload {
                let policy = cache.policy;
                if let Some(session) = cache.entries.get_mut(&hash) {
                    if session.alive(&policy, now) {
                        let stale = now.unix_millis() - session.last_seen.unix_millis()
                            >= millis(LAST_SEEN_STEP);
                        if !stale {
                            return Ok(*session);
                        }
                    } else {
                        cache.entries.remove(&hash);
                        return Err(Error::AuthenticationFailed);
                    }
                }
            }
            reload
        };
        if reload {
            let policy = load_policy(&*self.ctx.store, &self.policy_ns).await?;
            self.cache().policy = policy;
        }
        self.validate_stored(hash, now).await
    }

    /// The slow path: the stored session, its user, and a write-back of the last use.
    async fn validate_stored(&self, hash: [u8; 32], now: Timestamp) -> Result<Session> {
        let Some((mut session, version)) = self
            .ctx
            .store
            .get_decoded::<Session>(&self.sessions, &hash)
            .await?
        else {
            return Err(Error::AuthenticationFailed);
        };
        let policy = self.policy();
        let active = self.users.get(session.user).await?.is_some_and(|u| {
            u.state == UserState::Active
                && u.sessions_revoked_at.is_none_or(|t| session.created > t)
        });
        if !session.alive(&policy, now) || !active {
            self.remove(session.user, &hash).await?;
            return Err(Error::AuthenticationFailed);
        }
        if now.unix_millis() - session.last_seen.unix_millis() >= millis(LAST_SEEN_STEP) {
            session.last_seen = now;
            let mut batch = Batch::new();
            // A concurrent write-back or revocation wins; this one is only an optimisation.
            batch.put_if_version(&self.sessions, &hash, version, &codec::encode(&session)?);
            let _ = self.ctx.store.commit(batch).await;
        }
        // Only cache what the bus can still revoke: check for events published meanwhile.
        let mut cache = self.cache();
        if !cache.drain() {
            if cache.entries.len() >= CACHE_CAPACITY
                && let Some(victim) = cache.entries.keys().next().copied()
            {
                cache.entries.remove(&victim);
            }
            cache.entries.insert(hash, session);
        }
        Ok(session)
    }

    async fn remove(&self, user: UserId, hash: &[u8; 32]) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.sessions, hash);
        batch.delete(&self.user_sessions, &user_session_key(user, hash));
        self.ctx.store.commit(batch).await?;
        self.cache().entries.remove(hash);
        Ok(())
    }

    async fn audit_revoked(&self, actor: &Actor, user: UserId, count: usize) -> Result<()> {
        let event = self
            .ctx
            .event(AuditEventKind::SessionRevoked, actor.clone())
            .target(user.to_string())
            .detail("sessions", i64::try_from(count).unwrap_or(i64::MAX))?;
        self.ctx.record(event).await
    }

    /// Whether a session with token hash `hash` is stored (live or not yet swept).
    pub(crate) async fn is_stored(&self, hash: &[u8; 32]) -> Result<bool> {
        Ok(self.ctx.store.get(&self.sessions, hash).await?.is_some())
    }

    /// Ends the session of `token` (audited as `session.revoked`).
    ///
    /// # Errors
    /// The store's errors. An unknown token is not an error.
    pub async fn revoke(&self, actor: &Actor, token: &SessionToken) -> Result<()> {
        self.revoke_hash(actor, token.hash()).await
    }

    /// Ends the session whose token hashes to `hash`.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn revoke_hash(&self, actor: &Actor, hash: [u8; 32]) -> Result<()> {
        let Some((session, _)) = self
            .ctx
            .store
            .get_decoded::<Session>(&self.sessions, &hash)
            .await?
        else {
            return Ok(());
        };
        self.remove(session.user, &hash).await?;
        self.ctx
            .bus
            .publish(BusEvent::SessionRevoked { token_hash: hash });
        self.audit_revoked(actor, session.user, 1).await
    }

    /// The token hashes of `user`'s sessions.
    async fn hashes_of(&self, user: UserId) -> Result<Vec<[u8; 32]>> {
        let mut hashes = Vec::new();
        let mut records = self.ctx.store.scan_stream(
            &self.user_sessions,
            KeyRange::prefix(&user.to_bytes()),
            zt_storage::ScanOptions::new(),
        );
        while let Some(record) = records.try_next().await? {
            if let Some(hash) = record
                .key
                .get(16..)
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
            {
                hashes.push(hash);
            }
        }
        Ok(hashes)
    }

    /// `user`'s live sessions, with their token hashes.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(&self, user: UserId) -> Result<Vec<([u8; 32], Session)>> {
        let policy = self.policy();
        let now = self.ctx.clock.now();
        let mut out = Vec::new();
        for hash in self.hashes_of(user).await? {
            if let Some((session, _)) = self
                .ctx
                .store
                .get_decoded::<Session>(&self.sessions, &hash)
                .await?
                && session.alive(&policy, now)
            {
                out.push((hash, session));
            }
        }
        Ok(out)
    }

    /// Ends every session of `user` except `keep` (the caller's own, after a password change),
    /// audited as one `session.revoked`.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn revoke_all(
        &self,
        actor: &Actor,
        user: UserId,
        keep: Option<&SessionToken>,
    ) -> Result<usize> {
        let keep = keep.map(SessionToken::hash);
        let mut count = 0;
        for hash in self.hashes_of(user).await? {
            if Some(hash) != keep {
                self.remove(user, &hash).await?;
                self.ctx
                    .bus
                    .publish(BusEvent::SessionRevoked { token_hash: hash });
                count += 1;
            }
        }
        self.audit_revoked(actor, user, count).await?;
        Ok(count)
    }
}

async fn load_policy(store: &dyn KvStore, namespace: &Namespace) -> Result<SessionPolicy> {
    Ok(store
        .get_decoded::<SessionPolicy>(namespace, POLICY_KEY)
        .await?
        .map(|(policy, _)| policy)
        .unwrap_or_default())
}
