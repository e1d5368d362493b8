//! `EncryptingStore` against what an attacker with the disk could try, and against shredding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]
#![cfg(feature = "sled")]

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use futures_util::TryStreamExt;
use proptest::prelude::*;
use zt_crypto::Kms as _;

use zt_storage::{
    Batch, EncryptingStore, ErrorKind, KeyRange, KvKeyRecords, KvStore, KvStoreExt, Namespace,
    ScanOptions, SledConfig, SledStore,
};

const CANARY: &str = "zt-canary-7f3a9c41-do-not-store-in-clear";

fn ns(name: &str) -> Namespace {
    Namespace::new(name).unwrap()
}

struct World {
    kms: Arc<zt_crypto::InsecureFixedKms>,
}

impl World {
    async fn new() -> Self {
        let kms = Arc::new(zt_crypto::InsecureFixedKms::new());
        kms.create_key(&zt_crypto::KeyId::new("tenants").unwrap())
            .await
            .unwrap();
        World { kms }
    }

    fn keyring(&self, inner: Arc<dyn KvStore>) -> Arc<zt_crypto::Keyring> {
        Arc::new(zt_crypto::Keyring::new(
            self.kms.clone(),
            Arc::new(KvKeyRecords::standard(inner).unwrap()),
            zt_crypto::KeyId::new("tenants").unwrap(),
            zt_crypto::KeyringConfig::default(),
        ))
    }

    fn store(&self, inner: Arc<dyn KvStore>, tenant: &str) -> EncryptingStore<Arc<dyn KvStore>> {
        let keyring = self.keyring(inner.clone());
        EncryptingStore::new(inner, keyring, tenant).blind_namespace(ns("usernames"))
    }
}

async fn sled(dir: &Path) -> Arc<dyn KvStore> {
    Arc::new(SledStore::open(SledConfig::new(dir)).await.unwrap())
}

/// Every file under `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.extend(std::fs::read(path).unwrap());
            }
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The forms of the canary to look for: UTF-8, UTF-16 both ways, and base64 at each of the three
/// alignments (the middle of each encoding, which does not depend on neighbouring bytes).
fn canary_forms() -> Vec<Vec<u8>> {
    let mut forms = vec![CANARY.as_bytes().to_vec()];
    forms.push(CANARY.encode_utf16().flat_map(u16::to_le_bytes).collect());
    forms.push(CANARY.encode_utf16().flat_map(u16::to_be_bytes).collect());
    for pad in 0..3 {
        let mut padded = vec![b'x'; pad];
        padded.extend_from_slice(CANARY.as_bytes());
        let encoded = base64(&padded);
        forms.push(encoded.as_bytes()[4..encoded.len() - 4].to_vec());
    }
    forms
}

fn hits(haystack: &[u8]) -> Vec<usize> {
    canary_forms()
        .iter()
        .enumerate()
        .filter(|(_, form)| haystack.windows(form.len()).any(|w| w == form.as_slice()))
        .map(|(i, _)| i)
        .collect()
}

