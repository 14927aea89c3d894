//! akeyless-csi-provider: a Secrets Store CSI Driver provider for Akeyless.

pub mod emulator;
pub mod error;
pub mod proto;
pub mod secret;
