//! [`Authz`]: one tenant's authorization, kept in its store, changed only through the guardrails,
//! every change audited and announced on the `EventBus`.
//!
//! Each change is one conditional commit that also moves the tenant's version record forward, so
//! two writers (two nodes) never both build on the same state: the loser gets
//! [`Error::Conflict`] and the state it missed. After the commit the change is installed in the
//! evaluator before `apply` returns, and published as `AuthzChanged { tenant, version }`. Other
//! instances drain the bus before each decision (one atomic load when nothing happened) and
//! reload from the store when the version they hear of is newer than theirs, so the next decision
//! after a change's commit returns sees it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use zt_authz::{Action, Authz, Change, Changer, Error, Permission, Resource, Scope, SystemRole};
//! use zt_core::identity::TenantContext;
//! use zt_core::{InProcessBus, Principal, SystemClock, TenantId, UserId};
//! use zt_storage::MemoryStore;
//!
//! let tenant = TenantId::from_bytes([1; 16]);
//! let ctx = TenantContext {
//!     store: Arc::new(MemoryStore::new()),
//!     tenant,
//!     clock: Arc::new(SystemClock),
//!     audit: Arc::new(zt_core::testing::NullSink), // a deployment's audit trail
//!     bus: Arc::new(InProcessBus::default()),
//! };
//! let authz = Authz::open(ctx).await?;
//! let owner = Principal { tenant, user: UserId::from_bytes([1; 16]) };
//! let admin = Principal { tenant, user: UserId::from_bytes([2; 16]) };
//! let grant = |user, role| Change::Grant { user, role, at: Scope::Tenant };
//!
//! // Setting up: the deployment makes the first owner; the owner makes an admin.
//! authz.apply(&Changer::System("setup".into()), grant(owner.user, SystemRole::Owner.id())).await?;
//! authz.apply(&Changer::Principal(owner), grant(admin.user, SystemRole::Admin.id())).await?;
//!
//! // The admin may manage users, and may not make owners.
//! let d = authz.authorize(admin, Action::Do(Permission::ManageUsers), Resource::Tenant).await?;
//! assert!(d.allowed);
//! let refused = authz
//!     .apply(&Changer::Principal(admin), grant(admin.user, SystemRole::Owner.id()))
//!     .await;
//! assert!(matches!(refused, Err(Error::Refused(d)) if d.codes() == ["owner-only"]));
//! # Ok::<_, zt_authz::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use zt_core::identity::TenantContext;
use zt_core::{
    Actor, AuditEvent, AuditEventKind, BusEvent, Delivery, Outcome, Principal, Subscription,
};
use zt_storage::{Batch, ErrorKind, codec};

use crate::analysis::{self, EscalationPath};
use crate::authorizer::Authorizer;
use crate::cascade::Cascades;
use crate::decision::{Action, Decision, Reason, Resource, Scope};
use crate::error::{Error, Result};
use crate::guard::{self, Change, Membership, SettingsArea};
use crate::model::Model;
use crate::records::{self, Namespaces, VERSION_KEY};
use crate::role::SystemRole;

/// Who makes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changer {
    /// A principal: the guardrails apply.
    Principal(Principal),
    /// The deployment itself (tenant setup, SCIM, OIDC), named: no guardrails, only the model's
    /// invariants (an owner remains).
    System(String),
}

/// One tenant's authorization service.
pub struct Authz {
    ctx: TenantContext,
    ns: Namespaces,
    authorizer: Authorizer,
    /// The tenant's authorization version this instance has installed.
    version: AtomicU64,
    /// The store version of the version record (`u64::MAX`: absent).
    meta: AtomicU64,
    writer: tokio::sync::Mutex<()>,
    feed: Mutex<Box<dyn Subscription>>,
    ready: Arc<AtomicU64>,
    seen: AtomicU64,
}

