//! Operability over the real interfaces: gRPC health on the provider socket, HTTP `/healthz`,
//! `/readyz` and `/metrics`, the mount log line, SIGTERM draining, and the `validate` and
//! `render` commands of the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_csi_provider::proto;
use akeyless_csi_provider::server::health::{HealthState, health_router};
use akeyless_csi_provider::server::{self, ProviderService, Readiness};
use akeyless_csi_provider::telemetry::{self, BackendHealth};
use akeyless_emulator::Emulator;
use common::*;
use hyper_util::rt::TokioIo;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SECRET_VALUES: &[&str] = &["op-secret-value-0", "op-secret-value-1"];

fn objects() -> String {
    "- secretPath: /ops/s0\n  fileName: s0\n  type: static\n- secretPath: /ops/s1\n  fileName: s1\n  type: static\n".into()
}

fn seed(f: &Fixture) {
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f.state().add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &[], &[]);
    f.state().grant_read(K8S_ACCESS_ID, "/*", &[]);
    f.state().put_static_secret("/ops/s0", SECRET_VALUES[0]);
    f.state().put_static_secret("/ops/s1", SECRET_VALUES[1]);
}

fn k8s_request(f: &Fixture, pod: &SimulatedPod, objects: &str) -> (proto::MountRequest, String) {
    let token = f.pod_token(pod);
    let p = params(&[
        ("akeylessAccessID", K8S_ACCESS_ID),
        ("akeylessK8sAuthConfigName", K8S_CONFIG),
        ("objects", objects),
    ]);
    (
        driver::mount_request("team-spc", &p, pod, &[(AUDIENCE, &token)], None),
        token,
    )
}

/// The address a listener logged at start (`"health":"…"` in JSON, `health=…` in text).
fn logged_addr(logs: &str, field: &str) -> std::net::SocketAddr {
    for pat in [format!("\"{field}\":\""), format!("{field}=")] {
        if let Some(i) = logs.find(&pat) {
            let rest = &logs[i + pat.len()..];
            let end = rest
                .find(|c: char| c == '"' || c.is_whitespace())
                .unwrap_or(rest.len());
            if let Ok(addr) = rest[..end].parse() {
                return addr;
            }
        }
    }
    panic!("no {field} address in the logs:\n{logs}");
}

/// A plain HTTP/1.1 GET over TCP: (status, content-type, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

async fn health_client(socket: &Path) -> HealthClient<tonic::transport::Channel> {
    let socket: PathBuf = socket.to_path_buf();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
        .expect("connect");
    HealthClient::new(channel)
}

/// Waits until `cond` holds (checked every 20 ms) or panics with `what` after `limit`.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_service_answers_on_the_provider_socket() {
    let f = Fixture::new().await;
    let mut health = health_client(&f.provider.socket).await;
    for service in ["", "v1alpha1.CSIDriverProvider"] {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("check {service:?}: {e}"))
            .into_inner();
        assert_eq!(resp.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_over_http() {
    let f = Fixture::new().await;
    let addr = logged_addr(&f.provider.logs(), "health");
    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "server: serving\nsocket: grpc health SERVING\nakeyless: no calls yet\n"
    );
    let (status, _, _) = http_get(addr, "/nope").await;
    assert_eq!(status, 404);
}

