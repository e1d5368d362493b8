//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4), kept by hand with atomics:
//! a few counters and one histogram do not need a metrics framework.
//!
//! - `zt_http_requests_total{method,route,status}` and
//!   `zt_http_request_duration_seconds{route}` (histogram), labelled by the matched route
//!   template (`/api/v1/channels/{channel}`), never by the raw path, so ids do not become labels;
//! - `zt_realtime_connections` (gauge);
//! - `zt_http_connections` (gauge) and `zt_http_connections_refused_total` (closed at once, over
//!   a limit of [`crate::connections`]);
//! - `zt_audit_appends_total`, `zt_audit_append_errors_total`;
//! - `zt_kms_calls_total`, `zt_kms_errors_total`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use zt_core::{AuditEvent, AuditReceipt, AuditSink};
use zt_crypto::{DataKey, EncryptionContext, KeyId, KeyRef, KeyVersion, Kms, WrappedKey};

/// The upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Counts of KMS calls, shared between the counting KMS and the metrics.
#[derive(Debug, Default)]
pub struct KmsStats {
    calls: AtomicU64,
    errors: AtomicU64,
}

impl KmsStats {
    /// The calls made and how many failed.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    audit_appends: AtomicU64,
    audit_errors: AtomicU64,
    /// Open realtime connections (the counter the realtime handler keeps).
    pub realtime: Arc<AtomicUsize>,
    /// KMS calls.
    pub kms: Arc<KmsStats>,
    /// Open HTTP connections, kept by the accept loop.
    pub connections: Arc<crate::connections::OpenConnections>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Metrics reading `realtime` and `kms`.
    pub fn new(realtime: Arc<AtomicUsize>, kms: Arc<KmsStats>) -> Self {
        Metrics {
            realtime,
            kms,
            ..Metrics::default()
        }
    }

    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_owned())
            .or_default()
            .observe(seconds);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP zt_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE zt_http_requests_total counter\n");
        for ((method, route, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "zt_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP zt_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE zt_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "zt_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "zt_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "zt_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "zt_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let simple = [
            (
                "zt_http_connections",
                "gauge",
                "Open HTTP connections (WebSockets included).",
                self.connections.open() as u64,
            ),
            (
                "zt_http_connections_refused_total",
                "counter",
                "Connections closed at once for being over a limit.",
                self.connections.refused.load(Ordering::Relaxed) as u64,
            ),
            (
                "zt_realtime_connections",
                "gauge",
                "Open realtime connections.",
                self.realtime.load(Ordering::Relaxed) as u64,
            ),
            (
                "zt_audit_appends_total",
                "counter",
                "Audit events recorded.",
                self.audit_appends.load(Ordering::Relaxed),
            ),
            (
                "zt_audit_append_errors_total",
                "counter",
                "Audit events that could not be recorded.",
                self.audit_errors.load(Ordering::Relaxed),
            ),
            (
                "zt_kms_calls_total",
                "counter",
                "Calls to the KMS.",
                self.kms.calls.load(Ordering::Relaxed),
            ),
            (
                "zt_kms_errors_total",
                "counter",
                "KMS calls that failed.",
                self.kms.errors.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// Middleware counting requests by matched route (add it with `route_layer`).
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// An audit sink that counts what it forwards.
pub struct CountingSink {
    inner: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
}

impl CountingSink {
    /// Counts into `metrics` what goes to `inner`.
    pub fn new(inner: Arc<dyn AuditSink>, metrics: Arc<Metrics>) -> Self {
        CountingSink { inner, metrics }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl AuditSink for CountingSink {
    async fn append(&self, event: AuditEvent) -> zt_core::Result<AuditReceipt> {
        let result = self.inner.append(event).await;
        let counter = if result.is_ok() {
            &self.metrics.audit_appends
        } else {
            &self.metrics.audit_errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }
}

/// A KMS that counts its calls and failures.
pub struct CountingKms<K> {
    inner: K,
    stats: Arc<KmsStats>,
}

impl<K> CountingKms<K> {
    /// Counts into `stats` the calls to `inner`.
    pub fn new(inner: K, stats: Arc<KmsStats>) -> Self {
        CountingKms { inner, stats }
    }

    fn count<T>(&self, result: zt_crypto::Result<T>) -> zt_crypto::Result<T> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<K: Kms> Kms for CountingKms<K> {
    async fn create_key(&self, key_id: &KeyId) -> zt_crypto::Result<KeyRef> {
        self.count(self.inner.create_key(key_id).await)
    }
    async fn key_versions(&self, key_id: &KeyId) -> zt_crypto::Result<Vec<KeyVersion>> {
        self.count(self.inner.key_versions(key_id).await)
    }
    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<WrappedKey> {
        self.count(self.inner.wrap(key_id, key, context).await)
    }
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<DataKey> {
        self.count(self.inner.unwrap(wrapped, context).await)
    }
    async fn rotate(&self, key_id: &KeyId) -> zt_crypto::Result<u32> {
        self.count(self.inner.rotate(key_id).await)
    }
    async fn retire(&self, key_id: &KeyId, version: u32) -> zt_crypto::Result<()> {
        self.count(self.inner.retire(key_id, version).await)
    }
    async fn destroy(&self, key_id: &KeyId) -> zt_crypto::Result<()> {
        self.count(self.inner.destroy(key_id).await)
    }
    async fn generate_data_key(
        &self,
        key_id: &KeyId,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<(DataKey, WrappedKey)> {
        self.count(self.inner.generate_data_key(key_id, context).await)
    }
    async fn rewrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> zt_crypto::Result<WrappedKey> {
        self.count(self.inner.rewrap(wrapped, context).await)
    }
    async fn recovery_kit(
        &self,
        recipients: &[zt_crypto::archive::ArchiveRecipient],
        signer: &zt_crypto::SigningKey,
        created: u64,
    ) -> zt_crypto::Result<Option<Vec<u8>>> {
        self.count(self.inner.recovery_kit(recipients, signer, created).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_counting_kms_forwards_every_method_and_counts_each() {
        let stats = Arc::new(KmsStats::default());
        let wrap = |kms: Arc<dyn Kms>| -> Arc<dyn Kms> {
            Arc::new(CountingKms::new(kms, Arc::clone(&stats)))
        };
        zt_crypto::conformance::wrapper_forwards_every_method(&wrap).await;
        assert_eq!(stats.calls.load(Ordering::Relaxed), 10);
        assert_eq!(stats.errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_exposition_has_every_family_and_cumulative_buckets() {
        let metrics = Metrics::new(Arc::new(AtomicUsize::new(3)), Arc::default());
        metrics.request("GET", "/api/v1/channels/{channel}", 200, 0.003);
        metrics.request("GET", "/api/v1/channels/{channel}", 404, 0.2);
        let text = metrics.render();
        assert!(text.contains(
            "zt_http_requests_total{method=\"GET\",route=\"/api/v1/channels/{channel}\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "zt_http_request_duration_seconds_bucket{route=\"/api/v1/channels/{channel}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "zt_http_request_duration_seconds_bucket{route=\"/api/v1/channels/{channel}\",le=\"0.25\"} 2"
        ));
        assert!(text.contains("zt_realtime_connections 3"));
        for family in [
            "zt_audit_appends_total",
            "zt_kms_calls_total",
            "zt_kms_errors_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} counter")),
                "{family}"
            );
        }
    }
}
