//! The secret half of authentication, bound from one mount request.

use super::{AccessType, AuthSettings, Problem, SpecErrors, keys};
use crate::request::{NodePublishSecrets, Parameters, ServiceAccountTokens};
use crate::secret::{ExposeSecret, SecretString};

/// The secret half of authentication, bound from one mount request.
#[derive(Debug)]
pub enum Credential {
    AccessKey(SecretString),
    /// A Universal Identity token (`u-…`) from the nodePublishSecretRef (or the parameters):
    /// the start of this identity's rotation chain.
    UidToken(SecretString),
    /// No credential comes with the mount: the provider's own cloud identity (`aws_iam`
    /// without a role, `gcp` without workload identity, `azure_ad` without a client and tenant
    /// ID), usable only when the provider was started with the matching opt-in flag.
    ProviderIdentity,
    /// The mounting pod's service-account token for `audience`.
    PodToken {
        audience: String,
        token: SecretString,
    },
}

/// Everything `/auth` needs for one mount. `Debug` redacts the credential.
#[derive(Debug)]
pub struct Credentials {
    pub access_id: String,
    pub credential: Credential,
}

fn copy_secret(s: &SecretString) -> SecretString {
    SecretString::from(s.expose_secret().to_string())
}

/// Picks the pod token for `audience`, or the only one delivered.
fn select_pod_token(
    tokens: &ServiceAccountTokens,
    audience: Option<&str>,
    access_type: AccessType,
) -> Result<(String, SecretString), String> {
    let how_to_fix = "add a tokenRequests entry (an audience) to the secrets-store.csi.k8s.io CSIDriver \
                      object, e.g. helm --set tokenRequests[0].audience=akeyless on the driver's chart";
    match audience {
        Some(aud) => match tokens.get(aud) {
            Some(t) => Ok((aud.to_string(), copy_secret(&t.token))),
            None if tokens.is_empty() => Err(format!(
                "access type {access_type} needs the pod's service-account token for audience {aud:?}, \
                 but the driver sent no tokens: {how_to_fix}"
            )),
            None => Err(format!(
                "access type {access_type} uses the pod's token for audience {aud:?} (parameter {}, \
                 or the access type's default) but the driver sent tokens only for audiences: {}; \
                 add {aud:?} to the CSIDriver tokenRequests or choose one of these with {}",
                keys::TOKEN_AUDIENCE,
                tokens.audiences().collect::<Vec<_>>().join(", "),
                keys::TOKEN_AUDIENCE
            )),
        },
        None => match tokens.single() {
            Some((aud, t)) => Ok((aud.to_string(), copy_secret(&t.token))),
            None if tokens.is_empty() => Err(format!(
                "access type {access_type} authenticates as the pod, but the driver sent no \
                 service-account token: {how_to_fix}"
            )),
            None => Err(format!(
                "the driver sent tokens for several audiences ({}); choose one with parameter {}",
                tokens.audiences().collect::<Vec<_>>().join(", "),
                keys::TOKEN_AUDIENCE
            )),
        },
    }
}

impl Credentials {
    /// Binds the credentials of one mount. The nodePublishSecretRef is preferred to inline
    /// parameters, because SPCs are readable by namespace users.
    pub(crate) fn resolve(
        auth: &AuthSettings,
        params: &Parameters,
        secrets: &NodePublishSecrets,
        tokens: &ServiceAccountTokens,
    ) -> Result<Credentials, SpecErrors> {
        let fail = |key: &str, message: String| {
            SpecErrors(vec![Problem::new(format!("parameters.{key}"), message)])
        };
        let access_id = secrets
            .get(keys::ACCESS_ID)
            .map(|s| s.expose_secret().trim().to_string())
            .or_else(|| auth.access_id.clone())
            .ok_or_else(|| {
                fail(
                    keys::ACCESS_ID,
                    format!(
                        "parameter {} is required (the Akeyless access ID, p-…), in the \
                         SecretProviderClass or the nodePublishSecretRef Secret",
                        keys::ACCESS_ID
                    ),
                )
            })?;
        let secret_or_param = |key: &str| {
            secrets
                .get(key)
                .map(copy_secret)
                .or_else(|| params.get(key).map(|v| SecretString::from(v.to_string())))
        };
        let pod_token = |audience: Option<String>| {
            select_pod_token(tokens, audience.as_deref(), auth.access_type)
                .map(|(audience, token)| Credential::PodToken { audience, token })
                .map_err(|m| fail(keys::TOKEN_AUDIENCE, m))
        };
        let credential = match auth.access_type {
            AccessType::AccessKey => Credential::AccessKey(secret_or_param(keys::ACCESS_KEY).ok_or_else(|| {
                fail(
                    keys::ACCESS_KEY,
                    format!(
                        "access type access_key needs an access key: put it in the Secret named by the \
                         volume's nodePublishSecretRef under key {}",
                        keys::ACCESS_KEY
                    ),
                )
            })?),
            AccessType::UniversalIdentity => {
                let token = secret_or_param(keys::UID_INIT_TOKEN)
                    .map(|t| SecretString::from(t.expose_secret().trim().to_string()))
                    .filter(|t| !t.expose_secret().is_empty());
                Credential::UidToken(token.ok_or_else(|| {
                    fail(
                        keys::UID_INIT_TOKEN,
                        format!(
                            "access type universal_identity needs a Universal Identity token (u-…): put it in \
                             the Secret named by the volume's nodePublishSecretRef under key {}",
                            keys::UID_INIT_TOKEN
                        ),
                    )
                })?)
            }
            AccessType::Kubernetes | AccessType::Jwt => pod_token(auth.pod_token_audience())?,
            AccessType::AzureAd if auth.azure.is_some() => pod_token(auth.pod_token_audience())?,
            // aws_iam without a role and gcp without workload identity use the provider's own
            // identity (only when its flag allows).
            AccessType::AwsIam if auth.aws.as_ref().is_some_and(|a| a.role_arn.is_some()) => {
                pod_token(auth.pod_token_audience())?
            }
            AccessType::Gcp if auth.gcp.is_some() => pod_token(auth.pod_token_audience())?,
            AccessType::AwsIam | AccessType::Gcp | AccessType::AzureAd => {
                Credential::ProviderIdentity
            }
        };
        Ok(Credentials {
            access_id,
            credential,
        })
    }
}
