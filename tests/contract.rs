//! The Akeyless API contract, with Akeyless's published schema as the oracle.
//!
//! `tests/data/akeyless-api-subset.json` holds the field names, JSON types and required fields
//! of every request and answer we use, extracted from the OpenAPI document Akeyless publishes
//! (see tests/data/README.md). Two checks:
//!
//! - Every request shape the real client sends (each access type of `/auth`, each item call,
//!   with and without its options) is captured off the wire and each field checked: a known
//!   name, the right JSON type, every required field present.
//! - Every answer of the in-repo emulator has only top-level fields the schema allows for it.
//!
//! Nothing outside the file passes without a written reason in [`REQUEST_EXCEPTIONS`] or
//! [`ANSWER_EXCEPTIONS`].

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use akeyless_csi_provider::akeyless::{AkeylessClient, AkeylessToken, AuthCredential, Operation};
use akeyless_csi_provider::secret::SecretString;
use akeyless_emulator::{Emulator, accepted_request_fields};
use common::hostile::{Answer, HostileGateway};
use serde_json::{Value, json};

const SCHEMA: &str = include_str!("data/akeyless-api-subset.json");

/// Request fields the client sends although the schema's `request` lists don't, and why.
const REQUEST_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "/auth",
    "uid-token",
    "listed under `newer`: later schemas (and the Python SDK from 5.0.2) spell the published \
     `uid_token` this way; the client sends both so that old and new gateways read it",
)];

/// Top-level answer fields the emulator sends although the schema's `responses` don't list
/// them, and why.
const ANSWER_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "/auth",
    "expiration",
    "listed under `newer`: later schemas add it (RFC 3339 text); the emulator sends it unless \
     told to answer with the published fields only (set_auth_expiration_field(false))",
)];

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the schema file is JSON")
}

/// Whether `value` has the schema's JSON `ty` (`newer` entries carry a note after the type).
fn type_matches(ty: &str, value: &Value) -> bool {
    let ty = ty.split_whitespace().next().unwrap_or_default();
    match ty {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer(int64)" => value.is_i64(),
        "integer(int32)" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "object" => value.is_object(),
        "array<string>" => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        "array<object>" => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object)),
        other => panic!("the schema file has a type this test does not know: {other}"),
    }
}

/// Every problem of one request body sent to `path`.
fn request_problems(schema: &Value, path: &str, body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(endpoint) = schema["endpoints"].get(path) else {
        return vec![format!("{path} is not an endpoint of the schema file")];
    };
    let Some(fields) = body.as_object() else {
        return vec![format!("{path}: the body is not a JSON object: {body}")];
    };
    let newer = &schema["newer"][path]["request"];
    for (name, value) in fields {
        let ty = match endpoint["request"].get(name) {
            Some(ty) => ty,
            None => {
                let excused = REQUEST_EXCEPTIONS
                    .iter()
                    .any(|(p, f, _)| *p == path && f == name);
                match newer.get(name) {
                    Some(ty) if excused => ty,
                    _ => {
                        problems.push(format!(
                            "{path}: field {name:?} is not in the schema (known: {})",
                            keys(&endpoint["request"])
                        ));
                        continue;
                    }
                }
            }
        };
        let ty = ty.as_str().expect("types are strings");
        if !type_matches(ty, value) {
            problems.push(format!("{path}: field {name:?} should be {ty}, is {value}"));
        }
    }
    for required in endpoint["required"].as_array().expect("required is a list") {
        let required = required.as_str().expect("names");
        if !fields.contains_key(required) {
            problems.push(format!("{path}: required field {required:?} is missing"));
        }
    }
    problems
}

