//! The HTTP API under `/api/v1`: thin handlers that authenticate the bearer token, call zt-chat
//! (which authorizes through zt-authz) and translate its answers. Its OpenAPI document is
//! generated from these handlers and served at `/api/v1/openapi.json`.
//!
//! - Every route but sign-in, the identity and the document itself needs
//!   `Authorization: Bearer <token>`; the token names its workspace (`tnt_….<secret>`).
//! - Errors are one JSON shape, [`ErrorBody`], with the status of their kind.
//! - Bodies are JSON with unknown fields refused and a size limit; requests are rate-limited per
//!   client address and per user.

pub mod admin;
pub mod backups;
mod channels;
pub mod directory;
mod error;
pub mod files;
pub mod groups;
mod links;
pub mod privacy;
pub mod roles;
pub mod scim;
pub mod server_settings;
mod sessions;
mod sso;
pub mod types;
mod users;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use links::Links;
use zt_chat::{Caller, Workspace};
use zt_core::identity::SessionToken;
use zt_core::{Actor, AuditEvent, AuditEventKind, Clock as _, Outcome, SystemClock, TenantId};

pub use crate::limits::{Limits, REPORT_WINDOW, RateLimiter, Refusal};
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};

use crate::state::AppState;

/// The largest JSON request body, in bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// The separator between the workspace and the session secret in a bearer token.
const TOKEN_SEPARATOR: char = '.';

/// The bearer token a client sends: its workspace and its session token.
pub(crate) fn bearer_token(tenant: TenantId, token: &SessionToken) -> String {
    format!("{tenant}{TOKEN_SEPARATOR}{}", token.expose())
}

/// Splits a bearer token into its workspace and session token.
pub(crate) fn parse_bearer(text: &str) -> Option<(TenantId, SessionToken)> {
    let (tenant, secret) = text.split_once(TOKEN_SEPARATOR)?;
    if secret.is_empty() || secret.len() > 128 {
        return None;
    }
    Some((tenant.parse().ok()?, SessionToken::from_presented(secret)))
}

/// An authenticated request: the caller, its workspace and its token.
pub(crate) struct Authed {
    pub(crate) workspace: Arc<Workspace>,
    pub(crate) caller: Caller,
    pub(crate) token: SessionToken,
}

/// The workspace and live session of a bearer token.
pub(crate) async fn authenticate(
    state: &AppState,
    bearer: &str,
) -> ApiResult<(Arc<Workspace>, Caller, SessionToken)> {
    let (tenant, token) = parse_bearer(bearer).ok_or_else(ApiError::unauthenticated)?;
    let workspace = match state.chat.workspace(tenant).await {
        Ok(w) => w,
        Err(zt_chat::Error::NotFound(_)) => return Err(ApiError::unauthenticated()),
        Err(e) => return Err(e.into()),
    };
    let caller = workspace.authenticate(&token).await?;
    Ok((workspace, caller, token))
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        let (workspace, caller, token) = authenticate(state, bearer.trim()).await?;
        if let Err(refusal) = state.limits.per_user.check(caller.user()) {
            if refusal.report {
                let event = AuditEvent::new(
                    AuditEventKind::RateLimited,
                    Actor::User(caller.user()),
                    SystemClock.now(),
                )
                .tenant(workspace.tenant())
                .target("user")
                .outcome(Outcome::Denied);
                report_rate_limit(state, event, client_addr(&parts.extensions)).await;
            }
            return Err(refusal.into());
        }
        Ok(Authed {
            workspace,
            caller,
            token,
        })
    }
}

/// The client's address, when the server was started with connection info (tests that call the
/// router directly have none).
pub(crate) fn client_addr(parts_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    parts_extensions
        .get::<ConnectInfo<crate::tls::ClientAddr>>()
        .map(|ConnectInfo(crate::tls::ClientAddr(addr))| addr.ip())
}

async fn limit_per_address(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(addr) = client_addr(request.extensions())
        && let Err(refusal) = state.limits.per_address.check(addr)
    {
        if refusal.report {
            let event = AuditEvent::new(
                AuditEventKind::RateLimited,
                Actor::Anonymous,
                SystemClock.now(),
            )
            .target("address")
            .outcome(Outcome::Denied);
            report_rate_limit(&state, event, Some(addr)).await;
        }
        return ApiError::from(refusal).into_response();
    }
    next.run(request).await
}

