//! Identity, sign-in, sign-out and the caller's sessions.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use secrecy::SecretString;

use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::{IdentityView, LoginRequest, LoginResponse, SessionView, parse_id};
use super::{Authed, bearer_token, client_addr};
use crate::state::AppState;

/// The server's identity and realtime channel key, signed: what clients pin on first use.
#[utoipa::path(
    get,
    path = "/api/v1/identity",
    tag = "sessions",
    responses((status = 200, description = "The identity", body = IdentityView))
)]
pub(crate) async fn identity(State(state): State<AppState>) -> Json<IdentityView> {
    Json((*state.identity).clone())
}

/// Signs in with a username and password; answers the bearer token once.
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 201, description = "Signed in", body = LoginResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Wrong credentials, or locked", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<LoginResponse>)> {
    let Json(request) = body?;
    let tenant = match &request.workspace {
        Some(text) => parse_id("workspace", text)?,
        None => state.default_workspace.ok_or_else(|| {
            ApiError::invalid("workspace", "this server has no default workspace")
        })?,
    };
    let workspace = match state.chat.workspace(tenant).await {
        Ok(w) => w,
        // An unknown workspace answers like wrong credentials.
        Err(zt_chat::Error::NotFound(_)) => return Err(ApiError::sign_in_failed()),
        Err(e) => return Err(e.into()),
    };
    let password = SecretString::from(request.password);
    let (token, caller) = match workspace
        .login(&request.username, &password, client_addr(&extensions))
        .await
    {
        Ok(signed_in) => signed_in,
        Err(zt_chat::Error::Unauthenticated) => return Err(ApiError::sign_in_failed()),
        Err(e) => return Err(e.into()),
    };
    let user = workspace.me(&caller).await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginResponse {
            token: bearer_token(tenant, &token),
            workspace: tenant.to_string(),
            user: crate::views::user_view(&user),
        }),
    ))
}

/// The caller's live sessions.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = Vec<SessionView>),
        AuthErrors,
    )
)]
pub(crate) async fn list(authed: Authed) -> ApiResult<Json<Vec<SessionView>>> {
    let current = authed.token.hash();
    let sessions = authed.workspace.my_sessions(&authed.caller).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|(hash, session)| crate::views::session_view(*hash, session, *hash == current))
            .collect(),
    ))
}

/// Signs out: ends the session of this request.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/current",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        AuthErrors,
    )
)]
pub(crate) async fn logout(authed: Authed) -> ApiResult<StatusCode> {
    authed.workspace.logout(&authed.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends one of the caller's sessions (its id from the list).
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The session's id", pattern = "^[0-9a-f]{64}$")),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "Not a session id", body = ErrorBody),
        (status = 404, description = "No such session of the caller", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn revoke(authed: Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let hash: [u8; 32] = hex::decode(&id)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| ApiError::invalid("id", "a session id is 64 hex digits"))?;
    authed
        .workspace
        .revoke_my_session(&authed.caller, hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
