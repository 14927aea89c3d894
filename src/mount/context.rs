//! The state every mount shares and that outlives it: defaults, HTTP clients, the version key,
//! the caches and the backend policy. Built once by the server (or a test) and passed in
//! explicitly (no globals).

use std::time::Duration;

use crate::akeyless::{AkeylessToken, BackendPolicy, ClientFactory};
use crate::cache::{BoundedMap, Coalescer, LeaseCache, LeaseKey, TypeCache};
use crate::certs::CertificateMaterial;
use crate::cloud::CloudOptions;
use crate::identity::{FingerprintKey, TokenKey, UidChains};
use crate::render::VersionKey;
use crate::secret::SecretString;
use crate::spec::SpecDefaults;

use super::read::{CachedRead, ReadKey};

/// State shared by all mounts: defaults, HTTP clients, the version key and caches. Owned by the
/// server and passed in explicitly (no globals).
pub struct ProviderContext {
    pub(crate) defaults: SpecDefaults,
    pub(crate) clients: ClientFactory,
    pub(crate) version_key: VersionKey,
    pub(crate) types: TypeCache,
    /// Dynamic-secret credentials per pod, until two-thirds of the lease has passed.
    pub(crate) dynamic_leases: LeaseCache<LeaseKey, SecretString>,
    /// PKI certificates per pod, until two-thirds of their lifetime has passed.
    pub(crate) pki_leases: LeaseCache<LeaseKey, CertificateMaterial>,
    pub(crate) dynamic_default_ttl: Duration,
    /// Akeyless tokens by identity (see [`identity`](crate::identity)), until shortly before they expire.
    pub(crate) tokens: LeaseCache<TokenKey, AkeylessToken>,
    pub(crate) fingerprints: FingerprintKey,
    /// Rotated Universal Identity tokens, per chain (identity and init token).
    pub(crate) uid_chains: UidChains,
    /// Cloud endpoints and the opted-in provider identities.
    pub(crate) cloud: CloudOptions,
    /// Identical reads of one identity share a request (and a value, within the TTL).
    pub(crate) reads: Coalescer<(TokenKey, ReadKey), CachedRead>,
    /// Tokens that were denied a mount's items while fresh, by identity and a keyed
    /// fingerprint of (token, items). A cached token's later denial of the same items is then
    /// final: the item is denied, not the token, and a new login would only cost an `/auth`
    /// on every rotation poll.
    pub(crate) confirmed_denials: BoundedMap<(TokenKey, [u8; 32]), ()>,
    pub(crate) backend: BackendPolicy,
    /// How `jq` filters are evaluated, and the file cap (see [`crate::eval`]). In process after
    /// `new` (tests, benches); `cli::provider_context` sets worker processes.
    pub(crate) evaluator: crate::eval::Evaluator,
}

impl ProviderContext {
    /// Records backend calls, retries and the auth cache into `metrics`, and backend
    /// reachability into `health` (the server's instances, served on /metrics and /readyz).
    pub(crate) fn with_telemetry(
        mut self,
        metrics: crate::telemetry::Metrics,
        health: crate::telemetry::BackendHealth,
    ) -> Self {
        self.backend.metrics = metrics;
        self.backend.health = health;
        self
    }

    /// Cloud endpoints and opted-in provider identities (`--aws-…`, `--gcp-…`).
    pub(crate) fn with_cloud(mut self, cloud: CloudOptions) -> Self {
        self.cloud = cloud;
        self
    }

    pub(crate) fn new(
        defaults: SpecDefaults,
        clients: ClientFactory,
        version_key: VersionKey,
        caches: CacheSettings,
    ) -> Self {
        ProviderContext {
            defaults,
            clients,
            version_key,
            types: TypeCache::new(caches.max_entries),
            dynamic_leases: LeaseCache::new(caches.max_entries),
            pki_leases: LeaseCache::new(caches.max_entries),
            dynamic_default_ttl: caches.dynamic_default_ttl,
            tokens: LeaseCache::new(caches.max_entries),
            fingerprints: FingerprintKey::random(),
            uid_chains: UidChains::new(caches.max_entries),
            cloud: CloudOptions::default(),
            reads: Coalescer::new(caches.value_cache_ttl, caches.max_entries),
            confirmed_denials: BoundedMap::new(caches.max_entries),
            backend: BackendPolicy {
                max_response_bytes: caches.max_response_bytes,
                ..BackendPolicy::new(caches.max_backend_concurrency)
            },
            evaluator: crate::eval::Evaluator::in_process(),
        }
    }
}

/// Settings of the state that outlives a mount.
#[derive(Clone, Debug)]
pub(crate) struct CacheSettings {
    /// Lease length assumed for a dynamic secret when Akeyless reports none and the object sets no `ttl`.
    pub dynamic_default_ttl: Duration,
    /// Bound of each cache (tokens, types, leases, reads).
    pub max_entries: usize,
    /// How long a read value may be reused by later mounts of the same identity (zero: only
    /// identical reads in flight at the same time share a request).
    pub value_cache_ttl: Duration,
    /// Most backend requests in flight across all mounts.
    pub max_backend_concurrency: usize,
    /// Largest answer read from Akeyless.
    pub max_response_bytes: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            dynamic_default_ttl: Duration::from_secs(15 * 60),
            max_entries: 10_000,
            value_cache_ttl: Duration::ZERO,
            max_backend_concurrency: 64,
            max_response_bytes: crate::akeyless::MAX_RESPONSE_BYTES,
        }
    }
}
