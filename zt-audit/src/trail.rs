//! The audit trail of a deployment: per tenant a security log (always on) and a compliance log
//! (where the deployment enables it), fed by the central classification in zt-core. It is the
//! [`AuditSink`] the other crates emit through.
//!
//! - An event goes to every log its [`AuditClass`](zt_core::AuditClass) names; `append` returns
//!   once it is durable in all of them. With compliance off, compliance-only events are counted
//!   (see [`AuditTrail::compliance_skipped`]), not stored.
//! - Each log signs a checkpoint every [`AuditConfig::checkpoint_every`] entries, at least every
//!   [`AuditConfig::checkpoint_interval`] while it has unsigned entries
//!   ([`AuditTrail::run_checkpointer`]), and on demand ([`AuditTrail::checkpoint`]).
//! - Reading, exporting or verifying a log is itself recorded (`audit.read`, `audit.exported`,
//!   `audit.verification_failed`); when that record cannot be made, the read is refused.
//! - Every log is listed in the `audit` namespace (its namespace, origin and checkpoint key), so
//!   an operator's verifier finds them all.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use zt_audit::checkpoint::NoteSigner;
//! use zt_audit::trail::{AuditConfig, AuditTrail};
//! use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Timestamp};
//! use zt_storage::MemoryStore;
//!
//! let signer = NoteSigner::new("chat.example/audit", zt_crypto::SigningKey::generate())?;
//! let trail = AuditTrail::new(Arc::new(MemoryStore::new()), signer, AuditConfig::default());
//! let at = Timestamp::from_unix_millis(1_764_400_000_000);
//! let receipt = trail
//!     .append(AuditEvent::new(AuditEventKind::LoginFailed, Actor::Anonymous, at))
//!     .await?;
//! assert_eq!((receipt.security, receipt.compliance), (Some(0), None));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use zt_core::{
    Actor, AuditEvent, AuditEventKind, AuditReceipt, AuditSink, Clock, Outcome, SystemClock,
    TenantId,
};
use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt as _, Namespace, ScanOptions};

use crate::checkpoint::{NoteSigner, NoteVerifier};
use crate::entry;
use crate::error::{Error, Result};
use crate::log::AuditLog;
use crate::verify::{Verdict, VerifyOptions, verify_log};

/// The namespace that lists every log: key = the log's namespace, value = its origin, a newline,
/// and its checkpoint verifier key.
pub const REGISTRY: &str = "audit";

/// Which of a tenant's two logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// Attacks, authentication, authorization, key outages, privilege changes. Always on.
    Security,
    /// Data lifecycle and its access, privilege changes. Where the deployment enables it.
    Compliance,
}

impl LogKind {
    fn name(self) -> &'static str {
        match self {
            LogKind::Security => "security",
            LogKind::Compliance => "compliance",
        }
    }
}

/// How the trail behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Whether compliance logs are kept. When off, compliance-only events are counted.
    pub compliance: bool,
    /// Sign a checkpoint whenever a log's size reaches a multiple of this (0: not by count).
    pub checkpoint_every: u64,
    /// How often [`AuditTrail::run_checkpointer`] signs logs with unsigned entries.
    pub checkpoint_interval: Duration,
    /// The origin of every log starts with this, such as `chat.example.com/audit`.
    pub origin: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            compliance: true,
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_secs(60),
            origin: "zt/audit".into(),
        }
    }
}

/// What retention left of one log ([`AuditTrail::retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionStatus {
    /// How many entries the log ever had (its tree size).
    pub size: u64,
    /// The first index it still holds; those below were pruned.
    pub pruned_below: u64,
    /// Whether a legal hold is placed, which refuses pruning.
    pub legal_hold: bool,
}

/// Where a log lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAddress {
    /// The tenant, or `None` for deployment-wide events.
    pub tenant: Option<TenantId>,
    /// Which of its logs.
    pub kind: LogKind,
}

