//! The audit-event vocabulary, its one classification, and the `AuditSink` port.
//!
//! Every security- or compliance-relevant step in zt becomes an [`AuditEvent`] of one
//! [`AuditEventKind`]. [`AuditEventKind::class`] decides, in one exhaustive `match` with no
//! wildcard arm, which store an event goes to. A new kind does not compile until someone decides
//! that (a test checks it, by adding a kind and compiling).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{TenantId, UserId};

// The kinds and their classification, kept free of dependencies so that a test can compile it
// alone and prove that an unclassified kind does not compile.
include!("audit_kinds.rs");

impl fmt::Display for AuditEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for AuditEventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for AuditEventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AuditEventKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown audit event kind {name:?}")))
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A user.
    User(UserId),
    /// zt itself, naming the component (`retention`, `scim`, `keyring`, ...).
    System(String),
    /// Somebody not (yet) authenticated, such as a failed login.
    Anonymous,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and failed.
    Failure,
    /// It was refused by policy.
    Denied,
}

/// A structured detail value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detail {
    /// Text.
    Text(String),
    /// A whole number.
    Number(i64),
    /// A flag.
    Flag(bool),
}

/// Whether a detail name suggests a secret. Unambiguous words count anywhere in the name
/// (`NewPassword`); short ones only as whole words (`api_token`, `PIN`, but not `pinned_key`).
fn looks_secret(name: &str) -> Option<&'static str> {
    const ANYWHERE: &[&str] = &["password", "passphrase", "passwd", "secret", "key_material"];
    const WORDS: &[&str] = &["pin", "token", "cookie", "credential", "credentials", "otp"];
    let lower = name.to_ascii_lowercase();
    if let Some(word) = ANYWHERE.iter().find(|w| lower.contains(*w)) {
        return Some(word);
    }
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|part| WORDS.iter().find(|w| **w == part).copied())
}

/// One audit event: what happened, to whom, by whom, from where, when, and how it ended.
///
/// ```
/// use zt_core::{Actor, AuditClass, AuditEvent, AuditEventKind, Outcome, Timestamp};
///
/// let event = AuditEvent::new(AuditEventKind::LoginFailed, Actor::Anonymous, Timestamp::EPOCH)
///     .outcome(Outcome::Failure)
///     .target("user:alice")
///     .detail("reason", "bad_password")?;
/// assert_eq!(event.kind.class(), AuditClass::Security);
/// // Names that smell of secrets are refused.
/// assert!(event.clone().detail("password", "hunter2").is_err());
/// # Ok::<(), zt_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditEventKind,
    /// The tenant, when the event belongs to one.
    pub tenant: Option<TenantId>,
    /// Who did it.
    pub actor: Actor,
    /// What it was done to (`user:usr_…`, `channel:chn_…`, `backup:…`).
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The client address, when there is one.
    pub source: Option<IpAddr>,
    /// When it happened.
    pub at: Timestamp,
    /// Structured details, never a secret.
    pub details: BTreeMap<String, Detail>,
}

impl AuditEvent {
    /// An event of `kind` by `actor` at `at`, successful unless told otherwise.
    pub fn new(kind: AuditEventKind, actor: Actor, at: Timestamp) -> Self {
        AuditEvent {
            kind,
            tenant: None,
            actor,
            target: None,
            outcome: Outcome::Success,
            source: None,
            at,
            details: BTreeMap::new(),
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the client address.
    pub fn source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds a detail.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the name suggests a secret (`password`, `token`, `secret`,
    /// ...): audit events never carry secrets.
    pub fn detail(mut self, name: &str, value: impl Into<Detail>) -> Result<Self> {
        if let Some(word) = looks_secret(name) {
            return Err(Error::InvalidInput(format!(
                "audit detail {name:?} looks like a secret ({word}); audit events never carry secrets"
            )));
        }
        self.details.insert(name.to_string(), value.into());
        Ok(self)
    }
}

impl From<&str> for Detail {
    fn from(value: &str) -> Self {
        Detail::Text(value.to_string())
    }
}

impl From<String> for Detail {
    fn from(value: String) -> Self {
        Detail::Text(value)
    }
}

impl From<i64> for Detail {
    fn from(value: i64) -> Self {
        Detail::Number(value)
    }
}

impl From<bool> for Detail {
    fn from(value: bool) -> Self {
        Detail::Flag(value)
    }
}

/// Where an event was recorded: its index in each store that took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditReceipt {
    /// The entry's index in the security log, when it went there.
    pub security: Option<u64>,
    /// The entry's index in the compliance log, when it went there.
    pub compliance: Option<u64>,
}

/// Where audit events go. zt-audit implements it; identity, authz and chat emit through it.
///
/// # Contract
/// `append` returns only once the event is durable in every store its class names (and that the
/// deployment enables), with its index there.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Records `event`.
    async fn append(&self, event: AuditEvent) -> Result<AuditReceipt>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = AuditEventKind::ALL.iter().map(|k| k.name()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate names");
        for kind in AuditEventKind::ALL {
            assert_eq!(AuditEventKind::from_name(kind.name()), Some(*kind));
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(
                serde_json::from_str::<AuditEventKind>(&json).unwrap(),
                *kind
            );
        }
        assert!(serde_json::from_str::<AuditEventKind>("\"nope\"").is_err());
    }

    #[test]
    fn the_classification_follows_the_rules() {
        use AuditEventKind as K;
        for kind in [
            K::LoginFailed,
            K::PathTraversalAttempt,
            K::KmsUnavailable,
            K::EscalationRefused,
        ] {
            assert_eq!(kind.class(), AuditClass::Security, "{kind}");
        }
        for kind in [
            K::RoleChanged,
            K::RoleCreated,
            K::SegmentChanged,
            K::ServerIdentityCreated,
            K::ScimUserDeleted,
            K::KeyDestroyed,
            K::WipeExecuted,
            K::LegalHoldPlaced,
        ] {
            assert_eq!(kind.class(), AuditClass::Both, "{kind}");
        }
        for kind in [
            K::RetentionCleanup,
            K::DataExported,
            K::AuditLogRead,
            K::MembershipChanged,
        ] {
            assert_eq!(kind.class(), AuditClass::Compliance, "{kind}");
        }
        assert!(AuditClass::Both.security() && AuditClass::Both.compliance());
        assert!(!AuditClass::Security.compliance() && !AuditClass::Compliance.security());
        assert_eq!(AuditEventKind::ALL.len(), 66);
    }

    #[test]
    fn secret_looking_details_are_refused() {
        let event = AuditEvent::new(
            AuditEventKind::LoginFailed,
            Actor::Anonymous,
            Timestamp::EPOCH,
        );
        for name in [
            "password",
            "NewPassword",
            "api_token",
            "client_secret",
            "PIN",
            "session_cookie",
        ] {
            assert!(event.clone().detail(name, "x").is_err(), "{name}");
        }
        let ok = event
            .detail("attempts", 3)
            .unwrap()
            .detail("locked", true)
            .unwrap()
            .detail("pinned_key_fingerprint", "ab:cd")
            .unwrap()
            .detail("private_channel", true)
            .unwrap();
        assert_eq!(ok.details.len(), 4);
    }
}