/// Audits a key's first refusal in a window ([`REPORT_WINDOW`]).
async fn report_rate_limit(state: &AppState, event: AuditEvent, source: Option<IpAddr>) {
    let event = match source {
        Some(source) => event.source(source),
        None => event,
    };
    if let Err(e) = state.audit.append(event).await {
        tracing::error!(error = %e, "cannot audit a rate limit");
    }
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "zt chat server", description = "The reference chat server of zt."),
    paths(
        sessions::identity,
        sessions::login,
        sessions::list,
        sessions::logout,
        sessions::revoke,
        users::me,
        users::update_me,
        users::change_password,
        users::find,
        users::create,
        channels::directory,
        channels::create,
        channels::get_channel,
        channels::update_channel,
        channels::delete_channel,
        channels::add_member,
        channels::remove_member,
        channels::messages,
        channels::post_message,
        channels::edit_message,
        channels::delete_message,
        groups::list,
        groups::create,
        groups::get_group,
        groups::update,
        groups::delete,
        groups::add_member,
        groups::remove_member,
        groups::link_channel,
        groups::unlink_channel,
        files::upload,
        files::info,
        files::download,
        files::delete,
        roles::list,
        roles::create,
        roles::update,
        roles::delete,
        roles::grant,
        roles::revoke,
        admin::users,
        admin::deactivate,
        admin::reactivate,
        admin::unlock,
        admin::reset_password,
        admin::revoke_sessions,
        admin::delete_user,
        admin::authentication,
        admin::set_authentication,
        admin::encryption,
        admin::audit,
        admin::verify_audit,
        server_settings::settings,
        privacy::status,
        privacy::set_legal_hold,
        privacy::prune,
        privacy::retention,
        privacy::set_retention,
        privacy::set_channel_retention,
        privacy::clear_channel_retention,
        privacy::run_retention,
        privacy::holds,
        privacy::place_hold,
        privacy::release_hold,
        privacy::approvals,
        privacy::approve,
        privacy::authored_content,
        privacy::set_authored_content,
        privacy::wipe,
        privacy::schedule_wipe,
        privacy::cancel_wipe,
        privacy::storage,
        privacy::clean_up_storage,
        backups::backups,
        backups::create_backup,
        backups::verify_backup,
        backups::delete_backup,
        backups::rotate_backup_key,
        backups::schedule,
        backups::set_schedule,
        backups::recovery_status,
        backups::check_updates,
        backups::rotate_workspace_key,
        backups::rotate_kms_key,
        directory::channels,
        directory::set_listing,
        scim::keys,
        scim::create_key,
        scim::rotate_key,
        scim::revoke_key,
        sso::start,
        sso::callback,
        sso::backchannel_logout,
        sso::device_start,
        sso::device_poll,
        sso::logout,
        sso::providers,
        sso::set_provider,
        sso::remove_provider,
        sso::sign_in_settings,
        sso::set_sign_in_settings,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerScheme, &Links),
    tags(
        (name = "sessions", description = "Sign-in, sign-out and sessions"),
        (name = "sso", description = "Single sign-on through a workspace's OpenID providers"),
        (name = "users", description = "Users of a workspace"),
        (name = "channels", description = "Channels, their members and messages"),
        (name = "groups", description = "Groups, their members and linked channels"),
        (name = "files", description = "Files in channels, streamed"),
        (name = "roles", description = "Roles and their holders"),
        (name = "admin", description = "Administration areas, each with its own permission"),
    )
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn no_route() -> ApiError {
    ApiError::not_found("route")
}

async fn no_method() -> ApiError {
    ApiError::method_not_allowed()
}

