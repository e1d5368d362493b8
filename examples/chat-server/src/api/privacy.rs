//! The privacy and data admin area (`manage_privacy_and_data`): retention and legal hold of the
//! workspace's audit logs.
//!
//! - `GET /admin/privacy`: each log's size, what retention pruned, and the legal hold.
//! - `PUT /admin/privacy/legal-hold`: places or releases a legal hold on both logs; while it is
//!   placed, pruning is refused (409). The trail records both as `legal_hold.placed` /
//!   `legal_hold.released`.
//! - `POST /admin/privacy/audit/{log}/prune`: removes the entries below an index; later proofs
//!   and earlier checkpoints stay verifiable. Recorded as `retention.cleanup`, also when refused.
//!
//! Retention, legal hold and export of messages and files belong to the data lifecycle, which
//! zt-chat does not have yet.

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_core::AuditRetention;

use super::Authed;
use super::admin::log_kind;
use super::error::{ApiResult, AuthErrors, ErrorBody};

/// What retention left of one audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogRetention {
    /// How many entries the log ever had.
    pub size: u64,
    /// The first index it still holds; those below were pruned.
    pub pruned_below: u64,
    /// Whether a legal hold is placed (pruning is then refused).
    pub legal_hold: bool,
}

impl From<AuditRetention> for LogRetention {
    fn from(s: AuditRetention) -> Self {
        LogRetention {
            size: s.size,
            pruned_below: s.pruned_below,
            legal_hold: s.legal_hold,
        }
    }
}

/// The workspace's audit logs under retention.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PrivacyStatus {
    /// The security log.
    pub security: LogRetention,
    /// The compliance log.
    pub compliance: LogRetention,
}

/// A legal hold to place or release.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHold {
    /// `true` places it, `false` releases it.
    pub hold: bool,
}

/// Which entries to prune.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Entries below this index go; it is at most the log's size.
    pub below: u64,
}

/// Retention and legal hold of the workspace's audit logs (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/privacy",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The status", body = PrivacyStatus),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn status(authed: Authed) -> ApiResult<Json<PrivacyStatus>> {
    let logs = authed.workspace.audit_retention(&authed.caller).await?;
    Ok(Json(PrivacyStatus {
        security: logs.security.into(),
        compliance: logs.compliance.into(),
    }))
}

/// Places or releases a legal hold on the workspace's audit logs (`manage_privacy_and_data`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/privacy/legal-hold",
    tag = "admin",
    security(("bearer" = [])),
    request_body = LegalHold,
    responses(
        (status = 204, description = "Placed or released"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_legal_hold(
    authed: Authed,
    body: Result<Json<LegalHold>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(request) = body?;
    authed
        .workspace
        .set_audit_legal_hold(&authed.caller, request.hold)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prunes an audit log below an index (`manage_privacy_and_data`); refused under a legal hold.
#[utoipa::path(
    post,
    path = "/api/v1/admin/privacy/audit/{log}/prune",
    tag = "admin",
    security(("bearer" = [])),
    params(("log" = String, Path, description = "`security` or `compliance`", pattern = "^(security|compliance)$")),
    request_body = PruneRequest,
    responses(
        (status = 204, description = "Pruned"),
        (status = 400, description = "Malformed request, or beyond the log", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "A legal hold is placed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn prune(
    authed: Authed,
    Path(log): Path<String>,
    body: Result<Json<PruneRequest>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let kind = log_kind(&log)?;
    let Json(request) = body?;
    authed
        .workspace
        .prune_audit(&authed.caller, kind, request.below)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
