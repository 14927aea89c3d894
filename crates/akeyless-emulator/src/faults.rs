//! Fault injection: queued failures and dropped connections per API path, fixed delays, and
//! a throttle window (every call answers 429 until it ends, as a rate-limited account does).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What an injected fault does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Fail {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    Drop,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Per path (or `*`), consumed front to back, so faults fire in the order they were queued.
    queued: HashMap<String, VecDeque<(FaultAction, usize)>>,
    delays: HashMap<String, Duration>,
    /// Until when every API call answers 429, and the `Retry-After` it carries.
    throttle: Option<(Instant, Option<u64>)>,
}

impl Faults {
    pub(crate) fn push(&mut self, path: &str, action: FaultAction, count: usize) {
        if count > 0 {
            self.queued
                .entry(path.to_owned())
                .or_default()
                .push_back((action, count));
        }
    }

    /// Consumes the next fault for `path`; faults queued for the exact path win over `*`.
    pub(crate) fn take(&mut self, path: &str) -> Option<FaultAction> {
        [path, "*"].into_iter().find_map(|key| {
            let queue = self.queued.get_mut(key)?;
            let (action, remaining) = queue.front_mut()?;
            let action = *action;
            *remaining -= 1;
            if *remaining == 0 {
                queue.pop_front();
            }
            Some(action)
        })
    }

    /// Sets (or, with zero, clears) the delay for `path`.
    pub(crate) fn set_delay(&mut self, path: &str, delay: Duration) {
        if delay.is_zero() {
            self.delays.remove(path);
        } else {
            self.delays.insert(path.to_owned(), delay);
        }
    }

    /// Every API call answers 429 (with `Retry-After: <secs>` when given) until `until`.
    pub(crate) fn throttle_until(&mut self, until: Instant, retry_after_secs: Option<u64>) {
        self.throttle = Some((until, retry_after_secs));
    }

    /// The 429 a call arriving at `now` gets, while the throttle window lasts.
    pub(crate) fn throttled(&mut self, now: Instant) -> Option<FaultAction> {
        match self.throttle {
            Some((until, retry_after_secs)) if now < until => Some(FaultAction::Fail {
                status: 429,
                retry_after_secs,
            }),
            Some(_) => {
                self.throttle = None;
                None
            }
            None => None,
        }
    }

    pub(crate) fn delay(&self, path: &str) -> Duration {
        self.delays
            .get(path)
            .or_else(|| self.delays.get("*"))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order_and_specific_first() {
        let mut f = Faults::default();
        f.push(
            "*",
            FaultAction::Fail {
                status: 500,
                retry_after_secs: None,
            },
            1,
        );
        f.push(
            "/a",
            FaultAction::Fail {
                status: 503,
                retry_after_secs: None,
            },
            1,
        );
        f.push("/a", FaultAction::Drop, 1);
        f.push("/a", FaultAction::Drop, 0);
        assert_eq!(
            f.take("/a"),
            Some(FaultAction::Fail {
                status: 503,
                retry_after_secs: None
            })
        );
        assert_eq!(f.take("/a"), Some(FaultAction::Drop));
        assert_eq!(
            f.take("/a"),
            Some(FaultAction::Fail {
                status: 500,
                retry_after_secs: None
            })
        );
        assert_eq!(f.take("/a"), None);
    }

    #[test]
    fn throttle_answers_429_until_the_window_ends() {
        let mut f = Faults::default();
        let start = Instant::now();
        f.throttle_until(start + Duration::from_secs(5), Some(1));
        assert_eq!(
            f.throttled(start),
            Some(FaultAction::Fail {
                status: 429,
                retry_after_secs: Some(1)
            })
        );
        assert_eq!(f.throttled(start + Duration::from_secs(5)), None);
        assert_eq!(f.throttled(start), None, "an ended window is gone");
    }

    #[test]
    fn delays_fall_back_to_wildcard_and_clear() {
        let mut f = Faults::default();
        f.set_delay("*", Duration::from_millis(5));
        f.set_delay("/a", Duration::from_millis(10));
        assert_eq!(f.delay("/a"), Duration::from_millis(10));
        assert_eq!(f.delay("/b"), Duration::from_millis(5));
        f.set_delay("/a", Duration::ZERO);
        assert_eq!(f.delay("/a"), Duration::from_millis(5));
    }
}
