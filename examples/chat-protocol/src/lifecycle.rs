//! The data lifecycle in the privacy and data area: retention of messages and files, its runs,
//! and legal holds on content.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long content is kept, in seconds; absent or `null` keeps it for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicyView {
    /// Messages, with their edit history and deleted ones' text.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub messages_seconds: Option<u64>,
    /// Files, with their content and previews (their records stay as tombstones).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub files_seconds: Option<u64>,
}

/// A workspace's retention.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionView {
    /// The workspace's policy.
    pub workspace: RetentionPolicyView,
    /// Channels with their own policy, by channel id.
    pub channels: BTreeMap<String, RetentionPolicyView>,
    /// The shortest period the deployment allows, in seconds.
    pub floor_seconds: u64,
}

/// What a run did in one channel.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct RetentionCountsView {
    /// Messages removed.
    pub messages: u64,
    /// Earlier texts removed with them.
    pub revisions: u64,
    /// Files whose content was removed.
    pub files: u64,
    /// Messages and files past their period that a legal hold kept.
    pub spared: u64,
}

/// What a retention run did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionReportView {
    /// When it began (Unix milliseconds).
    pub started: i64,
    /// When it ended (Unix milliseconds).
    pub finished: i64,
    /// Whether it finished a run that had stopped.
    pub resumed: bool,
    /// The sums over every channel.
    pub totals: RetentionCountsView,
    /// Per channel id, the channels where anything was past its period.
    pub channels: BTreeMap<String, RetentionCountsView>,
    /// Per hold id, how many pieces of content the hold kept.
    pub spared_by: BTreeMap<String, u64>,
}

/// What a legal hold keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// Everything a user wrote.
    Custodian,
    /// Everything in a channel.
    Channel,
    /// Both audit logs (no pruning).
    AuditLogs,
}

/// A legal hold to place.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLegalHold {
    /// What it keeps.
    pub kind: HoldKind,
    /// The user (`usr_…`) or channel (`chn_…`); absent for the audit logs.
    #[serde(default)]
    pub subject: Option<String>,
    /// Why: a matter or case, 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A legal hold in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LegalHoldView {
    /// Its id (`hld_…`).
    pub id: String,
    /// What it keeps.
    pub kind: HoldKind,
    /// The user or channel it keeps; absent for the audit logs.
    pub subject: Option<String>,
    /// Why.
    pub reason: String,
    /// Who placed it.
    pub owner: String,
    /// When it began (Unix milliseconds).
    pub started: i64,
}

/// A request waiting for a second administrator's approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// Its id (`apr_…`).
    pub id: String,
    /// What it asks for, such as `release_legal_hold`.
    pub action: String,
    /// What the action is about (for a release, the hold's id).
    pub subject: String,
    /// Who asked.
    pub requested_by: String,
    /// When (Unix milliseconds).
    pub requested: i64,
    /// After this (Unix milliseconds) it can no longer be approved.
    pub expires: i64,
}

/// What an approval carried out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovedView {
    /// The action, such as `release_legal_hold`.
    pub action: String,
    /// The hold it released, for a release.
    pub hold: Option<LegalHoldView>,
    /// The wipe it approved, for a wipe's execution.
    #[serde(default)]
    pub wipe: Option<WipeView>,
}

/// A workspace wipe to schedule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWipe {
    /// Seconds from now before it may run (at least the deployment's floor).
    #[schema(minimum = 1)]
    pub delay_seconds: u64,
}

/// A workspace's wipe: its schedule, approval and outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WipeView {
    /// The workspace.
    pub workspace: String,
    /// Not run before this (Unix milliseconds).
    pub not_before: i64,
    /// Who scheduled it.
    pub scheduled_by: String,
    /// When (Unix milliseconds).
    pub scheduled: i64,
    /// The request a second administrator approves (`POST /admin/approvals/{id}/approve`).
    pub approval: String,
    /// Who approved it, once someone did.
    pub approved_by: Option<String>,
    /// `scheduled`, `destroying`, `removing` or `done`.
    pub phase: String,
    /// When its keys were destroyed (Unix milliseconds): from then on nothing of it opens.
    pub unreadable_at: Option<i64>,
    /// The final signed checkpoints of its audit logs (compliance, security).
    pub checkpoints: Vec<String>,
}

/// What happens to a deleted user's messages and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthoredContentView {
    /// Kept, the author pseudonymised (their id resolves to a nameless tombstone).
    Keep,
    /// Deleted: messages with their history, files to tombstones; held content stays.
    Delete,
}

/// The workspace's policy for deleted users' content.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthoredContentPolicy {
    /// The policy.
    pub policy: AuthoredContentView,
}

