//! Retention of messages and files (`manage_privacy_and_data`): how long a workspace keeps its
//! content, overridable per channel, never shorter than the floor the deployment sets; and the
//! retention run that removes what is older.
//!
//! A run goes channel by channel, then over the file records, in batches of
//! [`RetentionConfig::batch`]:
//!
//! - a **message** older than its channel's period goes with every earlier text of it (edits and
//!   the text of a deletion, in the channel's history); a deleted message's tombstone goes too;
//! - a **file** older than its channel's period loses its chunks and preview, and its record
//!   becomes a tombstone ([`FileInfo::expired`](crate::FileInfo::expired)) that keeps who
//!   uploaded what, when;
//! - content a [legal hold](crate::holds) keeps is left, and counted against the hold.
//!
//! Each batch is one commit: the deletions, each required at the version read (an edit made
//! meanwhile makes the batch fail and be read again, never lost), the holds epoch and the
//! settings as read (a hold placed or a policy changed meanwhile, likewise: the run reads both
//! once, and again after such a failure), and the run's progress. A run that stops (a crash, a store
//! that went away) is resumed by the next one from its last committed batch, with the counts so
//! far. It holds no lock that posting waits on: posting writes other keys, and the only check it
//! shares with a run is its own message's version.
//!
//! When a run ends it writes its **manifest** to the audit log (`retention.cleanup`): the
//! policy, what went per channel, and the holds that spared content, in parts of at most
//! [`MANIFEST_CHANNELS`] channels. The log's next checkpoint signs it.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use zt_chat::retention::{RetentionPolicy, RetentionTarget};
//!
//! let world = zt_chat::testing::World::new().await;
//! let password = zt_chat::testing::password();
//! let (workspace, _) = world.chat.bootstrap("Acme", zt_chat::testing::new_user("ada"), &password).await?;
//! let (_, ada) = workspace.login("ada", &password, None).await?;
//! let room = workspace.create_channel(&ada, "general", zt_authz::ChannelVisibility::Public, "").await?;
//! workspace.post(&ada, room.id, "old news", None, &[]).await?;
//!
//! let month = Duration::from_secs(30 * 24 * 3600);
//! let policy = RetentionPolicy { messages: Some(month), files: Some(month) };
//! workspace.set_retention(&ada, RetentionTarget::Workspace, Some(policy)).await?;
//! world.clock.advance(month + Duration::from_secs(1));
//! let report = workspace.run_retention(&ada).await?;
//! assert_eq!(report.totals().messages, 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zt_core::{
    Actor, AuditEvent, AuditEventKind, ChannelId, Detail, HoldId, MessageId, Timestamp, UserId,
};
use zt_storage::{Batch, ErrorKind as StorageKind, KeyRange, KvStoreExt as _, ScanOptions, codec};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::hub::Event;
use crate::workspace::{Caller, Chat, Workspace};

/// The most channels one part of a run's manifest lists.
pub const MANIFEST_CHANNELS: usize = 500;
/// The longest period a policy may set: a hundred years.
pub const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * 24 * 3600);
/// How many times in a row a batch may meet a concurrent change before the run gives up (and
/// the next run resumes it).
const MAX_CONFLICTS: u32 = 16;

/// The settings record and the run's progress, in the retention namespace.
const SETTINGS_KEY: &[u8] = b"settings";
const RUN_KEY: &[u8] = b"run";

/// How retention runs, for every workspace of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// The shortest period any policy may set: what the deployment promises to keep at least.
    pub floor: Duration,
    /// How many messages or file records one batch (one commit) handles: 100 by default. A
    /// larger batch removes a little faster and holds posting back longer (the lifecycle bench:
    /// at 500, posting p99 during a run 15x of a quiet one; at 100, 4x; see docs/PERFORMANCE.md).
    pub batch: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            floor: Duration::from_secs(24 * 3600),
            batch: 100,
        }
    }
}

/// How long content is kept; `None` keeps it for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Messages, with their history.
    pub messages: Option<Duration>,
    /// Files, with their chunks and previews.
    pub files: Option<Duration>,
}

/// A workspace's retention: its own policy and the channels that override it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSettings {
    /// The workspace's policy (by default, keep everything).
    pub workspace: RetentionPolicy,
    /// Channels with a policy of their own, which replaces the workspace's there.
    pub channels: BTreeMap<ChannelId, RetentionPolicy>,
}

