//! `EncryptingStore` against what an attacker with the disk could try, and against shredding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]
#![cfg(feature = "sled")]

use std::path::Path;
use std::sync::Arc;

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
