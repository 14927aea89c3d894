//! Keeps the `caBundle` of the webhook's ValidatingWebhookConfiguration trusting the CA this
//! process generated, and renews that CA before it expires.
//!
//! Least privilege: the process reads, watches and patches exactly one object, by name (the
//! chart's ClusterRole lists it in `resourceNames`). Each replica adds its own CA and keeps the
//! others' (a replica's key lives only in its memory): certificates already in the bundle stay
//! unless they expired or don't parse, and the bundle holds at most [`MAX_BUNDLE_CERTS`],
//! dropping the longest-held first. A replica whose CA was dropped adds it again. Patches carry
//! the `resourceVersion` read, so two replicas never overwrite each other's additions.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use futures_util::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::Readiness;
use super::metrics::WebhookMetrics;
use super::tls::{self, Generated, ServingCert};

/// Most certificates kept in a caBundle (replicas, plus CAs of replaced pods until they expire
/// or are pushed out).
pub(crate) const MAX_BUNDLE_CERTS: usize = 10;
/// The field manager of our patches.
pub(crate) const FIELD_MANAGER: &str = "akeyless-csi-provider-webhook";
/// How long a renewed CA must have been in the bundle before its certificate is served: the
/// API server reloads webhook configurations within about a second.
const PROPAGATION: Duration = Duration::from_secs(10);
/// Wait after a failed read or patch.
const RETRY: Duration = Duration::from_secs(2);

/// The bundle that trusts every CA in `ours` and keeps the others'. `None` when `existing`
/// already is that bundle. `now` is Unix seconds.
pub(crate) fn merged(
    existing: &[u8],
    ours: &[CertificateDer<'static>],
    now: i64,
) -> Option<Vec<u8>> {
    let mut blocks = 0usize;
    let mut kept: Vec<CertificateDer<'static>> = Vec::new();
    for item in CertificateDer::pem_slice_iter(existing) {
        blocks = blocks.saturating_add(1);
        let Ok(cert) = item else { continue };
        let live = tls::not_after(&cert).is_some_and(|t| t > now);
        if live && !kept.contains(&cert) {
            kept.push(cert);
        }
    }
    let clean = kept.len() == blocks && pem_block_count(existing) == blocks;
    let missing: Vec<&CertificateDer<'static>> =
        ours.iter().filter(|c| !kept.contains(c)).collect();
    if clean && missing.is_empty() && kept.len() <= MAX_BUNDLE_CERTS {
        return None;
    }
    kept.extend(missing.into_iter().cloned());
    // Drop the longest-held certificates that aren't ours.
    while kept.len() > MAX_BUNDLE_CERTS {
        match kept.iter().position(|c| !ours.contains(c)) {
            Some(i) => {
                kept.remove(i);
            }
            None => break,
        }
    }
    Some(
        kept.iter()
            .flat_map(|c| crate::certs::pem_encode("CERTIFICATE", c.as_ref()).into_bytes())
            .collect(),
    )
}

/// PEM blocks of any label: text that isn't a certificate must be rewritten away.
fn pem_block_count(text: &[u8]) -> usize {
    String::from_utf8_lossy(text).matches("-----BEGIN ").count()
}

/// What [`Keeper::ensure`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ensured {
    /// Every webhook's caBundle already trusted our CAs.
    Current,
    /// We patched the bundles.
    Updated,
    /// The ValidatingWebhookConfiguration doesn't exist (yet).
    Missing,
    /// It exists but lists no webhooks.
    NoWebhooks,
}

/// The one ValidatingWebhookConfiguration whose caBundle we keep.
pub(crate) struct Keeper {
    api: Api<ValidatingWebhookConfiguration>,
    name: String,
}

impl Keeper {
    pub fn new(client: kube::Client, name: String) -> Self {
        Keeper {
            api: Api::all(client),
            name,
        }
    }