impl RetentionSettings {
    /// The policy in force in `channel`.
    pub fn for_channel(&self, channel: ChannelId) -> RetentionPolicy {
        self.channels
            .get(&channel)
            .copied()
            .unwrap_or(self.workspace)
    }
}

/// Which policy [`Workspace::set_retention`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionTarget {
    /// The workspace's own.
    Workspace,
    /// A channel's override.
    Channel(ChannelId),
}

/// What a run removed and spared in one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCounts {
    /// Messages removed (tombstones included).
    pub messages: u64,
    /// Earlier texts removed with them.
    pub revisions: u64,
    /// Files whose content was removed.
    pub files: u64,
    /// Messages and files past their period that a hold kept.
    pub spared: u64,
}

impl ChannelCounts {
    fn add(&mut self, other: &ChannelCounts) {
        self.messages += other.messages;
        self.revisions += other.revisions;
        self.files += other.files;
        self.spared += other.spared;
    }
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// When the run began (periods count back from here).
    pub started: Timestamp,
    /// When it ended.
    pub finished: Timestamp,
    /// Whether it finished a run an earlier call had begun.
    pub resumed: bool,
    /// Counts per channel that had anything past its period.
    pub channels: BTreeMap<ChannelId, ChannelCounts>,
    /// How many pieces of content each hold kept.
    pub spared_by: BTreeMap<HoldId, u64>,
    /// File records that did not open: of a deleted channel (its key destroyed, left for the
    /// storage clean-up) or damaged (for `data verify`).
    pub unreadable_files: u64,
    /// Commits made.
    pub batches: u64,
}

impl RetentionReport {
    /// The counts summed over every channel.
    pub fn totals(&self) -> ChannelCounts {
        let mut sum = ChannelCounts::default();
        for counts in self.channels.values() {
            sum.add(counts);
        }
        sum
    }
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Messages of `channel`, after the one with id `after`.
    Messages {
        channel: ChannelId,
        after: Option<zt_core::MessageId>,
    },
    /// File records, after the stored key `after` (file records are blinded whole, so a scan
    /// over them continues in stored keys).
    Files { after: Option<Vec<u8>> },
    /// Everything removed; the manifest is next.
    Done,
}

/// A run's progress, committed with each batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RunState {
    started: Timestamp,
    by: Option<UserId>,
    phase: Phase,
    counts: BTreeMap<ChannelId, ChannelCounts>,
    spared_by: BTreeMap<HoldId, u64>,
    unreadable_files: u64,
    batches: u64,
}

/// `at` minus `period`, or `None` when that is before the epoch (nothing is that old).
fn cutoff(at: Timestamp, period: Duration) -> Option<i64> {
    let period = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
    let cut = at.unix_millis().checked_sub(period)?;
    (cut > 0).then_some(cut)
}

/// The end (excluded) of `channel`'s messages posted before `cutoff` (ms): message ids begin
/// with their 48-bit millisecond time, so the key of the first id at `cutoff` starts with it.
fn messages_before(channel: ChannelId, cutoff: i64) -> Vec<u8> {
    let mut key = channel.to_bytes().to_vec();
    let millis = u64::try_from(cutoff).unwrap_or(0).to_be_bytes();
    key.extend_from_slice(&millis[2..]);
    key
}