impl LogAddress {
    fn scope(&self) -> String {
        self.tenant
            .map_or_else(|| "system".to_owned(), |t| t.to_string())
    }

    /// The storage namespace: `audit/<tenant or "system">/<kind>`.
    pub fn namespace(&self) -> Namespace {
        // Tenant ids are 36 ASCII characters, so the name is always valid.
        Namespace::new(&format!("audit/{}/{}", self.scope(), self.kind.name()))
            .unwrap_or_else(|_| unreachable_namespace())
    }

    /// The checkpoint origin under `prefix`.
    pub fn origin(&self, prefix: &str) -> String {
        format!("{prefix}/{}/{}", self.scope(), self.kind.name())
    }
}

#[allow(
    clippy::expect_used,
    reason = "a constant, valid namespace name; checked by the unit tests"
)]
fn unreachable_namespace() -> Namespace {
    Namespace::new("audit/invalid").expect("a valid constant namespace")
}

/// A log of the trail: its tenant and kind.
type LogKey = (Option<TenantId>, LogKind);

struct OpenLog {
    log: AuditLog,
    origin: String,
    /// The size of the last checkpoint this process signed.
    signed: u64,
}

/// The audit trail: every tenant's security and compliance logs over one store.
pub struct AuditTrail {
    store: Arc<dyn KvStore>,
    signer: NoteSigner,
    verifier_key: String,
    config: AuditConfig,
    clock: Arc<dyn Clock>,
    logs: StdMutex<HashMap<LogKey, OpenLog>>,
    skipped: StdMutex<HashMap<Option<TenantId>, u64>>,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("config", &self.config)
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

/// zt-audit's error as the `AuditSink` port reports it: the store's own, a temporary failure
/// (also a group commit's) as an unavailable store with the cause kept, the rest as the audit's.
fn to_core(error: Error) -> zt_core::Error {
    match error {
        Error::Storage(e) => zt_core::Error::Storage(e),
        other if other.is_temporary() => zt_core::Error::Storage(zt_storage::Error::unavailable(
            "the audit log's store",
            Some(Box::new(other)),
        )),
        other => zt_core::Error::audit("the audit trail", other),
    }
}

impl AuditTrail {
    /// The trail over `store`, signing checkpoints with `signer`.
    pub fn new(store: Arc<dyn KvStore>, signer: NoteSigner, config: AuditConfig) -> Self {
        AuditTrail {
            verifier_key: signer.verifier_key(),
            store,
            signer,
            config,
            clock: Arc::new(SystemClock),
            logs: StdMutex::default(),
            skipped: StdMutex::default(),
        }
    }

    /// The same trail, timing the events it records itself (reads, exports) by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The key that verifies this trail's checkpoints (signed-note verifier key text).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// How many compliance-only events of `tenant` were counted and not stored because the
    /// compliance log is off (since this trail was created).
    pub fn compliance_skipped(&self, tenant: Option<TenantId>) -> u64 {
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .copied()
            .unwrap_or(0)
    }

    /// The log at `address`, registering it on first use.
    async fn open(&self, address: &LogAddress) -> Result<(AuditLog, String)> {
        let key = (address.tenant, address.kind);
        if let Some(open) = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok((open.log.clone(), open.origin.clone()));
        }
        let namespace = address.namespace();
        let origin = address.origin(&self.config.origin);
        let registry = Namespace::new(REGISTRY)?;
        let listing = format!("{origin}\n{}", self.verifier_key);
        let listed = self
            .store
            .get(&registry, namespace.as_str().as_bytes())
            .await?;
        if listed.as_ref().map(|e| e.value.as_slice()) != Some(listing.as_bytes()) {
            let mut batch = Batch::new();
            batch.put(&registry, namespace.as_str().as_bytes(), listing.as_bytes());
            self.store.commit(batch).await?;
        }
        let log = AuditLog::new(Arc::clone(&self.store), namespace);
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let open = logs.entry(key).or_insert(OpenLog {
            log,
            origin,
            signed: 0,
        });
        Ok((open.log.clone(), open.origin.clone()))
    }

