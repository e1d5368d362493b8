//! How a tenant's data is laid out and sealed: one `EncryptingStore` per tenant over the
//! deployment's store, with every channel's records under that channel's own scope key, every
//! live user's identity records (profile, password hash, SCIM document, sessions list, identity
//! links) under that user's own scope key, and every name-like lookup key blinded. Destroying a
//! channel's or a user's key shreds every copy of those records, wherever they were copied.

use std::sync::Arc;

use zt_core::TenantId;
use zt_crypto::Keyring;
use zt_storage::{EncryptingStore, KvStore, Namespace, PrefixedStore};

use crate::error::Result;

/// Channel records (name, topic, state), by channel id; blinded.
pub(crate) const CHANNELS: &str = "chat.b.channels";
/// Standard channel names (lower case) to channel ids; blinded.
pub(crate) const CHANNEL_NAMES: &str = "chat.channel_names";
/// Direct-message member sets to channel ids; blinded.
pub(crate) const DIRECT: &str = "chat.direct";
/// Messages, by channel id then message id; blinded by the channel id, so each channel's
/// messages are still one ordered range.
pub(crate) const MESSAGES: &str = "chat.b.messages";
/// Earlier versions of edited and deleted messages, by channel id, message id, revision;
/// blinded.
pub(crate) const HISTORY: &str = "chat.b.message_history";
/// File records and tombstones, by channel id then file id; blinded.
pub(crate) const FILES: &str = "chat.b.files";
/// File content, by channel id, file id, chunk number; blinded.
pub(crate) const FILE_CHUNKS: &str = "chat.b.file_chunks";
/// File previews (thumbnails), by channel id then file id; blinded.
pub(crate) const FILE_PREVIEWS: &str = "chat.b.file_previews";
/// Group records (name), by group id; blinded.
pub(crate) const GROUPS: &str = "chat.b.groups";
/// Group names (lower case) to group ids; blinded.
pub(crate) const GROUP_NAMES: &str = "chat.group_names";
/// Legal holds on content, and the holds epoch (see `crate::holds`).
pub(crate) const HOLDS: &str = "chat.holds";
/// Retention settings and the progress of a retention run (see `crate::retention`).
pub(crate) const RETENTION: &str = "chat.retention";
/// The deployment's workspaces (in the system store), by tenant id.
pub(crate) const WORKSPACES: &str = "chat.workspaces";

/// The namespaces whose keys start with a channel id, sealed under that channel's scope key.
pub(crate) const CHANNEL_SCOPED: [&str; 6] = [
    CHANNELS,
    MESSAGES,
    HISTORY,
    FILES,
    FILE_CHUNKS,
    FILE_PREVIEWS,
];

/// The identity namespaces whose keys start with a user id, sealed under that user's scope key:
/// only live users' rows are there (a deleted user's tombstone is elsewhere).
pub(crate) const USER_SCOPED: [&str; 5] = [
    zt_core::identity::USERS,
    zt_core::identity::CREDENTIALS,
    zt_core::identity::scim::SCIM_USERS,
    zt_core::identity::USER_SESSIONS,
    zt_core::identity::SSO_USER_LINKS,
];

/// The name indexes and the channel-scoped and group records blinded whole: read by key only.
const BLINDED: [&str; 9] = [
    CHANNEL_NAMES,
    DIRECT,
    GROUP_NAMES,
    CHANNELS,
    HISTORY,
    FILES,
    FILE_CHUNKS,
    FILE_PREVIEWS,
    GROUPS,
];

/// Where the records keyed by channel or group id were kept, unblinded, before; opening a
/// workspace moves them (`move_legacy`).
pub(crate) const LEGACY_NAMESPACES: [(&str, &str); 7] = [
    ("chat.channels", CHANNELS),
    ("chat.messages", MESSAGES),
    ("chat.message_history", HISTORY),
    ("chat.files", FILES),
    ("chat.file_chunks", FILE_CHUNKS),
    ("chat.file_previews", FILE_PREVIEWS),
    ("chat.groups", GROUPS),
];

/// The keyring scopes of a tenant's channels and users. A scope's name is in every envelope
/// header sealed under it and in the name of its key record, so it is a keyed hash of the
/// channel's or user's id, not the id: an offline reader sees which records share an owner, not
/// which owner.
#[derive(Clone)]
pub(crate) struct KeyScopes {
    index: Arc<zt_crypto::IndexKey>,
}

impl std::fmt::Debug for KeyScopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyScopes(..)")
    }
}

impl KeyScopes {
    /// The scopes of `tenant`'s channels, under its index key.
    pub(crate) async fn of(keyring: &Keyring, tenant: TenantId) -> Result<Self> {
        let index = keyring.index_key(&tenant.to_string()).await.map_err(|e| {
            crate::Error::Unavailable {
                message: "the workspace's index key is unavailable".into(),
                source: Some(Box::new(e)),
            }
        })?;
        Ok(KeyScopes {
            index: Arc::new(index),
        })
    }

