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

/// A SCIM key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScimKeyView {
    /// The key id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// When it stops working (RFC 3339), if it was rotated.
    pub expires: Option<String>,
}

/// A new key: its secret, shown this once (never in `Debug`).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct NewScimKey {
    /// The key.
    pub key: ScimKeyView,
    /// The bearer token to give the identity provider; it is not stored and cannot be shown
    /// again.
    pub secret: String,
}

impl std::fmt::Debug for NewScimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewScimKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What a new key is called.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScimKey {
    /// 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
}
