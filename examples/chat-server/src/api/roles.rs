//! Roles and their assignments. zt-authz judges every change (the changer's own powers, locked
//! system roles, the last owner, escalation paths); these handlers only translate.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_authz::{Change, Permission, PermissionSet, RoleScope, Scope};
use zt_core::{RoleId, SystemClock};

use super::Authed;
use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::parse_id;
use zt_chat::RoleSummary;

/// A role.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    /// The id.
    pub id: String,
    /// The name, unique in the workspace.
    pub name: String,
    /// `tenant`, `channel` or `group`: where it is assigned.
    pub scope: String,
    /// The permission flags it grants (before cascades).
    pub permissions: Vec<String>,
    /// Whether it is a built-in, locked role.
    pub system: bool,
    /// How many users hold it workspace-wide.
    pub holders: usize,
}

/// A new role.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleRequest {
    /// The name.
    pub name: String,
    /// `tenant`, `channel` or `group`.
    #[schema(pattern = "^(tenant|channel|group)$")]
    pub scope: String,
    /// Permission flag names, such as `post_message`, of the scope's tiers.
    #[schema(value_type = Vec<PermissionName>)]
    pub permissions: Vec<String>,
}

/// The stable name of a permission flag: the document lists every one.
pub struct PermissionName;

impl utoipa::PartialSchema for PermissionName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Permission::ALL.iter().map(|p| p.name())))
            .into()
    }
}

impl ToSchema for PermissionName {}

/// A role's new name and permissions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    /// The name.
    pub name: String,
    /// Permission flag names.
    #[schema(value_type = Vec<PermissionName>)]
    pub permissions: Vec<String>,
}

/// Where an assignment applies.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// `tenant` (default), a channel id (`chn_…`) or a group id (`grp_…`).
    #[serde(default)]
    pub at: Option<String>,
}

fn scope_name(scope: RoleScope) -> &'static str {
    match scope {
        RoleScope::Tenant => "tenant",
        RoleScope::Channel => "channel",
        RoleScope::Group => "group",
    }
}

fn permissions(names: &[String]) -> ApiResult<PermissionSet> {
    let mut set = PermissionSet::default();
    for name in names {
        let permission = Permission::from_name(name)
            .ok_or_else(|| ApiError::invalid("permissions", format!("unknown flag {name:?}")))?;
        set.insert(permission);
    }
    Ok(set)
}

fn at(query: Result<Query<ScopeQuery>, QueryRejection>) -> ApiResult<Scope> {
    let Query(query) = query?;
    match query.at.as_deref() {
        None | Some("tenant") => Ok(Scope::Tenant),
        Some(text) if text.starts_with("chn_") => Ok(Scope::Channel(parse_id("at", text)?)),
        Some(text) if text.starts_with("grp_") => Ok(Scope::Group(parse_id("at", text)?)),
        Some(_) => Err(ApiError::invalid(
            "at",
            "tenant, a channel id or a group id",
        )),
    }
}

fn view(summary: &RoleSummary) -> RoleView {
    let (role, holders) = (&summary.role, summary.holders);
    RoleView {
        id: role.id.to_string(),
        name: role.name.clone(),
        scope: scope_name(role.scope).into(),
        permissions: role
            .permissions
            .iter()
            .map(|p| p.name().to_owned())
            .collect(),
        system: role.system.is_some(),
        holders,
    }
}

/// The workspace's roles (`view_admin_console`).
#[utoipa::path(
    get,
    path = "/api/v1/roles",
    tag = "roles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roles", body = Vec<RoleView>),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn list(authed: Authed) -> ApiResult<Json<Vec<RoleView>>> {
    let roles = authed.workspace.roles(&authed.caller).await?;
    Ok(Json(roles.iter().map(view).collect()))
}

