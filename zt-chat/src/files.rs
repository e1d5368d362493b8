//! Files: uploaded in chunks (each sealed under the channel's key, committed as it arrives, so a
//! large file is never held in memory), downloaded chunk by chunk, and deleted to a tombstone
//! that keeps what clients need to explain the removal (who, when, and the name unless the
//! deleter withholds it) while the content and any preview are erased.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use zt_authz::Permission;
use zt_core::{Actor, AuditEvent, AuditEventKind, ChannelId, FileId, Timestamp, UserId};
use zt_storage::{Batch, KeyRange, KvStoreExt as _, ScanOptions, codec};

use crate::error::{Error, Result};
use crate::messages::Deletion;
use crate::workspace::{Caller, Workspace};

/// The size of a stored chunk; uploads are re-cut to it.
pub const CHUNK: usize = 64 * 1024;
/// The longest file name, in characters.
pub const MAX_FILE_NAME: usize = 255;

/// A file's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Its id.
    pub id: FileId,
    /// Its channel.
    pub channel: ChannelId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// Its name; `None` on a tombstone whose deleter withheld it.
    pub name: Option<String>,
    /// Its media type, as the uploader said.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub created: Timestamp,
    /// Whether a preview is stored.
    pub preview: bool,
    /// Set once deleted: the tombstone.
    pub deleted: Option<Deletion>,
    /// Set when a policy removed its content (retention, or the content policy of its
    /// uploader's deletion, which withholds the name too): when. The record is then a tombstone,
    /// as after a deletion. Absent in records written before retention existed.
    #[serde(default)]
    pub expired: Option<Timestamp>,
    chunks: u32,
}

impl FileInfo {
    /// How many chunks hold the content.
    pub(crate) fn chunk_count(&self) -> u32 {
        self.chunks
    }

    /// Whether the content is gone (deleted, or removed by retention): a tombstone.
    pub fn is_removed(&self) -> bool {
        self.deleted.is_some() || self.expired.is_some()
    }
}

/// A page of file records read row by row (see [`Workspace::file_records`]).
pub(crate) struct FileRecords {
    /// The records that opened, each with its version.
    pub(crate) files: Vec<(FileInfo, u64)>,
    /// Records that did not open: of a deleted channel, or damaged.
    pub(crate) unreadable: u64,
    /// The stored key to continue after; `None` at the end.
    pub(crate) next: Option<Vec<u8>>,
}

pub(crate) fn file_key(channel: ChannelId, id: FileId) -> Vec<u8> {
    let mut key = channel.to_bytes().to_vec();
    key.extend_from_slice(&id.to_bytes());
    key
}

fn chunk_key(channel: ChannelId, id: FileId, index: u32) -> Vec<u8> {
    let mut key = file_key(channel, id);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// An upload in progress; [`Upload::finish`] makes the file exist.
pub struct Upload<'a> {
    workspace: &'a Workspace,
    info: FileInfo,
    pending: Vec<u8>,
    limit: u64,
}

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("id", &self.info.id)
            .field("size", &self.info.size)
            .finish_non_exhaustive()
    }
}

