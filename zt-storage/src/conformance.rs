//! The behaviour every [`KvStore`] backend must show, as one `pub async fn` per case.
//!
//! A backend runs the whole suite with [`conformance_tests!`](crate::conformance_tests), which
//! stamps out one named test per case, so a failure reads `sled::scan_prefix_edges`. Each case
//! takes a [`Harness`] that opens a fresh, empty store and can reopen it to test durability.
//! Backend differences are harness arguments, never forks of the suite.
//!
//! Enabled in this crate's tests and, for other crates (a backend that lives elsewhere, or the
//! same suite through a wrapper such as the encrypting store), with the `conformance` feature.
//!
//! ```text
//! zt_storage::conformance_tests!(memory, zt_storage::conformance::MemoryHarness::default());
//! ```
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite reports failures by panicking"
)]

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt;

use crate::{
    Batch, Entry, ErrorKind, KeyRange, KvStore, KvStoreExt, MAX_KEY_LEN, MAX_NAMESPACE_LEN,
    MAX_SCAN_LIMIT, MAX_VALUE_LEN, MemoryStore, Namespace, PAGE_BYTE_BUDGET, Precondition,
    ScanOptions, Version,
};

/// Opens the store under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens the store. The first call sees an empty store; later calls see what earlier handles
    /// committed.
    async fn open(&self) -> Arc<dyn KvStore>;

    /// Closes `store`, lets go of it, and opens the same data again.
    async fn reopen(&self, store: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
        store.close().await.expect("close");
        drop(store);
        self.open().await
    }

    /// A new, empty place to restore an export into (see [`KvStore::export`]): the exported
    /// rows are committed to `rows` as they are, and `view` must then read what the exported
    /// store read. By default one new [`MemoryStore`] is both (a backend exports its rows as
    /// written); a wrapper's harness puts the same wrapper over `rows`.
    async fn twin(&self) -> Twin {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        Twin {
            rows: Arc::clone(&store),
            view: store,
        }
    }
}

/// See [`Harness::twin`].
pub struct Twin {
    /// Where exported rows are committed as they are.
    pub rows: Arc<dyn KvStore>,
    /// What reads them as the exported store read its own.
    pub view: Arc<dyn KvStore>,
}

/// The harness of [`MemoryStore`]: every handle it opens shares one store's data.
#[derive(Debug, Default)]
pub struct MemoryHarness {
    data: MemoryStore,
}

#[async_trait]
impl Harness for MemoryHarness {
    async fn open(&self) -> Arc<dyn KvStore> {
        Arc::new(self.data.clone())
    }
}

/// Stamps out one `#[tokio::test]` per conformance case in a module named `$backend`.
///
/// `$harness` is an expression evaluated afresh in each test; it must give a
/// [`Harness`](crate::conformance::Harness). The calling crate needs `tokio` with the `macros`
/// and `rt-multi-thread` features among its dev-dependencies.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $harness:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(
                $harness;
                round_trip,
                get_missing,
                overwrite_grows_version,
                delete_removes_key,
                delete_absent_is_ok,
                version_grows_across_delete,
                empty_value,
                large_value,
                keys_sort_as_unsigned_bytes,
                scan_prefix_edges,
                scan_range_bounds,
                scan_reverse,
                scan_pages_forward,
                scan_pages_reverse,
                scan_stream_many_keys,
                scan_page_byte_budget,
                scan_limit_validation,
                namespace_isolation,
                invalid_input,
                require_absent,
                require_version,
                require_version_of_absent_key,
                failed_precondition_writes_nothing,
                precondition_on_unwritten_key,
                check_only_batch,
                concurrent_conflicting_commits_one_winner,
                concurrent_compare_and_swap_loses_nothing,
                batch_across_namespaces_is_one_version,
                readers_see_each_commit_whole,
                a_commit_is_read_at_once,
                durable_after_reopen,
                concurrent_commits_durable_after_reopen,
                repeated_reopen,
                typed_values,
                closed_store_refuses,
                export_holds_every_row_once,
                export_sees_each_commit_whole,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::$case(&harness).await;
            }
        )*
    };
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("valid namespace")
}

async fn put(store: &dyn KvStore, namespace: &Namespace, key: &[u8], value: &[u8]) -> Version {
    let mut batch = Batch::new();
    batch.put(namespace, key, value);
    store.commit(batch).await.expect("put")
}

async fn delete(store: &dyn KvStore, namespace: &Namespace, key: &[u8]) -> Version {
    let mut batch = Batch::new();
    batch.delete(namespace, key);
    store.commit(batch).await.expect("delete")
}

async fn value_of(store: &dyn KvStore, namespace: &Namespace, key: &[u8]) -> Option<Vec<u8>> {
    store
        .get(namespace, key)
        .await
        .expect("get")
        .map(|e| e.value)
}

