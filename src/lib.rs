//! akeyless-csi-provider: a Secrets Store CSI Driver provider for Akeyless.
//!
//! A mount flows top to bottom through these modules:
//! `server` (gRPC adapter) → `request` (decode) → `spec` (parse + validate) → `plan` (dedupe,
//! batch) → `akeyless` (auth and reads) → `render` (files + versions) → back to `server`.
//! `mount` strings the stages together; `sync` is the second front door (SecretProviderClasses
//! → Kubernetes Secrets, no pod). `emulator` is an Akeyless API emulator used by `demo`,
//! tests and benchmarks; nothing on the mount path imports it.

pub mod akeyless;
pub mod bench;
pub mod bench_runaway;
pub mod cache;
pub mod certs;
pub mod cli;
pub mod cloud;
pub mod demo;
pub mod driver;
pub mod dry_run;
pub mod emulator;
pub mod error;
pub mod eval;
pub mod identity;
pub mod jq;
pub mod mount;
pub mod plan;
pub mod proto;
pub mod render;
pub mod request;
pub mod secret;
pub mod select;
pub mod server;
pub mod spec;
pub mod sync;
pub mod telemetry;
pub mod timefmt;
pub mod validate;
