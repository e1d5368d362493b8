//! The channel directory admin area (`manage_channel_directory`): which public channels the
//! directory (`GET /api/v1/channels`) shows to those who are not members.
//!
//! Segmentation holds here as everywhere: the area lists the channels the administrator can see
//! (public ones, and the private ones they are a member of), never another's private channel.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_authz::Permission;
use zt_core::{Actor, AuditEvent, AuditEventKind, ChannelId, Clock as _, Detail, SystemClock};

use super::Authed;
use super::admin::admin_area;
use super::error::{ApiResult, AuthErrors, ErrorBody};
use super::types::{ChannelView, parse_id};
use crate::server::AppState;

/// Whether a public channel is listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// `false` leaves it out of the directory for those who are not members.
    pub listed: bool,
}

/// Every channel the administrator can see, listed or not (`manage_channel_directory`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/channels",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The channels", body = Vec<ChannelView>),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn channels(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<ChannelView>>> {
    admin_area(&state, &authed, Permission::ManageChannelDirectory).await?;
    let channels = authed.workspace.directory(&authed.caller).await?;
    Ok(Json(channels.into_iter().map(ChannelView::from).collect()))
}

/// Lists a public channel in the directory or leaves it out (`manage_channel_directory`);
/// recorded as `settings.changed`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/channels/{channel}/listing",
    tag = "admin",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    request_body = Listing,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 400, description = "Malformed request, or not a public channel", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_listing(
    State(state): State<AppState>,
    authed: Authed,
    Path(channel): Path<String>,
    body: Result<Json<Listing>, JsonRejection>,
) -> ApiResult<Json<ChannelView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    admin_area(&state, &authed, Permission::ManageChannelDirectory).await?;
    let Json(listing) = body?;
    let info = authed
        .workspace
        .set_listed(&authed.caller, channel, listing.listed)
        .await?;
    let event = AuditEvent::new(
        AuditEventKind::SettingsChanged,
        Actor::User(authed.caller.user()),
        SystemClock.now(),
    )
    .tenant(authed.workspace.tenant())
    .target("channel_directory")
    .detail("channel", channel.to_string())?
    .detail("listed", Detail::Flag(listing.listed))?;
    state.audit.append(event).await?;
    Ok(Json(ChannelView::from(info)))
}
