//! State that outlives a mount, each piece bounded and explicitly owned by the provider context.

mod lease;
mod types;

pub use lease::{LeaseCache, LeaseKey};
pub use types::TypeCache;
