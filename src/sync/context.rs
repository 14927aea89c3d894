//! What every reconcile shares: the controller's settings, the [`Context`] passed explicitly to
//! each reconcile, the per-SPC memory, and why a reconcile fails ([`SyncError`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::Recorder;

use super::spc::SpcError;
use super::tokens::TokenSource;
use crate::error::MountError;
use crate::mount::ProviderContext;
use crate::telemetry::Metrics;

/// Controller-wide settings (from flags).
#[derive(Clone, Debug)]
pub(crate) struct SyncOptions {
    pub min_interval: Duration,
    /// Namespaces whose SPCs may be synced; empty = all.
    pub namespaces: Vec<String>,
    /// TokenRequest audience when the SPC sets no `akeylessTokenAudience`.
    pub default_audience: String,
    pub mount_timeout: Duration,
    /// Record the last-success gauge per SPC (namespace and name labels).
    pub spc_metrics: bool,
}

/// Everything a reconcile needs, passed explicitly.
pub(crate) struct Context {
    pub client: kube::Client,
    pub provider: Arc<ProviderContext>,
    pub tokens: TokenSource,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub options: SyncOptions,
    state: Mutex<HashMap<(String, String), SpcState>>,
}

/// What we last did for one SPC (in memory; a restart syncs everything once).
#[derive(Clone, Debug, Default)]
pub(super) struct SpcState {
    pub(super) uid: String,
    pub(super) generation: Option<i64>,
    pub(super) last_sync: Option<Instant>,
    /// Content hash of each Secret as we last wrote or found it.
    pub(super) hashes: BTreeMap<String, String>,
    pub(super) failures: u32,
}

impl Context {
    pub fn new(
        client: kube::Client,
        provider: Arc<ProviderContext>,
        tokens: TokenSource,
        recorder: Recorder,
        metrics: Metrics,
        options: SyncOptions,
    ) -> Self {
        Context {
            client,
            provider,
            tokens,
            recorder,
            metrics,
            options,
            state: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), SpcState>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a reconcile failed. Messages name the SPC field, Secret or object; never a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("{0}")]
    Invalid(#[from] SpcError),
    /// `secretObjects` don't fit what the mount returned (a missing file, a value that isn't a
    /// certificate). The values can change in Akeyless, so this is retried.
    #[error("{0}")]
    Shape(SpcError),
    #[error("namespace {0} is not in the controller's --namespaces list")]
    NamespaceNotAllowed(String),
    #[error(
        "Secret {name}: managed by the Secrets Store CSI driver's own sync (label secrets-store.csi.k8s.io/managed=true); remove secretObjects from one of the two, or delete the Secret"
    )]
    ManagedByDriver { name: String },
    #[error(
        "Secret {name} exists and {why}; refusing to overwrite it: rename secretName or delete that Secret"
    )]
    Foreign { name: String, why: String },
    #[error("TokenRequest for ServiceAccount {namespace}/{service_account}: {message}")]
    Token {
        namespace: String,
        service_account: String,
        message: String,
    },
    #[error("{0}")]
    Mount(#[from] MountError),
    #[error("Secret {name}: {source}")]
    Write { name: String, source: kube::Error },
    #[error("reading Secrets: {0}")]
    Read(kube::Error),
}

impl SyncError {
    /// The Event reason and the `reason` label of the failure metric (a fixed set).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            SyncError::Invalid(_) | SyncError::Shape(_) => "InvalidSyncConfig",
            SyncError::NamespaceNotAllowed(_) => "NamespaceNotAllowed",
            SyncError::ManagedByDriver { .. } => "SecretManagedByDriver",
            SyncError::Foreign { .. } => "SecretNotOwned",
            SyncError::Token { .. } => "TokenRequestFailed",
            SyncError::Mount(e) => e.code.as_str(),
            SyncError::Write { .. } | SyncError::Read(_) => "KubernetesAPIError",
        }
    }

    /// Only a spec change can fix these: don't retry until the SPC changes.
    pub(super) fn needs_spec_change(&self) -> bool {
        matches!(
            self,
            SyncError::Invalid(_) | SyncError::NamespaceNotAllowed(_)
        )
    }
}
