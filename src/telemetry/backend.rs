//! Whether Akeyless answered recently: the Akeyless client records each call's outcome, `/readyz`
//! (server::health) reads the verdict.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window of [`BackendHealth`]'s policy.
pub const BACKEND_WINDOW: Duration = Duration::from_secs(60);

/// Whether Akeyless answered recently, fed by the Akeyless client.
///
/// Policy: **not ready when there were Akeyless calls in the last 60 s and every one of them
/// failed at the connection level** (no HTTP response: DNS, connect, TLS, or a timeout before
/// the answer). Any HTTP answer, even 401 or 503, counts as reachable: the network path works
/// and the failure is per mount, reported in its error. With no calls in the window (an idle
/// node) it is ready: readiness never makes calls of its own, so an idle provider costs Akeyless
/// nothing.
#[derive(Clone)]
pub struct BackendHealth {
    state: Arc<Mutex<BackendState>>,
    window: Duration,
}

#[derive(Default, Debug, Clone, Copy)]
struct BackendState {
    last_reachable: Option<Instant>,
    last_unreachable: Option<Instant>,
    /// Connection-level failures since the last reachable answer.
    failures_since_reachable: u64,
}

impl Default for BackendHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BackendHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendHealth")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl BackendHealth {
    pub fn new() -> Self {
        Self::with_window(BACKEND_WINDOW)
    }

    pub fn with_window(window: Duration) -> Self {
        BackendHealth {
            state: Arc::default(),
            window,
        }
    }

    /// Records the outcome of one Akeyless call: `reachable` is true when an HTTP response
    /// came back (whatever its status), false on a connection-level failure.
    pub fn record(&self, reachable: bool) {
        self.record_at(reachable, Instant::now());
    }

    fn record_at(&self, reachable: bool, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if reachable {
            s.last_reachable = Some(now);
            s.failures_since_reachable = 0;
        } else {
            s.last_unreachable = Some(now);
            s.failures_since_reachable = s.failures_since_reachable.saturating_add(1);
        }
    }

    /// `Ok(description)` when ready by the policy above, else `Err(why)`.
    pub fn check(&self) -> Result<String, String> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<String, String> {
        let s = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        let within =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) <= self.window);
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs();
        let window = self.window.as_secs();
        if within(s.last_unreachable) && !within(s.last_reachable) {
            let last_ok = match s.last_reachable {
                Some(t) => format!("last answer {}s ago", ago(t)),
                None => "no answer since start".to_string(),
            };
            return Err(format!(
                "akeyless: unreachable: every call in the last {window}s failed to connect \
                 ({} failure(s) in a row; {last_ok})",
                s.failures_since_reachable
            ));
        }
        Ok(match s.last_reachable {
            Some(t) => format!("akeyless: reachable (last answer {}s ago)", ago(t)),
            None => "akeyless: no calls yet".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_policy() {
        let h = BackendHealth::with_window(Duration::from_secs(60));
        let t0 = Instant::now();
        // No calls: ready.
        assert!(h.check_at(t0).is_ok());
        // Only failures in the window: not ready.
        h.record_at(false, t0);
        h.record_at(false, t0 + Duration::from_secs(1));
        let why = h.check_at(t0 + Duration::from_secs(2)).unwrap_err();
        assert!(why.contains("2 failure(s) in a row"), "{why}");
        assert!(why.contains("no answer since start"), "{why}");
        // One answer in the window: ready again.
        h.record_at(true, t0 + Duration::from_secs(3));
        h.record_at(false, t0 + Duration::from_secs(4));
        assert!(h.check_at(t0 + Duration::from_secs(5)).is_ok());
        // The answer leaves the window while failures continue: not ready.
        h.record_at(false, t0 + Duration::from_secs(70));
        let why = h.check_at(t0 + Duration::from_secs(70)).unwrap_err();
        assert!(why.contains("last answer 67s ago"), "{why}");
        // The failures age out too (no calls in the window): ready.
        assert!(h.check_at(t0 + Duration::from_secs(200)).is_ok());
    }
}
