//! What the keyring reports, as audit events: a KMS outage (`kms.unavailable`), the recovery
//! from one (`kms.recovered`), and a destroyed scope key (`key.destroyed`, the proof that a
//! crypto-shredding happened). A deployment runs [`record_keyring_events`] beside its keyring.

use tokio::sync::mpsc;
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Clock, Outcome, TenantId};
use zt_crypto::KeyringEvent;

/// The audit event for one keyring event, at `clock`'s now, by `system:keyring`; `None` for an
/// event kind this version does not record (logged). A destroyed key of a tenant is recorded in
/// that tenant's logs, its target the scope (`channel/chn_…`).
///
/// # Errors
/// [`zt_core::Error::InvalidInput`] when a detail is refused (an error text that looks like a
/// secret).
pub fn keyring_audit_event(
    event: KeyringEvent,
    clock: &dyn Clock,
) -> zt_core::Result<Option<AuditEvent>> {
    let actor = Actor::System("keyring".into());
    let recorded = match event {
        KeyringEvent::KmsOutage { error } => {
            AuditEvent::new(AuditEventKind::KmsUnavailable, actor, clock.now())
                .outcome(Outcome::Failure)
                .detail("error", error)?
        }
        KeyringEvent::KmsRecovered => {
            AuditEvent::new(AuditEventKind::KmsRecovered, actor, clock.now())
        }
        KeyringEvent::ScopeKeyDestroyed { tenant, scope } => {
            let mut recorded = AuditEvent::new(AuditEventKind::KeyDestroyed, actor, clock.now());
            match tenant.parse::<TenantId>() {
                Ok(id) => {
                    recorded = recorded.tenant(id).target(scope);
                }
                // A deployment-wide scope (such as the system store's): its own name.
                Err(_) => recorded = recorded.target(format!("{tenant}/{scope}")),
            }
            recorded
        }
        other => {
            tracing::info!(event = ?other, "keyring event not audited");
            return Ok(None);
        }
    };
    Ok(Some(recorded))
}

/// Records every keyring event in `sink` until the keyring (the sender) is dropped. A record
/// that cannot be written is logged: while the KMS is out, the audit log (encrypted too) may not
/// be writable either.
pub async fn record_keyring_events(
    sink: &dyn AuditSink,
    mut events: mpsc::UnboundedReceiver<KeyringEvent>,
    clock: &dyn Clock,
) {
    while let Some(event) = events.recv().await {
        let outcome = match keyring_audit_event(event, clock) {
            Ok(Some(recorded)) => sink.append(recorded).await.map(|_| ()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "cannot record a keyring event in the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_core::{ManualClock, Timestamp};

    #[tokio::test]
    async fn every_keyring_event_is_recorded_and_a_tenants_destroyed_key_in_its_logs() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_764_400_000_000));
        let tenant = TenantId::from_bytes([9; 16]);
        let sink = zt_core::testing::RecordingSink::default();
        let (tx, rx) = mpsc::unbounded_channel();
        for event in [
            KeyringEvent::KmsOutage {
                error: "connection refused".into(),
            },
            KeyringEvent::KmsRecovered,
            KeyringEvent::ScopeKeyDestroyed {
                tenant: tenant.to_string(),
                scope: "channel/chn_01".into(),
            },
            KeyringEvent::ScopeKeyDestroyed {
                tenant: "system".into(),
                scope: "backup".into(),
            },
        ] {
            tx.send(event).unwrap();
        }
        drop(tx);
        record_keyring_events(&sink, rx, &clock).await;
        let events = sink.events();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                AuditEventKind::KmsUnavailable,
                AuditEventKind::KmsRecovered,
                AuditEventKind::KeyDestroyed,
                AuditEventKind::KeyDestroyed
            ]
        );
        assert_eq!(events[0].outcome, Outcome::Failure);
        assert_eq!(events[2].tenant, Some(tenant));
        assert_eq!(events[2].target.as_deref(), Some("channel/chn_01"));
        assert_eq!(events[3].tenant, None);
        assert_eq!(events[3].target.as_deref(), Some("system/backup"));
    }
}
