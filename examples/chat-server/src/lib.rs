//! # zt-chat-server
//!
//! The reference chat server of zt: it shows the zt crates composed into a running service. This
//! first cut opens the embedded sled store and serves health and version endpoints; the chat API,
//! admin API, SCIM and OIDC endpoints arrive with later issues, each as a module of `routes`.
//!
//! `zt-chat-server audit verify --data-dir DIR` checks every audit log of a stopped server (see
//! [`audit`]).
//!
//! Settings come from flags, then `ZT_*` environment variables, then an optional TOML file, then
//! defaults (see [`config`]).

pub mod audit;
pub mod config;
mod routes;
mod server;

pub use server::{AppState, ServerError, router, serve};
