//! Fault injection against a fake gateway: malformed and oversized answers, TLS failures, DNS
//! failure. Each mount ends with the right error code inside its deadline, memory stays bounded,
//! the process stays up, and the next healthy mount succeeds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use akeyless_csi_provider::driver;
use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::Code;

/// How the fake gateway answers `/get-secret-value` (`/auth` always succeeds).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Healthy,
    NotJson,
    Truncated,
    /// A 100 MB body.
    Huge,
}

const OBJECTS: &str = "- secretPath: /f/a\n  fileName: a\n  type: static\n";

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return head.split_whitespace().nth(1).map(str::to_string);
        }
    }
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, path: &str, answer: Answer) {
    let json = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let out = match (path, answer) {
        ("/auth", _) => json(r#"{"token":"t-00000000000000000000000000000001","expiration":"2099-01-01T00:00:00Z"}"#),
        (_, Answer::Healthy) => json(r#"{"/f/a":"healthy-value"}"#),
        (_, Answer::NotJson) => {
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 23\r\nconnection: close\r\n\r\n<html>maintenance</html>".to_string()
        }
        (_, Answer::Truncated) => {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n{\"/f/a\":\"trunc".to_string()
        }
        (_, Answer::Huge) => {
            let size = 100 * 1024 * 1024;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let block = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                if stream.write_all(&block).await.is_err() {
                    return; // the provider hung up, as it should
                }
                sent += block.len();
            }
            return;
        }
    };
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A fake gateway on 127.0.0.1, optionally TLS. Returns its base URL.
async fn fake_gateway(
    answer: Arc<std::sync::Mutex<Answer>>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let current = *answer.lock().unwrap();
                match tls {
                    Some(config) => {
                        let Ok(mut stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                        else {
                            return;
                        };
                        if let Some(path) = read_request(&mut stream).await {
                            respond(&mut stream, &path, current).await;
                        }
                    }
                    None => {
                        let mut stream = tcp;
                        if let Some(path) = read_request(&mut stream).await {
                            respond(&mut stream, &path, current).await;
                        }
                    }
                }
            });
        }
    });
    format!("127.0.0.1:{port}")
}