    /// Reads the configuration and, when a webhook's caBundle lacks one of `ours`, patches it
    /// (with the `resourceVersion` read as a precondition: a concurrent change fails with 409).
    pub(crate) async fn ensure(
        &self,
        ours: &[CertificateDer<'static>],
    ) -> Result<Ensured, kube::Error> {
        let Some(config) = self.api.get_opt(&self.name).await? else {
            return Ok(Ensured::Missing);
        };
        let webhooks = config.webhooks.unwrap_or_default();
        if webhooks.is_empty() {
            return Ok(Ensured::NoWebhooks);
        }
        let now = unix_now();
        let mut patches = Vec::new();
        for webhook in &webhooks {
            let existing = webhook
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| b.0.as_slice())
                .unwrap_or_default();
            if let Some(bundle) = merged(existing, ours, now) {
                patches.push(serde_json::json!({
                    "name": webhook.name,
                    "clientConfig": {
                        "caBundle": base64::engine::general_purpose::STANDARD.encode(bundle)
                    }
                }));
            }
        }
        if patches.is_empty() {
            return Ok(Ensured::Current);
        }
        // A strategic merge patch: `webhooks` merges by name, so only caBundle changes.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": config.metadata.resource_version},
            "webhooks": patches,
        });
        self.api
            .patch(
                &self.name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                },
                &Patch::Strategic(patch),
            )
            .await?;
        Ok(Ensured::Updated)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A renewed CA and certificate waiting to be served until the bundle trusts the CA.
struct Pending {
    generated: Generated,
    trusted_since: Option<Instant>,
}

