//! A hostile tenant: they write the SecretProviderClass and run the gateway it names. Every
//! answer below is one such gateway's; the provider must give each mount a proper `[Code]`
//! answer (never a reset stream), keep serving everyone else, and never panic.
//!
//! Runs against the binary cargo built, or the one `AKEYLESS_CSI_TEST_BIN` names (CI runs it
//! against the static `dist` build too).

mod common;

use std::time::{Duration, Instant};

use common::hostile::{Answer, HostileGateway};
use common::*;
use serde_json::json;
use tonic::Code;

const TOKEN: &str = "t-hostile000000000001";

/// An access-key mount of `objects` from the gateway at `url`, for pod `name`.
fn request_to(url: &str, objects: &str, name: &str) -> akeyless_csi_provider::proto::MountRequest {
    let p = params(&[
        ("akeylessGatewayURL", url),
        ("akeylessAccessID", ACCESS_ID),
        ("objects", objects),
    ]);
    let secret = params(&[("akeylessAccessKey", ACCESS_KEY)]);
    akeyless_csi_provider::driver::mount_request(
        "spc",
        &p,
        &pod("tenant", name),
        &[],
        Some(&secret),
    )
}

const STATIC: &str = "- secretPath: /s\n  type: static\n";

fn auth_ok() -> Answer {
    Answer::ok(json!({"token": TOKEN}))
}

/// One mount through `provider`, with a `timeout` deadline; the answer and how long it took.
async fn mount(
    provider: &ProviderProcess,
    request: akeyless_csi_provider::proto::MountRequest,
    timeout: Duration,
) -> (
    Result<akeyless_csi_provider::proto::MountResponse, tonic::Status>,
    Duration,
) {
    let started = Instant::now();
    let mut client = provider.client().await;
    let mut req = tonic::Request::new(request);
    req.set_timeout(timeout);
    let result = client.mount(req).await.map(tonic::Response::into_inner);
    (result, started.elapsed())
}

/// The provider still serves (Version answers), is alive, and logged no panic.
async fn assert_unharmed(provider: &mut ProviderProcess) {
    assert!(
        provider.try_wait().is_none(),
        "the provider exited:\n{}",
        provider.logs()
    );
    let mut client = provider.client().await;
    client
        .version(akeyless_csi_provider::proto::VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .expect("Version still answers");
    let logs = provider.logs();
    assert!(!logs.contains("panic"), "a panic was logged:\n{logs}");
}

/// Peak resident memory of the provider so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn provider_for(gw: &HostileGateway, args: &[&str]) -> ProviderProcess {
    ProviderProcess::start(&gw.url(), args).await
}

fn report(
    scenario: &str,
    result: &Result<akeyless_csi_provider::proto::MountResponse, tonic::Status>,
    took: Duration,
) {
    let answer = match result {
        Ok(r) => format!("mounted ({} files)", r.files.len()),
        Err(s) => s.message().chars().take(120).collect(),
    };
    println!("hostile: {scenario}: {answer} in {} ms", took.as_millis());
}

