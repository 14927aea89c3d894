//! One backoff per gateway. When a gateway answers 429 or 503, every call to it waits out one
//! shared backoff (its `Retry-After`, capped, or exponential), instead of each mount retrying on
//! its own schedule. New calls to it wait too, without sending. Once the backoff has passed, a
//! few calls ([`PROBES`]) go ahead; the first that gets an answer other than 429/503 opens the
//! gateway for everyone, and one more 429/503 starts the next, longer backoff. A gateway's state
//! never delays calls to another gateway.
//!
//! Gateway URLs are chosen by tenants, so the map is bounded (least recently used out first):
//! a flood of new URLs only forgets the coldest gateways' backoffs.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::cache::BoundedMap;
use crate::telemetry::Metrics;

/// Longest wait honoured from a gateway's `Retry-After` (a tenant's gateway chooses it).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Shortest shared backoff, even when `Retry-After` says 0.
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff without `Retry-After`.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Calls that may probe a gateway once its backoff has passed, before one of them succeeds.
pub(crate) const PROBES: u32 = 2;
/// Gateways whose state is kept.
pub(crate) const MAX_GATEWAYS: usize = 1024;

/// The `Retry-After` header value in seconds (an HTTP date is ignored: backoff applies),
/// parsed with checked arithmetic and capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = value
        .bytes()
        .try_fold(0u64, |acc, b| {
            acc.checked_mul(10)?
                .checked_add(u64::from(b.checked_sub(b'0')?))
        })
        // More digits than a u64 holds: as long as can be.
        .unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[derive(Debug, Default)]
struct State {
    /// Set while the gateway is throttled: no call before this instant; after it, only probes
    /// until one succeeds.
    until: Option<Instant>,
    /// Throttled answers in a row (to probes, or to the call that started the backoff).
    failures: u32,
    /// Probes in flight.
    probes: u32,
    /// The status of the last throttled answer (429 or 503).
    status: Option<u16>,
}

struct Gate {
    state: Mutex<State>,
    /// Woken when a probe ends (the gateway opened, or another backoff began, or a probe slot
    /// is free).
    changed: Notify,
    /// Gateways currently throttled, across the map (for the gauge).
    throttled: Arc<AtomicUsize>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below leaves a consistent state, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // An evicted gateway that was still throttled no longer counts.
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if state.until.is_some() {
            let _ = self
                .throttled
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
}

/// The shared state of every gateway the process has called.
pub(crate) struct GatewayGates {
    gates: BoundedMap<String, Arc<Gate>>,
    throttled: Arc<AtomicUsize>,
}

impl Default for GatewayGates {
    fn default() -> Self {
        GatewayGates::new(MAX_GATEWAYS)
    }
}

impl std::fmt::Debug for GatewayGates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayGates")
            .field("gateways", &self.gates.len())
            .field("throttled", &self.throttled())
            .finish()
    }
}

/// Why a call may not go to a gateway now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The gateway is throttled and the caller would not wait.
    Throttled,
    /// The gateway stays throttled past the caller's deadline (or the deadline passed while
    /// waiting).
    PastDeadline,
}

/// How a call to a gateway ended, for its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 429 or 503 (the status), with the `Retry-After` if any.
    Throttled(u16, Option<Duration>),
    /// Any other answer: the gateway is serving.
    Answered,
    /// No answer (connection failure, timeout): says nothing about throttling.
    NoAnswer,
}

