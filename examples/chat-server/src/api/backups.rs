//! The backups admin area (`manage_backups`, in the server's default workspace only): backups
//! of the whole deployment (`zt_chat::backups`).
//!
//! - `GET /admin/backups`: the backups, oldest first; `POST`: take one now.
//! - `POST /admin/backups/{id}/verify`: read one whole and check it (422 when it does not
//!   verify, naming what).
//! - `DELETE /admin/backups/{id}`: delete one.
//! - `POST /admin/backups/key`: a new backup key (earlier backups keep theirs).
//! - `GET`/`PUT /admin/backups/schedule`: how often backups are taken by themselves and how
//!   many are kept.
//!
//! - `GET /admin/encryption/recovery` (`manage_encryption`): which backups each recovery
//!   recipient opens, and when the recovery kit was written; `POST
//!   /admin/encryption/workspace-key` and `/admin/encryption/kms-key`: key rotations (any
//!   workspace's own, recorded as `key.rotated`).
//!
//! - `POST /admin/updates/check` (`manage_updates`, default workspace): the configured release
//!   manifest checked against the pinned release key (`zt_chat::updates`).
//!
//! Restores run offline (`zt-chat-server backup restore`), into a new data directory.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use zt_chat::BackupInfo;
use zt_chat_protocol::lifecycle::{
    BackupKeyView, BackupScheduleView, BackupVerifiedView, BackupView, KeyRotationView,
    NewBackupSchedule, RecoveryRecipientView, RecoveryStatusView, UpdateStatusView,
};

use crate::state::AppState;

use super::Authed;
use super::error::{ApiResult, AuthErrors, ErrorBody};

fn view(info: BackupInfo) -> BackupView {
    BackupView {
        id: info.id,
        created: info.created.unix_millis(),
        size: info.size,
        sha256: info.sha256,
        rows: info.rows,
        backup_key: info.backup_key,
        recovery: info.recovery.iter().map(ToString::to_string).collect(),
        signer: info.signer,
    }
}

/// The deployment's backups, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/backups",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The backups", body = Vec<BackupView>),
        (status = 400, description = "Backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn backups(authed: Authed) -> ApiResult<Json<Vec<BackupView>>> {
    let list = authed.workspace.backups(&authed.caller).await?;
    Ok(Json(list.into_iter().map(view).collect()))
}

/// Takes a backup of the whole deployment now.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backups",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Taken", body = BackupView),
        (status = 400, description = "Backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn create_backup(authed: Authed) -> ApiResult<(StatusCode, Json<BackupView>)> {
    let info = authed.workspace.create_backup(&authed.caller).await?;
    Ok((StatusCode::CREATED, Json(view(info))))
}

/// Reads a backup whole through its backup key and checks it against the catalog and the
/// server's signature.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backups/{backup}/verify",
    tag = "admin",
    security(("bearer" = [])),
    params(("backup" = String, Path, description = "The backup's id")),
    responses(
        (status = 200, description = "It verifies", body = BackupVerifiedView),
        (status = 400, description = "Not a backup id, or backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        (status = 422, description = "It does not verify (the message names what)", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn verify_backup(
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<BackupVerifiedView>> {
    let manifest = authed.workspace.verify_backup(&authed.caller, &id).await?;
    Ok(Json(BackupVerifiedView {
        id,
        parts: manifest.parts.len(),
        bytes: manifest.total_size(),
    }))
}

/// Deletes a backup.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/backups/{backup}",
    tag = "admin",
    security(("bearer" = [])),
    params(("backup" = String, Path, description = "The backup's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a backup id, or backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete_backup(authed: Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    authed.workspace.delete_backup(&authed.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a new backup key: backups from now on are sealed to it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backups/key",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Made", body = BackupKeyView),
        (status = 400, description = "Backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn rotate_backup_key(
    authed: Authed,
) -> ApiResult<(StatusCode, Json<BackupKeyView>)> {
    let id = authed.workspace.rotate_backup_key(&authed.caller).await?;
    Ok((StatusCode::CREATED, Json(BackupKeyView { id })))
}

/// What the recovery material covers (`manage_encryption`, default workspace).
#[utoipa::path(
    get,
    path = "/api/v1/admin/encryption/recovery",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The status", body = RecoveryStatusView),
        (status = 400, description = "Backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn recovery_status(authed: Authed) -> ApiResult<Json<RecoveryStatusView>> {
    let status = authed.workspace.recovery_status(&authed.caller).await?;
    Ok(Json(RecoveryStatusView {
        recipients: status
            .recipients
            .into_iter()
            .map(|(recipient, backups)| RecoveryRecipientView {
                recipient: recipient.to_string(),
                backups,
            })
            .collect(),
        uncovered: status.uncovered,
        backup_keys: status.backup_keys,
        kit_written: status.kit_written.map(|t| t.unix_millis()),
    }))
}

/// Adds a version of the workspace key (`manage_encryption`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/encryption/workspace-key",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Rotated", body = KeyRotationView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn rotate_workspace_key(
    authed: Authed,
) -> ApiResult<(StatusCode, Json<KeyRotationView>)> {
    let version = authed
        .workspace
        .rotate_workspace_key(&authed.caller)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyRotationView {
            version,
            rewrapped: 0,
        }),
    ))
}

