//! The server settings admin area (`manage_server_settings`): what this server runs with.
//!
//! The settings come from the settings file and the command line (`serve --print-config` shows
//! them in the file's format); they change there, at the next start. This area shows an
//! administrator the values in force without access to the host.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Authed;
use super::error::{ApiResult, AuthErrors, ErrorBody};
use crate::state::AppState;
use zt_chat::AdminArea;

/// The settings in force.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServerSettings {
    /// The server's version.
    pub version: String,
    /// The longest message body, in bytes.
    pub max_message_bytes: u64,
    /// The largest file, in bytes.
    pub max_file_bytes: u64,
    /// How many events a realtime client may fall behind before it is disconnected.
    pub realtime_queue: u64,
    /// The API's rate limits.
    pub rate_limits: RateLimitSettings,
}

/// The API's rate limits (`[limits]` in the settings file).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RateLimitSettings {
    /// Requests per second a client address may sustain.
    pub per_address_per_second: f64,
    /// Requests an address may send at once.
    pub per_address_burst: f64,
    /// Requests per second a user may sustain.
    pub per_user_per_second: f64,
    /// Requests a user may send at once.
    pub per_user_burst: f64,
}

/// The server settings in force (`manage_server_settings`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/server",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = ServerSettings),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn settings(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<ServerSettings>> {
    authed
        .workspace
        .enter_admin_area(&authed.caller, AdminArea::ServerSettings)
        .await?;
    let chat = state.chat.config();
    let limits = state.limits.settings;
    Ok(Json(ServerSettings {
        version: env!("CARGO_PKG_VERSION").into(),
        max_message_bytes: chat.max_message_bytes as u64,
        max_file_bytes: chat.max_file_bytes,
        realtime_queue: chat.subscriber_queue as u64,
        rate_limits: RateLimitSettings {
            per_address_per_second: limits.per_address_per_second,
            per_address_burst: limits.per_address_burst,
            per_user_per_second: limits.per_user_per_second,
            per_user_burst: limits.per_user_burst,
        },
    }))
}
