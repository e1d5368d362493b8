//! Users of one tenant: create, read, update, deactivate, reactivate, delete.
//!
//! - **Records** live in [`USERS`], keyed by the user id. A deleted user's record leaves it for a
//!   tombstone in [`DELETED_USERS`] (state [`UserState::Deleted`], name and address erased), so
//!   its id can never come back. Only live users are in [`USERS`]: a deployment may seal each of
//!   its rows under a key of that user's own and destroy the key when the user is deleted
//!   (crypto-shredding, as zt-chat does), while the tombstone, under the namespace's key, stays
//!   readable.
//! - **Usernames and e-mail addresses** are unique per tenant. They are looked up through index
//!   records in [`USERNAMES`] and [`EMAILS`], whose keys the deployment's `EncryptingStore`
//!   blinds (HMAC under the tenant's index key; see [`BLINDED_NAMESPACES`](super::BLINDED_NAMESPACES)), so neither reaches
//!   the disk readable. Values are encrypted like every other value.
//! - Every change is one conditional commit, so two administrators racing for one name cannot
//!   both win, and a change made meanwhile is never overwritten.
//! - Creation, deactivation, reactivation and deletion are audited; deactivation and deletion also
//!   end the user's sessions (through the [`EventBus`](crate::EventBus)).

use serde::{Deserialize, Serialize};
use zt_storage::{Batch, ErrorKind, KvStoreExt, Namespace, codec};

use super::context::TenantContext;
use crate::audit::{Actor, AuditEventKind};
use crate::bus::BusEvent;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{TenantId, UserId};

/// User records, keyed by user id. Blinded.
pub const USERS: &str = "identity.b.users";
/// Tombstones of deleted users, keyed by user id. Blinded.
pub const DELETED_USERS: &str = "identity.b.deleted_users";
/// Username index: normalised username → user id. Blinded.
pub const USERNAMES: &str = "identity.usernames";
/// E-mail index: normalised address → user id. Blinded.
pub const EMAILS: &str = "identity.emails";

/// The longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// The longest e-mail address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// Where a user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// May sign in.
    Active,
    /// May not sign in until reactivated; everything is kept.
    Deactivated,
    /// Gone for good: name and address erased, the id never reused.
    Deleted,
}

/// A user of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The tenant.
    pub tenant: TenantId,
    /// The username, normalised (lowercase); empty once deleted.
    pub username: String,
    /// The e-mail address, normalised (lowercase); `None` once deleted.
    pub email: Option<String>,
    /// The name shown to others.
    pub display_name: String,
    /// Where the user stands.
    pub state: UserState,
    /// When the user was created.
    pub created: Timestamp,
    /// When the record last changed.
    pub updated: Timestamp,
    /// Sessions created at or before this time are over (set by deactivation and deletion), so
    /// they stay over even if nobody used them meanwhile and the user comes back.
    #[serde(default)]
    pub sessions_revoked_at: Option<Timestamp>,
}

/// What [`Users::create`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// 1 to 64 bytes of ASCII letters, digits, `.`, `_` and `-`; compared without case.
    pub username: String,
    /// An e-mail address, compared without case.
    pub email: Option<String>,
    /// 1 to 128 characters, no control characters.
    pub display_name: String,
}

/// What [`Users::update`] changes (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// A new username.
    pub username: Option<String>,
    /// A new e-mail address (`Some(None)` removes it).
    pub email: Option<Option<String>>,
    /// A new display name.
    pub display_name: Option<String>,
}

/// Normalises and checks a username.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty or over-long name, or another character.
pub fn normalize_username(name: &str) -> Result<String> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() || name.len() > MAX_USERNAME_LEN {
        return Err(Error::InvalidInput(format!(
            "a username has 1 to {MAX_USERNAME_LEN} characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Error::InvalidInput(
            "a username may hold ASCII letters, digits, '.', '_' and '-' only".into(),
        ));
    }
    Ok(name)
}

/// Normalises and checks an e-mail address (one `@`, non-empty parts, no spaces or controls).
///
/// # Errors
/// [`Error::InvalidInput`] for anything that cannot be an address.
pub fn normalize_email(address: &str) -> Result<String> {
    let address = address.trim().to_lowercase();
    let valid = address.len() <= MAX_EMAIL_LEN
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(address.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        return Err(Error::InvalidInput("not an e-mail address".into()));
    }
    Ok(address)
}

fn check_display_name(name: &str) -> Result<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "a display name has 1 to {MAX_DISPLAY_NAME_CHARS} characters and no control characters"
        )));
    }
    Ok(name.to_owned())
}

