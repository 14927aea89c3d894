//! Everything behind the state mutex ([`Data`]) and the operations on it that keep it
//! consistent: item storage and versions, grants, sessions and the request log.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::grants::{Grant, pattern_matches};
use super::records::{
    AuthMethod, AwsKey, AzureApp, GcpPrincipal, Identity, NodeIdentity, RecordedRequest, Session,
    UidToken,
};
use crate::faults::Faults;
use crate::items::{Item, ItemBody, StoredValue, Version};
use crate::tokenreview::K8sAuthConfig;
use crate::util::normalize_name;

/// Lifetime of `t-` tokens unless
/// [`EmulatorState::set_token_ttl`](crate::EmulatorState::set_token_ttl) says otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The request log keeps this many entries (oldest dropped first) so long benchmarks stay
/// bounded; [`EmulatorState::count`](crate::EmulatorState::count) is tracked separately and is
/// never truncated.
const MAX_LOGGED_REQUESTS: usize = 100_000;
/// First `item_id` handed out; arbitrary, but looks like a real id.
const FIRST_ITEM_ID: u64 = 137_000_001;

/// Everything behind the state mutex.
#[derive(Debug)]
pub(crate) struct Data {
    pub auth_methods: HashMap<String, AuthMethod>,
    /// Apps of the emulated Azure AD, by client ID.
    pub(crate) azure_apps: HashMap<String, AzureApp>,
    /// Universal Identity tokens by token.
    pub(crate) uid_tokens: HashMap<String, UidToken>,
    /// IAM roles of the emulated AWS STS (role ARN → trusted `system:serviceaccount:<ns>:<sa>`).
    pub(crate) aws_roles: HashMap<String, String>,
    /// AWS credentials by access key ID.
    pub(crate) aws_keys: HashMap<String, AwsKey>,
    /// The Google service account the emulated metadata server answers as.
    pub(crate) gcp_node_account: Option<String>,
    /// The managed identities assigned to the node the emulated Azure IMDS runs on.
    pub(crate) azure_node_identities: Vec<NodeIdentity>,
    /// Workload identity providers of the emulated Google STS: provider audience → the pod-token
    /// audiences it accepts (empty: Google's default for that provider).
    pub(crate) gcp_providers: HashMap<String, Vec<String>>,
    /// Who may impersonate which Google service account: (provider, namespace, Kubernetes
    /// service account, Google service account email).
    pub(crate) gcp_impersonation: Vec<(String, String, String, String)>,
    /// Federated access tokens the emulated STS issued.
    pub(crate) gcp_access_tokens: HashMap<String, GcpPrincipal>,
    /// ID tokens the emulated IAM Credentials issued (newest last, bounded), for leak checks.
    pub(crate) gcp_id_tokens: VecDeque<String>,
    /// Gateway Kubernetes auth configs by name: k8s auth methods naming one use TokenReview.
    pub k8s_auth_configs: HashMap<String, K8sAuthConfig>,
    pub grants: Vec<Grant>,
    pub items: HashMap<String, Item>,
    /// Access IDs of accounts other than the default one (access ID → account). Item names are
    /// unique per account, as in Akeyless: the same name in two accounts is two items.
    pub(crate) accounts: HashMap<String, String>,
    next_item_id: u64,
    pub sessions: HashMap<String, Session>,
    /// Session-map size that triggers the next sweep of expired tokens (amortised O(1)).
    sweep_at: usize,
    pub token_ttl: Duration,
    /// Whether `/auth` answers also carry `expiration` (later schemas); without it only the
    /// published `creds.expiry` states the lifetime.
    pub(crate) auth_expiration_field: bool,
    /// Item calls that presented a token after its expiry (each answered 401).
    pub(crate) expired_token_presentations: usize,
    /// Whether `/describe-item` answers a missing (but permitted) item with 200 and `{}`.
    pub(crate) describe_missing_as_empty: bool,
    pub faults: Faults,
    pub(super) log: VecDeque<RecordedRequest>,
    pub(super) counts: HashMap<String, usize>,
}

