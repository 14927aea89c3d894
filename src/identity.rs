//! Who a mount authenticates as, reduced to the key of the token cache.
//!
//! The key holds everything that decides the Akeyless identity (gateways, access ID, access
//! type, auth config, token audience, the pod's namespace and service account, the pod UID
//! unless the SPC opts into `akeylessTokenScope: serviceAccount`) plus a keyed fingerprint of
//! the credential the mount presented. A cached token is therefore only ever handed to a mount
//! that presented exactly the credential Akeyless verified when it issued the token.
//!
//! `serviceAccount` scope shares one token among the pods of a service account, whose
//! service-account tokens differ: the pod token's fingerprint is left out, and the key relies on
//! kubelet's pod info (namespace, service account), which must agree with the claims inside
//! the token. When they disagree, or are missing, the mount is not cached at all.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::cache::BoundedMap;
use crate::request::PodIdentity;
use crate::secret::{ExposeSecret, SecretString};
use crate::spec::{AccessType, Credential, Credentials, SecretProviderSpec, TokenScope};

/// The token cache key. `Debug` shows no credential material (the fingerprint is keyed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub gateways: Vec<String>,
    pub access_id: String,
    pub access_type: AccessType,
    pub auth_config: Option<String>,
    /// The method's other settings that change who Akeyless sees (Azure app, AWS role and
    /// region, GCP audience, service account and workload identity provider).
    pub method_settings: Vec<String>,
    pub audience: Option<String>,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub pod_uid: Option<String>,
    /// HMAC of the presented credential; `None` for pod tokens under `serviceAccount` scope.
    pub credential: Option<[u8; 32]>,
}