impl Upload<'_> {
    /// Adds bytes; full chunks are stored at once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`file`) past the size limit, after which the upload is
    /// abandoned and what was stored of it is removed; the store's errors.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let size = self.info.size.saturating_add(bytes.len() as u64);
        if size > self.limit {
            self.abandon().await;
            return Err(Error::invalid(
                "file",
                format!("larger than the limit of {} bytes", self.limit),
            ));
        }
        self.info.size = size;
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= CHUNK {
            let rest = self.pending.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.pending, rest);
            self.store_chunk(chunk).await?;
        }
        Ok(())
    }

    /// Gives the upload up (its body broke off, say) and removes what was stored of it.
    ///
    /// An upload dropped without [`Upload::finish`] or this leaves its chunks in the store,
    /// unreachable, until a clean-up removes them.
    pub async fn cancel(mut self) {
        self.abandon().await;
    }

    async fn store_chunk(&mut self, chunk: Vec<u8>) -> Result<()> {
        let w = self.workspace;
        let mut batch = Batch::new();
        batch.put_owned(
            &w.ns.file_chunks,
            chunk_key(self.info.channel, self.info.id, self.info.chunks),
            chunk,
        );
        w.ctx.store.commit(batch).await?;
        self.info.chunks += 1;
        Ok(())
    }

    /// Stores the last chunk, an optional preview (a thumbnail), and the file's record.
    ///
    /// # Errors
    /// The store's.
    pub async fn finish(mut self, preview: Option<&[u8]>) -> Result<FileInfo> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.store_chunk(last).await?;
        }
        let w = self.workspace;
        let key = file_key(self.info.channel, self.info.id);
        let mut batch = Batch::new();
        if let Some(preview) = preview {
            batch.put(&w.ns.file_previews, &key, preview);
            self.info.preview = true;
        }
        batch.put_if_absent(&w.ns.files, &key, &codec::encode(&self.info)?);
        w.ctx.store.commit(batch).await?;
        Ok(self.info)
    }

    async fn abandon(&mut self) {
        let w = self.workspace;
        let mut batch = Batch::new();
        for index in 0..self.info.chunks {
            batch.delete(
                &w.ns.file_chunks,
                &chunk_key(self.info.channel, self.info.id, index),
            );
        }
        if !batch.is_empty()
            && let Err(e) = w.ctx.store.commit(batch).await
        {
            tracing::warn!(error = %e, "could not remove the chunks of an abandoned upload");
        }
        self.info.chunks = 0;
    }
}

/// A download in progress.
#[derive(Debug)]
pub struct Download<'a> {
    workspace: &'a Workspace,
    caller: UserId,
    info: FileInfo,
    next: u32,
    sent: u64,
}

impl Download<'_> {
    /// The file's record.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next chunk, `None` at the end. Each chunk opens (authenticated decryption) before it
    /// is handed out, and the chunks add up to the recorded size: a chunk that does not open, is
    /// missing, or makes the file longer or shorter than its record is recorded as
    /// `data.integrity_failed` and answered [`Error::Internal`], so a caller never passes damaged
    /// or truncated bytes on as the file.
    ///
    /// # Errors
    /// [`Error::Internal`] for damage; [`Error::NotFound`] if the file was deleted meanwhile;
    /// [`Error::Unavailable`] when the store or the key service is out.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.next >= self.info.chunks {
            if self.sent != self.info.size {
                return Err(self.damaged("the chunks are shorter than the file").await);
            }
            return Ok(None);
        }
        let w = self.workspace;
        let key = chunk_key(self.info.channel, self.info.id, self.next);
        let read = w.ctx.store.get(&w.ns.file_chunks, &key).await;
        let chunk = match read {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                // Deleted meanwhile (its record says so), or a chunk gone at rest.
                return match w.file_record(self.info.channel, self.info.id).await {
                    Ok((info, _)) if info.is_removed() => Err(Error::NotFound("file".into())),
                    _ => Err(self.damaged("a chunk is missing").await),
                };
            }
            Err(e) if e.is_temporary() => return Err(e.into()),
            Err(e) => {
                let why = format!("chunk {} does not open: {e}", self.next);
                return Err(self.damaged(&why).await);
            }
        };
        self.sent += chunk.value.len() as u64;
        if self.sent > self.info.size {
            return Err(self.damaged("the chunks are longer than the file").await);
        }
        self.next += 1;
        Ok(Some(chunk.value))
    }

    /// Records the damage (logged too) and returns the error to answer.
    async fn damaged(&self, why: &str) -> Error {
        let w = self.workspace;
        tracing::error!(
            tenant = %w.ctx.tenant,
            file = %self.info.id,
            chunk = self.next,
            why,
            "a stored file failed its integrity check"
        );
        let event = AuditEvent::new(
            AuditEventKind::DataIntegrityFailed,
            Actor::User(self.caller),
            w.ctx.clock.now(),
        )
        .tenant(w.ctx.tenant)
        .outcome(zt_core::Outcome::Failure)
        .target(self.info.id.to_string())
        .detail("channel", self.info.channel.to_string())
        .and_then(|e| e.detail("chunk", i64::from(self.next)))
        .and_then(|e| e.detail("reason", why));
        if let Err(e) = match event {
            Ok(event) => w.ctx.audit.append(event).await.map(drop),
            Err(e) => Err(e),
        } {
            tracing::error!(error = %e, "cannot record a file's integrity failure");
        }
        Error::damaged(format!("file {} is damaged: {why}", self.info.id))
    }
}

