//! Why the server stopped with an error.

use std::net::SocketAddr;

use crate::deployment::DeploymentError;

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