impl fmt::Debug for Authz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authz")
            .field("tenant", &self.ctx.tenant)
            .field("version", &self.version.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

const ABSENT: u64 = u64::MAX;

impl Authz {
    /// Loads the tenant's authorization from its store and subscribes to changes.
    ///
    /// # Errors
    /// The store's errors; [`zt_storage::ErrorKind::Corrupt`] for records that do not fit.
    pub async fn open(ctx: TenantContext) -> Result<Self> {
        let ns = Namespaces::new()?;
        // Subscribe first: a change committed while loading is then heard of.
        let feed = ctx.bus.subscribe();
        let ready = feed.ready_counter();
        let seen = ready.load(Ordering::Acquire);
        // Once per open, not per reload: records an earlier version kept unblinded move first.
        records::migrate_legacy(&*ctx.store).await?;
        let (model, version, meta) = records::load(&*ctx.store, &ns, ctx.tenant).await?;
        Ok(Authz {
            authorizer: Authorizer::new(model, Cascades::standard()),
            ns,
            version: AtomicU64::new(version),
            meta: AtomicU64::new(meta.unwrap_or(ABSENT)),
            writer: tokio::sync::Mutex::new(()),
            feed: Mutex::new(feed),
            ready,
            seen: AtomicU64::new(seen),
            ctx,
        })
    }

    /// The evaluator, as of the last change this instance knows of. Prefer
    /// [`authorize`](Self::authorize), which first catches up with other instances.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authorizer
    }

    /// The tenant's authorization version as installed here.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The decision for `principal` doing `action` on `resource`, with every change announced
    /// before this call applied.
    ///
    /// # Errors
    /// Only the store's, when a newer state must be loaded.
    pub async fn authorize(
        &self,
        principal: Principal,
        action: Action,
        resource: Resource,
    ) -> Result<Decision> {
        self.catch_up().await?;
        Ok(self.authorizer.authorize(principal, action, resource))
    }

    /// Whether `actor` may update settings touching every one of `areas` (refused as a whole
    /// otherwise).
    ///
    /// # Errors
    /// Only the store's.
    pub async fn authorize_settings(
        &self,
        actor: Principal,
        areas: &[SettingsArea],
    ) -> Result<Decision> {
        self.catch_up().await?;
        Ok(guard::authorize_settings(&self.authorizer, actor, areas))
    }

    /// Refuses when removing `user` (deactivating or deleting the account) would leave the
    /// tenant without an owner. Identity calls this before it deactivates or deletes.
    ///
    /// # Errors
    /// [`Error::Refused`] with [`Reason::LastOwner`]; the store's.
    pub async fn ensure_removable(&self, user: zt_core::UserId) -> Result<()> {
        self.catch_up().await?;
        let owner = SystemRole::Owner.id();
        let last = self.authorizer.with_model(|m| {
            m.tenant_roles(user).any(|r| r == owner) && m.holders(owner).count() == 1
        });
        if last {
            return Err(Error::Refused(Box::new(Decision::deny(
                [Reason::LastOwner].into(),
            ))));
        }
        Ok(())
    }

    /// Drains the bus; reloads when another instance committed a newer version.
    async fn catch_up(&self) -> Result<()> {
        let ready = self.ready.load(Ordering::Acquire);
        if ready == self.seen.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut newer = false;
        {
            let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(delivery) = feed.try_next() {
                match delivery {
                    Delivery::Event(BusEvent::AuthzChanged { tenant, version })
                        if tenant == self.ctx.tenant && version > self.version() =>
                    {
                        newer = true;
                    }
                    Delivery::Lagged | Delivery::Closed => newer = true,
                    Delivery::Event(_) => {}
                }
            }
        }
        self.seen.fetch_max(ready, Ordering::AcqRel);
        if newer {
            let _writer = self.writer.lock().await;
            self.reload().await?;
        }
        Ok(())
    }

    /// Loads the stored state and installs it.
    async fn reload(&self) -> Result<()> {
        let (model, version, meta) =
            records::load(&*self.ctx.store, &self.ns, self.ctx.tenant).await?;
        self.authorizer.install(model)?;
        self.version.store(version, Ordering::Release);
        self.meta.store(meta.unwrap_or(ABSENT), Ordering::Release);
        Ok(())
    }

    /// Makes `change` as `by`, after the guardrails (for a principal) and the invariants.
    /// Returns the tenant's new authorization version.
    ///
    /// # Errors
    /// - [`Error::Refused`] with the refusing decision (also recorded as
    ///   `authz.escalation_refused`); a resource the principal may not see is
    ///   [`Error::NotFound`].
    /// - [`Error::InvalidInput`], [`Error::NotFound`] for changes that do not fit the model.
    /// - [`Error::Conflict`] when another instance changed the tenant meanwhile (this one has
    ///   then loaded that state; decide again and retry).
    /// - [`Error::Audit`] when the change was made but could not be recorded.
    pub async fn apply(&self, by: &Changer, change: Change) -> Result<u64> {
        self.apply_all(vec![(by.clone(), change)], Batch::new())
            .await
    }

    /// Makes several changes, and `extra` writes of the caller's own (records of another
    /// component in the same tenant store), in one conditional commit: all or nothing. Each
    /// change is judged (guardrails, invariants, escalation analysis) on the state the changes
    /// before it leave, as if made one after the other. Returns the new version.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), for the first change that is refused; the store's errors for
    /// `extra` too (a failed precondition of `extra` is [`Error::Conflict`]).
    pub async fn apply_all(&self, steps: Vec<(Changer, Change)>, extra: Batch) -> Result<u64> {
        self.catch_up().await?;
        let writer = self.writer.lock().await;
        let start = self.authorizer.snapshot();
        let mut model = start.clone();
        // Record -> its final value (`None`: deleted).
        let mut writes: BTreeMap<(zt_storage::Namespace, Vec<u8>), Option<Vec<u8>>> =
            BTreeMap::new();
        for (i, (by, change)) in steps.iter().enumerate() {
            let judge;
            let authz = if i == 0 {
                &self.authorizer
            } else {
                judge = Authorizer::new(model.clone(), Cascades::standard());
                &judge
            };
            if let Changer::Principal(actor) = by
                && let Err(decision) = guard::check(authz, &model, *actor, change)
            {
                return Err(self.refused(by, change, *decision).await);
            }
            let mut after = model.clone();
            guard::apply(&mut after, change)?;
            if let Err(decision) = guard::check_invariants(&model, &after) {
                return Err(self.refused(by, change, *decision).await);
            }
            if is_privilege_change(change) {
                let users = affected_users(&after, change);
                let paths = analysis::escalation_paths(
                    &model,
                    &after,
                    by,
                    &users,
                    Cascades::standard(),
                    guard::check,
                );
                if let Some(path) = paths.into_iter().next() {
                    return Err(self.escalation(by, change, path).await);
                }
            }
            // Later changes of the same record win: the last value is the final one.
            for (ns, key, value) in records::touched(&self.ns, &model, &after, change)? {
                writes.insert((ns, key), value);
            }
            model = after;
        }
        let version = self.version() + 1;
        let mut batch = Batch::new();
        match self.meta.load(Ordering::Acquire) {
            ABSENT => batch.require_absent(&self.ns.meta, VERSION_KEY),
            meta => batch.require_version(&self.ns.meta, VERSION_KEY, meta),
        };
        batch.put(&self.ns.meta, VERSION_KEY, &codec::encode(&version)?);
        records::write(
            &mut batch,
            writes
                .into_iter()
                .map(|((ns, key), value)| (ns, key, value))
                .collect(),
        );
        batch.append(extra);
        let committed = match self.ctx.store.commit(batch).await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                self.reload().await?;
                return Err(Error::Conflict(
                    "the tenant changed meanwhile; decide again".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.authorizer.install(model)?;
        self.version.store(version, Ordering::Release);
        self.meta.store(committed, Ordering::Release);
        self.ctx.bus.publish(BusEvent::AuthzChanged {
            tenant: self.ctx.tenant,
            version,
        });
        // The change is committed and installed: the next writer may go on while this one's
        // records are written (each names its version, so their order in the log does not
        // matter), and the lock is never held across the audit log's own durable commit.
        drop(writer);
        for (by, change) in &steps {
            let event = self.event(by, change, version)?;
            self.ctx.audit.append(event).await.map_err(Error::Audit)?;
        }
        Ok(version)
    }

    fn actor(by: &Changer) -> Actor {
        match by {
            Changer::Principal(p) => Actor::User(p.user),
            Changer::System(name) => Actor::System(name.clone()),
        }
    }

    fn event(&self, by: &Changer, change: &Change, version: u64) -> Result<AuditEvent> {
        let (kind, target, details) = describe(change);
        let mut event = AuditEvent::new(kind, Self::actor(by), self.ctx.clock.now())
            .tenant(self.ctx.tenant)
            .target(target)
            .detail("authz_version", i64::try_from(version).unwrap_or(i64::MAX))?;
        for (name, value) in details {
            event = event.detail(name, value)?;
        }
        Ok(event)
    }

    /// Records a refusal by the escalation analysis and returns the error naming the path.
    async fn escalation(&self, by: &Changer, change: &Change, path: EscalationPath) -> Error {
        let (_, target, _) = describe(change);
        let event = AuditEvent::new(
            AuditEventKind::EscalationRefused,
            Self::actor(by),
            self.ctx.clock.now(),
        )
        .tenant(self.ctx.tenant)
        .target(target)
        .outcome(Outcome::Denied)
        .detail("change", change_name(change))
        .and_then(|e| e.detail("path", path.to_string()));
        let recorded = match event {
            Ok(event) => self.ctx.audit.append(event).await,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            return Error::Audit(e);
        }
        Error::Escalation(path.to_string())
    }

    /// Records a refusal and returns the error for it.
    async fn refused(&self, by: &Changer, change: &Change, decision: Decision) -> Error {
        let hidden = decision
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::NotVisible | Reason::NotFound));
        let (_, target, mut details) = describe(change);
        details.push(("change", change_name(change).to_owned()));
        details.push(("reasons", decision.codes().join(" ")));
        let mut event = AuditEvent::new(
            AuditEventKind::EscalationRefused,
            Self::actor(by),
            self.ctx.clock.now(),
        )
        .tenant(self.ctx.tenant)
        .target(target)
        .outcome(Outcome::Denied);
        for (name, value) in details {
            event = match event.detail(name, value) {
                Ok(e) => e,
                Err(e) => return e.into(),
            };
        }
        if let Err(e) = self.ctx.audit.append(event).await {
            return Error::Audit(e);
        }
        if hidden {
            Error::NotFound("resource".into())
        } else {
            Error::Refused(Box::new(decision))
        }
    }
}

