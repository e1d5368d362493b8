// The `audit_records` fuzz check, shared by the fuzz target and zt-audit's corpus replay.

/// Builds a log from arbitrary stored records and reads it every way: the verifier, proofs,
/// entries, pruning and a further append may fail, but never panic. The input is a sequence of
/// `selector (u8) ‖ length (u8) ‖ value`; the selector picks the record's key.
fn check(data: &[u8]) {
    use std::sync::Arc;
    use zt_storage::{Batch, KvStore, MemoryStore, Namespace};

    const KEYS: [&[u8]; 10] = [
        b"h",
        b"p",
        b"l",
        b"b\0\0\0\0\0\0\0\0",
        b"b\0\0\0\0\0\0\0\x01",
        b"b\0\0\0\0\0\0\0\x10",
        b"n\x04\0\0\0\0\0\0\0\0",
        b"c\0\0\0\0\0\0\0\x01",
        b"q\0\0\0\0\0\0\0\x01",
        b"n\x05\0\0\0\0\0\0\0\0",
    ];
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let Ok(ns) = Namespace::new("audit/fuzz") else {
            return;
        };
        let mut batch = Batch::new();
        let mut rest = data;
        while let [selector, len, tail @ ..] = rest {
            let len = usize::from(*len).min(tail.len());
            let key = KEYS[usize::from(*selector) % KEYS.len()];
            batch.put(&ns, key, &tail[..len]);
            rest = &tail[len..];
        }
        if batch.validate().is_err() || store.commit(batch).await.is_err() {
            return;
        }
        let options = zt_audit::verify::VerifyOptions {
            trusted: Some(zt_audit::verify::TrustedHead {
                size: 3,
                root: [0; 32],
            }),
            threads: 1,
            ..Default::default()
        };
        let _ = zt_audit::verify::verify_log(&*store, &ns, &options, &mut |_, _| {}).await;
        let _ = zt_audit::verify::verify_log(&*store, &ns, &Default::default(), &mut |_, _| {})
            .await;
        let log = zt_audit::log::AuditLog::new(store, ns);
        let _ = log.tree_head().await;
        for (a, b) in [(0, 1), (1, 2), (0, 17), (3, 40), (1, 1)] {
            let _ = log.inclusion_proof(a, b).await;
            let _ = log.consistency_proof(a, b).await;
            let _ = log.entries(a, b).await;
            let _ = log.root_at(b).await;
        }
        let _ = log.entry(0).await;
        let _ = log.latest_checkpoint().await;
        let _ = log.prune(1).await;
        let _ = log.append(b"more".to_vec()).await;
    });
}
