//! One reconcile of one SecretProviderClass: guards, a mount as its ServiceAccount (the same
//! pipeline the driver's mounts use), and server-side apply of the Secrets that changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use super::context::{Context, SpcState, SyncError};
use super::secret::{self, LABEL_MANAGED, Ownership};
use super::spc::{self, SecretProviderClass, SyncSettings};

/// Field manager of our server-side applies.
pub(crate) const FIELD_MANAGER: &str = "akeyless-csi-provider-sync";
/// First retry after a failure; doubles per failure up to the SPC's interval.
const BACKOFF_BASE: Duration = Duration::from_secs(5);

/// The controller's reconcile: never fails (failures are reported and retried with backoff
/// here, so the whole policy sits in one place).
pub(crate) async fn reconcile(
    spc: Arc<SecretProviderClass>,
    ctx: Arc<Context>,
) -> Result<Action, std::convert::Infallible> {
    let namespace = spc.metadata.namespace.clone().unwrap_or_default();
    let name = spc.metadata.name.clone().unwrap_or_default();
    let key = (namespace.clone(), name.clone());
    if spc.metadata.deletion_timestamp.is_some() {
        ctx.state().remove(&key);
        return Ok(Action::await_change());
    }
    let settings = match spc::sync_settings(&spc, ctx.options.min_interval) {
        None => {
            ctx.state().remove(&key);
            return Ok(Action::await_change());
        }
        Some(s) => s,
    };
    let started = Instant::now();
    let interval = settings
        .as_ref()
        .map_or(spc::DEFAULT_INTERVAL, |s| s.interval);
    let result = match settings {
        Ok(settings) => sync(&spc, &settings, &ctx).await,
        Err(e) => Err(SyncError::Invalid(e)),
    };
    Ok(match result {
        Ok(outcome) => on_success(&ctx, &spc, key, interval, outcome, started).await,
        Err(e) => on_failure(&ctx, &spc, key, interval, e).await,
    })
}

/// Records a sync that worked and schedules the next refresh.
async fn on_success(
    ctx: &Context,
    spc: &SecretProviderClass,
    key: (String, String),
    interval: Duration,
    outcome: Outcome,
    started: Instant,
) -> Action {
    let (namespace, name) = key.clone();
    ctx.metrics.sync_reconcile("ok");
    if outcome.fetched {
        let when = SystemTime::now();
        ctx.metrics.sync_success(
            ctx.options
                .spc_metrics
                .then_some((namespace.as_str(), name.as_str())),
            when,
        );
    }
    let (next, recovered) = {
        let mut state = ctx.state();
        let s = state.entry(key).or_default();
        let recovered = s.failures > 0;
        s.failures = 0;
        let next = s
            .last_sync
            .map(|t| interval.saturating_sub(t.elapsed()))
            .unwrap_or(interval);
        (next, recovered)
    };
    // Events for what changed: a write, or the end of a failure streak. An unchanged
    // refresh records nothing, so a quiet SPC doesn't flood its Events.
    if outcome.written.is_empty() && recovered {
        publish(
            ctx,
            spc,
            EventType::Normal,
            "SecretSynced",
            "sync works again; the Secrets are current".into(),
        )
        .await;
    }
    if !outcome.written.is_empty() {
        tracing::info!(namespace, spc = %name, secrets = ?outcome.written, elapsed_ms = started.elapsed().as_millis() as u64, "sync: Secrets written");
        publish(
            ctx,
            spc,
            EventType::Normal,
            "SecretSynced",
            format!("wrote Secret(s) {}", outcome.written.join(", ")),
        )
        .await;
    } else {
        tracing::debug!(namespace, spc = %name, fetched = outcome.fetched, "sync: Secrets current");
    }
    Action::requeue(jitter(next))
}

