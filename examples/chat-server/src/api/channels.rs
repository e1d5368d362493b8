//! Channels, their members and their messages.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use zt_authz::ChannelVisibility;
use zt_chat::{ChannelUpdate, Mention, PageRequest};
use zt_core::{ChannelId, GroupId, MessageId, UserId};

use super::Authed;
use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::{
    ChannelUpdateRequest, ChannelView, EditMessageRequest, MessagePageView, MessageView,
    NewChannelRequest, NewMessageRequest, PageQuery, Visibility, parse_id,
};

/// The default page size.
const DEFAULT_PAGE: u32 = 50;

/// The channels the caller can see: its own, and the public ones it may browse.
#[utoipa::path(
    get,
    path = "/api/v1/channels",
    tag = "channels",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The channels", body = Vec<ChannelView>),
        AuthErrors,
    )
)]
pub(crate) async fn directory(authed: Authed) -> ApiResult<Json<Vec<ChannelView>>> {
    let channels = authed.workspace.directory(&authed.caller).await?;
    Ok(Json(
        channels
            .into_iter()
            .map(crate::views::channel_view)
            .collect(),
    ))
}

/// Creates a channel; the caller becomes its member and admin.
#[utoipa::path(
    post,
    path = "/api/v1/channels",
    tag = "channels",
    security(("bearer" = [])),
    request_body = NewChannelRequest,
    responses(
        (status = 201, description = "Created", body = ChannelView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create(
    authed: Authed,
    body: Result<Json<NewChannelRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let Json(request) = body?;
    let visibility = match request.visibility {
        Visibility::Public => ChannelVisibility::Public,
        Visibility::Private => ChannelVisibility::Private,
    };
    let channel = authed
        .workspace
        .create_channel(&authed.caller, &request.name, visibility, &request.topic)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::views::channel_view(channel)),
    ))
}

/// One channel.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}",
    tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 400, description = "Not a channel id", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn get_channel(
    authed: Authed,
    Path(channel): Path<String>,
) -> ApiResult<Json<ChannelView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let info = authed.workspace.channel(&authed.caller, channel).await?;
    Ok(Json(crate::views::channel_view(info)))
}

/// Renames, retitles, archives or unarchives a channel: the fields given change together, each
/// under its own permission, all checked first.
#[utoipa::path(
    patch,
    path = "/api/v1/channels/{channel}",
    tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    request_body = ChannelUpdateRequest,
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 400, description = "Malformed request, or nothing to change", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        (status = 409, description = "Name taken, or changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn update_channel(
    authed: Authed,
    Path(channel): Path<String>,
    body: Result<Json<ChannelUpdateRequest>, JsonRejection>,
) -> ApiResult<Json<ChannelView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Json(request) = body?;
    let update = ChannelUpdate {
        name: request.name,
        topic: request.topic,
        archived: request.archived,
    };
    let info = authed
        .workspace
        .update_channel(&authed.caller, channel, update)
        .await?;
    Ok(Json(crate::views::channel_view(info)))
}