impl Workspace {
    /// Starts an upload to `channel` (`post_message` there, not archived).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for the name or media type; as [`Workspace::post`].
    pub async fn upload(
        &self,
        caller: &Caller,
        channel: ChannelId,
        name: &str,
        content_type: &str,
    ) -> Result<Upload<'_>> {
        let name = name.trim();
        // No path a download could be saved under outside its folder (`.`, `..`, slashes), and
        // nothing that displays the name in another order than it has (`txt.exe` as `exe.txt`).
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.chars().count() > MAX_FILE_NAME
            || name.chars().any(|c| {
                c.is_control() || c == '/' || c == '\\' || crate::names::is_bidi_control(c)
            })
        {
            return Err(Error::invalid(
                "name",
                format!(
                    "1 to {MAX_FILE_NAME} characters, not . or .., no control characters, \
                     slashes or bidirectional overrides"
                ),
            ));
        }
        if content_type.is_empty()
            || content_type.len() > 255
            || !content_type.contains('/')
            || content_type
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::invalid(
                "content_type",
                "a media type such as text/plain",
            ));
        }
        self.require_in(caller, channel, Permission::PostMessage)
            .await?;
        if self.channel(caller, channel).await?.archived {
            return Err(Error::Conflict("the channel is archived".into()));
        }
        Ok(Upload {
            workspace: self,
            info: FileInfo {
                id: FileId::generate(&*self.ctx.clock),
                channel,
                uploader: caller.user(),
                name: Some(name.to_owned()),
                content_type: content_type.to_owned(),
                size: 0,
                created: self.ctx.clock.now(),
                preview: false,
                deleted: None,
                expired: None,
                chunks: 0,
            },
            pending: Vec::new(),
            limit: self.max_file_bytes,
        })
    }

    async fn file_record(&self, channel: ChannelId, id: FileId) -> Result<(FileInfo, u64)> {
        self.ctx
            .store
            .get_decoded::<FileInfo>(&self.ns.files, &file_key(channel, id))
            .await?
            .ok_or_else(|| Error::NotFound("file".into()))
    }

    /// Adds to `batch` the removal of the file's chunks and preview and its record (read at
    /// `version`) rewritten as `info`, a tombstone without content.
    pub(crate) fn erase_file_content(
        &self,
        info: &mut FileInfo,
        version: u64,
        batch: &mut Batch,
    ) -> Result<()> {
        let key = file_key(info.channel, info.id);
        batch.require_version(&self.ns.files, &key, version);
        for index in 0..info.chunks {
            batch.delete(
                &self.ns.file_chunks,
                &chunk_key(info.channel, info.id, index),
            );
        }
        batch.delete(&self.ns.file_previews, &key);
        info.preview = false;
        info.chunks = 0;
        batch.put(&self.ns.files, &key, &codec::encode(&*info)?);
        Ok(())
    }

    /// Up to `limit` file records of every channel, after the stored key `after`, read row by
    /// row so that the records of a deleted channel (whose key is destroyed) or a damaged one
    /// are counted, not fatal.
    pub(crate) async fn file_records(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<FileRecords> {
        use zt_storage::KvStore as _;
        let range = match after {
            Some(key) => KeyRange::new(Bound::Excluded(key), Bound::Unbounded),
            None => KeyRange::all(),
        };
        let page = self
            .sealed
            .inner()
            .scan(&self.ns.files, &range, ScanOptions::new().limit(limit))
            .await?;
        let mut out = FileRecords {
            files: Vec::with_capacity(page.entries.len()),
            unreadable: 0,
            next: match page.next.map(|r| r.start) {
                Some(Bound::Excluded(key) | Bound::Included(key)) => Some(key),
                _ => None,
            },
        };
        for entry in page.entries {
            match self.sealed.open_stored(&self.ns.files, &entry).await {
                Ok(row) => match codec::decode::<FileInfo>(&row.value) {
                    Ok(info) => out.files.push((info, row.version)),
                    Err(_) => out.unreadable += 1,
                },
                Err(e) if e.is_temporary() => return Err(e.into()),
                Err(_) => out.unreadable += 1,
            }
        }
        Ok(out)
    }

    /// Every file record of `channel`, tombstones included (reads every file record).
    pub(crate) async fn channel_files(&self, channel: ChannelId) -> Result<Vec<FileInfo>> {
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let page = self.file_records(after, 1000).await?;
            found.extend(
                page.files
                    .into_iter()
                    .map(|(info, _)| info)
                    .filter(|info| info.channel == channel),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(found),
            }
        }
    }

    /// The file's record, or its tombstone (`read_channel`).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn file(&self, caller: &Caller, channel: ChannelId, id: FileId) -> Result<FileInfo> {
        self.require_in(caller, channel, Permission::ReadChannel)
            .await?;
        Ok(self.file_record(channel, id).await?.0)
    }

    /// Starts a download (`read_channel`); a deleted file is refused.
    ///
    /// # Errors
    /// [`Error::NotFound`] (also for a deleted file), [`Error::Forbidden`].
    pub async fn download(
        &self,
        caller: &Caller,
        channel: ChannelId,
        id: FileId,
    ) -> Result<Download<'_>> {
        let info = self.file(caller, channel, id).await?;
        if info.is_removed() {
            return Err(Error::NotFound("file (deleted)".into()));
        }
        Ok(Download {
            workspace: self,
            caller: caller.user(),
            sent: 0,
            info,
            next: 0,
        })
    }

    /// The stored preview (`read_channel`), if any.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn preview(
        &self,
        caller: &Caller,
        channel: ChannelId,
        id: FileId,
    ) -> Result<Option<Vec<u8>>> {
        self.file(caller, channel, id).await?;
        Ok(self
            .ctx
            .store
            .get(&self.ns.file_previews, &file_key(channel, id))
            .await?
            .map(|e| e.value))
    }

    /// Deletes a file (one's own with `delete_own_message`, anyone's with `delete_any_message`):
    /// its content and preview are erased in one commit with the record becoming a tombstone,
    /// which keeps who and when, and the name unless `withhold_name`. Audited as `file.deleted`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Conflict`] for a concurrent change.
    pub async fn delete_file(
        &self,
        caller: &Caller,
        channel: ChannelId,
        id: FileId,
        withhold_name: bool,
    ) -> Result<FileInfo> {
        let (mut info, version) = {
            self.require_in(caller, channel, Permission::ReadChannel)
                .await?;
            self.file_record(channel, id).await?
        };
        let permission = Workspace::delete_power(caller, info.uploader);
        self.require_in(caller, channel, permission).await?;
        if info.is_removed() {
            return Ok(info);
        }
        let mut batch = Batch::new();
        info.deleted = Some(Deletion {
            by: caller.user(),
            at: self.ctx.clock.now(),
        });
        if withhold_name {
            info.name = None;
        }
        let chunks = info.chunks;
        self.erase_file_content(&mut info, version, &mut batch)?;
        self.ctx.store.commit(batch).await?;
        let event = AuditEvent::new(
            AuditEventKind::FileDeleted,
            Actor::User(caller.user()),
            self.ctx.clock.now(),
        )
        .tenant(self.ctx.tenant)
        .target(id.to_string())
        .detail("channel", channel.to_string())
        .and_then(|e| e.detail("chunks", i64::from(chunks)));
        match event {
            Ok(event) => self
                .ctx
                .audit
                .append(event)
                .await
                .map_err(|e| Error::internal("audit", e))?,
            Err(e) => return Err(Error::internal("audit", e)),
        };
        Ok(info)
    }
}
