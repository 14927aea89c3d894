//! State that outlives a mount, each piece bounded and explicitly owned by the provider context.

mod coalesce;
mod lease;
mod types;

pub use coalesce::Coalescer;
pub use lease::{LeaseCache, LeaseKey};
pub use types::TypeCache;
