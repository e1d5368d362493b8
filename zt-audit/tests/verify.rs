//! The verifier against tampering, truncation and rollback; pruning that keeps proofs and
//! checkpoints verifiable; and the stored tree checked against the independent `ct-merkle` crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::sync::Arc;

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use proptest::prelude::*;
use sha2::Sha256;
use zt_audit::checkpoint::{NoteSigner, NoteVerifier};
use zt_audit::log::AuditLog;
use zt_audit::merkle::{self, Hash, leaf_hash};
use zt_audit::verify::{
    CheckpointTracker, Problem, TrustedHead, Verdict, VerifyOptions, verify_log,
};
use zt_audit::{Error, entry};
use zt_core::{Actor, AuditEvent, AuditEventKind, Timestamp};
use zt_crypto::SigningKey;
use zt_storage::{Batch, KeyRange, KvStore, MemoryStore, Namespace, ScanOptions};

const ORIGIN: &str = "zt.test/audit";

fn event(i: u64) -> Vec<u8> {
    let kinds = [
        AuditEventKind::LoginSucceeded,
        AuditEventKind::LoginFailed,
        AuditEventKind::RoleChanged,
    ];
    entry::encode(
        &AuditEvent::new(
            kinds[(i % 3) as usize],
            Actor::System("test".into()),
            Timestamp::from_unix_millis(1_764_400_000_000 + i as i64),
        )
        .target(format!("user:{i}")),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Fixture {
    store: Arc<dyn KvStore>,
    ns: Namespace,
    log: AuditLog,
    signer: NoteSigner,
    key: NoteVerifier,
}

impl Fixture {
    fn new() -> Self {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let ns = Namespace::new("audit.security").unwrap();
        let signer = NoteSigner::new(ORIGIN, SigningKey::generate()).unwrap();
        let key = NoteVerifier::from_verifier_key(&signer.verifier_key()).unwrap();
        Fixture {
            log: AuditLog::new(store.clone(), ns.clone()),
            store,
            ns,
            signer,
            key,
        }
    }

    /// Appends `n` events, signing a checkpoint every `every` entries and at the end; returns
    /// the final checkpoint as a trusted head.
    async fn fill(&self, n: u64, every: u64) -> TrustedHead {
        for i in 0..n {
            self.log.append(event(i)).await.unwrap();
            if (i + 1) % every == 0 {
                self.log.checkpoint(&self.signer, ORIGIN).await.unwrap();
            }
        }
        let note = self.log.checkpoint(&self.signer, ORIGIN).await.unwrap();
        TrustedHead::from(&self.key.verify(&note).unwrap())
    }

    async fn verify(&self, trusted: Option<TrustedHead>) -> Verdict {
        let options = VerifyOptions {
            key: Some(self.key.clone()),
            trusted,
            through: None,
            threads: 0,
        };
        verify_log(&*self.store, &self.ns, &options, &mut |_, _| {})
            .await
            .unwrap()
    }

    /// Every record under `prefix`, over as many pages as it takes (concurrent appends can cut
    /// a log into more chunks than one page holds).
    async fn records(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        use futures_util::TryStreamExt as _;
        use zt_storage::KvStoreExt as _;
        let entries: Vec<zt_storage::Entry> = self
            .store
            .scan_stream(&self.ns, KeyRange::prefix(prefix), ScanOptions::new())
            .try_collect()
            .await
            .unwrap();
        entries.into_iter().map(|e| (e.key, e.value)).collect()
    }

    /// The (recorded hash, entry) items of every chunk, in order (the documented chunk format).
    async fn items(&self) -> Vec<(Hash, Vec<u8>)> {
        let mut items = Vec::new();
        for (_, value) in self.records(b"b").await {
            assert_eq!(value[0], 1, "chunk format 1");
            let mut rest = &value[1..];
            while !rest.is_empty() {
                let leaf: Hash = rest[..32].try_into().unwrap();
                let len = u32::from_be_bytes(rest[32..36].try_into().unwrap()) as usize;
                items.push((leaf, rest[36..36 + len].to_vec()));
                rest = &rest[36 + len..];
            }
        }
        items
    }

    async fn replace(&self, prefix: &[u8], records: Vec<(Vec<u8>, Vec<u8>)>) {
        let mut batch = Batch::new();
        for (key, _) in self.records(prefix).await {
            if !records.iter().any(|(k, _)| *k == key) {
                batch.delete(&self.ns, &key);
            }
        }
        for (key, value) in records {
            batch.put_owned(&self.ns, key, value);
        }
        if !batch.is_empty() {
            self.store.commit(batch).await.unwrap();
        }
    }

    /// Rewrites the chunks (three items each) from `first`.
    async fn write_items(&self, first: u64, items: &[(Hash, Vec<u8>)]) {
        let mut records = Vec::new();
        for (n, group) in items.chunks(3).enumerate() {
            let mut key = b"b".to_vec();
            key.extend_from_slice(&(first + 3 * n as u64).to_be_bytes());
            let mut value = vec![1u8];
            for (leaf, entry) in group {
                value.extend_from_slice(leaf);
                value.extend_from_slice(&(entry.len() as u32).to_be_bytes());
                value.extend_from_slice(entry);
            }
            records.push((key, value));
        }
        self.replace(b"b", records).await;
    }

    /// Rewrites the stored subtree roots and the head to match `leaves` (an unpruned log).
    async fn write_tree(&self, leaves: &[Hash]) {
        let n = leaves.len();
        let mut nodes = Vec::new();
        for level in zt_audit::layout::NODE_LEVEL..64 {
            let width = 1usize << level;
            if width > n {
                break;
            }
            for i in 0..n / width {
                let mut key = vec![b'n', level];
                key.extend_from_slice(&(i as u64).to_be_bytes());
                let root = merkle::root(&leaves[i * width..(i + 1) * width], width as u64);
                nodes.push((key, root.to_vec()));
            }
        }
        self.replace(b"n", nodes).await;
        let mut head = (n as u64).to_be_bytes().to_vec();
        let mut start = 0usize;
        for bit in (0..64).rev() {
            if n >> bit & 1 == 1 {
                let end = start + (1 << bit);
                head.extend_from_slice(&merkle::root(&leaves[start..end], (end - start) as u64));
                start = end;
            }
        }
        self.replace(b"h", vec![(b"h".to_vec(), head)]).await;
    }
}

fn finding(verdict: Verdict) -> zt_audit::verify::Finding {
    match verdict {
        Verdict::Invalid(finding) => finding,
        Verdict::Valid(report) => panic!("tampering went unnoticed: {report:?}"),
    }
}

#[tokio::test]
async fn an_untouched_log_verifies_with_its_checkpoints() {
    let f = Fixture::new();
    let trusted = f.fill(53, 10).await;
    match f.verify(Some(trusted)).await {
        Verdict::Valid(report) => {
            assert_eq!(report.size, 53);
            assert_eq!(report.root, trusted.root);
            assert_eq!(report.checkpoints, 6);
            assert_eq!(report.first, 0);
        }
        Verdict::Invalid(finding) => panic!("{finding}"),
    }
    // A range: the first 20 entries against the checkpoint at 20.
    let options = VerifyOptions {
        key: Some(f.key.clone()),
        trusted: None,
        through: Some(20),
        threads: 2,
    };
    let mut seen = 0;
    let verdict = verify_log(&*f.store, &f.ns, &options, &mut |done, total| {
        assert_eq!(total, 20);
        seen = done;
    })
    .await
    .unwrap();
    let root = f.log.root_at(20).await.unwrap();
    assert!(
        matches!(verdict, Verdict::Valid(ref r) if r.size == 20 && r.root == root),
        "{verdict:?}"
    );
    assert_eq!(seen, 20);
}

/// Entries are checked on several threads once a batch is large: the verdict is the same as on
/// one thread, down to the index named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checking_on_several_threads_finds_what_one_thread_finds() {
    let f = Fixture::new();
    let mut tasks = Vec::new();
    for i in 0..1500 {
        let log = f.log.clone();
        tasks.push(tokio::spawn(
            async move { log.append(event(i)).await.unwrap() },
        ));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let run = |threads| {
        let options = VerifyOptions {
            threads,
            ..VerifyOptions::default()
        };
        let (store, ns) = (f.store.clone(), f.ns.clone());
        async move {
            verify_log(&*store, &ns, &options, &mut |_, _| {})
                .await
                .unwrap()
        }
    };
    // Chunks hold at most 256 entries and never cross a multiple of 256.
    let chunks = f.records(b"b").await;
    let starts: Vec<u64> = chunks
        .iter()
        .map(|(key, _)| u64::from_be_bytes(key[1..9].try_into().unwrap()))
        .collect();
    assert!(starts.len() >= 6, "{starts:?}");
    for (start, next) in starts.iter().zip(starts.iter().skip(1).chain([&1500])) {
        assert!(
            next - start <= 256 && (start / 256 == (next - 1) / 256),
            "{start}..{next}"
        );
    }
    let one = run(1).await;
    assert!(
        matches!(one, Verdict::Valid(ref r) if r.size == 1500),
        "{one:?}"
    );
    assert_eq!(run(3).await, one);
    let mut items = f.items().await;
    assert!(items.len() == 1500);
    let last = items[1234].1.len() - 1;
    items[1234].1[last] ^= 1;
    f.write_items(0, &items).await;
    let one = run(1).await;
    assert_eq!(finding(one.clone()).index, Some(1234));
    assert_eq!(run(3).await, one);
}

#[tokio::test]
async fn truncation_and_rollback_against_a_held_checkpoint_are_found() {
    // Truncation: the last entries go, and the head is rewritten to match.
    let f = Fixture::new();
    let trusted = f.fill(40, 100).await;
    let items = f.items().await;
    f.write_items(0, &items[..33]).await;
    let leaves: Vec<Hash> = items[..33].iter().map(|(l, _)| *l).collect();
    f.write_tree(&leaves).await;
    let found = finding(f.verify(Some(trusted)).await);
    assert!(
        matches!(
            found.problem,
            Problem::Truncated {
                trusted: 40,
                have: 33
            }
        ),
        "{found}"
    );
    assert_eq!(
        found.index,
        Some(0),
        "no checkpoint below 40 vouches for a prefix"
    );

    // Rollback: cut back to 30 and regrown with other entries to 45.
    let f = Fixture::new();
    let held = f.fill(40, 10).await;
    let mut items = f.items().await;
    items.truncate(30);
    items.extend((1000..1015).map(|i| (leaf_hash(&event(i)), event(i))));
    f.write_items(0, &items).await;
    f.write_tree(&items.iter().map(|(l, _)| *l).collect::<Vec<_>>())
        .await;
    let found = finding(f.verify(Some(held)).await);
    assert_eq!(found.index, Some(30), "{found}");
    assert!(
        matches!(found.problem, Problem::CheckpointMismatch { size: 40 }),
        "{found}"
    );
}

#[test]
fn the_tracker_refuses_a_rollback_and_an_inconsistent_checkpoint() {
    rt().block_on(async {
        let f = Fixture::new();
        f.fill(10, 100).await;
        let mut tracker = CheckpointTracker::new(f.key.clone(), ORIGIN);
        let old = f.log.checkpoint(&f.signer, ORIGIN).await.unwrap();
        tracker.accept(&old, None).unwrap();
        for i in 10..20 {
            f.log.append(event(i)).await.unwrap();
        }
        let new = f.log.checkpoint(&f.signer, ORIGIN).await.unwrap();
        // Going back is a rollback.
        let mut ahead = tracker.clone();
        ahead
            .accept(&new, Some(&f.log.consistency_proof(10, 20).await.unwrap()))
            .unwrap();
        assert!(matches!(
            ahead.accept(&old, None),
            Err(Error::Rollback {
                held: 20,
                offered: 10
            })
        ));
        // A fork: another log with the same key and a different history.
        let fork = Fixture::new();
        for i in 100..120 {
            fork.log.append(event(i)).await.unwrap();
        }
        let forked = fork.log.checkpoint(&f.signer, ORIGIN).await.unwrap();
        let proof = fork.log.consistency_proof(10, 20).await.unwrap();
        assert!(matches!(
            tracker.accept(&forked, Some(&proof)),
            Err(Error::Proof(_))
        ));
        assert!(
            tracker.accept(&new, None).is_err(),
            "a larger checkpoint needs a proof"
        );
        assert_eq!(
            tracker.held().unwrap().size,
            10,
            "the held checkpoint stays"
        );
        // Another log's checkpoint, or one signed by another key, is refused.
        let stranger = NoteSigner::new(ORIGIN, SigningKey::generate()).unwrap();
        let foreign = f.log.checkpoint(&stranger, ORIGIN).await.unwrap();
        assert!(tracker.accept(&foreign, None).is_err());
        let other = f.log.checkpoint(&f.signer, "zt.test/other").await.unwrap();
        assert!(matches!(
            tracker.accept(&other, None),
            Err(Error::InvalidInput(_))
        ));
    });
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: usize, bit: u8 },
    Drop { at: usize },
    Swap { a: usize, b: usize },
    Insert { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(at, byte, bit)| Mutation::Flip {
            at,
            byte,
            bit
        }),
        any::<usize>().prop_map(|at| Mutation::Drop { at }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap { a, b }),
        any::<usize>().prop_map(|at| Mutation::Insert { at }),
    ]
}

