//! Kubernetes auth through a real `TokenReview`, as an Akeyless gateway's Kubernetes auth
//! config does.
//!
//! A gateway's Kubernetes auth config names the cluster's API server, its CA and a token-reviewer
//! JWT. On `/auth` with `access-type: k8s`, the gateway posts the pod's token to
//! `POST /apis/authentication.k8s.io/v1/tokenreviews`, authenticated with the reviewer token (or,
//! when none is configured, with the pod's own token), and trusts the answer: the review says
//! whether the token is valid, for which audiences, and whose it is
//! (`system:serviceaccount:<namespace>:<name>`, plus the pod in `extra`). The auth method's bound
//! namespaces and service accounts are then applied to that answer.
//!
//! When the auth method has an `audience`, the review asks for it (`spec.audiences`), so the API
//! server rejects a token minted for another audience, and the answer must confirm it. Without
//! one, the API server checks the token against its own API audiences.
//!
//! An auth method whose `config_name` has no registered [`K8sAuthConfig`] keeps the
//! self-contained mode: tokens minted by the emulator itself, verified with its own key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jwt::K8sSubject;

/// How long one TokenReview may take, connection included.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest API server error text kept in a denial reason.
const MAX_REASON_CHARS: usize = 200;

/// A gateway Kubernetes auth config, as loaded from a seed's `k8s_auth_configs`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeedK8sAuthConfig {
    /// Matched against `k8s-auth-config-name` and the k8s auth method's `config_name`.
    pub name: String,
    /// e.g. `https://127.0.0.1:6443`. `http://` is accepted for tests.
    pub api_server: String,
    /// PEM CA certificate(s) of the API server. Absent: the Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
    /// Bearer token for the TokenReview call (a service account bound to
    /// `system:auth-delegator`). Absent: the reviewed token authenticates its own review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_reviewer_jwt: Option<String>,
}

impl fmt::Debug for SeedK8sAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedK8sAuthConfig")
            .field("name", &self.name)
            .field("api_server", &self.api_server)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|_| "<pem>"))
            .field(
                "token_reviewer_jwt",
                &self.token_reviewer_jwt.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A registered Kubernetes auth config with its HTTP client.
#[derive(Clone)]
pub(crate) struct K8sAuthConfig {
    review_url: String,
    reviewer_jwt: Option<Arc<str>>,
    client: reqwest::Client,
}

impl fmt::Debug for K8sAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8sAuthConfig")
            .field("review_url", &self.review_url)
            .finish_non_exhaustive()
    }
}

impl K8sAuthConfig {
    /// Validates the seed entry and builds its client (TLS roots: the CA, else Mozilla's).
    pub(crate) fn new(seed: &SeedK8sAuthConfig) -> Result<Self, String> {
        let base = url::Url::parse(&seed.api_server)
            .map_err(|e| format!("k8s auth config {}: api_server: {e}", seed.name))?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(format!(
                "k8s auth config {}: api_server must be an http(s) URL",
                seed.name
            ));
        }
        let mut roots = rustls::RootCertStore::empty();
        match &seed.ca_cert_pem {
            Some(pem) => {
                let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("k8s auth config {}: ca_cert_pem: {e}", seed.name))?;
                if certs.is_empty() {
                    return Err(format!(
                        "k8s auth config {}: ca_cert_pem holds no certificate",
                        seed.name
                    ));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        format!(
                            "k8s auth config {}: unusable CA certificate: {e}",
                            seed.name
                        )
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REVIEW_TIMEOUT)
            .build()
            .map_err(|e| format!("k8s auth config {}: HTTP client: {e}", seed.name))?;
        let review_url = format!(
            "{}/apis/authentication.k8s.io/v1/tokenreviews",
            seed.api_server.trim_end_matches('/')
        );
        Ok(Self {
            review_url,
            reviewer_jwt: seed
                .token_reviewer_jwt
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(Arc::from),
            client,
        })
    }

    /// Reviews `token` for `audience` (when given) and returns whose it is. `Err` is a denial
    /// reason; it never quotes either token.
    pub(crate) async fn review(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<K8sSubject, String> {
        let mut spec = json!({ "token": token });
        if let Some(audience) = audience {
            spec["audiences"] = json!([audience]);
        }
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        });
        let bearer = self.reviewer_jwt.as_deref().unwrap_or(token);
        let response = self
            .client
            .post(&self.review_url)
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    "timed out"
                } else {
                    "failed"
                };
                format!("token review {kind}: the Kubernetes API server could not be reached")
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| "token review failed: unreadable API server answer".to_owned())?;
        if !status.is_success() {
            // 401: the reviewer token is invalid; 403: it may not create TokenReviews.
            return Err(format!(
                "token review refused by the Kubernetes API server (HTTP {})",
                status.as_u16()
            ));
        }
        let review: Value = serde_json::from_str(&text)
            .map_err(|_| "token review failed: the API server answer is not JSON".to_owned())?;
        subject_from_review(&review, audience)
    }
}