async fn write_canaries(store: &dyn KvStore) {
    for chunk in 0..10 {
        let mut batch = Batch::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            let value = format!("{{\"n\":{i},\"secret\":\"{CANARY}\"}}");
            batch.put(
                &ns("messages"),
                format!("msg-{i:04}").as_bytes(),
                value.as_bytes(),
            );
            if i % 10 == 0 {
                // A name that would reveal the canary, in a blinded namespace.
                batch.put(
                    &ns("usernames"),
                    format!("{CANARY}-{i}").as_bytes(),
                    b"user",
                );
            }
        }
        store.commit(batch).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_reaches_the_disk() {
    let world = World::new().await;
    // The control: the same writes through plain sled are found, so the search works.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = sled(plain_dir.path()).await;
    write_canaries(&*plain).await;
    plain.close().await.unwrap();
    assert_eq!(
        hits(&all_bytes(plain_dir.path())).len(),
        1,
        "the control finds UTF-8 only"
    );

    let dir = tempfile::tempdir().unwrap();
    let inner = sled(dir.path()).await;
    let store = world.store(inner, "tenant-1");
    write_canaries(&store).await;
    // Everything reads back.
    let all: Vec<_> = store
        .scan_stream(&ns("messages"), KeyRange::all(), ScanOptions::new())
        .collect::<Vec<_>>()
        .await;
    assert_eq!(all.len(), 1000);
    let names = store
        .scan(&ns("usernames"), &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert_eq!(names.entries.len(), 100);
    assert!(
        names
            .entries
            .iter()
            .all(|e| e.key.starts_with(CANARY.as_bytes()))
    );
    store.close().await.unwrap();
    assert_eq!(
        hits(&all_bytes(dir.path())),
        Vec::<usize>::new(),
        "canary found on disk"
    );
}

use futures_util::StreamExt as _;

#[tokio::test]
async fn tampered_swapped_and_moved_values_fail() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let t1 = world.store(inner.clone(), "tenant-1");
    let t2 = world.store(inner.clone(), "tenant-2");
    let messages = ns("messages");
    let mut batch = Batch::new();
    batch
        .put(&messages, b"a", b"value a")
        .put(&messages, b"b", b"value b");
    t1.commit(batch).await.unwrap();
    let raw = |key: &'static [u8]| {
        let inner = inner.clone();
        async move {
            inner
                .get(&ns("messages"), key)
                .await
                .unwrap()
                .unwrap()
                .value
        }
    };
    let (sealed_a, sealed_b) = (raw(b"a").await, raw(b"b").await);

    // A flipped byte anywhere.
    for i in [0, 10, sealed_a.len() / 2, sealed_a.len() - 1] {
        let mut bad = sealed_a.clone();
        bad[i] ^= 1;
        let mut batch = Batch::new();
        batch.put(&messages, b"a", &bad);
        inner.commit(batch).await.unwrap();
        assert_eq!(
            t1.get(&messages, b"a").await.unwrap_err().kind(),
            ErrorKind::Corrupt,
            "byte {i}"
        );
    }
    // Values swapped between rows.
    let mut batch = Batch::new();
    batch
        .put(&messages, b"a", &sealed_b)
        .put(&messages, b"b", &sealed_a);
    inner.commit(batch).await.unwrap();
    assert_eq!(
        t1.get(&messages, b"a").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    assert_eq!(
        t1.get(&messages, b"b").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    // Moved to another tenant's view of the same row (and its keys).
    let mut batch = Batch::new();
    batch.put(&messages, b"a", &sealed_a);
    inner.commit(batch).await.unwrap();
    assert_eq!(
        t1.get(&messages, b"a").await.unwrap().unwrap().value,
        b"value a"
    );
    assert!(t2.get(&messages, b"a").await.is_err());
    // Moved to another namespace, same key.
    let mut batch = Batch::new();
    batch.put(&ns("other"), b"a", &sealed_a);
    inner.commit(batch).await.unwrap();
    assert_eq!(
        t1.get(&ns("other"), b"a").await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
}

#[tokio::test]
async fn destroying_a_scope_key_shreds_exactly_its_rows() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let keyring = world.keyring(inner.clone());
    // One scope per channel: the key prefix before '/'.
    let store = EncryptingStore::new(inner.clone(), keyring.clone(), "tenant-1").with_scopes(
        Arc::new(|_, key| {
            let channel = key.split(|&b| b == b'/').next().unwrap_or_default();
            format!("channel:{}", String::from_utf8_lossy(channel))
        }),
    );
    let messages = ns("messages");
    let mut batch = Batch::new();
    batch
        .put(&messages, b"c1/m1", b"one")
        .put(&messages, b"c2/m1", b"two");
    store.commit(batch).await.unwrap();
    keyring
        .destroy_scope_key("tenant-1", "channel:c1")
        .await
        .unwrap();
    assert_eq!(
        store.get(&messages, b"c1/m1").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    assert_eq!(
        store.get(&messages, b"c2/m1").await.unwrap().unwrap().value,
        b"two"
    );
    // Writing to a shredded scope is refused too, rather than silently re-keyed.
    let mut batch = Batch::new();
    batch.put(&messages, b"c1/m2", b"again");
    assert_eq!(
        store.commit(batch).await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

#[tokio::test]
async fn blinded_namespaces_hide_keys_but_serve_lookups() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let store = world.store(inner.clone(), "tenant-1");
    let names = ns("usernames");
    let mut batch = Batch::new();
    batch.put_if_absent(&names, b"alice", b"usr_1");
    store.commit(batch).await.unwrap();
    assert_eq!(
        store.get(&names, b"alice").await.unwrap().unwrap().value,
        b"usr_1"
    );
    assert!(store.get(&names, b"bob").await.unwrap().is_none());
    // On the inner store the key is a 32-byte HMAC, not "alice".
    let raw = inner
        .scan(&names, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert_eq!(raw.entries.len(), 1);
    assert_eq!(raw.entries[0].key.len(), 32);
    assert!(!raw.entries[0].key.windows(5).any(|w| w == b"alice"));
    // Uniqueness still works, and the conflict names the caller's key.
    let mut again = Batch::new();
    again.put_if_absent(&names, b"alice", b"usr_2");
    let err = store.commit(again).await.unwrap_err();
    assert_eq!(err.conflict().unwrap().key, b"alice");
    // Other tenants blind differently.
    let t2 = world.store(inner.clone(), "tenant-2");
    assert!(t2.get(&names, b"alice").await.unwrap().is_none());
    // Range scans make no sense over HMACs.
    let err = store
        .scan(&names, &KeyRange::prefix(b"al"), ScanOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // The key-record namespace is out of reach through the wrapper, which reserves it itself:
    // no read, no scan, no write.
    let records = ns(zt_storage::KEY_RECORDS);
    let err = store.get(&records, b"tenant/tenant-1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = store
        .scan(&records, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut overwrite = Batch::new();
    overwrite.put(&records, b"tenant/tenant-1", b"forged");
    let err = store.commit(overwrite).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// The owners of the prefix-blinded test namespace: 4-byte ids.
const OWNERS: [&[u8; 4]; 3] = [b"own1", b"own2", b"\x00\x00\x00\x07"];

fn prefixed_store(
    world: &World,
    inner: Arc<dyn KvStore>,
    tenant: &str,
) -> EncryptingStore<Arc<dyn KvStore>> {
    world.store(inner, tenant).blind_prefix(ns("posts"), 4)
}

fn post_key(owner: &[u8], i: u8) -> Vec<u8> {
    [owner, &[i]].concat()
}

/// One batch whose keys and checks alternate between owners stores each key under its own
/// owner's prefix (the commit reuses the prefix it blinded last only for the same owner).
#[tokio::test]
async fn a_batch_alternating_owners_keeps_each_row_with_its_owner() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let store = prefixed_store(&world, inner.clone(), "tenant-1");
    let posts = ns("posts");
    let mut batch = Batch::new();
    for i in 0u8..12 {
        let owner = OWNERS[usize::from(i) % 3];
        batch.put_if_absent(&posts, &post_key(owner, i), &[i]);
    }
    store.commit(batch).await.unwrap();
    for (o, owner) in OWNERS.iter().enumerate() {
        let page = store
            .scan(&posts, &KeyRange::prefix(&owner[..]), ScanOptions::new())
            .await
            .unwrap();
        let keys: Vec<Vec<u8>> = page.entries.iter().map(|e| e.key.clone()).collect();
        let mine: Vec<Vec<u8>> = (0u8..12)
            .filter(|i| usize::from(*i) % 3 == o)
            .map(|i| post_key(&owner[..], i))
            .collect();
        assert_eq!(keys, mine);
    }
    // A check on another owner's key in between is a check of that key.
    let mut batch = Batch::new();
    batch
        .put_if_absent(&posts, &post_key(OWNERS[0], 100), b"new")
        .put_if_absent(&posts, &post_key(OWNERS[1], 1), b"taken");
    let err = store.commit(batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        store
            .get(&posts, &post_key(OWNERS[0], 100))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn prefix_blinded_namespaces_hide_owners_and_keep_each_owners_rows_in_order() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let store = prefixed_store(&world, inner.clone(), "tenant-1");
    let posts = ns("posts");
    let mut batch = Batch::new();
    for owner in OWNERS {
        for i in 0u8..5 {
            batch.put(&posts, &post_key(owner, i), &[i]);
        }
    }
    store.commit(batch).await.unwrap();
    // On disk no key contains an owner id; each owner's rows share one stored prefix.
    let raw = inner
        .scan(&posts, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert_eq!(raw.entries.len(), 15);
    for entry in &raw.entries {
        assert_eq!(entry.key.len(), 16 + 1);
        for owner in OWNERS {
            assert!(!entry.key.windows(4).any(|w| w == owner), "{:?}", entry.key);
        }
    }
    let mut prefixes: Vec<&[u8]> = raw.entries.iter().map(|e| &e.key[..16]).collect();
    prefixes.dedup();
    assert_eq!(prefixes.len(), 3);
    // Another tenant blinds the same owner differently.
    let inner2: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let other = prefixed_store(&world, inner2.clone(), "tenant-2");
    let mut batch = Batch::new();
    batch.put(&posts, &post_key(OWNERS[0], 0), b"x");
    other.commit(batch).await.unwrap();
    let raw2 = inner2
        .scan(&posts, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    assert!(!prefixes.contains(&&raw2.entries[0].key[..16]));
    // Point reads, and a whole scan in pages, give the callers' keys back.
    assert_eq!(
        store
            .get(&posts, &post_key(OWNERS[1], 3))
            .await
            .unwrap()
            .unwrap()
            .value,
        [3]
    );
    let whole: Vec<_> = store
        .scan_stream(&posts, KeyRange::all(), ScanOptions::new().limit(4))
        .try_collect()
        .await
        .unwrap();
    let mut keys: Vec<Vec<u8>> = whole.into_iter().map(|e| e.key).collect();
    keys.sort();
    let mut expected: Vec<Vec<u8>> = OWNERS
        .iter()
        .flat_map(|o| (0u8..5).map(move |i| post_key(&o[..], i)))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    // One owner's rows, newest first, in pages of two.
    let newest: Vec<_> = store
        .scan_stream(
            &posts,
            KeyRange::prefix(OWNERS[2]),
            ScanOptions::new().reverse(true).limit(2),
        )
        .try_collect()
        .await
        .unwrap();
    let newest: Vec<u8> = newest.iter().map(|e| e.value[0]).collect();
    assert_eq!(newest, [4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn prefix_blinded_rows_refuse_moves_ranges_across_owners_and_short_keys() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let store = prefixed_store(&world, inner.clone(), "tenant-1");
    let posts = ns("posts");
    let mut batch = Batch::new();
    batch.put(&posts, &post_key(OWNERS[0], 1), b"first owner's post");
    batch.put(&posts, &post_key(OWNERS[1], 1), b"second owner's post");
    store.commit(batch).await.unwrap();
    // An attacker with the disk copies one owner's sealed row over the other's.
    let raw = inner
        .scan(&posts, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    let (a, b) = (&raw.entries[0], &raw.entries[1]);
    let mut swap = Batch::new();
    swap.put(&posts, &b.key, &a.value);
    inner.commit(swap).await.unwrap();
    let opened = [
        store.get(&posts, &post_key(OWNERS[0], 1)).await,
        store.get(&posts, &post_key(OWNERS[1], 1)).await,
    ];
    assert_eq!(
        opened.iter().filter(|r| r.is_err()).count(),
        1,
        "exactly the overwritten row fails"
    );
    for result in opened.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(result.kind(), ErrorKind::Corrupt);
    }
    // Ranges that reach past one owner, or have no owner, are refused rather than misread.
    let refused = [
        KeyRange::new(
            Bound::Included(post_key(OWNERS[0], 0)),
            Bound::Excluded(post_key(OWNERS[1], 9)),
        ),
        KeyRange::new(Bound::Included(post_key(OWNERS[0], 0)), Bound::Unbounded),
        KeyRange::new(Bound::Unbounded, Bound::Included(post_key(OWNERS[0], 0))),
        KeyRange::prefix(b"own"),
        KeyRange::new(
            Bound::Included(b"own1".to_vec()),
            Bound::Excluded(b"own3".to_vec()),
        ),
    ];
    for range in refused {
        let err = store
            .scan(&posts, &range, ScanOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{range:?}");
    }
    // Keys shorter than the owner id, and an all-0xff owner (no range can end after it).
    for key in [&b"own"[..], b"\xff\xff\xff\xff\x01"] {
        let mut batch = Batch::new();
        batch.put(&posts, key, b"x");
        let err = store.commit(batch).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            store.get(&posts, key).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    // A conflict names the caller's key, not the stored one.
    let mut again = Batch::new();
    again.put_if_absent(&posts, &post_key(OWNERS[0], 1), b"again");
    let err = store.commit(again).await.unwrap_err();
    assert_eq!(err.conflict().unwrap().key, post_key(OWNERS[0], 1));
}

/// A range within one owner: the owner's whole prefix, or bounds drawn from its keys.
fn owner_range() -> impl Strategy<Value = (usize, KeyRange)> {
    let bound = || {
        prop_oneof![
            (0u8..12).prop_map(|i| Some((true, i))),
            (0u8..12).prop_map(|i| Some((false, i))),
            Just(None),
        ]
    };
    (0..OWNERS.len(), bound(), bound()).prop_map(|(owner, start, end)| {
        let o = &OWNERS[owner][..];
        let whole = KeyRange::prefix(o);
        let pick = |b: Option<(bool, u8)>, default: Bound<Vec<u8>>| match b {
            Some((true, i)) => Bound::Included(post_key(o, i)),
            Some((false, i)) => Bound::Excluded(post_key(o, i)),
            None => default,
        };
        (
            owner,
            KeyRange::new(pick(start, whole.start.clone()), pick(end, whole.end)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A scan within one owner through the prefix-blinded store returns exactly what the same
    /// scan returns on an unencrypted store holding the same rows: same keys, same values, same
    /// order, in either direction and in pages of any size.
    #[test]
    fn prefix_blinded_scans_match_a_plain_store(
        rows in proptest::collection::btree_set((0..OWNERS.len(), 0u8..12), 0..30),
        (_, range) in owner_range(),
        reverse in any::<bool>(),
        limit in 1usize..6,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let world = World::new().await;
            let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
            let store = prefixed_store(&world, inner, "tenant-1");
            let plain = zt_storage::MemoryStore::new();
            let posts = ns("posts");
            let mut batch = Batch::new();
            for &(owner, i) in &rows {
                batch.put(&posts, &post_key(OWNERS[owner], i), &[i, owner as u8]);
            }
            if !batch.is_empty() {
                store.commit(batch.clone()).await.unwrap();
                plain.commit(batch).await.unwrap();
            }
            let options = ScanOptions::new().reverse(reverse).limit(limit);
            let got: Vec<_> = store
                .scan_stream(&posts, range.clone(), options)
                .try_collect()
                .await
                .unwrap();
            let want: Vec<_> = plain
                .scan_stream(&posts, range.clone(), options)
                .try_collect()
                .await
                .unwrap();
            let pairs = |v: Vec<zt_storage::Entry>| -> Vec<(Vec<u8>, Vec<u8>)> {
                v.into_iter().map(|e| (e.key, e.value)).collect()
            };
            assert_eq!(pairs(got), pairs(want), "{range:?}");
        });
    }
}

#[tokio::test]
async fn moving_rows_to_a_blinded_layout_keeps_what_opens_and_loses_nothing_readable() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let keyring = world.keyring(inner.clone());
    let (old, new) = (ns("posts.old"), ns("posts"));
    // One scope per owner: the key's first four bytes.
    let store = EncryptingStore::new(inner.clone(), keyring.clone(), "tenant-1")
        .with_scopes(Arc::new(|_, key| {
            let owner: String = key.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("owner:{owner}")
        }))
        .blind_prefix(new.clone(), 4);
    let mut batch = Batch::new();
    for i in 0u16..300 {
        let key = [&OWNERS[0][..], &i.to_be_bytes()].concat();
        batch.put(&old, &key, &i.to_be_bytes());
    }
    batch
        .put(&old, &post_key(OWNERS[1], 1), b"shredded")
        .put(&old, &post_key(OWNERS[2], 1), b"damaged")
        .put(&old, &post_key(OWNERS[2], 2), b"stale")
        .put(&old, b"own", b"too short for the new layout");
    store.commit(batch).await.unwrap();
    let mut newer = Batch::new();
    newer.put(&new, &post_key(OWNERS[2], 2), b"newer");
    store.commit(newer).await.unwrap();
    keyring
        .destroy_scope_key("tenant-1", "owner:6f776e32")
        .await
        .unwrap();
    let damaged = post_key(OWNERS[2], 1);
    let sealed = inner.get(&old, &damaged).await.unwrap().unwrap().value;
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut tamper = Batch::new();
    tamper.put(&old, &damaged, &flipped);
    inner.commit(tamper).await.unwrap();

    let report = store.move_rows(&old, &new).await.unwrap();
    assert_eq!(
        (
            report.moved,
            report.shredded,
            report.superseded,
            report.damaged
        ),
        (300, 1, 1, 2)
    );
    // Every row that opened reads from the new layout, in order; the newer copy won.
    let moved: Vec<_> = store
        .scan_stream(&new, KeyRange::prefix(OWNERS[0]), ScanOptions::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(moved.len(), 300);
    for (i, entry) in (0u16..).zip(&moved) {
        assert_eq!(entry.key, [&OWNERS[0][..], &i.to_be_bytes()].concat());
        assert_eq!(entry.value, i.to_be_bytes());
    }
    assert_eq!(
        store
            .get(&new, &post_key(OWNERS[2], 2))
            .await
            .unwrap()
            .unwrap()
            .value,
        b"newer"
    );
    // What did not open, or does not fit, is still where it was, byte for byte.
    let left = inner
        .scan(&old, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap();
    let left: Vec<_> = left
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&(damaged, flipped)));
    assert!(left.iter().any(|(k, _)| k == b"own"));
    // Running it again moves nothing more.
    let again = store.move_rows(&old, &new).await.unwrap();
    assert_eq!((again.moved, again.damaged), (0, 2));
}

#[tokio::test]
async fn resealing_puts_rows_written_under_a_shared_key_under_their_owners_key() {
    let world = World::new().await;
    let inner: Arc<dyn KvStore> = Arc::new(zt_storage::MemoryStore::new());
    let keyring = world.keyring(inner.clone());
    let posts = ns("posts");
    // An earlier layout: every row under the namespace's shared key.
    let shared = EncryptingStore::new(inner.clone(), keyring.clone(), "tenant-1")
        .blind_prefix(posts.clone(), 4);
    // Today's: one scope per owner (the key's first four bytes).
    let owned = EncryptingStore::new(inner.clone(), keyring.clone(), "tenant-1")
        .with_scopes(Arc::new(|_, key| {
            let owner: String = key.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("owner:{owner}")
        }))
        .blind_prefix(posts.clone(), 4);
    let mut old = Batch::new();
    for i in 0u8..150 {
        old.put(&posts, &post_key(OWNERS[0], i), &[i]);
    }
    old.put(&posts, &post_key(OWNERS[2], 1), b"damaged");
    shared.commit(old).await.unwrap();
    // Rows written under today's layout: one already right, one whose owner's key is gone.
    let mut new = Batch::new();
    new.put(&posts, &post_key(OWNERS[2], 2), b"today's").put(
        &posts,
        &post_key(OWNERS[1], 1),
        b"shredded",
    );
    owned.commit(new).await.unwrap();
    keyring
        .destroy_scope_key("tenant-1", "owner:6f776e32")
        .await
        .unwrap();
    let raw = posts.clone();
    let damaged = shared
        .stored_key_of(&posts, &post_key(OWNERS[2], 1))
        .await
        .unwrap();
    let mut flipped = inner.get(&raw, &damaged).await.unwrap().unwrap().value;
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut tamper = Batch::new();
    tamper.put(&raw, &damaged, &flipped);
    inner.commit(tamper).await.unwrap();
    let untouched = owned
        .stored_key_of(&posts, &post_key(OWNERS[2], 2))
        .await
        .unwrap();
    let before = inner.get(&raw, &untouched).await.unwrap().unwrap().version;

    let report = owned.reseal_rows(&posts).await.unwrap();
    assert_eq!(
        (report.resealed, report.shredded, report.damaged),
        (150, 1, 1)
    );
    // Every old row reads as it was, and now goes with its owner's key.
    for i in 0u8..150 {
        let row = owned.get(&posts, &post_key(OWNERS[0], i)).await.unwrap();
        assert_eq!(row.unwrap().value, [i]);
    }
    let untouched_after = inner.get(&raw, &untouched).await.unwrap().unwrap();
    assert_eq!(
        untouched_after.version, before,
        "a row already right is not rewritten"
    );
    assert!(
        owned
            .get(&posts, &post_key(OWNERS[1], 1))
            .await
            .unwrap()
            .is_none(),
        "the shredded row went"
    );
    assert_eq!(
        inner.get(&raw, &damaged).await.unwrap().unwrap().value,
        flipped,
        "the damaged row stays byte for byte"
    );
    // A second pass only reads.
    let again = owned.reseal_rows(&posts).await.unwrap();
    assert_eq!((again.resealed, again.shredded, again.damaged), (0, 0, 1));
    // Destroying the owner's key now shreds the rows written under the shared one.
    keyring
        .destroy_scope_key("tenant-1", "owner:6f776e31")
        .await
        .unwrap();
    let gone = owned
        .get(&posts, &post_key(OWNERS[0], 7))
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), zt_storage::ErrorKind::KeyDestroyed);
}