fn namespace(name: &str) -> Result<Namespace> {
    Ok(Namespace::new(name)?)
}

/// The users of one tenant, over that tenant's (encrypting) store.
pub struct Users {
    ctx: TenantContext,
    users: Namespace,
    deleted: Namespace,
    usernames: Namespace,
    emails: Namespace,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// The users of `ctx`'s tenant.
    ///
    /// # Errors
    /// None in practice: the namespace names are constants.
    pub fn new(ctx: TenantContext) -> Result<Self> {
        Ok(Users {
            ctx,
            users: namespace(USERS)?,
            deleted: namespace(DELETED_USERS)?,
            usernames: namespace(USERNAMES)?,
            emails: namespace(EMAILS)?,
        })
    }

    async fn record(&self, id: UserId, kind: AuditEventKind, actor: &Actor) -> Result<()> {
        let event = self.ctx.event(kind, actor.clone()).target(id.to_string());
        self.ctx.record(event).await
    }

    /// The user `id`, deleted ones included.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn get(&self, id: UserId) -> Result<Option<User>> {
        match self.get_versioned(id).await {
            Ok((user, _)) => Ok(Some(user)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user `id` with its record's version; a tombstone (whose version no commit uses:
    /// a deleted user never changes) when deleted.
    async fn get_versioned(&self, id: UserId) -> Result<(User, u64)> {
        let key = id.to_bytes();
        if let Some(found) = self
            .ctx
            .store
            .get_decoded::<User>(&self.users, &key)
            .await?
        {
            return Ok(found);
        }
        self.ctx
            .store
            .get_decoded::<User>(&self.deleted, &key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    async fn lookup(&self, index: &Namespace, key: &str) -> Result<Option<User>> {
        let Some(entry) = self.ctx.store.get(index, key.as_bytes()).await? else {
            return Ok(None);
        };
        let id = UserId::from_bytes(
            entry
                .value
                .as_slice()
                .try_into()
                .map_err(|_| Error::InvalidInput("a user index record is damaged".into()))?,
        );
        self.get(id).await
    }

    /// The user with `username` (any case), if one holds it.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<User>> {
        match normalize_username(username) {
            Ok(name) => self.lookup(&self.usernames, &name).await,
            Err(_) => Ok(None),
        }
    }

    /// The user with e-mail `address` (any case), if one holds it.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn find_by_email(&self, address: &str) -> Result<Option<User>> {
        match normalize_email(address) {
            Ok(address) => self.lookup(&self.emails, &address).await,
            Err(_) => Ok(None),
        }
    }

    /// Why a commit that claimed `username` and `email` conflicted.
    async fn taken(
        &self,
        username: Option<&str>,
        email: Option<&str>,
        id: UserId,
    ) -> Result<Error> {
        let holder = |user: Option<User>| user.is_some_and(|u| u.id != id);
        if let Some(name) = username
            && holder(self.lookup(&self.usernames, name).await?)
        {
            return Ok(Error::Conflict(format!("the username {name:?} is taken")));
        }
        if let Some(address) = email
            && holder(self.lookup(&self.emails, address).await?)
        {
            return Ok(Error::Conflict("the e-mail address is taken".into()));
        }
        Ok(Error::Conflict(
            "the user changed meanwhile; try again".into(),
        ))
    }

    /// Creates an active user, by `actor` (audited as `user.created`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name, address or display name; [`Error::Conflict`] when
    /// the username or address is taken; the store's and the audit sink's errors.
    pub async fn create(&self, actor: &Actor, new: NewUser) -> Result<User> {
        let user = self.create_with(new, |_, _| Ok(())).await?;
        self.record(user.id, AuditEventKind::UserCreated, actor)
            .await?;
        Ok(user)
    }

    /// Creates an active user, adding what `extra` writes to the same commit; not audited (the
    /// caller records what it did).
    pub(crate) async fn create_with(
        &self,
        new: NewUser,
        extra: impl FnOnce(&User, &mut Batch) -> Result<()>,
    ) -> Result<User> {
        let (user, mut batch) = self.prepare_create(new)?;
        extra(&user, &mut batch)?;
        match self.ctx.store.commit(batch).await {
            Ok(_) => Ok(user),
            Err(e) if e.kind() == ErrorKind::Conflict => Err(self.create_conflict(&user).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// A new active user and the writes that store it, for a caller that commits them with
    /// its own (each claim conditional: a taken name or address fails the commit).
    pub(crate) fn prepare_create(&self, new: NewUser) -> Result<(User, Batch)> {
        let username = normalize_username(&new.username)?;
        let email = new.email.as_deref().map(normalize_email).transpose()?;
        let display_name = check_display_name(&new.display_name)?;
        let now = self.ctx.clock.now();
        let user = User {
            id: UserId::generate(&*self.ctx.clock),
            tenant: self.ctx.tenant,
            username,
            email,
            display_name,
            state: UserState::Active,
            created: now,
            updated: now,
            sessions_revoked_at: None,
        };
        let id = user.id.to_bytes();
        let mut batch = Batch::new();
        batch.put_if_absent(&self.users, &id, &codec::encode(&user)?);
        batch.put_if_absent(&self.usernames, user.username.as_bytes(), &id);
        if let Some(address) = &user.email {
            batch.put_if_absent(&self.emails, address.as_bytes(), &id);
        }
        Ok((user, batch))
    }

    /// Why the commit of [`Users::prepare_create`]'s writes for `user` conflicted.
    pub(crate) async fn create_conflict(&self, user: &User) -> Result<Error> {
        self.taken(Some(&user.username), user.email.as_deref(), user.id)
            .await
    }

    /// Changes a user's username, address or display name. A deleted user cannot change.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidInput`] (also for a deleted user),
    /// [`Error::Conflict`] when a new name or address is taken or the user changed meanwhile.
    pub async fn update(&self, id: UserId, update: UserUpdate) -> Result<User> {
        self.update_with(id, update, None, |_, _| Ok(()))
            .await
            .map(|(user, _)| user)
    }

    /// Changes a user as [`Users::update`] does and, with `state`, moves an active user to
    /// deactivated or back (ending their sessions when deactivated: see [`Users::deactivate`]),
    /// adding what `extra` writes to the same commit. Returns the user and the state it had.
    /// Not audited: the caller records what it did.
    pub(crate) async fn update_with(
        &self,
        id: UserId,
        update: UserUpdate,
        state: Option<UserState>,
        extra: impl FnOnce(&User, &mut Batch) -> Result<()>,
    ) -> Result<(User, UserState)> {
        let (mut user, version) = self.get_versioned(id).await?;
        let before = user.state;
        if user.state == UserState::Deleted || state == Some(UserState::Deleted) {
            return Err(Error::InvalidInput("a deleted user cannot change".into()));
        }
        let mut batch = Batch::new();
        batch.require_version(&self.users, &id.to_bytes(), version);
        let mut claimed_name = None;
        if let Some(name) = &update.username {
            let name = normalize_username(name)?;
            if name != user.username {
                batch.delete(&self.usernames, user.username.as_bytes());
                batch.put_if_absent(&self.usernames, name.as_bytes(), &id.to_bytes());
                claimed_name = Some(name.clone());
                user.username = name;
            }
        }
        let mut claimed_email = None;
        if let Some(email) = &update.email {
            let email = email.as_deref().map(normalize_email).transpose()?;
            if email != user.email {
                if let Some(old) = &user.email {
                    batch.delete(&self.emails, old.as_bytes());
                }
                if let Some(new) = &email {
                    batch.put_if_absent(&self.emails, new.as_bytes(), &id.to_bytes());
                    claimed_email = Some(new.clone());
                }
                user.email = email;
            }
        }
        if let Some(name) = &update.display_name {
            user.display_name = check_display_name(name)?;
        }
        user.updated = self.ctx.clock.now();
        if let Some(to) = state
            && to != user.state
        {
            user.state = to;
            if to != UserState::Active {
                user.sessions_revoked_at = Some(user.updated);
            }
        }
        batch.put(&self.users, &id.to_bytes(), &codec::encode(&user)?);
        extra(&user, &mut batch)?;
        match self.ctx.store.commit(batch).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(self
                    .taken(claimed_name.as_deref(), claimed_email.as_deref(), id)
                    .await?);
            }
            Err(e) => return Err(e.into()),
        }
        if before == UserState::Active && user.state != UserState::Active {
            self.ctx
                .bus
                .publish(BusEvent::UserSessionsRevoked { user: id });
        }
        Ok((user, before))
    }

    /// Moves a user to `state` in one conditional commit, erasing name and address on deletion.
    async fn set_state(&self, id: UserId, from: &[UserState], to: UserState) -> Result<User> {
        self.set_state_with(id, from, to, |_, _| Ok(())).await
    }

    /// [`Users::set_state`], adding what `extra` writes to the same commit.
    pub(crate) async fn set_state_with(
        &self,
        id: UserId,
        from: &[UserState],
        to: UserState,
        extra: impl FnOnce(&User, &mut Batch) -> Result<()>,
    ) -> Result<User> {
        let (mut user, version) = self.get_versioned(id).await?;
        if !from.contains(&user.state) {
            return Err(Error::InvalidInput(format!(
                "a {:?} user cannot become {to:?}",
                user.state
            )));
        }
        let mut batch = Batch::new();
        batch.require_version(&self.users, &id.to_bytes(), version);
        if to == UserState::Deleted {
            batch.delete(&self.usernames, user.username.as_bytes());
            if let Some(address) = &user.email {
                batch.delete(&self.emails, address.as_bytes());
            }
            user.username.clear();
            user.email = None;
            user.display_name = "deleted user".into();
        }
        user.state = to;
        user.updated = self.ctx.clock.now();
        if to != UserState::Active {
            user.sessions_revoked_at = Some(user.updated);
        }
        if to == UserState::Deleted {
            // The live record goes (with whatever key sealed it); the tombstone is kept apart.
            batch.delete(&self.users, &id.to_bytes());
            batch.put_if_absent(&self.deleted, &id.to_bytes(), &codec::encode(&user)?);
        } else {
            batch.put(&self.users, &id.to_bytes(), &codec::encode(&user)?);
        }
        extra(&user, &mut batch)?;
        match self.ctx.store.commit(batch).await {
            Ok(_) => Ok(user),
            Err(e) if e.kind() == ErrorKind::Conflict => Err(Error::Conflict(
                "the user changed meanwhile; try again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Deactivates an active user and ends their sessions (audited as `user.deactivated`).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidInput`] unless the user is active.
    pub async fn deactivate(&self, actor: &Actor, id: UserId) -> Result<User> {
        let user = self
            .set_state(id, &[UserState::Active], UserState::Deactivated)
            .await?;
        self.ctx
            .bus
            .publish(BusEvent::UserSessionsRevoked { user: id });
        self.record(id, AuditEventKind::UserDeactivated, actor)
            .await?;
        Ok(user)
    }

    /// Reactivates a deactivated user (audited as `user.reactivated`). A deleted user stays
    /// deleted.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidInput`] unless the user is deactivated.
    pub async fn reactivate(&self, actor: &Actor, id: UserId) -> Result<User> {
        let user = self
            .set_state(id, &[UserState::Deactivated], UserState::Active)
            .await?;
        self.record(id, AuditEventKind::UserReactivated, actor)
            .await?;
        Ok(user)
    }

    /// Deletes a user for good: name and address are erased and freed (the SCIM `userName` and
    /// `externalId` too, with the SCIM document, if SCIM made the user), the id stays taken,
    /// and their sessions end (audited as `user.deleted`).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidInput`] for a user already deleted.
    pub async fn delete(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.delete_with(actor, id, Vec::new()).await
    }

    /// [`Users::delete`], with `details` in its `user.deleted` record (what else the deletion
    /// did, such as the user's content it removed).
    ///
    /// # Errors
    /// As [`Users::delete`]; [`Error::InvalidInput`] for a detail the audit vocabulary refuses.
    pub async fn delete_with(
        &self,
        actor: &Actor,
        id: UserId,
        details: Vec<(&'static str, crate::audit::Detail)>,
    ) -> Result<User> {
        let scim = super::scim::ScimUsers::records()?;
        let document = match scim.get(&*self.ctx.store, id.to_bytes()).await? {
            Some((record, version)) => Some((record.attributes()?, version)),
            None => None,
        };
        let user = self
            .set_state_with(
                id,
                &[UserState::Active, UserState::Deactivated],
                UserState::Deleted,
                |_, batch| {
                    if let Some((doc, version)) = &document {
                        scim.remove(batch, id.to_bytes(), doc, *version);
                    }
                    Ok(())
                },
            )
            .await?;
        self.ctx
            .bus
            .publish(BusEvent::UserSessionsRevoked { user: id });
        let mut event = self
            .ctx
            .event(AuditEventKind::UserDeleted, actor.clone())
            .target(id.to_string());
        for (name, value) in details {
            event = event.detail(name, value)?;
        }
        self.ctx.record(event).await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Alice.B-2 ").unwrap(), "alice.b-2");
        for bad in ["", "a b", "ålice", &"x".repeat(65), "a@b"] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize_email(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "a b@c.d",
            "a@.com",
            "a@c.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_display_name("Alice\u{7}").is_err());
        assert_eq!(check_display_name(" Alice B ").unwrap(), "Alice B");
    }
}