/// Applies `mutation` to the items; returns the first index it changed. With `rehash`, every
/// recorded hash is recomputed, as an attacker covering their tracks would.
fn apply(items: &mut Vec<(Hash, Vec<u8>)>, mutation: &Mutation, rehash: bool) -> usize {
    let n = items.len();
    let first = match *mutation {
        Mutation::Flip { at, byte, bit } => {
            let at = at % n;
            let entry = &mut items[at].1;
            let byte = byte % entry.len();
            entry[byte] ^= 1 << bit;
            at
        }
        Mutation::Drop { at } => {
            let at = at % n;
            items.remove(at);
            at
        }
        Mutation::Swap { a, b } => {
            let a = a % n;
            let b = if b % n == a { (a + 1) % n } else { b % n };
            items.swap(a, b);
            a.min(b)
        }
        Mutation::Insert { at } => {
            // Within the history: an entry added after the last one is an append, which anyone
            // with write access to the store can make and no log can tell from a real one.
            let at = at % n;
            let extra = event(5000 + at as u64);
            items.insert(at, (leaf_hash(&extra), extra));
            at
        }
    };
    if rehash {
        for (leaf, entry) in items.iter_mut() {
            *leaf = leaf_hash(entry);
        }
    }
    first
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Flips, drops, swaps and insertions of entries are all found, whether or not the attacker
    /// also rewrote every hash, and the index named is never past the first change. A flip that
    /// leaves the recorded hash is placed exactly.
    #[test]
    fn every_mutation_is_found(
        n in 2u64..160,
        every in prop_oneof![Just(5u64), Just(8), Just(50), Just(1000)],
        mutation in mutation(),
        rehash in any::<bool>(),
    ) {
        rt().block_on(async {
            let f = Fixture::new();
            let trusted = f.fill(n, every).await;
            let mut items = f.items().await;
            let first = apply(&mut items, &mutation, rehash) as u64;
            f.write_items(0, &items).await;
            if rehash {
                f.write_tree(&items.iter().map(|(l, _)| *l).collect::<Vec<_>>()).await;
            }
            let found = finding(f.verify(Some(trusted)).await);
            let index = found.index.expect("an entry is named");
            prop_assert!(index <= first, "{found} for a change at {first}");
            if matches!(mutation, Mutation::Flip { .. }) && !rehash {
                prop_assert_eq!(index, first, "{}", found);
            }
            Ok(())
        })?;
    }

    /// Any single bit flipped in any stored record is found.
    #[test]
    fn every_flipped_record_bit_is_found(
        n in 1u64..160,
        pick in any::<usize>(),
        byte in any::<usize>(),
        bit in 0u8..8,
    ) {
        rt().block_on(async {
            let f = Fixture::new();
            let trusted = f.fill(n, 7).await;
            let records = f.records(b"").await;
            let (key, mut value) = records[pick % records.len()].clone();
            let at = byte % value.len();
            value[at] ^= 1 << bit;
            let mut batch = Batch::new();
            batch.put_owned(&f.ns, key.clone(), value);
            f.store.commit(batch).await.unwrap();
            let verdict = f.verify(Some(trusted)).await;
            prop_assert!(
                matches!(verdict, Verdict::Invalid(_)),
                "flip in record {:?} byte {} went unnoticed", String::from_utf8_lossy(&key[..1]), at
            );
            Ok(())
        })?;
    }

    /// The stored tree matches `ct-merkle` (roots, inclusion and consistency proofs, byte for
    /// byte), before and after pruning; after pruning the suffix verifies, and every signed
    /// checkpoint from before is proven consistent with the new head.
    #[test]
    fn the_stored_tree_matches_ct_merkle_before_and_after_pruning(
        n in 1u64..160,
        every in 1u64..40,
        prune in any::<u64>(),
        grow in 0u64..20,
    ) {
        rt().block_on(async {
            let f = Fixture::new();
            f.fill(n, every).await;
            let mut oracle = MemoryBackedTree::<Sha256, Vec<u8>>::new();
            for i in 0..n {
                oracle.push(event(i));
            }
            check_against(&f.log, &oracle, 0).await;
            let before: Vec<(u64, Hash)> = signed(&f).await;

            let below = prune % (n + 1);
            f.log.prune(below).await.unwrap();
            prop_assert_eq!(f.log.pruned_below().await.unwrap(), below);
            for i in n..n + grow {
                f.log.append(event(i)).await.unwrap();
                oracle.push(event(i));
            }
            check_against(&f.log, &oracle, below).await;
            // Nothing below the prune point is readable, or stored.
            if below > 0 {
                prop_assert!(f.log.entry(below - 1).await.unwrap().is_none());
                let pruned = matches!(f.log.inclusion_proof(below - 1, n).await, Err(Error::Pruned { .. }));
                prop_assert!(pruned, "an inclusion proof of a pruned entry");
                let chunks = f.records(b"b").await;
                let low = u64::from_be_bytes(chunks.first().map_or([0xff; 8], |c| c.0[1..9].try_into().unwrap()));
                prop_assert!(low >= below, "a chunk below the prune point survived");
            }
            prop_assert_eq!(f.log.entry(below).await.unwrap(), (below < n + grow).then(|| event(below)));
            // Every checkpoint signed before is consistent with the new head.
            let (size, root) = f.log.tree_head().await.unwrap();
            for (old, old_root) in before {
                let chain = f.log.consistency_proof(old, size).await.unwrap();
                chain.verify(old, &old_root, size, &root).unwrap();
                // And the verifier, holding that old checkpoint, accepts the pruned log.
                let verdict = f.verify(Some(TrustedHead { size: old, root: old_root })).await;
                prop_assert!(matches!(verdict, Verdict::Valid(ref r) if r.first == below && r.size == size), "{:?}", verdict);
            }
            Ok(())
        })?;
    }
}