/// Interprets a TokenReview answer.
pub(crate) fn subject_from_review(
    review: &Value,
    audience: Option<&str>,
) -> Result<K8sSubject, String> {
    let status = &review["status"];
    if status["authenticated"].as_bool() != Some(true) {
        let error = status["error"].as_str().unwrap_or("");
        let error: String = error.chars().take(MAX_REASON_CHARS).collect();
        return Err(if error.is_empty() {
            "service account token was not authenticated by TokenReview".to_owned()
        } else {
            format!("service account token was not authenticated by TokenReview: {error}")
        });
    }
    if let Some(audience) = audience {
        let confirmed = status["audiences"]
            .as_array()
            .is_some_and(|auds| auds.iter().any(|a| a.as_str() == Some(audience)));
        if !confirmed {
            return Err("service account token audience is not accepted".to_owned());
        }
    }
    let user = &status["user"];
    let username = user["username"].as_str().unwrap_or("");
    let (namespace, service_account) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'))
        .ok_or("token does not belong to a service account")?;
    let extra = |key: &str| {
        user["extra"][key]
            .as_array()
            .and_then(|values| values.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(K8sSubject {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        pod_uid: extra("authentication.kubernetes.io/pod-uid"),
        subject: Some(username.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(authenticated: bool, username: &str, audiences: &[&str]) -> Value {
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "status": {
                "authenticated": authenticated,
                "user": {
                    "username": username,
                    "uid": "9a4e",
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "extra": {
                        "authentication.kubernetes.io/pod-name": ["app-0"],
                        "authentication.kubernetes.io/pod-uid": ["uid-1"],
                    },
                },
                "audiences": audiences,
            },
        })
    }

    #[test]
    fn authenticated_review_gives_the_service_account_and_pod() {
        let subject = subject_from_review(
            &review(true, "system:serviceaccount:team-a:app", &["akeyless"]),
            Some("akeyless"),
        )
        .unwrap();
        assert_eq!(subject.namespace, "team-a");
        assert_eq!(subject.service_account, "app");
        assert_eq!(subject.pod_uid.as_deref(), Some("uid-1"));
        assert_eq!(
            subject.subject.as_deref(),
            Some("system:serviceaccount:team-a:app")
        );
    }

    #[test]
    fn unauthenticated_wrong_audience_and_non_service_account_users_are_denied() {
        let mut denied = review(false, "", &[]);
        denied["status"]["error"] = json!("[invalid bearer token, token audiences don't match]");
        let reason = subject_from_review(&denied, Some("akeyless")).unwrap_err();
        assert!(reason.contains("not authenticated"), "{reason}");
        assert!(reason.contains("audiences"), "{reason}");

        let other_audience = review(true, "system:serviceaccount:a:b", &["other"]);
        assert!(subject_from_review(&other_audience, Some("akeyless")).is_err());
        assert!(subject_from_review(&other_audience, None).is_ok());

        let admin = review(true, "kubernetes-admin", &["akeyless"]);
        assert!(subject_from_review(&admin, Some("akeyless")).is_err());
        assert!(subject_from_review(&json!({}), None).is_err());
    }

    /// A stand-in TokenReview endpoint on 127.0.0.1 that checks what the emulator sends
    /// (reviewer bearer, audiences) and answers like kube-apiserver. The real apiserver is
    /// exercised by tests/e2e (driver suite).
    async fn review_endpoint() -> (String, tokio::task::JoinHandle<()>) {
        use axum::http::HeaderMap;
        async fn review(
            headers: HeaderMap,
            axum::Json(body): axum::Json<Value>,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some("Bearer reviewer-jwt")
            {
                return (axum::http::StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
            }
            let spec = &body["spec"];
            let audiences = spec["audiences"].clone();
            let status = match spec["token"].as_str() {
                Some("pod-jwt-app") if audiences == json!(["akeyless"]) => json!({
                    "authenticated": true,
                    "user": {"username": "system:serviceaccount:team-a:app",
                             "extra": {"authentication.kubernetes.io/pod-uid": ["uid-7"]}},
                    "audiences": ["akeyless"],
                }),
                Some("pod-jwt-intruder") => json!({
                    "authenticated": true,
                    "user": {"username": "system:serviceaccount:team-a:intruder"},
                    "audiences": ["akeyless"],
                }),
                _ => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            axum::Json(json!({"kind": "TokenReview", "status": status})).into_response()
        }
        let app = axum::Router::new().route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            axum::routing::post(review),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, task)
    }

    #[tokio::test]
    async fn auth_uses_the_review_and_applies_bindings() {
        use base64::Engine as _;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (api_server, task) = review_endpoint().await;
        let emulator = crate::Emulator::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let seed: crate::Seed = serde_json::from_value(json!({
            "k8s_auth_configs": [{"name": "cluster", "api_server": api_server,
                                  "token_reviewer_jwt": "reviewer-jwt"}],
            "auth_methods": [{"type": "k8s", "access_id": "p-k", "config_name": "cluster",
                              "bound_namespaces": ["team-a"], "bound_service_accounts": ["app"],
                              "audience": "akeyless"}],
        }))
        .unwrap();
        emulator.state().try_load_seed(&seed).unwrap();
        let http = reqwest::Client::new();
        let auth = |token: &str| {
            let body = json!({
                "access-type": "k8s", "access-id": "p-k", "k8s-auth-config-name": "cluster",
                "k8s-service-account-token":
                    base64::engine::general_purpose::STANDARD.encode(token),
            });
            let request = http.post(format!("{}/auth", emulator.url())).json(&body);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };

        let (status, body) = auth("pod-jwt-app").await;
        assert_eq!(status, 200, "{body}");
        let identity = emulator.state().requests()[0].identity.clone().unwrap();
        assert_eq!(identity.namespace.as_deref(), Some("team-a"));
        assert_eq!(identity.service_account.as_deref(), Some("app"));
        assert_eq!(identity.pod_uid.as_deref(), Some("uid-7"));

        let (status, body) = auth("pod-jwt-intruder").await;
        assert_eq!(status, 401);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("intruder is not bound"),
            "{body}"
        );

        let (status, body) = auth("forged").await;
        assert_eq!(status, 401);
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("not authenticated by TokenReview"),
            "{error}"
        );
        assert!(
            !error.contains("forged"),
            "the token must not be quoted: {error}"
        );

        // The emulator's own tokens are not valid for a cluster-backed config.
        let own = emulator.state().issue_service_account_token(
            "team-a",
            "app",
            "p",
            "u",
            "akeyless",
            std::time::Duration::from_secs(60),
        );
        assert_eq!(auth(&own).await.0, 401);

        // A wrong reviewer token: the API server refuses the review itself.
        let seed: crate::Seed = serde_json::from_value(json!({
            "k8s_auth_configs": [{"name": "cluster", "api_server": api_server,
                                  "token_reviewer_jwt": "wrong"}],
        }))
        .unwrap();
        emulator.state().try_load_seed(&seed).unwrap();
        let (status, body) = auth("pod-jwt-app").await;
        assert_eq!(status, 401);
        assert!(
            body["error"].as_str().unwrap().contains("HTTP 401"),
            "{body}"
        );

        let bad: crate::Seed = serde_json::from_value(json!({
            "k8s_auth_configs": [{"name": "x", "api_server": "not a url"}],
        }))
        .unwrap();
        assert!(emulator.state().try_load_seed(&bad).is_err());
        emulator.shutdown().await;
        task.abort();
    }

    #[test]
    fn config_validation_and_redacted_debug() {
        let seed = SeedK8sAuthConfig {
            name: "c".into(),
            api_server: "https://127.0.0.1:6443/".into(),
            ca_cert_pem: None,
            token_reviewer_jwt: Some("reviewer-secret-jwt".into()),
        };
        let config = K8sAuthConfig::new(&seed).unwrap();
        assert_eq!(
            config.review_url,
            "https://127.0.0.1:6443/apis/authentication.k8s.io/v1/tokenreviews"
        );
        assert!(!format!("{seed:?}").contains("reviewer-secret-jwt"));
        assert!(!format!("{config:?}").contains("reviewer-secret-jwt"));

        let bad_url = SeedK8sAuthConfig {
            api_server: "ftp://x".into(),
            ..seed.clone()
        };
        assert!(K8sAuthConfig::new(&bad_url).is_err());
        let bad_ca = SeedK8sAuthConfig {
            ca_cert_pem: Some("not a pem".into()),
            ..seed
        };
        assert!(K8sAuthConfig::new(&bad_ca).is_err());
    }
}
