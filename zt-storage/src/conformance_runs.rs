//! The conformance suite against the backends of this crate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::conformance::{Harness, MemoryHarness};
use crate::{ErrorKind, KvStore, MemoryStore};

crate::conformance_tests!(memory, MemoryHarness::default());

/// Runs a base harness's store through `EncryptingStore`, with a keyring whose records live in a
/// reserved namespace of the same store and whose KMS outlives reopening.
pub(crate) struct EncryptedHarness<H: Harness> {
    base: H,
    kms: Arc<zt_crypto::InsecureFixedKms>,
}

impl<H: Harness> EncryptedHarness<H> {
    pub(crate) fn new(base: H) -> Self {
        EncryptedHarness {
            base,
            kms: Arc::new(zt_crypto::InsecureFixedKms::new()),
        }
    }
}

pub(crate) async fn encrypting_store(
    inner: Arc<dyn KvStore>,
    kms: Arc<dyn zt_crypto::Kms>,
) -> crate::EncryptingStore<Arc<dyn KvStore>> {
    let kms_key = zt_crypto::KeyId::new("tenants").expect("key id");
    if let Err(e) = kms.create_key(&kms_key).await {
        assert_eq!(e.kind(), zt_crypto::ErrorKind::InvalidInput, "{e}");
    }
    let records_ns = crate::Namespace::new("zt.keys").expect("namespace");
    let keyring = zt_crypto::Keyring::new(
        kms,
        Arc::new(crate::KvKeyRecords::new(inner.clone(), records_ns.clone())),
        kms_key,
        zt_crypto::KeyringConfig::default(),
    );
    crate::EncryptingStore::new(inner, Arc::new(keyring), "tenant-1").reserve_namespace(records_ns)
}

#[async_trait]
impl<H: Harness> Harness for EncryptedHarness<H> {
    async fn open(&self) -> Arc<dyn KvStore> {
        let inner = self.base.open().await;
        Arc::new(encrypting_store(inner, self.kms.clone()).await)
    }

    async fn twin(&self) -> crate::conformance::Twin {
        let rows: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let view = Arc::new(encrypting_store(Arc::clone(&rows), self.kms.clone()).await);
        crate::conformance::Twin { rows, view }
    }
}

crate::conformance_tests!(
    encrypted_memory,
    EncryptedHarness::new(MemoryHarness::default())
);

/// Runs a base harness's store through `PrefixedStore`, beside another tenant's prefixed view of
/// the same store that holds rows of its own in the same namespaces: the suite must never see them.
pub(crate) struct PrefixedHarness<H: Harness> {
    base: H,
}

#[async_trait]
impl<H: Harness> Harness for PrefixedHarness<H> {
    async fn open(&self) -> Arc<dyn KvStore> {
        let inner = self.base.open().await;
        let neighbour = crate::PrefixedStore::new(inner.clone(), "t:neighbour/").expect("prefix");
        // The neighbour's rows, in namespaces the suite uses, written once per open.
        // Every namespace the suite names today, and the keyring's.
        for name in [
            "a",
            "ab",
            "absent",
            "budget",
            "cas",
            "cas-absent",
            "checks",
            "closed",
            "counter",
            "del",
            "del-absent",
            "durable",
            "empty",
            "fail-a",
            "fail-b",
            "group",
            "invalid",
            "large",
            "limits",
            "many",
            "multi-1",
            "multi-2",
            "multi-3",
            "never",
            "order",
            "ow",
            "pages",
            "prefix",
            "present",
            "race",
            "range",
            "readset",
            "recreate",
            "reopen",
            "reverse",
            "rt",
            "typed",
            "zt.keys",
            "ex",
            "ex-longer",
            "e",
            "pair-left",
            "pair-right",
        ] {
            let ns = crate::Namespace::new(name).expect("namespace");
            let mut batch = crate::Batch::new();
            batch
                .put(&ns, b"", b"neighbour")
                .put(&ns, b"k", b"neighbour");
            // A reopen finds them already there; overwriting is fine.
            neighbour.commit(batch).await.expect("neighbour rows");
        }
        Arc::new(crate::PrefixedStore::new(inner, "t:tenant/").expect("prefix"))
    }

