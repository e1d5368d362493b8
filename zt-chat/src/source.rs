//! The client address of the request being served, on every audit event it causes.
//!
//! Only the embedder knows where a request came from. It runs each request's work inside
//! [`with_client_address`]; every audit event recorded meanwhile, by zt-chat, zt-authz or
//! zt-core (users, sessions, role grants), gets that address as its `source` unless it names one
//! already. The deployment's sink is wrapped for this in [`Deps`](crate::Deps), so no embedder's
//! sink has to know. Sign-in takes the address explicitly as well ([`crate::Workspace::login`]).
//!
//! ```
//! # tokio_test_block_on(async {
//! use zt_chat::source::{client_address, with_client_address};
//!
//! let addr = "203.0.113.5".parse().unwrap();
//! let seen = with_client_address(Some(addr), async { client_address() }).await;
//! assert_eq!(seen, Some(addr));
//! assert_eq!(client_address(), None, "outside the scope, none");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use zt_core::{AuditEvent, AuditReceipt, AuditSink};

tokio::task_local! {
    static CLIENT_ADDRESS: IpAddr;
}

/// Runs `work` with `address` as the client address of every audit event it records (nothing
/// changes when `address` is `None`).
pub async fn with_client_address<F: Future>(address: Option<IpAddr>, work: F) -> F::Output {
    match address {
        Some(address) => CLIENT_ADDRESS.scope(address, work).await,
        None => work.await,
    }
}

/// The client address of the work running now, if an embedder gave one.
pub fn client_address() -> Option<IpAddr> {
    CLIENT_ADDRESS.try_with(|address| *address).ok()
}

/// A sink that fills in the client address of the work running now.
pub(crate) struct SourcedSink(pub(crate) Arc<dyn AuditSink>);

#[async_trait]
impl AuditSink for SourcedSink {
    async fn append(&self, event: AuditEvent) -> zt_core::Result<AuditReceipt> {
        let event = match (event.source, client_address()) {
            (None, Some(address)) => event.source(address),
            _ => event,
        };
        self.0.append(event).await
    }
}
