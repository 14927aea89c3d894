//! akeyless-csi-provider: a Secrets Store CSI Driver provider for Akeyless.

pub mod emulator;
pub mod error;
pub mod plan;
pub mod proto;
pub mod render;
pub mod request;
pub mod secret;
pub mod spec;
