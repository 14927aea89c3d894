//! The webhook process's Prometheus metrics (its own registry: the mount metrics don't apply).
//! Labels have small fixed value sets; no SPC name or namespace is a label.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rustls::sign::CertifiedKey;

use crate::telemetry::metrics::{CONTENT_TYPE, PREFIX};

/// Buckets of one review (seconds): checks take microseconds to milliseconds.
const REVIEW_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily = Family<ResultLabels, Histogram, fn() -> Histogram>;

fn review_histogram() -> Histogram {
    Histogram::new(REVIEW_BUCKETS.iter().copied())
}

struct Inner {
    registry: Registry,
    reviews: Family<ResultLabels, Counter>,
    duration: HistogramFamily,
    bundle_updates: Family<ResultLabels, Counter>,
    expiry: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub(crate) struct WebhookMetrics(Arc<Inner>);

impl std::fmt::Debug for WebhookMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookMetrics")
    }
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let reviews = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_reviews",
            "AdmissionReviews answered, by result (allowed, warned, denied, skipped, bad_request, error)",
            reviews.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(review_histogram);
        registry.register(
            "webhook_review_duration_seconds",
            "Time to answer one AdmissionReview, from the request's body to the answer, by result",
            duration.clone(),
        );
        let bundle_updates = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_ca_bundle_updates",
            "Patches of the ValidatingWebhookConfiguration's caBundle, by result (ok, conflict, error)",
            bundle_updates.clone(),
        );
        let expiry = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "webhook_certificate_expiry_timestamp_seconds",
            "When the serving certificate expires (Unix time)",
            expiry.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "Version of the running binary", build);
        WebhookMetrics(Arc::new(Inner {
            registry,
            reviews,
            duration,
            bundle_updates,
            expiry,
        }))
    }

    pub fn review(&self, result: &'static str, took: Duration) {
        let labels = ResultLabels { result };
        self.0.reviews.get_or_create(&labels).inc();
        self.0
            .duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub(crate) fn ca_bundle_update(&self, result: &'static str) {
        self.0
            .bundle_updates
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Records the expiry of the certificate now served.
    pub(crate) fn serving_certificate(&self, key: &CertifiedKey) {
        if let Some(t) = key.cert.first().and_then(super::tls::not_after) {
            #[allow(clippy::cast_precision_loss)] // seconds since 1970 fit an f64 exactly
            self.0.expiry.set(t as f64);
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }

    /// `/metrics`.
    pub(crate) fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                        metrics.encode(),
                    )
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_and_updates_are_counted() {
        let m = WebhookMetrics::new();
        m.review("denied", Duration::from_micros(300));
        m.review("denied", Duration::from_micros(300));
        m.ca_bundle_update("ok");
        let text = m.encode();
        assert!(
            text.contains("akeyless_csi_provider_webhook_reviews_total{result=\"denied\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "akeyless_csi_provider_webhook_review_duration_seconds_bucket{le=\"0.0005\",result=\"denied\"} 2"
        ) || text.contains(
            "akeyless_csi_provider_webhook_review_duration_seconds_bucket{result=\"denied\",le=\"0.0005\"} 2"
        ), "{text}");
        assert!(
            text.contains("akeyless_csi_provider_webhook_ca_bundle_updates_total{result=\"ok\"} 1")
        );
        assert!(text.contains("akeyless_csi_provider_build_info{version="));
    }
}
