//! Authenticate: an Akeyless token for the mount's identity. The identity's cached token when
//! it has one; otherwise a login by access type (access key, Kubernetes, JWT, Universal
//! Identity with its optional rotation chain, or a cloud identity exchanged first at AWS, Azure
//! AD or GCP). A cached token refused on read is replaced once.

use std::time::SystemTime;

use crate::akeyless::{AkeylessToken, AuthCredential, BackendError};
use crate::error::{ErrorCode, MountError};
use crate::identity::{self, UidChainKey};
use crate::render::Rendered;
use crate::secret::{ExposeSecret, SecretString};
use crate::spec::{
    AccessType, Credential, Credentials, ProviderIdentityFlag as Flag, SecretProviderSpec,
    UidRotation,
};

use super::Mount;

impl Mount<'_> {
    /// An Akeyless token for this mount: cached for its identity, or a fresh login (one in flight
    /// per identity). The flag says whether it came from the cache.
    pub(super) async fn login(&self) -> Result<(AkeylessToken, bool), MountError> {
        let (ctx, now) = (self.ctx, self.now);
        match self.key {
            Some(key) => {
                ctx.tokens
                    .get_or_fetch(key, now, || async {
                        let token = self.authenticate().await?;
                        let renew_at = identity::token_renewal(now, token.expires_at);
                        Ok::<_, MountError>((token, renew_at))
                    })
                    .await
            }
            None => Ok((self.authenticate().await?, false)),
        }
    }

    /// After a read was denied (`e`) with `token`: a fresh token's denial is final; a cached
    /// token gets one new login and one retry.
    pub(super) async fn after_denial(
        &self,
        e: MountError,
        token: &AkeylessToken,
        cached: bool,
    ) -> Result<Rendered, MountError> {
        let ctx = self.ctx;
        let denial_key = |token: &AkeylessToken| {
            self.key
                .map(|k| (k.clone(), self.denial_fingerprint(token)))
        };
        let confirmed = denial_key(token).is_some_and(|k| ctx.confirmed_denials.get(&k).is_some());
        if !cached || confirmed {
            // A fresh token was denied: the items are, not the token. Remember it so this
            // token's next denial of the same items costs no new login.
            if let Some(k) = denial_key(token) {
                ctx.confirmed_denials.insert(k, ());
            }
            return Err(e);
        }
        // Akeyless may have revoked or expired a cached token early: log in once more and
        // retry once.
        if let Some(key) = self.key {
            ctx.tokens.invalidate(key);
        }
        tracing::debug!("a cached Akeyless token was refused; logging in again");
        let (token, _) = self.login().await?;
        let result = self.read_and_render(&token, false).await;
        if let (Err(e), Some(k)) = (&result, denial_key(&token))
            && e.code == ErrorCode::PermissionDenied
        {
            ctx.confirmed_denials.insert(k, ());
        }
        result
    }

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

    /// Logs in by the SPC's access type with the credential the request carries.
    async fn authenticate(&self) -> Result<AkeylessToken, MountError> {
        let auth = &self.spec.auth;
        let login = |credential| self.login_with(credential);
        match (&self.creds.credential, auth.access_type) {
            (Credential::AccessKey(key), _) => login(AuthCredential::AccessKey(key)).await,
            (Credential::UidToken(init), _) => self.uid_login(init).await,
            (Credential::PodToken { token, .. }, AccessType::Kubernetes) => {
                login(AuthCredential::Kubernetes {
                    config_name: auth.k8s_auth_config_name.as_deref().unwrap_or_default(),
                    service_account_token: token,
                })
                .await
            }
            (Credential::PodToken { token, .. }, AccessType::AzureAd) => {
                let cloud_id = self.azure_pod_cloud_id(token).await?;
                login(AuthCredential::AzureAd {
                    cloud_id: &cloud_id,
                })
                .await
            }
            (credential, AccessType::AwsIam) => {
                let cloud_id = self.aws_cloud_id(credential).await?;
                login(AuthCredential::AwsIam {
                    cloud_id: &cloud_id,
                })
                .await
            }
            (Credential::PodToken { token, audience }, AccessType::Gcp) => {
                let cloud_id = self.gcp_pod_cloud_id(audience, token).await?;
                login(AuthCredential::Gcp {
                    cloud_id: &cloud_id,
                })
                .await
            }
            (Credential::ProviderIdentity, AccessType::Gcp) => {
                let cloud_id = self.gcp_node_cloud_id().await?;
                login(AuthCredential::Gcp {
                    cloud_id: &cloud_id,
                })
                .await
            }
            (Credential::ProviderIdentity, AccessType::AzureAd) => {
                let cloud_id = self.azure_node_cloud_id().await?;
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

    /// Azure AD first turns the pod's token into an ARM token (the pod's identity, not ours).
    async fn azure_pod_cloud_id(&self, token: &SecretString) -> Result<SecretString, MountError> {
        let azure = self.spec.auth.azure.as_ref().ok_or_else(|| {
            MountError::internal("azure_ad without its workload identity settings")
        })?;
        self.cloud_step(
            AccessType::AzureAd,
            crate::cloud::azure::cloud_id(self.client.http(), azure, token),
        )
        .await
    }

    /// AWS IAM: the pod's token exchanged at STS for the role's credentials, or the provider's own
    /// credentials (opt-in), signed into Akeyless's `cloud-id`.
    async fn aws_cloud_id(&self, credential: &Credential) -> Result<SecretString, MountError> {
        let aws = self
            .spec
            .auth
            .aws
            .as_ref()
            .ok_or_else(|| MountError::internal("aws_iam without its settings"))?;
        let aws_credentials = match (credential, &aws.role_arn) {
            (Credential::PodToken { token, .. }, Some(role_arn)) => {
                let endpoint = self
                    .ctx
                    .cloud
                    .aws_sts_endpoint
                    .clone()
                    .unwrap_or_else(|| crate::cloud::aws::sts_url(&aws.region));
                let session = crate::cloud::aws::session_name(
                    self.req.pod.namespace.as_deref(),
                    self.req.pod.name.as_deref(),
                );
                self.cloud_step(
                    AccessType::AwsIam,
                    crate::cloud::aws::assume_role_with_web_identity(
                        self.client.http(),
                        &endpoint,
                        role_arn,
                        &session,
                        token,
                    ),
                )
                .await?
            }
            (Credential::ProviderIdentity, None) => {
                opted_in(self.ctx.cloud.aws_provider_credentials.clone(), Flag::Aws)?
            }
            _ => return Err(MountError::internal("aws_iam credential mismatch")),
        };
        Ok(crate::cloud::aws::cloud_id(
            &aws_credentials,
            &aws.region,
            SystemTime::now(),
        ))
    }

    /// Workload identity: the pod's token becomes an ID token of the Google service account the
    /// pod may impersonate (the pod's identity, not ours).
    async fn gcp_pod_cloud_id(
        &self,
        audience: &str,
        token: &SecretString,
    ) -> Result<SecretString, MountError> {
        let auth = &self.spec.auth;
        let wi = auth
            .gcp
            .as_ref()
            .ok_or_else(|| MountError::internal("gcp without its workload identity settings"))?;
        self.cloud_step(
            AccessType::Gcp,
            crate::cloud::gcp::pod_cloud_id(
                self.client.http(),
                &self.ctx.cloud.google,
                wi,
                audience,
                auth.gcp_id_audience(),
                token,
            ),
        )
        .await
    }

    /// The node's Google identity from the metadata server (opt-in).
    async fn gcp_node_cloud_id(&self) -> Result<SecretString, MountError> {
        let url = opted_in(self.ctx.cloud.gcp_metadata_url.as_deref(), Flag::Gcp)?;
        self.cloud_step(
            AccessType::Gcp,
            crate::cloud::gcp::cloud_id(self.client.http(), url, self.spec.auth.gcp_id_audience()),
        )
        .await
    }

    /// The node's managed identity (opt-in): only toward --akeyless-url (the spec was bound to the
    /// operator), for the operator's resource.
    async fn azure_node_cloud_id(&self) -> Result<SecretString, MountError> {
        let imds = opted_in(self.ctx.cloud.azure_imds.as_ref(), Flag::Azure)?;
        self.cloud_step(
            AccessType::AzureAd,
            crate::cloud::azure::node_cloud_id(
                self.client.http(),
                imds,
                self.spec.auth.azure_object_id.as_deref(),
            ),
        )
        .await
    }

    /// A cloud identity exchange, bounded by the mount's deadline, its failure named for the user.
    async fn cloud_step<T, E: std::fmt::Display>(
        &self,
        what: AccessType,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, MountError> {
        let creds = self.creds;
        match self.client.within_deadline(work).await {
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

    /// `/auth` with `credential`, its failure named for the user.
    async fn login_with(
        &self,
        credential: AuthCredential<'_>,
    ) -> Result<AkeylessToken, MountError> {
        self.client
            .authenticate(&self.creds.access_id, credential)
            .await
            .map_err(|e| auth_error(self.spec, self.creds, e))
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
    async fn uid_login(&self, init: &SecretString) -> Result<AkeylessToken, MountError> {
        let (client, spec, creds) = (self.client, self.spec, self.creds);
        match spec.auth.uid_rotation {
            UidRotation::None => client
                .authenticate(&creds.access_id, AuthCredential::UniversalIdentity(init))
                .await
                .map_err(|e| auth_error(spec, creds, e)),
            UidRotation::Fork => self.uid_chain_login(init).await,
        }
    }

    /// `akeylessUIDRotation: fork`: see [`Mount::uid_login`].
    async fn uid_chain_login(&self, init: &SecretString) -> Result<AkeylessToken, MountError> {
        let (ctx, client, spec, creds) = (self.ctx, self.client, self.spec, self.creds);
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
}

/// The provider identity's setting, when the operator opted in with `flag`; else the flag's
/// refusal.
fn opted_in<T>(setting: Option<T>, flag: Flag) -> Result<T, MountError> {
    setting.ok_or_else(|| MountError::invalid(flag.refusal()))
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

const REDIRECT_HINT_AUTH: &str = "; the provider never follows redirects: set akeylessGatewayURL \
                                  to the URL that answers directly";
