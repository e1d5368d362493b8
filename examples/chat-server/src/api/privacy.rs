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
//! - `GET /admin/privacy/retention`, `PUT` it: the workspace's retention of messages and files;
//!   `PUT`/`DELETE /admin/privacy/retention/channels/{channel}`: a channel's own policy;
//!   `POST /admin/privacy/retention/run`: a run now (or the end of one that stopped), answered
//!   with what it removed and what holds spared (`zt_chat::retention`).
//! - `GET`/`POST /admin/privacy/holds`: legal holds on a custodian, a channel or the audit logs
//!   (`zt_chat::holds`); `DELETE /admin/privacy/holds/{hold}` asks for a release, which another
//!   administrator approves (`GET /admin/approvals`, `POST /admin/approvals/{id}/approve`;
//!   `zt_chat::approvals`).
//! - `GET`/`PUT /admin/privacy/authored-content`: what a user's deletion does with their
//!   messages and files (`zt_chat::erasure`).
//! - `GET /admin/storage`, `POST /admin/storage/clean-up` (`manage_storage_data`): what the
//!   workspace's data takes, and the removal of what deletions left (`zt_chat::housekeeping`).
//! - `GET`/`POST`/`DELETE /admin/privacy/wipe`: the workspace's wipe, scheduled with a delay,
//!   approved by a second administrator, cancelled until it runs (`zt_chat::wipe`).

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_chat::{Approvable, HoldScope, RetentionPolicy, RetentionTarget};
use zt_chat_protocol::lifecycle::{
    ApprovalView, ApprovedView, AuthoredContentPolicy, AuthoredContentView, HoldKind,
    LegalHoldView, NewLegalHold, NewWipe, RetentionPolicyView, RetentionReportView, RetentionView,
    StorageCleanUpView, StorageUseView, UsageView, WipeView,
};
use zt_core::{ApprovalId, AuditRetention, ChannelId, HoldId};

use super::Authed;
use super::admin::log_kind;
use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::parse_id;

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
        (status = 204, description = "Placed, or nothing to release"),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "A release takes a second person: ask through DELETE /api/v1/admin/privacy/holds/{hold}", body = ErrorBody),
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

fn policy(view: RetentionPolicyView) -> RetentionPolicy {
    let seconds = |s: Option<u64>| s.map(std::time::Duration::from_secs);
    RetentionPolicy {
        messages: seconds(view.messages_seconds),
        files: seconds(view.files_seconds),
    }
}

/// The workspace's retention of messages and files (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/privacy/retention",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policies", body = RetentionView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn retention(authed: Authed) -> ApiResult<Json<RetentionView>> {
    let settings = authed.workspace.retention(&authed.caller).await?;
    Ok(Json(crate::views::retention_view(
        &settings,
        authed.workspace.retention_floor(),
    )))
}

/// Sets the workspace's retention (`manage_privacy_and_data`); recorded as `settings.changed`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/privacy/retention",
    tag = "admin",
    security(("bearer" = [])),
    request_body = RetentionPolicyView,
    responses(
        (status = 200, description = "The policies", body = RetentionView),
        (status = 400, description = "Malformed request, or a period under the floor", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_retention(
    authed: Authed,
    body: Result<Json<RetentionPolicyView>, JsonRejection>,
) -> ApiResult<Json<RetentionView>> {
    let Json(view) = body?;
    set(&authed, RetentionTarget::Workspace, Some(policy(view))).await
}

async fn set(
    authed: &Authed,
    target: RetentionTarget,
    policy: Option<RetentionPolicy>,
) -> ApiResult<Json<RetentionView>> {
    let settings = authed
        .workspace
        .set_retention(&authed.caller, target, policy)
        .await?;
    Ok(Json(crate::views::retention_view(
        &settings,
        authed.workspace.retention_floor(),
    )))
}

/// Gives a channel a retention of its own (`manage_privacy_and_data`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/privacy/retention/channels/{channel}",
    tag = "admin",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    request_body = RetentionPolicyView,
    responses(
        (status = 200, description = "The policies", body = RetentionView),
        (status = 400, description = "Malformed request, or a period under the floor", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_channel_retention(
    authed: Authed,
    Path(channel): Path<String>,
    body: Result<Json<RetentionPolicyView>, JsonRejection>,
) -> ApiResult<Json<RetentionView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Json(view) = body?;
    set(
        &authed,
        RetentionTarget::Channel(channel),
        Some(policy(view)),
    )
    .await
}

/// Removes a channel's own retention: it follows the workspace's again
/// (`manage_privacy_and_data`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/privacy/retention/channels/{channel}",
    tag = "admin",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "The policies", body = RetentionView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn clear_channel_retention(
    authed: Authed,
    Path(channel): Path<String>,
) -> ApiResult<Json<RetentionView>> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    set(&authed, RetentionTarget::Channel(channel), None).await
}

/// Runs retention now, or finishes a run that stopped (`manage_privacy_and_data`); its manifest
/// goes to the audit log as `retention.cleanup`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/privacy/retention/run",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the run did", body = RetentionReportView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "A run is under way", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn run_retention(authed: Authed) -> ApiResult<Json<RetentionReportView>> {
    let report = authed.workspace.run_retention(&authed.caller).await?;
    Ok(Json(crate::views::retention_report_view(&report)))
}

/// The legal holds in force (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/privacy/holds",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The holds, oldest first", body = Vec<LegalHoldView>),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn holds(authed: Authed) -> ApiResult<Json<Vec<LegalHoldView>>> {
    let holds = authed.workspace.legal_holds(&authed.caller).await?;
    Ok(Json(holds.iter().map(crate::views::hold_view).collect()))
}

