//! The emulator's in-memory model (auth methods, grants, items, tokens, faults, request log)
//! and the [`EmulatorState`] handle that tests and the admin API use to drive it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::faults::{FaultAction, Faults};
use super::items::{Item, ItemBody, StoredValue, Version};
use super::jwt::{JwtKey, ServiceAccountToken};
use super::tokenreview::K8sAuthConfig;
use super::util::normalize_name;

/// Lifetime of `t-` tokens unless [`EmulatorState::set_token_ttl`] says otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The request log keeps this many entries (oldest dropped first) so long benchmarks stay
/// bounded; [`EmulatorState::count`] is tracked separately and is never truncated.
const MAX_LOGGED_REQUESTS: usize = 100_000;
/// First `item_id` handed out; arbitrary, but looks like a real id.
const FIRST_ITEM_ID: u64 = 137_000_001;

/// Who a request acted as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub access_id: String,
    /// `access_key`, `k8s` or `jwt`.
    pub access_type: String,
    /// Kubernetes namespace sub-claim (k8s auth).
    pub namespace: Option<String>,
    /// Kubernetes service-account name (k8s auth).
    pub service_account: Option<String>,
    /// Pod uid from a pod-bound service-account token (k8s auth).
    pub pod_uid: Option<String>,
    /// The JWT `sub` claim (k8s and jwt auth).
    pub subject: Option<String>,
}

impl Identity {
    pub(crate) fn access_key(access_id: &str) -> Self {
        Self {
            access_id: access_id.to_owned(),
            access_type: "access_key".to_owned(),
            namespace: None,
            service_account: None,
            pod_uid: None,
            subject: None,
        }
    }
}

/// One call to the Akeyless API (admin calls under `/__emulator/` are not recorded).
///
/// Built from the raw JSON body, so malformed requests are logged too. Never holds secret values,
/// access keys or tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub path: String,
    /// HTTP status answered; `0` when the connection was dropped by [`EmulatorState::drop_next`].
    pub status: u16,
    /// The identity the request acted as: for /auth the identity that logged in (None on
    /// failure); for item reads the identity owning the token (None if the token was rejected).
    pub identity: Option<Identity>,
    /// Item names the request touched (`names` / `name` fields), as sent.
    pub items: Vec<String>,
    /// `version` field if present (and an integer).
    pub version: Option<i64>,
    /// Value of the `ignore-cache` field if present (JSON text if it was not a string).
    pub ignore_cache: Option<String>,
    /// Fields present in the JSON body (keys only, sorted).
    pub fields: Vec<String>,
    /// `args` of /get-dynamic-secret-value (string elements only).
    pub args: Vec<String>,
}

/// A registered auth method, keyed by access id.
#[derive(Clone, Debug)]
pub(crate) enum AuthMethod {
    AccessKey {
        access_key: String,
    },
    K8s {
        config_name: String,
        bound_namespaces: Vec<String>,
        bound_service_accounts: Vec<String>,
        /// `None` accepts any audience.
        audience: Option<String>,
    },
    Jwt {
        bound_subjects: Vec<String>,
    },
    /// `azure_ad`: `cloud-id` = base64 of an ARM token from the emulated Azure AD.
    AzureAd {
        bound_object_ids: Vec<String>,
    },
    /// `universal_identity`: a live `u-` token issued for this access id. `deny_inheritance`
    /// refuses child tokens (`/uid-rotate-token` with `fork`); `deny_rotate` refuses every
    /// `/uid-rotate-token`. `/auth` with the token itself works either way.
    UniversalIdentity {
        deny_inheritance: bool,
        deny_rotate: bool,
    },
    /// `aws_iam`: a signed GetCallerIdentity whose signer's ARN is bound (empty: any).
    AwsIam {
        bound_arns: Vec<String>,
    },
    /// `gcp`: a Google ID token (from the emulated metadata server) for `audience` whose
    /// `email` is bound (empty: any).
    Gcp {
        audience: String,
        bound_service_accounts: Vec<String>,
    },
}

/// A Universal Identity token.
#[derive(Clone, Debug)]
pub(crate) struct UidToken {
    pub access_id: String,
    /// False once rotated (without fork) or revoked.
    pub valid: bool,
}

/// AWS credentials the emulated STS issued (or a registered IAM user's static key).
#[derive(Clone, Debug)]
pub(crate) struct AwsKey {
    pub secret_access_key: String,
    /// Temporary credentials only.
    pub session_token: Option<String>,
    /// The role (or user) ARN these credentials act as.
    pub arn: String,
}