impl GatewayGates {
    pub fn new(max_gateways: usize) -> Self {
        GatewayGates {
            gates: BoundedMap::new(max_gateways),
            throttled: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Gateways currently throttled (backing off, or waiting for a probe to succeed).
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }

    fn gate(&self, gateway: &str) -> Arc<Gate> {
        self.gates.get_or_insert_with(&gateway.to_string(), || {
            Arc::new(Gate {
                state: Mutex::new(State::default()),
                changed: Notify::new(),
                throttled: self.throttled.clone(),
            })
        })
    }

    /// The status (429 or 503) that throttled `gateway`, while it is throttled.
    pub(crate) fn last_status(&self, gateway: &str) -> Option<u16> {
        let gate = self.gates.get(&gateway.to_string())?;
        let state = gate.lock();
        state.until.and(state.status)
    }

    /// Lets one call go to `gateway`: at once when it is not throttled; otherwise (when `wait`)
    /// after its shared backoff, as one of its few probes or once a probe has opened it. Fails
    /// without waiting when the backoff outlasts `deadline`. `metrics` counts calls that waited.
    pub(crate) async fn admit(
        &self,
        gateway: &str,
        deadline: Option<Instant>,
        wait: bool,
        metrics: &Metrics,
    ) -> Result<Ticket, Closed> {
        let gate = self.gate(gateway);
        let mut counted = false;
        loop {
            let mut changed = pin!(gate.changed.notified());
            changed.as_mut().enable();
            let now = Instant::now();
            let backoff_until = {
                let mut state = gate.lock();
                match state.until {
                    None => {
                        return Ok(Ticket {
                            gate: Arc::clone(&gate),
                            probe: false,
                            finished: false,
                        });
                    }
                    Some(until) if until <= now && state.probes < PROBES => {
                        state.probes = state.probes.saturating_add(1);
                        return Ok(Ticket {
                            gate: Arc::clone(&gate),
                            probe: true,
                            finished: false,
                        });
                    }
                    Some(until) => (until > now).then_some(until),
                }
            };
            if !wait {
                return Err(Closed::Throttled);
            }
            if deadline.is_some_and(|d| backoff_until.unwrap_or(now) >= d) {
                return Err(Closed::PastDeadline);
            }
            if !counted {
                counted = true;
                metrics.gateway_backoff_wait();
            }
            // Until the backoff ends (then probe) or a probe ends, within the deadline.
            let wake = match (backoff_until, deadline) {
                (Some(u), Some(d)) => Some(u.min(d)),
                (u, d) => u.or(d),
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => changed.await,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Closed::PastDeadline);
            }
        }
    }

    /// Records `outcome` of a call that did not go through [`admit`](Self::admit)'s ticket
    /// (tests), as a call sent while the gateway was open.
    #[cfg(test)]
    fn record(&self, gateway: &str, outcome: Outcome, metrics: &Metrics) {
        let ticket = Ticket {
            gate: self.gate(gateway),
            probe: false,
            finished: false,
        };
        ticket.finish(outcome, metrics);
    }
}

/// Permission for one call; [`finish`](Ticket::finish) it with the outcome. Dropped unfinished
/// (the call was cancelled), it counts as no answer.
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    probe: bool,
    finished: bool,
}

impl Ticket {
    #[cfg(test)]
    pub(crate) fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn finish(mut self, outcome: Outcome, metrics: &Metrics) {
        self.finished = true;
        self.settle(outcome, Some(metrics));
    }

    fn settle(&mut self, outcome: Outcome, metrics: Option<&Metrics>) {
        let mut state = self.gate.lock();
        let mut wake = self.probe;
        if self.probe {
            state.probes = state.probes.saturating_sub(1);
        }
        match outcome {
            Outcome::Throttled(status, retry_after) => {
                state.status = Some(status);
                // Answers to calls sent before the backoff began only extend it; the call that
                // began it and every failed probe lengthen the next one.
                if self.probe || state.until.is_none() {
                    state.failures = state.failures.saturating_add(1);
                }
                let wait = retry_after
                    .map(|r| r.min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| backoff(state.failures))
                    .max(MIN_BACKOFF);
                let now = Instant::now();
                let until = now.checked_add(wait).unwrap_or(now);
                if state.until.is_none() {
                    self.gate.throttled.fetch_add(1, Ordering::SeqCst);
                }
                state.until = Some(state.until.map_or(until, |u| u.max(until)));
            }
            Outcome::Answered if self.probe && state.until.is_some() => {
                state.until = None;
                state.failures = 0;
                let _ = self
                    .gate
                    .throttled
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                wake = true;
            }
            Outcome::Answered | Outcome::NoAnswer => {}
        }
        drop(state);
        if let Some(metrics) = metrics {
            metrics.gateways_throttled(self.gate.throttled.load(Ordering::SeqCst));
        }
        if wake {
            self.gate.changed.notify_waiters();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            self.settle(Outcome::NoAnswer, None);
        }
    }
}