    async fn twin(&self) -> crate::conformance::Twin {
        let rows: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let view =
            Arc::new(crate::PrefixedStore::new(Arc::clone(&rows), "t:tenant/").expect("prefix"));
        crate::conformance::Twin { rows, view }
    }
}

crate::conformance_tests!(
    prefixed_memory,
    PrefixedHarness {
        base: MemoryHarness::default()
    }
);

/// Opens a sled store in a temporary directory that lives as long as the harness.
#[cfg(feature = "sled")]
pub(crate) struct SledHarness {
    dir: tempfile::TempDir,
}

#[cfg(feature = "sled")]
impl SledHarness {
    pub(crate) fn new() -> Self {
        SledHarness {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[cfg(feature = "sled")]
#[async_trait]
impl Harness for SledHarness {
    async fn open(&self) -> Arc<dyn KvStore> {
        let config = crate::SledConfig::new(self.dir.path()).cache_capacity(32 * 1024 * 1024);
        // The previous handle's last references may take a moment to let go of the file lock.
        for _ in 0..100 {
            match crate::SledStore::open(config.clone()).await {
                Ok(store) => return Arc::new(store),
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("opening sled: {e}"),
            }
        }
        panic!("the sled directory stayed locked");
    }
}

#[cfg(feature = "sled")]
crate::conformance_tests!(sled, SledHarness::new());

#[cfg(feature = "sled")]
crate::conformance_tests!(encrypted_sled, EncryptedHarness::new(SledHarness::new()));

/// Deliberately broken stores: the suite must catch each fault, which shows its cases can fail.
mod mutants {
    use std::future::Future;
    use std::pin::Pin;

    use super::*;
    use crate::conformance;
    use crate::{Batch, Entry, KeyRange, Namespace, ScanOptions, ScanPage, Version};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Fault {
        /// Commits ignore every precondition.
        IgnoresPreconditions,
        /// Reverse scans come back in ascending order.
        IgnoresReverse,
        /// Scans ignore the limit.
        IgnoresLimit,
        /// Every commit reports version 1.
        ConstantVersion,
        /// Reopening gives an empty store.
        ForgetsOnReopen,
        /// Values lose their last byte.
        TruncatesValues,
        /// An export leaves out a namespace's first row.
        ExportSkipsRows,
        /// An export reads namespace by namespace, letting commits in between.
        ExportTorn,
    }

    struct Mutant {
        inner: MemoryStore,
        fault: Fault,
    }

    #[async_trait]
    impl KvStore for Mutant {
        async fn get(&self, namespace: &Namespace, key: &[u8]) -> crate::Result<Option<Entry>> {
            let entry = self.inner.get(namespace, key).await?;
            Ok(match self.fault {
                Fault::TruncatesValues => entry.map(|mut e| {
                    e.value.pop();
                    e
                }),
                _ => entry,
            })
        }

        async fn scan(
            &self,
            namespace: &Namespace,
            range: &KeyRange,
            options: ScanOptions,
        ) -> crate::Result<ScanPage> {
            let options = match self.fault {
                Fault::IgnoresReverse => options.reverse(false),
                Fault::IgnoresLimit => options.limit(crate::MAX_SCAN_LIMIT),
                _ => options,
            };
            self.inner.scan(namespace, range, options).await
        }

        async fn commit(&self, batch: Batch) -> crate::Result<Version> {
            match self.fault {
                Fault::IgnoresPreconditions => {
                    let mut unchecked = Batch::new();
                    for write in batch.into_writes() {
                        match write {
                            crate::Write::Put {
                                namespace,
                                key,
                                value,
                            } => unchecked.put_owned(&namespace, key, value),
                            crate::Write::Delete { namespace, key } => {
                                unchecked.delete(&namespace, &key)
                            }
                        };
                    }
                    if unchecked.is_empty() {
                        return Ok(0);
                    }
                    self.inner.commit(unchecked).await
                }
                Fault::ConstantVersion => self.inner.commit(batch).await.map(|_| 1),
                _ => self.inner.commit(batch).await,
            }
        }

        async fn close(&self) -> crate::Result<()> {
            self.inner.close().await
        }

        async fn export(&self, sink: &mut dyn crate::ExportSink) -> crate::Result<u64> {
            match self.fault {
                Fault::ExportSkipsRows | Fault::ExportTorn => {
                    let mut rows = 0;
                    for namespace in self.inner.namespaces() {
                        let page = self
                            .inner
                            .scan(&namespace, &KeyRange::all(), ScanOptions::new())
                            .await?;
                        let skip = usize::from(self.fault == Fault::ExportSkipsRows);
                        for entry in page.entries.iter().skip(skip) {
                            sink.row(&namespace, &entry.key, &entry.value)?;
                            rows += 1;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    Ok(rows)
                }
                _ => self.inner.export(sink).await,
            }
        }
    }

    struct MutantHarness {
        data: MemoryStore,
        fault: Fault,
    }

    #[async_trait]
    impl Harness for MutantHarness {
        async fn open(&self) -> Arc<dyn KvStore> {
            Arc::new(Mutant {
                inner: self.data.clone(),
                fault: self.fault,
            })
        }

        async fn reopen(&self, store: Arc<dyn KvStore>) -> Arc<dyn KvStore> {
            store.close().await.expect("close");
            let data = match self.fault {
                Fault::ForgetsOnReopen => MemoryStore::new(),
                _ => self.data.clone(),
            };
            Arc::new(Mutant {
                inner: data,
                fault: self.fault,
            })
        }
    }

    type Case = for<'a> fn(&'a dyn Harness) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// Runs `case` against a store with `fault`; true when the case failed (panicked).
    async fn fails(fault: Fault, case: Case) -> bool {
        tokio::spawn(async move {
            let harness = MutantHarness {
                data: MemoryStore::new(),
                fault,
            };
            case(&harness).await;
        })
        .await
        .is_err()
    }

    macro_rules! case {
        ($name:ident) => {
            (
                stringify!($name),
                (|h| Box::pin(conformance::$name(h))) as Case,
            )
        };
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_catches_broken_stores() {
        let expectations: Vec<(Fault, Vec<(&str, Case)>)> = vec![
            (
                Fault::IgnoresPreconditions,
                vec![
                    case!(require_absent),
                    case!(require_version),
                    case!(require_version_of_absent_key),
                    case!(failed_precondition_writes_nothing),
                    case!(precondition_on_unwritten_key),
                    case!(check_only_batch),
                    case!(concurrent_conflicting_commits_one_winner),
                    case!(version_grows_across_delete),
                ],
            ),
            (
                Fault::IgnoresReverse,
                vec![
                    case!(scan_reverse),
                    case!(scan_range_bounds),
                    case!(scan_pages_reverse),
                ],
            ),
            (
                Fault::IgnoresLimit,
                vec![case!(scan_pages_forward), case!(scan_pages_reverse)],
            ),
            (
                Fault::ConstantVersion,
                vec![
                    case!(overwrite_grows_version),
                    case!(batch_across_namespaces_is_one_version),
                    case!(repeated_reopen),
                ],
            ),
            (
                Fault::ForgetsOnReopen,
                vec![
                    case!(durable_after_reopen),
                    case!(concurrent_commits_durable_after_reopen),
                    case!(repeated_reopen),
                ],
            ),
            (
                Fault::TruncatesValues,
                vec![case!(round_trip), case!(large_value), case!(typed_values)],
            ),
            (
                Fault::ExportSkipsRows,
                vec![case!(export_holds_every_row_once)],
            ),
            (
                Fault::ExportTorn,
                vec![case!(export_sees_each_commit_whole)],
            ),
        ];
        let mut missed = Vec::new();
        for (fault, cases) in expectations {
            for (name, case) in cases {
                if !fails(fault, case).await {
                    missed.push(format!("{name} passed against {fault:?}"));
                }
            }
        }
        assert!(missed.is_empty(), "the suite missed faults: {missed:#?}");
    }
}