impl AuthMethod {
    pub(crate) fn access_type(&self) -> &'static str {
        match self {
            Self::AccessKey { .. } => "access_key",
            Self::K8s { .. } => "k8s",
            Self::Jwt { .. } => "jwt",
            Self::AzureAd { .. } => "azure_ad",
            Self::UniversalIdentity { .. } => "universal_identity",
            Self::AwsIam { .. } => "aws_iam",
            Self::Gcp { .. } => "gcp",
        }
    }
}

/// Read permission for one access id on a path pattern, optionally limited by namespace
/// sub-claim (how Akeyless role rules with sub-claims behave).
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    access_id: String,
    pattern: String,
    namespaces: Vec<String>,
}

impl Grant {
    fn allows(&self, identity: &Identity, item_name: &str) -> bool {
        self.access_id == identity.access_id
            && pattern_matches(&self.pattern, item_name)
            && (self.namespaces.is_empty()
                || identity
                    .namespace
                    .as_ref()
                    .is_some_and(|ns| self.namespaces.contains(ns)))
    }
}

/// `/*` matches everything, `/a/*` everything under `/a/`, anything else is an exact name.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') => name.starts_with(prefix),
        _ => pattern == name,
    }
}

/// An issued `t-` token.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub identity: Identity,
    pub expires_at: SystemTime,
}

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
    log: VecDeque<RecordedRequest>,
    counts: HashMap<String, usize>,
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
fn account_item_key(account: Option<&str>, name: &str) -> String {
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

struct Shared {
    key: JwtKey,
    data: Mutex<Data>,
}

/// Shared handle to the emulator's state. Cheap to clone; every method takes `&self`.
///
/// Item names are normalized to absolute paths (`foo` and `/foo` are the same item).
#[derive(Clone)]
pub struct EmulatorState {
    shared: Arc<Shared>,
}

impl fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Contents include secrets; show nothing.
        f.debug_struct("EmulatorState").finish_non_exhaustive()
    }
}

impl Default for EmulatorState {
    fn default() -> Self {
        Self::new()
    }
}