    /// The scope of `channel`'s data: destroying its key shreds the channel.
    pub(crate) fn scope(&self, channel: zt_core::ChannelId) -> String {
        let mac = self.index.blind("chat.channel_scope", &channel.to_bytes());
        format!("channel/{}", hex::encode(&mac[..16]))
    }

    /// The scope of `user`'s identity records: destroying its key shreds their profile.
    pub(crate) fn user(&self, user: zt_core::UserId) -> String {
        let mac = self.index.blind("chat.user_scope", &user.to_bytes());
        format!("user/{}", hex::encode(&mac[..16]))
    }

    /// The scope an earlier version named after the channel id itself; records sealed then
    /// open by the name in their header until they are moved.
    pub(crate) fn legacy(channel: zt_core::ChannelId) -> String {
        format!("channel/{}", hex::encode(channel.to_bytes()))
    }
}

/// The validated namespaces.
#[derive(Debug, Clone)]
pub(crate) struct Namespaces {
    pub(crate) channels: Namespace,
    pub(crate) channel_names: Namespace,
    pub(crate) direct: Namespace,
    pub(crate) messages: Namespace,
    pub(crate) history: Namespace,
    pub(crate) groups: Namespace,
    pub(crate) group_names: Namespace,
    pub(crate) files: Namespace,
    pub(crate) file_chunks: Namespace,
    pub(crate) file_previews: Namespace,
    pub(crate) holds: Namespace,
    pub(crate) retention: Namespace,
}

impl Namespaces {
    pub(crate) fn new() -> Result<Self> {
        Ok(Namespaces {
            channels: Namespace::new(CHANNELS)?,
            channel_names: Namespace::new(CHANNEL_NAMES)?,
            direct: Namespace::new(DIRECT)?,
            messages: Namespace::new(MESSAGES)?,
            history: Namespace::new(HISTORY)?,
            groups: Namespace::new(GROUPS)?,
            group_names: Namespace::new(GROUP_NAMES)?,
            files: Namespace::new(FILES)?,
            file_chunks: Namespace::new(FILE_CHUNKS)?,
            file_previews: Namespace::new(FILE_PREVIEWS)?,
            holds: Namespace::new(HOLDS)?,
            retention: Namespace::new(RETENTION)?,
        })
    }
}

/// Every namespace a workspace writes in its store (zt-core's, zt-authz's and zt-chat's,
/// earlier layouts included): what a wipe removes, row by row, once the keys are gone. A test
/// that exercises every feature checks that nothing is written elsewhere.
pub(crate) fn tenant_namespaces() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = zt_core::identity::BLINDED_NAMESPACES
        .iter()
        .copied()
        .chain(
            zt_core::identity::PREFIX_BLINDED_NAMESPACES
                .iter()
                .map(|(n, _)| *n),
        )
        .chain([
            zt_core::identity::SESSIONS,
            zt_core::identity::SESSION_POLICY,
            zt_authz::records::META,
            CHANNEL_NAMES,
            DIRECT,
            MESSAGES,
            HOLDS,
            RETENTION,
        ])
        .chain(zt_authz::records::BLINDED_NAMESPACES.iter().copied())
        .chain(BLINDED.iter().copied())
        .chain(CHANNEL_SCOPED.iter().copied())
        .chain(crate::scim::BLINDED.iter().copied())
        .chain(
            zt_core::identity::LEGACY_NAMESPACES
                .iter()
                .chain(zt_authz::records::LEGACY_NAMESPACES.iter())
                .chain(LEGACY_NAMESPACES.iter())
                .map(|(old, _)| *old),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Requires, in `batch`, the record at `key` as it was read: absent for `version` 0 (what
/// `get_decoded(..).unwrap_or_default()` gives for a record never written), else at `version`.
pub(crate) fn require_as_read(
    batch: &mut zt_storage::Batch,
    namespace: &Namespace,
    key: &[u8],
    version: u64,
) {
    if version == 0 {
        batch.require_absent(namespace, key);
    } else {
        batch.require_version(namespace, key, version);
    }
}

/// The prefix of a tenant's namespaces in the deployment's store.
pub(crate) fn tenant_prefix(tenant: TenantId) -> String {
    format!("t:{}/", hex::encode(tenant.to_bytes()))
}

/// A tenant's encrypting store, as [`tenant_store`] builds it.
pub(crate) type SealedStore<S> = EncryptingStore<PrefixedStore<S>>;

/// The store of `tenant`: its own namespaces in `inner` (under the prefix `t:<tenant hex>/`,
/// so tenants never share a row or a scan), values sealed under the keyring, each channel's
/// records under its own scope key, each live user's identity records under theirs
/// ([`USER_SCOPED`]), and every key that names a user, channel, group or file
/// blinded (by the owner's id prefix where a scan needs order); the keyring's records
/// ([`zt_storage::KEY_RECORDS`]) out of reach, as in every encrypting store.
///
/// # Errors
/// Only for an invalid namespace name (none of zt's are).
pub(crate) fn tenant_store<S: KvStore + 'static>(
    inner: S,
    keyring: Arc<Keyring>,
    tenant: TenantId,
    scopes: KeyScopes,
) -> Result<SealedStore<S>> {
    laid_out(inner, keyring, tenant, Some(scopes))
}

/// [`tenant_store`], or with `scopes` `None` the layout before channels and users had keys of
/// their own (every record under its namespace's shared key), which tests of the upgrade need.
pub(crate) fn laid_out<S: KvStore + 'static>(
    inner: S,
    keyring: Arc<Keyring>,
    tenant: TenantId,
    scopes: Option<KeyScopes>,
) -> Result<SealedStore<S>> {
    let own = PrefixedStore::new(inner, tenant_prefix(tenant))?;
    let store = EncryptingStore::new(own, keyring, tenant.to_string());
    // Written rows only: a row opens under the scope its envelope header names.
    let store = match scopes {
        Some(scopes) => {
            let scoped: Vec<Namespace> = CHANNEL_SCOPED
                .iter()
                .map(|n| Namespace::new(n))
                .collect::<std::result::Result<_, _>>()?;
            let user_scoped: Vec<Namespace> = USER_SCOPED
                .iter()
                .map(|n| Namespace::new(n))
                .collect::<std::result::Result<_, _>>()?;
            store.with_scopes(Arc::new(move |namespace, key| {
                match key.get(..16).and_then(|id| <[u8; 16]>::try_from(id).ok()) {
                    Some(id) if scoped.contains(namespace) => {
                        scopes.scope(zt_core::ChannelId::from_bytes(id))
                    }
                    Some(id) if user_scoped.contains(namespace) => {
                        scopes.user(zt_core::UserId::from_bytes(id))
                    }
                    _ => format!("ns/{namespace}"),
                }
            }))
        }
        None => store,
    };
    let mut store = zt_core::identity::blind_identity(store)?;
    for name in zt_authz::records::BLINDED_NAMESPACES
        .iter()
        .chain(BLINDED.iter())
        .chain(crate::scim::BLINDED.iter())
    {
        store = store.blind_namespace(Namespace::new(name)?);
    }
    Ok(store.blind_prefix(Namespace::new(MESSAGES)?, 16))
}