fn request_to(url: &str, extra: &[(&str, &str)]) -> akeyless_csi_provider::proto::MountRequest {
    let mut pairs = vec![
        ("akeylessGatewayURL", url),
        ("akeylessAccessID", ACCESS_ID),
        ("objects", OBJECTS),
    ];
    pairs.extend_from_slice(extra);
    let secret = params(&[("akeylessAccessKey", ACCESS_KEY)]);
    driver::mount_request("spc", &params(&pairs), &pod("ns", "p"), &[], Some(&secret))
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_answers_fail_cleanly() {
    let answer = Arc::new(std::sync::Mutex::new(Answer::Healthy));
    let addr = fake_gateway(answer.clone(), None).await;
    let url = format!("http://{addr}");
    let f = Fixture::new().await;
    let ok = f.mount(request_to(&url, &[])).await.unwrap();
    assert_eq!(
        files(&ok),
        vec![("a".into(), 0o644, "healthy-value".into())]
    );

    for (fault, expected) in [
        (Answer::NotJson, "not the expected JSON"),
        (Answer::Truncated, "cannot reach Akeyless"),
        (Answer::Huge, "larger than 16777216 bytes"),
    ] {
        *answer.lock().unwrap() = fault;
        let started = Instant::now();
        let msg = expect_error(
            f.mount_with_timeout(request_to(&url, &[]), Some(Duration::from_secs(20)))
                .await,
            Code::Internal,
            "BackendUnavailable",
        );
        assert!(msg.contains(expected), "{fault:?}: {msg}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        *answer.lock().unwrap() = Answer::Healthy;
        f.mount(request_to(&url, &[]))
            .await
            .unwrap_or_else(|e| panic!("after {fault:?}: {e}"));
    }
    let peak = peak_rss_mib(f.provider.pid());
    eprintln!("provider peak RSS after a 100 MB answer: {peak:.1} MiB");
    assert!(
        peak < 64.0,
        "memory stays bounded under a 100 MB body: {peak:.1} MiB"
    );
}

struct TestPki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
    expired: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let config = |expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        Arc::new(config)
    };
    TestPki {
        ca_pem: ca.pem(),
        server: config(false),
        expired: config(true),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_configured_roots() {
    let pki = test_pki();
    let answer = Arc::new(std::sync::Mutex::new(Answer::Healthy));
    let good = format!(
        "https://{}",
        fake_gateway(answer.clone(), Some(pki.server.clone())).await
    );
    let expired = format!(
        "https://{}",
        fake_gateway(answer.clone(), Some(pki.expired.clone())).await
    );
    let f = Fixture::new().await;

    // Unknown issuer: refused.
    let msg = expect_error(
        f.mount(request_to(&good, &[])).await,
        Code::Internal,
        "BackendUnavailable",
    );
    assert!(
        msg.contains("certificate") || msg.contains("UnknownIssuer"),
        "{msg}"
    );
    // The SPC's akeylessCACert makes it trusted.
    let resp = f
        .mount(request_to(&good, &[("akeylessCACert", &pki.ca_pem)]))
        .await
        .unwrap();
    assert_eq!(resp.files.len(), 1);
    // An expired server certificate is refused even with the right CA.
    let msg = expect_error(
        f.mount(request_to(&expired, &[("akeylessCACert", &pki.ca_pem)]))
            .await,
        Code::Internal,
        "BackendUnavailable",
    );
    assert!(
        msg.to_lowercase().contains("expired") || msg.contains("certificate"),
        "{msg}"
    );

    // --ca-bundle trusts it for every SPC.
    let bundle = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bundle.path(), &pki.ca_pem).unwrap();
    let with_bundle = ProviderProcess::start(
        "https://api.akeyless.io",
        &["--ca-bundle", bundle.path().to_str().unwrap()],
    )
    .await;
    let mut client = with_bundle.client().await;
    let resp = client
        .mount(request_to(&good, &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.files.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failure_is_backend_unavailable_and_quick() {
    let f = Fixture::new().await;
    let started = Instant::now();
    let msg = expect_error(
        f.mount_with_timeout(
            request_to("https://no-such-gateway.invalid", &[]),
            Some(Duration::from_secs(20)),
        )
        .await,
        Code::Internal,
        "BackendUnavailable",
    );
    assert!(msg.contains("no-such-gateway.invalid"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mounts_are_bounded_and_queue_within_their_deadline() {
    let f = Arc::new(Fixture::with_args(&["--max-concurrent-mounts", "1"]).await);
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f.state().put_static_secret("/f/a", "v");
    f.state()
        .set_delay("/get-secret-value", Duration::from_millis(1500));
    let request = || access_key_request(OBJECTS);
    let slow = {
        let f = f.clone();
        tokio::spawn(async move {
            f.mount_with_timeout(request(), Some(Duration::from_secs(10)))
                .await
        })
    };
    // Wait until the first mount holds the only slot: its login is answered (the emulator
    // counts a request when it answers) and its 1.5 s read follows, slot held throughout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.state().count("/auth") == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let msg = expect_error(
        f.mount_with_timeout(request(), Some(Duration::from_millis(700)))
            .await,
        Code::DeadlineExceeded,
        "Timeout",
    );
    assert!(msg.contains("--max-concurrent-mounts"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    slow.await
        .unwrap()
        .expect("the mount holding the slot completes");
    f.state().clear_faults();
    f.mount(request()).await.expect("the queue drains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_size_limit_is_configurable() {
    let answer = Arc::new(std::sync::Mutex::new(Answer::Healthy));
    let url = format!("http://{}", fake_gateway(answer, None).await);
    // Every answer of the fake gateway is larger than 20 bytes: the first call (/auth) fails.
    let f = Fixture::with_args(&["--max-response-bytes", "20"]).await;
    let msg = expect_error(
        f.mount(request_to(&url, &[])).await,
        Code::Internal,
        "BackendUnavailable",
    );
    assert!(
        msg.contains("larger than 20 bytes (--max-response-bytes)"),
        "{msg}"
    );
}
