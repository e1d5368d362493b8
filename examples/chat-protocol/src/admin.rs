//! What the admin areas answer that clients read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An audit event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Its index in the log.
    pub index: u64,
    /// Its kind, such as `login.failed`.
    pub kind: String,
    /// Who: a user id, `system:<component>` or `anonymous`.
    pub actor: String,
    /// What it was about.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The client address.
    pub source: Option<String>,
    /// When (Unix milliseconds).
    pub at: i64,
    /// More about it (never secrets).
    #[schema(value_type = Object)]
    pub details: BTreeMap<String, serde_json::Value>,
}

/// The newest events of an audit log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The log's size.
    pub size: u64,
    /// The newest checkpoint signed over the log (a signed note); none before the first.
    pub checkpoint: Option<String>,
    /// The events, oldest first.
    pub events: Vec<AuditEventView>,
}

/// The verdict on a log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditVerdict {
    /// Whether every entry, proof and checkpoint holds.
    pub valid: bool,
    /// The size verified.
    pub size: Option<u64>,
    /// The first problem found.
    pub finding: Option<String>,
}
