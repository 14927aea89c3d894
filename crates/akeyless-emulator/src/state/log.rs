//! The request log and per-path call counters.

use super::handle::EmulatorState;
use super::records::RecordedRequest;

impl EmulatorState {
    /// Recorded API calls, oldest first (the last 100 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.iter().cloned().collect()
    }

    /// Clears the request log and the per-path counters.
    pub(crate) fn clear_requests(&self) {
        let mut data = self.lock();
        data.log.clear();
        data.counts.clear();
    }

    /// Number of calls to `path` since the last `clear_requests`
    /// (`POST /__emulator/reset-requests`).
    pub fn count(&self, path: &str) -> usize {
        self.lock().counts.get(path).copied().unwrap_or(0)
    }

    /// Calls to every API path since the last `clear_requests` (`POST /__emulator/reset-requests`).
    pub fn total_count(&self) -> usize {
        self.lock().counts.values().sum()
    }

    /// Calls to every API path, by path, since the last `clear_requests`
    /// (`POST /__emulator/reset-requests`).
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self
            .lock()
            .counts
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        counts.sort();
        counts
    }
}
