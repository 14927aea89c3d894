//! Secret hygiene: a full scenario run at trace log level leaves no secret value, access key or
//! token anywhere in the provider's output.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver;
use common::*;

fn contains_akeyless_token(text: &str) -> Option<String> {
    // The emulator issues `t-` + 32 hex digits, like Akeyless.
    text.match_indices("t-").find_map(|(i, _)| {
        let candidate = text.get(i + 2..i + 34)?;
        candidate
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| text[i..i + 34].to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_secrets() {
    let f = Fixture::with_args(&["--log-level", "trace"]).await;
    let s = f.state();
    s.add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    s.grant_read(ACCESS_ID, "/*", &[]);
    s.add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &[], &[]);
    s.grant_read(K8S_ACCESS_ID, "/*", &[]);
    let static_value = "static-Sup3rS3cret-value";
    s.put_static_secret("/h/static", static_value);
    s.put_static_secret("/h/json", r#"{"password":"json-Pa55word-value"}"#);
    s.put_rotated_secret(
        "/h/rotated",
        serde_json::json!({"password": "rotated-Pa55-value"}),
    );
    s.put_dynamic_secret(
        "/h/dynamic",
        serde_json::json!({"password": ""}),
        Duration::from_secs(3600),
    );
    let (cert, key) = {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec!["h.example".into()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        (c.pem(), k.serialize_pem())
    };
    s.put_certificate("/h/cert", &cert, Some(&key));
    s.put_pki_issuer("/h/pki", Duration::from_secs(3600));

    let objects = "- secretPath: /h/static\n  type: static\n\
                   - secretPath: /h/json\n  type: static\n  key: password\n\
                   - secretPath: /h/rotated\n  type: rotated\n\
                   - secretPath: /h/dynamic\n  type: dynamic\n\
                   - secretPath: /h/cert\n  type: certificate\n\
                   - secretPath: /h/pki\n  type: pki\n  commonName: h.svc\n";
    // Access key auth, twice (cold and warm), then k8s auth as a pod.
    let first = f.mount(access_key_request(objects)).await.unwrap();
    f.mount(access_key_request(objects)).await.unwrap();
    let pd = pod("team", "web");
    let pod_jwt = f.pod_token(&pd);
    let p = params(&[
        ("akeylessAccessID", K8S_ACCESS_ID),
        ("akeylessK8sAuthConfigName", K8S_CONFIG),
        ("objects", objects),
    ]);
    let second = f
        .mount(driver::mount_request(
            "spc",
            &p,
            &pd,
            &[(AUDIENCE, &pod_jwt)],
            None,
        ))
        .await
        .unwrap();
    // Failures and a re-login.
    s.revoke_all_tokens();
    f.mount(access_key_request(objects)).await.unwrap();
    s.fail_next("/get-secret-value", 500, 10);
    let _ = f.mount(access_key_request(objects)).await;
    s.clear_faults();
    let _ = f
        .mount(access_key_request(
            "- secretPath: /h/json\n  type: static\n  key: missing\n",
        ))
        .await;

    let logs = f.provider.logs();
    assert!(
        logs.contains("TRACE") || logs.contains("\"level\":\"TRACE\""),
        "trace logging was on"
    );
    let mut secrets: Vec<(String, String)> = vec![
        ("access key".into(), ACCESS_KEY.into()),
        ("pod token".into(), pod_jwt.clone()),
        ("static value".into(), static_value.into()),
        ("json value".into(), "json-Pa55word-value".into()),
        ("rotated value".into(), "rotated-Pa55-value".into()),
    ];
    // The private keys' base64 bodies and the dynamic credentials as mounted.
    for resp in [&first, &second] {
        for file in &resp.files {
            let text = String::from_utf8_lossy(&file.contents).to_string();
            if file.path.ends_with("tls.key") {
                // Each base64 line on its own: a leaked key would appear line by line (or with
                // escaped newlines), never as the lines glued together.
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .collect();
                assert!(!lines.is_empty(), "{} holds a PEM body", file.path);
                for (i, line) in lines.into_iter().enumerate() {
                    secrets.push((
                        format!("private key {} line {i}", file.path),
                        line.to_string(),
                    ));
                }
            }
            if file.path == "dynamic" {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                secrets.push((
                    "dynamic password".into(),
                    v["password"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    for (what, secret) in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret.as_str()),
            "{what} leaked into the trace log"
        );
    }
    assert_eq!(
        contains_akeyless_token(&logs),
        None,
        "an Akeyless token leaked into the trace log"
    );
    eprintln!(
        "checked {} bytes of trace logs for {} secrets and any t- token",
        logs.len(),
        secrets.len()
    );
}
