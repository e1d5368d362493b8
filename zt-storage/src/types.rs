//! The values that cross the [`KvStore`](crate::KvStore) boundary.

use std::collections::HashSet;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The version of a stored key. Every commit that writes a key gives it a version greater than any
/// version the key had before, also across a delete and re-create.
pub type Version = u64;

/// The longest namespace name, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;
/// The longest key, in bytes. Kept small enough for a PostgreSQL B-tree index entry.
pub const MAX_KEY_LEN: usize = 1024;
/// The largest value, in bytes.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
/// The most writes plus preconditions in one batch.
pub const MAX_BATCH_OPS: usize = 10_000;
/// The most key and value bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// The most entries one [`KvStore::scan`](crate::KvStore::scan) call returns.
pub const MAX_SCAN_LIMIT: usize = 10_000;
/// A scan page stops after the entry that brings its key and value bytes past this budget, so a
/// page of large values stays bounded in memory.
pub const PAGE_BYTE_BUDGET: usize = 4 * 1024 * 1024;

/// A validated namespace name.
///
/// Names are 1 to [`MAX_NAMESPACE_LEN`] bytes of ASCII letters, digits and `_ - . : /`. Names
/// starting with `_` are reserved for the stores' own bookkeeping.
///
/// ```
/// use zt_storage::{ErrorKind, Namespace};
///
/// let users = Namespace::new("users")?;
/// assert_eq!(users.as_str(), "users");
/// assert_eq!(Namespace::new("").unwrap_err().kind(), ErrorKind::InvalidInput);
/// assert_eq!(Namespace::new("_meta").unwrap_err().kind(), ErrorKind::InvalidInput);
/// # Ok::<(), zt_storage::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// Validates `name` as a namespace.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when the name is empty, too long, uses
    /// another character, or is reserved.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid("namespace is empty"));
        }
        if name.len() > MAX_NAMESPACE_LEN {
            return Err(Error::invalid(format!(
                "namespace is {} bytes, the limit is {MAX_NAMESPACE_LEN}",
                name.len()
            )));
        }
        if name.starts_with('_') {
            return Err(Error::invalid(format!(
                "namespace {name:?} is reserved (names starting with '_' are)"
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
        {
            return Err(Error::invalid(format!(
                "namespace {name:?} contains {c:?}; allowed are ASCII letters, digits and _ - . : /"
            )));
        }
        Ok(Namespace(Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", &*self.0)
    }
}

/// Checks a key's length against [`MAX_KEY_LEN`].
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "key is {} bytes, the limit is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// A stored value with its version.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, without its namespace.
    pub key: Vec<u8>,
    /// The value bytes.
    pub value: Vec<u8>,
    /// The key's current version.
    pub version: Version,
}

impl fmt::Debug for Entry {
    // Values may hold anything; show their size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &crate::error::DisplayKey(&self.key).to_string())
            .field("value_len", &self.value.len())
            .field("version", &self.version)
            .finish()
    }
}

/// A range of keys within one namespace, compared as unsigned bytes.
///
/// ```
/// use std::ops::Bound;
/// use zt_storage::KeyRange;
///
/// let r = KeyRange::prefix(b"a\xff");
/// assert!(r.contains(b"a\xff\x00"));
/// assert!(!r.contains(b"b"));
/// assert_eq!(r.end, Bound::Excluded(b"b".to_vec()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The lower bound.
    pub start: Bound<Vec<u8>>,
    /// The upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key of the namespace.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// The keys between two bounds.
    pub fn new(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        KeyRange { start, end }
    }

    /// The keys that start with `prefix`. The empty prefix is every key.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match prefix_successor(prefix) {
            Some(next) => Bound::Excluded(next),
            None => Bound::Unbounded,
        };
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above_start = match &self.start {
            Bound::Unbounded => true,
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
        };
        let below_end = match &self.end {
            Bound::Unbounded => true,
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
        };
        above_start && below_end
    }

    /// Whether no key can lie in the range (its start is past its end).
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        }
    }

    /// The part of the range still to scan after `last` was returned in the given direction.
    pub fn remaining_after(&self, last: &[u8], reverse: bool) -> KeyRange {
        if reverse {
            KeyRange {
                start: self.start.clone(),
                end: Bound::Excluded(last.to_vec()),
            }
        } else {
            KeyRange {
                start: Bound::Excluded(last.to_vec()),
                end: self.end.clone(),
            }
        }
    }

    fn check(&self) -> Result<()> {
        for bound in [&self.start, &self.end] {
            if let Bound::Included(k) | Bound::Excluded(k) = bound {
                check_key(k)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &Bound<Vec<u8>>, open: &str| match b {
            Bound::Unbounded => String::from(open),
            Bound::Included(k) => format!("={}", crate::error::DisplayKey(k)),
            Bound::Excluded(k) => format!("{}", crate::error::DisplayKey(k)),
        };
        write!(
            f,
            "KeyRange({}..{})",
            show(&self.start, ""),
            show(&self.end, "")
        )
    }
}

/// The smallest key greater than every key that starts with `prefix`, if one exists.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// How to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Return keys in descending order.
    pub reverse: bool,
    /// The most entries to return in this page, 1 to [`MAX_SCAN_LIMIT`].
    pub limit: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            reverse: false,
            limit: 1000,
        }
    }
}