/// Places a legal hold (`manage_privacy_and_data`); recorded as `legal_hold.placed`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/privacy/holds",
    tag = "admin",
    security(("bearer" = [])),
    request_body = NewLegalHold,
    responses(
        (status = 201, description = "Placed", body = LegalHoldView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such user or channel", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn place_hold(
    authed: Authed,
    body: Result<Json<NewLegalHold>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<LegalHoldView>)> {
    let Json(request) = body?;
    let subject = || {
        request
            .subject
            .as_deref()
            .ok_or_else(|| ApiError::invalid("subject", "the user or channel to hold"))
    };
    let scope = match request.kind {
        HoldKind::Custodian => HoldScope::Custodian(parse_id("subject", subject()?)?),
        HoldKind::Channel => HoldScope::Channel(parse_id("subject", subject()?)?),
        HoldKind::AuditLogs if request.subject.is_some() => {
            return Err(ApiError::invalid("subject", "none for the audit logs"));
        }
        HoldKind::AuditLogs => HoldScope::AuditLogs,
    };
    let hold = authed
        .workspace
        .place_legal_hold(&authed.caller, scope, &request.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(crate::views::hold_view(&hold))))
}

/// Asks for a legal hold's release (`manage_privacy_and_data`): accepted, it waits for another
/// administrator's approval (`POST /api/v1/admin/approvals/{id}/approve`); recorded as
/// `approval.requested`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/privacy/holds/{hold}",
    tag = "admin",
    security(("bearer" = [])),
    params(("hold" = String, Path, description = "The hold's id", pattern = "^hld_[0-9a-f]{32}$")),
    responses(
        (status = 202, description = "Asked; waiting for approval", body = ApprovalView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn release_hold(
    authed: Authed,
    Path(hold): Path<String>,
) -> ApiResult<(StatusCode, Json<ApprovalView>)> {
    let hold: HoldId = parse_id("hold", &hold)?;
    let request = authed
        .workspace
        .request_approval(&authed.caller, Approvable::ReleaseLegalHold(hold))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(crate::views::approval_view(&request)),
    ))
}

/// The requests waiting for a second administrator (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/approvals",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The open requests, oldest first", body = Vec<ApprovalView>),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn approvals(authed: Authed) -> ApiResult<Json<Vec<ApprovalView>>> {
    let open = authed.workspace.approvals(&authed.caller).await?;
    Ok(Json(open.iter().map(crate::views::approval_view).collect()))
}

/// Approves another administrator's request and carries it out; recorded as
/// `approval.granted` (denied, for one's own request).
#[utoipa::path(
    post,
    path = "/api/v1/admin/approvals/{approval}/approve",
    tag = "admin",
    security(("bearer" = [])),
    params(("approval" = String, Path, description = "The request's id", pattern = "^apr_[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Approved and carried out", body = ApprovedView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Not permitted, or one's own request", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Expired, or changed concurrently", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn approve(
    authed: Authed,
    Path(approval): Path<String>,
) -> ApiResult<Json<ApprovedView>> {
    let approval: ApprovalId = parse_id("approval", &approval)?;
    let done = authed.workspace.approve(&authed.caller, approval).await?;
    Ok(Json(crate::views::approved_view(&done)))
}

/// What a user's deletion does with their messages and files (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/privacy/authored-content",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = AuthoredContentPolicy),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn authored_content(authed: Authed) -> ApiResult<Json<AuthoredContentPolicy>> {
    let policy = authed.workspace.authored_content(&authed.caller).await?;
    Ok(Json(AuthoredContentPolicy {
        policy: crate::views::authored_content_view(policy),
    }))
}

