//! Groups: public, private and hidden ones, their members and their linked channels.

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_authz::{GroupVisibility, MentionPolicy};
use zt_chat::{GroupInfo, GroupUpdate};
use zt_core::{ChannelId, GroupId, UserId};

use super::Authed;
use super::error::{ApiResult, AuthErrors, ErrorBody};
use super::types::parse_id;

/// Who can see a group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupVisibilityView {
    /// Every member of the workspace.
    Public,
    /// Its members and its managers.
    Private,
    /// Only holders of `view_hidden_groups`; out of listings and mention lookups.
    Hidden,
}

/// Who may mention a group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MentionView {
    /// Anyone who can see it.
    Anyone,
    /// Its members.
    Members,
    /// Holders of `manage_mention_restrictions` over it.
    Managers,
}

/// A group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// Who can see it.
    pub visibility: GroupVisibilityView,
    /// Its parent group.
    pub parent: Option<String>,
    /// Who may mention it.
    pub mention: MentionView,
    /// The channels linked to it (its members are members there).
    pub linked: Vec<String>,
}

fn visibility_view(v: GroupVisibility) -> GroupVisibilityView {
    match v {
        GroupVisibility::Public => GroupVisibilityView::Public,
        GroupVisibility::Private => GroupVisibilityView::Private,
        GroupVisibility::Hidden => GroupVisibilityView::Hidden,
    }
}

fn visibility(v: GroupVisibilityView) -> GroupVisibility {
    match v {
        GroupVisibilityView::Public => GroupVisibility::Public,
        GroupVisibilityView::Private => GroupVisibility::Private,
        GroupVisibilityView::Hidden => GroupVisibility::Hidden,
    }
}

fn mention(m: MentionView) -> MentionPolicy {
    match m {
        MentionView::Anyone => MentionPolicy::Anyone,
        MentionView::Members => MentionPolicy::Members,
        MentionView::Managers => MentionPolicy::Managers,
    }
}

impl From<GroupInfo> for GroupView {
    fn from(g: GroupInfo) -> Self {
        GroupView {
            id: g.id.to_string(),
            name: g.name,
            visibility: visibility_view(g.visibility),
            parent: g.parent.map(|p| p.to_string()),
            mention: match g.mention {
                MentionPolicy::Anyone => MentionView::Anyone,
                MentionPolicy::Members => MentionView::Members,
                MentionPolicy::Managers => MentionView::Managers,
            },
            linked: g.linked.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A new group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupRequest {
    /// The name, unique in the workspace: 1 to 64 letters, digits, `-`, `_` and `.`.
    #[schema(pattern = r"^\s*[\w.-]{1,64}\s*$")]
    pub name: String,
    /// Who can see it.
    pub visibility: GroupVisibilityView,
    /// Its parent group.
    #[serde(default)]
    #[schema(pattern = r"^grp_[0-9a-f]{32}$")]
    pub parent: Option<String>,
}

/// What to change in a group (absent: unchanged).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroupRequest {
    /// Who can see it.
    #[serde(default)]
    pub visibility: Option<GroupVisibilityView>,
    /// Who may mention it.
    #[serde(default)]
    pub mention: Option<MentionView>,
}

/// The groups the caller can see (hidden ones only with `view_hidden_groups`).
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The groups", body = Vec<GroupView>),
        AuthErrors,
    )
)]
pub(crate) async fn list(authed: Authed) -> ApiResult<Json<Vec<GroupView>>> {
    let groups = authed.workspace.groups(&authed.caller).await?;
    Ok(Json(groups.into_iter().map(GroupView::from).collect()))
}

/// Creates a group (`create_group`, or a group power over the parent).
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    request_body = NewGroupRequest,
    responses(
        (status = 201, description = "Created", body = GroupView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such parent", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create(
    authed: Authed,
    body: Result<Json<NewGroupRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let Json(request) = body?;
    let parent: Option<GroupId> = request
        .parent
        .as_deref()
        .map(|p| parse_id("parent", p))
        .transpose()?;
    let group = authed
        .workspace
        .create_group(
            &authed.caller,
            &request.name,
            visibility(request.visibility),
            parent,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// One group.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    security(("bearer" = [])),
    params(("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 400, description = "Not a group id", body = ErrorBody),
        (status = 404, description = "No such group the caller can see", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn get_group(
    authed: Authed,
    Path(group): Path<String>,
) -> ApiResult<Json<GroupView>> {
    let id: GroupId = parse_id("group", &group)?;
    Ok(Json(
        authed.workspace.group(&authed.caller, id).await?.into(),
    ))
}

/// Changes a group's visibility or mention policy (a group power over it).
#[utoipa::path(
    patch,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    security(("bearer" = [])),
    params(("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$")),
    request_body = UpdateGroupRequest,
    responses(
        (status = 200, description = "Updated", body = GroupView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group the caller can see", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn update(
    authed: Authed,
    Path(group): Path<String>,
    body: Result<Json<UpdateGroupRequest>, JsonRejection>,
) -> ApiResult<Json<GroupView>> {
    let id: GroupId = parse_id("group", &group)?;
    let Json(request) = body?;
    let update = GroupUpdate {
        visibility: request.visibility.map(visibility),
        mention: request.mention.map(mention),
        ..GroupUpdate::default()
    };
    Ok(Json(
        authed
            .workspace
            .update_group(&authed.caller, id, update)
            .await?
            .into(),
    ))
}

/// Deletes a group (a group power over it).
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    security(("bearer" = [])),
    params(("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a group id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group the caller can see", body = ErrorBody),
        (status = 409, description = "It has subgroups, or changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete(authed: Authed, Path(group): Path<String>) -> ApiResult<StatusCode> {
    let id: GroupId = parse_id("group", &group)?;
    authed.workspace.delete_group(&authed.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn member(authed: &Authed, group: &str, user: &str, add: bool) -> ApiResult<StatusCode> {
    let group: GroupId = parse_id("group", group)?;
    let user: UserId = parse_id("user", user)?;
    authed
        .workspace
        .set_group_member(&authed.caller, group, user, add)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a member by hand (`manage_group_members` over the group).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{group}/members/{user}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Added"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group or user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn add_member(
    authed: Authed,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    member(&authed, &group, &user, true).await
}

/// Removes the manual membership (others, from OIDC or SCIM, remain).
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}/members/{user}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group or user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn remove_member(
    authed: Authed,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    member(&authed, &group, &user, false).await
}

async fn link(authed: &Authed, group: &str, channel: &str, linked: bool) -> ApiResult<StatusCode> {
    let group: GroupId = parse_id("group", group)?;
    let channel: ChannelId = parse_id("channel", channel)?;
    authed
        .workspace
        .link_channel(&authed.caller, group, channel, linked)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Links a channel: the group's members become its members (`manage_linked_channels` over the
/// group and `manage_subscribers` in the channel).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{group}/channels/{channel}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$"),
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Linked"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group or channel", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn link_channel(
    authed: Authed,
    Path((group, channel)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    link(&authed, &group, &channel, true).await
}

/// Unlinks a channel.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}/channels/{channel}",
    tag = "groups",
    security(("bearer" = [])),
    params(
        ("group" = String, Path, description = "The group's id", pattern = "^grp_[0-9a-f]{32}$"),
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such group or channel", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn unlink_channel(
    authed: Authed,
    Path((group, channel)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    link(&authed, &group, &channel, false).await
}
