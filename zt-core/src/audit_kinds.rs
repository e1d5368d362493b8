// The audit event kinds and their one classification. Included by audit.rs; compiled on its
// own, without dependencies, by tests/classification_is_exhaustive.rs.

/// Which audit store an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditClass {
    /// The security store (always on): attacks, authentication, authorization, key outages.
    Security,
    /// The compliance store (where the deployment enables it): data lifecycle and its access.
    Compliance,
    /// Both stores: privilege changes and sensitive lifecycle events.
    Both,
}

impl AuditClass {
    /// Whether the security store records it.
    pub const fn security(self) -> bool {
        matches!(self, AuditClass::Security | AuditClass::Both)
    }

    /// Whether the compliance store records it.
    pub const fn compliance(self) -> bool {
        matches!(self, AuditClass::Compliance | AuditClass::Both)
    }
}

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $kind:ident = $name:literal,)*) => {
        /// What happened. The names (`login.succeeded`, ...) are stable: they are stored.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AuditEventKind {
            $($(#[$doc])* $kind,)*
        }

        impl AuditEventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [AuditEventKind] = &[$(AuditEventKind::$kind,)*];

            /// The stable name, such as `login.failed`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(AuditEventKind::$kind => $name,)*
                }
            }

            /// The kind with this stable name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(AuditEventKind::$kind),)*
                    _ => None,
                }
            }
        }
    };
}

event_kinds! {
    // Authentication and authorization.
    /// A password or token login succeeded.
    LoginSucceeded = "login.succeeded",
    /// A login failed (wrong credentials, locked account).
    LoginFailed = "login.failed",
    /// A single-sign-on login succeeded.
    SsoSucceeded = "sso.succeeded",
    /// A single-sign-on login failed (state, nonce, issuer or token checks).
    SsoFailed = "sso.failed",
    /// A session ended at the user's request.
    Logout = "logout",
    /// Repeated failures locked an account or a source address for a while.
    AccountLocked = "login.locked",
    /// An administrator lifted a lock.
    AccountUnlocked = "login.unlocked",
    /// A session was revoked (by its user, an administrator, or a password change).
    SessionRevoked = "session.revoked",
    /// A user's password was set or changed.
    PasswordChanged = "user.password_changed",
    /// A client was rate limited.
    RateLimited = "rate_limited",
    /// A request was denied for lack of permission.
    UnauthorizedAccess = "access.unauthorized",
    /// An administrative request was denied.
    AdminAccessDenied = "admin.access_denied",
    // Cryptographic and protocol failures.
    /// A secure-channel key exchange failed (a changed or unknown server key, a bad message).
    KeyExchangeFailed = "crypto.key_exchange_failed",
    /// A frame that was not a valid encrypted transport message was rejected.
    PlaintextPacketRejected = "crypto.plaintext_rejected",
    /// A signature did not verify.
    SignatureVerificationFailed = "crypto.signature_failed",
    /// A path tried to leave its directory.
    PathTraversalAttempt = "attack.path_traversal",
    /// A request claimed an identity it does not hold.
    IdentitySpoofingAttempt = "attack.identity_spoofing",
    // Privilege and account lifecycle.
    /// A user account was created.
    UserCreated = "user.created",
    /// A user's roles or permissions changed.
    RoleChanged = "user.role_changed",
    /// A role was defined.
    RoleCreated = "role.created",
    /// A role's permissions or name changed.
    RoleUpdated = "role.updated",
    /// A role was removed.
    RoleDeleted = "role.deleted",
    /// A channel or group's visibility, links or place changed.
    SegmentChanged = "authz.segment_changed",
    /// A membership source was added to or removed from a channel or group member.
    MembershipChanged = "membership.changed",
    /// A role or assignment change was refused because it would escalate privilege.
    EscalationRefused = "authz.escalation_refused",
    /// A user account was deactivated.
    UserDeactivated = "user.deactivated",
    /// A user account was reactivated.
    UserReactivated = "user.reactivated",
    /// A user account was deleted.
    UserDeleted = "user.deleted",
    /// SCIM provisioned a user.
    ScimUserCreated = "scim.user_created",
    /// SCIM changed a user.
    ScimUserUpdated = "scim.user_updated",
    /// SCIM deactivated a user.
    ScimUserDeactivated = "scim.user_deactivated",
    /// SCIM deleted a user.
    ScimUserDeleted = "scim.user_deleted",
    /// SCIM created a group.
    ScimGroupCreated = "scim.group_created",
    /// SCIM changed a group or its members.
    ScimGroupUpdated = "scim.group_updated",
    /// SCIM deleted a group.
    ScimGroupDeleted = "scim.group_deleted",
    /// The SCIM API key was rotated.
    ScimApiKeyRotated = "scim.api_key_rotated",
    // Key and backup lifecycle.
    /// A backup was created.
    BackupCreated = "backup.created",
    /// A backup was imported.
    BackupImported = "backup.imported",
    /// A backup was deleted.
    BackupDeleted = "backup.deleted",
    /// A backup was restored.
    BackupRestored = "backup.restored",
    /// A restore was rolled back.
    BackupRolledBack = "backup.rolled_back",
    /// The backup schedule changed.
    BackupScheduleChanged = "backup.schedule_changed",
    /// The backup key was rotated.
    BackupKeyRotated = "backup.key_rotated",
    /// Recovery material was used.
    RecoveryMaterialUsed = "backup.recovery_material_used",
    /// A key was rotated.
    KeyRotated = "key.rotated",
    /// An administrator checked a release manifest for updates (refused ones denied, with why).
    UpdateChecked = "update.checked",
    /// A key was destroyed (crypto-shredding).
    KeyDestroyed = "key.destroyed",
    /// An administrator read the encryption status (the KMS, its key, its call figures).
    KeyStatusRead = "key.status_read",
    /// The server created its identity key (first start); the fingerprint is in the details.
    /// Clients that pinned another key refuse this server from now on.
    ServerIdentityCreated = "server.identity_created",
    /// An administrator changed a workspace setting (the area and the new values are in the
    /// details).
    SettingsChanged = "settings.changed",
    /// The KMS became unreachable.
    KmsUnavailable = "kms.unavailable",
    /// The KMS answered again.
    KmsRecovered = "kms.recovered",
    // Data lifecycle.
    /// A wipe was scheduled.
    WipeScheduled = "wipe.scheduled",
    /// A wipe ran.
    WipeExecuted = "wipe.executed",
    /// A scheduled wipe was cancelled.
    WipeCancelled = "wipe.cancelled",
    /// Retention removed expired data.
    RetentionCleanup = "retention.cleanup",
    /// Data was exported.
    DataExported = "data.exported",
    /// A file was deleted.
    FileDeleted = "file.deleted",
    /// Stored data failed its integrity check when read (a chunk that does not open, a file
    /// shorter or longer than its record): damage or tampering at rest.
    DataIntegrityFailed = "data.integrity_failed",
    /// A legal hold was placed.
    LegalHoldPlaced = "legal_hold.placed",
    /// A legal hold was released.
    LegalHoldReleased = "legal_hold.released",
    /// Someone asked for a second person's approval of an action that cannot be undone.
    ApprovalRequested = "approval.requested",
    /// A second person approved (or, denied, tried to approve their own request); the action
    /// follows.
    ApprovalGranted = "approval.granted",
    // Audit access.
    /// The audit log was read.
    AuditLogRead = "audit.read",
    /// The audit log was exported.
    AuditLogExported = "audit.exported",
    /// Verification of the audit log failed.
    AuditVerificationFailed = "audit.verification_failed",
}

