//! Prometheus metrics (`/metrics`, text format 0.0.4), built on `prometheus-client`.
//!
//! Every label has a small, fixed set of values: result, error code, backend operation, HTTP
//! status. Secret paths, pod names, namespaces and SPC names are never labels; they are in the
//! mount's log line instead. The one exception is opt-out: the sync controller's last-success
//! gauge per synced SPC.
//!
//! [`Metrics`] is cheap to clone (an `Arc` inside) and has no global registry: the server owns
//! one and passes it to whoever records.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;

/// Prefix of every metric name.
pub(crate) const PREFIX: &str = "akeyless_csi_provider";

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of the mount duration (seconds): 10 ms to kubelet's 2-minute CSI timeout.
const MOUNT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Buckets of one backend call (seconds).
const BACKEND_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Non-numeric backend `status` values kept as they are; anything else becomes `other`.
pub(crate) const BACKEND_STATUSES: &[&str] = &[
    "ok",
    "connect_error",
    "tls_error",
    "timeout",
    "decode_error",
    "error",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabels {
    /// `ok` or `error`.
    result: &'static str,
    /// The public error code (`InvalidConfig`, …), `none` on success.
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Only on the sync controller's per-SPC gauge (opt-out with `--spc-metrics=false`): the number
/// of SPCs that ask for sync is small and chosen by the cluster's admins.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpcLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn mount_histogram() -> Histogram {
    Histogram::new(MOUNT_BUCKETS.iter().copied())
}

fn backend_histogram() -> Histogram {
    Histogram::new(BACKEND_BUCKETS.iter().copied())
}

struct Inner {
    registry: Registry,
    mount: MountMetrics,
    backend: BackendMetrics,
    auth_cache: AuthCacheMetrics,
    throttle: ThrottleMetrics,
    // Registered in every build, so /metrics has one shape; recorded only with `sync`.
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    sync: SyncMetrics,
}

/// Mounts answered and in progress.
struct MountMetrics {
    mounts: Family<MountLabels, Counter>,
    mount_duration: HistogramFamily<MountLabels>,
    inflight: Gauge,
}

impl MountMetrics {
    fn register(registry: &mut Registry) -> Self {
        let mounts = Family::<MountLabels, Counter>::default();
        registry.register(
            "mounts",
            "Mount calls answered, by result and error code",
            mounts.clone(),
        );
        let mount_duration: HistogramFamily<MountLabels> =
            Family::new_with_constructor(mount_histogram);
        registry.register(
            "mount_duration_seconds",
            "Duration of mount calls, by result and error code",
            mount_duration.clone(),
        );
        let inflight = Gauge::default();
        registry.register("inflight_mounts", "Mounts in progress", inflight.clone());
        MountMetrics {
            mounts,
            mount_duration,
            inflight,
        }
    }
}

/// Akeyless API calls.
struct BackendMetrics {
    requests: Family<BackendLabels, Counter>,
    duration: HistogramFamily<BackendLabels>,
}

impl BackendMetrics {
    fn register(registry: &mut Registry) -> Self {
        let requests = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_requests",
            "Akeyless API calls, by operation and HTTP status (or connect_error, timeout, …)",
            requests.clone(),
        );
        let duration: HistogramFamily<BackendLabels> =
            Family::new_with_constructor(backend_histogram);
        registry.register(
            "backend_request_duration_seconds",
            "Duration of Akeyless API calls, by operation and status",
            duration.clone(),
        );
        BackendMetrics { requests, duration }
    }
}

/// The Akeyless token cache.
struct AuthCacheMetrics {
    hits: Counter,
    misses: Counter,
    entries: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl AuthCacheMetrics {
    fn register(registry: &mut Registry) -> Self {
        let hits = Counter::default();
        registry.register(
            "auth_cache_hits",
            "Mounts that reused a cached Akeyless token",
            hits.clone(),
        );
        let misses = Counter::default();
        registry.register(
            "auth_cache_misses",
            "Mounts that had to authenticate to Akeyless",
            misses.clone(),
        );
        let entries = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "auth_cache_entries",
            "Akeyless tokens currently cached",
            entries.clone(),
        );
        AuthCacheMetrics {
            hits,
            misses,
            entries,
        }
    }
}

/// Retries and the gateways' shared backoff.
struct ThrottleMetrics {
    retries: Family<OperationLabels, Counter>,
    gateways_throttled: Gauge<i64, std::sync::atomic::AtomicI64>,
    gateway_backoff_waits: Counter,
}

impl ThrottleMetrics {
    fn register(registry: &mut Registry) -> Self {
        let retries = Family::<OperationLabels, Counter>::default();
        registry.register(
            "retries",
            "Akeyless API calls retried, by operation",
            retries.clone(),
        );
        // No gateway label: gateway URLs are chosen by tenants (unbounded cardinality). The
        // log names the gateway.
        let gateways_throttled = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "gateways_throttled",
            "Akeyless gateways backed off after a 429 or 503 (waiting out the shared backoff, or \
             for a probe to succeed)",
            gateways_throttled.clone(),
        );
        let gateway_backoff_waits = Counter::default();
        registry.register(
            "gateway_backoff_waits",
            "Akeyless calls that waited for their gateway's shared backoff instead of sending",
            gateway_backoff_waits.clone(),
        );
        ThrottleMetrics {
            retries,
            gateways_throttled,
            gateway_backoff_waits,
        }
    }
}

