//! Wiring: state, router, and the serve loop with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::sync::watch;
use zt_audit::trail::{AuditConfig, AuditTrail};
use zt_chat::{Chat, ChatConfig};
use zt_core::{Actor, AuditEvent, AuditEventKind, AuditSink, Clock, InProcessBus, SystemClock};

use crate::api::types::IdentityView;
use crate::config::Settings;
use crate::deployment::{Deployment, OpenMode};
use crate::error::ServerError;
use crate::identity::{AUDIT_ORIGIN, checkpoint_signer, signed_identity};
use crate::metrics::{CountingSink, Metrics};
use crate::routes;
use crate::state::AppState;
use crate::tls::TlsListener;

/// How long shutdown waits for realtime clients to be told and let go.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP routes of the server.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let app = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/version", get(routes::version))
        .route("/identity", get(routes::identity))
        .route("/api/v1/realtime", get(crate::realtime::upgrade))
        .with_state(state.clone())
        .merge(crate::api::router(state.clone()))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&metrics),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn(client_address));
    // The tunnel hands its requests to the router above, so they meet the same layers.
    let tunnel = crate::tunnel::Tunnel {
        state,
        app: app.clone(),
    };
    app.route(
        zt_chat_protocol::tunnel::TUNNEL_PATH,
        get(crate::tunnel::upgrade).with_state(tunnel).route_layer(
            axum::middleware::from_fn_with_state(metrics, crate::metrics::track),
        ),
    )
}

/// Runs the request with its client address as the source of every audit event it records
/// (`zt_chat::source`).
async fn client_address(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let address = crate::api::client_addr(request.extensions());
    zt_chat::source::with_client_address(address, next.run(request)).await
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
    );
    let chat = Chat::new(
        deps,
        ChatConfig {
            scim_rate: zt_chat::ScimRate {
                per_second: settings.limits.per_scim_key_per_second,
                burst: settings.limits.per_scim_key_burst,
            },
            retention: zt_chat::RetentionConfig {
                floor: Duration::from_secs(settings.retention.floor_secs),
                ..zt_chat::RetentionConfig::default()
            },
            wipe_delay_floor: Duration::from_secs(settings.retention.wipe_delay_floor_secs),
            ..ChatConfig::default()
        },
    )
    .map_err(|e| ServerError::Chat(e.to_string()))?;
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
    // Backups are managed from the default workspace: a backup holds every workspace.
    let chat = match &settings.backups {
        Some(backups) => chat
            .with_backups(zt_chat::BackupSettings {
                dir: backups.dir.clone(),
                recovery: backups.recovery.clone(),
                kms: deployment.kms(),
                signer: Arc::new(deployment.identity().signing_key()),
                operators: default_workspace,
            })
            .map_err(|e| ServerError::Chat(e.to_string()))?,
        None => chat,
    };
    let chat = match &settings.updates {
        Some(updates) => chat.with_updates(zt_chat::updates::UpdateSettings {
            release_key: updates.release_key,
            product: "zt".into(),
            running: env!("CARGO_PKG_VERSION").into(),
            operators: default_workspace,
        }),
        None => chat,
    };
    let chat = Arc::new(chat);
    // Scheduled backups: the schedule (set through the API) is looked at every minute.
    let scheduled_backups = chat.deployment_backups().map(|backups| {
        zt_chat::backups::spawn_backups(Arc::clone(backups), Duration::from_secs(60))
    });
    // Retention runs over every workspace on the schedule; a run cut short by the stop is
    // resumed by the next start's first run.
    let retention = zt_chat::retention::spawn_retention(
        Arc::clone(&chat),
        Duration::from_secs(settings.retention.interval_secs),
    );
    // Wipes that are approved and due run on the same schedule; one cut short is resumed.
    let wipes = zt_chat::wipe::spawn_wipes(
        Arc::clone(&chat),
        Duration::from_secs(settings.retention.interval_secs),
    );
    let mut state = AppState::new(
        deployment.system_store(),
        identity,
        deployment.channel_key().clone(),
        chat,
        Arc::clone(&audit),
        Some(default_workspace),
        &settings.limits,
        metrics,
    );
    state.release_manifest = settings.updates.as_ref().map(|u| u.manifest.clone());
    let realtime = Arc::clone(&state.realtime);
    let metrics = Arc::clone(&state.metrics);
    let connections = settings.connections;
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
            // No retention batch or manifest after the last checkpoint.
            retention.abort();
            wipes.abort();
            if let Some(backups) = scheduled_backups {
                backups.abort();
            }
            tracing::info!(
                connections = realtime.active.load(Ordering::Relaxed),
                "shutting down: closing realtime connections"
            );
            let _ = realtime.stop.send(true);
        }
    };
    let served = async move {
        let open = Arc::clone(&metrics.connections);
        let served = match tls {
            None => {
                crate::connections::serve(listener, app, connections, open, shutdown).await;
                Ok(())
            }
            Some(config) => match TlsListener::new(listener, config) {
                Ok(listener) => {
                    crate::connections::serve(listener, app, connections, open, shutdown).await;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while realtime.active.load(Ordering::Relaxed) + realtime.tunnels.load(Ordering::Relaxed)
                > 0
            {
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
