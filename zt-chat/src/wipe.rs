//! Workspace wipe by crypto-shredding (`manage_privacy_and_data`, two people).
//!
//! 1. **Scheduled** ([`Workspace::schedule_wipe`]) with a delay of at least the deployment's
//!    floor ([`ChatConfig::wipe_delay_floor`](crate::ChatConfig::wipe_delay_floor)), refused
//!    while any legal hold stands, recorded as `wipe.scheduled`; scheduling asks for a second
//!    person's approval of its execution ([`Approvable::ExecuteWipe`]).
//! 2. **Cancelled** by anyone of the area until it runs ([`Workspace::cancel_wipe`],
//!    `wipe.cancelled`).
//! 3. **Approved** by a different holder of the permission ([`Workspace::approve`]).
//! 4. **Executed** by the deployment's schedule ([`Chat::run_wipes`]) once approved and due,
//!    unless a hold was placed meanwhile: `wipe.executed` is recorded and a final checkpoint of
//!    both of the workspace's audit logs is signed (the logs live under the deployment's keys,
//!    so they and the checkpoints outlive the workspace); then the workspace's keys are
//!    destroyed ([`Keyring::destroy_tenant`](zt_crypto::Keyring::destroy_tenant)): its own KMS
//!    key in the KMS, then its key record. From that moment every copy of its data, a backup's
//!    included, is unreadable, whatever its size. The workspace is no longer listed or opened.
//! 5. Its records are then **removed** in the background, namespace by namespace in batches,
//!    the progress kept in the deployment's store, so a run cut short is finished by the next.
//!
//! The schedule and its outcome (the checkpoints, when the data became unreadable) stay in the
//! deployment's store after the workspace is gone.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zt_core::{
    Actor, ApprovalId, AuditEvent, AuditEventKind, AuditLogId, AuditLogKind, Outcome, TenantId,
    Timestamp, UserId,
};
use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt as _, Namespace, ScanOptions, codec};

use crate::admin::AdminArea;
use crate::approvals::{Approvable, Approval};
use crate::error::{Error, Result};
use crate::workspace::{Caller, Chat, Workspace};

/// The deployment's wipe schedules (in the system store), by tenant id.
pub(crate) const WIPES: &str = "chat.wipes";

/// How many rows one commit of the removal deletes.
const REMOVE_BATCH: usize = 500;

/// Where a wipe stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WipePhase {
    /// Waiting for its time and its approval; cancellable.
    Scheduled,
    /// Recorded and checkpointed; the keys are being destroyed.
    Destroying,
    /// The keys are destroyed; the records are being removed.
    Removing {
        /// The next namespace to clear, as an index into the workspace's namespaces.
        namespace: usize,
    },
    /// Done: nothing of the workspace is left but this record and its audit logs.
    Done {
        /// When the removal finished.
        finished: Timestamp,
    },
}

/// A workspace's wipe: its schedule, approval and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeSchedule {
    /// The workspace.
    pub tenant: TenantId,
    /// Not executed before this.
    pub not_before: Timestamp,
    /// Who scheduled it.
    pub scheduled_by: UserId,
    /// When.
    pub scheduled: Timestamp,
    /// The request for a second person's approval of its execution.
    pub approval: ApprovalId,
    /// Who approved it, once someone did.
    pub approved_by: Option<UserId>,
    /// Where it stands.
    pub phase: WipePhase,
    /// When the keys were destroyed: the moment every copy became unreadable.
    pub unreadable_at: Option<Timestamp>,
    /// The final signed checkpoints of the workspace's audit logs (compliance, security).
    pub checkpoints: Vec<String>,
    /// Whether every copy of the workspace's keys became unreadable: its own KMS key destroyed
    /// in the KMS, and no key version of it made under the deployment's shared KMS key (a
    /// workspace from before each had its own; its copies still open while that key lives).
    pub kms_key_destroyed: bool,
    /// Rows removed so far.
    pub removed: u64,
}

fn wipes() -> Result<Namespace> {
    Ok(Namespace::new(WIPES)?)
}

async fn read_schedule(
    system: &dyn KvStore,
    tenant: TenantId,
) -> Result<Option<(WipeSchedule, u64)>> {
    Ok(system
        .get_decoded::<WipeSchedule>(&wipes()?, &tenant.to_bytes())
        .await?)
}