/// The shared backoff after `failures` throttled answers in a row without `Retry-After`:
/// 200 ms doubling up to [`MAX_BACKOFF`], with jitter in its upper half.
fn backoff(failures: u32) -> Duration {
    let ceiling = Duration::from_millis(200)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn far() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(30))
    }

    #[test]
    fn retry_after_is_parsed_with_checked_arithmetic_and_capped() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("18446744073709551616"),
            Some(MAX_RETRY_AFTER),
            "more than u64::MAX seconds"
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "+3",
            &"9".repeat(40),
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_throttled_gateway_holds_its_callers_but_not_another_gateways() {
        let gates = GatewayGates::new(8);
        let m = Metrics::default();
        let t = gates.admit("https://a", far(), true, &m).await.unwrap();
        assert!(!t.is_probe());
        t.finish(Outcome::Throttled(429, Some(Duration::from_secs(1))), &m);
        assert_eq!(gates.throttled(), 1);
        assert_eq!(gates.last_status("https://a"), Some(429));
        // Another gateway: admitted at once.
        let started = Instant::now();
        let other = gates.admit("https://b", far(), true, &m).await.unwrap();
        assert!(!other.is_probe());
        assert!(started.elapsed() < Duration::from_millis(100));
        // Not waiting: refused. Waiting: admitted as a probe after the backoff.
        assert_eq!(
            gates.admit("https://a", far(), false, &m).await.err(),
            Some(Closed::Throttled)
        );
        let started = Instant::now();
        let probe = gates.admit("https://a", far(), true, &m).await.unwrap();
        let waited = started.elapsed();
        assert!(probe.is_probe());
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "waited {waited:?}"
        );
        probe.finish(Outcome::Answered, &m);
        assert_eq!(gates.throttled(), 0);
        assert!(
            !gates
                .admit("https://a", far(), true, &m)
                .await
                .unwrap()
                .is_probe()
        );
    }

    #[tokio::test]
    async fn a_backoff_past_the_deadline_fails_at_once_and_retry_after_is_capped() {
        let gates = GatewayGates::new(8);
        let m = Metrics::default();
        // A hostile gateway asks for a day: the backoff is capped at MAX_RETRY_AFTER.
        gates.record(
            "https://a",
            Outcome::Throttled(429, Some(Duration::from_secs(86_400))),
            &m,
        );
        let started = Instant::now();
        let soon = Some(Instant::now() + Duration::from_secs(2));
        assert_eq!(
            gates.admit("https://a", soon, true, &m).await.err(),
            Some(Closed::PastDeadline)
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "no waiting in vain"
        );
        let gate = gates.gate("https://a");
        let until = gate.lock().until.unwrap();
        assert!(until <= Instant::now() + MAX_RETRY_AFTER, "capped");
    }

    #[tokio::test]
    async fn after_the_backoff_only_a_few_probe_and_the_rest_follow_a_success() {
        let gates = Arc::new(GatewayGates::new(8));
        let m = Metrics::default();
        gates.record(
            "https://a",
            Outcome::Throttled(503, Some(Duration::ZERO)),
            &m,
        );
        let sent = Arc::new(AtomicU32::new(0));
        let probes = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (gates, m, sent, probes) = (gates.clone(), m.clone(), sent.clone(), probes.clone());
            tasks.push(tokio::spawn(async move {
                let t = gates.admit("https://a", far(), true, &m).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                if t.is_probe() {
                    let n = probes.fetch_add(1, Ordering::SeqCst);
                    // The first probe is throttled again; the next one succeeds.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let outcome = if n == 0 {
                        Outcome::Throttled(503, None)
                    } else {
                        Outcome::Answered
                    };
                    t.finish(outcome, &m);
                } else {
                    t.finish(Outcome::Answered, &m);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            sent.load(Ordering::SeqCst),
            20,
            "everyone is served in the end"
        );
        let p = probes.load(Ordering::SeqCst);
        assert!((2..=4).contains(&p), "a few probes, not everyone: {p}");
        assert_eq!(gates.throttled(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_probe_frees_its_slot() {
        let gates = GatewayGates::new(8);
        let m = Metrics::default();
        gates.record(
            "https://a",
            Outcome::Throttled(429, Some(Duration::ZERO)),
            &m,
        );
        let p1 = gates.admit("https://a", far(), true, &m).await.unwrap();
        let p2 = gates.admit("https://a", far(), true, &m).await.unwrap();
        assert!(p1.is_probe() && p2.is_probe());
        assert_eq!(
            gates.admit("https://a", far(), false, &m).await.err(),
            Some(Closed::Throttled),
            "both probe slots taken"
        );
        drop(p1);
        let p3 = gates.admit("https://a", far(), true, &m).await.unwrap();
        assert!(p3.is_probe());
    }

    #[test]
    fn the_map_is_bounded_and_an_evicted_throttled_gateway_stops_counting() {
        let gates = GatewayGates::new(2);
        let m = Metrics::default();
        gates.record("https://a", Outcome::Throttled(429, None), &m);
        assert_eq!(gates.throttled(), 1);
        for i in 0..100 {
            gates.record(&format!("https://x{i}"), Outcome::Answered, &m);
        }
        assert!(gates.gates.len() <= 2);
        assert_eq!(gates.throttled(), 0);
    }
}