#[tokio::test]
async fn token_expiry_that_is_not_a_date_is_ignored() {
    let gw = HostileGateway::start().await;
    gw.on(
        "/auth",
        Answer::ok(json!({"token": TOKEN, "expiration": "2026-01-01T00:00:00+0é00"})),
    )
    .on("/get-secret-value", Answer::ok(json!({"/s": "v"})));
    let mut provider = provider_for(&gw, &[]).await;
    for expiration in [
        "2026-01-01T00:00:00+0é00",
        "éééééééééééééééééééé",
        "99999-99-99T99:99:99Z",
        "",
    ] {
        gw.on(
            "/auth",
            Answer::ok(json!({"token": TOKEN, "expiration": expiration})),
        );
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), STATIC, expiration),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("auth expiration {expiration:?}"), &result, took);
        let resp = result.expect("an unreadable expiry is ignored (default lifetime)");
        assert_eq!(files(&resp)[0].2, "v");
    }
    // The published field, `creds.expiry` (int64 Unix time), in every wrong shape.
    for (i, creds) in [
        json!({"expiry": u64::MAX}),
        json!({"expiry": i64::MIN}),
        json!({"expiry": 1e300}),
        json!({"expiry": "soon"}),
        json!({"expiry": [1]}),
        json!("not an object"),
        json!(null),
    ]
    .into_iter()
    .enumerate()
    {
        gw.on("/auth", Answer::ok(json!({"token": TOKEN, "creds": creds})));
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), STATIC, &format!("creds-{i}")),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("auth creds {creds}"), &result, took);
        let resp = result.expect("an unreadable creds.expiry is ignored");
        assert_eq!(files(&resp)[0].2, "v");
    }
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn absurd_dynamic_secret_leases_are_bounded() {
    let gw = HostileGateway::start().await;
    let objects = "- secretPath: /dyn\n  type: dynamic\n";
    let mut provider = provider_for(&gw, &[]).await;
    for (n, value) in [
        json!({"user": "u", "ttl": 1e300}),
        json!({"user": "u", "ttl_in_minutes": "1e18"}),
        json!({"user": "u", "lease_duration": "18446744073709551616"}),
        json!({"user": "u", "ttl": -1}),
    ]
    .into_iter()
    .enumerate()
    {
        gw.on("/auth", auth_ok())
            .on("/get-dynamic-secret-value", Answer::ok(value.clone()));
        let before = gw.count("/get-dynamic-secret-value");
        let pod_name = format!("dyn-{n}");
        for _ in 0..2 {
            let (result, took) = mount(
                &provider,
                request_to(&gw.url(), objects, &pod_name),
                Duration::from_secs(10),
            )
            .await;
            report(&format!("dynamic secret {value}"), &result, took);
            result.expect("a hostile lease length still mounts");
        }
        assert_eq!(
            gw.count("/get-dynamic-secret-value") - before,
            1,
            "the pod's second mount reuses its lease ({value})"
        );
    }
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let target = HostileGateway::start().await;
    target.on("/auth", auth_ok());
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    for status in [301, 302, 303, 307, 308] {
        gw.on(
            "/auth",
            Answer::Raw(
                status,
                vec![format!("Location: {}/auth", target.url())],
                vec![],
            ),
        );
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), STATIC, "redirect"),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("/auth answers {status}"), &result, took);
        let msg = expect_error(result, Code::InvalidArgument, "InvalidConfig");
        assert!(msg.contains("redirect"), "{msg}");
    }
    // Items too: a redirect of a read is refused as well.
    gw.on("/auth", auth_ok()).on(
        "/get-secret-value",
        Answer::Raw(
            307,
            vec![format!("Location: {}/get-secret-value", target.url())],
            vec![],
        ),
    );
    let (result, _) = mount(
        &provider,
        request_to(&gw.url(), STATIC, "redirect"),
        Duration::from_secs(10),
    )
    .await;
    expect_error(result, Code::InvalidArgument, "InvalidConfig");
    assert_eq!(
        target.paths(),
        Vec::<String>::new(),
        "the redirect target received nothing"
    );
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn a_url_without_the_api_is_a_configuration_error() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    for status in [404, 405] {
        gw.on("/auth", Answer::Json(status, json!({"error": "not here"})));
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), STATIC, "api"),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("/auth answers {status}"), &result, took);
        let msg = expect_error(result, Code::InvalidArgument, "InvalidConfig");
        assert!(
            msg.contains("/api/v2") && msg.contains("akeylessGatewayURL"),
            "{msg}"
        );
    }
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn floods_trickles_and_silence_end_at_the_deadline() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &["--max-response-bytes", "1048576"]).await;
    let deadline = Duration::from_secs(3);
    let cases: Vec<(&str, Answer, &str, Code)> = vec![
        (
            "2 MiB /auth answer",
            Answer::Raw(200, vec![], vec![b' '; 2 << 20]),
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "endless chunked /auth answer",
            Answer::Endless,
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "trickled /auth answer",
            Answer::Trickle(Duration::from_millis(200)),
            "Timeout",
            Code::DeadlineExceeded,
        ),
        (
            "silent gateway",
            Answer::Silent,
            "Timeout",
            Code::DeadlineExceeded,
        ),
        (
            "connection closed",
            Answer::Close,
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "not HTTP",
            Answer::Bytes(b"SSH-2.0-OpenSSH_9.0\r\n".to_vec()),
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "a lying Content-Length",
            Answer::Bytes(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}".to_vec(),
            ),
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "20,000 headers",
            Answer::Raw(
                200,
                (0..20_000).map(|i| format!("X-H{i}: {i}")).collect(),
                b"{}".to_vec(),
            ),
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "200,000 nested arrays",
            Answer::Raw(200, vec![], "[".repeat(200_000).into_bytes()),
            "BackendUnavailable",
            Code::Internal,
        ),
        (
            "invalid UTF-8",
            Answer::Raw(200, vec![], vec![0xff, 0xfe, b'{', 0xc3]),
            "BackendUnavailable",
            Code::Internal,
        ),
    ];
    for (scenario, answer, code, grpc) in cases {
        gw.on("/auth", answer);
        let (result, took) =
            mount(&provider, request_to(&gw.url(), STATIC, "flood"), deadline).await;
        report(scenario, &result, took);
        expect_error(result, grpc, code);
        assert!(
            took < deadline + Duration::from_secs(1),
            "{scenario}: answered after {took:?}"
        );
    }
    let peak = peak_rss_kib(provider.pid());
    println!("hostile: peak RSS after floods: {} MiB", peak / 1024);
    assert!(
        peak < 128 * 1024,
        "peak RSS {peak} KiB is over the chart's 128 MiB limit"
    );
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn throttling_with_an_absurd_retry_after_answers_within_the_deadline() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    for retry_after in [
        "18446744073709551615",
        "99999999999999999999999",
        "-1",
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ] {
        gw.on(
            "/auth",
            Answer::Raw(
                429,
                vec![format!("Retry-After: {retry_after}")],
                br#"{"error":"slow down"}"#.to_vec(),
            ),
        );
        let deadline = Duration::from_secs(3);
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), STATIC, "throttle"),
            deadline,
        )
        .await;
        report(
            &format!("429 with Retry-After {retry_after}"),
            &result,
            took,
        );
        expect_error(result, Code::ResourceExhausted, "Throttled");
        assert!(
            took < deadline + Duration::from_secs(1),
            "answered after {took:?}"
        );
    }
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn gateway_text_in_messages_is_bounded() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    gw.on("/auth", auth_ok()).on(
        "/describe-item",
        Answer::ok(json!({"item_type": "X".repeat(1 << 20)})),
    );
    let (result, took) = mount(
        &provider,
        request_to(&gw.url(), "- secretPath: /s\n", "text"),
        Duration::from_secs(10),
    )
    .await;
    report("a 1 MiB item type", &result, took);
    let msg = expect_error(result, Code::InvalidArgument, "InvalidConfig");
    assert!(msg.len() < 2000, "message of {} bytes", msg.len());
    gw.on(
        "/auth",
        Answer::Json(
            500,
            json!({"error": format!("boom {}", "Y ".repeat(1 << 19))}),
        ),
    );
    // Another pod: no cached token, so this one asks /auth.
    let (result, took) = mount(
        &provider,
        request_to(&gw.url(), STATIC, "text-2"),
        Duration::from_secs(10),
    )
    .await;
    report("a 1 MiB error message", &result, took);
    let msg = expect_error(result, Code::Internal, "BackendUnavailable");
    assert!(msg.len() < 2000, "message of {} bytes", msg.len());
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn certificates_from_a_gateway_are_checked_not_trusted() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let far_future = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["app.example".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(1, 1, 1);
        params.not_after = rcgen::date_time_ymd(9999, 12, 31);
        params.self_signed(&key).unwrap().pem()
    };
    gw.on("/auth", auth_ok());
    for (scenario, pem, mounts) in [
        ("garbage PEM", garbage.to_string(), false),
        ("no PEM at all", "hello".to_string(), false),
        (
            "a certificate valid from year 1 to 9999",
            far_future.clone(),
            true,
        ),
    ] {
        gw.on(
            "/get-certificate-value",
            Answer::ok(json!({"certificate_pem": pem})),
        );
        let objects = "- secretPath: /c\n  type: certificate\n  fileName: c\n";
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), objects, "cert"),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("certificate: {scenario}"), &result, took);
        assert_eq!(result.is_ok(), mounts, "{scenario}: {result:?}");
        gw.on("/get-pki-certificate", Answer::ok(json!({"data": pem})));
        let objects =
            "- secretPath: /issuer\n  type: pki\n  fileName: p\n  commonName: app.example\n";
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), objects, "pki"),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("pki: {scenario}"), &result, took);
        assert_eq!(result.is_ok(), mounts, "{scenario}: {result:?}");
    }
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn minting_calls_are_repeated_only_when_nothing_can_have_been_minted() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    gw.on("/auth", auth_ok());
    let dynamic = "- secretPath: /dyn\n  type: dynamic\n";
    for (n, (scenario, answer)) in [
        ("503", Answer::Json(503, json!({"error": "busy"}))),
        ("a connection closed after the request", Answer::Close),
    ]
    .into_iter()
    .enumerate()
    {
        gw.on("/get-dynamic-secret-value", answer);
        let before = gw.count("/get-dynamic-secret-value");
        let (result, took) = mount(
            &provider,
            request_to(&gw.url(), dynamic, &format!("mint-{n}")),
            Duration::from_secs(10),
        )
        .await;
        report(&format!("dynamic secret: {scenario}"), &result, took);
        assert!(result.is_err());
        assert_eq!(
            gw.count("/get-dynamic-secret-value") - before,
            1,
            "{scenario}: a call that may have minted a credential is not repeated"
        );
    }
    // 429 means "not processed": that one is retried.
    gw.on_seq(
        "/get-dynamic-secret-value",
        vec![
            Answer::Json(429, json!({"error": "slow down"})),
            Answer::ok(json!({"user": "u"})),
        ],
    );
    let (result, _) = mount(
        &provider,
        request_to(&gw.url(), dynamic, "mint-429"),
        Duration::from_secs(10),
    )
    .await;
    result.expect("a throttled mint is retried");
    // A read mints nothing: its 503 is retried.
    gw.on_seq(
        "/get-secret-value",
        vec![
            Answer::Json(503, json!({"error": "busy"})),
            Answer::ok(json!({"/s": "v"})),
        ],
    );
    let (result, _) = mount(
        &provider,
        request_to(&gw.url(), STATIC, "read-503"),
        Duration::from_secs(10),
    )
    .await;
    result.expect("a read's 503 is retried");
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn an_item_that_stays_denied_costs_no_login_per_rotation_poll() {
    let gw = HostileGateway::start().await;
    let mut provider = provider_for(&gw, &[]).await;
    gw.on("/auth", auth_ok()).on(
        "/get-secret-value",
        Answer::Json(
            401,
            json!({"error": "Status 401 Unauthorized, Error: UnauthorizedAccess"}),
        ),
    );
    for _ in 0..6 {
        let (result, _) = mount(
            &provider,
            request_to(&gw.url(), STATIC, "denied"),
            Duration::from_secs(10),
        )
        .await;
        expect_error(result, Code::PermissionDenied, "PermissionDenied");
    }
    let logins = gw.count("/auth");
    println!("hostile: 6 polls of a denied item: {logins} /auth");
    assert_eq!(
        logins, 1,
        "one login; the later denials are final without another /auth"
    );
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn the_allow_list_keeps_mounts_away_from_other_hosts() {
    let gw = HostileGateway::start().await;
    let emulator = akeyless_emulator::Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    emulator.state().grant_read(ACCESS_ID, "/*", &[]);
    emulator.state().put_static_secret("/s", "from-emulator");
    let allowed = format!(
        "gw.example.com,{}",
        emulator.url().trim_start_matches("http://")
    );
    let mut provider =
        ProviderProcess::start("https://api.akeyless.io", &["--allowed-gateways", &allowed]).await;
    let (result, took) = mount(
        &provider,
        request_to(&gw.url(), STATIC, "ssrf"),
        Duration::from_secs(10),
    )
    .await;
    report("a gateway outside --allowed-gateways", &result, took);
    let msg = expect_error(result, Code::InvalidArgument, "InvalidConfig");
    assert!(
        msg.contains("--allowed-gateways") && msg.contains("akeylessGatewayURL"),
        "{msg}"
    );
    assert!(
        gw.paths().is_empty(),
        "no request reached the unlisted host"
    );
    let (result, _) = mount(
        &provider,
        request_to(&emulator.url(), STATIC, "ok"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        files(&result.expect("a listed gateway mounts"))[0].2,
        "from-emulator"
    );
    assert_unharmed(&mut provider).await;
}

#[tokio::test]
async fn the_nodes_identity_goes_only_to_the_operators_url() {
    let gw = HostileGateway::start().await;
    gw.on("/auth", auth_ok());
    let emulator = akeyless_emulator::Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let state = emulator.state();
    state.set_gcp_node_service_account("node@proj.iam.gserviceaccount.com");
    state.add_gcp_auth(
        "p-gcpnode",
        "akeyless.io",
        &["node@proj.iam.gserviceaccount.com"],
    );
    state.grant_read("p-gcpnode", "/*", &[]);
    const NODE_OID: &str = "5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13";
    state.add_azure_node_identity("tenant-1", NODE_OID, None);
    state.add_azure_ad_auth("p-azurenode", &[NODE_OID]);
    state.grant_read("p-azurenode", "/*", &[]);
    state.put_static_secret("/s", "node-secret");
    let mut provider = ProviderProcess::start(
        &emulator.url(),
        &[
            "--gcp-metadata-identity",
            "--gcp-metadata-url",
            &emulator.url(),
            "--azure-provider-identity",
            "--azure-imds-url",
            &emulator.url(),
        ],
    )
    .await;
    // The SPC names its own gateway and audience: both are ignored for the node's identity.
    let p = params(&[
        ("akeylessGatewayURL", &gw.url()),
        ("akeylessAccessType", "gcp"),
        ("akeylessAccessID", "p-gcpnode"),
        ("akeylessGCPAudience", "https://evil.example"),
        ("objects", STATIC),
    ]);
    let request =
        akeyless_csi_provider::driver::mount_request("spc", &p, &pod("tenant", "gcp"), &[], None);
    let (result, took) = mount(&provider, request, Duration::from_secs(10)).await;
    report(
        "node identity with a tenant's gateway and audience",
        &result,
        took,
    );
    assert_eq!(
        files(&result.expect("mounted through --akeyless-url"))[0].2,
        "node-secret"
    );
    assert!(
        gw.paths().is_empty(),
        "the tenant's gateway received nothing: {:?}",
        gw.paths()
    );
    // The emulator's gcp method accepts only ID tokens for audience akeyless.io (the
    // operator's default --gcp-metadata-audience): mounting proves the SPC's was not used.

    // The node's Azure managed identity: the same.
    let p = params(&[
        ("akeylessGatewayURL", &gw.url()),
        ("akeylessAccessType", "azure_ad"),
        ("akeylessAccessID", "p-azurenode"),
        ("objects", STATIC),
    ]);
    let request =
        akeyless_csi_provider::driver::mount_request("spc", &p, &pod("tenant", "azure"), &[], None);
    let (result, took) = mount(&provider, request, Duration::from_secs(10)).await;
    report("Azure node identity with a tenant's gateway", &result, took);
    assert_eq!(
        files(&result.expect("mounted through --akeyless-url"))[0].2,
        "node-secret"
    );
    assert!(
        gw.paths().is_empty(),
        "the tenant's gateway received nothing: {:?}",
        gw.paths()
    );
    assert_unharmed(&mut provider).await;
}