    async fn append_to(&self, address: LogAddress, bytes: Vec<u8>) -> Result<u64> {
        let (log, origin) = self.open(&address).await?;
        let index = log.append(bytes).await?;
        let every = self.config.checkpoint_every;
        if every > 0 && (index + 1) % every == 0 {
            log.checkpoint(&self.signer, &origin).await?;
            self.mark_signed(&address, index + 1);
        }
        Ok(index)
    }

    fn mark_signed(&self, address: &LogAddress, size: u64) {
        if let Some(open) = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&(address.tenant, address.kind))
        {
            open.signed = open.signed.max(size);
        }
    }

    /// Signs a checkpoint of the log at `address` now; returns the signed note.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn checkpoint(&self, address: &LogAddress) -> Result<String> {
        let (log, origin) = self.open(address).await?;
        let note = log.checkpoint(&self.signer, &origin).await?;
        let (size, _) = log.tree_head().await?;
        self.mark_signed(address, size);
        Ok(note)
    }

    /// Signs a checkpoint of every open log that grew since its last one. Returns how many were
    /// signed. [`AuditTrail::run_checkpointer`] calls it on a timer.
    ///
    /// # Errors
    /// The store's errors (the remaining logs are still tried).
    pub async fn checkpoint_due(&self) -> Result<usize> {
        let open: Vec<_> = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, open)| (*key, open.log.clone(), open.signed))
            .collect();
        let (mut signed, mut failure) = (0, None);
        for ((tenant, kind), log, last) in open {
            let outcome = async {
                let (size, _) = log.tree_head().await?;
                if size > last {
                    self.checkpoint(&LogAddress { tenant, kind }).await?;
                    signed += 1;
                }
                Ok::<_, Error>(())
            }
            .await;
            if let Err(e) = outcome {
                failure = Some(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(signed),
        }
    }

    /// Signs due checkpoints every [`AuditConfig::checkpoint_interval`] until `shutdown`
    /// completes, then once more. A failed round is retried at the next tick.
    pub async fn run_checkpointer(&self, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(self.config.checkpoint_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticks.tick() => {
                    // The next tick retries; the failure is the store's, reported by its callers.
                    let _ = self.checkpoint_due().await;
                }
            }
        }
        let _ = self.checkpoint_due().await;
    }

    async fn record_access(
        &self,
        kind: AuditEventKind,
        reader: &Actor,
        address: &LogAddress,
        outcome: Outcome,
        detail: Option<(&str, String)>,
    ) -> Result<()> {
        let mut event = AuditEvent::new(kind, reader.clone(), self.clock.now())
            .target(address.namespace().as_str())
            .outcome(outcome);
        if let Some(tenant) = address.tenant {
            event = event.tenant(tenant);
        }
        if let Some((name, value)) = detail {
            event = event
                .detail(name, value)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
        }
        self.append(event).await.map_err(|e| match e {
            zt_core::Error::Storage(e) => Error::Storage(e),
            other => Error::InvalidInput(other.to_string()),
        })?;
        Ok(())
    }

    /// The events `start..end` of the log at `address`, read by `reader`. The read is recorded
    /// first (`audit.read`); if that fails, nothing is returned.
    ///
    /// # Errors
    /// [`Error::Pruned`] below the prune point, [`Error::OutOfRange`] past the end, a stored entry
    /// that does not decode, and the store's errors.
    pub async fn read(
        &self,
        reader: &Actor,
        address: &LogAddress,
        start: u64,
        end: u64,
    ) -> Result<Vec<AuditEvent>> {
        let range = format!("{start}..{end}");
        self.record_access(
            AuditEventKind::AuditLogRead,
            reader,
            address,
            Outcome::Success,
            Some(("range", range)),
        )
        .await?;
        let (log, _) = self.open(address).await?;
        log.entries(start, end)
            .await?
            .iter()
            .map(|bytes| entry::decode(bytes))
            .collect()
    }

    /// Everything the log at `address` still holds, for `reader`, with a checkpoint signed now
    /// that covers it: the canonical entries from [`AuditExport::first`] on. The export is
    /// recorded first (`audit.exported`).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn export(&self, reader: &Actor, address: &LogAddress) -> Result<AuditExport> {
        self.record_access(
            AuditEventKind::AuditLogExported,
            reader,
            address,
            Outcome::Success,
            None,
        )
        .await?;
        let (log, _) = self.open(address).await?;
        let checkpoint = self.checkpoint(address).await?;
        let size = NoteVerifier::from_verifier_key(&self.verifier_key)?
            .verify(&checkpoint)?
            .size;
        let first = log.pruned_below().await?;
        let entries = log.entries(first, size).await?;
        Ok(AuditExport {
            checkpoint,
            first,
            entries,
        })
    }

    /// Verifies the log at `address` with this trail's key. A failure is recorded in the
    /// security log (`audit.verification_failed`) with the finding.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn verify(&self, verifier: &Actor, address: &LogAddress) -> Result<Verdict> {
        let options = VerifyOptions {
            key: Some(NoteVerifier::from_verifier_key(&self.verifier_key)?),
            trusted: None,
            through: None,
            threads: 0,
        };
        let verdict =
            verify_log(&*self.store, &address.namespace(), &options, &mut |_, _| {}).await?;
        if let Verdict::Invalid(finding) = &verdict {
            self.record_access(
                AuditEventKind::AuditVerificationFailed,
                verifier,
                address,
                Outcome::Failure,
                Some(("finding", finding.to_string())),
            )
            .await?;
        }
        Ok(verdict)
    }

    /// Places or releases a legal hold on both logs of `tenant`, recorded as
    /// `legal_hold.placed` / `legal_hold.released` by `actor`. While it is placed, pruning them is
    /// refused.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn set_legal_hold(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        hold: bool,
    ) -> Result<()> {
        for kind in [LogKind::Security, LogKind::Compliance] {
            let (log, _) = self.open(&LogAddress { tenant, kind }).await?;
            log.set_legal_hold(hold).await?;
        }
        let kind = if hold {
            AuditEventKind::LegalHoldPlaced
        } else {
            AuditEventKind::LegalHoldReleased
        };
        let address = LogAddress {
            tenant,
            kind: LogKind::Security,
        };
        self.record_access(kind, actor, &address, Outcome::Success, None)
            .await
    }

    /// What retention left of the log at `address`: its size, the first index it still holds,
    /// and whether a legal hold is placed on it. Opening a log that was never written creates
    /// it empty.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn retention(&self, address: &LogAddress) -> Result<RetentionStatus> {
        let (log, _) = self.open(address).await?;
        let (size, _) = log.tree_head().await?;
        Ok(RetentionStatus {
            size,
            pruned_below: log.pruned_below().await?,
            legal_hold: log.legal_hold().await?,
        })
    }

    /// Retention: removes the entries of the log at `address` below `below`, keeping every
    /// later proof and every earlier checkpoint verifiable, and records `retention.cleanup` by
    /// `actor` (before pruning, so the record survives it).
    ///
    /// # Errors
    /// [`Error::LegalHold`] while a legal hold is placed (recorded as a denied cleanup);
    /// [`Error::OutOfRange`] beyond the log; the store's errors.
    pub async fn prune(&self, actor: &Actor, address: &LogAddress, below: u64) -> Result<()> {
        let (log, _) = self.open(address).await?;
        let held = log.legal_hold().await?;
        let outcome = if held {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        self.record_access(
            AuditEventKind::RetentionCleanup,
            actor,
            address,
            outcome,
            Some(("below", below.to_string())),
        )
        .await?;
        if held {
            return Err(Error::LegalHold);
        }
        log.prune(below).await
    }

    /// The logs listed in `store`'s registry: (namespace, origin, verifier key).
    ///
    /// # Errors
    /// The store's errors; [`Error::Corrupt`] for a damaged listing.
    pub async fn listed(store: &dyn KvStore) -> Result<Vec<(Namespace, String, String)>> {
        let registry = Namespace::new(REGISTRY)?;
        let mut out = Vec::new();
        let mut records = store.scan_stream(&registry, KeyRange::all(), ScanOptions::new());
        while let Some(record) = records.try_next().await? {
            let damaged = || Error::Corrupt("an audit registry record is damaged".into());
            let name = String::from_utf8(record.key).map_err(|_| damaged())?;
            let text = String::from_utf8(record.value).map_err(|_| damaged())?;
            let (origin, key) = text.split_once('\n').ok_or_else(damaged)?;
            out.push((
                Namespace::new(&name).map_err(|_| damaged())?,
                origin.to_owned(),
                key.to_owned(),
            ));
        }
        Ok(out)
    }
}

