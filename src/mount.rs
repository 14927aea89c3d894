//! The mount pipeline: one typed request in, files and versions out. Both front doors (the
//! driver's socket and, later, the sync controller) call [`mount`].
//!
//! request → spec (+ credentials) → identity and token → type look-up → plan → fetch → render

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::akeyless::{
    AkeylessClient, AkeylessToken, AuthCredential, BackendError, BackendPolicy, ClientFactory,
};
use crate::cache::{
    BoundedMap, Coalescer, LeaseCache, LeaseKey, TypeCache, renew_at, reported_lease,
};
use crate::certs::{self, CertificateMaterial};
use crate::cloud::CloudOptions;
use crate::error::{ErrorCode, MountError};
use crate::identity::{self, FingerprintKey, TokenKey, UidChainKey, UidChains};
use crate::plan::{self, FetchPlan, Read};
use crate::render::{Fetched, Rendered, VersionKey};
use crate::request::MountRequest;
use crate::secret::{ExposeSecret, SecretString};
use crate::spec::{
    self, AccessType, Credential, Credentials, ItemType, ObjectSpec, SecretProviderSpec,
    SpecDefaults, UidRotation,
};

/// Most single reads in flight at once for one mount.
const READ_CONCURRENCY: usize = 8;

/// Most type look-ups in flight at once for one mount (each is shared with the other mounts of
/// the account that need it, so a node restart asks for each item once).
const DESCRIBE_CONCURRENCY: usize = 16;

/// Settings of the state that outlives a mount.
#[derive(Clone, Debug)]
pub struct CacheSettings {
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

/// State shared by all mounts: defaults, HTTP clients, the version key and caches. Owned by the
/// server and passed in explicitly (no globals).
pub struct ProviderContext {
    pub defaults: SpecDefaults,
    pub clients: ClientFactory,
    pub version_key: VersionKey,
    pub types: TypeCache,
    /// Dynamic-secret credentials per pod, until two-thirds of the lease has passed.
    pub dynamic_leases: LeaseCache<LeaseKey, SecretString>,
    /// PKI certificates per pod, until two-thirds of their lifetime has passed.
    pub pki_leases: LeaseCache<LeaseKey, CertificateMaterial>,
    pub dynamic_default_ttl: Duration,
    /// Akeyless tokens by identity (see [`identity`]), until shortly before they expire.
    pub tokens: LeaseCache<TokenKey, AkeylessToken>,
    pub fingerprints: FingerprintKey,
    /// Rotated Universal Identity tokens, per chain (identity and init token).
    pub uid_chains: UidChains,
    /// Cloud endpoints and the opted-in provider identities.
    pub cloud: CloudOptions,
    /// Identical reads of one identity share a request (and a value, within the TTL).
    pub reads: Coalescer<(TokenKey, ReadKey), CachedRead>,
    /// Tokens that were denied a mount's items while fresh, by identity and a keyed
    /// fingerprint of (token, items). A cached token's later denial of the same items is then
    /// final: the item is denied, not the token, and a new login would only cost an `/auth`
    /// on every rotation poll.
    pub confirmed_denials: BoundedMap<(TokenKey, [u8; 32]), ()>,
    pub backend: BackendPolicy,
    /// How `jq` filters are evaluated, and the file cap (see [`crate::eval`]). In process after
    /// `new` (tests, benches); `cli::provider_context` sets worker processes.
    pub evaluator: crate::eval::Evaluator,
}

/// What a coalesced read fetched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadKey {
    Batch {
        names: Vec<String>,
        version: Option<u32>,
    },
    Single(Read),
}

#[derive(Clone)]
pub enum CachedRead {
    Batch(Vec<(String, SecretString)>),
    Single(Fetched),
}

impl ProviderContext {
    /// Records backend calls, retries and the auth cache into `metrics`, and backend
    /// reachability into `health` (the server's instances, served on /metrics and /readyz).
    pub fn with_telemetry(
        mut self,
        metrics: crate::telemetry::Metrics,
        health: crate::telemetry::BackendHealth,
    ) -> Self {
        self.backend.metrics = metrics;
        self.backend.health = health;
        self
    }

    /// Cloud endpoints and opted-in provider identities (`--aws-…`, `--gcp-…`).
    pub fn with_cloud(mut self, cloud: CloudOptions) -> Self {
        self.cloud = cloud;
        self
    }