/// Records a failed sync (the last good Secrets stay) and schedules the retry.
async fn on_failure(
    ctx: &Context,
    spc: &SecretProviderClass,
    key: (String, String),
    interval: Duration,
    e: SyncError,
) -> Action {
    let (namespace, name) = key.clone();
    let failures = {
        let mut state = ctx.state();
        let s = state.entry(key).or_default();
        s.failures = s.failures.saturating_add(1);
        s.failures
    };
    ctx.metrics.sync_reconcile("error");
    ctx.metrics.sync_failure(e.reason());
    tracing::warn!(namespace, spc = %name, reason = e.reason(), error = %e, failures, "sync failed; the last good Secrets are kept");
    publish(ctx, spc, EventType::Warning, e.reason(), e.to_string()).await;
    if e.needs_spec_change() {
        return Action::await_change();
    }
    Action::requeue(jitter(backoff(failures, interval)))
}

/// Exponential backoff: 5 s, 10 s, 20 s, … never longer than the SPC's interval.
pub(crate) fn backoff(failures: u32, interval: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(interval.max(BACKOFF_BASE))
}

/// Up to +10%, so SPCs created together don't all refresh in the same second.
fn jitter(d: Duration) -> Duration {
    d.saturating_add(d.mul_f64(rand::random::<f64>() * 0.1))
}

struct Outcome {
    /// Akeyless was read this time.
    fetched: bool,
    /// Secrets created or updated.
    written: Vec<String>,
}

