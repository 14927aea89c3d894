//! akeyless-csi-provider: a Secrets Store CSI Driver provider for Akeyless.
//!
//! A mount flows top to bottom through these modules:
//! `server` (gRPC adapter) → `request` (decode) → `spec` (parse + validate) → `plan` (dedupe,
//! batch) → `akeyless` (auth and reads) → `render` (files + versions) → back to `server`.
//! `mount` strings the stages together; `sync` is the second front door (SecretProviderClasses
//! → Kubernetes Secrets, no pod). `emulator` is an Akeyless API emulator used by `demo`,
//! tests and benchmarks; nothing on the mount path imports it.

// Request-path discipline: everything in this crate handles input a tenant controls (an SPC, a
// pod's request, or the answers of a gateway the SPC names), so no panic may be reachable from
// it. The compiler refuses the constructs that can panic: unwrap/expect, indexing and slicing,
// explicit panics, and unchecked arithmetic. Tests may use them. Modules that are tools or test
// doubles, never on a mount's path, opt out below with a reason.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects,
        // The size rule (clippy.toml: 80 lines; files: hack/check-file-size.sh).
        clippy::too_many_lines
    )
)]

pub mod akeyless;
pub mod cache;
pub mod certs;
mod cli;
pub mod cloud;
mod commands;
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)] // a test client playing the CSI driver
pub mod driver;
mod dry_run;
mod error;
pub mod eval;
pub mod identity;
pub mod jq;
pub mod mount;
mod plan;
pub mod proto;
pub mod render;
pub mod request;
pub mod runtime;
pub mod secret;
mod select;
mod serve;
pub mod server;
pub mod spec;
#[cfg(feature = "sync")]
mod sync;
pub mod telemetry;
pub mod timefmt;
#[cfg(feature = "tools")]
mod tools;
pub mod validate;
mod version;
#[cfg(feature = "sync")]
pub mod webhook;

pub use commands::main;
