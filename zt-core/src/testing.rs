//! Test doubles of zt-core's ports (feature `testing`): audit sinks that keep or drop events.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditEventKind, AuditReceipt, AuditSink};
use crate::error::Result;

/// Keeps every event it is given, in order.
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
pub struct RecordingSink(Mutex<Vec<AuditEvent>>);

impl RecordingSink {
    /// Every event so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The kinds of every event so far.
    pub fn kinds(&self) -> Vec<AuditEventKind> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|e| e.kind)
            .collect()
    }
}

#[async_trait]
impl AuditSink for RecordingSink {
    async fn append(&self, event: AuditEvent) -> Result<AuditReceipt> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Ok(AuditReceipt::default())
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
