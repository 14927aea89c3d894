//! Read: every object's item type and value. Types come from the account's remembered
//! look-ups or from describe-item (a remembered type that turns out wrong is forgotten and
//! looked up again, once); the plan groups the reads ([`crate::plan`]); static secrets are read
//! in batches, the rest one by one, and identical reads of one identity share a request (and,
//! within the value TTL, a value). Per-pod leases of dynamic secrets and PKI certificates are
//! in `mount/leases.rs`.

use std::collections::HashMap;
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::akeyless::{AkeylessClient, AkeylessToken, BackendError};
use crate::cache::TypeCache;
use crate::certs::CertificateMaterial;
use crate::error::{ErrorCode, MountError};
use crate::identity::TokenKey;
use crate::plan::{self, FetchPlan, Read};
use crate::render::Fetched;
use crate::secret::SecretString;
use crate::spec::{ItemType, ObjectSpec, SecretProviderSpec};

use super::{Mount, ProviderContext};

/// Most single reads in flight at once for one mount.
const READ_CONCURRENCY: usize = 8;

/// Most type look-ups in flight at once for one mount (each is shared with the other mounts of
/// the account that need it, so a node restart asks for each item once).
const DESCRIBE_CONCURRENCY: usize = 16;

impl Mount<'_> {
    /// The type of every object's item and every value the mount needs.
    pub(super) async fn read_all(
        &self,
        token: &AkeylessToken,
        token_cached: bool,
    ) -> Result<(Vec<ItemType>, HashMap<Read, Fetched>), MountError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let remembered = self.remembered_types();
        match self
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
                self.read(token, token_cached, HashMap::new(), verify).await
            }
            other => other,
        }
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

/// What a coalesced read fetched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReadKey {
    Batch {
        names: Vec<String>,
        version: Option<u32>,
    },
    Single(Read),
}

#[derive(Clone)]
pub(crate) enum CachedRead {
    Batch(Vec<(String, SecretString)>),
    Single(Fetched),
}

/// Everything one mount needs to read values, bundled to keep signatures short.
pub(super) struct Reader<'a> {
    pub(super) ctx: &'a ProviderContext,
    /// Coalescing key of this identity; `None` when reads must not be shared.
    identity: Option<&'a TokenKey>,
    /// Whether the token came from the cache (a 401 then likely means the token, not the item).
    token_cached: bool,
    pub(super) client: &'a AkeylessClient,
    pub(super) token: &'a AkeylessToken,
    pub(super) spec: &'a SecretProviderSpec,
    pub(super) access_id: &'a str,
    pub(super) pod_uid: Option<&'a str>,
    pub(super) now: SystemTime,
}

impl Reader<'_> {
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

/// Labels of the objects that read `item`, for messages about a backend call on that item.
pub(super) fn labels_for(objects: &[ObjectSpec], item: &str) -> String {
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
pub(super) fn item_error(who: &str, e: BackendError) -> MountError {
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

const REDIRECT_HINT: &str = "the provider never follows redirects: set akeylessGatewayURL to \
                             the URL that answers directly";