/// The routes under `/api/v1`.
pub(crate) fn router(state: AppState) -> Router {
    let state_for_scim = state.clone();
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/identity", get(sessions::identity))
        .route("/sessions", post(sessions::login).get(sessions::list))
        .route("/sessions/current", delete(sessions::logout))
        .route("/sessions/{id}", delete(sessions::revoke))
        .route("/sso/{workspace}/{provider}/start", get(sso::start))
        .route("/sso/{workspace}/{provider}/callback", get(sso::callback))
        .route(
            "/sso/{workspace}/{provider}/backchannel-logout",
            post(sso::backchannel_logout),
        )
        .route(
            "/sso/{workspace}/{provider}/device",
            post(sso::device_start),
        )
        .route("/sso/{workspace}/device/poll", post(sso::device_poll))
        .route("/sso/logout/{provider}", post(sso::logout))
        .route("/admin/sso/providers", get(sso::providers))
        .route(
            "/admin/sso/providers/{name}",
            put(sso::set_provider).delete(sso::remove_provider),
        )
        .route(
            "/admin/sign-in",
            get(sso::sign_in_settings).put(sso::set_sign_in_settings),
        )
        .route("/users", get(users::find).post(users::create))
        .route("/users/me", get(users::me).patch(users::update_me))
        .route("/users/me/password", put(users::change_password))
        .route("/channels", get(channels::directory).post(channels::create))
        .route(
            "/channels/{channel}",
            get(channels::get_channel)
                .patch(channels::update_channel)
                .delete(channels::delete_channel),
        )
        .route(
            "/channels/{channel}/members/{user}",
            put(channels::add_member).delete(channels::remove_member),
        )
        .route(
            "/channels/{channel}/messages",
            get(channels::messages).post(channels::post_message),
        )
        .route(
            "/channels/{channel}/messages/{message}",
            axum::routing::patch(channels::edit_message).delete(channels::delete_message),
        )
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{group}",
            get(groups::get_group)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/groups/{group}/members/{user}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route(
            "/groups/{group}/channels/{channel}",
            put(groups::link_channel).delete(groups::unlink_channel),
        )
        .route(
            "/channels/{channel}/files",
            // The upload streams its body; zt-chat enforces the file size limit.
            post(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/channels/{channel}/files/{file}",
            get(files::info).delete(files::delete),
        )
        .route(
            "/channels/{channel}/files/{file}/content",
            get(files::download),
        )
        .route("/roles", get(roles::list).post(roles::create))
        .route("/roles/{role}", put(roles::update).delete(roles::delete))
        .route(
            "/roles/{role}/holders/{user}",
            put(roles::grant).delete(roles::revoke),
        )
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{user}", delete(admin::delete_user))
        .route("/admin/users/{user}/deactivate", post(admin::deactivate))
        .route("/admin/users/{user}/reactivate", post(admin::reactivate))
        .route("/admin/users/{user}/unlock", post(admin::unlock))
        .route("/admin/users/{user}/password", put(admin::reset_password))
        .route(
            "/admin/users/{user}/sessions",
            delete(admin::revoke_sessions),
        )
        .route(
            "/admin/authentication",
            get(admin::authentication).put(admin::set_authentication),
        )
        .route("/admin/encryption", get(admin::encryption))
        .route("/admin/scim/keys", get(scim::keys).post(scim::create_key))
        .route("/admin/scim/keys/{id}", delete(scim::revoke_key))
        .route("/admin/scim/keys/{id}/rotate", post(scim::rotate_key))
        .route("/admin/audit/{log}", get(admin::audit))
        .route("/admin/audit/{log}/verify", post(admin::verify_audit))
        .route("/admin/server", get(server_settings::settings))
        .route("/admin/privacy", get(privacy::status))
        .route("/admin/privacy/legal-hold", put(privacy::set_legal_hold))
        .route("/admin/privacy/audit/{log}/prune", post(privacy::prune))
        .route(
            "/admin/privacy/retention",
            get(privacy::retention).put(privacy::set_retention),
        )
        .route(
            "/admin/privacy/retention/channels/{channel}",
            put(privacy::set_channel_retention).delete(privacy::clear_channel_retention),
        )
        .route("/admin/privacy/retention/run", post(privacy::run_retention))
        .route(
            "/admin/privacy/holds",
            get(privacy::holds).post(privacy::place_hold),
        )
        .route("/admin/privacy/holds/{hold}", delete(privacy::release_hold))
        .route(
            "/admin/privacy/authored-content",
            get(privacy::authored_content).put(privacy::set_authored_content),
        )
        .route(
            "/admin/privacy/wipe",
            get(privacy::wipe)
                .post(privacy::schedule_wipe)
                .delete(privacy::cancel_wipe),
        )
        .route(
            "/admin/backups",
            get(backups::backups).post(backups::create_backup),
        )
        .route("/admin/backups/key", post(backups::rotate_backup_key))
        .route(
            "/admin/backups/schedule",
            get(backups::schedule).put(backups::set_schedule),
        )
        .route("/admin/encryption/recovery", get(backups::recovery_status))
        .route("/admin/updates/check", post(backups::check_updates))
        .route(
            "/admin/encryption/workspace-key",
            post(backups::rotate_workspace_key),
        )
        .route("/admin/encryption/kms-key", post(backups::rotate_kms_key))
        .route("/admin/backups/{backup}", delete(backups::delete_backup))
        .route(
            "/admin/backups/{backup}/verify",
            post(backups::verify_backup),
        )
        .route("/admin/storage", get(privacy::storage))
        .route("/admin/storage/clean-up", post(privacy::clean_up_storage))
        .route("/admin/approvals", get(privacy::approvals))
        .route(
            "/admin/approvals/{approval}/approve",
            post(privacy::approve),
        )
        .route("/admin/channels", get(directory::channels))
        .route(
            "/admin/channels/{channel}/listing",
            put(directory::set_listing),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_per_address,
        ))
        .with_state(state);
    Router::new()
        .nest("/api/v1", api)
        .merge(scim::router(state_for_scim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authenticated_operation_documents_401_and_429() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let Some(security) = operation.get("security") else {
                    continue;
                };
                assert!(!security.as_array().unwrap().is_empty());
                operations += 1;
                let responses = operation["responses"].as_object().unwrap();
                for status in ["401", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
        assert!(operations > 30, "{operations}");
    }

    #[test]
    fn bearer_tokens_name_their_workspace() {
        let tenant = TenantId::generate(&zt_core::SystemClock);
        let token = SessionToken::from_presented("abc-DEF_123");
        let text = bearer_token(tenant, &token);
        let (t, s) = parse_bearer(&text).unwrap();
        assert_eq!(t, tenant);
        assert_eq!(s.expose(), "abc-DEF_123");
        for bad in [
            "",
            ".",
            "abc",
            "ten_zz.abc",
            &format!("{tenant}."),
            &format!("{tenant}"),
        ] {
            assert!(parse_bearer(bad).is_none(), "{bad}");
        }
    }
}
