//! `/scim/v2`: a workspace's SCIM 2.0 service. Thin: the bearer key names the workspace, the
//! workspace authenticates it and serves the request ([`zt_chat::Workspace::scim`]); this
//! maps HTTP to that request and its answer back. The SCIM API keys are made, rotated and
//! revoked under `/api/v1/admin/scim/keys` (`manage_users`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_chat::{ScimMethod, ScimRequest, ScimResponse};
use zt_chat_protocol::admin::{CreateScimKey, NewScimKey, ScimKeyView};
use zt_core::identity::scim::{ScimError, ScimKeyInfo, ScimSecret, ScimType, key_tenant, rfc3339};

use super::error::AuthErrors;
use super::{ApiResult, Authed, ErrorBody};
use crate::state::AppState;

/// The largest SCIM body: a group's full member list of an identity provider's push.
pub const MAX_SCIM_BODY: usize = 4 * 1024 * 1024;

const SCIM_JSON: &str = "application/scim+json";

fn respond(answer: ScimResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Some(body) => (status, body.to_string()).into_response(),
        None => status.into_response(),
    };
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    }
    let mut put = |name: header::HeaderName, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, v);
        }
    };
    put(header::ETAG, answer.etag);
    put(header::LOCATION, answer.location);
    put(
        header::RETRY_AFTER,
        answer.retry_after.map(|s| s.to_string()),
    );
    response
}

/// The base URL clients reach the service at, from the request's own `Host` (only host
/// characters kept) and scheme.
fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let scheme = match uri.scheme_str() {
        Some("https") => "https",
        _ if forwarded_https => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/scim/v2")
}

/// Any request under `/scim/v2`. An authenticated client is limited per key (by the library);
/// requests whose key fails count against the client address's limit, so guessing is slow.
pub(crate) async fn serve(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let refused = |state: &AppState| {
        if let Some(addr) = super::client_addr(&parts.extensions)
            && let Err(refusal) = state.limits.per_address.check(addr)
        {
            let mut e = ScimError::status(429, "too many requests from this address");
            e.retry_after = Some(refusal.retry_after);
            return respond(e.into());
        }
        respond(ScimError::status(401, "authentication failed").into())
    };
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return refused(&state);
    };
    let Some(tenant) = key_tenant(presented) else {
        return refused(&state);
    };
    let workspace = match state.chat.workspace(tenant).await {
        Ok(w) => w,
        Err(_) => return refused(&state),
    };
    let caller = match workspace.scim_authenticate(presented).await {
        Ok(c) => c,
        Err(e) if e.status == 401 => return refused(&state),
        Err(e) => return respond(e.into()),
    };
    let Ok(Query(query)) = query else {
        return respond(
            ScimError::bad(ScimType::InvalidValue, "the query string does not decode").into(),
        );
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_SCIM_BODY).await else {
        return respond(ScimError::status(413, "the body is too large").into());
    };
    let path = parts.uri.path().strip_prefix("/scim/v2").unwrap_or("");
    let method = match parts.method {
        Method::GET => ScimMethod::Get,
        Method::POST => ScimMethod::Post,
        Method::PUT => ScimMethod::Put,
        Method::PATCH => ScimMethod::Patch,
        Method::DELETE => ScimMethod::Delete,
        _ => ScimMethod::Other,
    };
    let base = base_url(headers, &parts.uri);
    let request = ScimRequest {
        method,
        path,
        query: &query,
        if_match: headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()),
        body: &body,
        base: &base,
    };
    respond(workspace.scim(&caller, request).await)
}

fn key_view(k: ScimKeyInfo) -> ScimKeyView {
    ScimKeyView {
        id: k.id,
        label: k.label,
        created: rfc3339(k.created),
        expires: k.expires.map(rfc3339),
    }
}

fn new_key(secret: &ScimSecret, key: ScimKeyInfo) -> (StatusCode, Json<NewScimKey>) {
    let secret = secret.expose().to_owned();
    (
        StatusCode::CREATED,
        Json(NewScimKey {
            key: key_view(key),
            secret,
        }),
    )
}

/// How long the old key keeps working.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RotateScimKey {
    /// Seconds, at most 30 days; 0 ends the old key now.
    #[schema(minimum = 0, maximum = 2592000)]
    #[param(minimum = 0, maximum = 2592000)]
    pub overlap_seconds: Option<u64>,
}

/// The workspace's live SCIM keys (`manage_users`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/scim/keys",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = [ScimKeyView]),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn keys(authed: Authed) -> ApiResult<Json<Vec<ScimKeyView>>> {
    let keys = authed.workspace.scim_keys(&authed.caller).await?;
    Ok(Json(keys.into_iter().map(key_view).collect()))
}

/// Makes a SCIM key (`manage_users`); the secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/admin/scim/keys",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateScimKey,
    responses(
        (status = 201, description = "Made", body = NewScimKey),
        (status = 400, description = "A bad label, or too many keys", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create_key(
    authed: Authed,
    Json(request): Json<CreateScimKey>,
) -> ApiResult<(StatusCode, Json<NewScimKey>)> {
    let (secret, key) = authed
        .workspace
        .create_scim_key(&authed.caller, &request.label)
        .await?;
    Ok(new_key(&secret, key))
}

/// Replaces a SCIM key (`manage_users`); the old one works for the overlap given (default 1
/// hour).
#[utoipa::path(
    post,
    path = "/api/v1/admin/scim/keys/{id}/rotate",
    tag = "admin",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The key id", pattern = "^[0-9a-f]{32}$"),
        RotateScimKey,
    ),
    responses(
        (status = 201, description = "The new key", body = NewScimKey),
        (status = 400, description = "Too long an overlap", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such live key", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn rotate_key(
    authed: Authed,
    Path(id): Path<String>,
    Query(rotate): Query<RotateScimKey>,
) -> ApiResult<(StatusCode, Json<NewScimKey>)> {
    let overlap = std::time::Duration::from_secs(rotate.overlap_seconds.unwrap_or(3600));
    let (secret, key) = authed
        .workspace
        .rotate_scim_key(&authed.caller, &id, overlap)
        .await?;
    Ok(new_key(&secret, key))
}

/// Ends a SCIM key now (`manage_users`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/scim/keys/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key id", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such live key", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn revoke_key(authed: Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    authed
        .workspace
        .revoke_scim_key(&authed.caller, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SCIM service's router, with its own body limit.
pub(crate) fn router(state: AppState) -> axum::Router {
    use axum::routing::any;
    axum::Router::new()
        .route("/scim/v2", any(serve))
        .route("/scim/v2/{*rest}", any(serve))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_SCIM_BODY))
        .with_state(state)
}
