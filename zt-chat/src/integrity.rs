//! The offline check of a workspace's stored data: every sealed record of its channels,
//! messages, message history, files, file chunks, previews and groups opens (authenticated
//! decryption under its scope key), and every live file's chunks add up to its record.
//!
//! What `zt-chat-server data verify` runs on a stopped server's data directory, beside `audit
//! verify`. It reads only. Records of a deleted channel, whose scope key was destroyed, are
//! counted as shredded, not damaged: that is what deletion does. The name indexes are blinded
//! lookups whose values are ids; they are checked by the lookups that use them.

use std::sync::Arc;

use zt_core::TenantId;
use zt_storage::{
    ErrorKind as StorageKind, KeyRange, KvStore, Namespace, PrefixedStore, ScanOptions,
};

use crate::error::Result;
use crate::files::FileInfo;
use crate::store::{self, FILE_CHUNKS, FILES, GROUPS};
use crate::workspace::Chat;

/// The namespaces [`Chat::check_data`] opens record by record: every channel-scoped one, and
/// the groups.
fn checked() -> impl Iterator<Item = &'static str> {
    store::CHANNEL_SCOPED.into_iter().chain([GROUPS])
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
        let sealed = store::tenant_store(Arc::clone(&inner), self.keyring(), tenant)?;
        let mut check = DataCheck::default();
        for name in checked() {
            let namespace = Namespace::new(name)?;
            let mut range = Some(KeyRange::all());
            while let Some(next) = range {
                let page = raw.scan(&namespace, &next, ScanOptions::default()).await?;
                for entry in page.entries {
                    match sealed.get(&namespace, &entry.key).await {
                        Ok(Some(record)) => {
                            check.opened += 1;
                            if name == FILES {
                                self.check_file(&*sealed, &entry.key, &record.value, &mut check)
                                    .await?;
                            }
                        }
                        Ok(None) => {}
                        Err(e) if e.kind() == StorageKind::KeyDestroyed => check.shredded += 1,
                        Err(e) if e.is_temporary() => return Err(e.into()),
                        Err(e) => check.damaged.push(Damage {
                            namespace: name,
                            key: hex::encode(&entry.key),
                            why: e.to_string(),
                        }),
                    }
                }
                range = page.next;
            }
        }
        Ok(check)
    }

    /// Adds up a live file's chunks against its record.
    async fn check_file(
        &self,
        sealed: &dyn KvStore,
        key: &[u8],
        record: &[u8],
        check: &mut DataCheck,
    ) -> Result<()> {
        let damage = |why: String| Damage {
            namespace: FILES,
            key: hex::encode(key),
            why,
        };
        let info: FileInfo = match zt_storage::codec::decode(record) {
            Ok(info) => info,
            Err(e) => {
                check
                    .damaged
                    .push(damage(format!("the record does not decode: {e}")));
                return Ok(());
            }
        };
        if info.deleted.is_some() {
            return Ok(());
        }
        check.files += 1;
        let chunks = Namespace::new(FILE_CHUNKS)?;
        let mut size = 0u64;
        for index in 0..info.chunk_count() {
            let mut chunk_key = key.to_vec();
            chunk_key.extend_from_slice(&index.to_be_bytes());
            match sealed.get(&chunks, &chunk_key).await {
                Ok(Some(chunk)) => size += chunk.value.len() as u64,
                Ok(None) => {
                    check
                        .damaged
                        .push(damage(format!("chunk {index} is missing")));
                    return Ok(());
                }
                Err(e) if e.is_temporary() => return Err(e.into()),
                // Counted where the chunk namespace itself is checked.
                Err(_) => return Ok(()),
            }
        }
        if size != info.size {
            check.damaged.push(damage(format!(
                "the chunks hold {size} bytes, the record says {}",
                info.size
            )));
        }
        Ok(())
    }
}
