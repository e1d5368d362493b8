//! What every identity service of one tenant works with.

use std::fmt;
use std::sync::Arc;

use zt_storage::KvStore;

use crate::audit::{Actor, AuditEvent, AuditEventKind, AuditSink};
use crate::bus::EventBus;
use crate::clock::Clock;
use crate::error::Result;
use crate::ids::TenantId;

/// One tenant's store (its `EncryptingStore`, blinding
/// [`BLINDED_NAMESPACES`](super::BLINDED_NAMESPACES)) and the ports: clock, audit sink, event
/// bus. Cheap to clone.
#[derive(Clone)]
pub struct TenantContext {
    /// The tenant's store.
    pub store: Arc<dyn KvStore>,
    /// The tenant.
    pub tenant: TenantId,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where audit events go.
    pub audit: Arc<dyn AuditSink>,
    /// Where changes are announced.
    pub bus: Arc<dyn EventBus>,
}

impl fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantContext")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl TenantContext {
    /// An audit event of this tenant, now.
    pub(crate) fn event(&self, kind: AuditEventKind, actor: Actor) -> AuditEvent {
        AuditEvent::new(kind, actor, self.clock.now()).tenant(self.tenant)
    }

    /// Records `event`.
    pub(crate) async fn record(&self, event: AuditEvent) -> Result<()> {
        self.audit.append(event).await?;
        Ok(())
    }
}
