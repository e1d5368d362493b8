//! # zt-chat-server
//!
//! The reference chat server of zt: it shows the zt crates composed into a running service. It
//! opens the deployment (the embedded sled store behind encryption at rest, the local KMS, the
//! server identity key), keeps the audit trail with checkpoints signed by that key, runs the
//! zt-chat service over it (see [`deployment::Deployment::chat_deps`]), and serves:
//! - the HTTP API under `/api/v1` ([`api`]), with its OpenAPI document;
//! - the realtime stream over a Noise XK channel (`zt_crypto::channel`) inside a WebSocket
//!   ([`realtime`]);
//! - the same API inside that channel ([`tunnel`]): what the reference client uses, so it sends
//!   no credential before the server proved its pinned key;
//! - `/healthz`, `/readyz`, `/metrics` ([`metrics`]), `/version`, `/identity`;
//! - optionally over TLS ([`tls`]).
//!
//! The wire types are the `zt-chat-protocol` package's; the client and the `zt-chat` command are
//! the `zt-chat-client` package, which links neither axum nor sled. SCIM and OIDC endpoints
//! arrive with a later issue.
//!
//! Offline tools, for a stopped server: `zt-chat-server audit verify` checks every audit log (see
//! [`audit`]); `zt-chat-server data verify` checks every workspace's messages and files (see
//! [`data`]); `zt-chat-server identity show` prints the identity's fingerprint and keys (see
//! [`identity`]).
//!
//! Settings come from flags, then `ZT_*` environment variables, then an optional TOML file, then
//! defaults (see [`config`]).

#![warn(
    clippy::wildcard_enum_match_arm,
    clippy::match_wildcard_for_single_variants,
    reason = "a wildcard arm over zt's own enums hides the variants added later"
)]

pub mod api;
pub mod audit;
pub mod backup;
pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod data;
pub mod deployment;
mod error;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod realtime;
mod routes;
mod server;
mod state;
pub mod tls;
pub mod tunnel;
mod views;

pub use error::ServerError;
pub use identity::{AUDIT_ORIGIN, IdentityInfo, signed_identity};
pub use server::{router, serve};
pub use state::{AppState, Realtime};