impl EmulatorState {
    /// An empty state with a fresh random signing key.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                key: JwtKey::generate(),
                data: Mutex::new(Data::default()),
            }),
        }
    }

    /// Locks the model. Recovers from poisoning: every mutation leaves the model consistent,
    /// so a panic elsewhere must not take the emulator down.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.shared
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn key(&self) -> &JwtKey {
        &self.shared.key
    }

    // --- identities / auth methods ---

    /// Registers (or replaces) an access-key auth method.
    pub fn add_access_key_auth(&self, access_id: &str, access_key: &str) {
        self.add_auth_method(
            access_id,
            AuthMethod::AccessKey {
                access_key: access_key.to_owned(),
            },
        );
    }

    /// Registers a k8s auth method reachable through gateway config `config_name`.
    /// Empty bound lists accept any namespace / service account; any audience is accepted.
    pub fn add_k8s_auth(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
    ) {
        self.add_k8s_auth_inner(
            access_id,
            config_name,
            bound_namespaces,
            bound_service_accounts,
            None,
        );
    }

    /// Like [`add_k8s_auth`](Self::add_k8s_auth), but the token's `aud` must contain `audience`.
    #[cfg(test)]
    pub(crate) fn add_k8s_auth_with_audience(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
        audience: &str,
    ) {
        self.add_k8s_auth_inner(
            access_id,
            config_name,
            bound_namespaces,
            bound_service_accounts,
            Some(audience.to_owned()),
        );
    }

    fn add_k8s_auth_inner(
        &self,
        access_id: &str,
        config_name: &str,
        bound_namespaces: &[&str],
        bound_service_accounts: &[&str],
        audience: Option<String>,
    ) {
        self.add_auth_method(
            access_id,
            AuthMethod::K8s {
                config_name: config_name.to_owned(),
                bound_namespaces: owned(bound_namespaces),
                bound_service_accounts: owned(bound_service_accounts),
                audience,
            },
        );
    }

    /// Registers a JWT auth method verifying tokens from [`issue_jwt`](Self::issue_jwt).
    /// An empty `bound_subjects` accepts any `sub`.
    pub fn add_jwt_auth(&self, access_id: &str, bound_subjects: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::Jwt {
                bound_subjects: owned(bound_subjects),
            },
        );
    }

    /// Registers an `azure_ad` auth method; empty `bound_object_ids` accepts any.
    pub fn add_azure_ad_auth(&self, access_id: &str, bound_object_ids: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::AzureAd {
                bound_object_ids: owned(bound_object_ids),
            },
        );
    }

    /// Registers an app in the emulated Azure AD (at `<emulator>/azure-ad`) with a federated
    /// credential for `namespace/service_account`, as AKS workload identity sets up.
    pub fn add_azure_app(
        &self,
        tenant_id: &str,
        client_id: &str,
        object_id: &str,
        namespace: &str,
        service_account: &str,
    ) {
        self.lock().azure_apps.insert(
            client_id.to_owned(),
            AzureApp {
                tenant_id: tenant_id.to_owned(),
                object_id: object_id.to_owned(),
                subject: format!("system:serviceaccount:{namespace}:{service_account}"),
            },
        );
    }

    /// Assigns a managed identity to the node the emulated Azure IMDS (at
    /// `<emulator>/metadata/identity/oauth2/token`) runs on: the system-assigned one when
    /// `client_id` is `None`, else a user-assigned one.
    pub fn add_azure_node_identity(
        &self,
        tenant_id: &str,
        object_id: &str,
        client_id: Option<&str>,
    ) {
        self.lock().azure_node_identities.push(NodeIdentity {
            tenant_id: tenant_id.to_owned(),
            object_id: object_id.to_owned(),
            client_id: client_id.map(str::to_owned),
        });
    }

    /// Registers a `universal_identity` auth method and returns its first token (`u-…`).
    pub fn add_universal_identity_auth(&self, access_id: &str) -> String {
        self.add_universal_identity_auth_with(access_id, false, false)
    }

    /// The same, with Akeyless's `deny-inheritance` (no child tokens: a `fork` is refused) and
    /// `deny-rotate` (every `/uid-rotate-token` is refused) options of the auth method.
    pub fn add_universal_identity_auth_with(
        &self,
        access_id: &str,
        deny_inheritance: bool,
        deny_rotate: bool,
    ) -> String {
        self.add_auth_method(
            access_id,
            AuthMethod::UniversalIdentity {
                deny_inheritance,
                deny_rotate,
            },
        );
        self.issue_uid_token(access_id)
    }

    /// Issues another Universal Identity token of `access_id` (as `uid-generate-token` does).
    pub(crate) fn issue_uid_token(&self, access_id: &str) -> String {
        let token = format!("u-{}", super::util::random_alphanumeric(24));
        self.lock().uid_tokens.insert(
            token.clone(),
            UidToken {
                access_id: access_id.to_owned(),
                valid: true,
            },
        );
        token
    }

    /// Whether a Universal Identity token is still accepted.
    pub fn uid_token_is_valid(&self, token: &str) -> bool {
        self.lock().uid_tokens.get(token).is_some_and(|t| t.valid)
    }

    /// Revokes one Universal Identity token.
    pub fn revoke_uid_token(&self, token: &str) {
        if let Some(t) = self.lock().uid_tokens.get_mut(token) {
            t.valid = false;
        }
    }

    /// Revokes every Universal Identity token of `access_id` except `keep`.
    pub fn revoke_uid_tokens_except(&self, access_id: &str, keep: &str) {
        for (token, t) in self.lock().uid_tokens.iter_mut() {
            if t.access_id == access_id && token != keep {
                t.valid = false;
            }
        }
    }

    /// How many valid Universal Identity tokens `access_id` has.
    pub fn valid_uid_tokens(&self, access_id: &str) -> usize {
        self.lock()
            .uid_tokens
            .values()
            .filter(|t| t.valid && t.access_id == access_id)
            .count()
    }

    /// Registers an `aws_iam` auth method; empty `bound_arns` accepts any signer.
    pub fn add_aws_iam_auth(&self, access_id: &str, bound_arns: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::AwsIam {
                bound_arns: owned(bound_arns),
            },
        );
    }

    /// Registers an IAM role in the emulated STS (at `<emulator>/aws-sts`) whose trust policy
    /// admits web-identity tokens of `namespace/service_account` for audience `sts.amazonaws.com`.
    pub fn add_aws_role(&self, role_arn: &str, namespace: &str, service_account: &str) {
        self.lock().aws_roles.insert(
            role_arn.to_owned(),
            format!("system:serviceaccount:{namespace}:{service_account}"),
        );
    }

    /// Registers long-lived AWS credentials (an IAM user) acting as `arn`.
    pub fn add_aws_user(&self, access_key_id: &str, secret_access_key: &str, arn: &str) {
        self.lock().aws_keys.insert(
            access_key_id.to_owned(),
            AwsKey {
                secret_access_key: secret_access_key.to_owned(),
                session_token: None,
                arn: arn.to_owned(),
            },
        );
    }

    /// Registers a `gcp` auth method for ID tokens of `audience`; empty
    /// `bound_service_accounts` accepts any.
    pub fn add_gcp_auth(&self, access_id: &str, audience: &str, bound_service_accounts: &[&str]) {
        self.add_auth_method(
            access_id,
            AuthMethod::Gcp {
                audience: audience.to_owned(),
                bound_service_accounts: owned(bound_service_accounts),
            },
        );
    }

    /// The Google service account the emulated metadata server (at
    /// `<emulator>/computeMetadata/v1/...`) issues ID tokens for; none: it answers 404.
    pub fn set_gcp_node_service_account(&self, email: &str) {
        self.lock().gcp_node_account = Some(email.to_owned());
    }

    /// Lets pods of `namespace/service_account`, federated through `provider_audience`, get ID
    /// tokens of the Google service account `gsa_email` from the emulated IAM Credentials
    /// (`roles/iam.workloadIdentityUser` on it). Registers the provider with its default token
    /// audience if it is unknown.
    pub fn allow_gcp_impersonation(
        &self,
        provider_audience: &str,
        namespace: &str,
        service_account: &str,
        gsa_email: &str,
    ) {
        let mut data = self.lock();
        data.gcp_providers
            .entry(provider_audience.to_owned())
            .or_default();
        data.gcp_impersonation.push((
            provider_audience.to_owned(),
            namespace.to_owned(),
            service_account.to_owned(),
            gsa_email.to_owned(),
        ));
    }

    /// Every federated access token and ID token the emulated Google issued (for tests that
    /// check none leaks).
    pub fn gcp_tokens_issued(&self) -> Vec<String> {
        let data = self.lock();
        data.gcp_access_tokens
            .keys()
            .chain(data.gcp_id_tokens.iter())
            .cloned()
            .collect()
    }

    pub(crate) fn add_auth_method(&self, access_id: &str, method: AuthMethod) {
        self.lock()
            .auth_methods
            .insert(access_id.to_owned(), method);
    }

    /// Grants identities of `access_id` read on items matching `path_pattern` (exact name,
    /// a prefix ending in `/*`, or `/*` for all). A non-empty `namespaces` limits the grant to
    /// tokens whose k8s namespace sub-claim is listed.
    pub fn grant_read(&self, access_id: &str, path_pattern: &str, namespaces: &[&str]) {
        self.lock()
            .add_grant(access_id, path_pattern, owned(namespaces));
    }

    /// Mints a pod-bound service-account JWT as the cluster's issuer would, signed with the
    /// emulator's key (k8s auth verifies signature, expiry and, if configured, audience).
    pub fn issue_service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod_name: &str,
        pod_uid: &str,
        audience: &str,
        ttl: Duration,
    ) -> String {
        let spec = ServiceAccountToken {
            namespace,
            service_account,
            pod_name,
            pod_uid,
            audience,
            ttl,
        };
        self.key().sign(&spec.claims(SystemTime::now()))
    }

    /// Signs arbitrary claims with the emulator's key (for `jwt` auth; include `sub` and `exp`).
    pub(crate) fn issue_jwt(&self, claims: Value) -> String {
        self.key().sign(&claims)
    }

    /// Lifetime of `t-` tokens issued by /auth from now on (default 1h).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.lock().token_ttl = ttl;
    }

    /// Forgets every issued token; their next use answers 401.
    /// Whether `/auth` answers carry `expiration` besides `creds.expiry` (default true). Off, the
    /// answer has only the fields of the published schema.
    pub fn set_auth_expiration_field(&self, send: bool) {
        self.lock().auth_expiration_field = send;
    }

    /// Whether `/describe-item` answers a missing item with 200 and an empty object (as some
    /// gateways do) instead of 404.
    pub fn set_describe_missing_as_empty(&self, empty: bool) {
        self.lock().describe_missing_as_empty = empty;
    }

    /// How many calls presented a `t-` token after it expired.
    pub fn expired_token_presentations(&self) -> usize {
        self.lock().expired_token_presentations
    }

    pub fn revoke_all_tokens(&self) {
        self.lock().sessions.clear();
    }

    // --- items ---

    /// Creates the static secret or appends a version; returns the new version (1-based).
    pub fn put_static_secret(&self, name: &str, value: &str) -> u32 {
        self.lock()
            .append_version(name, StoredValue::Static(value.to_owned()))
    }

    /// Creates the rotated secret or appends a version whose value is e.g.
    /// `{"username": .., "password": ..}`; returns the new version.
    pub fn put_rotated_secret(&self, name: &str, value: Value) -> u32 {
        self.lock()
            .append_version(name, StoredValue::Rotated(value))
    }

    /// Creates the certificate item or appends a version; returns the new version.
    pub fn put_certificate(
        &self,
        name: &str,
        certificate_pem: &str,
        private_key_pem: Option<&str>,
    ) -> u32 {
        self.lock().append_version(
            name,
            StoredValue::Certificate {
                certificate_pem: certificate_pem.to_owned(),
                private_key_pem: private_key_pem.map(str::to_owned),
            },
        )
    }

    /// Creates (or replaces) a dynamic secret. Every fetch returns `template` with each string
    /// field named `password`, `token` or `secret` (at any depth) replaced by a fresh random
    /// value, plus `"id": "tmp.<random>"` and `"ttl_in_minutes": "<ttl>"`.
    pub fn put_dynamic_secret(&self, name: &str, template: Value, ttl: Duration) {
        self.lock().insert_item(
            normalize_name(name),
            ItemBody::Dynamic { template, ttl },
            SystemTime::now(),
        );
    }

    /// Creates (or replaces) a PKI certificate issuer with a fresh CA that signs CSRs for at
    /// most `max_ttl`. Returns the CA certificate (PEM).
    pub fn put_pki_issuer(&self, name: &str, max_ttl: Duration) -> String {
        let (ca_cert_pem, ca_key_pem) = super::pki::new_ca(name);
        self.lock().insert_item(
            normalize_name(name),
            ItemBody::PkiIssuer {
                ca_cert_pem: ca_cert_pem.clone(),
                ca_key_pem,
                max_ttl,
            },
            SystemTime::now(),
        );
        ca_cert_pem
    }

    /// Puts `access_id` in `account` (not the default one): it sees only that account's items,
    /// stored with the `*_in` methods.
    pub fn set_account(&self, access_id: &str, account: &str) {
        self.lock()
            .accounts
            .insert(access_id.to_owned(), account.to_owned());
    }

    /// [`put_static_secret`](Self::put_static_secret) in `account`.
    pub fn put_static_secret_in(&self, account: &str, name: &str, value: &str) -> u32 {
        let key = account_item_key(Some(account), &normalize_name(name));
        self.lock()
            .append_version(&key, StoredValue::Static(value.to_owned()))
    }

    /// [`put_rotated_secret`](Self::put_rotated_secret) in `account`.
    pub fn put_rotated_secret_in(&self, account: &str, name: &str, value: Value) -> u32 {
        let key = account_item_key(Some(account), &normalize_name(name));
        self.lock()
            .append_version(&key, StoredValue::Rotated(value))
    }

    /// Deletes the item and all its versions (no-op if absent).
    pub fn delete_item(&self, name: &str) {
        self.lock().items.remove(&normalize_name(name));
    }

    // --- fault injection ---

    /// The next `count` calls to `path` (e.g. `/get-secret-value`, or `*` for any API path)
    /// answer `status` with an `{"error": ...}` body.
    pub fn fail_next(&self, path: &str, status: u16, count: usize) {
        self.push_fault(
            path,
            FaultAction::Fail {
                status,
                retry_after_secs: None,
            },
            count,
        );
    }

    /// Like [`fail_next`](Self::fail_next), with a `Retry-After: <secs>` header.
    pub fn fail_next_with_retry_after(
        &self,
        path: &str,
        status: u16,
        count: usize,
        retry_after_secs: u64,
    ) {
        self.push_fault(
            path,
            FaultAction::Fail {
                status,
                retry_after_secs: Some(retry_after_secs),
            },
            count,
        );
    }

    /// Every API call answers 429 for `window` from now (with `Retry-After: <secs>` when
    /// given), as Akeyless does while an account is over its rate limit.
    pub fn throttle_for(&self, window: Duration, retry_after_secs: Option<u64>) {
        let now = std::time::Instant::now();
        let until = now.checked_add(window).unwrap_or(now);
        self.lock().faults.throttle_until(until, retry_after_secs);
    }

    /// Calls to every API path since the last [`clear_requests`](Self::clear_requests).
    pub fn total_count(&self) -> usize {
        self.lock().counts.values().sum()
    }

    /// Calls to every API path, by path, since the last [`clear_requests`](Self::clear_requests).
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = self
            .lock()
            .counts
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        counts.sort();
        counts
    }

    /// The next `count` calls to `path` get their connection closed without any response.
    pub fn drop_next(&self, path: &str, count: usize) {
        self.push_fault(path, FaultAction::Drop, count);
    }

    fn push_fault(&self, path: &str, action: FaultAction, count: usize) {
        self.lock().faults.push(path, action, count);
    }

    /// Delays every call to `path` (or `*`) by `delay` before it is handled (and before any
    /// queued fault fires). `Duration::ZERO` clears it.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        self.lock().faults.set_delay(path, delay);
    }

    /// Removes all queued faults and delays.
    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    // --- request log ---

    /// Recorded API calls, oldest first (the last 100 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.iter().cloned().collect()
    }

    /// Clears the request log and the per-path counters.
    pub(crate) fn clear_requests(&self) {
        let mut data = self.lock();
        data.log.clear();
        data.counts.clear();
    }

    /// Number of calls to `path` since the last [`clear_requests`](Self::clear_requests).
    pub fn count(&self, path: &str) -> usize {
        self.lock().counts.get(path).copied().unwrap_or(0)
    }
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// An app (or user-assigned managed identity) with a federated credential for one service account.
#[derive(Clone, Debug)]
pub(crate) struct AzureApp {
    pub tenant_id: String,
    pub object_id: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
}