    pub fn new(
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

/// Labels of the objects that read `item`, for messages about a backend call on that item.
fn labels_for(objects: &[ObjectSpec], item: &str) -> String {
    let labels: Vec<String> = objects
        .iter()
        .filter(|o| o.secret_path == item)
        .map(ObjectSpec::label)
        .collect();
    if labels.is_empty() {
        format!("item {item}")
    } else {
        labels.join(", ")
    }
}

const REDIRECT_HINT: &str = "the provider never follows redirects: set akeylessGatewayURL to \
                             the URL that answers directly";
const REDIRECT_HINT_AUTH: &str = "; the provider never follows redirects: set akeylessGatewayURL \
                                  to the URL that answers directly";

/// Turns a backend failure on an item into the public error, naming the object(s).
fn item_error(who: &str, e: BackendError) -> MountError {
    if e.status().is_some_and(|s| (300..400).contains(&s)) {
        return MountError::new(e.code(), format!("{who}: {e}; {REDIRECT_HINT}"));
    }
    let hint = match e.code() {
        ErrorCode::NotFound => "no such item in Akeyless; check secretPath",
        ErrorCode::PermissionDenied => {
            "access denied; the authenticated identity's role needs read permission on this item"
        }
        ErrorCode::Throttled => "Akeyless is throttling requests; the driver will retry",
        ErrorCode::BackendUnavailable => "Akeyless is unavailable",
        ErrorCode::Timeout => "Akeyless did not answer in time",
        ErrorCode::InvalidConfig => "Akeyless rejected the request (is type right for this item?)",
        _ => "reading the item failed",
    };
    MountError::new(e.code(), format!("{who}: {hint} ({e})"))
}

fn auth_error(spec: &SecretProviderSpec, creds: &Credentials, e: BackendError) -> MountError {
    let auth = &spec.auth;
    let mut what = format!(
        "authentication to Akeyless as access ID {} (access type {})",
        creds.access_id, auth.access_type
    );
    if let Some(conf) = &auth.k8s_auth_config_name
        && auth.access_type == AccessType::Kubernetes
    {
        what.push_str(&format!(", gateway auth config {conf:?}"));
    }
    if let Credential::PodToken { audience, .. } = &creds.credential {
        what.push_str(&format!(", pod token audience {audience:?}"));
    }
    let hint = match (e.code(), auth.access_type) {
        _ if matches!(e.status(), Some(404 | 405)) => {
            "; there is no Akeyless /auth at this URL: check akeylessGatewayURL (a gateway serves \
             the API under /api/v2, e.g. https://gateway.example.com:8000/api/v2)"
        }
        _ if e.status().is_some_and(|s| (300..400).contains(&s)) => REDIRECT_HINT_AUTH,
        (ErrorCode::AuthFailed, AccessType::Kubernetes) => {
            "; check that the auth method binds this pod's namespace and service account, and that \
             the gateway's Kubernetes auth config trusts this cluster"
        }
        (ErrorCode::AuthFailed, AccessType::AccessKey) => "; check the access ID and access key",
        (ErrorCode::AuthFailed, AccessType::UniversalIdentity) => {
            "; the Universal Identity token in the nodePublishSecretRef key akeylessUIDInitToken is \
             expired, revoked or not of this access ID: create a new one (akeyless uid-generate-token) \
             and update the Secret"
        }
        (ErrorCode::AuthFailed, AccessType::AwsIam) => {
            "; check that the Akeyless aws_iam auth method binds the role (or account) that signed"
        }
        (ErrorCode::AuthFailed, AccessType::Gcp) => {
            "; check that the Akeyless gcp auth method binds this Google service account and audience"
        }
        (ErrorCode::AuthFailed, _) => "; check the access ID and the auth method's bound claims",
        _ => "",
    };
    MountError::new(e.code(), format!("{what} failed: {e}{hint}"))
}

/// A cloud identity exchange, bounded by the mount's deadline, its failure named for the user.
async fn cloud_step<T, E: std::fmt::Display>(
    client: &AkeylessClient,
    creds: &Credentials,
    what: AccessType,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, MountError> {
    match client.within_deadline(work).await {
        Some(result) => result.map_err(|e| cloud_error(creds, what, e)),
        None => Err(MountError::new(
            ErrorCode::Timeout,
            format!(
                "authentication as access ID {} (access type {what}): the cloud identity exchange \
                 did not finish before the mount's deadline",
                creds.access_id
            ),
        )),
    }
}

/// Fails the login of access type `what` with a cloud exchange's message.
fn cloud_error(creds: &Credentials, what: AccessType, e: impl std::fmt::Display) -> MountError {
    MountError::new(
        ErrorCode::AuthFailed,
        format!(
            "authentication as access ID {} (access type {what}) failed: {e}",
            creds.access_id
        ),
    )
}

async fn authenticate(
    ctx: &ProviderContext,
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    pod: &crate::request::PodIdentity,
) -> Result<AkeylessToken, MountError> {
    let auth = &spec.auth;
    let login = |credential| login_with(client, spec, creds, credential);
    match (&creds.credential, auth.access_type) {
        (Credential::AccessKey(key), _) => login(AuthCredential::AccessKey(key)).await,
        (Credential::UidToken(init), _) => uid_login(ctx, client, spec, creds, init).await,
        (Credential::PodToken { token, .. }, AccessType::Kubernetes) => {
            login(AuthCredential::Kubernetes {
                config_name: auth.k8s_auth_config_name.as_deref().unwrap_or_default(),
                service_account_token: token,
            })
            .await
        }
        (Credential::PodToken { token, .. }, AccessType::AzureAd) => {
            // Azure AD first turns the pod's token into an ARM token (the pod's identity, not ours).
            let azure = auth.azure.as_ref().ok_or_else(|| {
                MountError::internal("azure_ad without its workload identity settings")
            })?;
            let cloud_id = cloud_step(
                client,
                creds,
                AccessType::AzureAd,
                crate::cloud::azure::cloud_id(client.http(), azure, token),
            )
            .await?;
            login(AuthCredential::AzureAd {
                cloud_id: &cloud_id,
            })
            .await
        }
        (credential, AccessType::AwsIam) => {
            let aws = auth
                .aws
                .as_ref()
                .ok_or_else(|| MountError::internal("aws_iam without its settings"))?;
            let aws_credentials = match (credential, &aws.role_arn) {
                (Credential::PodToken { token, .. }, Some(role_arn)) => {
                    let endpoint = ctx
                        .cloud
                        .aws_sts_endpoint
                        .clone()
                        .unwrap_or_else(|| crate::cloud::aws::sts_url(&aws.region));
                    let session = crate::cloud::aws::session_name(
                        pod.namespace.as_deref(),
                        pod.name.as_deref(),
                    );
                    cloud_step(
                        client,
                        creds,
                        AccessType::AwsIam,
                        crate::cloud::aws::assume_role_with_web_identity(
                            client.http(),
                            &endpoint,
                            role_arn,
                            &session,
                            token,
                        ),
                    )
                    .await?
                }
                (Credential::ProviderIdentity, None) => {
                    ctx.cloud.aws_provider_credentials.clone().ok_or_else(|| {
                        MountError::invalid(spec::ProviderIdentityFlag::Aws.refusal())
                    })?
                }
                _ => return Err(MountError::internal("aws_iam credential mismatch")),
            };
            let cloud_id =
                crate::cloud::aws::cloud_id(&aws_credentials, &aws.region, SystemTime::now());
            login(AuthCredential::AwsIam {
                cloud_id: &cloud_id,
            })
            .await
        }
        (Credential::PodToken { token, audience }, AccessType::Gcp) => {
            // Workload identity: the pod's token becomes an ID token of the Google service
            // account the pod may impersonate (the pod's identity, not ours).
            let wi = auth.gcp.as_ref().ok_or_else(|| {
                MountError::internal("gcp without its workload identity settings")
            })?;
            let cloud_id = cloud_step(
                client,
                creds,
                AccessType::Gcp,
                crate::cloud::gcp::pod_cloud_id(
                    client.http(),
                    &ctx.cloud.google,
                    wi,
                    audience,
                    auth.gcp_id_audience(),
                    token,
                ),
            )
            .await?;
            login(AuthCredential::Gcp {
                cloud_id: &cloud_id,
            })
            .await
        }
        (Credential::ProviderIdentity, AccessType::Gcp) => {
            let url =
                ctx.cloud.gcp_metadata_url.as_deref().ok_or_else(|| {
                    MountError::invalid(spec::ProviderIdentityFlag::Gcp.refusal())
                })?;
            let cloud_id = cloud_step(
                client,
                creds,
                AccessType::Gcp,
                crate::cloud::gcp::cloud_id(client.http(), url, auth.gcp_id_audience()),
            )
            .await?;
            login(AuthCredential::Gcp {
                cloud_id: &cloud_id,
            })
            .await
        }
        (Credential::ProviderIdentity, AccessType::AzureAd) => {
            // The node's managed identity (opt-in): only toward --akeyless-url (the spec was
            // bound to the operator), for the operator's resource.
            let imds =
                ctx.cloud.azure_imds.as_ref().ok_or_else(|| {
                    MountError::invalid(spec::ProviderIdentityFlag::Azure.refusal())
                })?;
            let cloud_id = cloud_step(
                client,
                creds,
                AccessType::AzureAd,
                crate::cloud::azure::node_cloud_id(
                    client.http(),
                    imds,
                    auth.azure_object_id.as_deref(),
                ),
            )
            .await?;
            login(AuthCredential::AzureAd {
                cloud_id: &cloud_id,
            })
            .await
        }
        (Credential::PodToken { token, .. }, _) => login(AuthCredential::Jwt(token)).await,
        (Credential::ProviderIdentity, _) => {
            Err(MountError::internal("no credential for this access type"))
        }
    }
}

async fn login_with(
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    credential: AuthCredential<'_>,
) -> Result<AkeylessToken, MountError> {
    client
        .authenticate(&creds.access_id, credential)
        .await
        .map_err(|e| auth_error(spec, creds, e))
}

/// Universal Identity. By default (`akeylessUIDRotation: none`) `/auth` gets the presented
/// token as it is, like every other Akeyless client: this works for every auth method,
/// including those that deny child tokens (`deny-inheritance`) or rotation (`deny-rotate`).
///
/// With `akeylessUIDRotation: fork` it continues this identity's rotation chain and logs in
/// with its newest token. The first login forks a child token from the init token in the
/// Secret (`fork`), so the Secret's token stays valid for other nodes and after a restart;
/// later logins rotate the child, which Akeyless then replaces. When the remembered child is
/// refused (it expired while unused, or was revoked), the chain starts again from the init
/// token.
async fn uid_login(
    ctx: &ProviderContext,
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    init: &SecretString,
) -> Result<AkeylessToken, MountError> {
    match spec.auth.uid_rotation {
        UidRotation::None => client
            .authenticate(&creds.access_id, AuthCredential::UniversalIdentity(init))
            .await
            .map_err(|e| auth_error(spec, creds, e)),
        UidRotation::Fork => uid_chain_login(ctx, client, spec, creds, init).await,
    }
}

/// `akeylessUIDRotation: fork`: see [`uid_login`].
async fn uid_chain_login(
    ctx: &ProviderContext,
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    init: &SecretString,
) -> Result<AkeylessToken, MountError> {
    let key = UidChainKey::new(
        &ctx.fingerprints,
        &spec.connection.gateways,
        &creds.access_id,
        init,
    );
    let chain = ctx.uid_chains.chain(&key);
    let mut held = chain.lock().await;
    let rotated = match held.as_ref() {
        Some(current) => match client.rotate_uid_token(current, false).await {
            Ok(next) => Some(next),
            Err(e) if e.code() == ErrorCode::AuthFailed => {
                tracing::info!(
                    access_id = %creds.access_id,
                    "the remembered Universal Identity token was refused; starting again from the init token"
                );
                *held = None;
                None
            }
            Err(e) => return Err(auth_error(spec, creds, e)),
        },
        None => None,
    };
    let next = match rotated {
        Some(next) => next,
        None => client
            .rotate_uid_token(init, true)
            .await
            .map_err(|e| auth_error(spec, creds, e))?,
    };
    *held = Some(SecretString::from(next.expose_secret().to_string()));
    drop(held);
    client
        .authenticate(&creds.access_id, AuthCredential::UniversalIdentity(&next))
        .await
        .map_err(|e| auth_error(spec, creds, e))
}

/// Looks up the type of every item in `items` (describe-item), a few at a time, each shared
/// with the other mounts of this account looking it up at the same time (and remembered).
async fn describe_items(
    types: &TypeCache,
    client: &AkeylessClient,
    token: &AkeylessToken,
    spec: &SecretProviderSpec,
    access_id: &str,
    items: Vec<String>,
) -> Result<Vec<(String, ItemType)>, MountError> {
    let objects = &spec.objects;
    let gateways = &spec.connection.gateways;
    stream::iter(items)
        .map(|item| async move {
            let timed_out = || {
                MountError::new(
                    ErrorCode::Timeout,
                    format!(
                        "{}: another mount's look-up of the item's type did not finish before \
                         this mount's deadline; Akeyless is slow or throttling",
                        labels_for(objects, &item)
                    ),
                )
            };
            let describe = || async {
                let described = client
                    .describe_item(token, &item)
                    .await
                    .map_err(|e| item_error(&labels_for(objects, &item), e))?;
                // An answer without an item type is how Akeyless says there is no such item
                // (the existing Akeyless provider reads it that way too): NotFound, not a bad
                // type.
                let Some(raw) = described.item_type.filter(|t| !t.trim().is_empty()) else {
                    return Err(MountError::new(
                        ErrorCode::NotFound,
                        format!(
                            "{}: no such item in Akeyless (describe-item answered without an \
                             item); check secretPath",
                            labels_for(objects, &item)
                        ),
                    ));
                };
                ItemType::from_akeyless(&raw).ok_or_else(|| {
                    // The type text comes from the gateway: bounded and scrubbed before it is
                    // shown.
                    MountError::invalid(format!(
                        "{}: Akeyless item type {:?} cannot be mounted; supported types: {}",
                        labels_for(objects, &item),
                        crate::akeyless::scrub(&raw),
                        ItemType::ACCEPTED
                    ))
                })
            };
            let deadline = client.deadline().map(|d| (d, timed_out));
            let t = types
                .describe_once(gateways, access_id, &item, deadline, describe)
                .await?;
            Ok::<_, MountError>((item, t))
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await
}

/// Reads one batch of static secrets. When a multi-item batch is refused (404, or 401/403 with
/// a freshly issued token), the items are read one by one to find and name the culprit: a few
/// extra calls, only on failure. A cached token's 401 is left to the re-login instead.
async fn fetch_static_batch(
    client: &AkeylessClient,
    token: &AkeylessToken,
    token_cached: bool,
    objects: &[ObjectSpec],
    names: &[String],
    version: Option<u32>,
) -> Result<Vec<(String, SecretString)>, MountError> {
    let narrow = |status: Option<u16>| match status {
        Some(404) => true,
        Some(401 | 403) => !token_cached,
        _ => false,
    };
    match client.get_secret_values(token, names, version).await {
        Ok(values) => Ok(values),
        Err(e) if names.len() > 1 && narrow(e.status()) => {
            for name in names {
                if let Err(single) = client
                    .get_secret_values(token, std::slice::from_ref(name), version)
                    .await
                {
                    return Err(item_error(&labels_for(objects, name), single));
                }
            }
            let all: Vec<String> = names.iter().map(|n| labels_for(objects, n)).collect();
            Err(item_error(&all.join(", "), e))
        }
        Err(e) => {
            let all: Vec<String> = names.iter().map(|n| labels_for(objects, n)).collect();
            Err(item_error(&all.join(", "), e))
        }
    }
}

/// Everything one mount needs to read values, bundled to keep signatures short.
struct Reader<'a> {
    ctx: &'a ProviderContext,
    /// Coalescing key of this identity; `None` when reads must not be shared.
    identity: Option<&'a TokenKey>,
    /// Whether the token came from the cache (a 401 then likely means the token, not the item).
    token_cached: bool,
    client: &'a AkeylessClient,
    token: &'a AkeylessToken,
    spec: &'a SecretProviderSpec,
    access_id: &'a str,
    pod_uid: Option<&'a str>,
    now: SystemTime,
}

impl Reader<'_> {
    fn lease_key(&self, pod_uid: &str, item: &str, request: Vec<String>) -> LeaseKey {
        LeaseKey {
            pod_uid: pod_uid.to_string(),
            gateways: self.spec.connection.gateways.clone(),
            access_id: self.access_id.to_string(),
            item: item.to_string(),
            request,
        }
    }

    async fn dynamic(&self, name: &str, args: &[String]) -> Result<SecretString, MountError> {
        let objects = &self.spec.objects;
        let ttl_override = objects
            .iter()
            .filter(|o| o.secret_path == name && o.args == args)
            .find_map(|o| o.ttl);
        let fetch = || async {
            let value = self
                .client
                .get_dynamic_secret_value(self.token, name, args)
                .await
                .map_err(|e| item_error(&labels_for(objects, name), e))?;
            let lease = reported_lease(&value)
                .or(ttl_override)
                .unwrap_or(self.ctx.dynamic_default_ttl);
            Ok::<_, MountError>((value, renew_at(self.now, lease)))
        };
        match self.pod_uid {
            Some(uid) => {
                let key = self.lease_key(uid, name, args.to_vec());
                let (value, _) = self
                    .ctx
                    .dynamic_leases
                    .get_or_fetch(&key, self.now, fetch)
                    .await?;
                Ok(value)
            }
            // Without podInfoOnMount there is no pod to tie a lease to: every mount mints anew.
            None => fetch().await.map(|(v, _)| v),
        }
    }

    async fn pki(
        &self,
        issuer: &str,
        options: &spec::PkiOptions,
        ttl_seconds: Option<u64>,
    ) -> Result<CertificateMaterial, MountError> {
        let objects = &self.spec.objects;
        let fetch = || async {
            let request = certs::new_certificate_request(options).map_err(|why| {
                MountError::invalid(format!("{}: {why}", labels_for(objects, issuer)))
            })?;
            let issued = self
                .client
                .get_pki_certificate(self.token, issuer, &request.csr_pem, ttl_seconds)
                .await
                .map_err(|e| item_error(&labels_for(objects, issuer), e))?;
            let material = CertificateMaterial {
                certificate_pem: issued.certificate_pem,
                issuer_pem: issued.issuer_pem,
                private_key_pem: Some(request.private_key_pem),
            };
            let leaf = rustls_pki_types::pem::PemObject::pem_slice_iter(
                material.certificate_pem.as_bytes(),
            )
            .next()
            .and_then(Result::ok)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c);
            let renew_at = match leaf.map(|c| certs::validity(&c)) {
                Some(Ok((not_before, not_after))) => certs::renewal_time(not_before, not_after),
                _ => {
                    return Err(MountError::new(
                        ErrorCode::BackendUnavailable,
                        format!(
                            "{}: the issued certificate cannot be parsed",
                            labels_for(objects, issuer)
                        ),
                    ));
                }
            };
            Ok::<_, MountError>((material, renew_at))
        };
        match self.pod_uid {
            Some(uid) => {
                let mut request = vec![format!("{options:?}")];
                request.extend(ttl_seconds.map(|t| t.to_string()));
                let key = self.lease_key(uid, issuer, request);
                let (material, _) = self
                    .ctx
                    .pki_leases
                    .get_or_fetch(&key, self.now, fetch)
                    .await?;
                Ok(material)
            }
            None => fetch().await.map(|(m, _)| m),
        }
    }

    async fn single(&self, read: &Read) -> Result<Fetched, MountError> {
        let objects = &self.spec.objects;
        let (client, token) = (self.client, self.token);
        match read {
            Read::Static { .. } => Err(MountError::internal("static reads are batched")),
            Read::Rotated { name, version } => client
                .get_rotated_secret_value(token, name, *version)
                .await
                .map(Fetched::Text)
                .map_err(|e| item_error(&labels_for(objects, name), e)),
            Read::Certificate { name, version } => client
                .get_certificate_value(token, name, *version)
                .await
                .map(|c| {
                    Fetched::Certificate(CertificateMaterial {
                        certificate_pem: c.certificate_pem,
                        issuer_pem: None,
                        private_key_pem: c.private_key_pem,
                    })
                })
                .map_err(|e| item_error(&labels_for(objects, name), e)),
            Read::Dynamic { name, args } => self.dynamic(name, args).await.map(Fetched::Text),
            Read::Pki {
                issuer,
                options,
                ttl_seconds,
            } => self
                .pki(issuer, options, *ttl_seconds)
                .await
                .map(Fetched::Certificate),
        }
    }

    /// Runs `fetch` through the coalescer when this identity may share reads.
    async fn coalesced<F, Fut>(&self, key: ReadKey, fetch: F) -> Result<CachedRead, MountError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CachedRead, MountError>>,
    {
        let timed_out = || {
            MountError::new(
                ErrorCode::Timeout,
                "another mount's identical read did not finish before this mount's deadline; \
                 Akeyless is slow or throttling",
            )
        };
        match self.identity {
            Some(identity) => Ok(self
                .ctx
                .reads
                .get_or_fetch_within(
                    &(identity.clone(), key),
                    self.client.deadline().map(|d| (d, timed_out)),
                    fetch,
                )
                .await?
                .0),
            None => fetch().await,
        }
    }

    async fn batch(
        &self,
        names: &[String],
        version: Option<u32>,
    ) -> Result<Vec<(String, SecretString)>, MountError> {
        let key = ReadKey::Batch {
            names: names.to_vec(),
            version,
        };
        let objects = &self.spec.objects;
        let read = self
            .coalesced(key, || async {
                fetch_static_batch(
                    self.client,
                    self.token,
                    self.token_cached,
                    objects,
                    names,
                    version,
                )
                .await
                .map(CachedRead::Batch)
            })
            .await?;
        match read {
            CachedRead::Batch(values) => Ok(values),
            CachedRead::Single(_) => Err(MountError::internal("coalesced read of the wrong kind")),
        }
    }

    async fn shared_single(&self, read: &Read) -> Result<Fetched, MountError> {
        // Dynamic and PKI values are per pod (leases), never shared between pods.
        if matches!(read, Read::Dynamic { .. } | Read::Pki { .. }) {
            return self.single(read).await;
        }
        let cached = self
            .coalesced(ReadKey::Single(read.clone()), || async {
                self.single(read).await.map(CachedRead::Single)
            })
            .await?;
        match cached {
            CachedRead::Single(value) => Ok(value),
            CachedRead::Batch(_) => Err(MountError::internal("coalesced read of the wrong kind")),
        }
    }

    async fn fetch(&self, plan: &FetchPlan) -> Result<HashMap<Read, Fetched>, MountError> {
        let batches = plan.static_batches.iter().map(|batch| async move {
            let values = self.batch(&batch.names, batch.version).await?;
            Ok::<_, MountError>(
                values
                    .into_iter()
                    .map(|(name, value)| {
                        (
                            Read::Static {
                                name,
                                version: batch.version,
                            },
                            Fetched::Text(value),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let singles = stream::iter(plan.singles.iter().cloned())
            .map(|read| async move {
                let value = self.shared_single(&read).await?;
                Ok::<_, MountError>((read, value))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect::<Vec<_>>();
        let (batched, singles) =
            futures_util::future::try_join(futures_util::future::try_join_all(batches), singles)
                .await?;
        Ok(batched.into_iter().flatten().chain(singles).collect())
    }
}

/// Longest a mount may take when the caller gives no deadline.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(110);

/// Performs one mount with the default deadline. All or nothing.
pub async fn mount(ctx: &ProviderContext, req: &MountRequest) -> Result<Rendered, MountError> {
    mount_with_deadline(ctx, req, deadline_in(DEFAULT_MOUNT_TIMEOUT)).await
}

/// The instant `budget` from now (far enough for any budget a caller can give).
pub fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// An Akeyless token for this mount: cached for its identity, or a fresh login (one in flight
/// per identity). The flag says whether it came from the cache.
async fn login(
    ctx: &ProviderContext,
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    key: Option<&TokenKey>,
    pod: &crate::request::PodIdentity,
    now: SystemTime,
) -> Result<(AkeylessToken, bool), MountError> {
    match key {
        Some(key) => {
            ctx.tokens
                .get_or_fetch(key, now, || async {
                    let token = authenticate(ctx, client, spec, creds, pod).await?;
                    let renew_at = identity::token_renewal(now, token.expires_at);
                    Ok::<_, MountError>((token, renew_at))
                })
                .await
        }
        None => Ok((authenticate(ctx, client, spec, creds, pod).await?, false)),
    }
}

/// Performs one mount; no backend call runs past `deadline`. All or nothing: any failing
/// object fails the whole mount.
pub async fn mount_with_deadline(
    ctx: &ProviderContext,
    req: &MountRequest,
    deadline: Instant,
) -> Result<Rendered, MountError> {
    let (spec, creds) = spec::parse_mount(req, &ctx.defaults)?;
    let http = ctx
        .clients
        .client(spec.connection.ca_cert_pem.as_deref())
        .map_err(|e| MountError::invalid(format!("parameter akeylessCACert: {e}")))?;
    let client = AkeylessClient::new(
        http,
        spec.connection.gateways.clone(),
        spec.connection.ignore_cache,
    )
    .with_policy(ctx.backend.clone())
    .with_deadline(deadline);
    let key = identity::token_key(&ctx.fingerprints, &spec, &creds, &req.pod);
    let now = SystemTime::now();
    let mount = Mount {
        ctx,
        client: &client,
        key: key.as_ref(),
        spec: &spec,
        creds: &creds,
        req,
        now,
        deadline,
    };

    let (token, cached) = login(ctx, &client, &spec, &creds, key.as_ref(), &req.pod, now).await?;
    if key.is_some() {
        ctx.backend.metrics.auth_cache(cached);
        ctx.backend.metrics.auth_cache_size(ctx.tokens.len());
    }
    let denial_key = |token: &AkeylessToken| {
        key.as_ref()
            .map(|k| (k.clone(), mount.denial_fingerprint(token)))
    };
    match mount.read_and_render(&token, cached).await {
        Err(e) if e.code == ErrorCode::PermissionDenied => {
            let confirmed =
                denial_key(&token).is_some_and(|k| ctx.confirmed_denials.get(&k).is_some());
            if !cached || confirmed {
                // A fresh token was denied: the items are, not the token. Remember it so this
                // token's next denial of the same items costs no new login.
                if let Some(k) = denial_key(&token) {
                    ctx.confirmed_denials.insert(k, ());
                }
                return Err(e);
            }
            // Akeyless may have revoked or expired a cached token early: log in once more and
            // retry once.
            if let Some(key) = &key {
                ctx.tokens.invalidate(key);
            }
            tracing::debug!("a cached Akeyless token was refused; logging in again");
            let (token, _) =
                login(ctx, &client, &spec, &creds, key.as_ref(), &req.pod, now).await?;
            let result = mount.read_and_render(&token, false).await;
            if let (Err(e), Some(k)) = (&result, denial_key(&token))
                && e.code == ErrorCode::PermissionDenied
            {
                ctx.confirmed_denials.insert(k, ());
            }
            result
        }
        other => other,
    }
}

/// One mount's inputs, after parsing and login.
struct Mount<'a> {
    ctx: &'a ProviderContext,
    client: &'a AkeylessClient,
    key: Option<&'a TokenKey>,
    spec: &'a SecretProviderSpec,
    creds: &'a Credentials,
    req: &'a MountRequest,
    now: SystemTime,
    deadline: Instant,
}

impl Mount<'_> {
    /// Keyed fingerprint of `token` with the items this mount reads.
    fn denial_fingerprint(&self, token: &AkeylessToken) -> [u8; 32] {
        let items: std::collections::BTreeSet<&str> = self
            .spec
            .objects
            .iter()
            .map(|o| o.secret_path.as_str())
            .collect();
        let items: Vec<&str> = items.into_iter().collect();
        self.ctx.fingerprints.fingerprint_with(&token.token, &items)
    }

    async fn read_and_render(
        &self,
        token: &AkeylessToken,
        token_cached: bool,
    ) -> Result<Rendered, MountError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let remembered = self.remembered_types();
        let (types, values) = match self
            .read(token, token_cached, remembered.clone(), vec![])
            .await
        {
            // A remembered type is only a hint: the item may have been deleted and re-created
            // as another type. When the backend (or a declared type) disagrees, forget the hints
            // and describe those items again, once.
            Err(e)
                if !remembered.is_empty()
                    && matches!(e.code, ErrorCode::NotFound | ErrorCode::InvalidConfig) =>
            {
                for item in remembered.keys() {
                    ctx.types
                        .forget(&spec.connection.gateways, &self.creds.access_id, item);
                }
                tracing::debug!("a read failed with remembered item types; describing again");
                let verify = remembered.into_keys().collect();
                self.read(token, token_cached, HashMap::new(), verify)
                    .await?
            }
            other => other?,
        };
        let per_object = spec
            .objects
            .iter()
            .zip(&types)
            .map(|(o, &t)| {
                values.get(&Read::for_object(o, t)).ok_or_else(|| {
                    MountError::internal(format!("{}: value missing after fetch", o.label()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        ctx.evaluator
            .render(
                &spec.objects,
                &per_object,
                self.req.default_mode,
                &ctx.version_key,
                self.now,
                ctx.defaults.max_mount_bytes,
                self.req.pod.namespace.as_deref().unwrap_or_default(),
                self.deadline,
            )
            .await
    }

    /// Types remembered from earlier look-ups by this account, for every object's item (a
    /// declared type is checked against them).
    fn remembered_types(&self) -> HashMap<String, ItemType> {
        let gateways = &self.spec.connection.gateways;
        self.spec
            .objects
            .iter()
            .filter_map(|o| {
                self.ctx
                    .types
                    .get(gateways, &self.creds.access_id, &o.secret_path)
                    .map(|t| (o.secret_path.clone(), t))
            })
            .collect()
    }

    /// Looks up the types of the untyped items not in `known` and of the items in `verify`
    /// (and remembers them), then reads every item.
    async fn read(
        &self,
        token: &AkeylessToken,
        token_cached: bool,
        mut known: HashMap<String, ItemType>,
        verify: Vec<String>,
    ) -> Result<(Vec<ItemType>, HashMap<Read, Fetched>), MountError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let access_id = &self.creds.access_id;
        let mut unknown = plan::untyped_items(&spec.objects, &known);
        for item in verify {
            if !unknown.contains(&item) {
                unknown.push(item);
            }
        }
        let described =
            describe_items(&ctx.types, self.client, token, spec, access_id, unknown).await?;
        known.extend(described);
        let types = plan::resolve_types(&spec.objects, &known)?;
        let fetch_plan = FetchPlan::build(&spec.objects, &types);
        let reader = Reader {
            ctx,
            identity: self.key,
            token_cached,
            client: self.client,
            token,
            spec,
            access_id,
            pod_uid: self.req.pod.uid.as_deref(),
            now: self.now,
        };
        let values = reader.fetch(&fetch_plan).await?;
        Ok((types, values))
    }
}
