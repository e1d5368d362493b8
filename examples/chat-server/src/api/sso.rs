//! Single sign-on: the code flow's start and callback, the device flow the CLI uses, the
//! provider's back-channel logout, RP-initiated logout, and the authentication area's providers
//! and sign-in settings. Each handler parses, calls one zt-chat method and maps its answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use zt_chat::{DeviceSignIn, Workspace};
use zt_chat_protocol::sso::{
    DevicePending, DevicePollRequest, DeviceStartView, GroupMappingView, ProviderUpdate,
    ProviderView, SignInSettingsView, SsoLogoutView,
};
use zt_core::TenantId;
use zt_core::identity::{
    AuthSettings, AuthorizationResponse, ClaimMap, GroupMapping, ProviderConfig, Provisioning,
    SsoRefusal,
};

use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::{LoginResponse, parse_id};
use super::{Authed, bearer_token};
use crate::state::AppState;

/// The cookie that binds a code flow to the browser that started it: one per workspace and
/// provider (`zt_sso_<workspace id>_<provider>`), sent to every single sign-on route, so the
/// callback gets it whether its URL names the workspace by id or as `default`.
fn binding_cookie(tenant: TenantId, provider: &str) -> String {
    format!("zt_sso_{tenant}_{provider}")
}

/// The workspace of a path: its id, or `default` for the server's default workspace.
async fn workspace_of(state: &AppState, text: &str) -> ApiResult<Arc<Workspace>> {
    let tenant: TenantId = if text == "default" {
        state
            .default_workspace
            .ok_or_else(|| ApiError::not_found("workspace"))?
    } else {
        parse_id("workspace", text)?
    };
    match state.chat.workspace(tenant).await {
        Ok(w) => Ok(w),
        Err(zt_chat::Error::NotFound(_)) => Err(ApiError::not_found("workspace")),
        Err(e) => Err(e.into()),
    }
}

async fn signed_in(
    workspace: &Workspace,
    token: &zt_core::identity::SessionToken,
    caller: &zt_chat::Caller,
) -> ApiResult<LoginResponse> {
    let user = workspace.me(caller).await?;
    Ok(LoginResponse {
        token: bearer_token(workspace.tenant(), token),
        workspace: workspace.tenant().to_string(),
        user: crate::views::user_view(&user),
    })
}

/// Starts a sign-in with a provider: redirects the browser to it, with a cookie that binds the
/// flow to this browser.
#[utoipa::path(
    get,
    path = "/api/v1/sso/{workspace}/{provider}/start",
    tag = "sso",
    params(("workspace" = String, Path), ("provider" = String, Path)),
    responses(
        (status = 303, description = "To the provider"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 404, description = "No such workspace or provider", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    )
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    Path((workspace, provider)): Path<(String, String)>,
) -> ApiResult<Response> {
    let workspace = workspace_of(&state, &workspace).await?;
    let started = workspace.sso_start(&provider).await?;
    let secure = if started.secure_callback {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Lax; Path=/api/v1/sso/; Max-Age=600{secure}",
        binding_cookie(workspace.tenant(), &provider),
        started.binding.expose_secret(),
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&started.url).map_err(|_| ApiError::invalid("provider", "URL"))?,
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| ApiError::invalid("provider", "name"))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The redirect back from the provider.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct CallbackQuery {
    /// The state of the flow.
    state: Option<String>,
    /// The authorization code.
    code: Option<String>,
    /// The provider (RFC 9207).
    iss: Option<String>,
    /// The provider's error, instead of a code.
    error: Option<String>,
}

fn binding_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Completes a sign-in at the redirect back from the provider: a session, answered like a
/// password sign-in.
#[utoipa::path(
    get,
    path = "/api/v1/sso/{workspace}/{provider}/callback",
    tag = "sso",
    params(("workspace" = String, Path), ("provider" = String, Path), CallbackQuery),
    responses(
        (status = 201, description = "Signed in", body = LoginResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Single sign-on refused (the check that failed)", body = ErrorBody),
        (status = 404, description = "No such workspace or provider", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    )
)]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Path((workspace, provider)): Path<(String, String)>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let workspace = workspace_of(&state, &workspace).await?;
    let response = AuthorizationResponse {
        state: query.state.unwrap_or_default(),
        code: query.code,
        iss: query.iss,
        error: query.error,
    };
    let binding = binding_of(&headers, &binding_cookie(workspace.tenant(), &provider));
    let (token, caller) = workspace
        .sso_callback(&provider, &response, binding.as_deref())
        .await?;
    let body = signed_in(&workspace, &token, &caller).await?;
    let mut answer = (StatusCode::CREATED, Json(body)).into_response();
    let clear = format!(
        "{}=; HttpOnly; SameSite=Lax; Path=/api/v1/sso/; Max-Age=0",
        binding_cookie(workspace.tenant(), &provider)
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        answer.headers_mut().insert(header::SET_COOKIE, value);
    }
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(answer)
}