/// Builds what `serve` builds, in process, so the test controls when the socket starts serving.
fn in_process_context(url: &str) -> Arc<akeyless_csi_provider::mount::ProviderContext> {
    use clap::Parser;
    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        backend: akeyless_csi_provider::runtime::BackendArgs,
    }
    let args = W::parse_from(["t", "--akeyless-url", url]).backend;
    Arc::new(akeyless_csi_provider::runtime::provider_context(&args).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_before_the_socket_serves_after_draining_and_when_akeyless_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("akeyless.sock");
    let readiness = Readiness::default();
    let backend = BackendHealth::new();
    let addr = telemetry::spawn_http(
        "127.0.0.1:0".parse().unwrap(),
        health_router(HealthState {
            readiness: readiness.clone(),
            socket: socket.clone(),
            backend: backend.clone(),
        }),
    )
    .await
    .unwrap();

    // Not serving yet: alive but not ready, and the body says why.
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let (status, _, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("server: not serving (starting or draining)\nsocket: cannot connect"),
        "{body}"
    );

    // The socket exists and the gRPC server answers: ready.
    let listener = server::bind_socket(&socket).unwrap();
    let service = ProviderService::new(
        in_process_context("http://127.0.0.1:9"),
        Duration::from_secs(5),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, service, readiness.clone(), async {
        let _ = stopped.await;
    }));
    wait_until(Duration::from_secs(10), "/readyz to turn 200", || async {
        http_get(addr, "/readyz").await.0 == 200
    })
    .await;

    // Akeyless unreachable: every call in the window failed to connect.
    backend.record(false);
    backend.record(false);
    let (status, _, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("akeyless: unreachable: every call in the last 60s failed to connect (2 failure(s) in a row; no answer since start)"),
        "{body}"
    );
    backend.record(true);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);

    // Draining: not ready, while still alive.
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let (status, _, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("server: not serving"), "{body}");
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_akeyless_reachability_from_real_mounts() {
    // A port nothing listens on: every call fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let p = Provider::start(&dead_url, &["--log-format", "json"]).await;
    let health = logged_addr(&p.logs(), "health");
    let metrics = logged_addr(&p.logs(), "metrics");
    let (status, _, body) = http_get(health, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "server: serving\nsocket: grpc health SERVING\nakeyless: no calls yet\n"
        )
    );

    let mut client = driver::connect(&p.socket).await.unwrap();
    let status = client
        .mount(access_key_request(&objects()))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("[BackendUnavailable] "),
        "{}",
        status.message()
    );
    let (status, _, body) = http_get(health, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("akeyless: unreachable: every call in the last 60s failed to connect"),
        "{body}"
    );
    // Liveness is unaffected: a backend outage must not restart the provider.
    assert_eq!(http_get(health, "/healthz").await.0, 200);
    let text = http_get(metrics, "/metrics").await.2;
    assert!(
        metric_value(
            &text,
            "akeyless_csi_provider_backend_requests_total{operation=\"auth\",status=\"connect_error\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "akeyless_csi_provider_mounts_total{result=\"error\",code=\"BackendUnavailable\"}"
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_mounts_by_result_and_code_without_high_cardinality_labels() {
    let f = Fixture::new().await;
    seed(&f);
    let addr = logged_addr(&f.provider.logs(), "metrics");
    let before = http_get(addr, "/metrics").await.2;
    assert_eq!(
        metric_value(&before, "akeyless_csi_provider_inflight_mounts"),
        Some(0.0),
        "{before}"
    );

    f.mount(access_key_request(&objects())).await.unwrap();
    f.mount(access_key_request(&objects())).await.unwrap();
    let missing = "- secretPath: /ops/missing\n  fileName: m\n  type: static\n";
    let _ = f.mount(access_key_request(missing)).await.unwrap_err();
    let bad = "- secretPath: /ops/s0\n  fileName: /absolute\n";
    let _ = f.mount(access_key_request(bad)).await.unwrap_err();

    let (status, content_type, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for (series, value) in [
        (
            "akeyless_csi_provider_mounts_total{result=\"ok\",code=\"none\"}",
            2.0,
        ),
        (
            "akeyless_csi_provider_mounts_total{result=\"error\",code=\"NotFound\"}",
            1.0,
        ),
        (
            "akeyless_csi_provider_mounts_total{result=\"error\",code=\"InvalidConfig\"}",
            1.0,
        ),
        (
            "akeyless_csi_provider_mount_duration_seconds_count{result=\"ok\",code=\"none\"}",
            2.0,
        ),
        (
            "akeyless_csi_provider_mount_duration_seconds_bucket{result=\"error\",code=\"NotFound\",le=\"+Inf\"}",
            1.0,
        ),
        ("akeyless_csi_provider_inflight_mounts", 0.0),
        // Backend calls, from the Akeyless client: the 2 good mounts read 2 items in one call
        // each; the missing item is answered 404.
        (
            "akeyless_csi_provider_backend_requests_total{operation=\"get-secret-value\",status=\"200\"}",
            2.0,
        ),
        (
            "akeyless_csi_provider_backend_requests_total{operation=\"get-secret-value\",status=\"404\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            metric_value(&text, series),
            Some(value),
            "{series} in\n{text}"
        );
    }
    for family in [
        "# TYPE akeyless_csi_provider_auth_cache_hits_total counter",
        "# TYPE akeyless_csi_provider_auth_cache_misses_total counter",
        "# TYPE akeyless_csi_provider_auth_cache_entries gauge",
        "akeyless_csi_provider_sync_reconciles_total{result=\"error\"} 0",
        "# TYPE akeyless_csi_provider_build_info gauge",
    ] {
        // Labelled families (backend requests, retries) appear with their first sample.
        assert!(text.contains(family), "{family} missing in\n{text}");
    }
    // Low cardinality: nothing that names a pod, an SPC, an item or a value.
    for word in [
        "/ops/",
        "web",
        "default",
        "spc",
        ACCESS_ID,
        ACCESS_KEY,
        SECRET_VALUES[0],
    ] {
        let in_labels = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains(word));
        assert!(!in_labels, "{word:?} appears in a metric line:\n{text}");
    }
}

fn mount_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "mount" || v["fields"]["message"] == "mount")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mount_logs_one_json_line_with_its_fields_and_no_secret() {
    let f = Fixture::new().await;
    seed(&f);
    let pod = SimulatedPod::new("team-a", "web-7d9f", "uid-web-7d9f", "app");
    let (req, token) = k8s_request(&f, &pod, &objects());
    f.mount(req).await.unwrap();
    let (req, _) = k8s_request(
        &f,
        &pod,
        "- secretPath: /ops/missing\n  fileName: m\n  type: static\n",
    );
    let _ = f.mount(req).await.unwrap_err();
    f.mount(access_key_request(&objects())).await.unwrap();

    let logs = f.provider.logs();
    let lines = mount_lines(&logs);
    assert_eq!(lines.len(), 3, "one line per mount:\n{logs}");
    let ok = &lines[0];
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["pod_namespace"], "team-a");
    assert_eq!(ok["pod_name"], "web-7d9f");
    assert_eq!(ok["spc"], "team-spc");
    assert_eq!(ok["objects"], 2);
    assert_eq!(ok["files"], 2);
    assert_eq!(ok["result"], "ok");
    assert!(ok["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{ok}");
    let failed = &lines[1];
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["pod_namespace"], "team-a");
    assert_eq!(failed["pod_name"], "web-7d9f");
    assert_eq!(failed["spc"], "team-spc");
    assert_eq!(failed["objects"], 1);
    assert_eq!(failed["result"], "error");
    assert_eq!(failed["code"], "NotFound");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("/ops/missing")),
        "{failed}"
    );
    // The whole log (debug level) never holds a value, the access key or a token.
    for secret in [
        SECRET_VALUES[0],
        SECRET_VALUES[1],
        ACCESS_KEY,
        token.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    // Not even a token's signature part, in case something logged a truncated token.
    let signature = token.rsplit('.').next().unwrap();
    assert!(signature.len() > 16 && !logs.contains(signature));
}

