//! `PrefixedStore`: one tenant's view of a shared store, every namespace under the tenant's
//! prefix, so tenants never share a key, a scan or a precondition.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::store::KvStore;
use crate::types::{
    Batch, Check, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version, Write,
};

/// Maps every namespace `N` of its callers to `<prefix>N` in the store it wraps.
///
/// Put it below an `EncryptingStore` so that two tenants of one database live apart: the same
/// namespace and key of two tenants are two rows, and a scan of one tenant never meets another's
/// rows. Everything else (versions, preconditions, paging) is the inner store's.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use zt_storage::{Batch, KvStore, MemoryStore, Namespace, PrefixedStore};
///
/// let shared = Arc::new(MemoryStore::new());
/// let one = PrefixedStore::new(shared.clone(), "t:one/")?;
/// let two = PrefixedStore::new(shared.clone(), "t:two/")?;
/// let ns = Namespace::new("settings")?;
/// let mut batch = Batch::new();
/// batch.put(&ns, b"theme", b"dark");
/// one.commit(batch).await?;
/// assert!(two.get(&ns, b"theme").await?.is_none());
/// assert!(shared.get(&Namespace::new("t:one/settings")?, b"theme").await?.is_some());
/// # Ok::<_, zt_storage::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PrefixedStore<S: KvStore> {
    inner: S,
    prefix: String,
}

impl<S: KvStore> PrefixedStore<S> {
    /// Wraps `inner` with `prefix` (valid namespace characters; a namespace plus the prefix must
    /// still fit [`crate::MAX_NAMESPACE_LEN`]).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a prefix that cannot start a namespace.
    pub fn new(inner: S, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        // The prefix must itself be a valid start of a name.
        Namespace::new(&format!("{prefix}x"))?;
        Ok(PrefixedStore { inner, prefix })
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn map(&self, namespace: &Namespace) -> Result<Namespace> {
        Namespace::new(&format!("{}{}", self.prefix, namespace.as_str()))
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: KvStore> KvStore for PrefixedStore<S> {
    async fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Entry>> {
        self.inner.get(&self.map(namespace)?, key).await
    }

    async fn scan(
        &self,
        namespace: &Namespace,
        range: &KeyRange,
        options: ScanOptions,
    ) -> Result<ScanPage> {
        self.inner.scan(&self.map(namespace)?, range, options).await
    }

    async fn commit(&self, batch: Batch) -> Result<Version> {
        batch.validate()?;
        let (writes, checks) = batch.into_parts();
        let mut mapped = Batch::new();
        for Check {
            namespace,
            key,
            precondition,
        } in checks
        {
            mapped.require(&self.map(&namespace)?, &key, precondition);
        }
        for write in writes {
            match write {
                Write::Put {
                    namespace,
                    key,
                    value,
                } => mapped.put_owned(&self.map(&namespace)?, key, value),
                Write::Delete { namespace, key } => mapped.delete(&self.map(&namespace)?, &key),
            };
        }
        match self.inner.commit(mapped).await {
            Err(Error::Conflict(mut detail)) => {
                // Name the caller's namespace, not the stored one.
                if let Some(own) = detail.namespace.strip_prefix(self.prefix.as_str()) {
                    detail.namespace = own.to_owned();
                }
                Err(Error::Conflict(detail))
            }
            other => other,
        }
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    /// The whole store beneath, as stored (see [`KvStore::export`]).
    async fn export(&self, sink: &mut dyn crate::ExportSink) -> Result<u64> {
        self.inner.export(sink).await
    }
}