/// Sets what a user's deletion does with their messages and files (`manage_privacy_and_data`);
/// recorded as `settings.changed`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/privacy/authored-content",
    tag = "admin",
    security(("bearer" = [])),
    request_body = AuthoredContentPolicy,
    responses(
        (status = 200, description = "The policy", body = AuthoredContentPolicy),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Changed concurrently", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_authored_content(
    authed: Authed,
    body: Result<Json<AuthoredContentPolicy>, JsonRejection>,
) -> ApiResult<Json<AuthoredContentPolicy>> {
    let Json(request) = body?;
    let policy = match request.policy {
        AuthoredContentView::Keep => zt_chat::AuthoredContent::Keep,
        AuthoredContentView::Delete => zt_chat::AuthoredContent::Delete,
    };
    let policy = authed
        .workspace
        .set_authored_content(&authed.caller, policy)
        .await?;
    Ok(Json(AuthoredContentPolicy {
        policy: crate::views::authored_content_view(policy),
    }))
}

/// The workspace's wipe, if one is scheduled (`manage_privacy_and_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/privacy/wipe",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The wipe", body = WipeView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No wipe is scheduled", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn wipe(authed: Authed) -> ApiResult<Json<WipeView>> {
    let wipe = authed
        .workspace
        .wipe_schedule(&authed.caller)
        .await?
        .ok_or_else(|| ApiError::from(zt_chat::Error::NotFound("wipe".into())))?;
    Ok(Json(crate::views::wipe_view(&wipe)))
}

/// Schedules the workspace's wipe (`manage_privacy_and_data`); a second administrator approves
/// its execution (the answer names the request), and it runs once due. Refused while a legal
/// hold stands.
#[utoipa::path(
    post,
    path = "/api/v1/admin/privacy/wipe",
    tag = "admin",
    security(("bearer" = [])),
    request_body = NewWipe,
    responses(
        (status = 201, description = "Scheduled", body = WipeView),
        (status = 400, description = "Malformed request, or a delay under the floor", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "A legal hold stands, or a wipe is scheduled", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn schedule_wipe(
    authed: Authed,
    body: Result<Json<NewWipe>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<WipeView>)> {
    let Json(request) = body?;
    let wipe = authed
        .workspace
        .schedule_wipe(
            &authed.caller,
            std::time::Duration::from_secs(request.delay_seconds),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(crate::views::wipe_view(&wipe))))
}

/// Cancels the scheduled wipe (`manage_privacy_and_data`), until it runs.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/privacy/wipe",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = WipeView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No wipe is scheduled", body = ErrorBody),
        (status = 409, description = "It has begun", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn cancel_wipe(authed: Authed) -> ApiResult<Json<WipeView>> {
    let wipe = authed.workspace.cancel_wipe(&authed.caller).await?;
    Ok(Json(crate::views::wipe_view(&wipe)))
}

fn usage(u: zt_chat::Usage) -> UsageView {
    UsageView {
        rows: u.rows,
        bytes: u.bytes,
    }
}

/// What the workspace's data takes, as stored (`manage_storage_data`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/storage",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rows and bytes per kind of record", body = StorageUseView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn storage(authed: Authed) -> ApiResult<Json<StorageUseView>> {
    let used = authed.workspace.storage_use(&authed.caller).await?;
    Ok(Json(StorageUseView {
        messages: usage(used.messages),
        history: usage(used.history),
        files: usage(used.files),
        file_content: usage(used.file_content),
        other: usage(used.other),
        total: usage(used.total()),
    }))
}

/// Removes the shredded rows of deleted channels, abandoned upload chunks and tombstones past
/// their retention (`manage_storage_data`); recorded as `retention.cleanup` (target `storage`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/storage/clean-up",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What went", body = StorageCleanUpView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn clean_up_storage(authed: Authed) -> ApiResult<Json<StorageCleanUpView>> {
    let done = authed.workspace.clean_up_storage(&authed.caller).await?;
    Ok(Json(StorageCleanUpView {
        shredded: done.shredded,
        abandoned_chunks: done.abandoned_chunks,
        tombstones: done.tombstones,
        bytes: done.bytes,
    }))
}
