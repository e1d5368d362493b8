//! Files in channels: streamed upload (the raw body, chunked into the store as it arrives, up to
//! the service's size limit) and streamed download.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zt_chat::FileInfo;
use zt_core::{ChannelId, FileId};

use super::Authed;
use super::error::{ApiError, ApiResult, AuthErrors, ErrorBody};
use super::types::parse_id;

/// A file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    /// The id.
    pub id: String,
    /// The channel.
    pub channel: String,
    /// Who uploaded it.
    pub uploader: String,
    /// Its name (absent when withheld after deletion).
    pub name: Option<String>,
    /// The content type given at upload.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub created: i64,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl From<&FileInfo> for FileView {
    fn from(f: &FileInfo) -> Self {
        FileView {
            id: f.id.to_string(),
            channel: f.channel.to_string(),
            uploader: f.uploader.to_string(),
            name: f.name.clone(),
            content_type: f.content_type.clone(),
            size: f.size,
            created: f.created.unix_millis(),
            deleted: f.deleted.is_some(),
        }
    }
}

/// The upload's file name.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name.
    pub name: String,
}

fn ids(channel: &str, file: &str) -> ApiResult<(ChannelId, FileId)> {
    Ok((parse_id("channel", channel)?, parse_id("file", file)?))
}

/// Uploads a file: the request body is its bytes, streamed (`upload_file` in the channel).
#[utoipa::path(
    post,
    path = "/api/v1/channels/{channel}/files",
    tag = "files",
    security(("bearer" = [])),
    params(("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such channel the caller can see", body = ErrorBody),
        (status = 409, description = "Archived channel", body = ErrorBody),
        (status = 413, description = "Larger than the limit", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn upload(
    authed: Authed,
    Path(channel): Path<String>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    let channel: ChannelId = parse_id("channel", &channel)?;
    let Query(query) = query?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let mut upload = authed
        .workspace
        .upload(&authed.caller, channel, &query.name, content_type)
        .await?;
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let bytes = match frame {
            Ok(bytes) => bytes,
            Err(e) => {
                // The body broke off: nothing of the file may stay behind.
                upload.cancel().await;
                return Err(ApiError::invalid("body", e.to_string()));
            }
        };
        upload.write(&bytes).await.map_err(|e| match e {
            zt_chat::Error::InvalidInput {
                field: "file",
                message,
            } => ApiError::too_large(message),
            other @ (zt_chat::Error::NotFound(_)
            | zt_chat::Error::Forbidden { .. }
            | zt_chat::Error::InvalidInput { .. }
            | zt_chat::Error::Conflict(_)
            | zt_chat::Error::Unauthenticated
            | zt_chat::Error::Unavailable { .. }
            | zt_chat::Error::Internal { .. }
            | _) => other.into(),
        })?;
    }
    let info = upload.finish(None).await?;
    Ok((StatusCode::CREATED, Json(FileView::from(&info))))
}

/// A file's record.
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/files/{file}",
    tag = "files",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("file" = String, Path, description = "The file's id", pattern = "^fil_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 200, description = "The record", body = FileView),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 404, description = "No such file the caller can see", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn info(
    authed: Authed,
    Path((channel, file)): Path<(String, String)>,
) -> ApiResult<Json<FileView>> {
    let (channel, file) = ids(&channel, &file)?;
    let info = authed.workspace.file(&authed.caller, channel, file).await?;
    Ok(Json(FileView::from(&info)))
}

/// A file's bytes, streamed, as an attachment (never rendered inline: the content type is the
/// uploader's claim).
#[utoipa::path(
    get,
    path = "/api/v1/channels/{channel}/files/{file}/content",
    tag = "files",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("file" = String, Path, description = "The file's id", pattern = "^fil_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 404, description = "No such file the caller can see", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn download(
    authed: Authed,
    Path((channel, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (channel, file) = ids(&channel, &file)?;
    // Authorize and read the record before answering, so errors keep their status.
    let info = {
        let download = authed
            .workspace
            .download(&authed.caller, channel, file)
            .await?;
        download.info().clone()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, zt_chat::Error>>(2);
    let workspace = authed.workspace;
    let caller = authed.caller;
    // The reading task records damage with the request's client address too.
    let address = zt_chat::source::client_address();
    tokio::spawn(zt_chat::source::with_client_address(address, async move {
        let mut download = match workspace.download(&caller, channel, file).await {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        loop {
            // zt-chat checks each chunk (it opens, the sizes add up) and records damage.
            let next = match download.next_chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    }));
    // The first chunk is read before answering, so damage found there is an error status, not a
    // 200 with a short body; damage found later aborts the stream (the client sees the
    // connection end short of Content-Length).
    let first = match rx.recv().await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(e)) => return Err(e.into()),
        None => None,
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|item| (item.map_err(|e| std::io::Error::other(e.to_string())), rx))
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter(first.map(Ok::<_, std::io::Error>)),
        rest,
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    Ok(response)
}

/// Deletes a file, leaving a tombstone (`delete_own_file` or `delete_any_file`).
#[utoipa::path(
    delete,
    path = "/api/v1/channels/{channel}/files/{file}",
    tag = "files",
    security(("bearer" = [])),
    params(
        ("channel" = String, Path, description = "The channel's id", pattern = "^chn_[0-9a-f]{32}$"),
        ("file" = String, Path, description = "The file's id", pattern = "^fil_[0-9a-f]{32}$"),
    ),
    responses(
        (status = 200, description = "Deleted: the tombstone", body = FileView),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 403, description = "Not permitted", body = ErrorBody),
        (status = 404, description = "No such file the caller can see", body = ErrorBody),
        (status = 409, description = "Archived channel, or changed meanwhile", body = ErrorBody),
        AuthErrors,
    )
)]
pub(crate) async fn delete(
    authed: Authed,
    Path((channel, file)): Path<(String, String)>,
) -> ApiResult<Json<FileView>> {
    let (channel, file) = ids(&channel, &file)?;
    let info = authed
        .workspace
        .delete_file(&authed.caller, channel, file, false)
        .await?;
    Ok(Json(FileView::from(&info)))
}