/// What [`AuditTrail::export`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditExport {
    /// A checkpoint (signed note) over the log including every exported entry.
    pub checkpoint: String,
    /// The index of the first exported entry (the prune point).
    pub first: u64,
    /// The canonical entries, in order.
    pub entries: Vec<Vec<u8>>,
}

#[async_trait]
impl AuditSink for AuditTrail {
    async fn append(&self, event: AuditEvent) -> zt_core::Result<AuditReceipt> {
        let class = event.kind.class();
        let bytes = entry::encode(&event);
        let tenant = event.tenant;
        let compliance = class.compliance() && self.config.compliance;
        if class.compliance() && !self.config.compliance && !class.security() {
            *self
                .skipped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(tenant)
                .or_insert(0) += 1;
        }
        let security_log = LogAddress {
            tenant,
            kind: LogKind::Security,
        };
        let compliance_log = LogAddress {
            tenant,
            kind: LogKind::Compliance,
        };
        let (security, compliance) = match (class.security(), compliance) {
            (true, true) => {
                let (s, c) = tokio::join!(
                    self.append_to(security_log, bytes.clone()),
                    self.append_to(compliance_log, bytes)
                );
                (Some(s.map_err(to_core)?), Some(c.map_err(to_core)?))
            }
            (true, false) => (
                Some(self.append_to(security_log, bytes).await.map_err(to_core)?),
                None,
            ),
            (false, true) => (
                None,
                Some(
                    self.append_to(compliance_log, bytes)
                        .await
                        .map_err(to_core)?,
                ),
            ),
            (false, false) => (None, None),
        };
        Ok(AuditReceipt {
            security,
            compliance,
        })
    }
}