/// Every key of `range`, through pages of 3 so paging is exercised too.
async fn keys_in(
    store: &dyn KvStore,
    namespace: &Namespace,
    range: KeyRange,
    reverse: bool,
) -> Vec<Vec<u8>> {
    let entries: Vec<Entry> = store
        .scan_stream(
            namespace,
            range,
            ScanOptions::new().limit(3).reverse(reverse),
        )
        .try_collect()
        .await
        .expect("scan");
    entries.into_iter().map(|e| e.key).collect()
}

fn keys(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|k| k.to_vec()).collect()
}

fn assert_kind<T: std::fmt::Debug>(result: crate::Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong kind for {e}"),
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
    }
}

/// A value written is read back with the version its commit returned.
pub async fn round_trip(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("rt");
    let version = put(&*store, &n, b"key", b"value").await;
    assert!(version > 0, "versions start above zero");
    let entry = store.get(&n, b"key").await.unwrap().expect("stored");
    assert_eq!(entry.key, b"key");
    assert_eq!(entry.value, b"value");
    assert_eq!(entry.version, version);
}

/// Missing keys and never-written namespaces read as `None`.
pub async fn get_missing(harness: &dyn Harness) {
    let store = harness.open().await;
    put(&*store, &ns("present"), b"k", b"v").await;
    assert_eq!(store.get(&ns("present"), b"other").await.unwrap(), None);
    assert_eq!(store.get(&ns("never"), b"k").await.unwrap(), None);
    assert_eq!(store.get(&ns("present"), b"").await.unwrap(), None);
}

/// Overwriting replaces the value and gives a greater version.
pub async fn overwrite_grows_version(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("ow");
    let v1 = put(&*store, &n, b"k", b"one").await;
    let v2 = put(&*store, &n, b"k", b"two").await;
    assert!(v2 > v1, "{v2} must exceed {v1}");
    let entry = store.get(&n, b"k").await.unwrap().unwrap();
    assert_eq!((entry.value.as_slice(), entry.version), (&b"two"[..], v2));
}

/// A deleted key is gone from reads and scans.
pub async fn delete_removes_key(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("del");
    put(&*store, &n, b"a", b"1").await;
    put(&*store, &n, b"b", b"2").await;
    delete(&*store, &n, b"a").await;
    assert_eq!(store.get(&n, b"a").await.unwrap(), None);
    assert_eq!(
        keys_in(&*store, &n, KeyRange::all(), false).await,
        keys(&[b"b"])
    );
}

/// Deleting an absent key succeeds and changes nothing else.
pub async fn delete_absent_is_ok(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("del-absent");
    put(&*store, &n, b"keep", b"1").await;
    delete(&*store, &n, b"missing").await;
    assert_eq!(value_of(&*store, &n, b"keep").await.unwrap(), b"1");
    assert_eq!(store.get(&n, b"missing").await.unwrap(), None);
}

/// A key deleted and written again has a greater version than before the delete.
pub async fn version_grows_across_delete(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("recreate");
    let before = put(&*store, &n, b"k", b"1").await;
    delete(&*store, &n, b"k").await;
    let after = put(&*store, &n, b"k", b"2").await;
    assert!(after > before, "{after} must exceed {before}");
    // A stale compare-and-swap from before the delete must not succeed.
    let mut stale = Batch::new();
    stale.put_if_version(&n, b"k", before, b"3");
    assert_kind(store.commit(stale).await, ErrorKind::Conflict, "stale CAS");
}