/// Runs forever: keeps the bundle current on every change of the configuration (a watch) and
/// every `resync`, renews the generated certificate at two-thirds of its life, and reports
/// readiness (ready once the bundle trusts the CA being served).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn keep_current(
    keeper: Keeper,
    client: kube::Client,
    serving: Arc<ServingCert>,
    mut current: Generated,
    names: Vec<String>,
    validity: Duration,
    resync: Duration,
    readiness: Arc<Readiness>,
    metrics: WebhookMetrics,
) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let mut changes = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", keeper.name)),
    )
    .default_backoff()
    .boxed();
    let mut pending: Option<Pending> = None;
    let mut last_state = String::new();
    loop {
        renew_if_due(&mut pending, &current, &names, validity);
        let mut ours = vec![current.ca.clone()];
        if let Some(p) = &pending {
            ours.push(p.generated.ca.clone());
        }
        let mut delay = resync;
        let state = match keeper.ensure(&ours).await {
            Ok(outcome @ (Ensured::Current | Ensured::Updated)) => {
                if outcome == Ensured::Updated {
                    metrics.ca_bundle_update("ok");
                    tracing::info!(config = %keeper.name, "caBundle updated with this replica's CA");
                }
                readiness.set(true, "caBundle trusts this replica's certificate");
                if serve_when_trusted(&mut pending, &mut current, &serving, &metrics) {
                    delay = delay.min(PROPAGATION);
                }
                "current".to_string()
            }
            Ok(Ensured::Missing) => {
                readiness.set(
                    false,
                    &format!("ValidatingWebhookConfiguration {} not found", keeper.name),
                );
                "missing".to_string()
            }
            Ok(Ensured::NoWebhooks) => {
                readiness.set(
                    false,
                    &format!(
                        "ValidatingWebhookConfiguration {} has no webhooks",
                        keeper.name
                    ),
                );
                "no webhooks".to_string()
            }
            Err(e) => {
                let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409);
                metrics.ca_bundle_update(if conflict { "conflict" } else { "error" });
                delay = RETRY;
                if conflict {
                    // Another replica changed it meanwhile: read again.
                    "conflict".to_string()
                } else {
                    tracing::warn!(config = %keeper.name, error = %e, "cannot read or patch the caBundle");
                    format!("error: {e}")
                }
            }
        };
        if state != last_state {
            if state == "missing" || state == "no webhooks" {
                tracing::warn!(config = %keeper.name, state = %state,
                    "waiting for the ValidatingWebhookConfiguration: the API server can't trust this webhook until its caBundle is set");
            }
            last_state = state;
        }
        tokio::select! {
            _ = changes.next() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Starts a renewal at two-thirds of the served certificate's life, unless one is pending.
fn renew_if_due(
    pending: &mut Option<Pending>,
    current: &Generated,
    names: &[String],
    validity: Duration,
) {
    if pending.is_none() && SystemTime::now() >= current.renew_at {
        match tls::generate(names, validity) {
            Ok(generated) => {
                tracing::info!(
                    "renewing the self-signed certificate: adding the new CA to the caBundle first"
                );
                *pending = Some(Pending {
                    generated,
                    trusted_since: None,
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot renew the self-signed certificate"),
        }
    }
}

/// With the bundle trusting both CAs: serves the pending certificate once that has lasted
/// [`PROPAGATION`]. `true` while a pending certificate still waits.
fn serve_when_trusted(
    pending: &mut Option<Pending>,
    current: &mut Generated,
    serving: &ServingCert,
    metrics: &WebhookMetrics,
) -> bool {
    if let Some(p) = pending {
        let since = *p.trusted_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= PROPAGATION {
            if let Some(p) = pending.take() {
                serving.set(p.generated.key.clone());
                metrics.serving_certificate(&p.generated.key);
                *current = p.generated;
                tracing::info!("serving the renewed self-signed certificate");
            }
        } else {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `bundle` trusts `ca`.
    fn trusts(bundle: &[u8], ca: &CertificateDer<'_>) -> bool {
        CertificateDer::pem_slice_iter(bundle).any(|c| c.is_ok_and(|c| c.as_ref() == ca.as_ref()))
    }

    fn ca(days: i64) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(400);
        params.not_after = now + time::Duration::days(days);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn pem(certs: &[&CertificateDer<'static>]) -> Vec<u8> {
        certs
            .iter()
            .flat_map(|c| crate::certs::pem_encode("CERTIFICATE", c.as_ref()).into_bytes())
            .collect()
    }

    fn certs(bundle: &[u8]) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(bundle)
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn our_ca_is_added_and_others_kept() {
        let (mine, theirs) = (ca(30), ca(30));
        let now = unix_now();
        let bundle = merged(b"", std::slice::from_ref(&mine), now).unwrap();
        assert_eq!(certs(&bundle), vec![mine.clone()]);
        assert!(trusts(&bundle, &mine));
        assert_eq!(merged(&bundle, std::slice::from_ref(&mine), now), None);

        let both = merged(&pem(&[&theirs]), std::slice::from_ref(&mine), now).unwrap();
        assert_eq!(certs(&both), vec![theirs.clone(), mine.clone()]);
        // Two replicas don't fight over the order.
        assert_eq!(merged(&both, std::slice::from_ref(&theirs), now), None);
        assert_eq!(merged(&both, std::slice::from_ref(&mine), now), None);
    }

    #[test]
    fn expired_garbage_and_duplicates_are_dropped() {
        let (mine, old, live) = (ca(30), ca(-1), ca(30));
        let mut existing = pem(&[&old, &live, &live]);
        existing
            .extend_from_slice(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let bundle = merged(&existing, std::slice::from_ref(&mine), unix_now()).unwrap();
        assert_eq!(certs(&bundle), vec![live.clone(), mine.clone()]);
        // Even when ours is there already, a dirty bundle is cleaned.
        let dirty = pem(&[&old, &mine]);
        let clean = merged(&dirty, std::slice::from_ref(&mine), unix_now()).unwrap();
        assert_eq!(certs(&clean), vec![mine]);
        assert!(!trusts(b"not pem", &live));
    }

    #[test]
    fn the_bundle_is_bounded_and_keeps_ours() {
        let others: Vec<_> = (0..MAX_BUNDLE_CERTS).map(|_| ca(30)).collect();
        let full = pem(&others.iter().collect::<Vec<_>>());
        assert_eq!(merged(&full, &[], unix_now()), None);
        let (mine, next) = (ca(30), ca(30));
        let bundle = merged(&full, &[mine.clone(), next.clone()], unix_now()).unwrap();
        let got = certs(&bundle);
        assert_eq!(got.len(), MAX_BUNDLE_CERTS);
        // The two longest-held went; ours are at the end.
        assert_eq!(got[..MAX_BUNDLE_CERTS - 2], others[2..]);
        assert_eq!(got[MAX_BUNDLE_CERTS - 2..], [mine, next]);
    }
}