impl Default for Data {
    fn default() -> Self {
        Self {
            auth_methods: HashMap::new(),
            azure_apps: HashMap::new(),
            uid_tokens: HashMap::new(),
            aws_roles: HashMap::new(),
            aws_keys: HashMap::new(),
            gcp_node_account: None,
            azure_node_identities: Vec::new(),
            gcp_providers: HashMap::new(),
            gcp_impersonation: Vec::new(),
            gcp_access_tokens: HashMap::new(),
            gcp_id_tokens: VecDeque::new(),
            k8s_auth_configs: HashMap::new(),
            grants: Vec::new(),
            items: HashMap::new(),
            accounts: HashMap::new(),
            next_item_id: FIRST_ITEM_ID,
            sessions: HashMap::new(),
            auth_expiration_field: true,
            expired_token_presentations: 0,
            describe_missing_as_empty: false,
            sweep_at: 1024,
            token_ttl: DEFAULT_TOKEN_TTL,
            faults: Faults::default(),
            log: VecDeque::new(),
            counts: HashMap::new(),
        }
    }
}

/// Where an item named `name` (normalized) of `account` is stored: the default account's
/// items under their names, another account's under `/@<account><name>`.
pub(super) fn account_item_key(account: Option<&str>, name: &str) -> String {
    match account {
        Some(account) => format!("/@{account}{name}"),
        None => name.to_owned(),
    }
}

impl Data {
    /// Where the item `name` (normalized) that `access_id`'s account sees is stored.
    pub(crate) fn item_key(&self, access_id: &str, name: &str) -> String {
        account_item_key(self.accounts.get(access_id).map(String::as_str), name)
    }

    /// Whether `identity` may read (and describe) `item_name` (normalized).
    pub(crate) fn can_read(&self, identity: &Identity, item_name: &str) -> bool {
        self.grants.iter().any(|g| g.allows(identity, item_name))
    }

    /// Why `identity` may not read `item_name`: a grant whose namespace restriction failed is a
    /// sub-claim mismatch in Akeyless terms.
    pub(crate) fn read_denial(&self, identity: &Identity, item_name: &str) -> String {
        let sub_claim_mismatch = self
            .grants
            .iter()
            .any(|g| g.access_id == identity.access_id && pattern_matches(&g.pattern, item_name));
        if sub_claim_mismatch {
            format!(
                "access id {}: sub claim mismatch for item {item_name}",
                identity.access_id
            )
        } else {
            format!(
                "unauthorized access for access id {} to item {item_name}",
                identity.access_id
            )
        }
    }

    /// Appends a version, creating the item if needed. Storing a value of a different type
    /// under an existing name replaces the item, as deleting and re-creating it would.
    pub(crate) fn append_version(&mut self, name: &str, value: StoredValue) -> u32 {
        let name = normalize_name(name);
        let now = SystemTime::now();
        let version = Version {
            value,
            created: now,
        };
        if let Some(item) = self.items.get_mut(&name)
            && item.item_type() == version.value.item_type()
            && let ItemBody::Versioned(versions) = &mut item.body
        {
            versions.push(version);
            item.modified = now;
            return item.last_version();
        }
        self.insert_item(name, ItemBody::Versioned(vec![version]), now);
        1
    }

    pub(crate) fn insert_item(&mut self, name: String, body: ItemBody, now: SystemTime) {
        let id = self.next_item_id;
        self.next_item_id += 1;
        self.items.insert(
            name,
            Item {
                id,
                created: now,
                modified: now,
                body,
            },
        );
    }

    pub(crate) fn add_grant(
        &mut self,
        access_id: &str,
        path_pattern: &str,
        namespaces: Vec<String>,
    ) {
        self.grants.push(Grant {
            access_id: access_id.to_owned(),
            pattern: normalize_name(path_pattern),
            namespaces,
        });
    }

    pub(crate) fn insert_session(&mut self, token: String, session: Session) {
        if self.sessions.len() >= self.sweep_at {
            let now = SystemTime::now();
            self.sessions.retain(|_, s| s.expires_at > now);
            self.sweep_at = (self.sessions.len() * 2).max(1024);
        }
        self.sessions.insert(token, session);
    }

    pub(crate) fn record(&mut self, request: RecordedRequest) {
        *self.counts.entry(request.path.clone()).or_default() += 1;
        if self.log.len() >= MAX_LOGGED_REQUESTS {
            self.log.pop_front();
        }
        self.log.push_back(request);
    }
}
