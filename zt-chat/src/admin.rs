//! The administration areas of a workspace, each behind its own permission, and the caller's own
//! account and sessions.
//!
//! Every method here takes an authenticated [`Caller`] and works in one order: it **authorizes**
//! (a refused admin area is recorded as `admin.access_denied` and answered with
//! [`Error::Forbidden`]), **records** what it is about to change with every value it will apply
//! (a change that cannot be recorded does not happen), then **applies**. Reads of the audit logs
//! are recorded by the [`AuditLogs`](zt_core::AuditLogs) port itself.
//!
//! | area | permission | methods |
//! |---|---|---|
//! | users | `manage_users` | [`Workspace::admin_users`], [`Workspace::deactivate_user`], [`Workspace::reactivate_user`], [`Workspace::delete_user`], [`Workspace::unlock_user`], [`Workspace::reset_password`], [`Workspace::revoke_user_sessions`] |
//! | authentication | `manage_authentication` | [`Workspace::session_policy`], [`Workspace::set_session_policy`] |
//! | audit logs | `view_audit_logs` | [`Workspace::audit_page`], [`Workspace::verify_audit`] |
//! | privacy and data | `manage_privacy_and_data` | [`Workspace::audit_retention`], [`Workspace::set_audit_legal_hold`], [`Workspace::prune_audit`], [`Workspace::retention`], [`Workspace::set_retention`], [`Workspace::run_retention`], [`Workspace::legal_holds`], [`Workspace::place_legal_hold`], [`Workspace::request_approval`], [`Workspace::approvals`], [`Workspace::approve`] |
//! | roles | `view_admin_console` to read; changes judged by zt-authz | [`Workspace::roles`], [`Workspace::role`], [`Workspace::tenant_roles_of`], [`Workspace::change_access`] |
//! | backups | `manage_backups`, in the operators' workspace | [`Workspace::create_backup`], [`Workspace::backups`], [`Workspace::verify_backup`], [`Workspace::delete_backup`], [`Workspace::rotate_backup_key`] |
//! | updates | `manage_updates`, in the operators' workspace | [`Workspace::check_updates`] |
//! | server settings, encryption | `manage_server_settings`, `manage_encryption` | [`Workspace::enter_admin_area`]: the values are the deployment's own; [`Workspace::rotate_workspace_key`], [`Workspace::rotate_kms_key`], [`Workspace::recovery_status`] (operators' workspace) |
//!
//! ## The doors that stay closed
//! A [`Workspace`] gives no handle to its users, password checker, sessions or authorization
//! service. Through them a session could be minted without a credential, the session policy
//! changed with no actor, check or record, or a tenant's live permissions replaced past the
//! guardrails. None of these compiles outside zt-chat:
//!
//! ```compile_fail,E0599
//! fn mint(workspace: &zt_chat::Workspace, user: zt_core::UserId) {
//!     let _ = workspace.sessions().create(user, zt_core::identity::SessionKind::Interactive);
//! }
//! ```
//! ```compile_fail,E0599
//! fn loosen(workspace: &zt_chat::Workspace) {
//!     let _ = workspace.sessions().set_policy(Default::default());
//! }
//! ```
//! ```compile_fail,E0599
//! fn replace(workspace: &zt_chat::Workspace, model: zt_authz::Model) {
//!     let _ = workspace.authz().authorizer().install(model);
//! }
//! ```
//! ```compile_fail,E0616
//! fn reach(workspace: &zt_chat::Workspace) {
//!     let _ = &workspace.sessions;
//! }
//! ```
//! The same changes through the doors, which authorize and record them, compile:
//! ```
//! async fn through_the_doors(workspace: &zt_chat::Workspace, admin: &zt_chat::Caller) -> zt_chat::Result<()> {
//!     let mut policy = workspace.session_policy(admin).await?;
//!     policy.interactive.idle = std::time::Duration::from_secs(15 * 60);
//!     workspace.set_session_policy(admin, policy).await?;
//!     let _ = workspace.my_sessions(admin).await?;
//!     Ok(())
//! }
//! ```
//! The deployment that holds the store and the KMS can of course read and write everything
//! below zt-chat; these doors guard against code that holds only a `Workspace`.

use std::time::Duration;

use zt_authz::{Action, Change, Changer, Decision, Permission, Resource, Role, Scope};
use zt_core::identity::{Session, SessionPolicy, Timeouts, User, UserState};
use zt_core::{
    Actor, AuditEvent, AuditEventKind, AuditLogId, AuditLogKind, AuditLogPage, AuditLogVerdict,
    AuditRange, AuditRetention, Detail, Outcome, RoleId, UserId,
};

