//! What every handler can reach: the application state of a running server, apart from the
//! serve loop that builds it.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::watch;
use zt_chat::Chat;
use zt_core::{AuditSink, TenantId};
use zt_crypto::channel::StaticKeypair;
use zt_storage::KvStore;

use zt_chat_protocol::views::IdentityView;

use crate::limits::{Limiters, Limits};
use crate::metrics::Metrics;

/// The realtime connections: how many are open, and the signal that tells them to close.
#[derive(Debug)]
pub struct Realtime {
    /// Open connections.
    pub active: Arc<AtomicUsize>,
    /// Open API tunnels ([`crate::tunnel`]); they close at shutdown too.
    pub tunnels: Arc<AtomicUsize>,
    /// Set to `true` at shutdown.
    pub stop: watch::Sender<bool>,
    /// The encoding of the latest event, shared by the connections it fans out to.
    pub encoded: crate::views::EncodedEvents,
}

impl Realtime {
    /// Realtime state counting open connections in `active`.
    pub fn new(active: Arc<AtomicUsize>) -> Self {
        Realtime {
            active,
            tunnels: Arc::new(AtomicUsize::new(0)),
            stop: watch::channel(false).0,
            encoded: crate::views::EncodedEvents::default(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The encrypted store of deployment-wide data.
    pub store: Arc<dyn KvStore>,
    /// The server identity's public parts and signed channel key.
    pub identity: Arc<IdentityView>,
    /// The realtime channel's static key.
    pub channel_key: Arc<StaticKeypair>,
    /// The chat service.
    pub chat: Arc<Chat>,
    /// Where security events of the transport go (the audit trail).
    pub audit: Arc<dyn AuditSink>,
    /// The workspace sign-in uses when the request names none.
    pub default_workspace: Option<TenantId>,
    /// Rate limiters.
    pub(crate) limits: Arc<Limiters>,
    /// Realtime connections.
    pub realtime: Arc<Realtime>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The release manifest file update checks read (`[updates] manifest`).
    pub release_manifest: Option<std::path::PathBuf>,
}

impl AppState {
    /// The state of a server over these parts, with `limits`; its realtime connections are
    /// counted in `metrics`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; a builder would add nothing"
    )]
    pub fn new(
        store: Arc<dyn KvStore>,
        identity: IdentityView,
        channel_key: StaticKeypair,
        chat: Arc<Chat>,
        audit: Arc<dyn AuditSink>,
        default_workspace: Option<TenantId>,
        limits: &Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        AppState {
            realtime: Arc::new(Realtime::new(Arc::clone(&metrics.realtime))),
            metrics,
            store,
            identity: Arc::new(identity),
            channel_key: Arc::new(channel_key),
            chat,
            audit,
            default_workspace,
            limits: Arc::new(Limiters::new(limits)),
            release_manifest: None,
        }
    }
}
