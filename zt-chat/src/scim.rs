//! SCIM 2.0 provisioning of a workspace (RFC 7643, RFC 7644): the whole protocol, so an
//! embedder's HTTP layer only hands a request over ([`Workspace::scim`]) and writes the answer.
//!
//! - **Who may call:** the holder of one of the workspace's SCIM API keys
//!   ([`Workspace::scim_authenticate`] makes the only [`ScimCaller`]), each key limited to
//!   [`ChatConfig::scim_rate`](crate::ChatConfig) requests per second with a burst sized for
//!   an identity provider's initial push (a refusal says when to retry). Keys are made,
//!   rotated and revoked in the users admin area (`manage_users`), see
//!   [`Workspace::create_scim_key`].
//! - **Users** are the workspace's users (see [`zt_core::identity::scim::ScimUsers`]): SCIM
//!   creation gives the member role; `active: false` and DELETE end every session of the user
//!   and close their realtime streams before the answer is returned; reactivation brings no
//!   session back.
//! - **Groups** are chat groups (private, made by SCIM). Their SCIM `members` are the
//!   memberships SCIM gave (source SCIM): a SCIM removal takes away only those, so a member an
//!   administrator added by hand, or OIDC gave, stays a member, and no SCIM change undoes an
//!   administrator's. Changes flow into the channels linked to the group.
//! - Every change is audited (`scim.*`) with the key that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Map, Value, json};
use zt_authz::{
    Change, Changer, Group, GroupVisibility, Membership, MentionPolicy, Source, SystemRole,
};
use zt_core::identity::scim::{
    self as core_scim, ListQuery, Record, Records, ScimActor, ScimError, ScimKeyInfo, ScimSecret,
    ScimType, etag, if_match, schema,
};
use zt_core::{AuditEventKind, GroupId, UserId};
use zt_storage::{Batch, KvStoreExt as _};

use crate::error::{Error, Result};
use crate::hub::Event;
use crate::workspace::{Caller, Workspace};

/// SCIM group documents, by group id. Blinded.
pub(crate) const SCIM_GROUPS: &str = "chat.scim.groups";
/// SCIM group `displayName`s (lower case) to group ids. Blinded.
pub(crate) const SCIM_GROUP_NAMES: &str = "chat.scim.group_names";
/// SCIM group `externalId`s to group ids. Blinded.
pub(crate) const SCIM_GROUP_EXTERNAL_IDS: &str = "chat.scim.group_ext_ids";

/// How fast one SCIM key may call, and how many calls it may make at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScimRate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests at once.
    pub burst: f64,
}

impl Default for ScimRate {
    /// 200 per second with a burst of 2,000: a 10,000-user initial push (a lookup and a
    /// create each) runs at the sustained rate, told when to retry, never refused outright.
    fn default() -> Self {
        ScimRate {
            per_second: 200.0,
            burst: 2_000.0,
        }
    }
}

/// An authenticated SCIM client: only [`Workspace::scim_authenticate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimCaller {
    key: ScimKeyInfo,
}

impl ScimCaller {
    /// The key it authenticated with (never its secret).
    pub fn key(&self) -> &ScimKeyInfo {
        &self.key
    }

    fn actor(&self) -> ScimActor {
        ScimActor {
            key: self.key.id.clone(),
        }
    }
}

/// An HTTP method of a SCIM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// Any other method.
    Other,
}

/// A SCIM request as an HTTP layer received it.
#[derive(Debug, Clone, Copy)]
pub struct ScimRequest<'a> {
    /// The method.
    pub method: ScimMethod,
    /// The path below the service's base, such as `/Users/usr_…` (no query).
    pub path: &'a str,
    /// The query parameters, decoded.
    pub query: &'a [(String, String)],
    /// The `If-Match` header.
    pub if_match: Option<&'a str>,
    /// The body (JSON), if any.
    pub body: &'a [u8],
    /// The service's base URL as clients reach it (`https://chat.example/scim/v2`), for
    /// `meta.location`.
    pub base: &'a str,
}