/// Rotates the workspace's KMS key and rewraps its keys (`manage_encryption`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/encryption/kms-key",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Rotated", body = KeyRotationView),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn rotate_kms_key(
    authed: Authed,
) -> ApiResult<(StatusCode, Json<KeyRotationView>)> {
    let (version, rewrapped) = authed.workspace.rotate_kms_key(&authed.caller).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyRotationView { version, rewrapped }),
    ))
}

fn schedule_view(schedule: zt_chat::BackupSchedule) -> BackupScheduleView {
    BackupScheduleView {
        every_seconds: schedule.every_secs,
        keep: schedule.keep,
        last_run: schedule.last_run.map(|t| t.unix_millis()),
    }
}

/// The backup schedule.
#[utoipa::path(
    get,
    path = "/api/v1/admin/backups/schedule",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The schedule", body = BackupScheduleView),
        (status = 400, description = "Backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn schedule(authed: Authed) -> ApiResult<Json<BackupScheduleView>> {
    let schedule = authed.workspace.backup_schedule(&authed.caller).await?;
    Ok(Json(schedule_view(schedule)))
}

/// Sets the backup schedule (recorded as `backup.schedule_changed`).
#[utoipa::path(
    put,
    path = "/api/v1/admin/backups/schedule",
    tag = "admin",
    security(("bearer" = [])),
    request_body = NewBackupSchedule,
    responses(
        (status = 200, description = "Set", body = BackupScheduleView),
        (status = 400, description = "Out of range, or backups are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn set_schedule(
    authed: Authed,
    body: Result<Json<NewBackupSchedule>, JsonRejection>,
) -> ApiResult<Json<BackupScheduleView>> {
    let Json(request) = body?;
    let schedule = authed
        .workspace
        .set_backup_schedule(&authed.caller, request.every_seconds, request.keep)
        .await?;
    Ok(Json(schedule_view(schedule)))
}

/// Checks the release manifest the settings name (`[updates] manifest` and its `.sig`) against
/// the pinned release key (`manage_updates`, default workspace): refused (422) when unsigned,
/// signed by another key, or older than the newest seen.
#[utoipa::path(
    post,
    path = "/api/v1/admin/updates/check",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Checked", body = UpdateStatusView),
        (status = 400, description = "Update checks are not configured", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 422, description = "The manifest is refused (the message says why)", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn check_updates(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<UpdateStatusView>> {
    let (manifest, signature) = match &state.release_manifest {
        Some(path) => {
            let mut sig = path.clone().into_os_string();
            sig.push(".sig");
            // A missing or unreadable file is an empty manifest: refused as unsigned.
            (
                tokio::fs::read(path).await.unwrap_or_default(),
                tokio::fs::read_to_string(sig).await.unwrap_or_default(),
            )
        }
        None => (Vec::new(), String::new()),
    };
    let status = authed
        .workspace
        .check_updates(&authed.caller, &manifest, &signature)
        .await?;
    Ok(Json(UpdateStatusView {
        running: status.running,
        schema: status.schema,
        latest: status.latest.version,
        released: status.latest.released,
        notes: status.latest.notes,
        available: status.available,
    }))
}
