//! State that outlives a mount, each piece bounded (least recently used out first) and
//! explicitly owned by the provider context. Every key names the tenant: see each cache's
//! module for what its key holds and why that is enough.

mod bounded;
mod coalesce;
mod lease;
mod types;

pub use bounded::BoundedMap;
pub use coalesce::Coalescer;
pub use lease::{LeaseCache, LeaseKey, MAX_LEASE, renew_at, reported_lease};
pub use types::TypeCache;
