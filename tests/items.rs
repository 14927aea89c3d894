//! Every Akeyless item type, mounted over the real socket against the emulator: exact files,
//! modes, versions and backend request counts.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver;
use common::*;
use tonic::Code;

async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f
}

/// An access-key mount for a given pod (dynamic and PKI values are cached per pod).
fn request_for(
    objects: &str,
    namespace: &str,
    name: &str,
) -> akeyless_csi_provider::proto::MountRequest {
    let p = params(&[("akeylessAccessID", ACCESS_ID), ("objects", objects)]);
    let secret = params(&[("akeylessAccessKey", ACCESS_KEY)]);
    driver::mount_request("spc", &p, &pod(namespace, name), &[], Some(&secret))
}

/// A CA and a leaf it signed: (leaf PEM, CA PEM, leaf key PEM).
fn chain(expired: bool) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["app.example".into()]).unwrap();
    if expired {
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf = leaf_params
        .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    (leaf.pem(), ca.pem(), leaf_key.serialize_pem())
}

fn certs_in(pem: &str) -> Vec<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

/// Whether `key_pem` is the private key of the certificate `cert_der`.
fn key_matches(cert_der: &[u8], key_pem: &str) -> bool {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    cert.tbs_certificate.subject_pki.raw
        == rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
}

