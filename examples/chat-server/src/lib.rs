//! # zt-chat-server
//!
//! The reference chat server of zt: it shows the zt crates composed into a running service. This
//! cut opens the deployment (the embedded sled store behind encryption at rest, the local KMS,
//! the server identity key), keeps the audit trail with checkpoints signed by that key, runs the
//! zt-chat service over it (see [`deployment::Deployment::chat_deps`]), and serves health,
//! version and identity endpoints; the chat API, admin API, SCIM and OIDC
//! endpoints arrive with later issues, each as a module of `routes`.
//!
//! Offline tools, for a stopped server: `zt-chat-server audit verify` checks every audit log (see
//! [`audit`]); `zt-chat-server identity show` prints the identity's fingerprint and keys (see
//! [`identity`]).
//!
//! Settings come from flags, then `ZT_*` environment variables, then an optional TOML file, then
//! defaults (see [`config`]).

pub mod api;
pub mod audit;
pub mod bootstrap;
pub mod client;
pub mod config;
pub mod deployment;
pub mod identity;
pub mod metrics;
pub mod noise;
pub mod realtime;
mod routes;
mod server;
pub mod tls;

pub use server::{
    AUDIT_ORIGIN, AppState, IdentityInfo, Realtime, ServerError, router, serve, signed_identity,
};
