//! How the identity records are laid out at rest: which namespaces a deployment's
//! `EncryptingStore` blinds, and the earlier layout that opening a tenant moves from.
//!
//! Every key that names a user is kept out of the disk's clear text: the name and address
//! indexes, the lock states and the user and credential records are blinded whole (read by key
//! only); a user's session list is blinded by its user-id prefix, so it is still one ordered
//! range per user. What stays in clear is the token hash of each session (random, and already
//! the key of [`SESSIONS`](super::SESSIONS)) and the number of rows.

use zt_storage::{EncryptingStore, KvStore, KvStoreExt, Namespace};

use crate::error::Result;

use super::login::{CREDENTIALS, LOCKOUT};
use super::oidc::{
    AUTH_SETTINGS, SSO_DEVICE_FLOWS, SSO_FLOWS, SSO_LINKS, SSO_LOGOUT_TOKENS, SSO_PROVIDERS,
    SSO_SID_SESSIONS, SSO_SUBJECT_SESSIONS, SSO_USER_LINKS,
};
use super::scim::{SCIM_KEYS, SCIM_USER_EXTERNAL_IDS, SCIM_USER_NAMES, SCIM_USERS};
use super::sessions::USER_SESSIONS;
use super::users::{DELETED_USERS, EMAILS, USERNAMES, USERS};

/// The namespaces a deployment blinds whole (`EncryptingStore::blind_namespace`).
pub const BLINDED_NAMESPACES: [&str; 16] = [
    USERNAMES,
    EMAILS,
    LOCKOUT,
    USERS,
    DELETED_USERS,
    CREDENTIALS,
    SSO_PROVIDERS,
    SSO_LINKS,
    SSO_FLOWS,
    SSO_DEVICE_FLOWS,
    SSO_LOGOUT_TOKENS,
    AUTH_SETTINGS,
    SCIM_KEYS,
    SCIM_USERS,
    SCIM_USER_NAMES,
    SCIM_USER_EXTERNAL_IDS,
];

/// The namespaces a deployment blinds by prefix (`EncryptingStore::blind_prefix`), with the
/// prefix length: a user id, or a 16-byte hash of a provider's session or subject.
pub const PREFIX_BLINDED_NAMESPACES: [(&str, usize); 4] = [
    (USER_SESSIONS, 16),
    (SSO_USER_LINKS, 16),
    (SSO_SID_SESSIONS, 16),
    (SSO_SUBJECT_SESSIONS, 16),
];

/// Where records keyed by user id were kept, unblinded, before; [`move_legacy_records`] moves
/// them.
pub const LEGACY_NAMESPACES: [(&str, &str); 3] = [
    ("identity.users", USERS),
    ("identity.credentials", CREDENTIALS),
    ("identity.user_sessions", USER_SESSIONS),
];

/// `store` with the identity namespaces blinded as above.
///
/// ```
/// use std::sync::Arc;
/// use zt_core::identity::{blind_identity, BLINDED_NAMESPACES};
/// use zt_storage::{EncryptingStore, KvKeyRecords, KvStore, MemoryStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
/// let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
/// let records = Arc::new(KvKeyRecords::standard(Arc::clone(&inner))?);
/// let root = zt_crypto::KeyId::new("root")?;
/// let keyring = Arc::new(zt_crypto::Keyring::new(kms, records, root, Default::default()));
/// let store = blind_identity(EncryptingStore::new(inner, keyring, "tenant-1"))?;
/// assert!(format!("{store:?}").contains(BLINDED_NAMESPACES[0]));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// None in practice: the names are valid.
pub fn blind_identity<S: KvStore>(mut store: EncryptingStore<S>) -> Result<EncryptingStore<S>> {
    for name in BLINDED_NAMESPACES {
        store = store.blind_namespace(Namespace::new(name)?);
    }
    for (name, len) in PREFIX_BLINDED_NAMESPACES {
        store = store.blind_prefix(Namespace::new(name)?, len);
    }
    Ok(store)
}

/// Moves what [`LEGACY_NAMESPACES`] still hold to the current namespaces, sealing each record
/// again under the current layout. [`Sessions::new`](super::Sessions::new), the one step of
/// opening a tenant's identity that touches the store, runs it; it reads one empty page per
/// namespace once the move is done.
///
/// # Errors
/// The store's errors.
pub async fn move_legacy_records(store: &dyn KvStore) -> Result<u64> {
    let mut moved = 0;
    for (old, new) in LEGACY_NAMESPACES {
        moved += store
            .move_namespace(&Namespace::new(old)?, &Namespace::new(new)?)
            .await?;
    }
    Ok(moved)
}