fn period(value: Option<Duration>) -> Detail {
    match value {
        Some(d) => Detail::Number(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        None => Detail::Text("forever".into()),
    }
}

fn describe(policy: RetentionPolicy) -> String {
    let one = |d: Option<Duration>| match d {
        Some(d) => format!("{}s", d.as_secs()),
        None => "forever".to_owned(),
    };
    format!(
        "messages {}, files {}",
        one(policy.messages),
        one(policy.files)
    )
}

impl Workspace {
    async fn retention_settings(&self) -> Result<(RetentionSettings, u64)> {
        Ok(self
            .ctx
            .store
            .get_decoded::<RetentionSettings>(&self.ns.retention, SETTINGS_KEY)
            .await?
            .unwrap_or_default())
    }

    /// The shortest period a policy may set here: the deployment's floor.
    pub fn retention_floor(&self) -> Duration {
        self.retention_config.floor
    }

    /// The workspace's retention settings (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the store's errors.
    pub async fn retention(&self, caller: &Caller) -> Result<RetentionSettings> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        Ok(self.retention_settings().await?.0)
    }

    /// Sets the workspace's policy or a channel's override (`manage_privacy_and_data`),
    /// recorded (`settings.changed`, target `retention`) before it applies. `None` keeps the
    /// workspace's content for ever, or removes a channel's override.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] (`retention`) for a period shorter than the
    /// deployment's floor or longer than [`MAX_RETENTION`]; [`Error::NotFound`] for an unknown
    /// channel; [`Error::Conflict`] for a concurrent change.
    pub async fn set_retention(
        &self,
        caller: &Caller,
        target: RetentionTarget,
        policy: Option<RetentionPolicy>,
    ) -> Result<RetentionSettings> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        let floor = self.retention_config.floor;
        for d in policy.iter().flat_map(|p| [p.messages, p.files]).flatten() {
            if d < floor || d > MAX_RETENTION {
                return Err(Error::invalid(
                    "retention",
                    format!(
                        "a period from the deployment's floor of {} s to {} s, or none",
                        floor.as_secs(),
                        MAX_RETENTION.as_secs()
                    ),
                ));
            }
        }
        if let RetentionTarget::Channel(channel) = target {
            self.ensure_channel(channel)?;
        }
        let (mut settings, version) = self.retention_settings().await?;
        let scope = match target {
            RetentionTarget::Workspace => {
                settings.workspace = policy.unwrap_or_default();
                "workspace".to_owned()
            }
            RetentionTarget::Channel(channel) => {
                match policy {
                    Some(p) => settings.channels.insert(channel, p),
                    None => settings.channels.remove(&channel),
                };
                channel.to_string()
            }
        };
        let event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("retention")
            .detail("scope", scope)?
            .detail("messages", period(policy.and_then(|p| p.messages)))?
            .detail("files", period(policy.and_then(|p| p.files)))?
            .detail("inherits", Detail::Flag(policy.is_none()))?;
        self.ctx.audit.append(event).await?;
        let mut batch = Batch::new();
        crate::store::require_as_read(&mut batch, &self.ns.retention, SETTINGS_KEY, version);
        batch.put(&self.ns.retention, SETTINGS_KEY, &codec::encode(&settings)?);
        self.ctx.store.commit(batch).await?;
        Ok(settings)
    }

    /// Runs retention now (`manage_privacy_and_data`), or finishes the run an earlier call
    /// began; see the module's docs. One run at a time per workspace.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::Conflict`] while another run is under way here;
    /// [`Error::Unavailable`] when the store or the key service is out (the next run resumes);
    /// [`Error::Internal`] when the manifest cannot be recorded (the run stays open, and the
    /// next one records it).
    pub async fn run_retention(&self, caller: &Caller) -> Result<RetentionReport> {
        self.enter_admin_area(caller, AdminArea::PrivacyAndData)
            .await?;
        self.retain(Some(caller.user())).await
    }

    /// Whether a scheduled run would have nothing to do: no policy sets a period and no run is
    /// open.
    async fn retention_idle(&self) -> Result<bool> {
        let settings = self.retention_settings().await?.0;
        let keeps_all = std::iter::once(&settings.workspace)
            .chain(settings.channels.values())
            .all(|p| p.messages.is_none() && p.files.is_none());
        Ok(keeps_all
            && self
                .ctx
                .store
                .get(&self.ns.retention, RUN_KEY)
                .await?
                .is_none())
    }

    /// Runs retention as `by` (`None`: the deployment's schedule).
    pub(crate) async fn retain(&self, by: Option<UserId>) -> Result<RetentionReport> {
        let Ok(_running) = self.retention_running.try_lock() else {
            return Err(Error::Conflict(
                "a retention run is under way in this workspace".into(),
            ));
        };
        let (mut state, mut version, resumed) = match self
            .ctx
            .store
            .get_decoded::<RunState>(&self.ns.retention, RUN_KEY)
            .await?
        {
            Some((state, version)) => (state, version, true),
            None => {
                let phase = match self.next_channel(None) {
                    Some(channel) => Phase::Messages {
                        channel,
                        after: None,
                    },
                    None => Phase::Files { after: None },
                };
                let state = RunState {
                    started: self.ctx.clock.now(),
                    by,
                    phase,
                    counts: BTreeMap::new(),
                    spared_by: BTreeMap::new(),
                    unreadable_files: 0,
                    batches: 0,
                };
                (state, 0, false)
            }
        };
        let mut conflicts = 0;
        // The settings and the holds are read once, and again after a conflict: every batch
        // requires both as read (the settings' version, the holds epoch), so a change to either
        // fails the batch and is seen before anything else is removed.
        let (mut settings, mut settings_version) = self.retention_settings().await?;
        let mut held = self.held_set().await?;
        // The batch after the one committing, read while it commits (its messages are not the
        // committing batch's); dropped after a conflict.
        let mut prepared = None;
        while state.phase != Phase::Done {
            let (next, mut batch, removed) = match prepared.take() {
                Some(prepared) => prepared,
                None => {
                    self.retention_batch(&settings, settings_version, &held, &state)
                        .await?
                }
            };
            crate::store::require_as_read(&mut batch, &self.ns.retention, RUN_KEY, version);
            batch.put(&self.ns.retention, RUN_KEY, &codec::encode(&next)?);
            let ahead = async {
                if next.phase == Phase::Done {
                    return None;
                }
                Some(
                    self.retention_batch(&settings, settings_version, &held, &next)
                        .await,
                )
            };
            let (committed, following) =
                futures_util::future::join(self.ctx.store.commit(batch), ahead).await;
            match committed {
                Ok(written) => {
                    conflicts = 0;
                    state = next;
                    version = written;
                    if let Some((channel, messages)) = removed {
                        self.announce(Event::Removed { channel, messages });
                    }
                    prepared = following.transpose()?;
                }
                Err(e) if e.kind() == StorageKind::Conflict && conflicts < MAX_CONFLICTS => {
                    // An edit, a hold, a policy or another process moved on meanwhile: read
                    // again.
                    conflicts += 1;
                    (settings, settings_version) = self.retention_settings().await?;
                    held = self.held_set().await?;
                    match self
                        .ctx
                        .store
                        .get_decoded::<RunState>(&self.ns.retention, RUN_KEY)
                        .await?
                    {
                        Some((stored, v)) => (state, version) = (stored, v),
                        None if version == 0 => {}
                        // Another process finished this run.
                        None => break,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let report = RetentionReport {
            started: state.started,
            finished: self.ctx.clock.now(),
            resumed,
            channels: state.counts,
            spared_by: state.spared_by,
            unreadable_files: state.unreadable_files,
            batches: state.batches,
        };
        self.record_manifest(state.by, &report, &settings).await?;
        let mut batch = Batch::new();
        batch.require_version(&self.ns.retention, RUN_KEY, version);
        batch.delete(&self.ns.retention, RUN_KEY);
        if let Err(e) = self.ctx.store.commit(batch).await {
            // Recorded, not closed: the next run records its (empty) remainder again.
            tracing::warn!(error = %e, "a finished retention run could not be closed");
        }
        Ok(report)
    }

    /// The next batch of a run at `state`: what it removes, guarded by the holds and the settings
    /// as read, the run's state after it (the run record is added by the caller), and the
    /// messages it removes, to announce once it is committed.
    async fn retention_batch(
        &self,
        settings: &RetentionSettings,
        settings_version: u64,
        held: &crate::holds::HeldSet,
        state: &RunState,
    ) -> Result<(RunState, Batch, Option<(ChannelId, Vec<MessageId>)>)> {
        let mut next = state.clone();
        let mut batch = Batch::new();
        let mut removed = None;
        match &state.phase {
            Phase::Messages { channel, after } => {
                let ids = self
                    .messages_batch(settings, held, *channel, *after, &mut next, &mut batch)
                    .await?;
                if !ids.is_empty() {
                    removed = Some((*channel, ids));
                }
            }
            Phase::Files { after } => {
                self.files_batch(settings, held, after.clone(), &mut next, &mut batch)
                    .await?;
            }
            Phase::Done => {}
        }
        held.guard(self, &mut batch);
        crate::store::require_as_read(
            &mut batch,
            &self.ns.retention,
            SETTINGS_KEY,
            settings_version,
        );
        next.batches += 1;
        Ok((next, batch, removed))
    }

    /// The first channel after `after` (in id order), or the first of all.
    pub(crate) fn next_channel(&self, after: Option<ChannelId>) -> Option<ChannelId> {
        self.authz.authorizer().with_model(|m| {
            m.channels()
                .map(|c| c.id)
                .filter(|id| after.is_none_or(|a| *id > a))
                .min()
        })
    }

    /// The keys of `channel`'s messages past their period from after `after`, for a run that
    /// began at `started`; `None` when the channel keeps its messages for ever.
    fn message_range(
        &self,
        settings: &RetentionSettings,
        channel: ChannelId,
        after: Option<zt_core::MessageId>,
        started: Timestamp,
    ) -> Option<KeyRange> {
        let cut = settings
            .for_channel(channel)
            .messages
            .and_then(|p| cutoff(started, p))?;
        let start = match after {
            Some(id) => Bound::Excluded(crate::messages::message_key(channel, id)),
            None => Bound::Included(channel.to_bytes().to_vec()),
        };
        Some(KeyRange::new(
            start,
            Bound::Excluded(messages_before(channel, cut)),
        ))
    }

    /// One batch of `channel`'s messages past their period, from after `after`; the messages
    /// it removes.
    async fn messages_batch(
        &self,
        settings: &RetentionSettings,
        held: &crate::holds::HeldSet,
        channel: ChannelId,
        after: Option<zt_core::MessageId>,
        next: &mut RunState,
        batch: &mut Batch,
    ) -> Result<Vec<MessageId>> {
        let following = || match self.next_channel(Some(channel)) {
            Some(channel) => Phase::Messages {
                channel,
                after: None,
            },
            None => Phase::Files { after: None },
        };
        let Some(range) = self.message_range(settings, channel, after, next.started) else {
            next.phase = following();
            return Ok(Vec::new());
        };
        let page = self
            .ctx
            .store
            .scan(
                &self.ns.messages,
                &range,
                ScanOptions::new().limit(self.retention_config.batch.max(1)),
            )
            .await?;
        let mut counts = ChannelCounts::default();
        let mut last = None;
        let mut removed = Vec::new();
        for entry in &page.entries {
            let message = codec::decode::<crate::messages::MessageHead>(&entry.value)?;
            last = Some(message.id);
            if let Some(hold) = held.keeping(channel, message.author) {
                counts.spared += 1;
                *next.spared_by.entry(hold).or_default() += 1;
                continue;
            }
            crate::messages::remove_message(&self.ns, batch, entry, &message);
            removed.push(message.id);
            counts.messages += 1;
            counts.revisions += u64::from(message.revision);
        }
        if counts != ChannelCounts::default() {
            next.counts.entry(channel).or_default().add(&counts);
        }
        next.phase = match (page.next, last) {
            (Some(_), Some(id)) => Phase::Messages {
                channel,
                after: Some(id),
            },
            _ => following(),
        };
        Ok(removed)
    }

    /// One batch of file records, from after the stored key `after`: those past their channel's
    /// period lose their content and become tombstones.
    async fn files_batch(
        &self,
        settings: &RetentionSettings,
        held: &crate::holds::HeldSet,
        after: Option<Vec<u8>>,
        next: &mut RunState,
        batch: &mut Batch,
    ) -> Result<()> {
        let any = std::iter::once(&settings.workspace)
            .chain(settings.channels.values())
            .any(|p| p.files.is_some());
        if !any {
            // Nothing to look for: no file record is read.
            next.phase = Phase::Done;
            return Ok(());
        }
        let page = self
            .file_records(after, self.retention_config.batch.max(1))
            .await?;
        next.unreadable_files += page.unreadable;
        let now = self.ctx.clock.now();
        for (mut info, version) in page.files {
            if info.is_removed() {
                continue;
            }
            let expired = settings
                .for_channel(info.channel)
                .files
                .and_then(|p| cutoff(next.started, p))
                .is_some_and(|cut| info.created.unix_millis() < cut);
            if !expired {
                continue;
            }
            let counts = next.counts.entry(info.channel).or_default();
            if let Some(hold) = held.keeping(info.channel, info.uploader) {
                counts.spared += 1;
                *next.spared_by.entry(hold).or_default() += 1;
                continue;
            }
            counts.files += 1;
            info.expired = Some(now);
            self.erase_file_content(&mut info, version, batch)?;
        }
        next.phase = match page.next {
            Some(after) => Phase::Files { after: Some(after) },
            None => Phase::Done,
        };
        Ok(())
    }

    async fn record_manifest(
        &self,
        by: Option<UserId>,
        report: &RetentionReport,
        settings: &RetentionSettings,
    ) -> Result<()> {
        let actor = by.map_or_else(|| Actor::System("retention".into()), Actor::User);
        let totals = report.totals();
        let holds = report
            .spared_by
            .iter()
            .map(|(hold, n)| format!("{hold}={n}"))
            .collect::<Vec<_>>()
            .join(",");
        let overrides = settings
            .channels
            .iter()
            .map(|(channel, p)| format!("{channel}: {}", describe(*p)))
            .collect::<Vec<_>>();
        let channels: Vec<String> = report
            .channels
            .iter()
            .map(|(channel, c)| {
                format!(
                    "{channel}=messages:{},revisions:{},files:{},spared:{}",
                    c.messages, c.revisions, c.files, c.spared
                )
            })
            .collect();
        let parts: Vec<&[String]> = if channels.is_empty() {
            vec![&[]]
        } else {
            channels.chunks(MANIFEST_CHANNELS).collect()
        };
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let event = AuditEvent::new(
                AuditEventKind::RetentionCleanup,
                actor.clone(),
                report.finished,
            )
            .tenant(self.ctx.tenant)
            .target("content")
            .detail("run", report.started.unix_millis())?
            .detail("part", i64::try_from(i + 1).unwrap_or(i64::MAX))?
            .detail("parts", i64::try_from(count).unwrap_or(i64::MAX))?
            .detail("policy", describe(settings.workspace))?
            .detail("overrides", overrides.join("; "))?
            .detail(
                "messages",
                i64::try_from(totals.messages).unwrap_or(i64::MAX),
            )?
            .detail(
                "revisions",
                i64::try_from(totals.revisions).unwrap_or(i64::MAX),
            )?
            .detail("files", i64::try_from(totals.files).unwrap_or(i64::MAX))?
            .detail("spared", i64::try_from(totals.spared).unwrap_or(i64::MAX))?
            .detail("holds", holds.clone())?
            .detail("channels", part.join(" "))?
            .detail("resumed", Detail::Flag(report.resumed))?;
            self.ctx
                .audit
                .append(event)
                .await
                .map_err(|e| Error::internal("the retention manifest", e))?;
        }
        Ok(())
    }
}

impl Chat {
    /// Runs retention in every workspace of the deployment, as the deployment's schedule
    /// (`retention` is the actor of their manifests). A workspace that keeps everything (no
    /// period set, no run open) is passed over, with no manifest. A workspace whose run fails is
    /// reported and left for the next pass, which resumes it.
    ///
    /// # Errors
    /// The store's errors listing the workspaces; each workspace's own result is in the answer.
    pub async fn run_retention(&self) -> Result<Vec<(zt_core::TenantId, Result<RetentionReport>)>> {
        let mut results = Vec::new();
        for info in self.workspaces().await? {
            let workspace = match self.workspace(info.id).await {
                Ok(workspace) => workspace,
                Err(e) => {
                    results.push((info.id, Err(e)));
                    continue;
                }
            };
            match workspace.retention_idle().await {
                Ok(true) => continue,
                Ok(false) => results.push((info.id, workspace.retain(None).await)),
                Err(e) => results.push((info.id, Err(e))),
            }
        }
        Ok(results)
    }
}

/// Runs [`Chat::run_retention`] every `every` (the first pass after one period), logging what
/// each pass did, until the task is aborted or the runtime stops.
pub fn spawn_retention(chat: Arc<Chat>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match chat.run_retention().await {
                Ok(results) => {
                    for (tenant, result) in results {
                        match result {
                            Ok(report) => {
                                let totals = report.totals();
                                tracing::info!(
                                    %tenant,
                                    messages = totals.messages,
                                    files = totals.files,
                                    spared = totals.spared,
                                    "retention run finished"
                                );
                            }
                            Err(e) => {
                                tracing::warn!(%tenant, error = %e, "retention run failed; the next pass resumes it");
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention pass could not list workspaces"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_bound_sorts_between_ids_before_and_at_the_cutoff() {
        let channel = ChannelId::from_bytes([9; 16]);
        let cut = 1_765_000_000_000;
        let bound = messages_before(channel, cut);
        for (millis, before) in [(cut - 1, true), (cut, false), (cut + 1, false), (1, true)] {
            for _ in 0..50 {
                let clock = zt_core::ManualClock::new(Timestamp::from_unix_millis(millis));
                let id = zt_core::MessageId::generate(&clock);
                let key = crate::messages::message_key(channel, id);
                assert_eq!(key < bound, before, "{millis}");
            }
        }
    }

    #[test]
    fn cutoffs_never_reach_before_the_epoch() {
        let now = Timestamp::from_unix_millis(10_000);
        assert_eq!(cutoff(now, Duration::from_secs(5)), Some(5_000));
        assert_eq!(cutoff(now, Duration::from_secs(10)), None);
        assert_eq!(cutoff(now, MAX_RETENTION), None);
    }
}
