//! Wiring: state, router, and the serve loop with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use zt_audit::checkpoint::NoteSigner;
use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_chat::{Chat, ChatConfig};
use zt_core::{
    Actor, AuditEvent, AuditEventKind, AuditSink, Clock, InProcessBus, SystemClock, TenantId,
};
use zt_storage::KvStore;

use crate::api::types::{ChannelKeyView, IdentityView};
use crate::api::{Limiters, Limits};
use crate::config::Settings;
use crate::deployment::{Deployment, DeploymentError, OpenMode};
use crate::metrics::{CountingSink, Metrics};
use crate::routes;
use crate::tls::{ClientAddr, TlsListener};
use zt_crypto::channel::{self as noise, StaticKeypair};

/// How long shutdown waits for realtime clients to be told and let go.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The name the server signs audit checkpoints under, and the origin prefix of its logs.
pub const AUDIT_ORIGIN: &str = "zt/audit";

/// What clients pin: the server identity's public parts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdentityInfo {
    /// `SHA256:` and the unpadded base64 of SHA-256 over the public key.
    pub fingerprint: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// The signed-note verifier key of the audit checkpoints (same key, named [`AUDIT_ORIGIN`]).
    pub audit_key: String,
}

impl IdentityInfo {
    /// The public parts of the deployment's identity.
    ///
    /// # Errors
    /// Only if [`AUDIT_ORIGIN`] were not a valid key name.
    pub fn of(deployment: &Deployment) -> Result<Self, zt_audit::Error> {
        let identity = deployment.identity();
        Ok(IdentityInfo {
            fingerprint: identity.fingerprint(),
            public_key: hex::encode(identity.verifying_key().to_bytes()),
            audit_key: checkpoint_signer(deployment)?.verifier_key(),
        })
    }
}

/// The identity clients pin: [`IdentityInfo`] and the realtime channel key, signed by the
/// identity key.
///
/// # Errors
/// Only if [`AUDIT_ORIGIN`] were not a valid key name.
pub fn signed_identity(deployment: &Deployment) -> Result<IdentityView, zt_audit::Error> {
    let info = IdentityInfo::of(deployment)?;
    let static_key = deployment.channel_key().public();
    let signature = deployment
        .identity()
        .signing_key()
        .sign(&noise::channel_key_message(&static_key));
    Ok(IdentityView {
        fingerprint: info.fingerprint,
        public_key: info.public_key,
        audit_key: info.audit_key,
        channel: ChannelKeyView {
            protocol: noise::PROTOCOL.into(),
            prologue: String::from_utf8_lossy(noise::PROLOGUE).into_owned(),
            static_key: hex::encode(static_key),
            signature: hex::encode(signature),
        },
    })
}

fn checkpoint_signer(deployment: &Deployment) -> Result<NoteSigner, zt_audit::Error> {
    NoteSigner::new(AUDIT_ORIGIN, deployment.identity().signing_key())
}

/// The realtime connections: how many are open, and the signal that tells them to close.
#[derive(Debug)]
pub struct Realtime {
    /// Open connections.
    pub active: Arc<AtomicUsize>,
    /// Set to `true` at shutdown.
    pub stop: watch::Sender<bool>,
    /// The encoding of the latest event, shared by the connections it fans out to.
    pub encoded: crate::realtime::EncodedEvents,
}

