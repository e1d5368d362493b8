//! SCIM documents at rest: one record per resource (its stored attributes as JSON, when it was
//! created and changed), keyed by the resource's id, and two lookup indexes, the resource's name
//! (`userName`, a group's `displayName`; folded to lower case) and its `externalId` (exact).
//! All three namespaces are blinded by the deployment, so neither a name nor an id of the
//! identity provider reaches the disk readable, and an `eq` filter on either is one indexed
//! read instead of a scan.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt, Namespace, ScanOptions, Version, codec};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// A resource's stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The resource id (a user's or a group's), 16 bytes.
    pub id: [u8; 16],
    /// The stored attributes, as JSON text.
    pub doc: String,
    /// When the resource was created through SCIM.
    pub created: Timestamp,
    /// When it last changed through SCIM.
    pub modified: Timestamp,
}

impl Record {
    /// The stored attributes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a damaged record.
    pub fn attributes(&self) -> Result<Map<String, Value>> {
        serde_json::from_str(&self.doc)
            .map_err(|_| Error::InvalidInput("a SCIM record is damaged".into()))
    }
}

/// The namespaces of one kind of resource.
#[derive(Debug, Clone)]
pub struct Records {
    records: Namespace,
    names: Namespace,
    external: Namespace,
    name_attribute: &'static str,
}

fn id_of(entry_value: &[u8]) -> Result<[u8; 16]> {
    entry_value
        .try_into()
        .map_err(|_| Error::InvalidInput("a SCIM index record is damaged".into()))
}

/// The index key of a name: folded to lower case, as SCIM compares `userName` and
/// `displayName`.
pub fn name_key(name: &str) -> Vec<u8> {
    name.to_lowercase().into_bytes()
}

impl Records {
    /// Records in `records`, names indexed in `names`, external ids in `external`;
    /// `name_attribute` is the attribute the name index holds.
    ///
    /// # Errors
    /// None in practice: the names are constants.
    pub fn new(
        records: &str,
        names: &str,
        external: &str,
        name_attribute: &'static str,
    ) -> Result<Self> {
        Ok(Records {
            records: Namespace::new(records)?,
            names: Namespace::new(names)?,
            external: Namespace::new(external)?,
            name_attribute,
        })
    }