/// An empty value is stored and differs from absence.
pub async fn empty_value(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("empty");
    put(&*store, &n, b"k", b"").await;
    assert_eq!(value_of(&*store, &n, b"k").await, Some(Vec::new()));
    let page = store
        .scan(&n, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert!(page.entries[0].value.is_empty());
}

/// A 1 MiB value round-trips byte for byte, through get and scan.
pub async fn large_value(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("large");
    let value: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    put(&*store, &n, b"big", &value).await;
    assert!(value_of(&*store, &n, b"big").await.unwrap() == value);
    let page = store
        .scan(&n, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert!(page.entries[0].value == value);
}

/// Keys sort as unsigned bytes, shorter before longer with the same start; the empty key is valid.
pub async fn keys_sort_as_unsigned_bytes(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("order");
    let expected = keys(&[
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x01",
        b"a",
        b"a\x00",
        b"ab",
        b"\x7f",
        b"\x80",
        b"\xfe\xff",
        b"\xff",
    ]);
    let mut batch = Batch::new();
    for k in expected.iter().rev() {
        batch.put(&n, k, b"");
    }
    store.commit(batch).await.unwrap();
    assert_eq!(keys_in(&*store, &n, KeyRange::all(), false).await, expected);
}

/// Prefix scans at the byte edges: `a`, `a\xff`, `ab`, `\xff`, the empty prefix.
pub async fn scan_prefix_edges(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("prefix");
    let all: &[&[u8]] = &[
        b"",
        b"a",
        b"a\x00",
        b"ab",
        b"abc",
        b"a\xff",
        b"a\xff\xff",
        b"b",
        b"\xff",
        b"\xff\xff",
    ];
    let mut batch = Batch::new();
    for k in all {
        batch.put(&n, k, k);
    }
    store.commit(batch).await.unwrap();
    let scan = |p: &'static [u8]| keys_in(&*store, &n, KeyRange::prefix(p), false);
    assert_eq!(
        scan(b"a").await,
        keys(&[b"a", b"a\x00", b"ab", b"abc", b"a\xff", b"a\xff\xff"])
    );
    assert_eq!(scan(b"a\xff").await, keys(&[b"a\xff", b"a\xff\xff"]));
    assert_eq!(scan(b"ab").await, keys(&[b"ab", b"abc"]));
    assert_eq!(scan(b"\xff").await, keys(&[b"\xff", b"\xff\xff"]));
    assert_eq!(scan(b"\xff\xff").await, keys(&[b"\xff\xff"]));
    assert_eq!(scan(b"c").await, Vec::<Vec<u8>>::new());
    assert_eq!(scan(b"").await, keys(all));
}

/// Range bounds are honoured: included, excluded, unbounded, empty and inverted ranges.
pub async fn scan_range_bounds(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("range");
    let mut batch = Batch::new();
    for d in b'1'..=b'9' {
        batch.put(&n, &[d], b"");
    }
    store.commit(batch).await.unwrap();
    let k = |s: &[u8]| s.to_vec();
    let cases: Vec<(KeyRange, &[u8])> = vec![
        (
            KeyRange::new(Bound::Included(k(b"3")), Bound::Excluded(k(b"6"))),
            b"345",
        ),
        (
            KeyRange::new(Bound::Excluded(k(b"3")), Bound::Included(k(b"6"))),
            b"456",
        ),
        (
            KeyRange::new(Bound::Unbounded, Bound::Included(k(b"2"))),
            b"12",
        ),
        (
            KeyRange::new(Bound::Excluded(k(b"8")), Bound::Unbounded),
            b"9",
        ),
        (
            KeyRange::new(Bound::Included(k(b"30")), Bound::Excluded(k(b"5"))),
            b"4",
        ),
        (
            KeyRange::new(Bound::Included(k(b"5")), Bound::Excluded(k(b"5"))),
            b"",
        ),
        (
            KeyRange::new(Bound::Included(k(b"5")), Bound::Included(k(b"5"))),
            b"5",
        ),
        (
            KeyRange::new(Bound::Included(k(b"7")), Bound::Included(k(b"2"))),
            b"",
        ),
    ];
    for (range, want) in cases {
        let want: Vec<Vec<u8>> = want.iter().map(|d| vec![*d]).collect();
        assert_eq!(
            keys_in(&*store, &n, range.clone(), false).await,
            want,
            "{range:?}"
        );
        let mut reversed = want.clone();
        reversed.reverse();
        assert_eq!(
            keys_in(&*store, &n, range.clone(), true).await,
            reversed,
            "rev {range:?}"
        );
    }
}

/// Reverse scans return descending keys, also over prefixes with `\xff` edges.
pub async fn scan_reverse(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("reverse");
    let all: &[&[u8]] = &[b"a", b"ab", b"a\xff", b"b"];
    let mut batch = Batch::new();
    for k in all {
        batch.put(&n, k, b"");
    }
    store.commit(batch).await.unwrap();
    assert_eq!(
        keys_in(&*store, &n, KeyRange::all(), true).await,
        keys(&[b"b", b"a\xff", b"ab", b"a"])
    );
    assert_eq!(
        keys_in(&*store, &n, KeyRange::prefix(b"a"), true).await,
        keys(&[b"a\xff", b"ab", b"a"])
    );
    let first = store
        .scan(
            &n,
            &KeyRange::all(),
            ScanOptions::new().reverse(true).limit(1),
        )
        .await
        .unwrap();
    assert_eq!(
        first.entries[0].key, b"b",
        "reverse limit 1 gives the last key"
    );
}

async fn check_paging(harness: &dyn Harness, reverse: bool) {
    let store = harness.open().await;
    let n = ns("pages");
    let mut batch = Batch::new();
    for i in 0u8..25 {
        batch.put(&n, &[i], &[i]);
    }
    store.commit(batch).await.unwrap();
    let mut range = Some(KeyRange::all());
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(r) = range {
        let page = store
            .scan(&n, &r, ScanOptions::new().limit(10).reverse(reverse))
            .await
            .unwrap();
        assert!(page.entries.len() <= 10, "page over its limit");
        sizes.push(page.entries.len());
        seen.extend(page.entries.into_iter().map(|e| e.key[0]));
        range = page.next;
        assert!(sizes.len() <= 4, "paging does not end");
    }
    let mut want: Vec<u8> = (0..25).collect();
    if reverse {
        want.reverse();
    }
    assert_eq!(seen, want);
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    assert_eq!(&sizes[..2], &[10, 10]);
}

/// Pages of a forward scan hold at most `limit` entries and resume where the last ended.
pub async fn scan_pages_forward(harness: &dyn Harness) {
    check_paging(harness, false).await;
}

/// Pages of a reverse scan hold at most `limit` entries and resume where the last ended.
pub async fn scan_pages_reverse(harness: &dyn Harness) {
    check_paging(harness, true).await;
}

/// A stream over thousands of keys sees each once, in order, one bounded page at a time.
pub async fn scan_stream_many_keys(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("many");
    for chunk in 0u32..3 {
        let mut batch = Batch::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            batch.put(&n, &i.to_be_bytes(), b"x");
        }
        store.commit(batch).await.unwrap();
    }
    let entries: Vec<Entry> = store
        .scan_stream(&n, KeyRange::all(), ScanOptions::new().limit(128))
        .try_collect()
        .await
        .unwrap();
    let got: Vec<u32> = entries
        .iter()
        .map(|e| u32::from_be_bytes(e.key.as_slice().try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..3000).collect::<Vec<_>>());
}

/// A page of large values stops near the byte budget and the scan still sees every entry.
pub async fn scan_page_byte_budget(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("budget");
    let value = vec![7u8; 1024 * 1024];
    let count = PAGE_BYTE_BUDGET / value.len() + 3;
    for i in 0..count {
        put(&*store, &n, &[i as u8], &value).await;
    }
    let page = store
        .scan(&n, &KeyRange::all(), ScanOptions::new().limit(100))
        .await
        .unwrap();
    let cap = PAGE_BYTE_BUDGET / value.len() + 1;
    assert!(
        page.entries.len() <= cap,
        "{} entries exceed the byte budget",
        page.entries.len()
    );
    assert!(
        page.next.is_some(),
        "a budget-cut page must say there is more"
    );
    let all: Vec<Entry> = store
        .scan_stream(&n, KeyRange::all(), ScanOptions::new().limit(100))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), count);
}