/// A per-process random key for credential fingerprints.
#[derive(Clone)]
pub(crate) struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    pub(crate) fn random() -> Self {
        FingerprintKey(rand::random())
    }

    pub(crate) fn fingerprint(&self, secret: &SecretString) -> [u8; 32] {
        self.fingerprint_with(secret, &[])
    }

    /// The fingerprint of `secret` together with `context` (each part length-prefixed).
    pub(crate) fn fingerprint_with(&self, secret: &SecretString, context: &[&str]) -> [u8; 32] {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail for our 32 bytes.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        for part in std::iter::once(secret.expose_secret()).chain(context.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// The namespace and service account named inside a Kubernetes service-account JWT (read, not
/// verified: Akeyless verifies the token; this only checks it agrees with kubelet's pod info).
pub(crate) fn service_account_claims(jwt: &SecretString) -> Option<(String, String)> {
    let payload = jwt.expose_secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let k8s = claims.get("kubernetes.io");
    let from_k8s = k8s.and_then(|k| {
        Some((
            k.get("namespace")?.as_str()?.to_string(),
            k.get("serviceaccount")?.get("name")?.as_str()?.to_string(),
        ))
    });
    from_k8s.or_else(|| {
        let sub = claims.get("sub")?.as_str()?;
        let mut parts = sub.strip_prefix("system:serviceaccount:")?.splitn(2, ':');
        Some((parts.next()?.to_string(), parts.next()?.to_string()))
    })
}

/// The cache key of this mount's Akeyless token, or `None` when it must not be cached.
pub(crate) fn token_key(
    fingerprints: &FingerprintKey,
    spec: &SecretProviderSpec,
    creds: &Credentials,
    pod: &PodIdentity,
) -> Option<TokenKey> {
    let scope = spec.auth.token_scope;
    let (audience, credential) = match &creds.credential {
        Credential::AccessKey(key) | Credential::UidToken(key) => {
            (None, Some(fingerprints.fingerprint(key)))
        }
        // The provider's own identity: nothing pod-specific to fingerprint.
        Credential::ProviderIdentity => (None, None),
        Credential::PodToken { audience, token } => match scope {
            TokenScope::Pod => (
                Some(audience.clone()),
                Some(fingerprints.fingerprint(token)),
            ),
            TokenScope::ServiceAccount => {
                let claims = service_account_claims(token)?;
                let attributes = (pod.namespace.clone()?, pod.service_account.clone()?);
                if claims != attributes {
                    tracing::warn!(
                        "the pod token's namespace/service account differ from kubelet's pod info; not sharing its Akeyless token"
                    );
                    return None;
                }
                (Some(audience.clone()), None)
            }
        },
    };
    Some(TokenKey {
        gateways: spec.connection.gateways.clone(),
        access_id: creds.access_id.clone(),
        access_type: spec.auth.access_type,
        auth_config: spec.auth.k8s_auth_config_name.clone(),
        method_settings: method_settings(spec),
        audience,
        namespace: pod.namespace.clone(),
        service_account: pod.service_account.clone(),
        pod_uid: match scope {
            TokenScope::Pod => pod.uid.clone(),
            TokenScope::ServiceAccount => None,
        },
        credential,
    })
}

/// The access-type settings that select a different cloud identity for the same credential.
fn method_settings(spec: &SecretProviderSpec) -> Vec<String> {
    let auth = &spec.auth;
    match auth.access_type {
        AccessType::AzureAd => match &auth.azure {
            Some(a) => vec![
                a.client_id.clone(),
                a.tenant_id.clone(),
                a.authority_host.clone(),
                a.cloud.arm_scope().to_string(),
            ],
            // The node's managed identity: the user-assigned one the SPC selects.
            None => vec![auth.azure_object_id.clone().unwrap_or_default()],
        },
        AccessType::AwsIam => auth
            .aws
            .iter()
            .flat_map(|a| [a.role_arn.clone().unwrap_or_default(), a.region.clone()])
            .collect(),
        AccessType::Gcp => {
            let mut settings = vec![auth.gcp_id_audience().to_owned()];
            // Workload identity: the impersonated Google service account and the provider.
            if let Some(wi) = &auth.gcp {
                settings.push(wi.service_account.clone());
                settings.push(wi.provider.clone());
            }
            settings
        }
        _ => vec![],
    }
}

/// One Universal Identity rotation chain: the gateways, the access ID and the keyed
/// fingerprint of the init token the mount presented. Rotated tokens are remembered per chain,
/// so a mount only ever continues the chain of the token it presented itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct UidChainKey {
    pub gateways: Vec<String>,
    pub access_id: String,
    pub init_token: [u8; 32],
}

impl UidChainKey {
    pub(crate) fn new(
        fingerprints: &FingerprintKey,
        gateways: &[String],
        access_id: &str,
        init_token: &SecretString,
    ) -> Self {
        UidChainKey {
            gateways: gateways.to_vec(),
            access_id: access_id.to_string(),
            init_token: fingerprints.fingerprint(init_token),
        }
    }
}

/// The latest rotated Universal Identity token of one chain (`None` before the first rotation).
pub(crate) type UidChain = Arc<tokio::sync::Mutex<Option<SecretString>>>;

/// Rotated Universal Identity tokens by chain, held in memory only. Each chain has its own
/// lock, so one chain's rotations never race and chains never share a token. Bounded: when
/// full, the least recently used chain goes (its next mount starts again from the init token).
pub(crate) struct UidChains {
    chains: BoundedMap<UidChainKey, UidChain>,
}

impl UidChains {
    pub(crate) fn new(max_entries: usize) -> Self {
        UidChains {
            chains: BoundedMap::new(max_entries),
        }
    }

    /// The chain of `key`, created empty when unknown.
    pub(crate) fn chain(&self, key: &UidChainKey) -> UidChain {
        self.chains.get_or_insert_with(key, UidChain::default)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.chains.len()
    }
}

/// Lifetime assumed for a token whose expiry Akeyless doesn't state.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// When a cached token must be replaced: after 80% of its remaining life, and never within
/// 30 s of its expiry (then it is not reused at all).
pub fn token_renewal(now: SystemTime, expires_at: Option<SystemTime>) -> SystemTime {
    const MARGIN: Duration = Duration::from_secs(30);
    // The expiry comes from a gateway (untrusted): every step is checked, never a panic.
    let expires = expires_at
        .or_else(|| now.checked_add(DEFAULT_TOKEN_LIFETIME))
        .unwrap_or(now);
    let left = expires.duration_since(now).unwrap_or_default();
    if left <= MARGIN {
        return now;
    }
    let fifth = left.checked_div(5).unwrap_or_default();
    let by_share = now.checked_add(fifth.saturating_mul(4));
    let by_margin = expires.checked_sub(MARGIN);
    match (by_share, by_margin) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(now),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::request::{
        NodePublishSecrets, Parameters, ServiceAccountToken, ServiceAccountTokens,
    };
    use crate::spec::{SecretProviderSpec, SpecDefaults};

    fn jwt(ns: &str, sa: &str) -> String {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            b64(serde_json::json!({"alg":"RS256"})),
            b64(
                serde_json::json!({"sub": format!("system:serviceaccount:{ns}:{sa}"),
                "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa}}})
            )
        )
    }

    fn key_for(scope: &str, ns: &str, sa: &str, uid: &str, token: &str) -> Option<TokenKey> {
        let params = Parameters::new(
            [
                ("akeylessAccessID", "p-1"),
                ("akeylessK8sAuthConfigName", "c"),
                ("akeylessTokenScope", scope),
                ("objects", "- secretPath: /a\n"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let spec = SecretProviderSpec::from_parameters(&params, &SpecDefaults::default()).unwrap();
        let tokens = ServiceAccountTokens::new(BTreeMap::from([(
            "aud".to_string(),
            ServiceAccountToken {
                token: SecretString::from(token.to_string()),
                expiration: None,
            },
        )]));
        let creds =
            Credentials::resolve(&spec.auth, &params, &NodePublishSecrets::default(), &tokens)
                .unwrap();
        let pod = PodIdentity {
            name: Some("p".into()),
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            service_account: Some(sa.into()),
        };
        token_key(&FingerprintKey([7; 32]), &spec, &creds, &pod)
    }

    #[test]
    fn pod_scope_separates_pods_and_credentials() {
        let a = key_for("pod", "ns", "sa", "uid-1", &jwt("ns", "sa")).unwrap();
        let b = key_for("pod", "ns", "sa", "uid-2", &jwt("ns", "sa")).unwrap();
        assert_ne!(a, b);
        let forged = key_for("pod", "ns", "sa", "uid-1", &format!("{}x", jwt("ns", "sa"))).unwrap();
        assert_ne!(
            a, forged,
            "a different credential never maps to the same token"
        );
    }

    #[test]
    fn service_account_scope_shares_within_namespace_only() {
        let a = key_for("serviceAccount", "ns", "sa", "uid-1", &jwt("ns", "sa")).unwrap();
        let b = key_for("serviceAccount", "ns", "sa", "uid-2", &jwt("ns", "sa")).unwrap();
        assert_eq!(a, b);
        let other_ns = key_for("serviceAccount", "ns2", "sa", "uid-3", &jwt("ns2", "sa")).unwrap();
        assert_ne!(a, other_ns);
        // A token whose claims disagree with kubelet's pod info is never shared.
        assert_eq!(
            key_for("serviceAccount", "ns", "sa", "uid-4", &jwt("other", "sa")),
            None
        );
        assert_eq!(
            key_for("serviceAccount", "ns", "sa", "uid-4", "not-a-jwt"),
            None
        );
    }

    /// The token key of pod `ns/sa` (uid-1) mounting with `params` and one pod token for
    /// `audience`.
    fn pod_key(params: &[(&str, &str)], audience: &str) -> TokenKey {
        let params = Parameters::new(
            [
                ("akeylessAccessID", "p-1"),
                ("objects", "- secretPath: /a\n"),
            ]
            .iter()
            .chain(params)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let spec = SecretProviderSpec::from_parameters(&params, &SpecDefaults::default()).unwrap();
        let tokens = ServiceAccountTokens::new(BTreeMap::from([(
            audience.to_string(),
            ServiceAccountToken {
                token: SecretString::from(jwt("ns", "sa")),
                expiration: None,
            },
        )]));
        let creds =
            Credentials::resolve(&spec.auth, &params, &NodePublishSecrets::default(), &tokens)
                .unwrap();
        let pod = PodIdentity {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            service_account: Some("sa".into()),
        };
        token_key(&FingerprintKey([7; 32]), &spec, &creds, &pod).unwrap()
    }

    #[test]
    fn cloud_settings_separate_identities() {
        let key = |role: &str, region: &str| {
            pod_key(
                &[
                    ("akeylessAccessType", "aws_iam"),
                    ("akeylessAWSRoleARN", role),
                    ("akeylessAWSRegion", region),
                ],
                "sts.amazonaws.com",
            )
        };
        let a = key("arn:aws:iam::1:role/a", "us-east-1");
        assert_eq!(a, key("arn:aws:iam::1:role/a", "us-east-1"));
        assert_ne!(a, key("arn:aws:iam::1:role/b", "us-east-1"), "another role");
        assert_ne!(
            a,
            key("arn:aws:iam::1:role/a", "eu-west-1"),
            "another region"
        );

        // gcp as the pod: the same pod token, another Google service account, provider or
        // ID-token audience is another identity.
        const POOL: &str =
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k";
        const POOL_2: &str =
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k2";
        let gcp = |gsa: &str, provider: &str, audience: Option<&str>| {
            let mut pairs = vec![
                ("akeylessAccessType", "gcp"),
                ("akeylessGCPServiceAccount", gsa),
                ("akeylessGCPWorkloadIdentityProvider", provider),
                ("akeylessTokenAudience", "proj.svc.id.goog"),
            ];
            pairs.extend(audience.map(|a| ("akeylessGCPAudience", a)));
            pod_key(&pairs, "proj.svc.id.goog")
        };
        let g = gcp("a@p.iam.gserviceaccount.com", POOL, None);
        assert_eq!(g, gcp("a@p.iam.gserviceaccount.com", POOL, None));
        assert!(g.credential.is_some(), "the pod token is fingerprinted");
        assert_ne!(
            g,
            gcp("b@p.iam.gserviceaccount.com", POOL, None),
            "another Google service account"
        );
        assert_ne!(
            g,
            gcp("a@p.iam.gserviceaccount.com", POOL_2, None),
            "another workload identity provider"
        );
        assert_ne!(
            g,
            gcp("a@p.iam.gserviceaccount.com", POOL, Some("other")),
            "another ID-token audience"
        );
    }

    #[test]
    fn uid_chains_are_per_init_token() {
        let fp = FingerprintKey([7; 32]);
        let chains = UidChains::new(2);
        let gw = vec!["https://gw".to_string()];
        let a = UidChainKey::new(&fp, &gw, "p-1", &SecretString::from("u-a".to_string()));
        let b = UidChainKey::new(&fp, &gw, "p-1", &SecretString::from("u-b".to_string()));
        assert_ne!(a, b);
        let chain_a = chains.chain(&a);
        assert!(Arc::ptr_eq(&chain_a, &chains.chain(&a)));
        assert!(!Arc::ptr_eq(&chain_a, &chains.chain(&b)));
        // Full: the least recently used chain goes ("b"; "a" was used after it).
        assert!(Arc::ptr_eq(&chain_a, &chains.chain(&a)));
        let chain_b = chains.chain(&b);
        assert!(Arc::ptr_eq(&chain_a, &chains.chain(&a)));
        let c = UidChainKey::new(&fp, &gw, "p-2", &SecretString::from("u-a".to_string()));
        chains.chain(&c);
        assert_eq!(chains.len(), 2);
        assert!(Arc::ptr_eq(&chain_a, &chains.chain(&a)));
        assert!(!Arc::ptr_eq(&chain_b, &chains.chain(&b)), "b was evicted");
    }

    #[test]
    fn renewal_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let exp = now + Duration::from_secs(1000);
        assert_eq!(
            token_renewal(now, Some(exp)),
            now + Duration::from_secs(800)
        );
        let soon = now + Duration::from_secs(20);
        assert_eq!(token_renewal(now, Some(soon)), now);
        assert_eq!(token_renewal(now, Some(now - Duration::from_secs(5))), now);
        assert_eq!(token_renewal(now, None), now + Duration::from_secs(480));
    }
}