impl ScanOptions {
    /// Forward, 1000 entries a page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets descending order.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    /// Sets the page limit.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// Checks a scan request. Returns the page when it is known without reading: an empty range
/// (whose bounds some ordered maps refuse to iterate).
pub(crate) fn check_scan(range: &KeyRange, options: &ScanOptions) -> Result<Option<ScanPage>> {
    range.check()?;
    if options.limit == 0 || options.limit > MAX_SCAN_LIMIT {
        return Err(Error::invalid(format!(
            "scan limit {} is outside 1..={MAX_SCAN_LIMIT}",
            options.limit
        )));
    }
    Ok(range
        .is_empty()
        .then(|| ScanPage::new(range, options.reverse, Vec::new(), false)))
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// The entries, in the requested order.
    pub entries: Vec<Entry>,
    /// The rest of the range, to pass to the next call; `None` when the range is exhausted.
    pub next: Option<KeyRange>,
}

impl ScanPage {
    /// Builds a page from the entries a backend collected. `more` says whether the backend stopped
    /// before the end of `range` (at the limit or the byte budget).
    pub fn new(range: &KeyRange, reverse: bool, entries: Vec<Entry>, more: bool) -> Self {
        let next = match (more, entries.last()) {
            (true, Some(last)) => Some(range.remaining_after(&last.key, reverse)),
            _ => None,
        };
        ScanPage { entries, next }
    }
}

/// Builds one page of a scan from a backend's entries of `range`, in ascending key order.
pub(crate) fn scan_page<I>(entries: I, range: &KeyRange, options: ScanOptions) -> Result<ScanPage>
where
    I: DoubleEndedIterator<Item = Result<Entry>>,
{
    let (page, more) = if options.reverse {
        collect_page(entries.rev(), options.limit)?
    } else {
        collect_page(entries, options.limit)?
    };
    Ok(ScanPage::new(range, options.reverse, page, more))
}

/// Collects entries for a page until the limit or the byte budget is reached. Returns the entries
/// and whether the source had more.
pub(crate) fn collect_page<I>(source: I, limit: usize) -> Result<(Vec<Entry>, bool)>
where
    I: Iterator<Item = Result<Entry>>,
{
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    let mut source = source.peekable();
    while let Some(entry) = source.next() {
        let entry = entry?;
        bytes = bytes.saturating_add(entry.key.len() + entry.value.len());
        entries.push(entry);
        if entries.len() >= limit || bytes >= PAGE_BYTE_BUDGET {
            return Ok((entries, source.peek().is_some()));
        }
    }
    Ok((entries, false))
}

/// What a batch requires of a key before it writes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precondition {
    /// The key must not be stored.
    Absent,
    /// The key must be stored at exactly this version.
    Version(Version),
}

