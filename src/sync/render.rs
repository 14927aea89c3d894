//! The read half of a sync: the mount a pod of the SPC's ServiceAccount would get, with a
//! token minted for that ServiceAccount, shaped into the Secrets `secretObjects` declare.

use futures_util::FutureExt;

use super::context::{Context, SyncError};
use super::secret::{self, DesiredSecret};
use super::spc::{SecretProviderClass, SyncSettings};
use super::tokens::TokenError;
use crate::error::MountError;
use crate::mount::mount_with_deadline;
use crate::request::{
    MountRequest, NodePublishSecrets, Parameters, PodIdentity, ServiceAccountTokens,
};

/// Mounts the SPC as its ServiceAccount, exactly as the driver's mount would, and shapes the
/// declared Secrets from the files.
pub(super) async fn render(
    spc: &SecretProviderClass,
    settings: &SyncSettings,
    ctx: &Context,
    namespace: &str,
) -> Result<Vec<DesiredSecret>, SyncError> {
    // One deadline for the whole mount, the TokenRequest included.
    let deadline = crate::mount::deadline_in(ctx.options.mount_timeout);
    let parameters = Parameters::new(spc.spec.parameters.clone());
    // Checked before any token is minted; the mount parses it again, with the token.
    let spec =
        crate::spec::SecretProviderSpec::from_parameters(&parameters, &ctx.provider.defaults)
            .map_err(|e| SyncError::Mount(e.into()))?;
    // The audience the mount will pick the token by, else the controller's default.
    let audience = spec
        .auth
        .pod_token_audience()
        .unwrap_or_else(|| ctx.options.default_audience.clone());
    let token_request = ctx
        .tokens
        .token(namespace, &settings.service_account, &audience);
    let token = tokio::time::timeout_at(deadline.into(), token_request)
        .await
        .unwrap_or(Err(TokenError::Timeout))
        .map_err(|e| SyncError::Token {
            namespace: namespace.to_owned(),
            service_account: settings.service_account.clone(),
            message: match &e {
                TokenError::Api(kube::Error::Api(s)) if s.code == 404 => {
                    "the ServiceAccount does not exist in this namespace".into()
                }
                other => other.to_string(),
            },
        })?;
    let request = MountRequest {
        pod: PodIdentity {
            name: None,
            namespace: Some(namespace.to_owned()),
            uid: None,
            service_account: Some(settings.service_account.clone()),
        },
        parameters,
        secrets: NodePublishSecrets::default(),
        tokens: ServiceAccountTokens::new([(audience, token)].into()),
        default_mode: crate::request::DEFAULT_FILE_MODE,
        target_path: format!(
            "sync:{namespace}/{}",
            spc.metadata.name.as_deref().unwrap_or_default()
        ),
    };
    // As on the driver's socket: a panic (a bug) fails this SPC's sync alone.
    let rendered = std::panic::AssertUnwindSafe(mount_with_deadline(
        &ctx.provider,
        &request,
        deadline,
    ))
    .catch_unwind()
    .await
    .unwrap_or_else(|_| {
        Err(MountError::internal(
            "the provider hit an internal error on this SPC (a bug, logged as a panic); please report it",
        ))
    })?;
    secret::desired_secrets(&spc.spec.secret_objects, &rendered).map_err(SyncError::Shape)
}