impl Realtime {
    /// Realtime state counting open connections in `active`.
    pub fn new(active: Arc<AtomicUsize>) -> Self {
        Realtime {
            active,
            stop: watch::channel(false).0,
            encoded: crate::realtime::EncodedEvents::default(),
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
    /// The audit trail itself, for reading and verifying its logs.
    pub trail: Arc<AuditTrail>,
    /// The workspace sign-in uses when the request names none.
    pub default_workspace: Option<TenantId>,
    /// Rate limiters.
    pub(crate) limits: Arc<Limiters>,
    /// Realtime connections.
    pub realtime: Arc<Realtime>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
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
        trail: Arc<AuditTrail>,
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
            trail,
            default_workspace,
            limits: Arc::new(Limiters::new(limits)),
        }
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory, its keys or its store could not be opened.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The store could not be flushed.
    #[error("storage: {0}")]
    Storage(#[from] zt_storage::Error),
    /// The chat service could not be set up.
    #[error("chat: {0}")]
    Chat(String),
    /// The audit trail could not be set up or written.
    #[error("audit: {0}")]
    Audit(String),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listening socket could not be bound or served.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The HTTP routes of the server.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/version", get(routes::version))
        .route("/identity", get(routes::identity))
        .with_state(state.clone())
        .merge(crate::api::router(state))
        .route_layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

/// Opens the deployment (creating it on first start), serves until `shutdown` completes, then
/// drains requests, signs the last audit checkpoints and closes the store (making every
/// acknowledged write durable). `on_listening` is told the bound address.
pub async fn serve(
    settings: Settings,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let data_dir = &settings.data.data_dir;
    let mut deployment = Deployment::open(
        data_dir,
        &settings.data.passphrase,
        OpenMode::CreateIfMissing,
    )
    .await?;
    if let Some(file) = deployment.generated_passphrase() {
        tracing::warn!(
            file = %file.display(),
            "first start: the KMS passphrase was generated into this file; keep it apart from \
             the data directory and its backups (without it the data cannot be read)"
        );
    }
    let identity = match signed_identity(&deployment) {
        Ok(info) => info,
        Err(e) => {
            deployment.close().await?;
            return Err(ServerError::Audit(e.to_string()));
        }
    };
    tracing::info!(
        data_dir = %data_dir.display(),
        fingerprint = %identity.fingerprint,
        "deployment opened"
    );
    let outcome = run(&mut deployment, identity, &settings, on_listening, shutdown).await;
    tracing::info!("shutting down: flushing the store");
    let closed = deployment.close().await;
    outcome?;
    closed?;
    tracing::info!("store flushed and closed");
    Ok(())
}

async fn run(
    deployment: &mut Deployment,
    identity: IdentityView,
    settings: &Settings,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let clock = SystemClock;
    let signer = checkpoint_signer(deployment).map_err(|e| ServerError::Audit(e.to_string()))?;
    let trail = Arc::new(AuditTrail::new(
        deployment.system_store(),
        signer,
        AuditConfig {
            origin: AUDIT_ORIGIN.into(),
            ..AuditConfig::default()
        },
    ));
    let metrics = Arc::new(Metrics::new(
        Arc::new(AtomicUsize::new(0)),
        deployment.kms_stats(),
    ));
    let audit: Arc<dyn AuditSink> = Arc::new(CountingSink::new(
        Arc::clone(&trail) as Arc<dyn AuditSink>,
        Arc::clone(&metrics),
    ));
    let deps = deployment.chat_deps(
        Arc::clone(&audit),
        Arc::clone(&trail) as Arc<dyn zt_core::AuditLogs>,
        Arc::new(InProcessBus::default()),
    )?;
    let chat = Arc::new(
        Chat::new(deps, ChatConfig::default()).map_err(|e| ServerError::Chat(e.to_string()))?,
    );
    if deployment.identity().was_created() {
        let event = AuditEvent::new(
            AuditEventKind::ServerIdentityCreated,
            Actor::System("server".into()),
            clock.now(),
        )
        .target(identity.fingerprint.clone())
        .detail("public_key", identity.public_key.clone());
        let recorded = match event {
            Ok(event) => audit.append(event).await,
            Err(e) => Err(e),
        };
        recorded.map_err(|e| ServerError::Audit(e.to_string()))?;
    }
    // A bad certificate stops the start before anything listens.
    let tls = match &settings.tls {
        Some(files) => Some(
            crate::tls::server_config(&files.cert, &files.key)
                .map_err(|e| ServerError::Tls(e.to_string()))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    let (default_workspace, password_file) = crate::bootstrap::default_workspace(
        &chat,
        &*deployment.system_store(),
        &settings.data.data_dir,
    )
    .await?;
    if let Some(file) = password_file {
        tracing::warn!(
            workspace = %default_workspace,
            owner = crate::bootstrap::OWNER,
            file = %file.display(),
            "first start: created the default workspace; its owner's password is in this file"
        );
    }
    let state = AppState::new(
        deployment.system_store(),
        identity,
        deployment.channel_key().clone(),
        chat,
        Arc::clone(&audit),
        Arc::clone(&trail),
        Some(default_workspace),
        &settings.limits,
        metrics,
    );
    let realtime = Arc::clone(&state.realtime);
    let app = router(state);
    on_listening(addr);
    let (stop, stopped) = watch::channel(false);
    // Realtime connections are told to close as soon as shutdown begins (they would otherwise
    // hold the drain open); the stop is sent once every request has drained (or serving
    // failed), so the last checkpoint covers what the last requests recorded.
    let shutdown = {
        let realtime = Arc::clone(&realtime);
        async move {
            shutdown.await;
            tracing::info!(
                connections = realtime.active.load(Ordering::Relaxed),
                "shutting down: closing realtime connections"
            );
            let _ = realtime.stop.send(true);
        }
    };
    let served = async move {
        let served = match tls {
            None => {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<ClientAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }
            Some(config) => match TlsListener::new(listener, config) {
                Ok(listener) => {
                    axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<ClientAddr>(),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await
                }
                Err(e) => Err(e),
            },
        };
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while realtime.active.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("realtime connections did not close in time");
        }
        let _ = stop.send(true);
        served
    };
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which is a stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let checkpointer = trail.run_checkpointer(until_stopped(stopped.clone()));
    let keyring_sink = audit;
    let events = deployment.take_keyring_events();
    let keyring_events = async {
        if let Some(events) = events {
            tokio::select! {
                () = zt_audit::keyring::record_keyring_events(&*keyring_sink, events, &clock) => {}
                () = until_stopped(stopped) => {}
            }
        }
    };
    let (served, (), ()) = tokio::join!(served, checkpointer, keyring_events);
    served.map_err(|source| ServerError::Listen { addr, source })
}
