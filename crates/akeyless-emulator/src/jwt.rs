//! HS256 JWT minting and verification.
//!
//! The emulator stands in for both the cluster's token issuer and TokenReview: it signs
//! service-account tokens with its own random key and `k8s`/`jwt` auth verify that signature,
//! so tests exercise real token plumbing without a cluster.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::util::{add_saturating, unix_secs};

type HmacSha256 = Hmac<Sha256>;

/// Issuer of the service-account tokens the emulator mints, as in a default cluster.
pub(crate) const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc";

/// Why a JWT was rejected. Messages describe the token, never quote it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum JwtError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("unsupported JWT algorithm (only HS256 is accepted)")]
    UnsupportedAlgorithm,
    #[error("JWT signature verification failed")]
    BadSignature,
    #[error("JWT has no numeric exp claim")]
    MissingExpiry,
    #[error("JWT has expired")]
    Expired,
    #[error("JWT is not valid yet")]
    NotYetValid,
}

/// The emulator's signing key. Random per process, so tokens never outlive the emulator.
pub(crate) struct JwtKey([u8; 32]);

impl JwtKey {
    pub(crate) fn generate() -> Self {
        Self(rand::random())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
    }

    /// Signs `claims` (any JSON value; callers pass an object).
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "akeyless-emulator"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks the signature, `exp` and `nbf`, and returns the claims.
    pub(crate) fn verify(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Map<String, Value>, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Value = decode_segment(header)?;
        // Pin the algorithm so `alg: none` or key-confusion tricks cannot pass.
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_payload_len(token)]);
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;

        let Value::Object(claims) = decode_segment(payload)? else {
            return Err(JwtError::Malformed);
        };
        let now = unix_secs(now);
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(JwtError::MissingExpiry)?;
        if exp <= now {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
            && nbf > now
        {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

/// Length of `header.payload`, the part the signature covers.
fn header_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_segment(segment: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Whether the `aud` claim (a string or an array of strings) contains `audience`.
pub(crate) fn has_audience(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// Parameters of a projected service-account token.
pub(crate) struct ServiceAccountToken<'a> {
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
    pub audience: &'a str,
    pub ttl: Duration,
}

impl ServiceAccountToken<'_> {
    /// Claims laid out like a kubelet-projected token (TokenRequest bound to a pod).
    pub(crate) fn claims(&self, now: SystemTime) -> Value {
        json!({
            "aud": [self.audience],
            "exp": unix_secs(add_saturating(now, self.ttl)),
            "iat": unix_secs(now),
            "nbf": unix_secs(now),
            "iss": SERVICE_ACCOUNT_ISSUER,
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.service_account),
            "kubernetes.io": {
                "namespace": self.namespace,
                "serviceaccount": {
                    "name": self.service_account,
                    "uid": stable_uid(&format!("{}/{}", self.namespace, self.service_account)),
                },
                "pod": {"name": self.pod_name, "uid": self.pod_uid},
            },
        })
    }
}

/// A UUID-shaped id derived from `seed`, so one service account always gets the same uid.
fn stable_uid(seed: &str) -> String {
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The Kubernetes identity carried by verified service-account claims.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct K8sSubject {
    pub namespace: String,
    pub service_account: String,
    pub pod_uid: Option<String>,
    pub subject: Option<String>,
}

/// Reads namespace/SA from the `kubernetes.io` claim, falling back to parsing
/// `sub = system:serviceaccount:<ns>:<sa>` (legacy secret-based tokens have only that).
pub(crate) fn k8s_subject(claims: &Map<String, Value>) -> Option<K8sSubject> {
    let sub = claims.get("sub").and_then(Value::as_str);
    let k8s = claims.get("kubernetes.io");
    let claim = |path: &[&str]| {
        path.iter()
            .try_fold(k8s?, |v, key| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let from_sub = sub
        .and_then(|s| s.strip_prefix("system:serviceaccount:"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(ns, sa)| (ns.to_owned(), sa.to_owned()));
    let namespace =
        claim(&["namespace"]).or_else(|| from_sub.as_ref().map(|(ns, _)| ns.clone()))?;
    let service_account =
        claim(&["serviceaccount", "name"]).or_else(|| from_sub.map(|(_, sa)| sa))?;
    if namespace.is_empty() || service_account.is_empty() {
        return None;
    }
    Some(K8sSubject {
        namespace,
        service_account,
        pod_uid: claim(&["pod", "uid"]),
        subject: sub.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa_token(key: &JwtKey, ttl: Duration) -> String {
        let spec = ServiceAccountToken {
            namespace: "team-a",
            service_account: "app",
            pod_name: "app-0",
            pod_uid: "uid-1",
            audience: "akeyless",
            ttl,
        };
        key.sign(&spec.claims(SystemTime::now()))
    }

    #[test]
    fn round_trip_and_subject() {
        let key = JwtKey::generate();
        let token = sa_token(&key, Duration::from_secs(60));
        let claims = key.verify(&token, SystemTime::now()).unwrap();
        assert!(has_audience(&claims, "akeyless"));
        assert!(!has_audience(&claims, "other"));
        let subject = k8s_subject(&claims).unwrap();
        assert_eq!(subject.namespace, "team-a");
        assert_eq!(subject.service_account, "app");
        assert_eq!(subject.pod_uid.as_deref(), Some("uid-1"));
        assert_eq!(
            subject.subject.as_deref(),
            Some("system:serviceaccount:team-a:app")
        );
    }

    #[test]
    fn rejects_foreign_key_tampering_expiry_and_alg_none() {
        let key = JwtKey::generate();
        let token = sa_token(&key, Duration::from_secs(60));
        let other = JwtKey::generate();
        assert_eq!(
            other.verify(&token, SystemTime::now()),
            Err(JwtError::BadSignature)
        );

        let expired = sa_token(&key, Duration::ZERO);
        assert_eq!(
            key.verify(&expired, SystemTime::now()),
            Err(JwtError::Expired)
        );

        let (_, rest) = token.split_once('.').unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let forged = format!("{none_header}.{rest}");
        assert_eq!(
            key.verify(&forged, SystemTime::now()),
            Err(JwtError::UnsupportedAlgorithm)
        );

        assert_eq!(
            key.verify("a.b", SystemTime::now()),
            Err(JwtError::Malformed)
        );
        assert_eq!(key.verify("", SystemTime::now()), Err(JwtError::Malformed));
        let no_exp = key.sign(&json!({"sub": "x"}));
        assert_eq!(
            key.verify(&no_exp, SystemTime::now()),
            Err(JwtError::MissingExpiry)
        );
    }

    #[test]
    fn subject_falls_back_to_sub_claim() {
        let claims = json!({"sub": "system:serviceaccount:ns1:sa1"});
        let subject = k8s_subject(claims.as_object().unwrap()).unwrap();
        assert_eq!(
            (subject.namespace.as_str(), subject.service_account.as_str()),
            ("ns1", "sa1")
        );
        assert_eq!(subject.pod_uid, None);
        assert!(k8s_subject(json!({"sub": "alice"}).as_object().unwrap()).is_none());
    }
}
