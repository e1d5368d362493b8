//! Administration areas, each gated by its own permission: users (`manage_users`), the
//! authentication settings (`manage_authentication`), the encryption status
//! (`manage_encryption`), the audit log (`view_audit_logs`); privacy and data, server settings
//! and the channel directory are in [`super::privacy`], [`super::server_settings`] and
//! [`super::directory`]. A refusal is audited as `admin.access_denied`; a settings change as
//! `settings.changed`.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_chat::AdminArea;
use zt_chat_protocol::lifecycle::UserDeletionView;
use zt_core::identity::{SessionPolicy, Timeouts};
use zt_core::{Actor, AuditEvent, AuditLogKind, AuditLogVerdict, AuditRange, Detail, Outcome};

pub use zt_chat_protocol::admin::{AuditEventView, AuditPage, AuditVerdict};

use super::Authed;
use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::{PasswordRequest, SessionsEnded, UserView, parse_id};
use crate::state::AppState;

/// The users of the workspace (`manage_users`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user holding a role", body = Vec<UserView>),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn users(authed: Authed) -> ApiResult<Json<Vec<UserView>>> {
    let users = authed.workspace.admin_users(&authed.caller).await?;
    Ok(Json(users.iter().map(crate::views::user_view).collect()))
}

/// Deactivates a user: their sessions end at once (`manage_users` over them; the last owner
/// stays).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user}/deactivate",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Deactivated", body = UserView),
        (status = 400, description = "Not a user id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The last owner, or changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn deactivate(
    authed: Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = authed
        .workspace
        .deactivate_user(&authed.caller, parse_id("user", &user)?)
        .await?;
    Ok(Json(crate::views::user_view(&user)))
}

/// Deletes a user and everything of theirs (`manage_users` over them; never the last owner):
/// roles, memberships, sessions, identity links, password hash, lock states, profile (its key
/// destroyed), and their content by the workspace's policy, held content kept. Asked again for
/// a deletion cut short, it finishes it.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{user}",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Deleted: what remains of the record, and what went", body = UserDeletionView),
        (status = 400, description = "Not a user id", body = ErrorBody),
        (status = 403, description = "Not permitted, or the last owner", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        (status = 503, description = "The store or the key service is out: ask again", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete_user(
    authed: Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<UserDeletionView>> {
    let done = authed
        .workspace
        .delete_user(&authed.caller, parse_id("user", &user)?)
        .await?;
    Ok(Json(crate::views::user_deletion_view(&done)))
}

/// Reactivates a deactivated user (`manage_users` over them); sessions from before stay ended.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user}/reactivate",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Reactivated", body = UserView),
        (status = 400, description = "Not a user id, or not deactivated", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn reactivate(
    authed: Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<UserView>> {
    let user = authed
        .workspace
        .reactivate_user(&authed.caller, parse_id("user", &user)?)
        .await?;
    Ok(Json(crate::views::user_view(&user)))
}

/// Lifts a user's sign-in lockout (`manage_users` over them).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{user}/unlock",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 400, description = "Not a user id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn unlock(authed: Authed, Path(user): Path<String>) -> ApiResult<StatusCode> {
    authed
        .workspace
        .unlock_user(&authed.caller, parse_id("user", &user)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password and ends their sessions (`manage_users` over them).
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{user}/password",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Set; the user's sessions ended", body = SessionsEnded),
        (status = 400, description = "Malformed request, or a refused password", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn reset_password(
    authed: Authed,
    Path(user): Path<String>,
    body: Result<Json<PasswordRequest>, JsonRejection>,
) -> ApiResult<Json<SessionsEnded>> {
    let user = parse_id("user", &user)?;
    let Json(request) = body?;
    let password = SecretString::from(request.password);
    let ended = authed
        .workspace
        .reset_password(&authed.caller, user, &password)
        .await?;
    Ok(Json(SessionsEnded {
        ended: ended as u64,
    }))
}

/// Ends every session of a user (`manage_users` over them).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{user}/sessions",
    tag = "admin",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "The user's id", pattern = "^usr_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Ended", body = SessionsEnded),
        (status = 400, description = "Not a user id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn revoke_sessions(
    authed: Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<SessionsEnded>> {
    let ended = authed
        .workspace
        .revoke_user_sessions(&authed.caller, parse_id("user", &user)?)
        .await?;
    Ok(Json(SessionsEnded {
        ended: ended as u64,
    }))
}

/// Session lifetimes of one kind, in seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsView {
    /// A session ends after this long unused.
    #[schema(minimum = 60)]
    pub idle_seconds: u64,
    /// A session ends this long after it began.
    #[schema(minimum = 60)]
    pub absolute_seconds: u64,
}

/// The authentication settings: session lifetimes per kind of session.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationSettings {
    /// People at a client.
    pub interactive: TimeoutsView,
    /// Programs with an API token.
    pub api: TimeoutsView,
    /// The administration portal.
    pub portal: TimeoutsView,
    /// People signed in through an OpenID provider.
    pub sso: TimeoutsView,
}

fn timeouts_view(t: Timeouts) -> TimeoutsView {
    TimeoutsView {
        idle_seconds: t.idle.as_secs(),
        absolute_seconds: t.absolute.as_secs(),
    }
}

fn timeouts(v: TimeoutsView) -> Timeouts {
    Timeouts {
        idle: Duration::from_secs(v.idle_seconds),
        absolute: Duration::from_secs(v.absolute_seconds),
    }
}

/// The authentication settings (`manage_authentication`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/authentication",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = AuthenticationSettings),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn authentication(authed: Authed) -> ApiResult<Json<AuthenticationSettings>> {
    let policy = authed.workspace.session_policy(&authed.caller).await?;
    Ok(Json(AuthenticationSettings {
        interactive: timeouts_view(policy.interactive),
        api: timeouts_view(policy.api),
        portal: timeouts_view(policy.portal),
        sso: timeouts_view(policy.sso),
    }))
}

/// Replaces the authentication settings; live sessions follow them at their next use
/// (`manage_authentication`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/authentication",
    tag = "admin",
    security(("bearer" = [])),
    request_body = AuthenticationSettings,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_authentication(
    authed: Authed,
    body: Result<Json<AuthenticationSettings>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(settings) = body?;
    let policy = SessionPolicy {
        interactive: timeouts(settings.interactive),
        api: timeouts(settings.api),
        portal: timeouts(settings.portal),
        sso: timeouts(settings.sso),
    };
    authed
        .workspace
        .set_session_policy(&authed.caller, policy)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The encryption at rest and in transit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EncryptionStatus {
    /// Whether stored data is encrypted (always).
    pub at_rest: bool,
    /// The KMS kind.
    pub kms: String,
    /// Calls made to the KMS since the server started.
    pub kms_calls: u64,
    /// Of which failed.
    pub kms_errors: u64,
    /// The realtime channel's protocol.
    pub realtime_protocol: String,
    /// The server identity's fingerprint.
    pub identity: String,
}

/// The encryption status (`manage_encryption`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/encryption",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The status", body = EncryptionStatus),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn encryption(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<EncryptionStatus>> {
    authed
        .workspace
        .enter_admin_area(&authed.caller, AdminArea::Encryption)
        .await?;
    let (kms_calls, kms_errors) = state.metrics.kms.counts();
    Ok(Json(EncryptionStatus {
        at_rest: true,
        kms: "local".into(),
        kms_calls,
        kms_errors,
        realtime_protocol: zt_crypto::channel::PROTOCOL.into(),
        identity: state.identity.fingerprint.clone(),
    }))
}

/// Which part of the audit log.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many events (1 to 1000, default 100): the newest ones, or those from `from` on.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The index of the first event to answer; without it, the newest page. Older pages are
    /// read by asking from the first index of the page after them minus the limit.
    #[serde(default)]
    pub from: Option<u64>,
}

fn event_view(index: u64, e: &AuditEvent) -> AuditEventView {
    AuditEventView {
        index,
        kind: e.kind.name().into(),
        actor: match &e.actor {
            Actor::User(u) => u.to_string(),
            Actor::System(s) => format!("system:{s}"),
            Actor::Anonymous => "anonymous".into(),
        },
        target: e.target.clone(),
        outcome: match e.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
        .into(),
        source: e.source.map(|s| s.to_string()),
        at: e.at.unix_millis(),
        details: e
            .details
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Detail::Text(t) => serde_json::Value::from(t.clone()),
                    Detail::Number(n) => serde_json::Value::from(*n),
                    Detail::Flag(f) => serde_json::Value::from(*f),
                };
                (k.clone(), value)
            })
            .collect(),
    }
}

