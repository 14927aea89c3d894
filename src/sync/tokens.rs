//! Service-account tokens for sync, minted with the TokenRequest API in the SPC's own namespace.
//!
//! A token is reused until 80% of its life has passed. Reuse matters beyond saving API calls:
//! the provider's Akeyless token cache is keyed by a fingerprint of the credential, so the same
//! Kubernetes token means the same cached Akeyless token, and a refresh every few minutes does
//! not log in to Akeyless again.

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use crate::cache::BoundedMap;
use crate::request::ServiceAccountToken;
use crate::secret::SecretString;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    service_account: String,
    audience: String,
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    expiration: Option<String>,
    refresh_at: Instant,
}

/// Most tokens kept (one per namespace, service account and audience in use); when full, the
/// least recently used goes and is minted again when next needed.
const MAX_CACHED_TOKENS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("the API server answered the TokenRequest without a token")]
    NoToken,
    #[error("the API server did not answer the TokenRequest before the sync's deadline")]
    Timeout,
}

/// Mints and caches service-account tokens. One per controller; never shared across
/// (namespace, service account, audience).
pub(crate) struct TokenSource {
    client: kube::Client,
    lifetime: Duration,
    cache: BoundedMap<Key, Cached>,
}

impl TokenSource {
    /// `lifetime`: the `expirationSeconds` asked for (the API server may shorten it; at least 10m).
    pub fn new(client: kube::Client, lifetime: Duration) -> Self {
        TokenSource {
            client,
            lifetime,
            cache: BoundedMap::new(MAX_CACHED_TOKENS),
        }
    }

    /// A token of `service_account` in `namespace` for `audience` (empty: the API server's
    /// default audience).
    pub(crate) async fn token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: &str,
    ) -> Result<ServiceAccountToken, TokenError> {
        let key = Key {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            audience: audience.to_owned(),
        };
        let now = Instant::now();
        if let Some(c) = self.cache.get(&key).filter(|c| now < c.refresh_at) {
            return Ok(ServiceAccountToken {
                token: c.token.clone(),
                expiration: c.expiration.clone(),
            });
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience.to_owned()]
                },
                expiration_seconds: Some(self.lifetime.as_secs() as i64),
                bound_object_ref: None,
            },
            ..Default::default()
        };
        let answer = api
            .create_token_request(service_account, &PostParams::default(), &request)
            .await?;
        let status = answer.status.ok_or(TokenError::NoToken)?;
        let expiration = status.expiration_timestamp.0;
        let life =
            Duration::try_from(expiration.duration_since(k8s_openapi::jiff::Timestamp::now()))
                .unwrap_or(Duration::ZERO);
        let token = SecretString::from(status.token);
        let expiration = Some(expiration.to_string());
        self.cache.insert(
            key,
            Cached {
                token: token.clone(),
                expiration: expiration.clone(),
                refresh_at: now
                    .checked_add(life.checked_div(5).unwrap_or_default().saturating_mul(4))
                    .unwrap_or(now),
            },
        );
        Ok(ServiceAccountToken { token, expiration })
    }
}