/// Role definitions and assignments: what the escalation analysis looks at.
fn is_privilege_change(change: &Change) -> bool {
    matches!(
        change,
        Change::CreateRole { .. }
            | Change::UpdateRole { .. }
            | Change::Grant { .. }
            | Change::Revoke { .. }
    )
}

/// Whose escalation paths a privilege change may open: the user it assigns to, the holders of
/// the role it defines, and everyone who manages roles (a new or wider role is one more they
/// might grant).
fn affected_users(after: &Model, change: &Change) -> Vec<zt_core::UserId> {
    let cascades = Cascades::standard();
    // The role managers: the holders of every tenant role that grants `manage_roles`, found
    // through the model's holder index (a change must not cost a pass over every user).
    let mut users: Vec<zt_core::UserId> = after
        .roles()
        .filter(|r| {
            cascades
                .close(r.permissions)
                .contains(crate::Permission::ManageRoles)
        })
        .flat_map(|r| after.holders(r.id))
        .collect();
    match change {
        Change::Grant { user, .. } | Change::Revoke { user, .. } => users.push(*user),
        Change::CreateRole { id, .. } | Change::UpdateRole { id, .. } => {
            users.extend(after.holders(*id));
            users.extend(
                after
                    .channel_role_assignments()
                    .filter(|(_, _, roles)| roles.contains(id))
                    .map(|(_, u, _)| u),
            );
            users.extend(
                after
                    .group_role_assignments()
                    .filter(|(_, _, roles)| roles.contains(id))
                    .map(|(_, u, _)| u),
            );
        }
        _ => {}
    }
    users.sort();
    users.dedup();
    users
}