/// The sync controller's reconciles.
#[cfg_attr(not(feature = "sync"), allow(dead_code))]
struct SyncMetrics {
    reconciles: Family<ResultLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    last_success: Family<SpcLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl SyncMetrics {
    fn register(registry: &mut Registry) -> Self {
        let reconciles = Family::<ResultLabels, Counter>::default();
        for result in ["ok", "error"] {
            // Present from the start, so a rate() of errors is 0 rather than absent.
            let _ = reconciles.get_or_create(&ResultLabels { result });
        }
        registry.register(
            "sync_reconciles",
            "Secret sync reconciles of a SecretProviderClass, by result",
            reconciles.clone(),
        );
        let failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sync_failures",
            "Failed sync reconciles, by reason (the Event reason: InvalidSyncConfig, SecretNotOwned, \
             SecretManagedByDriver, TokenRequestFailed, KubernetesAPIError, or the mount error code)",
            failures.clone(),
        );
        let last_success = Family::<SpcLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "sync_last_success_timestamp_seconds",
            "Unix time of the last successful read of a synced SecretProviderClass (labels empty \
             with --spc-metrics=false: the latest of all)",
            last_success.clone(),
        );
        SyncMetrics {
            reconciles,
            failures,
            last_success,
        }
    }
}

/// `build_info`: always 1, the version a label.
fn register_build_info(registry: &mut Registry) {
    let build_info = Family::<BuildLabels, Gauge>::default();
    build_info
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    registry.register("build_info", "Always 1; the version is a label", build_info);
}

