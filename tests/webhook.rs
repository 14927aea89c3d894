//! `akeyless-csi-provider webhook` as a process: HTTPS with certificate files (as cert-manager
//! provides them), reloaded when they change; the answers to reviews; and the bounds on what a
//! caller may send. The API server side is in the e2e suite (tests/e2e/suite/webhook).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a certificate it signed for 127.0.0.1.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn write_pair(dir: &Path, pki: &Pki) {
    std::fs::write(dir.join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.key_pem).unwrap();
}

/// An HTTPS client trusting only `ca_pem`.
fn client(ca_pem: &str) -> reqwest::Client {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Webhook {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
    health: String,
    metrics: String,
}

impl Webhook {
    /// Starts the binary with the certificate files in a new directory.
    fn start(pki: &Pki) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), pki);
        let log = std::fs::File::create(dir.path().join("webhook.log")).unwrap();
        let child = Command::new(common::provider_bin())
            .args([
                "webhook",
                "--webhook-addr=127.0.0.1:0",
                "--health-addr=127.0.0.1:0",
                "--metrics-addr=127.0.0.1:0",
                "--cert-check-interval=1s",
                "--log-format=json",
            ])
            .arg(format!(
                "--tls-cert-file={}",
                dir.path().join("tls.crt").display()
            ))
            .arg(format!(
                "--tls-key-file={}",
                dir.path().join("tls.key").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut w = Webhook {
            child,
            dir,
            addr: String::new(),
            health: String::new(),
            metrics: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = w
                .logs()
                .lines()
                .find(|l| l.contains("akeyless-csi-provider webhook serving"))
                .map(str::to_string);
            if let Some(line) = line {
                let v: Value = serde_json::from_str(&line).unwrap();
                w.addr = v["addr"].as_str().unwrap().to_string();
                w.health = v["health"].as_str().unwrap().to_string();
                w.metrics = v["metrics"].as_str().unwrap().to_string();
                return w;
            }
            assert!(
                w.child.try_wait().unwrap().is_none(),
                "webhook exited:\n{}",
                w.logs()
            );
            assert!(
                Instant::now() < deadline,
                "webhook not serving:\n{}",
                w.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhook.log")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("https://{}/validate", self.addr)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn review(parameters: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b0a7e9c2-0000-4000-8000-000000000001",
            "kind": {"group": "secrets-store.csi.x-k8s.io", "version": "v1", "kind": "SecretProviderClass"},
            "namespace": "team-a",
            "operation": "CREATE",
            "object": {
                "apiVersion": "secrets-store.csi.x-k8s.io/v1",
                "kind": "SecretProviderClass",
                "metadata": {"name": "db", "namespace": "team-a"},
                "spec": {"provider": "akeyless", "parameters": parameters}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_reviews_over_tls_and_bounds_what_callers_send() {
    let pki = pki();
    let mut w = Webhook::start(&pki);
    let http = client(&pki.ca_pem);

    let resp = http
        .post(w.url())
        .json(&review(
            json!({"akeylessAccessType": "password", "objects": "- secretPath: /a"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["response"]["uid"],
        "b0a7e9c2-0000-4000-8000-000000000001"
    );
    assert_eq!(answer["response"]["allowed"], false);
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("SecretProviderClass team-a/db: spec.parameters.akeylessAccessType:"),
        "{answer}"
    );
    let resp = http
        .post(w.url())
        .json(&review(json!({"objects": "- secretPath: /a"})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["response"]["allowed"],
        true
    );

    // Not a review: 400 (the API server then applies the failurePolicy).
    let resp = http.post(w.url()).body("{").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("not an AdmissionReview")
    );
    // A body beyond the bound is refused without being buffered whole.
    let resp = http
        .post(w.url())
        .body(vec![b' '; 7 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "the unread body's connection must not be reused"
    );
    assert_eq!(
        http.get(w.url()).send().await.unwrap().status(),
        405,
        "only POST"
    );
    // A client that doesn't trust the certificate gets no answer.
    assert!(client(&pki_other_ca()).post(w.url()).send().await.is_err());

    let plain = client(&pki.ca_pem);
    let ready = plain
        .get(format!("http://{}/readyz", w.health))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = plain
        .get(format!("http://{}/metrics", w.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "akeyless_csi_provider_webhook_reviews_total{result=\"denied\"} 1",
        "akeyless_csi_provider_webhook_reviews_total{result=\"allowed\"} 1",
        "akeyless_csi_provider_webhook_reviews_total{result=\"bad_request\"} 1",
        "akeyless_csi_provider_webhook_certificate_expiry_timestamp_seconds ",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    // One line per review, naming the SPC and the problem's field, never the value.
    let logs = w.logs();
    assert!(
        logs.contains(r#""problems":"[\"spec.parameters.akeylessAccessType\"]""#),
        "{logs}"
    );
    assert!(!logs.contains("password"), "{logs}");

    common::signal(w.child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}\n{}", w.logs());
}

fn pki_other_ca() -> String {
    pki().ca_pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_files_are_served_without_a_restart() {
    let (first, second) = (pki(), pki());
    let w = Webhook::start(&first);
    let body = review(json!({"objects": "- secretPath: /a"}));
    assert_eq!(
        client(&first.ca_pem)
            .post(w.url())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // cert-manager renews: the Secret volume's files change.
    write_pair(w.dir.path(), &second);
    let renewed = client(&second.ca_pem);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(resp) = renewed.post(w.url()).json(&body).send().await {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not served:\n{}",
            w.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(w.logs().contains("serving certificate reloaded"));
}

#[test]
fn a_generated_certificate_needs_the_name_the_api_server_dials() {
    let out = Command::new(common::provider_bin())
        .args([
            "webhook",
            "--webhook-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--metrics-addr=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--tls-san") && stderr.contains("<service>.<namespace>.svc"),
        "{stderr}"
    );
}