fn file<'a>(
    resp: &'a akeyless_csi_provider::proto::MountResponse,
    path: &str,
) -> &'a akeyless_csi_provider::proto::File {
    resp.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| {
            panic!(
                "no file {path} in {:?}",
                resp.files.iter().map(|f| &f.path).collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_as_compact_json_or_extracted_part() {
    let f = fixture().await;
    f.state().put_rotated_secret(
        "/db/rotated",
        serde_json::json!({"username": "app", "password": "p1"}),
    );
    f.state().put_rotated_secret(
        "/db/rotated",
        serde_json::json!({"username": "app", "password": "p2"}),
    );
    let objects = "- secretPath: /db/rotated\n  fileName: creds.json\n  type: rotated\n\
                   - secretPath: /db/rotated\n  fileName: password\n  type: rotated\n  key: password\n  mode: \"0400\"\n\
                   - secretPath: /db/rotated\n  fileName: v1-password\n  type: rotated\n  version: 1\n  jq: .password\n";
    let resp = f.mount(request_for(objects, "ns", "p")).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![
            (
                "creds.json".into(),
                0o644,
                r#"{"password":"p2","username":"app"}"#.into()
            ),
            ("password".into(), 0o400, "p2".into()),
            ("v1-password".into(), 0o644, "p1".into()),
        ]
    );
    assert_eq!(versions(&resp)["v1-password"], "1");
    assert!(versions(&resp)["password"].starts_with("h-"));
    // One read per (item, version): latest once for two objects, version 1 once.
    assert_eq!(f.state().count("/get-rotated-secret-value"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_secret_is_cached_per_pod_within_its_lease() {
    let f = fixture().await;
    f.state().put_dynamic_secret(
        "/db/dynamic",
        serde_json::json!({"user": "tmp-user", "password": ""}),
        Duration::from_secs(3600),
    );
    let objects = "- secretPath: /db/dynamic\n  fileName: creds\n  type: dynamic\n  secretArgs: {role: ro}\n\
                   - secretPath: /db/dynamic\n  fileName: password\n  type: dynamic\n  secretArgs: {role: ro}\n  key: password\n";
    let first = f.mount(request_for(objects, "ns", "web-1")).await.unwrap();
    let again = f.mount(request_for(objects, "ns", "web-1")).await.unwrap();
    assert_eq!(
        f.state().count("/get-dynamic-secret-value"),
        1,
        "a re-mount of the same pod reuses the lease"
    );
    assert_eq!(files(&first), files(&again));
    assert_eq!(versions(&first), versions(&again));
    let creds: serde_json::Value = serde_json::from_slice(&file(&first, "creds").contents).unwrap();
    assert_eq!(creds["user"], "tmp-user");
    assert_eq!(
        file(&first, "password").contents,
        creds["password"].as_str().unwrap().as_bytes()
    );
    let read = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/get-dynamic-secret-value")
        .unwrap();
    assert_eq!(read.args, vec!["role=ro".to_string()]);

    let other = f.mount(request_for(objects, "ns", "web-2")).await.unwrap();
    assert_eq!(
        f.state().count("/get-dynamic-secret-value"),
        2,
        "another pod gets its own credential"
    );
    assert_ne!(
        file(&other, "password").contents,
        file(&first, "password").contents
    );
    assert!(versions(&first)["creds"].starts_with("h-"));
    assert_ne!(versions(&first)["creds"], versions(&other)["creds"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_as_pem_files_bundle_and_pkcs12() {
    let f = fixture().await;
    let (leaf, ca, key) = chain(false);
    f.state()
        .put_certificate("/tls/web", &format!("{leaf}{ca}"), Some(&key));
    let objects = "- secretPath: /tls/web\n  fileName: tls\n  type: certificate\n  mode: \"0440\"\n\
                   - secretPath: /tls/web\n  fileName: bundle.pem\n  type: certificate\n  format: bundle\n\
                   - secretPath: /tls/web\n  fileName: web.pfx\n  type: certificate\n  format: pfx\n  pfxPassword: changeit\n";
    let resp = f.mount(request_for(objects, "ns", "p")).await.unwrap();
    let paths: Vec<(String, u32)> = files(&resp).into_iter().map(|(p, m, _)| (p, m)).collect();
    assert_eq!(
        paths,
        vec![
            ("bundle.pem".into(), 0o644),
            ("tls/ca.crt".into(), 0o440),
            ("tls/tls.crt".into(), 0o440),
            ("tls/tls.key".into(), 0o440),
            ("web.pfx".into(), 0o644),
        ]
    );
    let crt = String::from_utf8(file(&resp, "tls/tls.crt").contents.clone()).unwrap();
    assert_eq!(
        certs_in(&crt),
        [certs_in(&leaf), certs_in(&ca)].concat(),
        "leaf then chain"
    );
    assert_eq!(
        certs_in(&String::from_utf8_lossy(
            &file(&resp, "tls/ca.crt").contents
        )),
        certs_in(&ca)
    );
    let tls_key = String::from_utf8(file(&resp, "tls/tls.key").contents.clone()).unwrap();
    assert!(key_matches(&certs_in(&crt)[0], &tls_key));
    assert!(!crt.contains("\"certificate_pem\""), "never API JSON");
    let bundle = String::from_utf8(file(&resp, "bundle.pem").contents.clone()).unwrap();
    assert!(bundle.contains("PRIVATE KEY") && certs_in(&bundle).len() == 2);

    let pfx = &file(&resp, "web.pfx").contents;
    let store = p12_keystore::KeyStore::from_pkcs12(
        pfx,
        "changeit",
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .expect("the PKCS#12 file opens with the configured password");
    let (_, key_chain) = store.private_key_chain().unwrap();
    assert_eq!(key_chain.certs()[0].as_der(), certs_in(&leaf)[0].as_slice());
    assert!(
        p12_keystore::KeyStore::from_pkcs12(
            pfx,
            "wrong",
            p12_keystore::Pkcs12ImportPolicy::Relaxed
        )
        .is_err()
    );
    assert_eq!(f.state().count("/get-certificate-value"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_fails_naming_the_object() {
    let f = fixture().await;
    let (leaf, _, key) = chain(true);
    f.state().put_certificate("/tls/old", &leaf, Some(&key));
    let msg = expect_error(
        f.mount(request_for(
            "- secretPath: /tls/old\n  fileName: old\n  type: certificate\n",
            "ns",
            "p",
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains(
            "object \"old\" (secretPath /tls/old): the certificate expired at 2021-01-01T00:00:00Z"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pki_issues_on_the_node_caches_per_pod_and_reissues_when_due() {
    let f = fixture().await;
    let ca = f
        .state()
        .put_pki_issuer("/pki/issuer", Duration::from_secs(24 * 3600));
    let objects = "- secretPath: /pki/issuer\n  fileName: tls\n  type: pki\n  commonName: web.svc\n  altNames: [web.svc, web.ns.svc]\n  ttl: 1h\n";
    let first = f.mount(request_for(objects, "ns", "web-1")).await.unwrap();
    let paths: Vec<String> = files(&first).into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(paths, vec!["tls/ca.crt", "tls/tls.crt", "tls/tls.key"]);
    let crt = String::from_utf8(file(&first, "tls/tls.crt").contents.clone()).unwrap();
    let key = String::from_utf8(file(&first, "tls/tls.key").contents.clone()).unwrap();
    let leaf = &certs_in(&crt)[0];
    assert!(
        key_matches(leaf, &key),
        "the node-generated key matches the issued certificate"
    );
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).unwrap();
    assert!(parsed.subject().to_string().contains("web.svc"));
    let lifetime =
        parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
    assert!(
        (3600..=3700).contains(&lifetime),
        "ttl honoured: {lifetime}"
    );
    assert_eq!(
        certs_in(&String::from_utf8_lossy(
            &file(&first, "tls/ca.crt").contents
        )),
        certs_in(&ca)
    );
    // The CSR went to Akeyless; the private key did not.
    let issue = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/get-pki-certificate")
        .unwrap();
    assert!(
        issue.fields.contains(&"csr-data-base64".to_string()),
        "{:?}",
        issue.fields
    );
    assert!(
        !issue.fields.iter().any(|k| k.contains("key")),
        "{:?}",
        issue.fields
    );

    // Re-mounts of the same pod reuse the certificate; another pod gets its own.
    let again = f.mount(request_for(objects, "ns", "web-1")).await.unwrap();
    assert_eq!(files(&again), files(&first));
    assert_eq!(f.state().count("/get-pki-certificate"), 1);
    f.mount(request_for(objects, "ns", "web-2")).await.unwrap();
    assert_eq!(f.state().count("/get-pki-certificate"), 2);

    // A certificate already past two-thirds of its life is reissued on the next mount
    // (the issuer backdates by one minute, so a 20 s certificate is due at once).
    let short = "- secretPath: /pki/issuer\n  fileName: tls\n  type: pki\n  commonName: short.svc\n  ttl: 20s\n";
    let a = f.mount(request_for(short, "ns", "web-3")).await.unwrap();
    let b = f.mount(request_for(short, "ns", "web-3")).await.unwrap();
    assert_eq!(f.state().count("/get-pki-certificate"), 4);
    assert_ne!(versions(&a)["tls"], versions(&b)["tls"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_key_jq_explode_and_encodings() {
    let f = fixture().await;
    f.state().put_static_secret(
        "/app/config",
        r#"{"db":{"user":"app","port":5432},"tls":"aGVsbG8=","flags":{"a":"on","b":true}}"#,
    );
    f.state().put_static_secret("/app/hex", "68656c6c6f");
    let objects = "- secretPath: /app/config\n  fileName: db-user\n  type: static\n  jq: .db.user\n\
                   - secretPath: /app/config\n  fileName: db.json\n  type: static\n  key: db\n\
                   - secretPath: /app/config\n  fileName: tls.bin\n  type: static\n  key: tls\n  encoding: base64\n\
                   - secretPath: /app/config\n  fileName: flags\n  type: static\n  jq: .flags\n  explode: true\n  mode: 256\n\
                   - secretPath: /app/hex\n  fileName: hex.bin\n  type: static\n  encoding: hex\n";
    let resp = f.mount(request_for(objects, "ns", "p")).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![
            ("db-user".into(), 0o644, "app".into()),
            (
                "db.json".into(),
                0o644,
                r#"{"port":5432,"user":"app"}"#.into()
            ),
            ("flags/a".into(), 0o400, "on".into()),
            ("flags/b".into(), 0o400, "true".into()),
            ("hex.bin".into(), 0o644, "hello".into()),
            ("tls.bin".into(), 0o644, "hello".into()),
        ]
    );
    assert_eq!(resp.object_version.len(), 5);
    assert_eq!(
        f.state().count("/get-secret-value"),
        1,
        "one item read once for four objects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_errors_name_the_object() {
    let f = fixture().await;
    f.state()
        .put_static_secret("/app/config", r#"{"user":"app"}"#);
    f.state()
        .put_static_secret("/app/plain", "not-json-hunter2!");
    let cases = [
        (
            "- secretPath: /app/config\n  fileName: x\n  type: static\n  key: missing\n",
            Code::NotFound,
            "NotFound",
            "no top-level key \"missing\" (its keys: user)",
        ),
        (
            "- secretPath: /app/config\n  fileName: x\n  type: static\n  jq: .user | tonumber\n",
            Code::InvalidArgument,
            "InvalidConfig",
            "jq expression \".user | tonumber\" failed",
        ),
        (
            "- secretPath: /app/plain\n  fileName: x\n  type: static\n  key: a\n",
            Code::InvalidArgument,
            "InvalidConfig",
            "the value is not JSON",
        ),
        (
            "- secretPath: /app/plain\n  fileName: x\n  type: static\n  explode: true\n",
            Code::InvalidArgument,
            "InvalidConfig",
            "the value is not JSON",
        ),
        (
            "- secretPath: /app/plain\n  fileName: x\n  type: static\n  encoding: base64\n",
            Code::InvalidArgument,
            "InvalidConfig",
            "not valid base64",
        ),
        (
            "- secretPath: /app/plain\n  fileName: x\n  type: static\n  encoding: hex\n",
            Code::InvalidArgument,
            "InvalidConfig",
            "not valid hex",
        ),
    ];
    for (objects, grpc, code, expected) in cases {
        let msg = expect_error(f.mount(request_for(objects, "ns", "p")).await, grpc, code);
        assert!(msg.contains("object \"x\" (secretPath /app/"), "{msg}");
        assert!(
            msg.contains(expected),
            "{msg:?} should contain {expected:?}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    // A jq syntax error is caught before any backend call.
    let before = f.state().requests().len();
    let msg = expect_error(
        f.mount(request_for(
            "- secretPath: /app/config\n  jq: .a |\n",
            "ns",
            "p",
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("is not a valid jq expression"), "{msg}");
    assert_eq!(f.state().requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_types_are_looked_up_once_and_remembered() {
    let f = fixture().await;
    f.state().put_static_secret("/a/static", "s");
    f.state()
        .put_rotated_secret("/a/rotated", serde_json::json!({"password": "r"}));
    let objects = "- secretPath: /a/static\n- secretPath: /a/rotated\n  key: password\n";
    let resp = f.mount(request_for(objects, "ns", "p1")).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![
            ("rotated".into(), 0o644, "r".into()),
            ("static".into(), 0o644, "s".into())
        ]
    );
    assert_eq!(f.state().count("/describe-item"), 2);
    f.mount(request_for(objects, "ns", "p2")).await.unwrap();
    assert_eq!(
        f.state().count("/describe-item"),
        2,
        "types are remembered across mounts"
    );

    // A declared type that contradicts the remembered one.
    let msg = expect_error(
        f.mount(request_for(
            "- secretPath: /a/rotated\n  type: static\n",
            "ns",
            "p",
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("type is static, but the item is a rotated item"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_akeyless_type_lists_the_supported_ones() {
    let f = fixture().await;
    f.state().put_static_secret("/x", "v");
    // Declared wrongly and unknown to the provider: Akeyless itself refuses the read.
    f.state()
        .put_rotated_secret("/r", serde_json::json!({"a": "b"}));
    let msg = expect_error(
        f.mount(request_for("- secretPath: /r\n  type: static\n", "ns", "p"))
            .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("object \"r\" (secretPath /r)"), "{msg}");
    let msg = expect_error(
        f.mount(request_for("- secretPath: /x\n  type: ssh\n", "ns", "p"))
            .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("supported types: static, rotated, dynamic, certificate, pki"),
        "{msg}"
    );
}

/// A gateway may answer `describe-item` for a missing item with 200 and no item (how the
/// existing Akeyless provider detects one): `[NotFound]` naming the object, like a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_describe_item_answer_is_not_found() {
    let f = fixture().await;
    f.state().put_static_secret("/app/present", "here");
    let objects =
        "- secretPath: /app/present\n  fileName: p\n- secretPath: /app/missing\n  fileName: m\n";
    for empty in [true, false] {
        f.state().set_describe_missing_as_empty(empty);
        let msg = expect_error(
            f.mount(request_for(objects, "default", "web")).await,
            Code::NotFound,
            "NotFound",
        );
        assert!(msg.contains("/app/missing"), "{msg}");
        assert!(!msg.contains("/app/present"), "{msg}");
        assert!(!msg.contains("item type"), "{msg}");
    }
    f.state().set_describe_missing_as_empty(true);
    let resp = f
        .mount(request_for(
            "- secretPath: /app/present\n  fileName: p\n",
            "default",
            "web",
        ))
        .await
        .unwrap();
    assert_eq!(files(&resp)[0].2, "here");
}

/// Rotated values that carry the credential under `payload` or `target_value` are written
/// whole by default (as the existing Akeyless provider does); `key`/`jq` pick the part, as the
/// README shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_payload_and_target_value_are_unwrapped_only_when_asked() {
    let f = fixture().await;
    f.state().put_rotated_secret(
        "/rot/custom",
        serde_json::json!({"payload": "{\"user\":\"app\",\"pass\":\"p1\"}"}),
    );
    f.state().put_rotated_secret(
        "/rot/target",
        serde_json::json!({"target_value": {"username": "app", "password": "p2"}}),
    );
    let objects = "\
- secretPath: /rot/custom\n  fileName: whole\n  type: rotated\n\
- secretPath: /rot/custom\n  fileName: payload\n  type: rotated\n  key: payload\n\
- secretPath: /rot/custom\n  fileName: user\n  type: rotated\n  jq: .payload | fromjson | .user\n\
- secretPath: /rot/target\n  fileName: creds.json\n  type: rotated\n  key: target_value\n";
    let resp = f
        .mount(request_for(objects, "default", "web"))
        .await
        .unwrap();
    let got: std::collections::BTreeMap<String, String> = files(&resp)
        .into_iter()
        .map(|(path, _, contents)| (path, contents))
        .collect();
    assert_eq!(
        got["whole"],
        r#"{"payload":"{\"user\":\"app\",\"pass\":\"p1\"}"}"#
    );
    assert_eq!(got["payload"], r#"{"user":"app","pass":"p1"}"#);
    assert_eq!(got["user"], "app");
    assert_eq!(got["creds.json"], r#"{"password":"p2","username":"app"}"#);
}
