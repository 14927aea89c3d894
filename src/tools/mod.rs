//! Developer tools, built only with the `tools` feature (default on, off in the image): the
//! `demo` and `bench` commands and the `emulator` subcommand, all around the Akeyless emulator
//! (the `akeyless-emulator` crate).

// Load generators and a demo against their own emulator, never on a mount's path: the request-
// path lints (src/lib.rs) don't apply; the size rules do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod bench;
pub mod demo;

use crate::cli::EmulatorArgs;

/// `emulator`: serves the Akeyless API emulator until SIGTERM/SIGINT.
pub async fn run_emulator(args: EmulatorArgs) -> Result<(), String> {
    crate::telemetry::init_logging(args.log_format, "info");
    akeyless_emulator::serve(&args.emulator, crate::runtime::shutdown_signal()).await
}
