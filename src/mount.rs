//! The mount pipeline: one typed request in, files and versions out. Both front doors (the
//! driver's socket and, later, the sync controller) call [`mount`].
//!
//! request → spec (+ credentials) → type look-up → plan → fetch → render

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::akeyless::{AkeylessClient, AkeylessToken, AuthCredential, BackendError, ClientFactory};
use crate::error::{ErrorCode, MountError};
use crate::plan::{self, FetchPlan};
use crate::render::{self, Rendered, VersionKey};
use crate::request::MountRequest;
use crate::secret::SecretString;
use crate::spec::{
    self, AccessType, Credential, Credentials, ItemType, ObjectSpec, SecretProviderSpec,
    SpecDefaults,
};

/// Most type look-ups in flight at once for one mount.
const DESCRIBE_CONCURRENCY: usize = 8;

/// State shared by all mounts: defaults, HTTP clients, the version key. Owned by the server
/// and passed in explicitly (no globals).
pub struct ProviderContext {
    pub defaults: SpecDefaults,
    pub clients: ClientFactory,
    pub version_key: VersionKey,
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

/// Turns a backend failure on an item into the public error, naming the object(s).
fn item_error(who: &str, e: BackendError) -> MountError {
    let hint = match e.code() {
        ErrorCode::NotFound => "no such item in Akeyless; check secretPath",
        ErrorCode::PermissionDenied => {
            "access denied; the authenticated identity's role needs read permission on this item"
        }
        ErrorCode::Throttled => "Akeyless is throttling requests; the driver will retry",
        ErrorCode::BackendUnavailable => "Akeyless is unavailable",
        ErrorCode::Timeout => "Akeyless did not answer in time",
        ErrorCode::InvalidConfig => "Akeyless rejected the request",
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
        (ErrorCode::AuthFailed, AccessType::Kubernetes) => {
            "; check that the auth method binds this pod's namespace and service account, and that \
             the gateway's Kubernetes auth config trusts this cluster"
        }
        (ErrorCode::AuthFailed, AccessType::AccessKey) => "; check the access ID and access key",
        (ErrorCode::AuthFailed, _) => "; check the access ID and the auth method's bound claims",
        _ => "",
    };
    MountError::new(e.code(), format!("{what} failed: {e}{hint}"))
}

async fn authenticate(
    client: &AkeylessClient,
    spec: &SecretProviderSpec,
    creds: &Credentials,
) -> Result<AkeylessToken, MountError> {
    let credential = match &creds.credential {
        Credential::AccessKey(key) => AuthCredential::AccessKey(key),
        Credential::PodToken { token, .. } => match spec.auth.access_type {
            AccessType::Kubernetes => AuthCredential::Kubernetes {
                config_name: spec
                    .auth
                    .k8s_auth_config_name
                    .as_deref()
                    .unwrap_or_default(),
                service_account_token: token,
            },
            _ => AuthCredential::Jwt(token),
        },
    };
    client
        .authenticate(&creds.access_id, credential)
        .await
        .map_err(|e| auth_error(spec, creds, e))
}

/// Looks up the type of every untyped item (describe-item), a few at a time.
async fn describe_items(
    client: &AkeylessClient,
    token: &AkeylessToken,
    objects: &[ObjectSpec],
    items: Vec<String>,
) -> Result<HashMap<String, ItemType>, MountError> {
    stream::iter(items)
        .map(|item| async move {
            let described = client
                .describe_item(token, &item)
                .await
                .map_err(|e| item_error(&labels_for(objects, &item), e))?;
            let raw = described.item_type.unwrap_or_default();
            let t = ItemType::from_akeyless(&raw).ok_or_else(|| {
                MountError::invalid(format!(
                    "{}: Akeyless item type {raw:?} cannot be mounted; supported types: {}",
                    labels_for(objects, &item),
                    ItemType::ACCEPTED
                ))
            })?;
            Ok::<_, MountError>((item, t))
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .try_collect()
        .await
}

/// Reads one batch of static secrets. When a multi-item batch is refused (401/403/404), the
/// items are read one by one to find and name the culprit: a few extra calls, only on failure.
async fn fetch_static_batch(
    client: &AkeylessClient,
    token: &AkeylessToken,
    objects: &[ObjectSpec],
    names: &[String],
    version: Option<u32>,
) -> Result<Vec<(String, SecretString)>, MountError> {
    match client.get_secret_values(token, names, version).await {
        Ok(values) => Ok(values),
        Err(e) if names.len() > 1 && matches!(e.status(), Some(401 | 403 | 404)) => {
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

async fn fetch(
    client: &AkeylessClient,
    token: &AkeylessToken,
    objects: &[ObjectSpec],
    plan: &FetchPlan,
) -> Result<HashMap<(String, Option<u32>), SecretString>, MountError> {
    let batches = plan.static_batches.iter().map(|batch| async move {
        let values =
            fetch_static_batch(client, token, objects, &batch.names, batch.version).await?;
        Ok::<_, MountError>(
            values
                .into_iter()
                .map(|(name, value)| ((name, batch.version), value))
                .collect::<Vec<_>>(),
        )
    });
    let results = futures_util::future::try_join_all(batches).await?;
    Ok(results.into_iter().flatten().collect())
}

/// Performs one mount. All or nothing: any failing object fails the whole mount.
pub async fn mount(ctx: &ProviderContext, req: &MountRequest) -> Result<Rendered, MountError> {
    let (spec, creds) = spec::parse_mount(req, &ctx.defaults)?;
    let http = ctx
        .clients
        .client(spec.connection.ca_cert_pem.as_deref())
        .map_err(|e| MountError::invalid(format!("parameter akeylessCACert: {e}")))?;
    let client = AkeylessClient::new(
        http,
        spec.connection.gateways.clone(),
        spec.connection.ignore_cache,
    );

    let token = authenticate(&client, &spec, &creds).await?;
    let described = describe_items(
        &client,
        &token,
        &spec.objects,
        plan::untyped_items(&spec.objects),
    )
    .await?;
    let types = plan::resolve_types(&spec.objects, &described)?;
    let fetch_plan = FetchPlan::build(&spec.objects, &types);
    let values = fetch(&client, &token, &spec.objects, &fetch_plan).await?;

    let per_object = spec
        .objects
        .iter()
        .map(|o| {
            values
                .get(&(o.secret_path.clone(), o.version))
                .ok_or_else(|| {
                    MountError::internal(format!("{}: value missing after fetch", o.label()))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    render::render(
        &spec.objects,
        &per_object,
        req.default_mode,
        &ctx.version_key,
    )
}
