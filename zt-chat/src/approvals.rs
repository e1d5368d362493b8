//! Two-person approval for what cannot be undone: one holder of the area's permission asks
//! ([`Workspace::request_approval`]), a *different* holder approves within
//! [`ChatConfig::approval_window`](crate::ChatConfig::approval_window)
//! ([`Workspace::approve`]), and the library carries the action out on that approval, so no
//! embedding server can skip the second person: releasing a legal hold, executing a workspace
//! wipe ([`crate::wipe`]); restoring a backup over live data joins them when it lands.
//!
//! Both steps are recorded (`approval.requested`; `approval.granted`, or the same kind denied
//! when someone tries to approve their own request) before anything changes. A request that
//! expired is refused and dropped; the approval and the action are one commit, so a request is
//! carried out at most once.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use zt_chat::approvals::{Approvable, Approved};
//! use zt_chat::HoldScope;
//!
//! let world = zt_chat::testing::World::new().await;
//! let password = zt_chat::testing::password();
//! let (workspace, _) = world.chat.bootstrap("Acme", zt_chat::testing::new_user("ada"), &password).await?;
//! let (_, ada) = workspace.login("ada", &password, None).await?;
//! let hold = workspace.place_legal_hold(&ada, HoldScope::AuditLogs, "Matter 1").await?;
//!
//! let request = workspace.request_approval(&ada, Approvable::ReleaseLegalHold(hold.id)).await?;
//! // Ada cannot approve her own request; a second owner or admin would.
//! assert!(workspace.approve(&ada, request.id).await.is_err());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use serde::{Deserialize, Serialize};
use zt_core::{ApprovalId, AuditEventKind, HoldId, Outcome, Timestamp, UserId};
use zt_storage::{Batch, KvStoreExt as _, codec};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::holds::LegalHold;
use crate::workspace::{Caller, Workspace};

/// The prefix of approval requests in the holds namespace, by approval id.
const APPROVAL_PREFIX: &[u8] = b"a/";

/// An action that takes two people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Approvable {
    /// Release this legal hold (`manage_privacy_and_data`).
    ReleaseLegalHold(HoldId),
    /// Execute the workspace's scheduled wipe (`manage_privacy_and_data`).
    ExecuteWipe,
}

impl Approvable {
    /// The action's name, as audit records give it.
    pub fn name(self) -> &'static str {
        match self {
            Approvable::ReleaseLegalHold(_) => "release_legal_hold",
            Approvable::ExecuteWipe => "execute_wipe",
        }
    }

    /// What it acts on.
    pub fn subject(self) -> String {
        match self {
            Approvable::ReleaseLegalHold(hold) => hold.to_string(),
            Approvable::ExecuteWipe => "workspace".to_owned(),
        }
    }

    /// The admin area whose permission both people need.
    pub fn area(self) -> AdminArea {
        match self {
            Approvable::ReleaseLegalHold(_) | Approvable::ExecuteWipe => AdminArea::PrivacyAndData,
        }
    }
}

/// A request waiting for a second person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Its id.
    pub id: ApprovalId,
    /// What it asks for.
    pub action: Approvable,
    /// Who asked.
    pub requested_by: UserId,
    /// When.
    pub requested: Timestamp,
    /// After this, it can no longer be approved.
    pub expires: Timestamp,
}

/// What an approval carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Approved {
    /// The hold was released.
    LegalHoldReleased(LegalHold),
    /// The wipe may run once due ([`crate::Chat::run_wipes`]).
    WipeApproved(crate::wipe::WipeSchedule),
}

fn approval_key(id: ApprovalId) -> Vec<u8> {
    let mut key = APPROVAL_PREFIX.to_vec();
    key.extend_from_slice(&id.to_bytes());
    key
}

impl Workspace {
    /// Asks for a second person's approval of `action` (the action's area permission). The
    /// subject must exist; the request expires after the deployment's approval window.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for a subject that does not exist; the store's
    /// errors.
    pub async fn request_approval(&self, caller: &Caller, action: Approvable) -> Result<Approval> {
        self.enter_admin_area(caller, action.area()).await?;
        match action {
            Approvable::ReleaseLegalHold(hold) => {
                self.legal_hold(hold).await?;
            }
            Approvable::ExecuteWipe => self.wipe_to_approve().await?,
        }
        let approval = self.create_approval(caller, action).await?;
        if action == Approvable::ExecuteWipe {
            // A new request for a scheduled wipe (the first one expired) replaces the old one.
            self.rerequest_wipe(approval.id).await?;
        }
        Ok(approval)
    }

