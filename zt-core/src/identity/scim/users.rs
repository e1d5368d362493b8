//! SCIM Users over the workspace's users: each SCIM user is a zt user (one account, whatever
//! else it signs in with) plus the SCIM document the identity provider manages.
//!
//! - The zt fields follow the document: the username is `userName` in lower case with every
//!   character zt does not allow in a username turned into `_` (`Alice@Example.com` becomes
//!   `alice_example.com`); the address is the primary (or first) e-mail; the display name is
//!   `displayName`, else `name.formatted`, else the given and family names, else `userName`.
//! - `active` is the zt user's state. Setting it false deactivates the user in the same commit
//!   as the document and ends every session (see [`Users::deactivate`](crate::identity::Users));
//!   true reactivates, and the ended sessions stay ended.
//! - DELETE deletes the zt user for good (its id is never reused) with the document.
//! - Every change is one conditional commit (user record, document, indexes), checked against
//!   `If-Match` when one is given, and audited as `scim.user_*` with the API key that made it.

use std::sync::Arc;

use serde_json::{Map, Value};
use zt_storage::Batch;

use super::error::{ScimError, ScimType};
use super::query::{Indexed, ListQuery};
use super::records::{Record, Records, etag, if_match};
use super::resource::{normalize, patched};
use super::schema::{ENTERPRISE_SCHEMA, USER_SCHEMA, USERS};
use crate::audit::{Actor, AuditEventKind};
use crate::error::Error;
use crate::identity::context::TenantContext;
use crate::identity::users::{
    MAX_DISPLAY_NAME_CHARS, MAX_USERNAME_LEN, NewUser, User, UserState, UserUpdate, Users,
};
use crate::ids::UserId;

/// SCIM user documents, by user id. Blinded.
pub const SCIM_USERS: &str = "identity.scim.users";
/// SCIM `userName`s (lower case) to user ids. Blinded.
pub const SCIM_USER_NAMES: &str = "identity.scim.names";
/// SCIM user `externalId`s to user ids. Blinded.
pub const SCIM_USER_EXTERNAL_IDS: &str = "identity.scim.ext_ids";

/// The zt username a SCIM `userName` maps to.
///
/// ```
/// use zt_core::identity::scim::local_username;
/// assert_eq!(local_username("Alice@Example.com").unwrap(), "alice_example.com");
/// assert_eq!(local_username("bjensen").unwrap(), "bjensen");
/// assert!(local_username("   ").is_err());
/// ```
///
/// # Errors
/// `invalidValue` for a name with nothing to keep.
pub fn local_username(user_name: &str) -> Result<String, ScimError> {
    let mut out: String = user_name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(MAX_USERNAME_LEN);
    if out.is_empty() {
        return Err(ScimError::bad(ScimType::InvalidValue, "userName is empty"));
    }
    Ok(out)
}

fn field<'d>(doc: &'d Map<String, Value>, name: &str) -> Option<&'d str> {
    doc.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The zt fields of a SCIM user document: username, address, display name, active.
/// `active` is `None` when the document has none: the user's state stays as it is.
fn local_fields(
    doc: &Map<String, Value>,
) -> Result<(String, Option<String>, String, Option<bool>), ScimError> {
    let user_name = field(doc, "userName")
        .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "userName is required"))?;
    let username = local_username(user_name)?;
    let email = doc
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .find(|i| i.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| items.first())
        })
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .map(|a| {
            crate::identity::normalize_email(a).map_err(|_| {
                ScimError::bad(ScimType::InvalidValue, "emails: not an e-mail address")
            })
        })
        .transpose()?;
    let name = doc.get("name").and_then(Value::as_object);
    let given = name.and_then(|n| field(n, "givenName"));
    let family = name.and_then(|n| field(n, "familyName"));
    let display = field(doc, "displayName")
        .map(str::to_owned)
        .or_else(|| name.and_then(|n| field(n, "formatted")).map(str::to_owned))
        .or_else(|| match (given, family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        })
        .unwrap_or_else(|| user_name.to_owned());
    let display: String = display.chars().take(MAX_DISPLAY_NAME_CHARS).collect();
    let active = doc.get("active").and_then(Value::as_bool);
    Ok((username, email, display, active))
}

/// The stored document. Its `active` says only whether the client set one: the user's state
/// is what is returned.
fn stored_doc(doc: Map<String, Value>) -> Map<String, Value> {
    doc
}

/// The SCIM users of one workspace.
pub struct ScimUsers {
    ctx: TenantContext,
    users: Arc<Users>,
    records: Records,
}

impl std::fmt::Debug for ScimUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimUsers")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