use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};

/// An administration area: what one admin permission opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdminArea {
    /// Users: list, deactivate, delete, end their sessions (`manage_users`).
    Users,
    /// Session lifetimes (`manage_authentication`).
    Authentication,
    /// The encryption status (`manage_encryption`).
    Encryption,
    /// The audit logs: read and verify (`view_audit_logs`).
    AuditLogs,
    /// Retention, legal hold and pruning of the audit logs (`manage_privacy_and_data`).
    PrivacyAndData,
    /// The deployment's settings in force (`manage_server_settings`).
    ServerSettings,
    /// The channel directory: every channel with its listing (`manage_channel_directory`).
    ChannelDirectory,
    /// Storage use and the clean-up of what deletions leave (`manage_storage_data`).
    StorageData,
    /// The deployment's backups (`manage_backups`, in the operators' workspace only).
    Backups,
    /// Update checks (`manage_updates`, in the operators' workspace only).
    Updates,
}

impl AdminArea {
    /// The permission that opens the area.
    pub fn permission(self) -> Permission {
        match self {
            AdminArea::Users => Permission::ManageUsers,
            AdminArea::Authentication => Permission::ManageAuthentication,
            AdminArea::Encryption => Permission::ManageEncryption,
            AdminArea::AuditLogs => Permission::ViewAuditLogs,
            AdminArea::PrivacyAndData => Permission::ManagePrivacyAndData,
            AdminArea::ServerSettings => Permission::ManageServerSettings,
            AdminArea::ChannelDirectory => Permission::ManageChannelDirectory,
            AdminArea::StorageData => Permission::ManageStorageData,
            AdminArea::Backups => Permission::ManageBackups,
            AdminArea::Updates => Permission::ManageUpdates,
        }
    }
}

/// The shortest session lifetime a policy may set.
pub const MIN_SESSION_LIFETIME: Duration = Duration::from_secs(60);
/// The longest session lifetime a policy may set: a year.
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The most audit events one page returns.
pub const MAX_AUDIT_PAGE: u64 = 1000;

/// What retention left of a workspace's two audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditLogsRetention {
    /// The security log.
    pub security: AuditRetention,
    /// The compliance log.
    pub compliance: AuditRetention,
}

/// A role and how many users hold it workspace-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSummary {
    /// The role.
    pub role: Role,
    /// How many users hold it at tenant scope.
    pub holders: usize,
}

fn check_timeouts(field: &'static str, t: Timeouts) -> Result<()> {
    let range = MIN_SESSION_LIFETIME..=MAX_SESSION_LIFETIME;
    if range.contains(&t.idle) && range.contains(&t.absolute) && t.idle <= t.absolute {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{} to {} seconds, idle at most absolute",
                MIN_SESSION_LIFETIME.as_secs(),
                MAX_SESSION_LIFETIME.as_secs()
            ),
        ))
    }
}

fn key_error(what: &str, e: zt_crypto::Error) -> Error {
    if e.is_temporary() {
        Error::Unavailable {
            message: format!("{what}: the KMS"),
            source: Some(Box::new(e)),
        }
    } else {
        Error::internal(what, e)
    }
}