    /// Stores and records a request for `action`, its subject checked by the caller.
    pub(crate) async fn create_approval(
        &self,
        caller: &Caller,
        action: Approvable,
    ) -> Result<Approval> {
        let now = self.ctx.clock.now();
        let approval = Approval {
            id: ApprovalId::generate(&*self.ctx.clock),
            action,
            requested_by: caller.user(),
            requested: now,
            expires: now.saturating_add(self.approval_window),
        };
        let event = self
            .event(AuditEventKind::ApprovalRequested, caller)
            .target(approval.id.to_string())
            .detail("action", action.name())?
            .detail("subject", action.subject())?
            .detail("expires", approval.expires.unix_millis())?;
        self.ctx.audit.append(event).await?;
        let mut batch = Batch::new();
        batch.put_if_absent(
            &self.ns.holds,
            &approval_key(approval.id),
            &codec::encode(&approval)?,
        );
        self.ctx.store.commit(batch).await?;
        Ok(approval)
    }

    /// The requests waiting for approval that have not expired, oldest first
    /// (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn approvals(&self, caller: &Caller) -> Result<Vec<Approval>> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let now = self.ctx.clock.now();
        let mut found: Vec<Approval> = self.holds_records(APPROVAL_PREFIX).await?;
        found.retain(|a| a.expires >= now);
        found.sort_by_key(|a| (a.requested, a.id));
        Ok(found)
    }

    /// Approves request `id` and carries its action out, in one commit with the request's
    /// removal. The approver needs the action's area permission and must not be the one who
    /// asked; a refusal for that reason is recorded (`approval.granted`, denied).
    ///
    /// # Errors
    /// [`Error::Forbidden`] (also, reason `same-person`, for one's own request);
    /// [`Error::NotFound`] for no such request; [`Error::Conflict`] for one that expired (it is
    /// dropped) or whose subject changed meanwhile; the action's own errors.
    pub async fn approve(&self, caller: &Caller, id: ApprovalId) -> Result<Approved> {
        // Every action is in the privacy and data area today; the area is entered before the
        // request is read, so a refused caller learns nothing of it.
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let (approval, version) = self
            .ctx
            .store
            .get_decoded::<Approval>(&self.ns.holds, &approval_key(id))
            .await?
            .ok_or_else(|| Error::NotFound("approval request".into()))?;
        let now = self.ctx.clock.now();
        if approval.expires < now {
            let mut batch = Batch::new();
            batch.require_version(&self.ns.holds, &approval_key(id), version);
            batch.delete(&self.ns.holds, &approval_key(id));
            self.ctx.store.commit(batch).await?;
            return Err(Error::Conflict(
                "the request expired; ask for approval again".into(),
            ));
        }
        let event = self
            .event(AuditEventKind::ApprovalGranted, caller)
            .target(id.to_string())
            .detail("action", approval.action.name())?
            .detail("subject", approval.action.subject())?
            .detail("requested_by", approval.requested_by.to_string())?;
        if approval.requested_by == caller.user() {
            let event = event
                .outcome(Outcome::Denied)
                .detail("reason", "same_person")?;
            self.ctx.audit.append(event).await?;
            return Err(Error::Forbidden {
                reasons: vec!["same-person".into()],
            });
        }
        self.ctx.audit.append(event).await?;
        let mut done = Batch::new();
        done.require_version(&self.ns.holds, &approval_key(id), version);
        done.delete(&self.ns.holds, &approval_key(id));
        match approval.action {
            Approvable::ReleaseLegalHold(hold) => Ok(Approved::LegalHoldReleased(
                self.release_legal_hold_approved(caller, &approval, hold, done)
                    .await?,
            )),
            Approvable::ExecuteWipe => {
                // The schedule (in the deployment's store) records the approval first; a
                // request left behind by a crash is dropped by the next approval or expires.
                let schedule = self.approve_wipe(caller, &approval).await?;
                self.ctx.store.commit(done).await?;
                Ok(Approved::WipeApproved(schedule))
            }
        }
    }

    /// Drops request `id`, if it is still there.
    pub(crate) async fn drop_approval(&self, id: ApprovalId) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(&self.ns.holds, &approval_key(id));
        self.ctx.store.commit(batch).await?;
        Ok(())
    }
}