/// A user [`ScimUsers::prepare_create`] made ready: its writes are not committed yet.
#[derive(Debug)]
pub struct PreparedUser {
    user: User,
    batch: Batch,
    doc: Map<String, Value>,
    active: Option<bool>,
}

impl PreparedUser {
    /// The new user's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }

    /// The writes to commit (taken once; later calls give an empty batch).
    pub fn take_batch(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }
}

/// Who made a SCIM change: the API key's id, recorded with every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimActor {
    /// The key id.
    pub key: String,
}

impl ScimActor {
    fn actor(&self) -> Actor {
        Actor::System("scim".into())
    }
}

fn parse_id(id: &str) -> Result<UserId, ScimError> {
    id.parse().map_err(|_| ScimError::not_found("User"))
}

impl ScimUsers {
    /// The SCIM users of `ctx`'s workspace, over its `users`.
    ///
    /// # Errors
    /// None in practice: the namespace names are constants.
    pub fn new(ctx: TenantContext, users: Arc<Users>) -> crate::Result<Self> {
        Ok(ScimUsers {
            ctx,
            users,
            records: Self::records()?,
        })
    }

    /// The namespaces of SCIM user documents and their indexes.
    pub(crate) fn records() -> crate::Result<Records> {
        Records::new(
            SCIM_USERS,
            SCIM_USER_NAMES,
            SCIM_USER_EXTERNAL_IDS,
            "userName",
        )
    }

    async fn audit(
        &self,
        by: &ScimActor,
        kind: AuditEventKind,
        user: UserId,
        detail: Option<(&str, &str)>,
    ) -> Result<(), ScimError> {
        let mut event = self
            .ctx
            .event(kind, by.actor())
            .target(user.to_string())
            .detail("scim_key", by.key.as_str())?;
        if let Some((name, value)) = detail {
            event = event.detail(name, value)?;
        }
        self.ctx.record(event).await?;
        Ok(())
    }

    /// The rendered resource of `user` with its record, and its ETag.
    fn render(
        &self,
        base: &str,
        user: &User,
        record: &Record,
        version: u64,
    ) -> Result<(Value, String), ScimError> {
        let mut doc = record.attributes()?;
        let tag = etag(version, user.updated);
        let mut schemas = vec![Value::from(USER_SCHEMA)];
        if doc.contains_key(ENTERPRISE_SCHEMA) {
            schemas.push(Value::from(ENTERPRISE_SCHEMA));
        }
        doc.insert("schemas".into(), Value::Array(schemas));
        doc.insert("id".into(), Value::from(user.id.to_string()));
        // The state decides; a user the client never gave `active` shows none while active.
        if user.state != UserState::Active {
            doc.insert("active".into(), Value::Bool(false));
        } else if doc.contains_key("active") {
            doc.insert("active".into(), Value::Bool(true));
        }
        doc.insert(
            "meta".into(),
            record.meta("User", format!("{base}/Users/{}", user.id), &tag),
        );
        Ok((Value::Object(doc), tag))
    }

    async fn load(&self, id: UserId) -> Result<(User, Record, u64), ScimError> {
        let (record, version) = self
            .records
            .get(&*self.ctx.store, id.to_bytes())
            .await?
            .ok_or_else(|| ScimError::not_found("User"))?;
        let user = self
            .users
            .get(id)
            .await?
            .filter(|u| u.state != UserState::Deleted)
            .ok_or_else(|| ScimError::not_found("User"))?;
        Ok((user, record, version))
    }

    /// The user `id`, rendered, with its ETag.
    ///
    /// # Errors
    /// 404 for an id that is not a SCIM user of this workspace.
    pub async fn get(&self, base: &str, id: &str) -> Result<(Value, String), ScimError> {
        let id = parse_id(id)?;
        let (user, record, version) = self.load(id).await?;
        self.render(base, &user, &record, version)
    }

    /// Why a commit of `doc` conflicted: which unique value another user holds.
    async fn conflict(&self, doc: &Map<String, Value>, id: Option<UserId>, e: Error) -> ScimError {
        match self
            .records
            .taken_by_other(&*self.ctx.store, doc, id.map(UserId::to_bytes))
            .await
        {
            Ok(Some(attr)) => ScimError::taken(format!("{attr} is taken")),
            Ok(None) => match e {
                Error::Conflict(detail) => ScimError::taken(detail),
                other => other.into(),
            },
            Err(e) => e.into(),
        }
    }

    /// Creates a user from a POST body, committing it alone. (zt-chat commits the writes of
    /// [`ScimUsers::prepare_create`] with the member role instead.)
    ///
    /// # Errors
    /// 400 for a bad body, 409 `uniqueness` for a taken `userName`, `externalId`, username or
    /// address.
    pub async fn create(
        &self,
        by: &ScimActor,
        base: &str,
        body: &Value,
    ) -> Result<(Value, String), ScimError> {
        let mut prepared = self.prepare_create(body).await?;
        if let Err(e) = self.ctx.store.commit(prepared.take_batch()).await {
            return Err(self.create_failed(&prepared, e.into()).await);
        }
        self.created(by, base, prepared).await
    }