fn seconds(d: Duration) -> Detail {
    Detail::Number(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Workspace {
    /// Opens an admin area for the caller: `Ok` when they hold its permission workspace-wide.
    /// A refusal is recorded as `admin.access_denied` (naming the permission) and answered with
    /// [`Error::Forbidden`]. Opening [`AdminArea::Encryption`] is itself recorded
    /// (`key.status_read`) before anything is shown. Every method of an area calls it first; an embedder calls it for
    /// areas whose content is its own (the server settings, its KMS figures).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Internal`] when the refusal cannot be recorded.
    pub async fn enter_admin_area(&self, caller: &Caller, area: AdminArea) -> Result<()> {
        let permission = area.permission();
        let decision = self
            .authz
            .authorize(caller.principal(), Action::Do(permission), Resource::Tenant)
            .await?;
        if decision.allowed {
            // Opening the encryption area reads the state of the keys: on record first.
            if area == AdminArea::Encryption {
                let event = self
                    .event(AuditEventKind::KeyStatusRead, caller)
                    .target("encryption");
                self.ctx.audit.append(event).await?;
            }
            return Ok(());
        }
        let event = self
            .event(AuditEventKind::AdminAccessDenied, caller)
            .target(permission.name())
            .outcome(Outcome::Denied);
        self.ctx.audit.append(event).await?;
        Err(Error::Forbidden {
            reasons: decision.codes(),
        })
    }

    /// Adds a version of the workspace key (`manage_encryption`): keys made from now on are
    /// wrapped under it, older ones stay readable. Recorded as `key.rotated` before it is made.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the KMS's and the store's.
    pub async fn rotate_workspace_key(&self, caller: &Caller) -> Result<u32> {
        self.before_key_rotation(caller, "workspace-key").await?;
        self.keyring
            .rotate_tenant_key(&self.tenant().to_string())
            .await
            .map_err(|e| key_error("rotating the workspace key", e))
    }

    /// Rotates the workspace's own KMS key and re-wraps the workspace's keys under its new
    /// version (`manage_encryption`); the old version can then be retired in the KMS. Recorded
    /// as `key.rotated` before. Returns the new KMS key version and how many workspace key
    /// versions were rewrapped.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the KMS's and the store's.
    pub async fn rotate_kms_key(&self, caller: &Caller) -> Result<(u32, usize)> {
        self.before_key_rotation(caller, "kms-key").await?;
        self.keyring
            .rotate_tenant_kms_key(&self.tenant().to_string())
            .await
            .map_err(|e| key_error("rotating the KMS key", e))
    }

    /// Enters the encryption area and records `key.rotated` of `target`: what a rotation does
    /// before it applies.
    async fn before_key_rotation(&self, caller: &Caller, target: &str) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::Encryption).await?;
        let event = self
            .event(AuditEventKind::KeyRotated, caller)
            .target(target);
        self.ctx.audit.append(event).await?;
        Ok(())
    }

    /// An audit event by the caller, in this workspace, now.
    pub(crate) fn event(&self, kind: AuditEventKind, caller: &Caller) -> AuditEvent {
        AuditEvent::new(kind, Actor::User(caller.user()), self.ctx.clock.now())
            .tenant(self.ctx.tenant)
    }

    /// The decision on whether the caller may take `action` on `resource`, with its reasons. A
    /// question, not a door: it changes nothing and is not recorded.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn decide(
        &self,
        caller: &Caller,
        action: Action,
        resource: Resource,
    ) -> Result<Decision> {
        Ok(self
            .authz
            .authorize(caller.principal(), action, resource)
            .await?)
    }

    // ----- the caller's own account and sessions -------------------------------------------

    /// The caller's own account.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] when the account is gone.
    pub async fn me(&self, caller: &Caller) -> Result<User> {
        self.users
            .get(caller.user())
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// The active user named `username`, for a caller who may see the member directory
    /// (`view_member_directory`). A name that cannot exist is simply not found.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without the permission.
    pub async fn find_user(&self, caller: &Caller, username: &str) -> Result<Option<User>> {
        self.require(
            caller,
            Action::Do(Permission::ViewMemberDirectory),
            Resource::Tenant,
            "tenant",
        )
        .await?;
        match self.users.find_by_username(username).await {
            Ok(found) => Ok(found.filter(|u| u.state == UserState::Active)),
            Err(zt_core::Error::InvalidInput(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's live sessions, each with its id (the SHA-256 of its token).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn my_sessions(&self, caller: &Caller) -> Result<Vec<([u8; 32], Session)>> {
        Ok(self.sessions.list(caller.user()).await?)
    }

    /// Ends one of the caller's own sessions, by its id. Another user's session is not found,
    /// whether or not it exists.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an id that is not one of the caller's live sessions.
    pub async fn revoke_my_session(&self, caller: &Caller, id: [u8; 32]) -> Result<()> {
        let own = self.sessions.list(caller.user()).await?;
        if !own.iter().any(|(hash, _)| *hash == id) {
            return Err(Error::NotFound("session".into()));
        }
        Ok(self
            .sessions
            .revoke_hash(&Actor::User(caller.user()), id)
            .await?)
    }

    // ----- users -------------------------------------------------------------------------

    /// Every user holding a role in the workspace (the users area).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `manage_users`.
    pub async fn admin_users(&self, caller: &Caller) -> Result<Vec<User>> {
        self.enter_admin_area(caller, AdminArea::Users).await?;
        let ids: Vec<UserId> = self.authz.authorizer().with_model(|m| m.users().collect());
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = self.users.get(id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Ends every session of `user` (`manage_users` over them); each end is recorded as
    /// `session.revoked`. Returns how many ended.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for a user the caller cannot see.
    pub async fn revoke_user_sessions(&self, caller: &Caller, user: UserId) -> Result<usize> {
        self.manage(caller, user).await?;
        Ok(self
            .sessions
            .revoke_all(&Actor::User(caller.user()), user, None)
            .await?)
    }

    // ----- authentication ------------------------------------------------------------------

    /// The session policy in force (the authentication area).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `manage_authentication`.
    pub async fn session_policy(&self, caller: &Caller) -> Result<SessionPolicy> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        Ok(self.sessions.policy())
    }

    /// Replaces the session policy; live sessions follow it at their next use. Every lifetime
    /// lies between [`MIN_SESSION_LIFETIME`] and [`MAX_SESSION_LIFETIME`], idle at most
    /// absolute. The change is recorded as `settings.changed` with all six values before it
    /// applies.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `manage_authentication`; [`Error::InvalidInput`] naming
    /// the kind of session whose lifetimes are out of bounds; [`Error::Internal`] when the
    /// record cannot be written (then nothing changes).
    pub async fn set_session_policy(&self, caller: &Caller, policy: SessionPolicy) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        check_timeouts("interactive", policy.interactive)?;
        check_timeouts("api", policy.api)?;
        check_timeouts("portal", policy.portal)?;
        check_timeouts("sso", policy.sso)?;
        let mut event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("authentication");
        for (kind, t) in [
            ("interactive", policy.interactive),
            ("api", policy.api),
            ("portal", policy.portal),
            ("sso", policy.sso),
        ] {
            event = event
                .detail(&format!("{kind}_idle_seconds"), seconds(t.idle))?
                .detail(&format!("{kind}_absolute_seconds"), seconds(t.absolute))?;
        }
        self.ctx.audit.append(event).await?;
        Ok(self.sessions.set_policy(policy).await?)
    }

    // ----- audit logs --------------------------------------------------------------------

    fn log(&self, kind: AuditLogKind) -> AuditLogId {
        AuditLogId {
            tenant: Some(self.ctx.tenant),
            kind,
        }
    }

    /// A page of the workspace's security or compliance log (`view_audit_logs`): only the
    /// events asked for are read, at most [`MAX_AUDIT_PAGE`]; the read is recorded as
    /// `audit.read` with its range.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] for a limit of 0 or above
    /// [`MAX_AUDIT_PAGE`], or a start outside what the log holds.
    pub async fn audit_page(
        &self,
        caller: &Caller,
        kind: AuditLogKind,
        range: AuditRange,
    ) -> Result<AuditLogPage> {
        self.enter_admin_area(caller, AdminArea::AuditLogs).await?;
        let limit = match range {
            AuditRange::Newest { limit } | AuditRange::From { limit, .. } => limit,
        };
        if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", format!("1 to {MAX_AUDIT_PAGE}")));
        }
        Ok(self
            .audit_logs
            .read(&Actor::User(caller.user()), self.log(kind), range)
            .await?)
    }

    /// Verifies the workspace's security or compliance log from its entries and signed
    /// checkpoints (`view_audit_logs`); a failure is itself recorded.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn verify_audit(
        &self,
        caller: &Caller,
        kind: AuditLogKind,
    ) -> Result<AuditLogVerdict> {
        self.enter_admin_area(caller, AdminArea::AuditLogs).await?;
        Ok(self
            .audit_logs
            .verify(&Actor::User(caller.user()), self.log(kind))
            .await?)
    }

    /// What retention left of each of the workspace's audit logs (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn audit_retention(&self, caller: &Caller) -> Result<AuditLogsRetention> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(AuditLogsRetention {
            security: self
                .audit_logs
                .retention(self.log(AuditLogKind::Security))
                .await?,
            compliance: self
                .audit_logs
                .retention(self.log(AuditLogKind::Compliance))
                .await?,
        })
    }

    /// Places (`true`) a legal hold on both of the workspace's audit logs, unless one stands
    /// (`manage_privacy_and_data`): [`Workspace::place_legal_hold`] with
    /// [`HoldScope::AuditLogs`](crate::HoldScope). Releasing (`false`) takes a second person:
    /// it is refused here while a hold stands; ask with [`Workspace::request_approval`].
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Conflict`] for a release while a hold stands; the store's
    /// errors.
    pub async fn set_audit_legal_hold(&self, caller: &Caller, hold: bool) -> Result<()> {
        let on_logs: Vec<_> = self
            .legal_holds(caller)
            .await?
            .into_iter()
            .filter(|h| h.scope == crate::HoldScope::AuditLogs)
            .collect();
        if hold && on_logs.is_empty() {
            self.place_legal_hold(caller, crate::HoldScope::AuditLogs, "audit logs")
                .await?;
        }
        if !hold && !on_logs.is_empty() {
            return Err(Error::Conflict(
                "releasing a legal hold takes a second person: request the release and have \
                 another administrator approve it"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Removes the entries of one audit log below `below`, keeping every later proof and earlier
    /// checkpoint verifiable (`manage_privacy_and_data`), recorded as `retention.cleanup`
    /// before anything is removed.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Conflict`] under a legal hold (recorded as a denied
    /// clean-up); [`Error::InvalidInput`] beyond the end of the log.
    pub async fn prune_audit(&self, caller: &Caller, kind: AuditLogKind, below: u64) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(self
            .audit_logs
            .prune(&Actor::User(caller.user()), self.log(kind), below)
            .await?)
    }

    // ----- roles -------------------------------------------------------------------------

    async fn view_roles(&self, caller: &Caller) -> Result<()> {
        self.require(
            caller,
            Action::Do(Permission::ViewAdminConsole),
            Resource::Tenant,
            "tenant",
        )
        .await
        .map(|_| ())
    }

    /// Every role with its holder count (`view_admin_console`).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn roles(&self, caller: &Caller) -> Result<Vec<RoleSummary>> {
        self.view_roles(caller).await?;
        Ok(self.authz.authorizer().with_model(|m| {
            m.roles()
                .map(|r| RoleSummary {
                    role: r.clone(),
                    holders: m.holders(r.id).count(),
                })
                .collect()
        }))
    }

    /// One role with its holder count (`view_admin_console`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`].
    pub async fn role(&self, caller: &Caller, id: RoleId) -> Result<RoleSummary> {
        self.view_roles(caller).await?;
        self.authz
            .authorizer()
            .with_model(|m| {
                m.role(id).map(|r| RoleSummary {
                    role: r.clone(),
                    holders: m.holders(r.id).count(),
                })
            })
            .ok_or_else(|| Error::NotFound("role".into()))
    }

    /// The roles `user` holds workspace-wide (`view_admin_console`).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn tenant_roles_of(&self, caller: &Caller, user: UserId) -> Result<Vec<RoleId>> {
        self.view_roles(caller).await?;
        Ok(self
            .authz
            .authorizer()
            .with_model(|m| m.tenant_roles(user).collect()))
    }

    /// Changes who may do what (roles, grants, groups, memberships, segments) as the caller:
    /// zt-authz judges it (the caller's own powers, locked system roles, the last owner,
    /// escalation paths), records it and applies it. Returns the new model version.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (with an `escalation:` reason for an escalation path);
    /// [`Error::NotFound`]; [`Error::Conflict`]; [`Error::InvalidInput`].
    pub async fn change_access(&self, caller: &Caller, change: Change) -> Result<u64> {
        self.apply_as(caller, change).await
    }

    /// Applies one change as the caller, after checking that the user it grants to, revokes
    /// from or changes the membership of is a user of this workspace: a change for an id nobody
    /// holds answers not found and records nothing (it would otherwise be audited as real).
    pub(crate) async fn apply_as(&self, caller: &Caller, change: Change) -> Result<u64> {
        let subject = match &change {
            Change::Grant { user, .. }
            | Change::Revoke { user, .. }
            | Change::AddMember { user, .. }
            | Change::RemoveMember { user, .. } => Some(*user),
            Change::CreateRole { .. }
            | Change::UpdateRole { .. }
            | Change::DeleteRole { .. }
            | Change::PutChannel(_)
            | Change::RemoveChannel(_)
            | Change::PutGroup(_)
            | Change::RemoveGroup(_)
            | Change::RemoveUser(_) => None,
        };
        if let Some(user) = subject {
            let known = self
                .users
                .get(user)
                .await?
                .is_some_and(|u| u.state != UserState::Deleted);
            if !known {
                return Err(Error::NotFound("user".into()));
            }
        }
        Ok(self
            .authz
            .apply(&Changer::Principal(caller.principal()), change)
            .await?)
    }

    /// Grants `role` to `user` at `at` as the caller ([`Workspace::change_access`]).
    ///
    /// # Errors
    /// As [`Workspace::change_access`].
    pub async fn grant(
        &self,
        caller: &Caller,
        user: UserId,
        role: RoleId,
        at: Scope,
    ) -> Result<u64> {
        self.change_access(caller, Change::Grant { user, role, at })
            .await
    }
}