async fn write_schedule(
    system: &dyn KvStore,
    schedule: &WipeSchedule,
    version: Option<u64>,
) -> Result<u64> {
    let ns = wipes()?;
    let key = schedule.tenant.to_bytes();
    let mut batch = Batch::new();
    match version {
        Some(v) => {
            batch.require_version(&ns, &key, v);
        }
        None => {
            batch.require_absent(&ns, &key);
        }
    }
    batch.put(&ns, &key, &codec::encode(schedule)?);
    match system.commit(batch).await {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => Err(Error::Conflict(
            "the wipe changed meanwhile; read it again".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

impl Workspace {
    /// Refuses while any legal hold stands (on content or on the audit logs).
    async fn ensure_no_hold(&self) -> Result<()> {
        if !self.read_holds().await?.0.is_empty() {
            return Err(Error::Conflict(
                "a legal hold stands in this workspace; a wipe waits until every hold is released"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Schedules the workspace's wipe after `delay` (`manage_privacy_and_data`), recorded as
    /// `wipe.scheduled`, and asks for a second person's approval of its execution (the answer
    /// names the request). See the [module's docs](self).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] (`delay`) for a delay under the
    /// deployment's floor; [`Error::Conflict`] while a hold stands or a wipe is scheduled.
    pub async fn schedule_wipe(&self, caller: &Caller, delay: Duration) -> Result<WipeSchedule> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        if delay < self.wipe_delay_floor {
            return Err(Error::invalid(
                "delay",
                format!(
                    "at least the deployment's floor of {} s",
                    self.wipe_delay_floor.as_secs()
                ),
            ));
        }
        self.ensure_no_hold().await?;
        if read_schedule(&*self.system, self.ctx.tenant)
            .await?
            .is_some()
        {
            return Err(Error::Conflict("a wipe is scheduled already".into()));
        }
        let now = self.ctx.clock.now();
        let approval = self
            .create_approval(caller, Approvable::ExecuteWipe)
            .await?;
        let schedule = WipeSchedule {
            tenant: self.ctx.tenant,
            not_before: now.saturating_add(delay),
            scheduled_by: caller.user(),
            scheduled: now,
            approval: approval.id,
            approved_by: None,
            phase: WipePhase::Scheduled,
            unreadable_at: None,
            checkpoints: Vec::new(),
            kms_key_destroyed: false,
            removed: 0,
        };
        let event = self
            .event(AuditEventKind::WipeScheduled, caller)
            .target("workspace")
            .detail("not_before", schedule.not_before.unix_millis())?
            .detail("approval", approval.id.to_string())?;
        self.ctx.audit.append(event).await?;
        write_schedule(&*self.system, &schedule, None).await?;
        Ok(schedule)
    }

    /// The workspace's wipe, if one is scheduled (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn wipe_schedule(&self, caller: &Caller) -> Result<Option<WipeSchedule>> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(read_schedule(&*self.system, self.ctx.tenant)
            .await?
            .map(|(s, _)| s))
    }

    /// Cancels the scheduled wipe (`manage_privacy_and_data`; one person is enough), recorded
    /// as `wipe.cancelled`; its approval request goes with it.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] when none is scheduled; [`Error::Conflict`]
    /// once it has begun.
    pub async fn cancel_wipe(&self, caller: &Caller) -> Result<WipeSchedule> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let (schedule, version) = read_schedule(&*self.system, self.ctx.tenant)
            .await?
            .ok_or_else(|| Error::NotFound("wipe".into()))?;
        if schedule.phase != WipePhase::Scheduled {
            return Err(Error::Conflict("the wipe has begun".into()));
        }
        let event = self
            .event(AuditEventKind::WipeCancelled, caller)
            .target("workspace")
            .detail("scheduled_by", schedule.scheduled_by.to_string())?;
        self.ctx.audit.append(event).await?;
        let ns = wipes()?;
        let mut batch = Batch::new();
        batch.require_version(&ns, &schedule.tenant.to_bytes(), version);
        batch.delete(&ns, &schedule.tenant.to_bytes());
        self.system
            .commit(batch)
            .await
            .map_err(|e| match e.kind() {
                zt_storage::ErrorKind::Conflict => {
                    Error::Conflict("the wipe changed meanwhile; read it again".into())
                }
                _ => e.into(),
            })?;
        self.drop_approval(schedule.approval).await?;
        Ok(schedule)
    }

    /// Checks, for a request of [`Approvable::ExecuteWipe`], that a wipe is scheduled and not
    /// begun.
    pub(crate) async fn wipe_to_approve(&self) -> Result<()> {
        match read_schedule(&*self.system, self.ctx.tenant).await? {
            Some((s, _)) if s.phase == WipePhase::Scheduled => Ok(()),
            Some(_) => Err(Error::Conflict("the wipe has begun".into())),
            None => Err(Error::NotFound("wipe".into())),
        }
    }

    /// The second person's approval of a wipe's execution: the schedule records it (the
    /// request is dropped by the caller, in its own commit).
    pub(crate) async fn approve_wipe(
        &self,
        caller: &Caller,
        approval: &Approval,
    ) -> Result<WipeSchedule> {
        let (mut schedule, version) = read_schedule(&*self.system, self.ctx.tenant)
            .await?
            .ok_or_else(|| Error::NotFound("wipe".into()))?;
        if schedule.phase != WipePhase::Scheduled {
            return Err(Error::Conflict("the wipe has begun".into()));
        }
        if schedule.approval != approval.id {
            // A later request replaced this one (the first expired): approve that one.
            schedule.approval = approval.id;
        }
        schedule.approved_by = Some(caller.user());
        write_schedule(&*self.system, &schedule, Some(version)).await?;
        Ok(schedule)
    }

    /// Records a new request for an existing schedule (the first one expired).
    pub(crate) async fn rerequest_wipe(&self, approval: ApprovalId) -> Result<()> {
        if let Some((mut schedule, version)) = read_schedule(&*self.system, self.ctx.tenant).await?
        {
            schedule.approval = approval;
            schedule.approved_by = None;
            write_schedule(&*self.system, &schedule, Some(version)).await?;
        }
        Ok(())
    }
}

impl Chat {
    /// Runs every wipe that is due: executes those approved whose time came (unless a hold
    /// stands), and finishes the removal of those whose keys are destroyed. Returns each
    /// workspace's outcome; one that fails is left for the next call.
    ///
    /// # Errors
    /// The store's errors listing the schedules.
    pub async fn run_wipes(&self) -> Result<Vec<(TenantId, Result<WipeSchedule>)>> {
        let ns = wipes()?;
        let mut due = Vec::new();
        let mut rows = self
            .system_store()
            .scan_stream(&ns, KeyRange::all(), ScanOptions::new());
        while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let schedule = codec::decode::<WipeSchedule>(&row.value)?;
            let ready = match schedule.phase {
                WipePhase::Scheduled => {
                    schedule.approved_by.is_some() && schedule.not_before <= self.clock().now()
                }
                WipePhase::Destroying | WipePhase::Removing { .. } => true,
                WipePhase::Done { .. } => false,
            };
            if ready {
                due.push(schedule.tenant);
            }
        }
        drop(rows);
        let mut results = Vec::new();
        for tenant in due {
            results.push((tenant, self.run_wipe(tenant).await));
        }
        Ok(results)
    }

    /// Runs the wipe of `tenant` from where it stands.
    async fn run_wipe(&self, tenant: TenantId) -> Result<WipeSchedule> {
        let system = Arc::clone(self.system_store());
        let (mut schedule, mut version) = read_schedule(&*system, tenant)
            .await?
            .ok_or_else(|| Error::NotFound("wipe".into()))?;
        if schedule.phase == WipePhase::Scheduled {
            (schedule, version) = self.execute_wipe(schedule, version).await?;
        }
        if schedule.phase == WipePhase::Destroying {
            (schedule, version) = self.destroy_keys(schedule, version).await?;
        }
        let names = crate::store::tenant_namespaces();
        let prefix = crate::store::tenant_prefix(tenant);
        let inner = self.inner_store();
        while let WipePhase::Removing { namespace } = schedule.phase {
            let Some(name) = names.get(namespace) else {
                schedule.phase = WipePhase::Done {
                    finished: self.clock().now(),
                };
                version = write_schedule(&*system, &schedule, Some(version)).await?;
                break;
            };
            let raw = Namespace::new(&format!("{prefix}{name}"))?;
            loop {
                let page = inner
                    .scan(
                        &raw,
                        &KeyRange::all(),
                        ScanOptions::new().limit(REMOVE_BATCH),
                    )
                    .await?;
                if page.entries.is_empty() {
                    break;
                }
                let mut batch = Batch::new();
                for entry in &page.entries {
                    batch.delete(&raw, &entry.key);
                }
                inner.commit(batch).await?;
                schedule.removed += page.entries.len() as u64;
            }
            schedule.phase = WipePhase::Removing {
                namespace: namespace + 1,
            };
            version = write_schedule(&*system, &schedule, Some(version)).await?;
        }
        let _ = version;
        Ok(schedule)
    }

    /// The first half of step 4 of the module's docs: the hold check, the record, the final
    /// checkpoints.
    async fn execute_wipe(
        &self,
        mut schedule: WipeSchedule,
        version: u64,
    ) -> Result<(WipeSchedule, u64)> {
        let tenant = schedule.tenant;
        let actor = Actor::System("wipe".into());
        let workspace = self.workspace(tenant).await?;
        if let Err(refused) = workspace.ensure_no_hold().await {
            let event = AuditEvent::new(AuditEventKind::WipeExecuted, actor, self.clock().now())
                .tenant(tenant)
                .target("workspace")
                .outcome(Outcome::Denied)
                .detail("reason", "legal_hold")?;
            self.audit_sink().append(event).await?;
            return Err(refused);
        }
        let event = AuditEvent::new(
            AuditEventKind::WipeExecuted,
            actor.clone(),
            self.clock().now(),
        )
        .tenant(tenant)
        .target("workspace")
        .detail("scheduled_by", schedule.scheduled_by.to_string())?
        .detail(
            "approved_by",
            schedule
                .approved_by
                .map(|u| u.to_string())
                .unwrap_or_default(),
        )?;
        self.audit_sink().append(event).await?;
        let mut checkpoints = Vec::new();
        for kind in [AuditLogKind::Compliance, AuditLogKind::Security] {
            let log = AuditLogId {
                tenant: Some(tenant),
                kind,
            };
            checkpoints.push(self.audit_logs().checkpoint(log).await?);
        }
        schedule.checkpoints = checkpoints;
        schedule.phase = WipePhase::Destroying;
        let version =
            write_schedule(self.system_store().as_ref(), &schedule, Some(version)).await?;
        Ok((schedule, version))
    }

    /// The keys destroyed (from that moment nothing of the workspace opens anywhere), the
    /// workspace closed and unlisted. Idempotent.
    async fn destroy_keys(
        &self,
        mut schedule: WipeSchedule,
        version: u64,
    ) -> Result<(WipeSchedule, u64)> {
        let tenant = schedule.tenant;
        let destroyed = self
            .keyring()
            .destroy_tenant(&tenant.to_string())
            .await
            .map_err(|e| Error::Unavailable {
                message: "the workspace's keys could not be destroyed; the wipe runs again".into(),
                source: Some(Box::new(e)),
            })?;
        schedule.unreadable_at = Some(self.clock().now());
        // Key versions made under the deployment's shared KMS key (before workspaces had their
        // own) still unwrap from a copy of the key records: then this says no.
        schedule.kms_key_destroyed = destroyed.kms_key_destroyed && destroyed.shared_versions == 0;
        schedule.phase = WipePhase::Removing { namespace: 0 };
        let version =
            write_schedule(self.system_store().as_ref(), &schedule, Some(version)).await?;
        self.forget_workspace(tenant).await?;
        // The recovery kit must no longer hold the destroyed key: old backups then stay
        // unreadable through the recovery path too.
        if let Some(backups) = self.deployment_backups() {
            backups.after_keys_destroyed().await?;
        }
        Ok((schedule, version))
    }
}

/// Runs [`Chat::run_wipes`] every `every`, logging what each pass did, until the task is
/// aborted or the runtime stops.
pub fn spawn_wipes(chat: Arc<Chat>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match chat.run_wipes().await {
                Ok(results) => {
                    for (tenant, result) in results {
                        match result {
                            Ok(s) => {
                                tracing::info!(%tenant, phase = ?s.phase, removed = s.removed, "wipe ran")
                            }
                            Err(e) => {
                                tracing::warn!(%tenant, error = %e, "wipe failed; the next pass resumes it")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "wipe pass could not list the schedules"),
            }
        }
    })
}