    /// The record of `id`, with its version.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn get(
        &self,
        store: &dyn KvStore,
        id: [u8; 16],
    ) -> Result<Option<(Record, Version)>> {
        Ok(store.get_decoded::<Record>(&self.records, &id).await?)
    }

    async fn lookup(
        &self,
        store: &dyn KvStore,
        ns: &Namespace,
        key: &[u8],
    ) -> Result<Option<[u8; 16]>> {
        match store.get(ns, key).await? {
            Some(entry) => Ok(Some(id_of(&entry.value)?)),
            None => Ok(None),
        }
    }

    /// The id holding `name` (any case).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn find_name(&self, store: &dyn KvStore, name: &str) -> Result<Option<[u8; 16]>> {
        self.lookup(store, &self.names, &name_key(name)).await
    }

    /// The id holding `external_id` (exactly).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn find_external(
        &self,
        store: &dyn KvStore,
        external_id: &str,
    ) -> Result<Option<[u8; 16]>> {
        self.lookup(store, &self.external, external_id.as_bytes())
            .await
    }

    fn keys(&self, doc: &Map<String, Value>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let name = doc
            .get(self.name_attribute)
            .and_then(Value::as_str)
            .map(name_key);
        let external = doc
            .get("externalId")
            .and_then(Value::as_str)
            .map(|s| s.as_bytes().to_vec());
        (name, external)
    }

    /// Adds to `batch` the writes that store `record` in place of `old` (`None`: a new
    /// resource): the record under `old`'s version, and the index entries that changed, each
    /// new one claimed only if nobody holds it (a taken name fails the commit as a conflict).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a record that cannot be encoded.
    pub fn write(
        &self,
        batch: &mut Batch,
        record: &Record,
        doc: &Map<String, Value>,
        old: Option<(&Map<String, Value>, Version)>,
    ) -> Result<()> {
        let value = codec::encode(record)?;
        let (name, external) = self.keys(doc);
        let (old_name, old_external) = match old {
            Some((old_doc, version)) => {
                batch.put_if_version(&self.records, &record.id, version, &value);
                self.keys(old_doc)
            }
            None => {
                batch.put_if_absent(&self.records, &record.id, &value);
                (None, None)
            }
        };
        for (ns, new, old) in [
            (&self.names, name, old_name),
            (&self.external, external, old_external),
        ] {
            if new == old {
                continue;
            }
            if let Some(old) = old {
                batch.delete(ns, &old);
            }
            if let Some(new) = new {
                batch.put_if_absent(ns, &new, &record.id);
            }
        }
        Ok(())
    }

    /// Adds to `batch` the deletion of `id`'s record and index entries.
    pub fn remove(
        &self,
        batch: &mut Batch,
        id: [u8; 16],
        doc: &Map<String, Value>,
        version: Version,
    ) {
        batch.require_version(&self.records, &id, version);
        batch.delete(&self.records, &id);
        let (name, external) = self.keys(doc);
        if let Some(name) = name {
            batch.delete(&self.names, &name);
        }
        if let Some(external) = external {
            batch.delete(&self.external, &external);
        }
    }

    /// Which of the document's unique values another resource holds: the name attribute, or
    /// `externalId`.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn taken_by_other(
        &self,
        store: &dyn KvStore,
        doc: &Map<String, Value>,
        id: Option<[u8; 16]>,
    ) -> Result<Option<&'static str>> {
        let (name, external) = self.keys(doc);
        if let Some(name) = name
            && let Some(holder) = self.lookup(store, &self.names, &name).await?
            && Some(holder) != id
        {
            return Ok(Some(self.name_attribute));
        }
        if let Some(external) = external
            && let Some(holder) = self.lookup(store, &self.external, &external).await?
            && Some(holder) != id
        {
            return Ok(Some("externalId"));
        }
        Ok(None)
    }

    /// Every record, in no particular order (the namespace is blinded), page by page.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn all(&self, store: &dyn KvStore) -> Result<Vec<(Record, Version)>> {
        let mut out = Vec::new();
        let mut range = KeyRange::all();
        loop {
            let page = store
                .scan(&self.records, &range, ScanOptions::new().limit(1000))
                .await?;
            for entry in &page.entries {
                out.push((codec::decode::<Record>(&entry.value)?, entry.version));
            }
            match page.next {
                Some(next) => range = next,
                None => return Ok(out),
            }
        }
    }

    /// The namespaces, to blind: records, names, external ids.
    pub fn namespaces(&self) -> [&Namespace; 3] {
        [&self.records, &self.names, &self.external]
    }
}

/// An RFC 3339 time, as SCIM writes `meta.created` and `meta.lastModified`.
pub fn rfc3339(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.unix_millis())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The weak ETag of a resource whose record has `version` and whose other state changed last
/// at `changed`: what `meta.version` says and `If-Match` must repeat.
pub fn etag(version: Version, changed: Timestamp) -> String {
    format!("W/\"{version}-{}\"", changed.unix_millis())
}

/// Whether an `If-Match` header admits a resource whose ETag is `current`: absent, `*`, or
/// one of its listed tags (weak or strong form).
pub fn if_match(header: Option<&str>, current: &str) -> bool {
    let Some(header) = header else {
        return true;
    };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let current = strip(current);
    header
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == current)
}

impl Record {
    /// The resource's `meta`, its location under `base`.
    pub fn meta(&self, resource_type: &str, location: String, etag: &str) -> Value {
        serde_json::json!({
            "resourceType": resource_type,
            "created": rfc3339(self.created),
            "lastModified": rfc3339(self.modified),
            "location": location,
            "version": etag,
        })
    }
}
