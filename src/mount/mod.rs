//! The mount pipeline: one typed request in, files and versions out. Both front doors (the
//! driver's socket, `server`, and the sync controller) call [`mount_with_deadline`]; the
//! recipe is that one function, each stage in its own file:
//!
//! 1. decode: the driver's request, typed (`request.rs`, done by the caller);
//! 2. spec: the SPC's parameters and the pod's credentials, parsed and checked (`spec/`);
//! 3. authenticate: the identity's cached token or a login by access type (`mount/auth.rs`);
//! 4. plan and read: the items' types (remembered or looked up: planning needs them, so it
//!    follows login), the plan (`plan.rs`), then the reads (`mount/read.rs`; per-pod leases of
//!    dynamic secrets and PKI certificates in `mount/leases.rs`);
//! 5. render: files and versions (`eval/`, then `render.rs`).
//!
//! A cached token refused on read gets one new login and one retry (`mount/auth.rs`). The
//! state every mount shares is the [`ProviderContext`] (`mount/context.rs`).

mod auth;
mod context;
mod leases;
mod read;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::akeyless::{AkeylessClient, AkeylessToken};
use crate::error::{ErrorCode, MountError};
use crate::identity::{self, TokenKey};
use crate::plan::Read;
use crate::render::{Fetched, Rendered};
use crate::request::MountRequest;
use crate::spec::{self, Credentials, ItemType, SecretProviderSpec};

pub(crate) use context::CacheSettings;
pub use context::ProviderContext;

/// Performs one mount; no backend call runs past `deadline`. All or nothing: any failing
/// object fails the whole mount.
pub(crate) async fn mount_with_deadline(
    ctx: &ProviderContext,
    req: &MountRequest,
    deadline: Instant,
) -> Result<Rendered, MountError> {
    // Spec: what to mount and as whom; invalid input fails here, before any backend call.
    let (spec, creds) = spec::parse_mount(req, &ctx.defaults)?;
    let client = gateway_client(ctx, &spec, deadline)?;
    let key = identity::token_key(&ctx.fingerprints, &spec, &creds, &req.pod);
    let mount = Mount {
        ctx,
        client: &client,
        key: key.as_ref(),
        spec: &spec,
        creds: &creds,
        req,
        now: SystemTime::now(),
        deadline,
    };

    // Authenticate: the identity's cached token, or a login.
    let (token, cached) = mount.login().await?;
    if key.is_some() {
        ctx.backend.metrics.auth_cache(cached);
        ctx.backend.metrics.auth_cache_size(ctx.tokens.len());
    }
    // Plan, read and render; a denial may be the cached token's, not the items'.
    match mount.read_and_render(&token, cached).await {
        Err(e) if e.code == ErrorCode::PermissionDenied => {
            mount.after_denial(e, &token, cached).await
        }
        other => other,
    }
}

/// Performs one mount with the default deadline. All or nothing.
pub(crate) async fn mount(
    ctx: &ProviderContext,
    req: &MountRequest,
) -> Result<Rendered, MountError> {
    mount_with_deadline(ctx, req, deadline_in(DEFAULT_MOUNT_TIMEOUT)).await
}

/// Longest a mount may take when the caller gives no deadline.
pub(crate) const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(110);

/// The instant `budget` from now (far enough for any budget a caller can give).
pub(crate) fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// A client for the SPC's gateways (trusting its CA, if it names one), bounded by `deadline`.
fn gateway_client(
    ctx: &ProviderContext,
    spec: &SecretProviderSpec,
    deadline: Instant,
) -> Result<AkeylessClient, MountError> {
    let http = ctx
        .clients
        .client(spec.connection.ca_cert_pem.as_deref())
        .map_err(|e| MountError::invalid(format!("parameter akeylessCACert: {e}")))?;
    Ok(AkeylessClient::new(
        http,
        spec.connection.gateways.clone(),
        spec.connection.ignore_cache,
    )
    .with_policy(ctx.backend.clone())
    .with_deadline(deadline))
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
    /// Reads every object's value with `token`, then renders the files.
    async fn read_and_render(
        &self,
        token: &AkeylessToken,
        token_cached: bool,
    ) -> Result<Rendered, MountError> {
        let (types, values) = self.read_all(token, token_cached).await?;
        self.render(&types, &values).await
    }

    /// Files and versions from each object's value (objects of the type in `types`).
    async fn render(
        &self,
        types: &[ItemType],
        values: &HashMap<Read, Fetched>,
    ) -> Result<Rendered, MountError> {
        let (ctx, spec) = (self.ctx, self.spec);
        let per_object = spec
            .objects
            .iter()
            .zip(types)
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
}