/// One write of a batch.
#[derive(Clone, PartialEq, Eq)]
pub enum Write {
    /// Store `value` under `key`.
    Put {
        /// The namespace.
        namespace: Namespace,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key`; removing an absent key is not an error.
    Delete {
        /// The namespace.
        namespace: Namespace,
        /// The key.
        key: Vec<u8>,
    },
}

impl Write {
    /// The namespace written.
    pub fn namespace(&self) -> &Namespace {
        match self {
            Write::Put { namespace, .. } | Write::Delete { namespace, .. } => namespace,
        }
    }

    /// The key written.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
        }
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = crate::error::DisplayKey(self.key()).to_string();
        match self {
            Write::Put {
                namespace, value, ..
            } => write!(f, "Put({namespace}/{key}, {} bytes)", value.len()),
            Write::Delete { namespace, .. } => write!(f, "Delete({namespace}/{key})"),
        }
    }
}

/// A precondition on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: Vec<u8>,
    /// What must hold.
    pub precondition: Precondition,
}

/// An atomic set of writes across keys and namespaces, guarded by preconditions.
///
/// Either every precondition holds and every write lands, or nothing is written and
/// [`commit`](crate::KvStore::commit) returns a [`Conflict`](crate::ErrorKind::Conflict) naming the
/// first key whose precondition failed. Preconditions may name keys the batch does not write.
///
/// ```
/// use zt_storage::{Batch, Namespace, Precondition};
///
/// let users = Namespace::new("users")?;
/// let names = Namespace::new("usernames")?;
/// let mut batch = Batch::new();
/// batch
///     .put_if_absent(&names, b"alice", b"user-1")
///     .put(&users, b"user-1", b"{...}");
/// assert_eq!(batch.writes().len(), 2);
/// assert_eq!(batch.checks()[0].precondition, Precondition::Absent);
/// # Ok::<(), zt_storage::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    writes: Vec<Write>,
    checks: Vec<Check>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key`.
    pub fn put(&mut self, namespace: &Namespace, key: &[u8], value: &[u8]) -> &mut Self {
        self.put_owned(namespace, key.to_vec(), value.to_vec())
    }

    /// Stores `value` under `key`, taking the buffers.
    pub fn put_owned(&mut self, namespace: &Namespace, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.writes.push(Write::Put {
            namespace: namespace.clone(),
            key,
            value,
        });
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, namespace: &Namespace, key: &[u8]) -> &mut Self {
        self.writes.push(Write::Delete {
            namespace: namespace.clone(),
            key: key.to_vec(),
        });
        self
    }

    /// Requires `key` to be absent when the batch commits.
    pub fn require_absent(&mut self, namespace: &Namespace, key: &[u8]) -> &mut Self {
        self.require(namespace, key, Precondition::Absent)
    }

    /// Requires `key` to be stored at `version` when the batch commits.
    pub fn require_version(
        &mut self,
        namespace: &Namespace,
        key: &[u8],
        version: Version,
    ) -> &mut Self {
        self.require(namespace, key, Precondition::Version(version))
    }

    /// Adds a precondition on `key`.
    pub fn require(
        &mut self,
        namespace: &Namespace,
        key: &[u8],
        precondition: Precondition,
    ) -> &mut Self {
        self.checks.push(Check {
            namespace: namespace.clone(),
            key: key.to_vec(),
            precondition,
        });
        self
    }

    /// Stores `value` under `key` only if the key is absent.
    pub fn put_if_absent(&mut self, namespace: &Namespace, key: &[u8], value: &[u8]) -> &mut Self {
        self.require_absent(namespace, key)
            .put(namespace, key, value)
    }

    /// Replaces `key` only if it is stored at `version` (compare-and-swap).
    pub fn put_if_version(
        &mut self,
        namespace: &Namespace,
        key: &[u8],
        version: Version,
        value: &[u8],
    ) -> &mut Self {
        self.require_version(namespace, key, version)
            .put(namespace, key, value)
    }

    /// The writes, in the order they were added.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// The preconditions, in the order they were added.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The writes, taking the batch apart.
    pub fn into_writes(self) -> Vec<Write> {
        self.writes
    }

    /// Adds every write and precondition of `other` after this batch's own, so that two parts of
    /// a change prepared by different components commit as one.
    pub fn append(&mut self, other: Batch) -> &mut Self {
        self.writes.extend(other.writes);
        self.checks.extend(other.checks);
        self
    }

    /// The writes and the preconditions, taking the batch apart.
    pub fn into_parts(self) -> (Vec<Write>, Vec<Check>) {
        (self.writes, self.checks)
    }

    /// Whether the batch holds neither writes nor preconditions.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.checks.is_empty()
    }

    /// Checks every precondition against `current`, which reads a key's stored version. Every
    /// backend calls this inside its commit, after [`validate`](Self::validate).
    ///
    /// # Errors
    /// [`Conflict`](crate::ErrorKind::Conflict) naming the first precondition that fails, or
    /// what `current` returned.
    pub fn check_preconditions(
        &self,
        mut current: impl FnMut(&Namespace, &[u8]) -> Result<Option<Version>>,
    ) -> Result<()> {
        for check in &self.checks {
            let found = current(&check.namespace, &check.key)?;
            let holds = match check.precondition {
                Precondition::Absent => found.is_none(),
                Precondition::Version(v) => found == Some(v),
            };
            if !holds {
                return Err(Error::Conflict(Box::new(crate::error::ConflictDetail {
                    namespace: check.namespace.to_string(),
                    key: check.key.clone(),
                    expected: check.precondition,
                    found,
                })));
            }
        }
        Ok(())
    }

    /// Checks the batch's shape: not empty, within the size limits, and each key written at most
    /// once and checked at most once. Every backend calls this before touching storage.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) describing the first problem found.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::invalid("batch is empty"));
        }
        let ops = self.writes.len() + self.checks.len();
        if ops > MAX_BATCH_OPS {
            return Err(Error::invalid(format!(
                "batch has {ops} operations, the limit is {MAX_BATCH_OPS}"
            )));
        }
        let mut bytes = 0usize;
        let mut written = HashSet::with_capacity(self.writes.len());
        for write in &self.writes {
            check_key(write.key())?;
            bytes = bytes.saturating_add(write.key().len());
            if let Write::Put { value, .. } = write {
                if value.len() > MAX_VALUE_LEN {
                    return Err(Error::invalid(format!(
                        "value is {} bytes, the limit is {MAX_VALUE_LEN}",
                        value.len()
                    )));
                }
                bytes = bytes.saturating_add(value.len());
            }
            if !written.insert((write.namespace(), write.key())) {
                return Err(Error::invalid(format!(
                    "batch writes {}/{} more than once",
                    write.namespace(),
                    crate::error::DisplayKey(write.key())
                )));
            }
        }
        if bytes > MAX_BATCH_BYTES {
            return Err(Error::invalid(format!(
                "batch holds {bytes} bytes, the limit is {MAX_BATCH_BYTES}"
            )));
        }
        let mut checked = HashSet::with_capacity(self.checks.len());
        for check in &self.checks {
            check_key(&check.key)?;
            if !checked.insert((&check.namespace, check.key.as_slice())) {
                return Err(Error::invalid(format!(
                    "batch has more than one precondition on {}/{}",
                    check.namespace,
                    crate::error::DisplayKey(&check.key)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_successor_edges() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(b"a"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b"a\x00"), Some(b"a\x01".to_vec()));
    }

    #[test]
    fn namespace_rules() {
        assert!(Namespace::new("a").is_ok());
        assert!(Namespace::new("tenant/1:users.v2-x_y").is_ok());
        assert!(Namespace::new(&"n".repeat(MAX_NAMESPACE_LEN)).is_ok());
        for bad in ["", "_x", "a b", "ü", "a\0"] {
            assert!(Namespace::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Namespace::new(&"n".repeat(MAX_NAMESPACE_LEN + 1)).is_err());
    }

    #[test]
    fn empty_ranges() {
        let r = |s: Bound<&[u8]>, e: Bound<&[u8]>| {
            KeyRange::new(s.map(<[u8]>::to_vec), e.map(<[u8]>::to_vec))
        };
        assert!(r(Bound::Included(b"b"), Bound::Excluded(b"b")).is_empty());
        assert!(!r(Bound::Included(b"b"), Bound::Included(b"b")).is_empty());
        assert!(r(Bound::Excluded(b"b"), Bound::Included(b"b")).is_empty());
        assert!(r(Bound::Included(b"c"), Bound::Included(b"b")).is_empty());
        assert!(!KeyRange::all().is_empty());
    }

    proptest! {
        /// A prefix range holds exactly the keys that start with the prefix.
        #[test]
        fn prefix_range_matches_starts_with(
            prefix in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), any::<u8>()], 0..4),
            key in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), any::<u8>()], 0..6),
        ) {
            prop_assert_eq!(KeyRange::prefix(&prefix).contains(&key), key.starts_with(&prefix));
        }

        /// The remaining range after a key never contains that key, in either direction, and keeps
        /// every key of the original range on the far side.
        #[test]
        fn remaining_after_excludes_last(
            last in proptest::collection::vec(any::<u8>(), 0..4),
            key in proptest::collection::vec(any::<u8>(), 0..4),
            reverse in any::<bool>(),
        ) {
            let rest = KeyRange::all().remaining_after(&last, reverse);
            prop_assert!(!rest.contains(&last));
            let beyond = if reverse { key < last } else { key > last };
            prop_assert_eq!(rest.contains(&key), beyond);
        }
    }

    #[test]
    fn validate_rejects_bad_batches() {
        let ns = Namespace::new("n").unwrap();
        assert!(Batch::new().validate().is_err());
        let mut dup = Batch::new();
        dup.put(&ns, b"k", b"1").delete(&ns, b"k");
        assert!(dup.validate().is_err());
        let mut dup_check = Batch::new();
        dup_check
            .require_absent(&ns, b"k")
            .require_version(&ns, b"k", 1);
        assert!(dup_check.validate().is_err());
        let mut big_key = Batch::new();
        big_key.put(&ns, &vec![0; MAX_KEY_LEN + 1], b"");
        assert!(big_key.validate().is_err());
        let mut ok = Batch::new();
        ok.put(&ns, &vec![0; MAX_KEY_LEN], b"")
            .require_absent(&ns, b"other");
        assert!(ok.validate().is_ok());
    }
}