/// A limit of zero or above the maximum is invalid input.
pub async fn scan_limit_validation(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("limits");
    for limit in [0, MAX_SCAN_LIMIT + 1] {
        let result = store
            .scan(&n, &KeyRange::all(), ScanOptions::new().limit(limit))
            .await;
        assert_kind(result, ErrorKind::InvalidInput, "scan limit");
    }
    let oversized = KeyRange::prefix(&vec![b'k'; MAX_KEY_LEN + 1]);
    assert_kind(
        store.scan(&n, &oversized, ScanOptions::new()).await,
        ErrorKind::InvalidInput,
        "oversized bound",
    );
    assert!(
        store
            .scan(
                &n,
                &KeyRange::all(),
                ScanOptions::new().limit(MAX_SCAN_LIMIT)
            )
            .await
            .is_ok()
    );
}

/// Namespaces never see each other's keys, including names that prefix each other.
pub async fn namespace_isolation(harness: &dyn Harness) {
    let store = harness.open().await;
    let names = ["a", "ab", "a.b", "b"];
    let mut batch = Batch::new();
    for name in names {
        batch.put(&ns(name), b"k", name.as_bytes());
        batch.put(&ns(name), format!("only-{name}").as_bytes(), b"");
    }
    store.commit(batch).await.unwrap();
    for name in names {
        let n = ns(name);
        assert_eq!(value_of(&*store, &n, b"k").await.unwrap(), name.as_bytes());
        let seen = keys_in(&*store, &n, KeyRange::all(), false).await;
        assert_eq!(
            seen,
            vec![b"k".to_vec(), format!("only-{name}").into_bytes()],
            "{name}"
        );
        let reversed = keys_in(&*store, &n, KeyRange::all(), true).await;
        assert_eq!(reversed.len(), 2, "{name} reverse");
    }
    delete(&*store, &ns("a"), b"k").await;
    assert_eq!(value_of(&*store, &ns("ab"), b"k").await.unwrap(), b"ab");
}

/// Malformed requests are `InvalidInput` and store nothing.
pub async fn invalid_input(harness: &dyn Harness) {
    let store = harness.open().await;
    for bad in ["", "_reserved", "has space", "ünïcode"] {
        assert_kind(Namespace::new(bad), ErrorKind::InvalidInput, bad);
    }
    assert_kind(
        Namespace::new(&"n".repeat(MAX_NAMESPACE_LEN + 1)),
        ErrorKind::InvalidInput,
        "long namespace",
    );
    let n = ns("invalid");
    let big_key = vec![b'k'; MAX_KEY_LEN + 1];
    assert_kind(
        store.get(&n, &big_key).await,
        ErrorKind::InvalidInput,
        "get big key",
    );
    let mut batch = Batch::new();
    batch.put(&n, b"fine", b"").put(&n, &big_key, b"");
    assert_kind(
        store.commit(batch).await,
        ErrorKind::InvalidInput,
        "put big key",
    );
    let mut batch = Batch::new();
    batch
        .put(&n, b"fine", b"")
        .put_owned(&n, b"big".to_vec(), vec![0; MAX_VALUE_LEN + 1]);
    assert_kind(
        store.commit(batch).await,
        ErrorKind::InvalidInput,
        "big value",
    );
    assert_kind(
        store.commit(Batch::new()).await,
        ErrorKind::InvalidInput,
        "empty batch",
    );
    let mut batch = Batch::new();
    batch.put(&n, b"fine", b"1").put(&n, b"fine", b"2");
    assert_kind(
        store.commit(batch).await,
        ErrorKind::InvalidInput,
        "duplicate write",
    );
    assert_eq!(
        store.get(&n, b"fine").await.unwrap(),
        None,
        "nothing stored"
    );
    let mut batch = Batch::new();
    batch.put(&n, &vec![b'k'; MAX_KEY_LEN], b"max");
    store
        .commit(batch)
        .await
        .expect("a key of exactly the limit is fine");
}

