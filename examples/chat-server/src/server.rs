//! Wiring: state, router, and the serve loop with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use zt_storage::{KvStore, SledConfig, SledStore};

use crate::config::Settings;
use crate::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store every service persists through.
    pub store: Arc<dyn KvStore>,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or flushed.
    #[error("storage: {0}")]
    Storage(#[from] zt_storage::Error),
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
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/version", get(routes::version))
        .with_state(state)
}

/// Opens the store, serves until `shutdown` completes, then drains requests and closes the store
/// (making every acknowledged write durable). `on_listening` is told the bound address.
pub async fn serve(
    settings: Settings,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = SledStore::open(SledConfig::new(&settings.data_dir)).await?;
    tracing::info!(data_dir = %settings.data_dir.display(), "store opened");
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        });
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            store.close().await?;
            return Err(e);
        }
    };
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    on_listening(addr);
    let app = router(AppState {
        store: Arc::new(store.clone()),
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServerError::Listen { addr, source });
    tracing::info!("shutting down: flushing the store");
    let closed = store.close().await;
    served?;
    closed?;
    tracing::info!("store flushed and closed");
    Ok(())
}