impl From<zt_core::AuditLogId> for LogAddress {
    fn from(log: zt_core::AuditLogId) -> Self {
        LogAddress {
            tenant: log.tenant,
            kind: match log.kind {
                zt_core::AuditLogKind::Security => LogKind::Security,
                zt_core::AuditLogKind::Compliance => LogKind::Compliance,
            },
        }
    }
}

/// zt-audit's errors as the port reports them: what the caller asked wrongly is invalid input,
/// a legal hold is a conflict, the store's errors stay the store's, the rest is the audit's.
fn to_port(error: Error) -> zt_core::Error {
    match error.kind() {
        crate::ErrorKind::LegalHold => zt_core::Error::Conflict(error.to_string()),
        crate::ErrorKind::InvalidInput
        | crate::ErrorKind::Pruned
        | crate::ErrorKind::OutOfRange => zt_core::Error::InvalidInput(error.to_string()),
        _ => to_core(error),
    }
}

impl AuditTrail {
    async fn page(
        &self,
        reader: &Actor,
        address: &LogAddress,
        range: zt_core::AuditRange,
    ) -> Result<zt_core::AuditLogPage> {
        let (log, _) = self.open(address).await?;
        let (size, _) = log.tree_head().await?;
        let pruned_below = log.pruned_below().await?;
        let (from, limit) = match range {
            zt_core::AuditRange::Newest { limit } => {
                (size.saturating_sub(limit).max(pruned_below), limit)
            }
            zt_core::AuditRange::From { from, limit } => {
                if from < pruned_below || from > size {
                    return Err(Error::InvalidInput(format!(
                        "index {from} is outside the log, which holds {pruned_below}..{size}"
                    )));
                }
                (from, limit)
            }
        };
        let to = from.saturating_add(limit).min(size);
        self.record_access(
            AuditEventKind::AuditLogRead,
            reader,
            address,
            Outcome::Success,
            Some(("range", format!("{from}..{to}"))),
        )
        .await?;
        let mut events = Vec::new();
        for (index, bytes) in (from..to).zip(log.entries(from, to).await?) {
            events.push((index, entry::decode(&bytes)?));
        }
        Ok(zt_core::AuditLogPage {
            size,
            pruned_below,
            events,
            checkpoint: log.latest_checkpoint().await?,
        })
    }
}