/// `require_absent` holds for a new key and fails, naming it, once the key exists.
pub async fn require_absent(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("absent");
    let mut batch = Batch::new();
    batch.put_if_absent(&n, b"alice", b"user-1");
    let v = store.commit(batch).await.unwrap();
    let mut again = Batch::new();
    again.put_if_absent(&n, b"alice", b"user-2");
    let err = store.commit(again).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let detail = err.conflict().expect("conflict detail");
    assert_eq!(detail.namespace, "absent");
    assert_eq!(detail.key, b"alice");
    assert_eq!(detail.expected, Precondition::Absent);
    assert_eq!(detail.found, Some(v));
    assert_eq!(value_of(&*store, &n, b"alice").await.unwrap(), b"user-1");
}

/// `require_version` holds at the current version and fails at a stale one.
pub async fn require_version(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("cas");
    let v1 = put(&*store, &n, b"k", b"1").await;
    let mut swap = Batch::new();
    swap.put_if_version(&n, b"k", v1, b"2");
    let v2 = store.commit(swap).await.unwrap();
    let mut stale = Batch::new();
    stale.put_if_version(&n, b"k", v1, b"3");
    let err = store.commit(stale).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let detail = err.conflict().unwrap();
    assert_eq!(
        (detail.expected, detail.found),
        (Precondition::Version(v1), Some(v2))
    );
    assert_eq!(value_of(&*store, &n, b"k").await.unwrap(), b"2");
}

/// `require_version` on an absent key fails with `found: None`.
pub async fn require_version_of_absent_key(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("cas-absent");
    let mut batch = Batch::new();
    batch.put_if_version(&n, b"ghost", 1, b"x");
    let err = store.commit(batch).await.unwrap_err();
    assert_eq!(err.conflict().map(|d| d.found), Some(None));
    assert_eq!(store.get(&n, b"ghost").await.unwrap(), None);
}

/// One failing precondition leaves every key of the batch, in every namespace, untouched.
pub async fn failed_precondition_writes_nothing(harness: &dyn Harness) {
    let store = harness.open().await;
    let (a, b) = (ns("fail-a"), ns("fail-b"));
    let existing = put(&*store, &a, b"existing", b"old").await;
    let taken = put(&*store, &b, b"taken", b"x").await;
    let mut batch = Batch::new();
    batch
        .put(&a, b"new-1", b"n")
        .put(&b, b"new-2", b"n")
        .put(&a, b"existing", b"new")
        .delete(&b, b"taken")
        .require_absent(&a, b"new-1")
        .require_version(&a, b"existing", existing)
        .require_absent(&b, b"taken");
    let err = store.commit(batch).await.unwrap_err();
    assert_eq!(
        err.conflict().map(|d| d.key.clone()),
        Some(b"taken".to_vec())
    );
    assert_eq!(store.get(&a, b"new-1").await.unwrap(), None);
    assert_eq!(store.get(&b, b"new-2").await.unwrap(), None);
    let old = store.get(&a, b"existing").await.unwrap().unwrap();
    assert_eq!((old.value.as_slice(), old.version), (&b"old"[..], existing));
    assert_eq!(
        store.get(&b, b"taken").await.unwrap().unwrap().version,
        taken
    );
}

/// A precondition may guard a key the batch does not write (a read set).
pub async fn precondition_on_unwritten_key(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("readset");
    let policy = put(&*store, &n, b"policy", b"v1").await;
    let mut guarded = Batch::new();
    guarded
        .require_version(&n, b"policy", policy)
        .put(&n, b"doc-1", b"ok");
    store.commit(guarded).await.unwrap();
    put(&*store, &n, b"policy", b"v2").await;
    let mut stale = Batch::new();
    stale
        .require_version(&n, b"policy", policy)
        .put(&n, b"doc-2", b"no");
    assert_kind(
        store.commit(stale).await,
        ErrorKind::Conflict,
        "stale read set",
    );
    assert_eq!(store.get(&n, b"doc-2").await.unwrap(), None);
}

/// A batch of preconditions only writes nothing and reports the latest version.
pub async fn check_only_batch(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("checks");
    let v = put(&*store, &n, b"k", b"1").await;
    let mut checks = Batch::new();
    checks
        .require_version(&n, b"k", v)
        .require_absent(&n, b"other");
    let reported = store.commit(checks).await.unwrap();
    assert!(reported >= v);
    assert_eq!(store.get(&n, b"k").await.unwrap().unwrap().version, v);
    let mut failing = Batch::new();
    failing.require_absent(&n, b"k");
    assert_kind(
        store.commit(failing).await,
        ErrorKind::Conflict,
        "check-only conflict",
    );
}