/// Creates a custom role (`manage_roles`; never with powers the caller lacks).
#[utoipa::path(
    post,
    path = "/api/v1/roles",
    tag = "roles",
    security(("bearer" = [])),
    request_body = NewRoleRequest,
    responses(
        (status = 201, description = "Created", body = RoleView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Name taken, or changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create(
    authed: Authed,
    body: Result<Json<NewRoleRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    let Json(request) = body?;
    let scope = match request.scope.as_str() {
        "tenant" => RoleScope::Tenant,
        "channel" => RoleScope::Channel,
        "group" => RoleScope::Group,
        _ => return Err(ApiError::invalid("scope", "tenant, channel or group")),
    };
    let id = RoleId::generate(&SystemClock);
    apply(
        &authed,
        Change::CreateRole {
            id,
            name: request.name,
            scope,
            permissions: permissions(&request.permissions)?,
        },
    )
    .await?;
    let role = authed.workspace.role(&authed.caller, id).await?;
    Ok((StatusCode::CREATED, Json(view(&role))))
}

async fn apply(authed: &Authed, change: Change) -> ApiResult<()> {
    authed
        .workspace
        .change_access(&authed.caller, change)
        .await?;
    Ok(())
}

/// Renames a custom role and sets its permissions (`manage_roles`).
#[utoipa::path(
    put,
    path = "/api/v1/roles/{role}",
    tag = "roles",
    security(("bearer" = [])),
    params(("role" = String, Path, description = "The role's id", pattern = "^rol_[0-9a-f]{32}$")),
    request_body = UpdateRoleRequest,
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted (or a system role)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
        (status = 409, description = "Name taken, or changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn update(
    authed: Authed,
    Path(role): Path<String>,
    body: Result<Json<UpdateRoleRequest>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let id: RoleId = parse_id("role", &role)?;
    let Json(request) = body?;
    apply(
        &authed,
        Change::UpdateRole {
            id,
            name: request.name,
            permissions: permissions(&request.permissions)?,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a custom role nobody holds (`manage_roles`).
#[utoipa::path(
    delete,
    path = "/api/v1/roles/{role}",
    tag = "roles",
    security(("bearer" = [])),
    params(("role" = String, Path, description = "The role's id", pattern = "^rol_[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a role id", body = ErrorBody),
        (status = 403, description = "Not permitted (or a system role)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
        (status = 409, description = "Still assigned, or changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete(authed: Authed, Path(role): Path<String>) -> ApiResult<StatusCode> {
    let id: RoleId = parse_id("role", &role)?;
    apply(&authed, Change::DeleteRole { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assigns a role to a user, workspace-wide or in one channel or group (`manage_roles`, or the
/// scope's own role managers; never beyond the caller's powers).
#[utoipa::path(
    put,
    path = "/api/v1/roles/{role}/holders/{user}",
    tag = "roles",
    security(("bearer" = [])),
    params(
        ("role" = String, Path, description = "The role's id", pattern = "^rol_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
        ScopeQuery,
    ),
    responses(
        (status = 204, description = "Assigned"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such role, user or scope", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn grant(
    authed: Authed,
    Path((role, user)): Path<(String, String)>,
    query: Result<Query<ScopeQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let change = Change::Grant {
        role: parse_id("role", &role)?,
        user: parse_id("user", &user)?,
        at: at(query)?,
    };
    apply(&authed, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a role away (as [`grant`]; the last owner keeps theirs).
#[utoipa::path(
    delete,
    path = "/api/v1/roles/{role}/holders/{user}",
    tag = "roles",
    security(("bearer" = [])),
    params(
        ("role" = String, Path, description = "The role's id", pattern = "^rol_[0-9a-f]{32}$"),
        ("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$"),
        ScopeQuery,
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such role, user or scope", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn revoke(
    authed: Authed,
    Path((role, user)): Path<(String, String)>,
    query: Result<Query<ScopeQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let change = Change::Revoke {
        role: parse_id("role", &role)?,
        user: parse_id("user", &user)?,
        at: at(query)?,
    };
    apply(&authed, change).await?;
    Ok(StatusCode::NO_CONTENT)
}
