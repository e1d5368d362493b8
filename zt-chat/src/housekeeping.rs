//! Storage data management (`manage_storage_data`): what a workspace's data takes, and the
//! clean-up of what deletions leave behind.
//!
//! - [`Workspace::storage_use`]: rows and bytes as stored (sealed), per kind of record: read
//!   from the store below encryption, nothing is decrypted.
//! - [`Workspace::clean_up_storage`]: removes the **shredded** rows of deleted channels (their
//!   key is destroyed, so they can never be read again, but the bytes stay until removed) and
//!   **abandoned upload chunks** (chunks of an upload that never finished, a day after it
//!   began), and **tombstones past their own retention**
//!   ([`ChatConfig::tombstone_retention`](crate::ChatConfig::tombstone_retention) after the
//!   deletion: a deleted message's record with the history of its texts, a removed file's
//!   record), unless a legal hold keeps them. Recorded as `retention.cleanup` (target
//!   `storage`) with what went.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let world = zt_chat::testing::World::new().await;
//! let password = zt_chat::testing::password();
//! let (workspace, _) = world.chat.bootstrap("Acme", zt_chat::testing::new_user("ada"), &password).await?;
//! let (_, ada) = workspace.login("ada", &password, None).await?;
//! let used = workspace.storage_use(&ada).await?;
//! assert!(used.total().rows > 0);
//! let cleaned = workspace.clean_up_storage(&ada).await?;
//! assert_eq!(cleaned.shredded, 0);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use zt_core::{AuditEventKind, ChannelId, FileId};
use zt_storage::{Batch, KeyRange, KvStore as _, Namespace, ScanOptions};

use crate::admin::AdminArea;
use crate::error::Result;
use crate::workspace::{Caller, Workspace};

/// How long an upload may stay unfinished before its chunks count as abandoned.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How many rows one commit of the clean-up removes.
const CLEAN_BATCH: usize = 500;

/// Rows and bytes, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Rows.
    pub rows: u64,
    /// Bytes of keys and sealed values.
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.rows += other.rows;
        self.bytes += other.bytes;
    }
}

/// What a workspace's data takes, per kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StorageUse {
    /// Messages, tombstones included.
    pub messages: Usage,
    /// Earlier texts of edited and deleted messages.
    pub history: Usage,
    /// File records and tombstones.
    pub files: Usage,
    /// File content and previews.
    pub file_content: Usage,
    /// Everything else: users, sessions, roles, channels, groups, settings, holds.
    pub other: Usage,
}

impl StorageUse {
    /// The sum of every kind.
    pub fn total(&self) -> Usage {
        let mut total = Usage::default();
        for part in [
            self.messages,
            self.history,
            self.files,
            self.file_content,
            self.other,
        ] {
            total.add(part);
        }
        total
    }
}

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StorageCleanUp {
    /// Rows of deleted channels, unreadable for good.
    pub shredded: u64,
    /// Chunks of uploads that never finished.
    pub abandoned_chunks: u64,
    /// Tombstones of messages and files past their own retention.
    pub tombstones: u64,
    /// Bytes freed, as stored.
    pub bytes: u64,
}

impl Workspace {
    /// What the workspace's data takes (`manage_storage_data`).
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; the store's errors.
    pub async fn storage_use(&self, caller: &Caller) -> Result<StorageUse> {
        self.enter_admin_area(caller, AdminArea::StorageData)
            .await?;
        let inner = self.sealed.inner();
        let mut used = StorageUse::default();
        for name in crate::store::tenant_namespaces() {
            let raw = Namespace::new(name)?;
            let mut usage = Usage::default();
            let mut range = Some(KeyRange::all());
            while let Some(next) = range {
                let page = inner
                    .scan(&raw, &next, ScanOptions::new().limit(CLEAN_BATCH))
                    .await?;
                for entry in &page.entries {
                    usage.rows += 1;
                    usage.bytes += (entry.key.len() + entry.value.len()) as u64;
                }
                range = page.next;
            }
            let part = match name {
                crate::store::MESSAGES => &mut used.messages,
                crate::store::HISTORY => &mut used.history,
                crate::store::FILES => &mut used.files,
                crate::store::FILE_CHUNKS | crate::store::FILE_PREVIEWS => &mut used.file_content,
                _ => &mut used.other,
            };
            part.add(usage);
        }
        Ok(used)
    }