/// The answer to a SCIM request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body (`application/scim+json`), if any.
    pub body: Option<Value>,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Location` header.
    pub location: Option<String>,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl ScimResponse {
    fn ok(status: u16, body: Value) -> Self {
        ScimResponse {
            status,
            body: Some(body),
            etag: None,
            location: None,
            retry_after: None,
        }
    }

    fn resource(status: u16, (body, tag): (Value, String)) -> Self {
        let location = body
            .pointer("/meta/location")
            .and_then(Value::as_str)
            .map(str::to_owned);
        ScimResponse {
            status,
            body: Some(body),
            etag: Some(tag),
            location,
            retry_after: None,
        }
    }
}

impl From<ScimError> for ScimResponse {
    fn from(e: ScimError) -> Self {
        ScimResponse {
            status: e.status,
            body: Some(e.to_json()),
            etag: None,
            location: None,
            retry_after: e.retry_after,
        }
    }
}

fn chat_error(e: Error) -> ScimError {
    match e {
        Error::NotFound(what) => ScimError::status(404, format!("not found: {what}")),
        Error::Conflict(detail) => ScimError::taken(detail),
        Error::InvalidInput { field, message } => {
            ScimError::bad(ScimType::InvalidValue, format!("{field}: {message}"))
        }
        Error::Forbidden { .. } => ScimError::status(403, "refused by the workspace's rules"),
        Error::Unauthenticated => ScimError::status(401, "authentication failed"),
        Error::TooManyAttempts { retry_after } => {
            let mut e = ScimError::status(429, "too many requests");
            e.retry_after = Some(retry_after.as_secs().max(1));
            e
        }
        Error::Unavailable { .. } => {
            ScimError::status(503, "the service is unavailable; try again")
        }
        _ => ScimError::status(500, "the service failed"),
    }
}

fn authz_error(e: zt_authz::Error) -> ScimError {
    chat_error(e.into())
}

fn store_error(e: zt_storage::Error) -> ScimError {
    chat_error(e.into())
}

/// The zt group name a SCIM `displayName` maps to: what zt allows in a group name kept, every
/// other character turned into `-`.
fn local_group_name(display_name: &str) -> std::result::Result<String, ScimError> {
    let name: String = crate::names::canonical(display_name.trim())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(crate::groups::MAX_GROUP_NAME)
        .collect();
    if name.is_empty() {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            "displayName is empty",
        ));
    }
    Ok(name)
}

impl Workspace {
    // ----- keys, in the users admin area ----------------------------------------------------

    /// The workspace's live SCIM keys (`manage_users`).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn scim_keys(&self, caller: &Caller) -> Result<Vec<ScimKeyInfo>> {
        self.enter_admin_area(caller, crate::AdminArea::Users)
            .await?;
        Ok(self.scim_keys.list().await?)
    }

    /// Makes a SCIM key (`manage_users`); its secret is in the answer and nowhere else.
    /// Audited as `scim.api_key_rotated` (action `created`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] for a bad label or too many keys.
    pub async fn create_scim_key(
        &self,
        caller: &Caller,
        label: &str,
    ) -> Result<(ScimSecret, ScimKeyInfo)> {
        self.enter_admin_area(caller, crate::AdminArea::Users)
            .await?;
        Ok(self
            .scim_keys
            .create(&zt_core::Actor::User(caller.user()), label)
            .await?)
    }

    /// Replaces a SCIM key (`manage_users`): the old one keeps working for `overlap`, so the
    /// identity provider can switch without a failed request. Audited (action `rotated`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`]; [`Error::InvalidInput`] for too long an
    /// overlap.
    pub async fn rotate_scim_key(
        &self,
        caller: &Caller,
        id: &str,
        overlap: Duration,
    ) -> Result<(ScimSecret, ScimKeyInfo)> {
        self.enter_admin_area(caller, crate::AdminArea::Users)
            .await?;
        Ok(self
            .scim_keys
            .rotate(&zt_core::Actor::User(caller.user()), id, overlap)
            .await?)
    }

    /// Ends a SCIM key now (`manage_users`). Audited (action `revoked`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`].
    pub async fn revoke_scim_key(&self, caller: &Caller, id: &str) -> Result<()> {
        self.enter_admin_area(caller, crate::AdminArea::Users)
            .await?;
        Ok(self
            .scim_keys
            .revoke(&zt_core::Actor::User(caller.user()), id)
            .await?)
    }

    // ----- the protocol ---------------------------------------------------------------------

    /// The SCIM client holding `presented` (a bearer token), within its key's rate.
    ///
    /// # Errors
    /// 401 for anything but a live key of this workspace; 429, with when to retry, over the
    /// key's rate (the first refusal of a minute is audited as `rate.limited`).
    pub async fn scim_authenticate(
        &self,
        presented: &str,
    ) -> std::result::Result<ScimCaller, ScimError> {
        let key = self
            .scim_keys
            .verify(presented)
            .await
            .map_err(|_| ScimError::status(401, "authentication failed"))?;
        if let Err(refusal) = self.scim_limits.take(key.id.clone(), self.ctx.clock.now()) {
            if refusal.report {
                let event = zt_core::AuditEvent::new(
                    AuditEventKind::RateLimited,
                    zt_core::Actor::System("scim".into()),
                    self.ctx.clock.now(),
                )
                .tenant(self.ctx.tenant)
                .target(format!("scim_key:{}", key.id))
                .outcome(zt_core::Outcome::Denied);
                self.ctx.audit.append(event).await?;
            }
            let mut e = ScimError::status(429, "too many requests for this key");
            e.retry_after = Some(refusal.retry_after.as_secs().max(1));
            return Err(e);
        }
        Ok(ScimCaller { key })
    }

    /// Serves one SCIM request of `caller`: an HTTP layer passes the method, the path below
    /// its SCIM base, the decoded query, `If-Match` and the body, and writes back the status,
    /// the body (`application/scim+json`) and the headers of the answer.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use zt_chat::testing::{World, new_user, password};
    /// use zt_chat::{ScimMethod, ScimRequest};
    ///
    /// let world = World::new().await;
    /// let (workspace, _) = world.chat.bootstrap("Acme", new_user("ada"), &password()).await?;
    /// let (_, ada) = workspace.login("ada", &password(), None).await?;
    /// // An administrator makes a key for the identity provider; its secret is shown once.
    /// let (secret, _) = workspace.create_scim_key(&ada, "entra").await?;
    /// // Each request: authenticate the bearer key, then serve.
    /// let idp = workspace.scim_authenticate(secret.expose()).await?;
    /// let body = br#"{"userName": "grace@acme.test", "active": true}"#;
    /// let answer = workspace
    ///     .scim(&idp, ScimRequest {
    ///         method: ScimMethod::Post,
    ///         path: "/Users",
    ///         query: &[],
    ///         if_match: None,
    ///         body,
    ///         base: "https://chat.acme.test/scim/v2",
    ///     })
    ///     .await;
    /// assert_eq!(answer.status, 201);
    /// assert!(answer.etag.is_some() && answer.location.is_some());
    /// // The user is a member of the workspace, signing in by single sign-on.
    /// assert!(workspace.find_user(&ada, "grace_acme.test").await?.is_some());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn scim(&self, caller: &ScimCaller, request: ScimRequest<'_>) -> ScimResponse {
        match self.scim_route(caller, request).await {
            Ok(response) => response,
            Err(e) => e.into(),
        }
    }

    async fn scim_route(
        &self,
        caller: &ScimCaller,
        r: ScimRequest<'_>,
    ) -> std::result::Result<ScimResponse, ScimError> {
        use ScimMethod as M;
        let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        let body = || -> std::result::Result<Value, ScimError> {
            serde_json::from_slice(r.body)
                .map_err(|_| ScimError::bad(ScimType::InvalidSyntax, "the body is not JSON"))
        };
        let query = || {
            ListQuery::from_params(&|name| {
                r.query
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| Value::from(v.as_str()))
            })
        };
        let by = caller.actor();
        let base = r.base.trim_end_matches('/');
        let not_allowed = || ScimError::status(405, "method not allowed here");
        match (r.method, segments.as_slice()) {
            (M::Get, ["ServiceProviderConfig"]) => Ok(ScimResponse::ok(
                200,
                schema::service_provider_config(base, core_scim::MAX_RESULTS, 0),
            )),
            (M::Get, ["Schemas"]) => {
                let all: Vec<Value> = schema::SCHEMAS.iter().map(|s| s.to_json(base)).collect();
                Ok(ScimResponse::ok(200, list_of(all)))
            }
            (M::Get, ["Schemas", id]) => schema::SCHEMAS
                .iter()
                .find(|s| s.id == *id)
                .map(|s| ScimResponse::ok(200, s.to_json(base)))
                .ok_or_else(|| ScimError::not_found("Schema")),
            (M::Get, ["ResourceTypes"]) => {
                let all: Vec<Value> = schema::RESOURCE_TYPES
                    .iter()
                    .map(|t| t.to_json(base))
                    .collect();
                Ok(ScimResponse::ok(200, list_of(all)))
            }
            (M::Get, ["ResourceTypes", id]) => schema::RESOURCE_TYPES
                .iter()
                .find(|t| t.name == *id)
                .map(|t| ScimResponse::ok(200, t.to_json(base)))
                .ok_or_else(|| ScimError::not_found("ResourceType")),
            (_, ["ServiceProviderConfig" | "Schemas" | "ResourceTypes", ..]) => Err(not_allowed()),

            (M::Get, ["Users"]) => Ok(ScimResponse::ok(
                200,
                self.scim_users.list(base, &query()?).await?,
            )),
            (M::Post, ["Users", ".search"]) => Ok(ScimResponse::ok(
                200,
                self.scim_users
                    .list(base, &ListQuery::from_search(&body()?)?)
                    .await?,
            )),
            (M::Post, ["Users"]) => Ok(ScimResponse::resource(
                201,
                self.scim_create_user(&by, base, &body()?).await?,
            )),
            (M::Get, ["Users", id]) => {
                let (doc, tag) = self.scim_users.get(base, id).await?;
                let q = query()?;
                Ok(ScimResponse::resource(
                    200,
                    (q.projection.apply(&schema::USERS, &doc), tag),
                ))
            }
            (M::Put, ["Users", id]) => {
                let done = self
                    .scim_users
                    .replace(&by, base, id, &body()?, r.if_match)
                    .await?;
                self.scim_user_changed(&done.0);
                Ok(ScimResponse::resource(200, done))
            }
            (M::Patch, ["Users", id]) => {
                let done = self
                    .scim_users
                    .patch(&by, base, id, &body()?, r.if_match)
                    .await?;
                self.scim_user_changed(&done.0);
                Ok(ScimResponse::resource(200, done))
            }
            (M::Delete, ["Users", id]) => {
                self.scim_delete_user(&by, id, r.if_match).await?;
                Ok(no_content())
            }
            (_, ["Users", ..]) => Err(not_allowed()),

            (M::Get, ["Groups"]) => Ok(ScimResponse::ok(
                200,
                self.scim_list_groups(base, &query()?).await?,
            )),
            (M::Post, ["Groups", ".search"]) => Ok(ScimResponse::ok(
                200,
                self.scim_list_groups(base, &ListQuery::from_search(&body()?)?)
                    .await?,
            )),
            (M::Post, ["Groups"]) => Ok(ScimResponse::resource(
                201,
                self.scim_create_group(&by, base, &body()?).await?,
            )),
            (M::Get, ["Groups", id]) => {
                let (doc, tag) = self.scim_group(base, id).await?;
                let q = query()?;
                Ok(ScimResponse::resource(
                    200,
                    (q.projection.apply(&schema::GROUPS, &doc), tag),
                ))
            }
            (M::Put, ["Groups", id]) => {
                let body = body()?;
                Ok(ScimResponse::resource(
                    200,
                    self.scim_write_group(&by, base, id, r.if_match, |old| {
                        core_scim::resource::normalize(&schema::GROUPS, &body, Some(old))
                    })
                    .await?,
                ))
            }
            (M::Patch, ["Groups", id]) => {
                let body = body()?;
                Ok(ScimResponse::resource(
                    200,
                    self.scim_write_group(&by, base, id, r.if_match, |old| {
                        core_scim::resource::patched(&schema::GROUPS, old, &body)
                    })
                    .await?,
                ))
            }
            (M::Delete, ["Groups", id]) => {
                self.scim_delete_group(&by, id, r.if_match).await?;
                Ok(no_content())
            }
            (_, ["Groups", ..]) => Err(not_allowed()),
            (M::Post, [".search"]) => {
                let q = ListQuery::from_search(&body()?)?;
                let users = self.scim_users.candidates(base, &q).await?;
                let groups = self.scim_group_candidates(base, &q).await?;
                Ok(ScimResponse::ok(
                    200,
                    q.respond_many(vec![(&schema::USERS, users), (&schema::GROUPS, groups)]),
                ))
            }
            _ => Err(ScimError::not_found("endpoint")),
        }
    }

    // ----- users ----------------------------------------------------------------------------

    /// A user SCIM makes, with the member role, in one commit.
    async fn scim_create_user(
        &self,
        by: &ScimActor,
        base: &str,
        body: &Value,
    ) -> std::result::Result<(Value, String), ScimError> {
        let mut prepared = self.scim_users.prepare_create(body).await?;
        let grant = Change::Grant {
            user: prepared.id(),
            role: SystemRole::Member.id(),
            at: zt_authz::Scope::Tenant,
        };
        let batch = prepared.take_batch();
        match self
            .authz
            .apply_all(vec![(Changer::System("scim".into()), grant)], batch)
            .await
        {
            Ok(_) => {}
            Err(zt_authz::Error::Conflict(detail)) => {
                let e = zt_core::Error::Conflict(detail);
                return Err(self.scim_users.create_failed(&prepared, e).await);
            }
            Err(e) => return Err(authz_error(e)),
        }
        let created = self.scim_users.created(by, base, prepared).await?;
        self.scim_user_changed(&created.0);
        Ok(created)
    }

    /// An inactive user's realtime streams close now, before the answer goes out (the bus
    /// closes them too, a moment later, on every node).
    fn scim_user_changed(&self, doc: &Value) {
        if doc.get("active") == Some(&Value::Bool(false))
            && let Ok(user) = scim_id::<UserId>(doc)
        {
            self.hub.user_sessions_ended(user);
        }
    }

    async fn scim_delete_user(
        &self,
        by: &ScimActor,
        id: &str,
        if_match_header: Option<&str>,
    ) -> std::result::Result<(), ScimError> {
        // Found first, so a stranger's id answers 404 and removes nothing.
        let (_, tag) = self.scim_users.get("", id).await?;
        if !if_match(if_match_header, &tag) {
            return Err(ScimError::stale());
        }
        let user: UserId = id.parse().map_err(|_| ScimError::not_found("User"))?;
        let target = self
            .users
            .get(user)
            .await?
            .ok_or_else(|| ScimError::not_found("User"))?;
        // The same checklist as an administrator's deletion (crate::erasure): nothing of the
        // user left, their content by the workspace's policy.
        let content = self.authored_content_in_force().await.map_err(chat_error)?;
        self.erase_user_data(
            &zt_core::Actor::System("scim".into()),
            &Changer::System("scim".into()),
            &target,
            content,
        )
        .await
        .map_err(chat_error)?;
        // If-Match was checked above; the deactivation the checklist made changed the tag.
        self.scim_users.delete(by, id, None).await?;
        self.hub.user_sessions_ended(user);
        self.destroy_profile_key(user).await.map_err(chat_error)?;
        Ok(())
    }

    // ----- groups ---------------------------------------------------------------------------

    fn scim_group_members(&self, group: GroupId) -> Vec<UserId> {
        self.authz.authorizer().with_model(|m| {
            m.group_memberships()
                .filter(|(g, _, s)| *g == group && s.contains(Source::Scim))
                .map(|(_, u, _)| u)
                .collect()
        })
    }

    fn render_group(
        &self,
        base: &str,
        id: GroupId,
        record: &Record,
        version: u64,
        members: &[UserId],
    ) -> std::result::Result<(Value, String), ScimError> {
        let mut doc = record.attributes()?;
        let tag = etag(version, record.modified);
        doc.insert("schemas".into(), json!([schema::GROUP_SCHEMA]));
        doc.insert("id".into(), Value::from(id.to_string()));
        if members.is_empty() {
            doc.remove("members");
        } else {
            doc.insert(
                "members".into(),
                members
                    .iter()
                    .map(|u| {
                        json!({ "value": u.to_string(), "$ref": format!("{base}/Users/{u}"), "type": "User" })
                    })
                    .collect(),
            );
        }
        doc.insert(
            "meta".into(),
            record.meta("Group", format!("{base}/Groups/{id}"), &tag),
        );
        Ok((Value::Object(doc), tag))
    }

    async fn scim_group_record(
        &self,
        id: &str,
    ) -> std::result::Result<(GroupId, Record, u64), ScimError> {
        let group: GroupId = id.parse().map_err(|_| ScimError::not_found("Group"))?;
        // A group an administrator deleted through chat is gone for SCIM too.
        if self.group_now(group).is_none() {
            return Err(ScimError::not_found("Group"));
        }
        let (record, version) = self
            .scim_groups
            .get(&*self.ctx.store, group.to_bytes())
            .await?
            .ok_or_else(|| ScimError::not_found("Group"))?;
        Ok((group, record, version))
    }

    async fn scim_group(
        &self,
        base: &str,
        id: &str,
    ) -> std::result::Result<(Value, String), ScimError> {
        let (group, record, version) = self.scim_group_record(id).await?;
        let members = self.scim_group_members(group);
        self.render_group(base, group, &record, version, &members)
    }

    /// The members a group document names, each a user of this workspace.
    async fn wanted_members(
        &self,
        doc: &Map<String, Value>,
    ) -> std::result::Result<BTreeSet<UserId>, ScimError> {
        let mut out = BTreeSet::new();
        for member in doc
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let bad = || {
                ScimError::bad(
                    ScimType::InvalidValue,
                    "members: not a user of this workspace",
                )
            };
            let text = member
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            let user: UserId = text.parse().map_err(|_| bad())?;
            let live = self
                .users
                .get(user)
                .await
                .map_err(ScimError::from)?
                .is_some_and(|u| u.state != zt_core::identity::UserState::Deleted);
            if !live {
                return Err(bad());
            }
            out.insert(user);
        }
        Ok(out)
    }

    /// The stored document: everything but `members`, which authorization holds.
    fn group_doc(doc: &Map<String, Value>) -> Map<String, Value> {
        let mut stored = doc.clone();
        stored.remove("members");
        stored
    }

    async fn scim_create_group(
        &self,
        by: &ScimActor,
        base: &str,
        body: &Value,
    ) -> std::result::Result<(Value, String), ScimError> {
        let doc = core_scim::resource::normalize(&schema::GROUPS, body, None)?;
        let display = doc
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = local_group_name(display)?;
        let members = self.wanted_members(&doc).await?;
        let store = &*self.ctx.store;
        if let Some(attr) = self.scim_groups.taken_by_other(store, &doc, None).await? {
            return Err(ScimError::taken(format!("{attr} is taken")));
        }
        let id = GroupId::generate(&*self.ctx.clock);
        let now = self.ctx.clock.now();
        let stored = Self::group_doc(&doc);
        let record = Record {
            id: id.to_bytes(),
            doc: serde_json::to_string(&stored)
                .map_err(|_| ScimError::status(500, "the document cannot be stored"))?,
            created: now,
            modified: now,
        };
        let mut extra = Batch::new();
        self.group_record_writes(&mut extra, id, &name, false)
            .await
            .map_err(chat_error)?;
        self.scim_groups.write(&mut extra, &record, &stored, None)?;
        let scim = Changer::System("scim".into());
        let mut steps = vec![(
            scim.clone(),
            Change::PutGroup(Group {
                id,
                visibility: GroupVisibility::Private,
                parent: None,
                mention: MentionPolicy::Anyone,
            }),
        )];
        steps.extend(members.iter().map(|&user| {
            (
                scim.clone(),
                Change::AddMember {
                    user,
                    of: Membership::Group(id),
                    source: Source::Scim,
                },
            )
        }));
        match self.authz.apply_all(steps, extra).await {
            Ok(_) => {}
            Err(zt_authz::Error::Conflict(_)) => {
                return Err(
                    match self.scim_groups.taken_by_other(store, &doc, None).await? {
                        Some(attr) => ScimError::taken(format!("{attr} is taken")),
                        None => ScimError::taken("the group name is not available"),
                    },
                );
            }
            Err(e) => return Err(authz_error(e)),
        }
        self.scim_audit(by, AuditEventKind::ScimGroupCreated, &id.to_string())
            .await?;
        self.announce_group(id);
        self.scim_group(base, &id.to_string()).await
    }

    /// One change of a group: the current document (with its SCIM members) goes through
    /// `change`; the name, the document and the SCIM memberships change in one commit.
    async fn scim_write_group(
        &self,
        by: &ScimActor,
        base: &str,
        id: &str,
        if_match_header: Option<&str>,
        change: impl FnOnce(&Map<String, Value>) -> std::result::Result<Map<String, Value>, ScimError>,
    ) -> std::result::Result<(Value, String), ScimError> {
        let (group, record, version) = self.scim_group_record(id).await?;
        let current_members = self.scim_group_members(group);
        let (current, tag) = self.render_group(base, group, &record, version, &current_members)?;
        if !if_match(if_match_header, &tag) {
            return Err(ScimError::stale());
        }
        let Value::Object(mut current) = current else {
            return Err(ScimError::status(500, "the service failed"));
        };
        for k in ["schemas", "id", "meta"] {
            current.remove(k);
        }
        let old_stored = record.attributes()?;
        let doc = change(&current)?;
        let wanted = self.wanted_members(&doc).await?;
        let have: BTreeSet<UserId> = current_members.into_iter().collect();
        let stored = Self::group_doc(&doc);
        let new_record = Record {
            id: group.to_bytes(),
            doc: serde_json::to_string(&stored)
                .map_err(|_| ScimError::status(500, "the document cannot be stored"))?,
            created: record.created,
            modified: self.ctx.clock.now(),
        };
        let mut extra = Batch::new();
        let old_name = old_stored
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let new_name = doc
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if old_name != new_name {
            let name = local_group_name(new_name)?;
            self.group_record_writes(&mut extra, group, &name, true)
                .await
                .map_err(chat_error)?;
        }
        self.scim_groups.write(
            &mut extra,
            &new_record,
            &stored,
            Some((&old_stored, version)),
        )?;
        let scim = Changer::System("scim".into());
        let of = Membership::Group(group);
        let mut steps: Vec<(Changer, Change)> = Vec::new();
        steps.extend(wanted.difference(&have).map(|&user| {
            (
                scim.clone(),
                Change::AddMember {
                    user,
                    of,
                    source: Source::Scim,
                },
            )
        }));
        steps.extend(have.difference(&wanted).map(|&user| {
            (
                scim.clone(),
                Change::RemoveMember {
                    user,
                    of,
                    source: Source::Scim,
                },
            )
        }));
        match self.authz.apply_all(steps, extra).await {
            Ok(_) => {}
            Err(zt_authz::Error::Conflict(_)) => {
                return Err(
                    match self
                        .scim_groups
                        .taken_by_other(&*self.ctx.store, &doc, Some(group.to_bytes()))
                        .await?
                    {
                        Some(attr) => ScimError::taken(format!("{attr} is taken")),
                        None => ScimError::taken(
                            "the group changed meanwhile, or its name is not available",
                        ),
                    },
                );
            }
            Err(e) => return Err(authz_error(e)),
        }
        self.scim_audit(by, AuditEventKind::ScimGroupUpdated, &group.to_string())
            .await?;
        self.announce_group(group);
        self.scim_group(base, &group.to_string()).await
    }

    async fn scim_delete_group(
        &self,
        by: &ScimActor,
        id: &str,
        if_match_header: Option<&str>,
    ) -> std::result::Result<(), ScimError> {
        let (group, record, version) = self.scim_group_record(id).await?;
        if !if_match(if_match_header, &etag(version, record.modified)) {
            return Err(ScimError::stale());
        }
        let doc = record.attributes()?;
        let mut extra = Batch::new();
        self.scim_groups
            .remove(&mut extra, group.to_bytes(), &doc, version);
        if let Some((chat_record, chat_version)) = self
            .ctx
            .store
            .get_decoded::<crate::groups::Record>(&self.ns.groups, &group.to_bytes())
            .await
            .map_err(store_error)?
        {
            extra.require_version(&self.ns.groups, &group.to_bytes(), chat_version);
            extra.delete(&self.ns.groups, &group.to_bytes());
            extra.delete(&self.ns.group_names, &crate::names::key(&chat_record.name));
        }
        self.authz
            .apply_all(
                vec![(Changer::System("scim".into()), Change::RemoveGroup(group))],
                extra,
            )
            .await
            .map_err(authz_error)?;
        self.scim_audit(by, AuditEventKind::ScimGroupDeleted, &group.to_string())
            .await?;
        self.announce(Event::GroupChanged(group));
        Ok(())
    }

    async fn scim_list_groups(
        &self,
        base: &str,
        query: &ListQuery,
    ) -> std::result::Result<Value, ScimError> {
        Ok(query.respond(
            &schema::GROUPS,
            self.scim_group_candidates(base, query).await?,
        ))
    }

    async fn scim_group_candidates(
        &self,
        base: &str,
        query: &ListQuery,
    ) -> std::result::Result<Vec<Value>, ScimError> {
        let store = &*self.ctx.store;
        let records: Vec<(Record, u64)> = match query.indexed(&schema::GROUPS, "displayName") {
            Some(index) => {
                let found = match &index {
                    core_scim::Indexed::Name(n) => self.scim_groups.find_name(store, n).await?,
                    core_scim::Indexed::External(e) => {
                        self.scim_groups.find_external(store, e).await?
                    }
                };
                match found {
                    Some(id) => self.scim_groups.get(store, id).await?.into_iter().collect(),
                    None => Vec::new(),
                }
            }
            None => self.scim_groups.all(store).await?,
        };
        let mut members: BTreeMap<GroupId, Vec<UserId>> = BTreeMap::new();
        self.authz.authorizer().with_model(|m| {
            for (g, u, s) in m.group_memberships() {
                if s.contains(Source::Scim) {
                    members.entry(g).or_default().push(u);
                }
            }
        });
        let mut rendered = Vec::with_capacity(records.len());
        for (record, version) in records {
            let id = GroupId::from_bytes(record.id);
            if self.group_now(id).is_none() {
                continue;
            }
            let list = members.get(&id).map(Vec::as_slice).unwrap_or_default();
            rendered.push(self.render_group(base, id, &record, version, list)?.0);
        }
        Ok(rendered)
    }

    async fn scim_audit(
        &self,
        by: &ScimActor,
        kind: AuditEventKind,
        target: &str,
    ) -> std::result::Result<(), ScimError> {
        let event = zt_core::AuditEvent::new(
            kind,
            zt_core::Actor::System("scim".into()),
            self.ctx.clock.now(),
        )
        .tenant(self.ctx.tenant)
        .target(target.to_owned())
        .detail("scim_key", by.key.as_str())?;
        self.ctx.audit.append(event).await?;
        Ok(())
    }
}

fn no_content() -> ScimResponse {
    ScimResponse {
        status: 204,
        body: None,
        etag: None,
        location: None,
        retry_after: None,
    }
}

fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

fn scim_id<T: std::str::FromStr>(doc: &Value) -> std::result::Result<T, ScimError> {
    doc.get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ScimError::status(500, "the service failed"))
}

/// The SCIM group namespaces, to blind.
pub(crate) const BLINDED: [&str; 3] = [SCIM_GROUPS, SCIM_GROUP_NAMES, SCIM_GROUP_EXTERNAL_IDS];

pub(crate) fn group_records() -> zt_core::Result<Records> {
    Records::new(
        SCIM_GROUPS,
        SCIM_GROUP_NAMES,
        SCIM_GROUP_EXTERNAL_IDS,
        "displayName",
    )
}