/// The trail is the deployment's [`zt_core::AuditLogs`]: pages read only the entries they
/// return, with the newest checkpoint already signed (the checkpointer keeps it fresh), and each
/// read is recorded as `audit.read` with its range.
#[async_trait]
impl zt_core::AuditLogs for AuditTrail {
    async fn read(
        &self,
        reader: &Actor,
        log: zt_core::AuditLogId,
        range: zt_core::AuditRange,
    ) -> zt_core::Result<zt_core::AuditLogPage> {
        self.page(reader, &log.into(), range).await.map_err(to_port)
    }

    async fn verify(
        &self,
        verifier: &Actor,
        log: zt_core::AuditLogId,
    ) -> zt_core::Result<zt_core::AuditLogVerdict> {
        let verdict = AuditTrail::verify(self, verifier, &log.into())
            .await
            .map_err(to_port)?;
        Ok(match verdict {
            Verdict::Valid(report) => zt_core::AuditLogVerdict::Valid { size: report.size },
            Verdict::Invalid(finding) => zt_core::AuditLogVerdict::Invalid {
                finding: finding.to_string(),
            },
        })
    }

    async fn retention(
        &self,
        log: zt_core::AuditLogId,
    ) -> zt_core::Result<zt_core::AuditRetention> {
        let status = AuditTrail::retention(self, &log.into())
            .await
            .map_err(to_port)?;
        Ok(zt_core::AuditRetention {
            size: status.size,
            pruned_below: status.pruned_below,
            legal_hold: status.legal_hold,
        })
    }

    async fn set_legal_hold(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        hold: bool,
    ) -> zt_core::Result<()> {
        AuditTrail::set_legal_hold(self, actor, tenant, hold)
            .await
            .map_err(to_port)
    }

    async fn prune(
        &self,
        actor: &Actor,
        log: zt_core::AuditLogId,
        below: u64,
    ) -> zt_core::Result<()> {
        // The clean-up is recorded before anything else, also when it is refused.
        AuditTrail::prune(self, actor, &LogAddress::from(log), below)
            .await
            .map_err(to_port)
    }

    async fn checkpoint(&self, log: zt_core::AuditLogId) -> zt_core::Result<String> {
        AuditTrail::checkpoint(self, &LogAddress::from(log))
            .await
            .map_err(to_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_a_valid_namespace() {
        for tenant in [None, Some(TenantId::from_bytes([0xff; 16]))] {
            for kind in [LogKind::Security, LogKind::Compliance] {
                let address = LogAddress { tenant, kind };
                assert_ne!(address.namespace().as_str(), "audit/invalid");
            }
        }
        let _ = unreachable_namespace();
    }
}