/// A managed identity assigned to the emulated node.
#[derive(Clone, Debug)]
pub(crate) struct NodeIdentity {
    pub tenant_id: String,
    pub object_id: String,
    /// `None`: the system-assigned identity.
    pub client_id: Option<String>,
}

/// The principal a federated access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct GcpPrincipal {
    pub provider: String,
    pub namespace: String,
    pub service_account: String,
    pub expires_at: SystemTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::ItemType;
    use serde_json::json;

    #[test]
    fn patterns() {
        assert!(pattern_matches("/*", "/a/b"));
        assert!(pattern_matches("/a/*", "/a/b/c"));
        assert!(!pattern_matches("/a/*", "/ab"));
        assert!(pattern_matches("/a/b", "/a/b"));
        assert!(!pattern_matches("/a/b", "/a/b/c"));
        // A `*` not preceded by `/` is literal.
        assert!(!pattern_matches("/a*", "/ab"));
    }

    #[test]
    fn grants_respect_namespaces() {
        let state = EmulatorState::new();
        state.grant_read("p-1", "/team/*", &["ns-a"]);
        let mut id = Identity::access_key("p-1");
        let data = state.lock();
        assert!(!data.can_read(&id, "/team/x"));
        id.namespace = Some("ns-a".into());
        assert!(data.can_read(&id, "/team/x"));
        id.namespace = Some("ns-b".into());
        assert!(!data.can_read(&id, "/team/x"));
        id.access_id = "p-2".into();
        id.namespace = Some("ns-a".into());
        assert!(!data.can_read(&id, "/team/x"));
    }

    #[test]
    fn versions_append_and_type_change_replaces() {
        let state = EmulatorState::new();
        assert_eq!(state.put_static_secret("s", "v1"), 1);
        assert_eq!(state.put_static_secret("/s", "v2"), 2);
        {
            let data = state.lock();
            let item = &data.items["/s"];
            assert_eq!(item.last_version(), 2);
            assert!(
                matches!(item.version(0).unwrap().value, StoredValue::Static(ref v) if v == "v2")
            );
            assert!(
                matches!(item.version(1).unwrap().value, StoredValue::Static(ref v) if v == "v1")
            );
            assert!(item.version(3).is_none());
        }
        assert_eq!(state.put_rotated_secret("/s", json!({"password": "p"})), 1);
        assert_eq!(
            state.lock().items["/s"].item_type(),
            ItemType::RotatedSecret
        );
        state.delete_item("s");
        assert!(state.lock().items.is_empty());
    }
}