async fn sync(
    spc: &SecretProviderClass,
    settings: &SyncSettings,
    ctx: &Context,
) -> Result<Outcome, SyncError> {
    let namespace = spc.metadata.namespace.clone().unwrap_or_default();
    let name = spc.metadata.name.clone().unwrap_or_default();
    let uid = spc.metadata.uid.clone().unwrap_or_default();
    if !ctx.options.namespaces.is_empty() && !ctx.options.namespaces.contains(&namespace) {
        return Err(SyncError::NamespaceNotAllowed(namespace));
    }
    spc::validate_secret_objects(&spc.spec.secret_objects)?;

    // Guards first: no Akeyless call for an SPC we would refuse anyway.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = existing_secrets(&secrets, spc, &uid).await?;

    let remembered = ctx.state().get(&(namespace.clone(), name.clone())).cloned();
    let due = is_due(remembered.as_ref(), spc, &uid, settings, &existing);
    let mut written = Vec::new();
    if due {
        let desired = super::render::render(spc, settings, ctx, &namespace).await?;
        let owner = owner_reference(spc);
        for d in &desired {
            if existing
                .get(&d.name)
                .and_then(Option::as_ref)
                .is_some_and(|s| secret::is_current(s, d))
            {
                continue;
            }
            let object = secret::to_secret(d, &namespace, owner.clone());
            secrets
                .patch(
                    &d.name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(|source| SyncError::Write {
                    name: d.name.clone(),
                    source,
                })?;
            written.push(d.name.clone());
        }
        remove_undeclared(&secrets, spc, &uid).await?;
        let mut state = ctx.state();
        let s = state.entry((namespace, name)).or_default();
        s.uid = uid;
        s.generation = spc.metadata.generation;
        s.last_sync = Some(Instant::now());
        s.hashes = desired
            .iter()
            .map(|d| (d.name.clone(), d.hash.clone()))
            .collect();
    }
    Ok(Outcome {
        fetched: due,
        written,
    })
}

/// The Secrets the SPC declares, as they are now; an error when one isn't ours to write.
async fn existing_secrets(
    secrets: &Api<Secret>,
    spc: &SecretProviderClass,
    uid: &str,
) -> Result<BTreeMap<String, Option<Secret>>, SyncError> {
    let mut existing = BTreeMap::new();
    for object in &spc.spec.secret_objects {
        let secret_name = object.secret_name.trim().to_owned();
        let found = secrets
            .get_opt(&secret_name)
            .await
            .map_err(SyncError::Read)?;
        match secret::ownership(found.as_ref(), uid) {
            Ownership::ManagedByDriver => {
                return Err(SyncError::ManagedByDriver { name: secret_name });
            }
            Ownership::Foreign(why) => {
                return Err(SyncError::Foreign {
                    name: secret_name,
                    why,
                });
            }
            Ownership::Absent | Ownership::Ours => {}
        }
        existing.insert(secret_name, found);
    }
    Ok(existing)
}

/// Whether Akeyless must be read: a new or changed SPC, an elapsed interval, or a managed
/// Secret that changed since we wrote it.
fn is_due(
    remembered: Option<&SpcState>,
    spc: &SecretProviderClass,
    uid: &str,
    settings: &SyncSettings,
    existing: &BTreeMap<String, Option<Secret>>,
) -> bool {
    match remembered {
        None => true,
        Some(s) => {
            s.uid != uid
                || s.generation != spc.metadata.generation
                || s.last_sync.is_none_or(|t| t.elapsed() >= settings.interval)
                // A managed Secret was deleted or edited since we wrote it.
                || existing.iter().any(|(n, found)| match (found, s.hashes.get(n)) {
                    (Some(secret), Some(hash)) => secret::stored_hash(secret) != *hash,
                    _ => true,
                })
        }
    }
}

fn owner_reference(spc: &SecretProviderClass) -> OwnerReference {
    let ar = spc::api_resource();
    OwnerReference {
        api_version: SecretProviderClass::api_version(&ar).into_owned(),
        kind: SecretProviderClass::kind(&ar).into_owned(),
        name: spc.metadata.name.clone().unwrap_or_default(),
        uid: spc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Deletes Secrets we wrote for this SPC that its `secretObjects` no longer declare.
async fn remove_undeclared(
    secrets: &Api<Secret>,
    spc: &SecretProviderClass,
    uid: &str,
) -> Result<(), SyncError> {
    let list = secrets
        .list_metadata(&ListParams::default().labels(&format!("{LABEL_MANAGED}=true")))
        .await
        .map_err(SyncError::Read)?;
    for item in list.items {
        let name = item.metadata.name.clone().unwrap_or_default();
        let owned = item
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        let declared = spc
            .spec
            .secret_objects
            .iter()
            .any(|o| o.secret_name.trim() == name);
        if owned && !declared {
            match secrets.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(secret = %name, "sync: deleted a Secret the SPC no longer declares")
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => return Err(SyncError::Write { name, source }),
            }
        }
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    spc: &SecretProviderClass,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference = spc.object_ref(&spc::api_resource());
    let event = Event {
        type_,
        reason: reason.to_owned(),
        // The API server refuses notes over 1 kB.
        note: Some(truncate(note, 1000)),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "sync: cannot record an Event");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::spc::SpcError;

    #[test]
    fn only_spec_errors_wait_for_a_spec_change() {
        let e = |s: &str| SpcError(s.into());
        assert!(SyncError::Invalid(e("x")).needs_spec_change());
        assert!(SyncError::NamespaceNotAllowed("ns".into()).needs_spec_change());
        // Depends on the values read: retried with backoff.
        assert!(!SyncError::Shape(e("x")).needs_spec_change());
        assert_eq!(SyncError::Shape(e("x")).reason(), "InvalidSyncConfig");
    }

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let i = Duration::from_secs(300);
        let got: Vec<u64> = (1..=8).map(|n| backoff(n, i).as_secs()).collect();
        assert_eq!(got, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(u32::MAX, i), i);
        assert_eq!(backoff(3, Duration::from_secs(2)), BACKOFF_BASE);
    }

    #[test]
    fn jitter_adds_at_most_ten_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(100) && j <= Duration::from_secs(110));
        }
    }

    #[test]
    fn long_notes_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("é".repeat(600), 1000).len(), 1000);
        assert_eq!(truncate("ab".into(), 1000), "ab");
        assert_eq!(truncate("aé".into(), 2), "a");
    }
}