fn keys(object: &Value) -> String {
    object
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// A gateway that records what the client sends and answers each call well enough for the
/// client to go on to the next.
async fn recording_gateway() -> HostileGateway {
    let gw = HostileGateway::start().await;
    gw.on("/auth", Answer::ok(json!({"token": "t-0123456789abcdef"})))
        .on(
            "/uid-rotate-token",
            Answer::ok(json!({"token": "u-next0000000000000000000"})),
        )
        .on(
            "/describe-item",
            Answer::ok(json!({"item_type": "STATIC_SECRET", "last_version": 1})),
        )
        .on(
            "/get-secret-value",
            Answer::ok(json!({"/a": "v", "/b": "w"})),
        )
        .on(
            "/get-rotated-secret-value",
            Answer::ok(json!({"value": {"username": "u", "password": "p"}})),
        )
        .on(
            "/get-certificate-value",
            Answer::ok(json!({"certificate_pem": "-----BEGIN CERTIFICATE-----"})),
        )
        .on(
            "/get-dynamic-secret-value",
            Answer::ok(json!({"user": "u", "password": "p"})),
        )
        .on(
            "/get-pki-certificate",
            Answer::ok(json!({"data": "-----BEGIN CERTIFICATE-----"})),
        );
    gw
}

/// The access type `/auth` names for each credential. The match has no wildcard: a new
/// credential kind does not compile until it is covered here.
fn credential_label(credential: &AuthCredential<'_>) -> &'static str {
    match credential {
        AuthCredential::AccessKey(_) => "access_key",
        AuthCredential::Kubernetes { .. } => "k8s",
        AuthCredential::Jwt(_) => "jwt",
        AuthCredential::AzureAd { .. } => "azure_ad",
        AuthCredential::AwsIam { .. } => "aws_iam",
        AuthCredential::Gcp { .. } => "gcp",
        AuthCredential::UniversalIdentity(_) => "universal_identity",
    }
}

/// Every request shape the client can send, captured from the wire: (label, path, body).
async fn client_requests() -> Vec<(String, String, Value)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let gw = recording_gateway().await;
    let secret = |s: &str| SecretString::from(s.to_string());
    let (key, sa, jwt, cloud, uid) = (
        secret("access-key"),
        secret("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig"),
        secret("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.sig"),
        secret("Y2xvdWQtaWQ="),
        secret("u-init000000000000000000"),
    );
    let token = AkeylessToken {
        token: secret("t-0123456789abcdef"),
        expires_at: None,
    };
    let names = ["/a".to_string(), "/b".to_string()];
    let args = ["user=x".to_string(), "ttl=60".to_string()];
    let largest_version = Some(i32::MAX as u32);

    let mut shapes: Vec<(String, String, Value)> = Vec::new();
    let mut take = |label: &str, op: Operation| {
        let bodies = gw.bodies(op.path());
        assert_eq!(bodies.len(), 1, "{label}: one request to {}", op.path());
        let body: Value = serde_json::from_slice(&bodies[0]).expect("the client sends JSON");
        shapes.push((label.to_string(), op.path().to_string(), body));
        gw.clear();
    };
    for ignore_cache in [false, true] {
        let client = AkeylessClient::new(reqwest::Client::new(), vec![gw.url()], ignore_cache);
        let opt = if ignore_cache { " ignore-cache" } else { "" };
        if !ignore_cache {
            let credentials = [
                AuthCredential::AccessKey(&key),
                AuthCredential::Kubernetes {
                    config_name: "cluster-1",
                    service_account_token: &sa,
                },
                AuthCredential::Jwt(&jwt),
                AuthCredential::AzureAd { cloud_id: &cloud },
                AuthCredential::AwsIam { cloud_id: &cloud },
                AuthCredential::Gcp { cloud_id: &cloud },
                AuthCredential::UniversalIdentity(&uid),
            ];
            for credential in credentials {
                let label = format!("auth {}", credential_label(&credential));
                client.authenticate("p-id", credential).await.unwrap();
                take(&label, Operation::Auth);
            }
            for fork in [false, true] {
                client.rotate_uid_token(&uid, fork).await.unwrap();
                take(
                    &format!("uid-rotate-token fork={fork}"),
                    Operation::UidRotateToken,
                );
            }
            client.describe_item(&token, "/a").await.unwrap();
            take("describe-item", Operation::DescribeItem);
            for a in [&args[..0], &args[..]] {
                client
                    .get_dynamic_secret_value(&token, "/d", a)
                    .await
                    .unwrap();
                take(
                    &format!("get-dynamic-secret-value args={}", a.len()),
                    Operation::GetDynamicSecretValue,
                );
            }
            for ttl in [None, Some(3600)] {
                client
                    .get_pki_certificate(&token, "/pki", "-----BEGIN CERTIFICATE REQUEST-----", ttl)
                    .await
                    .unwrap();
                take(
                    &format!("get-pki-certificate ttl={ttl:?}"),
                    Operation::GetPkiCertificate,
                );
            }
        }
        for version in [None, Some(1), largest_version] {
            client
                .get_secret_values(&token, &names, version)
                .await
                .unwrap();
            take(
                &format!("get-secret-value version={version:?}{opt}"),
                Operation::GetSecretValue,
            );
            client
                .get_rotated_secret_value(&token, "/r", version)
                .await
                .unwrap();
            take(
                &format!("get-rotated-secret-value version={version:?}{opt}"),
                Operation::GetRotatedSecretValue,
            );
            client
                .get_certificate_value(&token, "/c", version)
                .await
                .unwrap();
            take(
                &format!("get-certificate-value version={version:?}{opt}"),
                Operation::GetCertificateValue,
            );
        }
    }
    shapes
}

#[tokio::test]
async fn every_request_the_client_sends_matches_the_published_schema() {
    let schema = schema();
    let shapes = client_requests().await;
    let mut problems = Vec::new();
    for (label, path, body) in &shapes {
        let fields: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        println!("contract: {label}: {path} {fields:?}");
        for p in request_problems(&schema, path, body) {
            problems.push(format!("{label}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Every endpoint of the file was exercised, and every access type.
    let paths: BTreeSet<&str> = shapes.iter().map(|(_, p, _)| p.as_str()).collect();
    let endpoints: BTreeSet<&str> = schema["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(paths, endpoints);
    let access_types: BTreeSet<&str> = shapes
        .iter()
        .filter(|(_, p, _)| p == "/auth")
        .map(|(_, _, b)| b["access-type"].as_str().unwrap())
        .collect();
    assert_eq!(
        access_types,
        BTreeSet::from([
            "access_key",
            "k8s",
            "jwt",
            "azure_ad",
            "aws_iam",
            "gcp",
            "universal_identity"
        ])
    );
    // Options do reach the wire.
    let sent = |label: &str, field: &str| {
        shapes
            .iter()
            .find(|(l, _, _)| l == label)
            .unwrap_or_else(|| panic!("no shape {label}"))
            .2
            .get(field)
            .cloned()
    };
    assert_eq!(
        sent(
            "get-secret-value version=Some(1) ignore-cache",
            "ignore-cache"
        ),
        Some(json!("true"))
    );
    assert_eq!(sent("get-secret-value version=None", "version"), None);
    assert_eq!(
        sent("get-pki-certificate ttl=Some(3600)", "ttl"),
        Some(json!("3600"))
    );
    assert_eq!(
        sent("uid-rotate-token fork=true", "fork"),
        Some(json!(true))
    );
    // Every exception is still needed and is a `newer` field of the file.
    for (path, field, reason) in REQUEST_EXCEPTIONS {
        assert!(!reason.is_empty());
        assert!(
            schema["newer"][path]["request"].get(field).is_some(),
            "{path} {field}: not under newer"
        );
        assert!(
            shapes
                .iter()
                .any(|(_, p, b)| p == path && b.get(field).is_some()),
            "{path} {field}: no longer sent; drop the exception"
        );
    }
}

/// The checker itself: a misspelled, mistyped, unknown or missing field is reported.
#[test]
fn the_checker_refuses_what_the_schema_does_not_allow() {
    let schema = schema();
    let ok = json!({"names": ["/a"], "version": 2, "ignore-cache": "true", "token": "t-1"});
    assert!(request_problems(&schema, "/get-secret-value", &ok).is_empty());
    for (body, expect) in [
        (
            json!({"names": ["/a"], "ignore_cache": "true", "token": "t"}),
            "\"ignore_cache\" is not in the schema",
        ),
        (
            json!({"names": ["/a"], "ignore-cache": true, "token": "t"}),
            "should be string",
        ),
        (
            json!({"names": "/a", "token": "t"}),
            "should be array<string>",
        ),
        (
            json!({"names": ["/a"], "version": 3_000_000_000u64, "token": "t"}),
            "should be integer(int32)",
        ),
        (json!({"token": "t"}), "required field \"names\" is missing"),
    ] {
        let problems = request_problems(&schema, "/get-secret-value", &body).join("\n");
        assert!(problems.contains(expect), "{body}: {problems}");
    }
    // `uid-token` is excused only on /auth, where the file lists it under `newer`.
    assert!(
        request_problems(
            &schema,
            "/auth",
            &json!({"access-id": "p", "access-type": "universal_identity", "uid-token": "u"})
        )
        .is_empty()
    );
    assert!(!request_problems(&schema, "/uid-rotate-token", &json!({"uid_token": "u"})).is_empty());
}

/// Problems of one emulator answer to `path` with `status`.
fn answer_problems(schema: &Value, path: &str, status: u16, body: &Value) -> Vec<String> {
    let responses = &schema["endpoints"][path]["responses"];
    let declared = responses
        .get(status.to_string())
        .unwrap_or(&responses["default"]);
    let Some(fields) = body.as_object() else {
        return vec![format!(
            "{path} {status}: the answer is not a JSON object: {body}"
        )];
    };
    match declared {
        // A free-form object (secret values keyed by name, a dynamic secret's credential).
        Value::String(ty) => {
            assert_eq!(ty, "object");
            vec![]
        }
        Value::Object(allowed) => {
            let newer = &schema["newer"][path]["responses"][status.to_string()];
            let mut problems = Vec::new();
            for (name, value) in fields {
                let ty = match allowed.get(name) {
                    Some(ty) => ty,
                    None if ANSWER_EXCEPTIONS
                        .iter()
                        .any(|(p, f, _)| *p == path && f == name)
                        && newer.get(name).is_some() =>
                    {
                        &newer[name]
                    }
                    None => {
                        problems.push(format!(
                            "{path} {status}: field {name:?} is not in the schema's answer"
                        ));
                        continue;
                    }
                };
                if !type_matches(ty.as_str().unwrap(), value) {
                    problems.push(format!(
                        "{path} {status}: field {name:?} should be {ty}, is {value}"
                    ));
                }
            }
            problems
        }
        other => panic!("unexpected response declaration {other}"),
    }
}

/// Every answer of the emulator, success and failure, has only the fields the schema allows.
#[tokio::test]
async fn every_emulator_answer_matches_the_published_schema() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let schema = schema();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let s = emulator.state();
    s.add_access_key_auth("p-key", "key");
    s.grant_read("p-key", "/*", &[]);
    let uid = s.add_universal_identity_auth("p-uid");
    s.put_static_secret("/s", "v");
    s.put_rotated_secret("/r", json!({"username": "u", "password": "p"}));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&ca_key)
        .unwrap();
    s.put_certificate("/c", &cert.pem(), Some(&ca_key.serialize_pem()));
    s.put_dynamic_secret("/d", json!({"user": ""}), Duration::from_secs(60));
    s.put_pki_issuer("/pki", Duration::from_secs(3600));
    let csr = rcgen::CertificateParams::new(vec!["y".into()])
        .unwrap()
        .serialize_request(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem()
        .unwrap();
    use base64::Engine as _;
    let csr = base64::engine::general_purpose::STANDARD.encode(csr);

    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{}{path}", emulator.url())).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut check = |path: &str, status: u16, body: &Value| {
        seen.entry(path.to_string()).or_default().insert(status);
        problems.extend(answer_problems(&schema, path, status, body));
    };

    for published_only in [false, true] {
        s.set_auth_expiration_field(!published_only);
        let (status, body) = post(
            "/auth",
            json!({"access-id": "p-key", "access-type": "access_key", "access-key": "key"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.get("expiration").is_none(), published_only);
        check("/auth", status, &body);
    }
    let (status, body) = post(
        "/auth",
        json!({"access-id": "p-key", "access-type": "access_key", "access-key": "wrong"}),
    )
    .await;
    assert_eq!(status, 401);
    check("/auth", status, &body);
    let (_, login) = post(
        "/auth",
        json!({"access-id": "p-key", "access-type": "access_key", "access-key": "key"}),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_string();

    let calls = [
        ("/describe-item", json!({"name": "/s", "token": token})),
        (
            "/describe-item",
            json!({"name": "/s", "show-versions": true, "token": token}),
        ),
        (
            "/describe-item",
            json!({"name": "/missing", "token": token}),
        ),
        (
            "/get-secret-value",
            json!({"names": ["/s"], "token": token}),
        ),
        (
            "/get-secret-value",
            json!({"names": ["/s"], "version": 9, "token": token}),
        ),
        (
            "/get-rotated-secret-value",
            json!({"names": "/r", "token": token}),
        ),
        (
            "/get-certificate-value",
            json!({"name": "/c", "token": token}),
        ),
        (
            "/get-dynamic-secret-value",
            json!({"name": "/d", "token": token}),
        ),
        (
            "/get-pki-certificate",
            json!({"cert-issuer-name": "/pki", "csr-data-base64": csr, "ttl": "60", "token": token}),
        ),
        (
            "/get-pki-certificate",
            json!({"cert-issuer-name": "/pki", "csr-data-base64": csr, "ttl": "7200", "token": token}),
        ),
        (
            "/get-secret-value",
            json!({"names": ["/s"], "token": "t-bad"}),
        ),
        (
            "/get-rotated-secret-value",
            json!({"names": "/missing", "token": token}),
        ),
        (
            "/get-certificate-value",
            json!({"name": "/s", "token": token}),
        ),
        (
            "/get-dynamic-secret-value",
            json!({"name": "/missing", "token": token}),
        ),
        ("/uid-rotate-token", json!({"uid-token": uid, "fork": true})),
        ("/uid-rotate-token", json!({"uid-token": "u-bad"})),
    ];
    for (path, body) in calls {
        // Every body we send must itself pass the request check.
        assert!(
            request_problems(&schema, path, &body).is_empty(),
            "{path} {body}"
        );
        let (status, answer) = post(path, body).await;
        check(path, status, &answer);
    }
    s.set_describe_missing_as_empty(true);
    let (status, answer) = post(
        "/describe-item",
        json!({"name": "/missing", "token": token}),
    )
    .await;
    assert_eq!((status, &answer), (200, &json!({})));
    check("/describe-item", status, &answer);

    println!("contract: emulator answers checked: {seen:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for path in schema["endpoints"].as_object().unwrap().keys() {
        let statuses = &seen[path];
        assert!(statuses.contains(&200), "{path}: no success checked");
        assert!(
            statuses.iter().any(|s| *s >= 400),
            "{path}: no failure checked"
        );
    }
}

/// The emulator accepts exactly the request fields of the schema (plus its `newer` ones) and
/// refuses any other with 400, so a misspelled field fails against it as well.
#[tokio::test]
async fn the_emulator_accepts_only_the_schemas_request_fields() {
    let schema = schema();
    for (path, endpoint) in schema["endpoints"].as_object().unwrap() {
        let mut expected: BTreeSet<&str> = endpoint["request"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if let Some(newer) = schema["newer"][path]["request"].as_object() {
            expected.extend(newer.keys().map(String::as_str));
        }
        let accepted: BTreeSet<&str> = accepted_request_fields(path)
            .unwrap_or_else(|| panic!("{path}: the emulator checks no fields"))
            .iter()
            .copied()
            .collect();
        assert_eq!(accepted, expected, "{path}");
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.state().add_access_key_auth("p-key", "key");
    let http = reqwest::Client::new();
    for (body, status) in [
        (
            json!({"access-id": "p-key", "access-type": "access_key", "access-key": "key"}),
            200,
        ),
        (
            json!({"access-id": "p-key", "access-type": "access_key", "access_key": "key"}),
            400,
        ),
    ] {
        let response = http
            .post(format!("{}/auth", emulator.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        if status == 400 {
            let answer: Value = response.json().await.unwrap();
            assert!(
                answer["error"].as_str().unwrap().contains("\"access_key\""),
                "{answer}"
            );
        }
    }
}
