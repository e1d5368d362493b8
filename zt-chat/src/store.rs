//! How a tenant's data is laid out and sealed: one `EncryptingStore` per tenant over the
//! deployment's store, with every channel's records under that channel's own scope key and every
//! name-like lookup key blinded.

use std::sync::Arc;

use zt_core::TenantId;
use zt_crypto::Keyring;
use zt_storage::{EncryptingStore, KvStore, Namespace, PrefixedStore};

use crate::error::Result;

/// Channel records (name, topic, state), by channel id.
pub(crate) const CHANNELS: &str = "chat.channels";
/// Standard channel names (lower case) to channel ids; blinded.
pub(crate) const CHANNEL_NAMES: &str = "chat.channel_names";
/// Direct-message member sets to channel ids; blinded.
pub(crate) const DIRECT: &str = "chat.direct";
/// Messages, by channel id then message id.
pub(crate) const MESSAGES: &str = "chat.messages";
/// Earlier versions of edited and deleted messages, by channel id, message id, revision.
pub(crate) const HISTORY: &str = "chat.message_history";
/// File records and tombstones, by channel id then file id.
pub(crate) const FILES: &str = "chat.files";
/// File content, by channel id, file id, chunk number.
pub(crate) const FILE_CHUNKS: &str = "chat.file_chunks";
/// File previews (thumbnails), by channel id then file id.
pub(crate) const FILE_PREVIEWS: &str = "chat.file_previews";
/// Group records (name), by group id.
pub(crate) const GROUPS: &str = "chat.groups";
/// Group names (lower case) to group ids; blinded.
pub(crate) const GROUP_NAMES: &str = "chat.group_names";
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

/// The keyring scope of one channel's data: destroying its key shreds the channel.
pub(crate) fn channel_scope(channel: zt_core::ChannelId) -> String {
    format!("channel/{}", hex::encode(channel.to_bytes()))
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
        })
    }
}

/// The store of `tenant`: its own namespaces in `inner` (under the prefix `t:<tenant hex>/`,
/// so tenants never share a row or a scan), values sealed under the keyring, each channel's
/// records under its own scope key, and the identity and chat lookup keys blinded; the keyring's
/// records ([`zt_storage::KEY_RECORDS`]) out of reach, as in every encrypting store.
///
/// # Errors
/// Only for an invalid namespace name (none of zt's are).
/// The prefix of a tenant's namespaces in the deployment's store.
pub(crate) fn tenant_prefix(tenant: TenantId) -> String {
    format!("t:{}/", hex::encode(tenant.to_bytes()))
}

pub(crate) fn tenant_store<S: KvStore + 'static>(
    inner: S,
    keyring: Arc<Keyring>,
    tenant: TenantId,
) -> Result<Arc<dyn KvStore>> {
    let scoped: Vec<Namespace> = CHANNEL_SCOPED
        .iter()
        .map(|n| Namespace::new(n))
        .collect::<std::result::Result<_, _>>()?;
    let own = PrefixedStore::new(inner, tenant_prefix(tenant))?;
    let mut store = EncryptingStore::new(own, keyring, tenant.to_string()).with_scopes(Arc::new(
        move |namespace, key| match key.get(..16).and_then(|id| <[u8; 16]>::try_from(id).ok()) {
            Some(id) if scoped.contains(namespace) => {
                channel_scope(zt_core::ChannelId::from_bytes(id))
            }
            _ => format!("ns/{namespace}"),
        },
    ));
    for name in zt_core::identity::BLINDED_NAMESPACES
        .iter()
        .chain(zt_authz::records::BLINDED_NAMESPACES.iter())
        .chain([CHANNEL_NAMES, DIRECT, GROUP_NAMES].iter())
    {
        store = store.blind_namespace(Namespace::new(name)?);
    }
    Ok(Arc::new(store))
}