fn change_name(change: &Change) -> &'static str {
    match change {
        Change::CreateRole { .. } => "create_role",
        Change::UpdateRole { .. } => "update_role",
        Change::DeleteRole { .. } => "delete_role",
        Change::Grant { .. } => "grant",
        Change::Revoke { .. } => "revoke",
        Change::PutChannel(_) => "put_channel",
        Change::RemoveChannel(_) => "remove_channel",
        Change::PutGroup(_) => "put_group",
        Change::RemoveGroup(_) => "remove_group",
        Change::AddMember { .. } => "add_member",
        Change::RemoveMember { .. } => "remove_member",
        Change::RemoveUser(_) => "remove_user",
    }
}

fn scope_text(at: &Scope) -> String {
    match at {
        Scope::Tenant => "tenant".into(),
        Scope::Channel(c) => c.to_string(),
        Scope::Group(g) => g.to_string(),
    }
}

/// The audit kind, target and details of a change.
fn describe(change: &Change) -> (AuditEventKind, String, Vec<(&'static str, String)>) {
    use AuditEventKind as K;
    match change {
        Change::CreateRole {
            id,
            name,
            permissions,
            ..
        }
        | Change::UpdateRole {
            id,
            name,
            permissions,
        } => (
            if matches!(change, Change::CreateRole { .. }) {
                K::RoleCreated
            } else {
                K::RoleUpdated
            },
            id.to_string(),
            vec![
                ("role_name", name.clone()),
                (
                    "permissions",
                    permissions
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ],
        ),
        Change::DeleteRole { id } => (K::RoleDeleted, id.to_string(), Vec::new()),
        Change::Grant { user, role, at } | Change::Revoke { user, role, at } => (
            K::RoleChanged,
            user.to_string(),
            vec![
                ("role", role.to_string()),
                ("scope", scope_text(at)),
                (
                    "change",
                    if matches!(change, Change::Grant { .. }) {
                        "granted"
                    } else {
                        "revoked"
                    }
                    .into(),
                ),
            ],
        ),
        Change::PutChannel(c) => (
            K::SegmentChanged,
            c.id.to_string(),
            vec![
                ("visibility", format!("{:?}", c.visibility).to_lowercase()),
                (
                    "groups",
                    c.groups
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ],
        ),
        Change::RemoveChannel(c) => (
            K::SegmentChanged,
            c.to_string(),
            vec![("change", "removed".into())],
        ),
        Change::PutGroup(g) => (
            K::SegmentChanged,
            g.id.to_string(),
            vec![
                ("visibility", format!("{:?}", g.visibility).to_lowercase()),
                (
                    "parent",
                    g.parent.map(|p| p.to_string()).unwrap_or_default(),
                ),
                ("mention", format!("{:?}", g.mention).to_lowercase()),
            ],
        ),
        Change::RemoveGroup(g) => (
            K::SegmentChanged,
            g.to_string(),
            vec![("change", "removed".into())],
        ),
        Change::AddMember { user, of, source } | Change::RemoveMember { user, of, source } => (
            K::MembershipChanged,
            match of {
                Membership::Channel(c) => c.to_string(),
                Membership::Group(g) => g.to_string(),
            },
            vec![
                ("member", user.to_string()),
                ("source", source.name().into()),
                (
                    "change",
                    if matches!(change, Change::AddMember { .. }) {
                        "added"
                    } else {
                        "removed"
                    }
                    .into(),
                ),
            ],
        ),
        Change::RemoveUser(user) => (
            K::RoleChanged,
            user.to_string(),
            vec![("change", "all removed".into())],
        ),
    }
}
