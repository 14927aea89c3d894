//! End-to-end tests over real HTTP on 127.0.0.1:0.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Emulator, EmulatorState};

const ACCESS_ID: &str = "p-key";
const ACCESS_KEY: &str = "super-secret-access-key";
const K8S_ID: &str = "p-k8s";

struct Fixture {
    emulator: Emulator,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Self {
        // reqwest is built with `rustls-no-provider`; a provider must exist even for http://.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let state = emulator.state();
        state.add_access_key_auth(ACCESS_ID, ACCESS_KEY);
        state.add_k8s_auth(K8S_ID, "k8s-conf", &["team-a", "team-b"], &[]);
        state.grant_read(ACCESS_ID, "/app/*", &[]);
        state.grant_read(K8S_ID, "/k8s/*", &["team-a"]);
        Self {
            emulator,
            http: reqwest::Client::new(),
        }
    }

    fn state(&self) -> &EmulatorState {
        self.emulator.state()
    }

    async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.emulator.url()))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON response: {text}"));
        (status, value)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    async fn login(&self) -> String {
        let (status, body) = self
            .post(
                "/auth",
                json!({"access-id": ACCESS_ID, "access-key": ACCESS_KEY}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn k8s_login(&self, namespace: &str) -> (u16, Value) {
        let jwt = self.state().issue_service_account_token(
            namespace,
            "app",
            "app-0",
            "pod-uid-1",
            "akeyless",
            Duration::from_secs(600),
        );
        self.post("/auth", k8s_auth_body(&STANDARD.encode(jwt)))
            .await
    }
}

fn k8s_auth_body(token: &str) -> Value {
    json!({
        "access-type": "k8s",
        "access-id": K8S_ID,
        "k8s-auth-config-name": "k8s-conf",
        "k8s-service-account-token": token,
        "gateway-url": "https://gw.example:8000",
    })
}

fn error_text(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {body}"))
}

#[tokio::test]
async fn access_key_auth() {
    let f = Fixture::new().await;
    let (status, body) = f
        .post(
            "/auth",
            json!({"access-id": ACCESS_ID, "access-key": ACCESS_KEY, "json": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("t-") && token.len() == 34, "{token}");
    assert_eq!(body["creds"]["token"], token);
    assert_eq!(body["creds"]["access_id"], ACCESS_ID);
    assert!(body["creds"]["expiry"].as_i64().unwrap() > 0);
    let expiration = body["expiration"].as_str().unwrap();
    assert!(
        expiration.len() == 20 && expiration.ends_with('Z'),
        "{expiration}"
    );

    // `api_key` is accepted as an alias.
    let (status, _) = f
        .post(
            "/auth",
            json!({"access-id": ACCESS_ID, "access-type": "api_key", "access-key": ACCESS_KEY}),
        )
        .await;
    assert_eq!(status, 200);

    for bad in [
        json!({"access-id": ACCESS_ID, "access-key": "wrong-key-value"}),
        json!({"access-id": ACCESS_ID}),
        json!({"access-id": "p-unknown", "access-key": ACCESS_KEY}),
        json!({"access-id": ACCESS_ID, "access-type": "k8s", "access-key": ACCESS_KEY}),
    ] {
        let (status, body) = f.post("/auth", bad.clone()).await;
        assert_eq!(status, 401, "{bad}: {body}");
        let error = error_text(&body);
        assert!(
            error.contains("Status 401 Unauthorized, Error: UnauthorizedAccess"),
            "{error}"
        );
        assert!(
            !error.contains(ACCESS_KEY) && !error.contains("wrong-key-value"),
            "{error}"
        );
    }

    let (status, body) = f.post("/auth", json!({"access-key": ACCESS_KEY})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = f
        .post(
            "/auth",
            json!({"access-id": ACCESS_ID, "access-key": 12345}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(!error_text(&body).contains("12345"));

    let log = f.state().requests();
    assert_eq!(log[0].identity.as_ref().unwrap().access_id, ACCESS_ID);
    assert_eq!(log[0].identity.as_ref().unwrap().access_type, "access_key");
    assert_eq!(log[0].fields, vec!["access-id", "access-key", "json"]);
    assert!(log[2].identity.is_none());
    assert_eq!(f.state().count("/auth"), 8);
}

#[tokio::test]
async fn k8s_auth() {
    let f = Fixture::new().await;
    let (status, body) = f.k8s_login("team-a").await;
    assert_eq!(status, 200, "{body}");
    let identity = f.state().requests()[0].identity.clone().unwrap();
    assert_eq!(identity.access_type, "k8s");
    assert_eq!(identity.namespace.as_deref(), Some("team-a"));
    assert_eq!(identity.service_account.as_deref(), Some("app"));
    assert_eq!(identity.pod_uid.as_deref(), Some("pod-uid-1"));
    assert_eq!(
        identity.subject.as_deref(),
        Some("system:serviceaccount:team-a:app")
    );

    // Namespace not bound.
    let (status, body) = f.k8s_login("team-c").await;
    assert_eq!(status, 401, "{body}");

    // Signed by another "cluster".
    let foreign = EmulatorState::new().issue_service_account_token(
        "team-a",
        "app",
        "p",
        "u",
        "akeyless",
        Duration::from_secs(600),
    );
    let (status, body) = f
        .post("/auth", k8s_auth_body(&STANDARD.encode(&foreign)))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(error_text(&body).contains("signature"), "{body}");

    // Raw JWT instead of base64(JWT).
    let raw = f.state().issue_service_account_token(
        "team-a",
        "app",
        "p",
        "u",
        "akeyless",
        Duration::from_secs(600),
    );
    let (status, body) = f.post("/auth", k8s_auth_body(&raw)).await;
    assert_eq!(status, 401, "{body}");
    let error = error_text(&body);
    assert!(error.contains("base64"), "{error}");
    assert!(!error.contains(&raw), "token echoed: {error}");

    // Expired.
    let expired = f.state().issue_service_account_token(
        "team-a",
        "app",
        "p",
        "u",
        "akeyless",
        Duration::ZERO,
    );
    let (status, body) = f
        .post("/auth", k8s_auth_body(&STANDARD.encode(expired)))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(error_text(&body).contains("expired"), "{body}");

    // Wrong config name.
    let good = STANDARD.encode(&raw);
    let mut wrong_config = k8s_auth_body(&good);
    wrong_config["k8s-auth-config-name"] = json!("other-conf");
    assert_eq!(f.post("/auth", wrong_config).await.0, 401);

    // Audience-bound method.
    f.state()
        .add_k8s_auth_with_audience("p-aud", "aud-conf", &[], &["app"], "akeyless");
    let mut body = k8s_auth_body(&good);
    body["access-id"] = json!("p-aud");
    body["k8s-auth-config-name"] = json!("aud-conf");
    assert_eq!(f.post("/auth", body.clone()).await.0, 200);
    let other_aud = f.state().issue_service_account_token(
        "team-a",
        "app",
        "p",
        "u",
        "vault",
        Duration::from_secs(600),
    );
    body["k8s-service-account-token"] = json!(STANDARD.encode(other_aud));
    assert_eq!(f.post("/auth", body).await.0, 401);
}

#[tokio::test]
async fn jwt_auth() {
    let f = Fixture::new().await;
    f.state().add_jwt_auth("p-jwt", &["ci"]);
    let exp = super::util::unix_secs(std::time::SystemTime::now()) + 600;
    let good = f.state().issue_jwt(json!({"sub": "ci", "exp": exp}));
    let (status, body) = f
        .post(
            "/auth",
            json!({"access-id": "p-jwt", "access-type": "jwt", "jwt": good}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        f.state().requests()[0]
            .identity
            .as_ref()
            .unwrap()
            .subject
            .as_deref(),
        Some("ci")
    );

    let other = f.state().issue_jwt(json!({"sub": "someone", "exp": exp}));
    let (status, _) = f
        .post(
            "/auth",
            json!({"access-id": "p-jwt", "access-type": "jwt", "jwt": other}),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn get_secret_value() {
    let f = Fixture::new().await;
    let state = f.state();
    assert_eq!(state.put_static_secret("/app/a", "a1"), 1);
    assert_eq!(state.put_static_secret("/app/a", "a2"), 2);
    state.put_static_secret("/app/b", "b1");
    state.put_static_secret("/other/c", "c1");
    state.put_rotated_secret("/app/rotated", json!({"password": "p"}));
    let token = f.login().await;

    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a", "/app/b"], "token": token}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"/app/a": "a2", "/app/b": "b1"}));

    // Version pinning; 0 means latest; names are echoed as sent.
    let (_, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["app/a"], "version": 1, "token": token}),
        )
        .await;
    assert_eq!(body, json!({"app/a": "a1"}));
    let (_, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a"], "version": 0, "token": token}),
        )
        .await;
    assert_eq!(body, json!({"/app/a": "a2"}));
    let (status, _) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a"], "version": 3, "token": token}),
        )
        .await;
    assert_eq!(status, 404);

    // 404 only for permitted names; 401 for unpermitted ones whether they exist or not.
    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/missing"], "token": token}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(error_text(&body).contains("Status 404 Not Found, Error: NotFound"));
    for name in ["/other/c", "/other/missing"] {
        let (status, body) = f
            .post(
                "/get-secret-value",
                json!({"names": ["/app/a", name], "token": token}),
            )
            .await;
        assert_eq!(status, 401, "{name}: {body}");
    }

    // Malformed requests.
    for bad in [
        json!({"names": "/app/a", "token": token}),
        json!({"names": [], "token": token}),
        json!({"token": token}),
        json!({"names": ["/app/a"], "ignore-cache": true, "token": token}),
        json!({"names": ["/app/a"], "version": "1", "token": token}),
        json!({"names": ["/app/a"], "version": -2, "token": token}),
        json!({"names": ["/app/rotated"], "token": token}),
    ] {
        let (status, body) = f.post("/get-secret-value", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    for raw in ["not json", "", "[1]", "{\"names\": [\"/app/a\"]"] {
        let (status, body) = f.post_raw("/get-secret-value", raw).await;
        assert_eq!(status, 400, "{raw}: {body}");
    }
    let (status, _) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a"], "ignore-cache": "true", "token": token}),
        )
        .await;
    assert_eq!(status, 200);

    // Token problems are 401 and never echo the token.
    for bad_token in [json!(null), json!("t-0000"), json!("")] {
        let (status, body) = f
            .post(
                "/get-secret-value",
                json!({"names": ["/app/a"], "token": bad_token}),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert!(!error_text(&body).contains("t-0000"));
    }
    state.revoke_all_tokens();
    let (status, _) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a"], "token": token}),
        )
        .await;
    assert_eq!(status, 401);

    state.set_token_ttl(Duration::from_millis(1100));
    let short = f.login().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/app/a"], "token": short}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(error_text(&body).contains("expired"), "{body}");
}

#[tokio::test]
async fn namespace_sub_claim_grants() {
    let f = Fixture::new().await;
    f.state().put_static_secret("/k8s/s", "v");
    let (_, a) = f.k8s_login("team-a").await;
    let (_, b) = f.k8s_login("team-b").await;
    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/k8s/s"], "token": a["token"]}),
        )
        .await;
    assert_eq!((status, body), (200, json!({"/k8s/s": "v"})));
    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/k8s/s"], "token": b["token"]}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(error_text(&body).contains("sub claim mismatch"), "{body}");
    let log = f.state().requests();
    assert_eq!(
        log.last()
            .unwrap()
            .identity
            .as_ref()
            .unwrap()
            .namespace
            .as_deref(),
        Some("team-b")
    );
}

#[tokio::test]
async fn rotated_certificate_and_dynamic_shapes() {
    let f = Fixture::new().await;
    let state = f.state();
    state.put_rotated_secret("/app/db", json!({"username": "u", "password": "p1"}));
    state.put_rotated_secret("/app/db", json!({"username": "u", "password": "p2"}));
    state.put_certificate("/app/tls", "CERT", Some("KEY"));
    state.put_certificate("/app/cert-only", "CERT2", None);
    state.put_dynamic_secret(
        "/app/github",
        json!({"token": "", "permissions": {"contents": "read"}}),
        Duration::from_secs(3600),
    );
    let token = f.login().await;

    let (status, body) = f
        .post(
            "/get-rotated-secret-value",
            json!({"names": "/app/db", "json": true, "token": token}),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"value": {"username": "u", "password": "p2"}}))
    );
    let (_, body) = f
        .post(
            "/get-rotated-secret-value",
            json!({"names": "/app/db", "version": 1, "token": token}),
        )
        .await;
    assert_eq!(body["value"]["password"], "p1");
    let (status, _) = f
        .post(
            "/get-rotated-secret-value",
            json!({"names": ["/app/db"], "token": token}),
        )
        .await;
    assert_eq!(status, 400);

    let (_, body) = f
        .post(
            "/get-certificate-value",
            json!({"name": "/app/tls", "token": token}),
        )
        .await;
    assert_eq!(
        body,
        json!({"certificate_pem": "CERT", "private_key_pem": "KEY"})
    );
    let (_, body) = f
        .post(
            "/get-certificate-value",
            json!({"name": "/app/cert-only", "token": token}),
        )
        .await;
    assert_eq!(body, json!({"certificate_pem": "CERT2"}));

    let request = json!({"name": "/app/github", "args": ["repo=x"], "token": token});
    let (status, first) = f.post("/get-dynamic-secret-value", request.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = f.post("/get-dynamic-secret-value", request).await;
    assert_eq!(first["permissions"]["contents"], "read");
    assert_eq!(first["ttl_in_minutes"], "60");
    assert!(first["id"].as_str().unwrap().starts_with("tmp."));
    assert!(!first["token"].as_str().unwrap().is_empty());
    assert_ne!(first["token"], second["token"]);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(state.requests().last().unwrap().args, vec!["repo=x"]);
    let (status, _) = f
        .post(
            "/get-dynamic-secret-value",
            json!({"name": "/app/github", "args": "repo=x", "token": token}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn describe_item_and_validate_token() {
    let f = Fixture::new().await;
    let state = f.state();
    state.put_static_secret("/app/s", "1");
    state.put_static_secret("/app/s", "2");
    state.put_dynamic_secret("/app/dyn", json!({"password": ""}), Duration::from_secs(60));
    let token = f.login().await;

    let (status, item) = f
        .post("/describe-item", json!({"name": "app/s", "token": token}))
        .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["item_name"], "/app/s");
    assert_eq!(item["item_type"], "STATIC_SECRET");
    assert_eq!(item["last_version"], 2);
    assert_eq!(item["is_enabled"], true);
    assert!(item["item_id"].is_u64());
    assert!(item.get("item_versions").is_none());

    let (_, item) = f
        .post(
            "/describe-item",
            json!({"name": "/app/s", "show-versions": true, "token": token}),
        )
        .await;
    let versions: Vec<_> = item["item_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(versions, vec![json!(1), json!(2)]);

    let (_, item) = f
        .post(
            "/describe-item",
            json!({"name": "/app/dyn", "token": token}),
        )
        .await;
    assert_eq!(
        (item["item_type"].clone(), item["last_version"].clone()),
        (json!("DYNAMIC_SECRET"), json!(0))
    );

    assert_eq!(
        f.post(
            "/describe-item",
            json!({"name": "/app/none", "token": token})
        )
        .await
        .0,
        404
    );
    assert_eq!(
        f.post(
            "/describe-item",
            json!({"name": "/secret/none", "token": token})
        )
        .await
        .0,
        401
    );
    assert_eq!(
        f.post("/describe-item", json!({"token": token})).await.0,
        400
    );

    let (status, body) = f.post("/validate-token", json!({"token": token})).await;
    assert_eq!(status, 200);
    assert_eq!(body["is_valid"], true);
    assert!(body["ttl"].as_u64().unwrap() > 3500);
    assert!(body["expiration"].is_string());
    assert_eq!(
        f.post("/validate-token", json!({"token": "t-nope"}))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn routing_errors_are_json() {
    let f = Fixture::new().await;
    let (status, body) = f.post("/list-everything", json!({})).await;
    assert_eq!(status, 404);
    assert!(error_text(&body).contains("unknown command"));

    let response = f
        .http
        .get(format!("{}/auth", f.emulator.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string());

    let (status, body) = f.post("/__emulator/nope", json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(f.state().count("/__emulator/nope"), 0);
}

#[tokio::test]
async fn fault_injection() {
    let f = Fixture::new().await;
    f.state().put_static_secret("/app/a", "v");
    let token = f.login().await;
    let read = json!({"names": ["/app/a"], "token": token});

    f.state().fail_next("/get-secret-value", 503, 2);
    for _ in 0..2 {
        let (status, body) = f.post("/get-secret-value", read.clone()).await;
        assert_eq!(status, 503);
        assert!(body["error"].is_string());
    }
    assert_eq!(f.post("/get-secret-value", read.clone()).await.0, 200);

    f.state().fail_next_with_retry_after("*", 429, 1, 7);
    let response = f
        .http
        .post(format!("{}/get-secret-value", f.emulator.url()))
        .json(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    f.state().drop_next("/get-secret-value", 1);
    let result = f
        .http
        .post(format!("{}/get-secret-value", f.emulator.url()))
        .json(&read)
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert_eq!(f.post("/get-secret-value", read.clone()).await.0, 200);

    f.state()
        .set_delay("/get-secret-value", Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(f.post("/get-secret-value", read.clone()).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    f.state().set_delay("/get-secret-value", Duration::ZERO);

    f.state().fail_next("/describe-item", 500, 5);
    f.state().clear_faults();
    assert_eq!(
        f.post("/describe-item", json!({"name": "/app/a", "token": token}))
            .await
            .0,
        200
    );

    let statuses: Vec<u16> = f
        .state()
        .requests()
        .iter()
        .filter(|r| r.path == "/get-secret-value")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 503, 200, 429, 0, 200, 200]);
}

#[tokio::test]
async fn request_log() {
    let f = Fixture::new().await;
    f.state().put_static_secret("/app/a", "hunter2-value");
    let token = f.login().await;
    f.post(
        "/get-secret-value",
        json!({"names": ["/app/a", "/app/b"], "version": 1, "ignore-cache": "true", "token": token}),
    )
    .await;
    let last = f.state().requests().pop().unwrap();
    assert_eq!(last.path, "/get-secret-value");
    assert_eq!(last.status, 404);
    assert_eq!(last.items, vec!["/app/a", "/app/b"]);
    assert_eq!(last.version, Some(1));
    assert_eq!(last.ignore_cache.as_deref(), Some("true"));
    assert_eq!(
        last.fields,
        vec!["ignore-cache", "names", "token", "version"]
    );
    assert_eq!(last.identity.unwrap().access_id, ACCESS_ID);
    let debug = format!("{:?}", f.state().requests());
    assert!(!debug.contains(&token) && !debug.contains(ACCESS_KEY) && !debug.contains("hunter2"));

    assert_eq!(f.state().count("/get-secret-value"), 1);
    f.state().clear_requests();
    assert_eq!(f.state().count("/get-secret-value"), 0);
    assert!(f.state().requests().is_empty());
}

#[tokio::test]
async fn admin_api() {
    let f = Fixture::new().await;
    let seed = json!({
        "auth_methods": [{"type": "k8s", "access_id": "p-seeded", "config_name": "c", "bound_namespaces": ["ns"]}],
        "grants": [{"access_id": "p-seeded", "path": "/seeded/*"}],
        "items": [{"type": "static_secret", "name": "/seeded/s", "versions": ["v1"]}]
    });
    assert_eq!(f.post("/__emulator/seed", seed).await.0, 200);
    let (status, body) = f.post("/__emulator/seed", json!({"bogus": 1})).await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = f
        .post(
            "/__emulator/static-secret",
            json!({"name": "/seeded/s", "value": "v2"}),
        )
        .await;
    assert_eq!(body["version"], 2);

    let (status, body) = f
        .post(
            "/__emulator/issue-sa-token",
            json!({"namespace": "ns", "service_account": "sa", "pod_name": "p", "pod_uid": "u", "audience": "a", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(status, 200);
    let auth = json!({
        "access-type": "k8s", "access-id": "p-seeded", "k8s-auth-config-name": "c",
        "k8s-service-account-token": STANDARD.encode(body["token"].as_str().unwrap()),
    });
    let (status, body) = f.post("/auth", auth).await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        f.post(
            "/__emulator/fault",
            json!({"path": "/get-secret-value", "status": 502})
        )
        .await
        .0,
        200
    );
    let read = json!({"names": ["/seeded/s"], "token": body["token"]});
    assert_eq!(f.post("/get-secret-value", read.clone()).await.0, 502);
    let (status, value) = f.post("/get-secret-value", read).await;
    assert_eq!((status, value), (200, json!({"/seeded/s": "v2"})));

    let log: Value = f
        .http
        .get(format!("{}/__emulator/requests", f.emulator.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            json!("/auth"),
            json!("/get-secret-value"),
            json!("/get-secret-value")
        ]
    );
    assert_eq!(log[0]["identity"]["namespace"], "ns");

    assert_eq!(f.post("/__emulator/reset-requests", json!({})).await.0, 200);
    assert!(f.state().requests().is_empty());
    assert_eq!(
        f.http
            .get(format!("{}/__emulator/seed", f.emulator.url()))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let f = Fixture::new().await;
    let url = f.emulator.url();
    f.login().await;
    f.emulator.shutdown().await;
    let result = f.http.post(format!("{url}/auth")).body("{}").send().await;
    assert!(result.is_err());
}

/// The metadata server's identity endpoint lives where GCE serves it
/// (`service-accounts/default/identity`, with `audience` and `format=full`, header
/// `Metadata-Flavor: Google`). (tests/auth_methods.rs checks that the provider asks exactly there.)
#[tokio::test]
async fn gcp_metadata_identity_path() {
    let f = Fixture::new().await;
    f.state()
        .set_gcp_node_service_account("node@p.iam.gserviceaccount.com");
    let base = f.emulator.url();
    let get = |path: String, flavor: bool| {
        let mut request = f.http.get(format!("{base}{path}"));
        if flavor {
            request = request.header("Metadata-Flavor", "Google");
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let real = "/computeMetadata/v1/instance/service-accounts/default/identity";
    assert_eq!(
        get(format!("{real}?audience=a&format=full"), true).await,
        200
    );
    assert_eq!(
        get(format!("{real}?audience=a&format=full"), false).await,
        403
    );
    assert_eq!(get(format!("{real}?audience=a"), true).await, 400);
    assert_eq!(get(format!("{real}?format=full"), true).await, 400);
    // The path older releases asked: no such route on a real metadata server.
    let old = "/computeMetadata/v1/instance/service-account/identity?audience=a&format=full";
    assert_ne!(get(old.to_owned(), true).await, 200);
}

/// Every command is also served under the gateway prefixes `/api/v2` and `/v2`; the request
/// log names the command without the prefix.
#[tokio::test]
async fn gateway_prefixes() {
    let f = Fixture::new().await;
    f.state().put_static_secret("/app/a", "A");
    for prefix in ["", "/api/v2", "/v2"] {
        let (status, body) = f
            .post(
                &format!("{prefix}/auth"),
                json!({"access-id": ACCESS_ID, "access-type": "access_key", "access-key": ACCESS_KEY}),
            )
            .await;
        assert_eq!(status, 200, "{prefix}: {body}");
        let token = body["token"].as_str().unwrap();
        let (status, body) = f
            .post(
                &format!("{prefix}/get-secret-value"),
                json!({"names": ["/app/a"], "token": token}),
            )
            .await;
        assert_eq!(
            (status, body["/app/a"].as_str()),
            (200, Some("A")),
            "{prefix}"
        );
    }
    assert_eq!(f.state().count("/auth"), 3);
    assert_eq!(f.state().count("/get-secret-value"), 3);
    let (status, _) = f.post("/api/v3/auth", json!({})).await;
    assert_eq!(status, 404);
}

/// Item calls take `uid-token` (a Universal Identity token, used directly) instead of `token`;
/// the auth method's `deny-inheritance` and `deny-rotate` refuse forks and rotations, never
/// `/auth` with the token itself.
#[tokio::test]
async fn universal_identity_options_and_uid_token_on_items() {
    let f = Fixture::new().await;
    let s = f.state();
    s.put_static_secret("/uid/a", "A");
    let plain = s.add_universal_identity_auth("p-uid");
    s.grant_read("p-uid", "/uid/*", &[]);
    let (status, body) = f
        .post(
            "/get-secret-value",
            json!({"names": ["/uid/a"], "uid-token": plain}),
        )
        .await;
    assert_eq!(
        (status, body["/uid/a"].as_str()),
        (200, Some("A")),
        "{body}"
    );
    let (status, _) = f
        .post(
            "/describe-item",
            json!({"name": "/uid/a", "uid-token": "u-unknown000000000000000"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = f.post("/describe-item", json!({"name": "/uid/a"})).await;
    assert_eq!(status, 401, "no token at all");

    for (deny_inheritance, deny_rotate) in [(true, false), (false, true), (true, true)] {
        let id = format!("p-uid-{deny_inheritance}-{deny_rotate}");
        let token = s.add_universal_identity_auth_with(&id, deny_inheritance, deny_rotate);
        let (fork, _) = f
            .post(
                "/uid-rotate-token",
                json!({"uid-token": token, "fork": true}),
            )
            .await;
        assert_eq!(fork, 403, "{id}: fork");
        let (rotate, _) = f
            .post("/uid-rotate-token", json!({"uid-token": token}))
            .await;
        assert_eq!(rotate == 403, deny_rotate, "{id}: rotate answered {rotate}");
        let live = if deny_rotate {
            token
        } else {
            // The rotation replaced the token.
            assert!(!s.uid_token_is_valid(&token));
            continue;
        };
        let (status, body) = f
            .post(
                "/auth",
                json!({"access-id": id, "access-type": "universal_identity", "uid-token": live}),
            )
            .await;
        assert_eq!(status, 200, "{id}: {body}");
    }
}

/// A PKI `ttl` beyond the issuer's max is refused (400), not silently shortened.
#[tokio::test]
async fn pki_ttl_beyond_the_max_is_refused() {
    let f = Fixture::new().await;
    f.state()
        .put_pki_issuer("/app/issuer", Duration::from_secs(3600));
    let token = f.login().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(vec!["x.svc".into()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let body = |ttl: &str| {
        json!({"cert-issuer-name": "/app/issuer", "csr-data-base64": STANDARD.encode(&csr),
               "ttl": ttl, "token": token})
    };
    let (status, answer) = f.post("/get-pki-certificate", body("3600")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = f.post("/get-pki-certificate", body("3601")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        error_text(&answer).contains("exceeds the max ttl"),
        "{answer}"
    );
}
