//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several sync replicas exactly
//! one writes Secrets.
//!
//! The usual client-go scheme: the holder renews `renewTime` every `retry_period`; a candidate
//! takes the Lease over only after it has seen the same record unchanged for a whole
//! `lease_duration` (measured on its own clock, so clock skew between nodes doesn't matter);
//! writes use the Lease's resourceVersion, so two candidates can't both win. A leader that
//! can't renew for `renew_deadline` (shorter than `lease_duration`) stops working before anyone
//! else may start.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

#[derive(Clone, Debug)]
pub(crate) struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What identifies one renewal of a Lease: (holder, renewTime).
type LeaseRecord = (Option<String>, Option<String>);

pub(crate) struct LeaderElection {
    api: Api<Lease>,
    config: ElectionConfig,
    /// The last Lease record seen and when we first saw it.
    observed: Option<(LeaseRecord, Instant)>,
}

impl LeaderElection {
    pub fn new(client: kube::Client, config: ElectionConfig) -> Self {
        LeaderElection {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// Returns once this replica holds the Lease.
    pub(crate) async fn acquire(&mut self) {
        loop {
            let round = self.config.renew_deadline;
            match tokio::time::timeout(round, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => return,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, lease = %self.config.name, "leader election: cannot read or write the Lease")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "leader election: the API server did not answer in time")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Keeps renewing; returns when leadership is lost (renewal failed for `renew_deadline`, or
    /// someone else holds the Lease).
    pub(crate) async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            // A renewal that hangs must not outlive the renew deadline: past it, another
            // replica may take the Lease while this one still believes it leads.
            let left = self
                .config
                .renew_deadline
                .saturating_sub(last_renewal.elapsed());
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renewal = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.config.name, "leader election: another replica holds the Lease");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, lease = %self.config.name, "leader election: renewing the Lease failed");
                }
                Err(_) => {}
            }
            if last_renewal.elapsed() >= self.config.renew_deadline {
                tracing::warn!(lease = %self.config.name, "leader election: could not renew within the deadline");
                return;
            }
        }
    }

    /// Gives the Lease up at shutdown so a standby takes over at once instead of after
    /// `lease_duration`.
    pub(crate) async fn release(&mut self) {
        let deadline = self.config.renew_deadline;
        if tokio::time::timeout(deadline, self.release_now())
            .await
            .is_err()
        {
            tracing::warn!(lease = %self.config.name, "leader election: releasing the Lease timed out");
        }
    }

    async fn release_now(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.config.name, "leader election: released the Lease")
            }
            Err(e) => tracing::warn!(error = %e, "leader election: releasing the Lease failed"),
        }
    }

    /// One round: take or renew the Lease when allowed. `Ok(true)` when we hold it afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let seen_since = match &self.observed {
            Some((r, since)) if *r == record => *since,
            _ => Instant::now(),
        };
        self.observed = Some((record, seen_since));
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.config.lease_duration);
        if holder.is_some() && !ours && seen_since.elapsed() < duration {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let mut new = self.spec(
            now,
            if ours {
                transitions
            } else {
                transitions.saturating_add(1)
            },
        );
        if ours {
            new.acquire_time = spec.acquire_time;
        }
        lease.spec = Some(new);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !ours {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "leader election: acquired the Lease");
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }
}