/// Roots and proofs of `log` against the oracle, for the indices and sizes from `from` on.
async fn check_against(log: &AuditLog, oracle: &MemoryBackedTree<Sha256, Vec<u8>>, from: u64) {
    let oracle_root: Hash = (*oracle.root().as_bytes()).into();
    let size = oracle.len();
    assert_eq!(log.tree_head().await.unwrap(), (size, oracle_root));
    for i in from..size {
        let proof = log.inclusion_proof(i, size).await.unwrap();
        let theirs = oracle.prove_inclusion(i as usize);
        assert_eq!(proof.concat(), theirs.as_bytes(), "inclusion {i}/{size}");
    }
    for m in from.max(1)..=size {
        let chain = log.consistency_proof(m, size).await.unwrap();
        assert_eq!(chain.links.len(), 1);
        let theirs = oracle.prove_consistency((size - m) as usize);
        assert_eq!(
            chain.links[0].proof.concat(),
            theirs.as_bytes(),
            "consistency {m}->{size}"
        );
    }
}

/// The (size, root) of every stored signed checkpoint.
async fn signed(f: &Fixture) -> Vec<(u64, Hash)> {
    let mut out = Vec::new();
    for (_, note) in f.records(b"c").await {
        let checkpoint = f.key.verify(std::str::from_utf8(&note).unwrap()).unwrap();
        if checkpoint.size > 0 {
            out.push((checkpoint.size, checkpoint.root));
        }
    }
    out
}