/// N concurrent commits that each require the same key absent: exactly one wins.
pub async fn concurrent_conflicting_commits_one_winner(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("race");
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let store = Arc::clone(&store);
            let n = n.clone();
            tokio::spawn(async move {
                let mut batch = Batch::new();
                batch.put_if_absent(&n, b"leader", &[i]);
                (i, store.commit(batch).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match result {
            Ok(_) => winners.push(i),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "loser {i}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        value_of(&*store, &n, b"leader").await.unwrap(),
        vec![winners[0]]
    );
}

/// Concurrent compare-and-swap increments with retry lose no update.
pub async fn concurrent_compare_and_swap_loses_nothing(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("counter");
    put(&*store, &n, b"count", &0u64.to_be_bytes()).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let n = n.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store.get(&n, b"count").await.unwrap().unwrap();
                        let value = u64::from_be_bytes(current.value.try_into().unwrap());
                        let mut batch = Batch::new();
                        batch.put_if_version(
                            &n,
                            b"count",
                            current.version,
                            &(value + 1).to_be_bytes(),
                        );
                        match store.commit(batch).await {
                            Ok(_) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => continue,
                            Err(e) => panic!("increment failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let count = value_of(&*store, &n, b"count").await.unwrap();
    assert_eq!(u64::from_be_bytes(count.try_into().unwrap()), 80);
}

/// Every write of one batch, across namespaces, carries the batch's version.
pub async fn batch_across_namespaces_is_one_version(harness: &dyn Harness) {
    let store = harness.open().await;
    let spaces = [ns("multi-1"), ns("multi-2"), ns("multi-3")];
    let mut batch = Batch::new();
    for i in 0u8..100 {
        batch.put(&spaces[usize::from(i) % 3], &[i], &[i]);
    }
    let version = store.commit(batch).await.unwrap();
    for i in 0u8..100 {
        let entry = store
            .get(&spaces[usize::from(i) % 3], &[i])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.version, version);
    }
    let next = put(&*store, &spaces[0], b"later", b"").await;
    assert!(next > version);
}

/// While a writer commits batches of many writes (each puts the same value under every key of
/// a namespace, or deletes them all), concurrent scans see each batch whole: every key or none,
/// one value, one version; and a later scan never sees an older batch than an earlier one.
pub async fn readers_see_each_commit_whole(harness: &dyn Harness) {
    const KEYS: u16 = 48;
    const BATCHES: u32 = 120;
    let store = harness.open().await;
    let n = ns("whole");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|reverse| {
            let (store, n, done) = (Arc::clone(&store), n.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let mut newest = 0;
                let mut scans = 0u32;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::Acquire);
                    let page = store
                        .scan(
                            &n,
                            &KeyRange::all(),
                            ScanOptions {
                                limit: 1000,
                                reverse,
                            },
                        )
                        .await
                        .unwrap();
                    let entries = page.entries;
                    if let Some(first) = entries.first() {
                        assert_eq!(entries.len(), usize::from(KEYS), "a batch seen in part");
                        assert!(
                            entries
                                .iter()
                                .all(|e| e.version == first.version && e.value == first.value),
                            "two batches seen at once"
                        );
                        assert!(first.version >= newest, "an older batch seen after a newer");
                        newest = first.version;
                    }
                    scans += 1;
                    if finished {
                        return scans;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let padding = vec![0x33u8; 700];
    for i in 0..BATCHES {
        let mut batch = Batch::new();
        for k in 0..KEYS {
            if i % 4 == 3 {
                batch.delete(&n, &k.to_be_bytes());
            } else {
                batch.put(
                    &n,
                    &k.to_be_bytes(),
                    &[&i.to_be_bytes()[..], &padding].concat(),
                );
            }
        }
        store.commit(batch).await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}

/// Each of many concurrent writers reads its own commit at once, by key and by scan: a put as
/// written with the commit's version, a delete as gone.
pub async fn a_commit_is_read_at_once(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("at-once");
    let writers: Vec<_> = (0..8u8)
        .map(|w| {
            let (store, n) = (Arc::clone(&store), n.clone());
            tokio::spawn(async move {
                let padding = vec![w; 2048];
                for i in 0..40u8 {
                    let key = [w, i];
                    // Other keys in the same batch make the groups large.
                    let mut batch = Batch::new();
                    batch.put(&n, &key, &[i]);
                    for extra in 0..16u8 {
                        batch.put(&n, &[w, i, extra], &padding);
                    }
                    let version = store.commit(batch).await.unwrap();
                    let entry = store.get(&n, &key).await.unwrap();
                    assert_eq!(
                        entry.map(|e| (e.value, e.version)),
                        Some((vec![i], version)),
                        "a get right after the commit"
                    );
                    let page = store
                        .scan(&n, &KeyRange::prefix(&key), ScanOptions::default())
                        .await
                        .unwrap();
                    assert_eq!(page.entries.len(), 17, "a scan right after the commit");
                    assert_eq!(page.entries[0].value, vec![i]);
                    let mut batch = Batch::new();
                    batch.delete(&n, &key);
                    batch.delete(&n, &[w, i, 0]);
                    store.commit(batch).await.unwrap();
                    assert_eq!(store.get(&n, &key).await.unwrap(), None, "a deleted key");
                    let page = store
                        .scan(
                            &n,
                            &KeyRange::prefix(&key),
                            ScanOptions {
                                limit: 100,
                                reverse: true,
                            },
                        )
                        .await
                        .unwrap();
                    assert_eq!(page.entries.len(), 15, "a scan after the delete");
                    assert_eq!(page.entries.last().unwrap().key, vec![w, i, 1]);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
}

/// Everything acknowledged survives close and reopen, with the same versions; versions keep
/// growing after the reopen.
pub async fn durable_after_reopen(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("durable");
    let big = vec![0xabu8; 1024 * 1024];
    let v_small = put(&*store, &n, b"small", b"s").await;
    let v_big = put(&*store, &n, b"big", &big).await;
    put(&*store, &n, b"gone", b"g").await;
    delete(&*store, &n, b"gone").await;
    put(&*store, &n, b"empty", b"").await;
    let store = harness.reopen(store).await;
    let small = store.get(&n, b"small").await.unwrap().unwrap();
    assert_eq!(
        (small.value.as_slice(), small.version),
        (&b"s"[..], v_small)
    );
    let got_big = store.get(&n, b"big").await.unwrap().unwrap();
    assert!(got_big.value == big && got_big.version == v_big);
    assert_eq!(store.get(&n, b"gone").await.unwrap(), None);
    assert_eq!(value_of(&*store, &n, b"empty").await, Some(Vec::new()));
    let after = put(&*store, &n, b"small", b"t").await;
    assert!(after > v_big, "versions continue after reopen");
}

/// Many concurrent acknowledged commits all survive a reopen.
pub async fn concurrent_commits_durable_after_reopen(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("group");
    let tasks: Vec<_> = (0..64u32)
        .map(|i| {
            let store = Arc::clone(&store);
            let n = n.clone();
            tokio::spawn(async move {
                let mut batch = Batch::new();
                batch.put(&n, &i.to_be_bytes(), &i.to_le_bytes());
                store.commit(batch).await.map(|v| (i, v))
            })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.push(task.await.unwrap().expect("commit"));
    }
    let store = harness.reopen(store).await;
    for (i, version) in acked {
        let entry = store
            .get(&n, &i.to_be_bytes())
            .await
            .unwrap()
            .expect("durable");
        assert_eq!(
            (entry.value, entry.version),
            (i.to_le_bytes().to_vec(), version)
        );
    }
}

/// Reopening again and again, with and without writes in between, keeps every value and keeps
/// versions growing.
pub async fn repeated_reopen(harness: &dyn Harness) {
    let mut store = harness.open().await;
    let n = ns("reopen");
    let mut last = put(&*store, &n, b"k", b"0").await;
    for round in 1u8..=3 {
        // Once without writes, once after writing.
        store = harness.reopen(store).await;
        store = harness.reopen(store).await;
        let entry = store.get(&n, b"k").await.unwrap().expect("kept");
        assert_eq!(entry.version, last, "round {round}");
        assert_eq!(entry.value, vec![b'0' + round - 1]);
        let next = put(&*store, &n, b"k", &[b'0' + round]).await;
        assert!(next > last, "round {round}: {next} after {last}");
        last = next;
    }
}

/// Typed values round-trip through the codec; bytes that are not a value fail as `Corrupt`.
pub async fn typed_values(harness: &dyn Harness) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Profile {
        name: String,
        tags: Vec<String>,
        quota: Option<u64>,
    }
    let store = harness.open().await;
    let n = ns("typed");
    let profile = Profile {
        name: "alice".into(),
        tags: vec!["admin".into()],
        quota: None,
    };
    let mut batch = Batch::new();
    batch.put_encoded(&n, b"p", &profile).unwrap();
    let v = store.commit(batch).await.unwrap();
    assert_eq!(
        store.get_decoded::<Profile>(&n, b"p").await.unwrap(),
        Some((profile, v))
    );
    assert_eq!(
        store.get_decoded::<Profile>(&n, b"missing").await.unwrap(),
        None
    );
    put(&*store, &n, b"raw", b"not cbor").await;
    assert_kind(
        store.get_decoded::<Profile>(&n, b"raw").await,
        ErrorKind::Corrupt,
        "raw",
    );
    assert_kind(
        store.get_required(&n, b"missing").await,
        ErrorKind::NotFound,
        "required",
    );
}

/// A closed handle refuses reads and writes with `Closed`; closing twice is fine.
pub async fn closed_store_refuses(harness: &dyn Harness) {
    let store = harness.open().await;
    let n = ns("closed");
    put(&*store, &n, b"k", b"v").await;
    store.close().await.unwrap();
    store.close().await.unwrap();
    assert_kind(store.get(&n, b"k").await, ErrorKind::Closed, "get");
    let mut batch = Batch::new();
    batch.put(&n, b"k2", b"v");
    assert_kind(store.commit(batch).await, ErrorKind::Closed, "commit");
    assert_kind(
        store.scan(&n, &KeyRange::all(), ScanOptions::new()).await,
        ErrorKind::Closed,
        "scan",
    );
}

/// Exports `store` and commits the rows to a new twin of the harness; returns the twin's view
/// and how many rows the export handed over.
async fn restored(harness: &dyn Harness, store: &dyn KvStore) -> (Arc<dyn KvStore>, u64) {
    let mut rows = Vec::new();
    let mut sink = |namespace: &Namespace, key: &[u8], value: &[u8]| {
        rows.push((namespace.clone(), key.to_vec(), value.to_vec()));
        Ok(())
    };
    let count = store.export(&mut sink).await.expect("export");
    assert_eq!(count, rows.len() as u64, "the count an export returns");
    let twin = harness.twin().await;
    for chunk in rows.chunks(64) {
        let mut batch = Batch::new();
        for (namespace, key, value) in chunk {
            batch.put(namespace, key, value);
        }
        twin.rows.commit(batch).await.expect("import");
    }
    (twin.view, count)
}

/// Every (key, value) of a namespace.
async fn rows_of(store: &dyn KvStore, namespace: &Namespace) -> Vec<(Vec<u8>, Vec<u8>)> {
    let entries: Vec<Entry> = store
        .scan_stream(namespace, KeyRange::all(), ScanOptions::new())
        .try_collect()
        .await
        .expect("scan");
    entries.into_iter().map(|e| (e.key, e.value)).collect()
}

/// An export restored into an empty store reads as the store did: every row of every
/// namespace once, with its value (empty and large ones too), nothing deleted; a sink's error
/// ends the export; a closed store refuses.
pub async fn export_holds_every_row_once(harness: &dyn Harness) {
    let store = harness.open().await;
    let names = ["ex", "ex-longer", "e"];
    let large = vec![0x5a; 100_000];
    for (name, count) in [("ex", 30u8), ("ex-longer", 5), ("e", 3)] {
        let mut batch = Batch::new();
        for i in 0..count {
            let value = match i {
                0 => Vec::new(),
                1 => large.clone(),
                _ => vec![i; usize::from(i)],
            };
            batch.put(&ns(name), &[b'k', i], &value);
        }
        store.commit(batch).await.unwrap();
    }
    delete(&*store, &ns("ex"), &[b'k', 7]).await;
    put(&*store, &ns("ex"), &[b'k', 8], b"replaced").await;
    let (view, count) = restored(harness, &*store).await;
    assert!(count >= 37, "at least every row written: {count}");
    for name in names {
        let original = rows_of(&*store, &ns(name)).await;
        assert!(!original.is_empty());
        assert_eq!(
            rows_of(&*view, &ns(name)).await,
            original,
            "namespace {name}"
        );
    }
    assert_eq!(view.get(&ns("ex"), &[b'k', 7]).await.unwrap(), None);

    let mut calls = 0;
    let mut failing = |_: &Namespace, _: &[u8], _: &[u8]| {
        calls += 1;
        Err(crate::Error::invalid("the sink is full"))
    };
    assert_kind(
        store.export(&mut failing).await,
        ErrorKind::InvalidInput,
        "a sink's error",
    );
    assert_eq!(calls, 1, "the export stops at the sink's first error");
    store.close().await.unwrap();
    let mut sink = |_: &Namespace, _: &[u8], _: &[u8]| Ok(());
    assert_kind(
        store.export(&mut sink).await,
        ErrorKind::Closed,
        "export when closed",
    );
}

/// While a writer commits batches that put the same counter under keys of two namespaces,
/// every export, restored, reads both equal: the state after some commit, never half of one.
pub async fn export_sees_each_commit_whole(harness: &dyn Harness) {
    const COMMITS: u32 = 200;
    let store = harness.open().await;
    let (left, right) = (ns("pair-left"), ns("pair-right"));
    let writer = {
        let (store, left, right) = (Arc::clone(&store), left.clone(), right.clone());
        tokio::spawn(async move {
            for i in 0..COMMITS {
                let mut batch = Batch::new();
                for k in 0u8..4 {
                    batch.put(&left, &[k], &i.to_be_bytes());
                    batch.put(&right, &[k], &i.to_be_bytes());
                }
                store.commit(batch).await.unwrap();
                // Paced, so exports run while it writes whatever the backend's speed.
                tokio::time::sleep(std::time::Duration::from_micros(500)).await;
            }
        })
    };
    let mut exports = 0;
    while !writer.is_finished() || exports == 0 {
        let (view, _) = restored(harness, &*store).await;
        let (l, r) = (rows_of(&*view, &left).await, rows_of(&*view, &right).await);
        assert_eq!(l, r, "an export saw part of a commit");
        let first = l.first().map(|(_, value)| value.clone());
        assert!(
            l.iter().all(|(_, value)| Some(value) == first.as_ref()),
            "an export saw two commits at once"
        );
        assert!(
            l.is_empty() || l.len() == 4,
            "an export saw a commit in part"
        );
        exports += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(exports > 0);
}
