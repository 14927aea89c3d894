//! State that outlives a mount, each piece bounded (least recently used out first) and
//! explicitly owned by the provider context. Every key names the tenant: see each cache's
//! module for what its key holds and why that is enough.

mod bounded;
mod coalesce;
mod lease;
mod types;

pub(crate) use bounded::BoundedMap;
pub(crate) use coalesce::Coalescer;
pub(crate) use lease::{LeaseCache, LeaseKey};
pub use lease::{MAX_LEASE, renew_at, reported_lease};
pub(crate) use types::TypeCache;