#[tokio::test]
async fn a_legal_hold_refuses_pruning_until_released() {
    let f = Fixture::new();
    f.fill(30, 10).await;
    f.log.set_legal_hold(true).await.unwrap();
    assert!(f.log.legal_hold().await.unwrap());
    assert!(matches!(f.log.prune(20).await, Err(Error::LegalHold)));
    assert_eq!(f.log.pruned_below().await.unwrap(), 0);
    assert!(f.log.entry(0).await.unwrap().is_some());
    f.log.set_legal_hold(false).await.unwrap();
    f.log.prune(20).await.unwrap();
    assert_eq!(f.log.pruned_below().await.unwrap(), 20);
    // Pruning is monotone; pruning beyond the tree is refused.
    f.log.prune(5).await.unwrap();
    assert_eq!(f.log.pruned_below().await.unwrap(), 20);
    assert!(matches!(
        f.log.prune(31).await,
        Err(Error::OutOfRange {
            asked: 31,
            size: 30
        })
    ));
    assert!(matches!(f.verify(None).await, Verdict::Valid(r) if r.first == 20 && r.size == 30));
    // A size that was never signed has no proof once pruned.
    assert!(matches!(
        f.log.consistency_proof(15, 30).await,
        Err(Error::Pruned { below: 20 })
    ));
    // Pruning twice chains the bridges.
    for i in 30..50 {
        f.log.append(event(i)).await.unwrap();
    }
    f.log.checkpoint(&f.signer, ORIGIN).await.unwrap();
    f.log.prune(45).await.unwrap();
    let chain = f.log.consistency_proof(10, 50).await.unwrap();
    assert_eq!(
        chain.links.iter().map(|l| l.to).collect::<Vec<_>>(),
        vec![20, 45, 50]
    );
    let (size, root) = f.log.tree_head().await.unwrap();
    let old = signed(&f).await[0];
    chain.verify(old.0, &old.1, size, &root).unwrap();
    let mut wrong = old.1;
    wrong[0] ^= 1;
    assert!(chain.verify(old.0, &wrong, size, &root).is_err());
}
