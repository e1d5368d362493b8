//! The channel directory admin area (`manage_channel_directory`): which public channels the
//! directory (`GET /api/v1/channels`) shows to those who are not members.
//!
//! Segmentation holds here as everywhere: the area lists the channels the administrator can see
//! (public ones, and the private ones they are a member of), never another's private channel.

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_core::ChannelId;

use super::Authed;
use super::error::{ApiResult, AuthErrors, ErrorBody};
use super::types::{ChannelView, parse_id};

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
pub(crate) async fn channels(authed: Authed) -> ApiResult<Json<Vec<ChannelView>>> {
    let channels = authed
        .workspace
        .admin_channel_directory(&authed.caller)
        .await?;
    Ok(Json(
        channels
            .into_iter()
            .map(crate::views::channel_view)
            .collect(),
    ))
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
    authed: Authed,
    Path(channel): Path<String>,
    body: Result<Json<Listing>, JsonRejection>,
) -> ApiResult<Json<ChannelView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Json(listing) = body?;
    let info = authed
        .workspace
        .set_listed(&authed.caller, channel, listing.listed)
        .await?;
    Ok(Json(crate::views::channel_view(info)))
}