    /// A user from a POST body and the writes that create it (the user, its document, its
    /// indexes), for a caller to commit with its own; then [`ScimUsers::created`], or
    /// [`ScimUsers::create_failed`] when the commit fails.
    ///
    /// # Errors
    /// 400 for a bad body, 409 `uniqueness` for a taken `userName` or `externalId`.
    pub async fn prepare_create(&self, body: &Value) -> Result<PreparedUser, ScimError> {
        let doc = normalize(&USERS, body, None)?;
        let (username, email, display_name, active) = local_fields(&doc)?;
        if let Some(attr) = self
            .records
            .taken_by_other(&*self.ctx.store, &doc, None)
            .await?
        {
            return Err(ScimError::taken(format!("{attr} is taken")));
        }
        let stored = stored_doc(doc.clone());
        let now = self.ctx.clock.now();
        let text = serde_json::to_string(&stored)
            .map_err(|_| ScimError::status(500, "the document cannot be stored"))?;
        let (user, mut batch) = self.users.prepare_create(NewUser {
            username,
            email,
            display_name,
        })?;
        let record = Record {
            id: user.id.to_bytes(),
            doc: text,
            created: now,
            modified: now,
        };
        self.records.write(&mut batch, &record, &stored, None)?;
        Ok(PreparedUser {
            user,
            batch,
            doc,
            active,
        })
    }

    /// What to answer when the commit of a prepared user failed with `e`: which unique value
    /// is taken, for a conflict.
    pub async fn create_failed(&self, prepared: &PreparedUser, e: Error) -> ScimError {
        let conflict = match &e {
            Error::Storage(s) => s.kind() == zt_storage::ErrorKind::Conflict,
            Error::Conflict(_) => true,
            _ => false,
        };
        if !conflict {
            return e.into();
        }
        match self.users.create_conflict(&prepared.user).await {
            Ok(e) => self.conflict(&prepared.doc, None, e).await,
            Err(e) => e.into(),
        }
    }

    /// Audits a prepared user whose writes were committed, applies `active: false` if the body
    /// said so, and renders it.
    ///
    /// # Errors
    /// The audit sink's and the store's.
    pub async fn created(
        &self,
        by: &ScimActor,
        base: &str,
        prepared: PreparedUser,
    ) -> Result<(Value, String), ScimError> {
        let id = prepared.user.id;
        self.audit(by, AuditEventKind::ScimUserCreated, id, None)
            .await?;
        if prepared.active == Some(false) {
            let doc = prepared.doc;
            return self.write(by, base, id, None, |_| Ok(doc)).await;
        }
        self.get(base, &id.to_string()).await
    }

    /// Replaces a user's document with a PUT body.
    ///
    /// # Errors
    /// 404, 412 for a stale `If-Match`, 400, 409 as [`ScimUsers::create`].
    pub async fn replace(
        &self,
        by: &ScimActor,
        base: &str,
        id: &str,
        body: &Value,
        if_match_header: Option<&str>,
    ) -> Result<(Value, String), ScimError> {
        let id = parse_id(id)?;
        self.write(by, base, id, if_match_header, |old| {
            normalize(&USERS, body, Some(old))
        })
        .await
    }

    /// Applies a PATCH body to a user.
    ///
    /// # Errors
    /// 404, 412 for a stale `If-Match`, 400 (see [`patched`]), 409.
    pub async fn patch(
        &self,
        by: &ScimActor,
        base: &str,
        id: &str,
        body: &Value,
        if_match_header: Option<&str>,
    ) -> Result<(Value, String), ScimError> {
        let id = parse_id(id)?;
        self.write(by, base, id, if_match_header, |old| {
            patched(&USERS, old, body)
        })
        .await
    }

