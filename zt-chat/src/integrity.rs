//! The offline check of a workspace's stored data: every sealed record of its channels,
//! messages, message history, files, file chunks, previews and groups opens (authenticated
//! decryption under its scope key), and every live file's chunks add up to its record.
//!
//! What `zt-chat-server data verify` runs on a stopped server's data directory, beside `audit
//! verify`. It reads only. Records of a deleted channel, whose scope key was destroyed, are
//! counted as shredded, not damaged: that is what deletion does. The name indexes are blinded
//! lookups whose values are ids; they are checked by the lookups that use them.

use std::collections::HashMap;
use std::sync::Arc;

use zt_core::TenantId;
use zt_storage::{
    ErrorKind as StorageKind, KeyRange, KvStore, Namespace, PrefixedStore, ScanOptions,
};

use crate::error::Result;
use crate::files::FileInfo;
use crate::store::{self, FILE_CHUNKS, FILES, GROUPS};
use crate::workspace::Chat;

/// The namespaces [`Chat::check_data`] opens record by record: every channel-scoped one, the
/// groups, and where the same records were kept before (what a move left there, or a data
/// directory not yet opened by this version).
fn checked() -> impl Iterator<Item = &'static str> {
    store::CHANNEL_SCOPED
        .into_iter()
        .chain([GROUPS])
        .chain(store::LEGACY_NAMESPACES.iter().map(|(old, _)| *old))
}

/// The current namespace of `name`, which may be a legacy one.
fn current_name(name: &str) -> &str {
    store::LEGACY_NAMESPACES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// One damaged record, or a file whose content does not match its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The namespace.
    pub namespace: &'static str,
    /// The record's key, in hex.
    pub key: String,
    /// What is wrong.
    pub why: String,
}

/// What [`Chat::check_data`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataCheck {
    /// Records that opened.
    pub opened: u64,
    /// Records of deleted channels, whose key is destroyed.
    pub shredded: u64,
    /// Live files whose chunks were added up.
    pub files: u64,
    /// What did not hold.
    pub damaged: Vec<Damage>,
}

impl DataCheck {
    /// Whether nothing was damaged.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl Chat {
    /// Checks every sealed record of `tenant`'s workspace and every live file's chunks (see the
    /// module docs). An operator's offline check, with the deployment's own keys: it takes no
    /// caller and changes nothing.
    ///
    /// # Errors
    /// [`crate::Error::NotFound`] for an unknown workspace; [`crate::Error::Unavailable`] when the store or the
    /// KMS is out. Damage is not an error: it is in the answer.
    pub async fn check_data(&self, tenant: TenantId) -> Result<DataCheck> {
        self.info(tenant).await?;
        let inner = self.inner_store();
        let raw = PrefixedStore::new(Arc::clone(&inner), store::tenant_prefix(tenant))?;
        let keyring = self.keyring();
        let scopes = store::KeyScopes::of(&keyring, tenant).await?;
        let sealed = store::tenant_store(Arc::clone(&inner), keyring, tenant, scopes)?;
        let mut check = DataCheck::default();
        // Each record is opened once: the live files' records and their chunks' sizes are kept
        // as they go by (by the records' own keys), and compared at the end.
        let mut files: Vec<(Vec<u8>, FileInfo)> = Vec::new();
        let mut chunks: HashMap<Vec<u8>, FileChunks> = HashMap::new();
        for name in checked() {
            let namespace = Namespace::new(name)?;
            let current = current_name(name);
            let mut range = Some(KeyRange::all());
            while let Some(next) = range {
                let page = raw.scan(&namespace, &next, ScanOptions::default()).await?;
                for entry in page.entries {
                    let record = match sealed.open_stored(&namespace, &entry).await {
                        Ok(record) => record,
                        Err(e) if e.kind() == StorageKind::KeyDestroyed => {
                            check.shredded += 1;
                            continue;
                        }
                        Err(e) if e.is_temporary() => return Err(e.into()),
                        Err(e) => {
                            // Its file, if it is a chunk, is not known: its key is blinded. The
                            // file is reported again below, as missing this chunk.
                            check.damaged.push(Damage {
                                namespace: name,
                                key: hex::encode(&entry.key),
                                why: e.to_string(),
                            });
                            continue;
                        }
                    };
                    check.opened += 1;
                    if current == FILES {
                        match zt_storage::codec::decode::<FileInfo>(&record.value) {
                            Ok(info) if info.is_removed() => {}
                            Ok(info) => files.push((record.key, info)),
                            Err(e) => check.damaged.push(Damage {
                                namespace: name,
                                key: hex::encode(&record.key),
                                why: format!("the record does not decode: {e}"),
                            }),
                        }
                    } else if current == FILE_CHUNKS
                        && let Some((file, index)) = record
                            .key
                            .split_at_checked(record.key.len().saturating_sub(4))
                    {
                        let seen = chunks.entry(file.to_vec()).or_default();
                        seen.bytes += record.value.len() as u64;
                        if let Ok(index) = <[u8; 4]>::try_from(index) {
                            seen.indexes.insert(u32::from_be_bytes(index));
                        }
                    }
                }
                range = page.next;
            }
        }
        for (key, info) in files {
            check.files += 1;
            let seen = chunks.remove(&key).unwrap_or_default();
            let why = match (0..info.chunk_count()).find(|i| !seen.indexes.contains(i)) {
                Some(missing) => format!("chunk {missing} is missing or does not open"),
                None if seen.bytes != info.size => format!(
                    "the chunks hold {} bytes, the record says {}",
                    seen.bytes, info.size
                ),
                None => continue,
            };
            check.damaged.push(Damage {
                namespace: FILES,
                key: hex::encode(&key),
                why,
            });
        }
        // The report goes namespace by namespace, in the order they are checked.
        let order: Vec<&str> = checked().collect();
        check
            .damaged
            .sort_by_key(|d| order.iter().position(|n| *n == d.namespace));
        Ok(check)
    }
}

/// What the chunk records of one file added up to.
#[derive(Default)]
struct FileChunks {
    bytes: u64,
    indexes: std::collections::BTreeSet<u32>,
}
