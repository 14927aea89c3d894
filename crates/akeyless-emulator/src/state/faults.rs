//! Fault injection: failures, dropped connections, delays and throttling.

use std::time::Duration;

use super::handle::EmulatorState;
use crate::faults::{FaultAction, Faults};

impl EmulatorState {
    /// The next `count` calls to `path` (e.g. `/get-secret-value`, or `*` for any API path)
    /// answer `status` with an `{"error": ...}` body.
    pub fn fail_next(&self, path: &str, status: u16, count: usize) {
        self.push_fault(
            path,
            FaultAction::Fail {
                status,
                retry_after_secs: None,
            },
            count,
        );
    }

    /// Like [`fail_next`](Self::fail_next), with a `Retry-After: <secs>` header.
    pub fn fail_next_with_retry_after(
        &self,
        path: &str,
        status: u16,
        count: usize,
        retry_after_secs: u64,
    ) {
        self.push_fault(
            path,
            FaultAction::Fail {
                status,
                retry_after_secs: Some(retry_after_secs),
            },
            count,
        );
    }

    /// Every API call answers 429 for `window` from now (with `Retry-After: <secs>` when
    /// given), as Akeyless does while an account is over its rate limit.
    pub fn throttle_for(&self, window: Duration, retry_after_secs: Option<u64>) {
        let now = std::time::Instant::now();
        let until = now.checked_add(window).unwrap_or(now);
        self.lock().faults.throttle_until(until, retry_after_secs);
    }

    /// The next `count` calls to `path` get their connection closed without any response.
    pub fn drop_next(&self, path: &str, count: usize) {
        self.push_fault(path, FaultAction::Drop, count);
    }

    fn push_fault(&self, path: &str, action: FaultAction, count: usize) {
        self.lock().faults.push(path, action, count);
    }

    /// Delays every call to `path` (or `*`) by `delay` before it is handled (and before any
    /// queued fault fires). `Duration::ZERO` clears it.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.lock().faults.set_delay(path, delay);
    }

    /// Removes all queued faults and delays.
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }
}