pub(super) fn log_kind(log: &str) -> ApiResult<AuditLogKind> {
    AuditLogKind::from_name(log).ok_or_else(|| ApiError::invalid("log", "security or compliance"))
}

/// The newest events of the workspace's security or compliance log (`view_audit_logs`); the
/// read itself is recorded first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/{log}",
    tag = "admin",
    security(("bearer" = [])),
    params(("log" = String, Path, description = "`security` or `compliance`", pattern = "^(security|compliance)$"), AuditQuery),
    responses(
        (status = 200, description = "The events", body = AuditPage),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn audit(
    authed: Authed,
    Path(log): Path<String>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let kind = log_kind(&log)?;
    let Query(query) = query?;
    let limit = u64::from(query.limit.unwrap_or(100));
    let range = match query.from {
        Some(from) => AuditRange::From { from, limit },
        None => AuditRange::Newest { limit },
    };
    let page = authed
        .workspace
        .audit_page(&authed.caller, kind, range)
        .await?;
    Ok(Json(AuditPage {
        size: page.size,
        checkpoint: page.checkpoint,
        events: page
            .events
            .iter()
            .map(|(index, event)| event_view(*index, event))
            .collect(),
    }))
}

/// Verifies the workspace's security or compliance log from its entries and signed checkpoints
/// (`view_audit_logs`); a failure is itself audited.
#[utoipa::path(
    post,
    path = "/api/v1/admin/audit/{log}/verify",
    tag = "admin",
    security(("bearer" = [])),
    params(("log" = String, Path, description = "`security` or `compliance`", pattern = "^(security|compliance)$")),
    responses(
        (status = 200, description = "The verdict", body = AuditVerdict),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn verify_audit(
    authed: Authed,
    Path(log): Path<String>,
) -> ApiResult<Json<AuditVerdict>> {
    let kind = log_kind(&log)?;
    let verdict = authed.workspace.verify_audit(&authed.caller, kind).await?;
    Ok(Json(match verdict {
        AuditLogVerdict::Valid { size } => AuditVerdict {
            valid: true,
            size: Some(size),
            finding: None,
        },
        AuditLogVerdict::Invalid { finding } => AuditVerdict {
            valid: false,
            size: None,
            finding: Some(finding),
        },
    }))
}
