//! akeyless-csi-provider: a Secrets Store CSI Driver provider for Akeyless.
//!
//! # One mount, top to bottom
//! 1. `server/mod.rs` (`ProviderService::mount`): the gRPC adapter decodes the driver's request
//!    (`request.rs`) and runs it in a slot, under its deadline, catching panics (`run_mount`).
//! 2. `mount/mod.rs` (`mount_with_deadline`): the recipe, on one screen.
//! 3. `spec/mod.rs` (`parse_mount`): parameters and objects → `SecretProviderSpec`, every problem
//!    located: `connection.rs`, `auth.rs` (with `aws.rs`, `azure.rs`, `gcp.rs`,
//!    `provider_identity.rs`), `objects.rs` (with `objects/entry.rs`, `objects/values.rs`),
//!    `credentials.rs`; `identity.rs` names the token's cache key.
//! 4. `mount/auth.rs` (`Mount::login`): the cached token, or a login by access type (the cloud
//!    steps in `cloud/`), through `akeyless/mod.rs` (`call.rs` retries, `gate.rs` per-gateway
//!    backoff, `transport.rs` TLS).
//! 5. `mount/read.rs` (`Mount::read_all`): item types (`akeyless/items.rs`, `cache/types.rs`),
//!    the `FetchPlan` (`plan.rs`), then batched and single reads, coalesced
//!    (`cache/coalesce.rs`), per-pod leases in `mount/leases.rs` (`cache/lease.rs`).
//! 6. `mount/mod.rs` (`Mount::render`) → `eval/` (jq filters that aren't plain paths run in
//!    worker processes, `eval/pool.rs`) → `render.rs` (`select.rs`, `jq.rs`, `certs.rs`).
//! 7. Back in `server/mod.rs`: one log line, the response.
//!
//! `sync/` is the second front door (SecretProviderClasses → Kubernetes Secrets, no pod): it
//! builds the same request and calls the same `mount/`. `webhook/` checks SPCs at apply time with
//! the same `spec/`. Below every command: `runtime.rs` (shared flags, the mount context,
//! telemetry listeners, the shutdown signal) and `telemetry/` (a leaf: logs, metrics, whether
//! Akeyless answers). `cli.rs` holds the argument types only; `commands.rs` dispatches them.
//!
//! # Features
//! - `tools` (default): `demo`, `bench` and `emulator` (`tools/`), which use the Akeyless
//!   emulator crate. Never in the image.
//! - `sync` (default): the `sync` and `webhook` commands and the Kubernetes client they need.
//!
//! The image builds with `--no-default-features --features sync` (`hack/dist.sh`).
//!
//! # Crates of the workspace
//! - `akeyless-csi-provider` (this one): the one binary that ships.
//! - `crates/akeyless-emulator`: the Akeyless API emulator (and the cloud identity services it
//!   trusts), a library for the tests, `demo` and `bench`, and the `akeyless-emulator` binary;
//!   it never depends on this crate.
//! - `crates/sigv4`: AWS Signature Version 4, with which the provider signs `aws_iam` cloud-ids
//!   and the emulator checks them.

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