/// Deletes a channel (`delete_channel`): its key is destroyed, so every message and file of it
/// becomes unreadable at once (crypto-shredding), recorded as `key.destroyed`.
#[utoipa::path(
    delete,
    path = "/api/v1/channels/{channel}",
    tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a channel id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        (status = 409, description = "Changed meanwhile, or a legal hold keeps some of its content", body = ErrorBody),
        (status = 503, description = "The key could not be destroyed yet; retry", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete_channel(
    authed: Authed,
    Path(channel): Path<String>,
) -> ApiResult<StatusCode> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    authed
        .workspace
        .delete_channel(&authed.caller, channel)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a member: oneself to a public channel, anyone with `manage_subscribers`.
#[utoipa::path(
    put,
    path = "/api/v1/channels/{channel}/members/{user}",
    tag = "channels",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel or user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn add_member(
    authed: Authed,
    Path((channel, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let user: UserId = parse_id("user", &user)?;
    authed
        .workspace
        .add_member(&authed.caller, channel, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member: oneself always, others with `manage_subscribers`.
#[utoipa::path(
    delete,
    path = "/api/v1/channels/{channel}/members/{user}",
    tag = "channels",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel or user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn remove_member(
    authed: Authed,
    Path((channel, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let user: UserId = parse_id("user", &user)?;
    authed
        .workspace
        .remove_member(&authed.caller, channel, user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of a channel's messages, oldest first, with cursors.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/messages",
    tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"), PageQuery),
    responses(
        (status = 200, description = "The page", body = MessagePageView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn messages(
    authed: Authed,
    Path(channel): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<MessagePageView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Query(query) = query?;
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_PAGE))
        .map_err(|_| ApiError::invalid("limit", "too large"))?;
    let page = match (query.before, query.after) {
        (None, None) => PageRequest::Latest { limit },
        (Some(before), None) => PageRequest::Before {
            id: parse_id("before", &before)?,
            limit,
        },
        (None, Some(after)) => PageRequest::After {
            id: parse_id("after", &after)?,
            limit,
        },
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "before",
                "give before or after, not both",
            ));
        }
    };
    let page = authed
        .workspace
        .messages(&authed.caller, channel, page)
        .await?;
    Ok(Json(crate::views::page_view(page)))
}

fn mention(text: &str) -> ApiResult<Mention> {
    if let Ok(user) = text.parse::<UserId>() {
        Ok(Mention::User(user))
    } else if let Ok(group) = text.parse::<GroupId>() {
        Ok(Mention::Group(group))
    } else {
        Err(ApiError::invalid("mentions", "each is a user or group id"))
    }
}

/// Posts a message.
#[utoipa::path(
    post,
    path = "/api/v1/channels/{channel}/messages",
    tag = "channels",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    request_body = NewMessageRequest,
    responses(
        (status = 201, description = "Posted", body = MessageView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        (status = 409, description = "Archived channel", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn post_message(
    authed: Authed,
    Path(channel): Path<String>,
    body: Result<Json<NewMessageRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Json(request) = body?;
    let thread: Option<MessageId> = request
        .thread
        .as_deref()
        .map(|t| parse_id("thread", t))
        .transpose()?;
    let mentions = request
        .mentions
        .iter()
        .map(|m| mention(m))
        .collect::<ApiResult<Vec<_>>>()?;
    let message = authed
        .workspace
        .post(&authed.caller, channel, &request.body, thread, &mentions)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::views::message_view(&message)),
    ))
}

/// Edits one's own message.
#[utoipa::path(
    patch,
    path = "/api/v1/channels/{channel}/messages/{message}",
    tag = "channels",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("message" = String, Path, description = "The message's id", pattern = "^msg_[0-9a-f]{32}$"),
    ),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "Edited", body = MessageView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such message the caller can see", body = ErrorBody),
        (status = 409, description = "Deleted, archived, or edited meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn edit_message(
    authed: Authed,
    Path((channel, message)): Path<(String, String)>,
    body: Result<Json<EditMessageRequest>, JsonRejection>,
) -> ApiResult<Json<MessageView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let message: MessageId = parse_id("message", &message)?;
    let Json(request) = body?;
    let edited = authed
        .workspace
        .edit(&authed.caller, channel, message, &request.body)
        .await?;
    Ok(Json(crate::views::message_view(&edited)))
}

/// Deletes a message, leaving a tombstone.
#[utoipa::path(
    delete,
    path = "/api/v1/channels/{channel}/messages/{message}",
    tag = "channels",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("message" = String, Path, description = "The message's id", pattern = "^msg_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 200, description = "Deleted: the tombstone", body = MessageView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such message the caller can see", body = ErrorBody),
        (status = 409, description = "Archived channel", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete_message(
    authed: Authed,
    Path((channel, message)): Path<(String, String)>,
) -> ApiResult<Json<MessageView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let message: MessageId = parse_id("message", &message)?;
    let tombstone = authed
        .workspace
        .delete_message(&authed.caller, channel, message)
        .await?;
    Ok(Json(crate::views::message_view(&tombstone)))
}