impl AuditEventKind {
    /// Which store the kind goes to. One exhaustive match, no wildcard: adding a kind does not
    /// compile until it is classified here.
    pub const fn class(self) -> AuditClass {
        use AuditClass::{Both, Compliance, Security};
        use AuditEventKind as K;
        match self {
            K::LoginSucceeded
            | K::LoginFailed
            | K::SsoSucceeded
            | K::SsoFailed
            | K::Logout
            | K::AccountLocked
            | K::SessionRevoked
            | K::RateLimited
            | K::UnauthorizedAccess
            | K::AdminAccessDenied
            | K::KeyExchangeFailed
            | K::PlaintextPacketRejected
            | K::SignatureVerificationFailed
            | K::PathTraversalAttempt
            | K::IdentitySpoofingAttempt
            | K::KmsUnavailable
            | K::KmsRecovered
            | K::EscalationRefused
            | K::KeyStatusRead
            | K::UpdateChecked
            | K::AuditVerificationFailed => Security,
            // Privilege and account lifecycle: who can do what, for both stores.
            K::SettingsChanged
            | K::UserCreated
            | K::AccountUnlocked
            | K::PasswordChanged
            | K::RoleChanged
            | K::RoleCreated
            | K::RoleUpdated
            | K::RoleDeleted
            | K::SegmentChanged
            | K::UserDeactivated
            | K::UserReactivated
            | K::UserDeleted
            | K::ScimUserCreated
            | K::ScimUserUpdated
            | K::ScimUserDeactivated
            | K::ScimUserDeleted
            | K::ScimGroupCreated
            | K::ScimGroupUpdated
            | K::ScimGroupDeleted
            | K::ScimApiKeyRotated
            // Sensitive key, backup and data lifecycle.
            | K::BackupCreated
            | K::BackupImported
            | K::BackupDeleted
            | K::BackupRestored
            | K::BackupRolledBack
            | K::BackupScheduleChanged
            | K::BackupKeyRotated
            | K::RecoveryMaterialUsed
            | K::KeyRotated
            | K::KeyDestroyed
            | K::ServerIdentityCreated
            | K::WipeScheduled
            | K::WipeExecuted
            | K::WipeCancelled
            | K::LegalHoldPlaced
            | K::LegalHoldReleased
            | K::ApprovalRequested
            | K::ApprovalGranted
            | K::DataIntegrityFailed
            | K::AuditLogExported => Both,
            K::RetentionCleanup
            | K::DataExported
            | K::FileDeleted
            | K::AuditLogRead
            | K::MembershipChanged => Compliance,
        }
    }
}