/// The provider's metrics. Clone it freely; all clones record into the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        // Registered family by family, in the order /metrics lists them.
        let mut registry = Registry::with_prefix(PREFIX);
        let mount = MountMetrics::register(&mut registry);
        let backend = BackendMetrics::register(&mut registry);
        let auth_cache = AuthCacheMetrics::register(&mut registry);
        let throttle = ThrottleMetrics::register(&mut registry);
        let sync = SyncMetrics::register(&mut registry);
        register_build_info(&mut registry);
        Metrics(Arc::new(Inner {
            registry,
            mount,
            backend,
            auth_cache,
            throttle,
            sync,
        }))
    }

    /// Marks a mount as in progress until the guard is dropped.
    pub(crate) fn mount_started(&self) -> InFlightMount {
        self.0.mount.inflight.inc();
        InFlightMount(self.clone())
    }

    /// Records a finished mount: `code` is `None` on success.
    pub(crate) fn mount_finished(&self, code: Option<ErrorCode>, duration: Duration) {
        let labels = match code {
            None => MountLabels {
                result: "ok",
                code: "none",
            },
            Some(c) => MountLabels {
                result: "error",
                code: c.as_str(),
            },
        };
        self.0.mount.mounts.get_or_create(&labels).inc();
        self.0
            .mount
            .mount_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Records one Akeyless API call. `op` is the endpoint without its slash (`auth`,
    /// `get-secret-value`, …). `status` is the HTTP status (`"200"`, `"429"`) when Akeyless
    /// answered, else one of [`BACKEND_STATUSES`]; anything else is recorded as `other`.
    pub(crate) fn backend_request(&self, op: &'static str, status: &str, duration: Duration) {
        let labels = BackendLabels {
            operation: op,
            status: status_label(status),
        };
        self.0.backend.requests.get_or_create(&labels).inc();
        self.0
            .backend
            .duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Records an auth-cache look-up.
    pub(crate) fn auth_cache(&self, hit: bool) {
        if hit {
            self.0.auth_cache.hits.inc();
        } else {
            self.0.auth_cache.misses.inc();
        }
    }

    /// Sets the number of cached Akeyless tokens.
    pub(crate) fn auth_cache_size(&self, entries: usize) {
        self.0
            .auth_cache
            .entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Records a retried Akeyless call (`op` as in [`Metrics::backend_request`]).
    pub fn retry(&self, op: &'static str) {
        self.0
            .throttle
            .retries
            .get_or_create(&OperationLabels { operation: op })
            .inc();
    }

    /// Sets the number of gateways backed off after a 429 or 503.
    pub(crate) fn gateways_throttled(&self, gateways: usize) {
        self.0
            .throttle
            .gateways_throttled
            .set(i64::try_from(gateways).unwrap_or(i64::MAX));
    }

    /// Records an Akeyless call that waited for its gateway's shared backoff.
    pub(crate) fn gateway_backoff_wait(&self) {
        self.0.throttle.gateway_backoff_waits.inc();
    }

    /// Records a sync-controller reconcile: `ok` (written or unchanged) or `error`.
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    pub(crate) fn sync_reconcile(&self, result: &'static str) {
        self.0
            .sync
            .reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Records a failed sync reconcile; `reason` is one of a fixed set.
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    pub(crate) fn sync_failure(&self, reason: &'static str) {
        self.0
            .sync
            .failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Records a successful read of a synced SPC at `when`: per SPC when `spc` is given, else
    /// in one unlabelled series.
    #[cfg_attr(not(feature = "sync"), allow(dead_code))]
    pub(crate) fn sync_success(&self, spc: Option<(&str, &str)>, when: std::time::SystemTime) {
        let (namespace, name) = spc.unwrap_or_default();
        let seconds = when
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.0
            .sync
            .last_success
            .get_or_create(&SpcLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
            .set(seconds);
    }

    /// The current number of mounts in progress.
    #[cfg(test)]
    pub(crate) fn inflight(&self) -> i64 {
        self.0.mount.inflight.get()
    }

    /// The metrics in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry);
        out
    }
}

/// Keeps the in-flight gauge raised while a mount runs.
pub(crate) struct InFlightMount(Metrics);

impl Drop for InFlightMount {
    fn drop(&mut self) {
        self.0.0.mount.inflight.dec();
    }
}

/// Bounds the `status` label: an HTTP status code, or one of [`BACKEND_STATUSES`], or `other`.
fn status_label(status: &str) -> String {
    let is_http = status.len() == 3
        && status.bytes().all(|b| b.is_ascii_digit())
        && (b'1'..=b'5').contains(status.as_bytes().first().unwrap_or(&0));
    if is_http || BACKEND_STATUSES.contains(&status) {
        status.to_string()
    } else {
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn records_mounts_by_result_and_code() {
        let m = Metrics::new();
        m.mount_finished(None, Duration::from_millis(30));
        m.mount_finished(Some(ErrorCode::NotFound), Duration::from_millis(5));
        m.mount_finished(Some(ErrorCode::NotFound), Duration::from_millis(5));
        let text = m.encode();
        assert_eq!(
            line(
                &text,
                "akeyless_csi_provider_mounts_total{result=\"ok\",code=\"none\"}"
            ),
            Some("akeyless_csi_provider_mounts_total{result=\"ok\",code=\"none\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "akeyless_csi_provider_mounts_total{result=\"error\",code=\"NotFound\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "akeyless_csi_provider_mount_duration_seconds_bucket{result=\"ok\",code=\"none\",le=\"0.05\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn inflight_guard_raises_and_lowers_the_gauge() {
        let m = Metrics::new();
        let a = m.mount_started();
        let b = m.mount_started();
        assert_eq!(m.inflight(), 2);
        drop(a);
        assert!(
            m.encode()
                .contains("akeyless_csi_provider_inflight_mounts 1\n")
        );
        drop(b);
        assert_eq!(m.inflight(), 0);
    }

    #[test]
    fn backend_status_label_is_bounded() {
        assert_eq!(status_label("200"), "200");
        assert_eq!(status_label("503"), "503");
        assert_eq!(status_label("timeout"), "timeout");
        assert_eq!(status_label("/prod/db/password"), "other");
        assert_eq!(status_label("999"), "other");
        assert_eq!(status_label("20"), "other");
        let m = Metrics::new();
        m.backend_request(
            "get-secret-value",
            "connection refused by 10.0.0.1",
            Duration::ZERO,
        );
        m.retry("auth");
        m.auth_cache(true);
        m.auth_cache(false);
        m.auth_cache(false);
        m.auth_cache_size(7);
        m.sync_reconcile("ok");
        let text = m.encode();
        for expected in [
            "akeyless_csi_provider_backend_requests_total{operation=\"get-secret-value\",status=\"other\"} 1",
            "akeyless_csi_provider_retries_total{operation=\"auth\"} 1",
            "akeyless_csi_provider_auth_cache_hits_total 1",
            "akeyless_csi_provider_auth_cache_misses_total 2",
            "akeyless_csi_provider_auth_cache_entries 7",
            "akeyless_csi_provider_sync_reconciles_total{result=\"ok\"} 1",
            "akeyless_csi_provider_build_info{version=\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("10.0.0.1"));
    }

    #[test]
    fn sync_failures_and_last_success() {
        let m = Metrics::new();
        m.sync_failure("SecretNotOwned");
        m.sync_failure("SecretNotOwned");
        m.sync_failure("AuthFailed");
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        m.sync_success(Some(("team-a", "app")), at);
        m.sync_success(None, at + Duration::from_secs(5));
        let text = m.encode();
        for expected in [
            "akeyless_csi_provider_sync_failures_total{reason=\"SecretNotOwned\"} 2",
            "akeyless_csi_provider_sync_failures_total{reason=\"AuthFailed\"} 1",
            "akeyless_csi_provider_sync_last_success_timestamp_seconds{namespace=\"team-a\",name=\"app\"} 1700000000",
            "akeyless_csi_provider_sync_last_success_timestamp_seconds{namespace=\"\",name=\"\"} 1700000005",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