/// A back-channel logout request (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct LogoutTokenForm {
    /// The logout token.
    logout_token: String,
}

/// The provider ends the zt sessions of one of its sessions (or of a subject): 200 when the
/// token holds, 400 otherwise, as the specification asks.
#[utoipa::path(
    post,
    path = "/api/v1/sso/{workspace}/{provider}/backchannel-logout",
    tag = "sso",
    params(("workspace" = String, Path), ("provider" = String, Path)),
    request_body(content = LogoutTokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The sessions ended"),
        (status = 400, description = "The logout token is refused", body = ErrorBody),
        (status = 404, description = "No such workspace or provider", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    )
)]
pub(crate) async fn backchannel_logout(
    State(state): State<AppState>,
    Path((workspace, provider)): Path<(String, String)>,
    form: Result<Form<LogoutTokenForm>, axum::extract::rejection::FormRejection>,
) -> ApiResult<Response> {
    let workspace = workspace_of(&state, &workspace).await?;
    let Ok(Form(form)) = form else {
        return Err(ApiError::invalid(
            "logout_token",
            "a form with logout_token",
        ));
    };
    match workspace
        .sso_backchannel_logout(&provider, &form.logout_token)
        .await
    {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(zt_chat::Error::SsoRefused(
            r @ (SsoRefusal::UnknownProvider | SsoRefusal::ProviderUnavailable),
        )) => Err(zt_chat::Error::SsoRefused(r).into()),
        Err(zt_chat::Error::SsoRefused(r)) => {
            Err(ApiError::invalid("logout_token", format!("refused: {r}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Starts a device sign-in (RFC 8628) with a provider, for a client without a browser.
#[utoipa::path(
    post,
    path = "/api/v1/sso/{workspace}/{provider}/device",
    tag = "sso",
    params(("workspace" = String, Path), ("provider" = String, Path)),
    responses(
        (status = 200, description = "Show the code; poll with the handle", body = DeviceStartView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Single sign-on refused", body = ErrorBody),
        (status = 404, description = "No such workspace or provider", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    )
)]
pub(crate) async fn device_start(
    State(state): State<AppState>,
    Path((workspace, provider)): Path<(String, String)>,
) -> ApiResult<Json<DeviceStartView>> {
    let workspace = workspace_of(&state, &workspace).await?;
    let started = workspace.sso_device_start(&provider).await?;
    Ok(Json(DeviceStartView {
        verification_uri: started.verification_uri,
        verification_uri_complete: started.verification_uri_complete,
        user_code: started.user_code,
        handle: started.handle.expose_secret().to_owned(),
        expires_in: started.expires_in.as_secs(),
        interval: started.interval.as_secs(),
    }))
}

/// Polls a device sign-in: 201 with the session once the user is done, 202 while they are not.
#[utoipa::path(
    post,
    path = "/api/v1/sso/{workspace}/device/poll",
    tag = "sso",
    params(("workspace" = String, Path)),
    request_body = DevicePollRequest,
    responses(
        (status = 201, description = "Signed in", body = LoginResponse),
        (status = 202, description = "Not yet; poll again", body = DevicePending),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Refused, or an unknown or used handle", body = ErrorBody),
        (status = 404, description = "No such workspace", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody),
    )
)]
pub(crate) async fn device_poll(
    State(state): State<AppState>,
    Path(workspace): Path<String>,
    body: Result<Json<DevicePollRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = body?;
    let workspace = workspace_of(&state, &workspace).await?;
    match workspace.sso_device_poll(&request.handle).await? {
        DeviceSignIn::Pending { interval } => Ok((
            StatusCode::ACCEPTED,
            Json(DevicePending {
                status: "pending".into(),
                interval: interval.as_secs(),
            }),
        )
            .into_response()),
        DeviceSignIn::Done(token, caller) => {
            let body = signed_in(&workspace, &token, &caller).await?;
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
    }
}

/// Signs out of the caller's session and answers where to end it at the provider too.
#[utoipa::path(
    post,
    path = "/api/v1/sso/logout/{provider}",
    tag = "sso",
    security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses(
        (status = 200, description = "Signed out here", body = SsoLogoutView),
        AuthErrors,
    )
)]
pub(crate) async fn logout(
    authed: Authed,
    Path(provider): Path<String>,
) -> ApiResult<Json<SsoLogoutView>> {
    let end_session_url = authed
        .workspace
        .sso_logout(&authed.token, &provider, None)
        .await?;
    Ok(Json(SsoLogoutView { end_session_url }))
}

// ----- the authentication area ------------------------------------------------------------

fn provisioning_name(p: Provisioning) -> &'static str {
    match p {
        Provisioning::Off => "off",
        Provisioning::Create => "create",
        Provisioning::LinkVerifiedEmail => "link_verified_email",
    }
}

fn provider_view(p: ProviderConfig) -> ProviderView {
    ProviderView {
        name: p.name,
        display_name: p.display_name,
        issuer: p.issuer,
        client_id: p.client_id,
        redirect_uri: p.redirect_uri,
        scopes: p.scopes,
        provisioning: provisioning_name(p.provisioning).into(),
        username_claim: p.claims.username,
        email_claim: p.claims.email,
        display_name_claim: p.claims.display_name,
        groups_claim: p.claims.groups,
        groups: p
            .groups
            .into_iter()
            .map(|g| GroupMappingView {
                claim: g.claim,
                group: g.group.to_string(),
            })
            .collect(),
        max_age_seconds: p.max_age.map(|d| d.as_secs()),
        skew_seconds: p.skew.as_secs(),
        algorithms: p.algorithms,
        enabled: p.enabled,
    }
}

fn provider_config(v: ProviderView) -> ApiResult<ProviderConfig> {
    let provisioning = match v.provisioning.as_str() {
        "off" => Provisioning::Off,
        "create" => Provisioning::Create,
        "link_verified_email" => Provisioning::LinkVerifiedEmail,
        _ => {
            return Err(ApiError::invalid(
                "provisioning",
                "off, create or link_verified_email",
            ));
        }
    };
    let mut groups = Vec::new();
    for g in v.groups {
        groups.push(GroupMapping {
            claim: g.claim,
            group: parse_id("group", &g.group)?,
        });
    }
    Ok(ProviderConfig {
        name: v.name,
        display_name: v.display_name,
        issuer: v.issuer,
        client_id: v.client_id,
        redirect_uri: v.redirect_uri,
        scopes: v.scopes,
        claims: ClaimMap {
            username: v.username_claim,
            email: v.email_claim,
            display_name: v.display_name_claim,
            groups: v.groups_claim,
        },
        groups,
        provisioning,
        max_age: v.max_age_seconds.map(Duration::from_secs),
        skew: Duration::from_secs(v.skew_seconds),
        algorithms: v.algorithms,
        enabled: v.enabled,
    })
}

/// The workspace's single sign-on providers, without secrets (`manage_authentication`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/sso/providers",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The providers", body = [ProviderView]),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn providers(authed: Authed) -> ApiResult<Json<Vec<ProviderView>>> {
    let providers = authed.workspace.sso_providers(&authed.caller).await?;
    Ok(Json(providers.into_iter().map(provider_view).collect()))
}

/// Adds or replaces a provider (`manage_authentication`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/sso/providers/{name}",
    tag = "admin",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    request_body = ProviderUpdate,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_provider(
    authed: Authed,
    Path(name): Path<String>,
    body: Result<Json<ProviderUpdate>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(update) = body?;
    if update.provider.name != name {
        return Err(ApiError::invalid("name", "the name in the path"));
    }
    let config = provider_config(update.provider)?;
    authed
        .workspace
        .set_sso_provider(
            &authed.caller,
            config,
            update.client_secret.map(SecretString::from),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a provider (`manage_authentication`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/sso/providers/{name}",
    tag = "admin",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "The last provider of an SSO-only workspace", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn remove_provider(
    authed: Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authed
        .workspace
        .remove_sso_provider(&authed.caller, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The sign-in settings (`manage_authentication`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/sign-in",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = SignInSettingsView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn sign_in_settings(authed: Authed) -> ApiResult<Json<SignInSettingsView>> {
    let settings = authed.workspace.sign_in_settings(&authed.caller).await?;
    Ok(Json(SignInSettingsView {
        sso_only: settings.sso_only,
        break_glass: settings.break_glass.map(|u| u.to_string()),
    }))
}

/// Replaces the sign-in settings: SSO-only with a break-glass owner (`manage_authentication`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/sign-in",
    tag = "admin",
    security(("bearer" = [])),
    request_body = SignInSettingsView,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_sign_in_settings(
    authed: Authed,
    body: Result<Json<SignInSettingsView>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(view) = body?;
    let break_glass = view
        .break_glass
        .as_deref()
        .map(|u| parse_id("break_glass", u))
        .transpose()?;
    authed
        .workspace
        .set_sign_in_settings(
            &authed.caller,
            AuthSettings {
                sso_only: view.sso_only,
                break_glass,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