/// Moves every record a workspace still holds in an earlier layout (zt-core's, zt-authz's and
/// zt-chat's legacy namespaces) to the current one, row by row
/// ([`EncryptingStore::move_rows`]): shredded rows go, damaged rows stay for `data verify` to
/// report. Runs when a workspace opens, before its parts read anything.
pub(crate) async fn move_legacy<S: KvStore + 'static>(store: &SealedStore<S>) -> Result<()> {
    let moves = zt_core::identity::LEGACY_NAMESPACES
        .iter()
        .chain(zt_authz::records::LEGACY_NAMESPACES.iter())
        .chain(LEGACY_NAMESPACES.iter());
    for (old, new) in moves {
        let report = store
            .move_rows(&Namespace::new(old)?, &Namespace::new(new)?)
            .await?;
        if report.damaged > 0 {
            tracing::warn!(
                namespace = old,
                damaged = report.damaged,
                "records that do not open were left in their earlier layout; run `data verify`"
            );
        }
        if report.moved > 0 {
            tracing::info!(
                from = old,
                to = new,
                moved = report.moved,
                "records moved to the blinded layout"
            );
        }
    }
    Ok(())
}

/// Seals again, under each user's own key, the identity records ([`USER_SCOPED`]) still sealed
/// under their namespace's shared key (written before users had keys of their own); returns how
/// many. Shredded rows go and damaged rows stay, as in [`move_legacy`].
pub(crate) async fn reseal_user_records<S: KvStore + 'static>(
    store: &SealedStore<S>,
) -> Result<u64> {
    let mut resealed = 0;
    for name in USER_SCOPED {
        let report = store.reseal_rows(&Namespace::new(name)?).await?;
        if report.damaged > 0 {
            tracing::warn!(
                namespace = name,
                damaged = report.damaged,
                "identity records that do not open were left as they were; run `data verify`"
            );
        }
        resealed += report.resealed;
    }
    Ok(resealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identity_namespace_fits_under_a_tenant_prefix() {
        let tenant = TenantId::from_bytes([7; 16]);
        let prefix = tenant_prefix(tenant);
        let names = zt_core::identity::BLINDED_NAMESPACES
            .iter()
            .copied()
            .chain(
                zt_core::identity::PREFIX_BLINDED_NAMESPACES
                    .iter()
                    .map(|(n, _)| *n),
            )
            .chain([
                zt_core::identity::SESSIONS,
                zt_core::identity::SESSION_POLICY,
            ]);
        for name in names {
            let full = format!("{prefix}{name}");
            assert!(
                zt_storage::Namespace::new(&full).is_ok(),
                "{name} does not fit under a tenant prefix ({} bytes)",
                full.len()
            );
        }
    }
}