    /// Removes what deletions left behind (`manage_storage_data`): see the module's docs.
    /// Safe to run at any time and again: it removes only rows that can never be read, or
    /// chunks no file will ever own.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; the store's and the key service's errors (what was removed
    /// before stays removed).
    pub async fn clean_up_storage(&self, caller: &Caller) -> Result<StorageCleanUp> {
        self.enter_admin_area(caller, AdminArea::StorageData)
            .await?;
        let mut done = StorageCleanUp::default();
        let cutoff = self
            .ctx
            .clock
            .now()
            .unix_millis()
            .saturating_sub(i64::try_from(ABANDONED_AFTER.as_millis()).unwrap_or(i64::MAX));
        // Whether a file record exists, per (channel, file) met among the chunks.
        let mut owned: HashMap<(ChannelId, FileId), bool> = HashMap::new();
        for name in crate::store::CHANNEL_SCOPED {
            let ns = Namespace::new(name)?;
            let chunks = name == crate::store::FILE_CHUNKS;
            let mut range = Some(KeyRange::all());
            while let Some(next) = range {
                let page = self
                    .sealed
                    .inner()
                    .scan(&ns, &next, ScanOptions::new().limit(CLEAN_BATCH))
                    .await?;
                range = page.next.clone();
                let mut batch = Batch::new();
                let mut this = StorageCleanUp::default();
                for stored in &page.entries {
                    let row = match self.sealed.open_stored(&ns, stored).await {
                        Ok(row) => row,
                        Err(e) if e.kind() == zt_storage::ErrorKind::KeyDestroyed => {
                            this.shredded += 1;
                            this.bytes += (stored.key.len() + stored.value.len()) as u64;
                            batch.require_version(&ns, &stored.key, stored.version);
                            batch.delete(&ns, &stored.key);
                            continue;
                        }
                        // A damaged row stays, for `data verify` to report.
                        Err(e) if e.kind() == zt_storage::ErrorKind::Corrupt => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if !chunks {
                        continue;
                    }
                    let (Some(channel), Some(file)) = (
                        row.key.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()),
                        row.key
                            .get(16..32)
                            .and_then(|b| <[u8; 16]>::try_from(b).ok()),
                    ) else {
                        continue;
                    };
                    let (channel, file) =
                        (ChannelId::from_bytes(channel), FileId::from_bytes(file));
                    if file.made_at().unix_millis() >= cutoff {
                        continue; // possibly still uploading
                    }
                    let exists = match owned.get(&(channel, file)) {
                        Some(exists) => *exists,
                        None => {
                            let key = [channel.to_bytes(), file.to_bytes()].concat();
                            let exists = self.ctx.store.get(&self.ns.files, &key).await?.is_some();
                            owned.insert((channel, file), exists);
                            exists
                        }
                    };
                    if !exists {
                        this.abandoned_chunks += 1;
                        this.bytes += (stored.key.len() + stored.value.len()) as u64;
                        batch.require_version(&ns, &stored.key, stored.version);
                        batch.delete(&ns, &stored.key);
                    }
                }
                if !batch.is_empty() {
                    // A row changed meanwhile (a chunk written again) stays for the next run.
                    match self.sealed.inner().commit(batch).await {
                        Ok(_) => {
                            done.shredded += this.shredded;
                            done.abandoned_chunks += this.abandoned_chunks;
                            done.bytes += this.bytes;
                        }
                        Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        done.tombstones = self.remove_old_tombstones().await?;
        let event = self
            .event(AuditEventKind::RetentionCleanup, caller)
            .target("storage")
            .detail(
                "tombstones",
                i64::try_from(done.tombstones).unwrap_or(i64::MAX),
            )?
            .detail("shredded", i64::try_from(done.shredded).unwrap_or(i64::MAX))?
            .detail(
                "abandoned_chunks",
                i64::try_from(done.abandoned_chunks).unwrap_or(i64::MAX),
            )?
            .detail("bytes", i64::try_from(done.bytes).unwrap_or(i64::MAX))?;
        self.ctx.audit.append(event).await?;
        Ok(done)
    }

    /// Removes the tombstones deleted longer than the tombstone retention ago that no hold
    /// keeps, in batches under the holds epoch; returns how many went.
    async fn remove_old_tombstones(&self) -> Result<u64> {
        let cutoff = self.ctx.clock.now().unix_millis().saturating_sub(
            i64::try_from(self.tombstone_retention.as_millis()).unwrap_or(i64::MAX),
        );
        let mut removed = 0;
        // Messages: every row, in no particular order (the namespace is blinded by channel).
        let mut range = Some(KeyRange::all());
        while let Some(next) = range {
            let held = self.held_set().await?;
            let page = self
                .ctx
                .store
                .scan(
                    &self.ns.messages,
                    &next,
                    ScanOptions::new().limit(CLEAN_BATCH),
                )
                .await?;
            let mut batch = Batch::new();
            let mut this = 0;
            let mut by_channel = std::collections::BTreeMap::<_, Vec<_>>::new();
            for entry in &page.entries {
                let message =
                    zt_storage::codec::decode::<crate::messages::MessageHead>(&entry.value)?;
                let old = message.deleted.is_some_and(|d| d.at.unix_millis() < cutoff);
                if old && held.keeping(message.channel, message.author).is_none() {
                    crate::messages::remove_message(&self.ns, &mut batch, entry, &message);
                    by_channel
                        .entry(message.channel)
                        .or_default()
                        .push(message.id);
                    this += 1;
                }
            }
            if this > 0 {
                held.guard(self, &mut batch);
                match self.ctx.store.commit(batch).await {
                    Ok(_) => {
                        removed += this;
                        for (channel, mut messages) in by_channel {
                            messages.sort_unstable();
                            self.announce(crate::hub::Event::Removed { channel, messages });
                        }
                    }
                    // Changed meanwhile: the next clean-up sees it again.
                    Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => {}
                    Err(e) => return Err(e.into()),
                }
            }
            range = page.next;
        }
        // Files: the records of removed files, read row by row.
        let mut after = None;
        loop {
            let held = self.held_set().await?;
            let page = self.file_records(after, CLEAN_BATCH).await?;
            let mut batch = Batch::new();
            let mut this = 0;
            for (info, version) in &page.files {
                let gone_at = info.deleted.map(|d| d.at).or(info.expired);
                let old = gone_at.is_some_and(|at| at.unix_millis() < cutoff);
                if old && held.keeping(info.channel, info.uploader).is_none() {
                    let key = crate::files::file_key(info.channel, info.id);
                    batch.require_version(&self.ns.files, &key, *version);
                    batch.delete(&self.ns.files, &key);
                    this += 1;
                }
            }
            if this > 0 {
                held.guard(self, &mut batch);
                match self.ctx.store.commit(batch).await {
                    Ok(_) => removed += this,
                    Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(removed),
            }
        }
    }
}
