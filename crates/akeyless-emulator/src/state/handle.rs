//! The [`EmulatorState`] handle: a cheap clone of the shared, locked model. Its setup, fault
//! and log methods live beside their concern (`auth_methods`, `tokens`, `cloud`, `items`,
//! `faults`, `log`).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::data::Data;
use super::records::AuthMethod;
use crate::jwt::JwtKey;

struct Shared {
    key: JwtKey,
    data: Mutex<Data>,
}

/// Shared handle to the emulator's state. Cheap to clone; every method takes `&self`.
///
/// Item names are normalized to absolute paths (`foo` and `/foo` are the same item).
#[derive(Clone)]
pub struct EmulatorState {
    shared: Arc<Shared>,
}

impl fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Contents include secrets; show nothing.
        f.debug_struct("EmulatorState").finish_non_exhaustive()
    }
}

impl Default for EmulatorState {
    fn default() -> Self {
        Self::new()
    }
}

impl EmulatorState {
    /// An empty state with a fresh random signing key.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                key: JwtKey::generate(),
                data: Mutex::new(Data::default()),
            }),
        }
    }

    /// Locks the model. Recovers from poisoning: every mutation leaves the model consistent,
    /// so a panic elsewhere must not take the emulator down.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.shared
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn key(&self) -> &JwtKey {
        &self.shared.key
    }

    pub(crate) fn add_auth_method(&self, access_id: &str, method: AuthMethod) {
        self.lock()
            .auth_methods
            .insert(access_id.to_owned(), method);
    }
}

pub(super) fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}
