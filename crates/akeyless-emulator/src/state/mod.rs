//! The emulator's in-memory model (auth methods, grants, items, tokens, faults, request log)
//! and the [`EmulatorState`] handle that tests and the admin API use to drive it.
//!
//! Layered bottom-up: `records` (the stored record types), `grants`, `data` (everything behind
//! the mutex and the operations that keep it consistent), `handle` ([`EmulatorState`] itself),
//! then one file per concern of the handle's setup API: `auth_methods`, `tokens`, `cloud`,
//! `items`, `faults`, `log`. This file only declares them and re-exports what the rest of the
//! crate uses.

mod auth_methods;
mod cloud;
mod data;
mod faults;
mod grants;
mod handle;
mod items;
mod log;
mod records;
mod tokens;

#[cfg(test)]
mod tests;

pub(crate) use data::Data;
pub use handle::EmulatorState;
pub(crate) use records::{AuthMethod, AwsKey, GcpPrincipal, NodeIdentity, Session, UidToken};
pub use records::{Identity, RecordedRequest};
