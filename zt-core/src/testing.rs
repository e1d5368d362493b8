//! Test doubles of zt-core's ports (feature `testing`): audit sinks that keep or drop events,
//! and that serve them back through [`AuditLogs`].

pub mod oidc;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::audit::{Actor, AuditEvent, AuditEventKind, AuditReceipt, AuditSink, Outcome};
use crate::audit_logs::{
    AuditLogId, AuditLogKind, AuditLogPage, AuditLogVerdict, AuditLogs, AuditRange, AuditRetention,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::TenantId;

/// Keeps every event it is given, in order. As [`AuditLogs`] it serves them back per tenant and
/// log (an event is in a log when its classification sends it there), keeps legal holds and prune
/// points, and records each access as the contract says. It holds no hash chain, so its `verify`
/// checks nothing and answers valid: it is a test double, never an audit log.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use zt_core::testing::RecordingSink;
/// use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Timestamp};
///
/// let sink = RecordingSink::default();
/// sink.append(AuditEvent::new(AuditEventKind::Logout, Actor::Anonymous, Timestamp::EPOCH)).await?;
/// assert_eq!(sink.kinds(), [AuditEventKind::Logout]);
/// # Ok::<_, zt_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct RecordingSink(Mutex<Recorded>);

#[derive(Debug, Default)]
struct Recorded {
    events: Vec<AuditEvent>,
    pruned_below: HashMap<AuditLogId, u64>,
    held: HashSet<Option<TenantId>>,
}

impl Recorded {
    fn log(&self, log: AuditLogId) -> Vec<&AuditEvent> {
        self.events
            .iter()
            .filter(|e| {
                let class = e.kind.class();
                e.tenant == log.tenant
                    && match log.kind {
                        AuditLogKind::Security => class.security(),
                        AuditLogKind::Compliance => class.compliance(),
                    }
            })
            .collect()
    }

    fn record(&mut self, kind: AuditEventKind, actor: &Actor, log: AuditLogId, outcome: Outcome) {
        let mut event = AuditEvent::new(kind, actor.clone(), Timestamp::EPOCH)
            .target(format!("audit:{}", log.kind.name()))
            .outcome(outcome);
        event.tenant = log.tenant;
        self.events.push(event);
    }
}

impl RecordingSink {
    fn state(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.state().events.clone()
    }

    /// The kinds of every event so far.
    pub fn kinds(&self) -> Vec<AuditEventKind> {
        self.state().events.iter().map(|e| e.kind).collect()
    }
}

#[async_trait]
impl AuditSink for RecordingSink {
    async fn append(&self, event: AuditEvent) -> Result<AuditReceipt> {
        self.state().events.push(event);
        Ok(AuditReceipt::default())
    }
}

#[async_trait]
impl AuditLogs for RecordingSink {
    async fn read(
        &self,
        reader: &Actor,
        log: AuditLogId,
        range: AuditRange,
    ) -> Result<AuditLogPage> {
        let mut state = self.state();
        state.record(AuditEventKind::AuditLogRead, reader, log, Outcome::Success);
        let events = state.log(log);
        let size = events.len() as u64;
        let pruned_below = state.pruned_below.get(&log).copied().unwrap_or(0);
        let (from, limit) = match range {
            AuditRange::Newest { limit } => (size.saturating_sub(limit).max(pruned_below), limit),
            AuditRange::From { from, limit } if from >= pruned_below && from <= size => {
                (from, limit)
            }
            AuditRange::From { .. } => {
                return Err(Error::InvalidInput(format!(
                    "the log holds {pruned_below}..{size}"
                )));
            }
        };
        let to = from.saturating_add(limit).min(size);
        let events = (from..to)
            .zip(
                events
                    .iter()
                    .skip(usize::try_from(from).unwrap_or(usize::MAX)),
            )
            .map(|(i, e)| (i, (*e).clone()))
            .collect();
        Ok(AuditLogPage {
            size,
            pruned_below,
            events,
            checkpoint: None,
        })
    }

    async fn verify(&self, _: &Actor, log: AuditLogId) -> Result<AuditLogVerdict> {
        Ok(AuditLogVerdict::Valid {
            size: self.state().log(log).len() as u64,
        })
    }

    async fn retention(&self, log: AuditLogId) -> Result<AuditRetention> {
        let state = self.state();
        Ok(AuditRetention {
            size: state.log(log).len() as u64,
            pruned_below: state.pruned_below.get(&log).copied().unwrap_or(0),
            legal_hold: state.held.contains(&log.tenant),
        })
    }

    async fn set_legal_hold(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        hold: bool,
    ) -> Result<()> {
        let mut state = self.state();
        if hold {
            state.held.insert(tenant);
        } else {
            state.held.remove(&tenant);
        }
        let kind = if hold {
            AuditEventKind::LegalHoldPlaced
        } else {
            AuditEventKind::LegalHoldReleased
        };
        let log = AuditLogId {
            tenant,
            kind: AuditLogKind::Security,
        };
        state.record(kind, actor, log, Outcome::Success);
        Ok(())
    }

    async fn prune(&self, actor: &Actor, log: AuditLogId, below: u64) -> Result<()> {
        let mut state = self.state();
        let held = state.held.contains(&log.tenant);
        let outcome = if held {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        state.record(AuditEventKind::RetentionCleanup, actor, log, outcome);
        if held {
            return Err(Error::Conflict("a legal hold is placed".into()));
        }
        if below > state.log(log).len() as u64 {
            return Err(Error::InvalidInput("beyond the end of the log".into()));
        }
        let point = state.pruned_below.entry(log).or_insert(0);
        *point = (*point).max(below);
        Ok(())
    }

    /// Not signed: a note naming the log and its size, so a test sees that one was asked for
    /// and over how many entries.
    async fn checkpoint(&self, log: AuditLogId) -> Result<String> {
        let size = self.state().log(log).len();
        Ok(format!("recorded checkpoint of {log:?}: size {size}"))
    }
}

/// Drops every event: for benchmarks and examples about something else. Never in a deployment.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

#[async_trait]
impl AuditSink for NullSink {
    async fn append(&self, _: AuditEvent) -> Result<AuditReceipt> {
        Ok(AuditReceipt::default())
    }
}

/// Every log is empty and stays so; holds and prunes are accepted and forgotten.
#[async_trait]
impl AuditLogs for NullSink {
    async fn read(&self, _: &Actor, _: AuditLogId, _: AuditRange) -> Result<AuditLogPage> {
        Ok(AuditLogPage {
            size: 0,
            pruned_below: 0,
            events: Vec::new(),
            checkpoint: None,
        })
    }

    async fn verify(&self, _: &Actor, _: AuditLogId) -> Result<AuditLogVerdict> {
        Ok(AuditLogVerdict::Valid { size: 0 })
    }

    async fn retention(&self, _: AuditLogId) -> Result<AuditRetention> {
        Ok(AuditRetention {
            size: 0,
            pruned_below: 0,
            legal_hold: false,
        })
    }

    async fn set_legal_hold(&self, _: &Actor, _: Option<TenantId>, _: bool) -> Result<()> {
        Ok(())
    }

    async fn prune(&self, _: &Actor, _: AuditLogId, below: u64) -> Result<()> {
        if below == 0 {
            Ok(())
        } else {
            Err(Error::InvalidInput("beyond the end of the log".into()))
        }
    }

    async fn checkpoint(&self, log: AuditLogId) -> Result<String> {
        Ok(format!("null checkpoint of {log:?}: size 0"))
    }
}
