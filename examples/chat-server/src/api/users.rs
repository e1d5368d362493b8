//! Users: the caller, lookup by username, and creation by those who manage users.

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use secrecy::SecretString;
use zt_core::identity::NewUser;

use super::Authed;
use super::error::{ApiResult, AuthErrors, ErrorBody};
use super::types::{
    NewUserRequest, PasswordChangeRequest, ProfileUpdateRequest, SessionsEnded, UserQuery, UserView,
};
use zt_chat::ProfileUpdate;

/// The caller.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        AuthErrors,
    )
)]
pub(crate) async fn me(authed: Authed) -> ApiResult<Json<UserView>> {
    let user = authed.workspace.me(&authed.caller).await?;
    Ok(Json(crate::views::user_view(&user)))
}

/// The active user with a username, as a list of zero or one (`view_member_directory`).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, description = "The users found", body = Vec<UserView>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn find(
    authed: Authed,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<UserView>>> {
    let Query(query) = query?;
    let found = authed
        .workspace
        .find_user(&authed.caller, &query.username)
        .await?;
    Ok(Json(found.iter().map(crate::views::user_view).collect()))
}

/// Creates a user with a password and the member role (`manage_users`).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUserRequest,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Username or address taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create(
    authed: Authed,
    body: Result<Json<NewUserRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let Json(request) = body?;
    let password = SecretString::from(request.password);
    let user = authed
        .workspace
        .create_user(
            &authed.caller,
            NewUser {
                username: request.username,
                email: request.email,
                display_name: request.display_name,
            },
            &password,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(crate::views::user_view(&user))))
}

/// Changes one's own password: the current one first; every other session of one's own ends.
#[utoipa::path(
    put,
    path = "/api/v1/users/me/password",
    tag = "users",
    security(("bearer" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 200, description = "Changed; the other sessions ended", body = SessionsEnded),
        (status = 400, description = "Malformed request, or a refused password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn change_password(
    authed: Authed,
    body: Result<Json<PasswordChangeRequest>, JsonRejection>,
) -> ApiResult<Json<SessionsEnded>> {
    let Json(request) = body?;
    let current = SecretString::from(request.current);
    let new = SecretString::from(request.password);
    let ended = authed
        .workspace
        .change_password(&authed.caller, &authed.token, &current, &new)
        .await?;
    Ok(Json(SessionsEnded {
        ended: ended as u64,
    }))
}

/// Changes one's own display name or e-mail address.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    request_body = ProfileUpdateRequest,
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 409, description = "Address taken, or changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn update_me(
    authed: Authed,
    body: Result<Json<ProfileUpdateRequest>, JsonRejection>,
) -> ApiResult<Json<UserView>> {
    let Json(request) = body?;
    let update = ProfileUpdate {
        display_name: request.display_name,
        email: request.email.map(Some),
    };
    let user = authed
        .workspace
        .update_profile(&authed.caller, update)
        .await?;
    Ok(Json(crate::views::user_view(&user)))
}