    /// One change: the current document (with `active`) goes through `change`, and the user,
    /// the document and the indexes are written in one commit under their versions.
    async fn write(
        &self,
        by: &ScimActor,
        base: &str,
        id: UserId,
        if_match_header: Option<&str>,
        change: impl FnOnce(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<(Value, String), ScimError> {
        let (user, record, version) = self.load(id).await?;
        if !if_match(if_match_header, &etag(version, user.updated)) {
            return Err(ScimError::stale());
        }
        let old = record.attributes()?;
        let mut current = old.clone();
        if user.state != UserState::Active {
            current.insert("active".into(), Value::Bool(false));
        } else if current.contains_key("active") {
            current.insert("active".into(), Value::Bool(true));
        }
        let doc = change(&current)?;
        let (username, email, display_name, active) = local_fields(&doc)?;
        let stored = stored_doc(doc.clone());
        let text = serde_json::to_string(&stored)
            .map_err(|_| ScimError::status(500, "the document cannot be stored"))?;
        let new_record = Record {
            id: id.to_bytes(),
            doc: text,
            created: record.created,
            modified: self.ctx.clock.now(),
        };
        let state = match active {
            Some(true) => UserState::Active,
            Some(false) => UserState::Deactivated,
            // The client withdrew the `active` it had given: the user is as one the client never
            // gave `active`, which is active (no power `active: true` does not already give). A
            // deactivation the client never made, an administrator's, stays.
            None if old.contains_key("active") => UserState::Active,
            None => user.state,
        };
        let records = &self.records;
        let result = self
            .users
            .update_with(
                id,
                UserUpdate {
                    username: Some(username),
                    email: Some(email),
                    display_name: Some(display_name),
                },
                Some(state),
                |_, batch| records.write(batch, &new_record, &stored, Some((&old, version))),
            )
            .await;
        let (user, before) = match result {
            Ok(done) => done,
            Err(e @ Error::Conflict(_)) => return Err(self.conflict(&doc, Some(id), e).await),
            Err(e) => return Err(e.into()),
        };
        self.audit(by, AuditEventKind::ScimUserUpdated, id, None)
            .await?;
        if before == UserState::Active && user.state == UserState::Deactivated {
            self.audit(by, AuditEventKind::ScimUserDeactivated, id, None)
                .await?;
        } else if before == UserState::Deactivated && user.state == UserState::Active {
            self.audit(
                by,
                AuditEventKind::ScimUserUpdated,
                id,
                Some(("change", "reactivated")),
            )
            .await?;
        }
        self.get(base, &id.to_string()).await
    }

    /// Deletes a user for good (the zt user too, which ends their sessions).
    ///
    /// # Errors
    /// 404, 412 for a stale `If-Match`.
    pub async fn delete(
        &self,
        by: &ScimActor,
        id: &str,
        if_match_header: Option<&str>,
    ) -> Result<UserId, ScimError> {
        let id = parse_id(id)?;
        let (user, record, version) = self.load(id).await?;
        if !if_match(if_match_header, &etag(version, user.updated)) {
            return Err(ScimError::stale());
        }
        let doc = record.attributes()?;
        let records = &self.records;
        self.users
            .set_state_with(
                id,
                &[UserState::Active, UserState::Deactivated],
                UserState::Deleted,
                |_, batch| {
                    records.remove(batch, id.to_bytes(), &doc, version);
                    Ok(())
                },
            )
            .await?;
        self.ctx
            .bus
            .publish(crate::bus::BusEvent::UserSessionsRevoked { user: id });
        self.audit(by, AuditEventKind::ScimUserDeleted, id, None)
            .await?;
        Ok(id)
    }

    /// The list response of `query`: one indexed read for `userName eq` or `externalId eq`,
    /// a scan of the workspace's SCIM users otherwise.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(&self, base: &str, query: &ListQuery) -> Result<Value, ScimError> {
        Ok(query.respond(&USERS, self.candidates(base, query).await?))
    }

    /// The rendered users `query` may match: the one its indexed `eq` names, else all of them.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn candidates(&self, base: &str, query: &ListQuery) -> Result<Vec<Value>, ScimError> {
        let store = &*self.ctx.store;
        let records: Vec<(Record, u64)> = match query.indexed(&USERS, "userName") {
            Some(index) => {
                let found = match &index {
                    Indexed::Name(name) => self.records.find_name(store, name).await?,
                    Indexed::External(ext) => self.records.find_external(store, ext).await?,
                };
                match found {
                    Some(id) => self.records.get(store, id).await?.into_iter().collect(),
                    None => Vec::new(),
                }
            }
            None => self.records.all(store).await?,
        };
        let mut rendered = Vec::with_capacity(records.len());
        for (record, version) in records {
            let id = UserId::from_bytes(record.id);
            if let Some(user) = self.users.get(id).await?
                && user.state != UserState::Deleted
            {
                rendered.push(self.render(base, &user, &record, version)?.0);
            }
        }
        Ok(rendered)
    }

    /// Whether `id` is a SCIM user of this workspace that is not deleted.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn exists(&self, id: UserId) -> Result<bool, ScimError> {
        match self.load(id).await {
            Ok(_) => Ok(true),
            Err(e) if e.status == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The namespaces, to blind.
    pub fn namespaces() -> [&'static str; 3] {
        [SCIM_USERS, SCIM_USER_NAMES, SCIM_USER_EXTERNAL_IDS]
    }
}