/// What a user's deletion did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDeletionView {
    /// What remains of the user: a tombstone.
    pub user: crate::views::UserView,
    /// The policy their content followed.
    pub content: AuthoredContentView,
    /// Messages of theirs removed.
    pub messages: u64,
    /// Earlier texts of those messages removed.
    pub revisions: u64,
    /// Files of theirs whose content was removed.
    pub files: u64,
    /// Messages and files of theirs a legal hold kept.
    pub spared: u64,
    /// Sessions ended.
    pub sessions: u64,
    /// Identity links (single sign-on) removed.
    pub links: u64,
}

/// Rows and bytes, as stored (sealed).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    /// Rows.
    pub rows: u64,
    /// Bytes of keys and sealed values.
    pub bytes: u64,
}

/// What a workspace's data takes, per kind of record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorageUseView {
    /// Messages, tombstones included.
    pub messages: UsageView,
    /// Earlier texts of edited and deleted messages.
    pub history: UsageView,
    /// File records and tombstones.
    pub files: UsageView,
    /// File content and previews.
    pub file_content: UsageView,
    /// Everything else.
    pub other: UsageView,
    /// The sum.
    pub total: UsageView,
}

/// What a storage clean-up removed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct StorageCleanUpView {
    /// Rows of deleted channels, unreadable for good.
    pub shredded: u64,
    /// Chunks of uploads that never finished.
    pub abandoned_chunks: u64,
    /// Tombstones of messages and files past their own retention.
    pub tombstones: u64,
    /// Bytes freed, as stored.
    pub bytes: u64,
}

/// A backup of the whole deployment, as its catalog entry describes it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupView {
    /// Its id (`bk-…`).
    pub id: String,
    /// When it was taken (Unix milliseconds).
    pub created: i64,
    /// The archive's size in bytes.
    pub size: u64,
    /// SHA-256 of the archive file, hex.
    pub sha256: String,
    /// How many stored rows it holds.
    pub rows: u64,
    /// The backup key it is sealed to (the KMS wraps its secret).
    pub backup_key: String,
    /// The offline recovery recipients it is also sealed to (`age1…`).
    pub recovery: Vec<String>,
    /// The server key that signed it, base64.
    pub signer: String,
}

/// A backup read whole and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupVerifiedView {
    /// The backup.
    pub id: String,
    /// How many parts its signed manifest lists.
    pub parts: usize,
    /// The bytes of its parts.
    pub bytes: u64,
}

/// A new backup key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupKeyView {
    /// Its id: backups taken from now on are sealed to it.
    pub id: String,
}

/// What the recovery material covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryStatusView {
    /// Each configured recovery recipient (`age1…`) and the backups sealed to it.
    pub recipients: Vec<RecoveryRecipientView>,
    /// Backups none of today's recipients opens.
    pub uncovered: Vec<String>,
    /// The backup keys, oldest first (the last is current).
    pub backup_keys: Vec<String>,
    /// When the recovery kit was last written (Unix milliseconds), if there is one.
    pub kit_written: Option<i64>,
}

/// One recovery recipient and the backups it opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecoveryRecipientView {
    /// The recipient (`age1…`).
    pub recipient: String,
    /// The backups sealed to it.
    pub backups: Vec<String>,
}

/// A key rotation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotationView {
    /// The new version.
    pub version: u32,
    /// How many workspace key versions were rewrapped (a KMS key rotation).
    pub rewrapped: usize,
}

/// When backups are taken by themselves, and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupScheduleView {
    /// Seconds between scheduled backups (at least 3600); none: no schedule.
    pub every_seconds: Option<u64>,
    /// How many backups to keep (1 to 1000): the oldest beyond are deleted after each
    /// scheduled backup.
    pub keep: u32,
    /// When the last scheduled backup was taken (Unix milliseconds).
    #[serde(default)]
    pub last_run: Option<i64>,
}

/// A new backup schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBackupSchedule {
    /// Seconds between scheduled backups (at least 3600); null: no schedule.
    #[schema(minimum = 3600)]
    pub every_seconds: Option<u64>,
    /// How many backups to keep.
    #[schema(minimum = 1, maximum = 1000)]
    pub keep: u32,
}

/// What an update check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateStatusView {
    /// The running version.
    pub running: String,
    /// The storage schema this build writes.
    pub schema: u32,
    /// The newest release the signed manifest names.
    pub latest: String,
    /// When it was released (Unix milliseconds).
    pub released: i64,
    /// What changed.
    pub notes: String,
    /// Whether it is newer than the running version.
    pub available: bool,
}
