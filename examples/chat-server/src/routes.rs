//! HTTP routes. Each later API (chat, admin, SCIM, OIDC) gets a function here returning its
//! `Router`, merged in [`crate::router`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use zt_storage::Namespace;

use crate::api::types::IdentityView;
use crate::state::AppState;

/// `GET /healthz`: 200 when the store answers a read, 503 otherwise (with the error's kind only).
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let probe = match Namespace::new("health") {
        Ok(ns) => state.store.get(&ns, b"probe").await.map(|_| ()),
        Err(e) => Err(e),
    };
    match probe {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": format!("{:?}", e.kind()) })),
            )
        }
    }
}

/// `GET /readyz`: 200 when the server takes traffic: not shutting down, and the server identity
/// reads back through the encrypting store (so the store answers and the keyring can open what it
/// sealed: the KMS was reachable when its data key was last unwrapped). 503 otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if *state.realtime.stop.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting_down" })),
        );
    }
    let probe = match Namespace::new(zt_core::identity::SERVER_IDENTITY) {
        Ok(ns) => {
            state
                .store
                .get(&ns, zt_core::identity::SERVER_IDENTITY_KEY)
                .await
        }
        Err(e) => Err(e),
    };
    match probe {
        Ok(Some(_)) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": "no server identity" })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": format!("{:?}", e.kind()) })),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text exposition (see [`crate::metrics`]).
pub(crate) async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /version`.
pub(crate) async fn version() -> Json<Value> {
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /identity`: the server identity's fingerprint, public key and audit checkpoint key, for
/// clients to pin on first use and auditors to verify checkpoints with.
pub(crate) async fn identity(State(state): State<AppState>) -> Json<IdentityView> {
    Json((*state.identity).clone())
}