/// The provider binary with chosen flags (the common harness fixes the log format to JSON).
struct Provider {
    child: std::process::Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Provider {
    async fn start(url: &str, args: &[&str]) -> Provider {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("akeyless.sock");
        let log = dir.path().join("provider.log");
        let child = Command::new(BIN)
            .arg("--endpoint")
            .arg(&socket)
            .args([
                "--akeyless-url",
                url,
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = Provider {
            child,
            socket,
            log,
            _dir: dir,
        };
        let socket = p.socket.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("provider exited ({status}):\n{}", p.logs());
            }
            if let Ok(mut c) = driver::connect(&socket).await
                && c.version(proto::VersionRequest::default()).await.is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "not ready:\n{}", p.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        p
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_the_same_mount_fields_and_no_secret() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    emulator.state().grant_read(ACCESS_ID, "/*", &[]);
    emulator
        .state()
        .put_static_secret("/ops/s0", SECRET_VALUES[0]);
    emulator
        .state()
        .put_static_secret("/ops/s1", SECRET_VALUES[1]);
    let p = Provider::start(
        &emulator.url(),
        &["--log-format", "text", "--log-level", "debug"],
    )
    .await;
    let mut client = driver::connect(&p.socket).await.unwrap();
    client.mount(access_key_request(&objects())).await.unwrap();
    let logs = p.logs();
    let line = logs
        .lines()
        .find(|l| l.contains(" mount ") || l.contains("mount pod_namespace"))
        .unwrap_or_else(|| panic!("no mount line:\n{logs}"));
    for field in [
        "pod_namespace=\"default\"",
        "pod_name=\"web\"",
        "spc=\"spc\"",
        "objects=2",
        "files=2",
        "duration_ms=",
        "result=\"ok\"",
    ] {
        assert!(line.contains(field), "{field} missing in {line:?}");
    }
    assert!(!line.starts_with('{'), "text format: {line}");
    for secret in [SECRET_VALUES[0], SECRET_VALUES[1], ACCESS_KEY] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_slow_in_flight_mount_and_reports_draining() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    emulator.state().grant_read(ACCESS_ID, "/*", &[]);
    emulator
        .state()
        .put_static_secret("/ops/s0", SECRET_VALUES[0]);
    emulator
        .state()
        .put_static_secret("/ops/s1", SECRET_VALUES[1]);
    let mut p = Provider::start(&emulator.url(), &["--log-format", "json"]).await;
    let health = logged_addr(&p.logs(), "health");
    let metrics = logged_addr(&p.logs(), "metrics");

    emulator
        .state()
        .set_delay("/get-secret-value", Duration::from_secs(5));
    let mut client = driver::connect(&p.socket).await.unwrap();
    let in_flight = tokio::spawn(async move { client.mount(access_key_request(&objects())).await });
    wait_until(
        Duration::from_secs(10),
        "the in-flight gauge to read 1",
        || async {
            metric_value(
                &http_get(metrics, "/metrics").await.2,
                "akeyless_csi_provider_inflight_mounts",
            ) == Some(1.0)
        },
    )
    .await;

    signal(p.child.id(), "TERM");
    // Draining: not ready (the probe takes the pod out), still alive, the mount still running.
    wait_until(Duration::from_secs(4), "/readyz to turn 503", || async {
        http_get(health, "/readyz").await.0 == 503
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "the mount should still be in flight"
    );
    assert_eq!(http_get(health, "/healthz").await.0, 200);

    let resp = in_flight
        .await
        .unwrap()
        .expect("the in-flight mount completes");
    assert_eq!(resp.into_inner().files.len(), 2);
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!p.socket.exists(), "socket removed on exit");
    let logs = p.logs();
    assert!(
        logs.contains("waiting for in-flight mounts") && logs.contains("\"message\":\"stopped\""),
        "{logs}"
    );
}

fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("AKEYLESS_CSI_AKEYLESS_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD_SPC: &str = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: good
  namespace: team-a
spec:
  provider: akeyless
  parameters:
    akeylessAccessID: p-k8sauth000001
    akeylessK8sAuthConfigName: cluster-1
    objects: |
      - secretPath: /ops/s0
        fileName: db/password
        mode: "0400"
      - secretPath: /ops/s1
        fileName: s1
        type: static
        version: 1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;

const BAD_SPC: &str = r#"apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: bad
spec:
  provider: akeyless
  parameters:
    akeylessAccessType: nope
    akeylessIgnoreCache: true
    objects: |
      - secretPath: /a
        fileName: ../escape
      - secretPath: /b
        mode: 644
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: no-params
spec:
  provider: akeyless
"#;

#[test]
fn validate_reports_every_problem_with_its_location_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&good, GOOD_SPC).unwrap();
    std::fs::write(&bad, BAD_SPC).unwrap();

    let (code, stdout, stderr) = run_bin(&["validate", good.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: ok (1 akeyless SecretProviderClass(es))\n",
            good.display()
        )
    );

    let (code, stdout, stderr) = run_bin(
        &["validate", good.to_str().unwrap(), bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let b = bad.display();
    let expected = format!(
        "{}: ok (1 akeyless SecretProviderClass(es))\n\
         {b}:doc 1 (bad): spec.parameters.akeylessIgnoreCache: parameter akeylessIgnoreCache must be a string (quote it); Kubernetes rejects other types\n\
         {b}:doc 1 (bad): spec.parameters.akeylessAccessType: {ACCESS_TYPE_MSG}\n\
         {b}:doc 1 (bad): spec.objects[0].fileName: {FILE_NAME_MSG}\n\
         {b}:doc 1 (bad): spec.objects[1].mode: {MODE_MSG}\n\
         {b}:doc 2 (no-params): spec.parameters: spec.parameters is required (the driver refuses an SPC without parameters)\n",
        good.display()
    );
    assert_eq!(stdout, expected);
    assert_eq!(stderr, "error: 5 problem(s) found\n");

    let (code, stdout, _) = run_bin(&["validate", "/no/such/file.yaml"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stdout,
        "/no/such/file.yaml: cannot read: No such file or directory (os error 2)\n"
    );
}

const ACCESS_TYPE_MSG: &str = "parameter akeylessAccessType \"nope\" is not supported; use one of: access_key, k8s, jwt, universal_identity, aws_iam, azure_ad, gcp";
const FILE_NAME_MSG: &str =
    "objects[0] (secretPath /a): fileName \"../escape\" must not contain .. segments";
const MODE_MSG: &str = "objects[1] (secretPath /b): mode 644 is not a mode: an integer is read as decimal (0 to 511); write octal modes as a string, e.g. \"0644\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_mounts_an_spc_file_against_a_gateway_and_writes_the_files() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let state = emulator.state();
    state.add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &["team-a"], &[]);
    state.grant_read(K8S_ACCESS_ID, "/*", &[]);
    state.put_static_secret("/ops/s0", SECRET_VALUES[0]);
    state.put_static_secret("/ops/s1", SECRET_VALUES[1]);
    let dir = tempfile::tempdir().unwrap();
    let spc = dir.path().join("spc.yaml");
    std::fs::write(&spc, GOOD_SPC).unwrap();
    let token_file = dir.path().join("token");
    let token = state.issue_service_account_token(
        "team-a",
        "app",
        "render",
        "uid-render",
        AUDIENCE,
        Duration::from_secs(600),
    );
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let out = dir.path().join("out");
    let url = emulator.url();
    let args: Vec<String> = [
        "render",
        "--spc",
        spc.to_str().unwrap(),
        "--service-account",
        "app",
        "--token-file",
        &format!("akeyless:{}", token_file.display()),
        "--out",
        out.to_str().unwrap(),
        "--akeyless-url",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(&refs, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    use std::os::unix::fs::PermissionsExt;
    let password = out.join("db/password");
    assert_eq!(
        std::fs::read_to_string(&password).unwrap(),
        SECRET_VALUES[0]
    );
    assert_eq!(
        std::fs::metadata(&password).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert_eq!(
        std::fs::read_to_string(out.join("s1")).unwrap(),
        SECRET_VALUES[1]
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "rendered SecretProviderClass good for pod team-a/akeyless-csi-render into {} in ",
            out.display()
        )),
        "{stdout}"
    );
    assert_eq!(lines[1], "files:");
    assert_eq!(lines[2], "  0400  db/password  (17 bytes)");
    assert_eq!(lines[3], "  0644  s1  (17 bytes)");
    assert_eq!(lines[4], "object versions:");
    assert!(lines[5].starts_with("  db/password  h-"), "{stdout}");
    assert_eq!(lines[6], "  s1  1");
    for secret in [SECRET_VALUES[0], SECRET_VALUES[1], token.as_str()] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    // It authenticated as the pod named on the command line, with its token.
    assert_eq!(state.count("/auth"), 1);

    // A failure exits 1 with the mount's `[Code] message` and writes nothing. The access key
    // comes from a Secret manifest, as a nodePublishSecretRef would give it.
    state.add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    state.grant_read(ACCESS_ID, "/*", &[]);
    let missing = dir.path().join("missing.yaml");
    std::fs::write(
        &missing,
        format!(
            "kind: SecretProviderClass\nmetadata: {{name: missing}}\nspec:\n  provider: akeyless\n  parameters:\n    akeylessAccessID: {ACCESS_ID}\n    objects: |\n      - secretPath: /ops/nope\n        fileName: nope\n        type: static\n"
        ),
    )
    .unwrap();
    let secret_file = dir.path().join("secret.yaml");
    use base64::Engine;
    std::fs::write(
        &secret_file,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: akeyless-creds}}\ndata:\n  akeylessAccessKey: {}\n",
            base64::engine::general_purpose::STANDARD.encode(ACCESS_KEY)
        ),
    )
    .unwrap();
    let out2 = dir.path().join("out2");
    let (code, stdout, stderr) = {
        let args: Vec<String> = [
            "render",
            "--spc",
            missing.to_str().unwrap(),
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "--akeyless-url",
            &url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run_bin(&refs, &[])
        })
        .await
        .unwrap()
    };
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.lines().last().is_some_and(
            |l| l.starts_with("error: [NotFound] object \"nope\" (secretPath /ops/nope)")
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(ACCESS_KEY));
    assert_eq!(state.count("/auth"), 2);
    assert!(!out2.exists());
}
