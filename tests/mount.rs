//! Mounts over the real Unix socket with real gRPC, against the Akeyless emulator.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver;
use akeyless_csi_provider::proto;
use common::*;
use tonic::Code;

fn static_objects(n: usize) -> String {
    (0..n)
        .map(|i| format!("- secretPath: /apps/s{i}\n  fileName: s{i}\n  type: static\n"))
        .collect()
}

async fn access_key_fixture() -> Fixture {
    let f = Fixture::new().await;
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_rpc_reports_protocol_and_runtime() {
    let f = Fixture::new().await;
    let v = f
        .provider
        .client()
        .await
        .version(proto::VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, "v1alpha1");
    assert_eq!(v.runtime_name, "akeyless-csi-provider");
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_provider_spc_shape_with_access_key_in_secrets() {
    let f = access_key_fixture().await;
    f.state()
        .put_static_secret("/akeyless-csi-secret/foo", "bar");
    f.state()
        .put_static_secret("/akeyless-csi-secret/secret", "very-secret-value");
    // The SPC of the driver's akeyless.bats, verbatim in shape (no type, a deprecated secretType).
    let objects = "- secretPath: /akeyless-csi-secret/foo\n  fileName: bar\n- secretPath: /akeyless-csi-secret/secret\n  fileName: bar1\n  secretType: StaticSecret\n";
    let resp = f.mount(access_key_request(objects)).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![
            ("bar".into(), 0o644, "bar".into()),
            ("bar1".into(), 0o644, "very-secret-value".into()),
        ]
    );
    let v = versions(&resp);
    assert_eq!(v.keys().collect::<Vec<_>>(), vec!["bar", "bar1"]);
    // Untyped objects were described once each, then read in one batch.
    assert_eq!(f.state().count("/describe-item"), 2);
    assert_eq!(f.state().count("/get-secret-value"), 1);
    assert_eq!(f.state().count("/auth"), 1);
    let auth = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .unwrap();
    assert!(
        auth.fields.contains(&"access-key".to_string()),
        "{:?}",
        auth.fields
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_typed_static_objects_take_one_read_and_one_auth() {
    let f = access_key_fixture().await;
    for i in 0..10 {
        f.state()
            .put_static_secret(&format!("/apps/s{i}"), &format!("value-{i}"));
    }
    let resp = f
        .mount(access_key_request(&static_objects(10)))
        .await
        .unwrap();
    assert_eq!(resp.files.len(), 10);
    assert_eq!(resp.object_version.len(), 10);
    assert_eq!(f.state().count("/get-secret-value"), 1);
    assert!(f.state().count("/auth") <= 1);
    assert_eq!(f.state().count("/describe-item"), 0);
    let read = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/get-secret-value")
        .unwrap();
    assert_eq!(read.items.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8s_auth_as_the_pod_with_null_secrets_and_namespace_bound_access() {
    let f = Fixture::new().await;
    f.state().add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &[], &[]);
    f.state()
        .grant_read(K8S_ACCESS_ID, "/team-a/*", &["team-a"]);
    f.state().put_static_secret("/team-a/db", "team-a-password");
    let p = params(&[
        ("akeylessAccessID", K8S_ACCESS_ID),
        ("akeylessK8sAuthConfigName", K8S_CONFIG),
        ("objects", "- secretPath: /team-a/db\n  type: static\n"),
    ]);

    // The allowed namespace mounts; secrets is the literal `null` (no nodePublishSecretRef).
    let allowed = pod("team-a", "api");
    let req = driver::mount_request(
        "spc",
        &p,
        &allowed,
        &[(AUDIENCE, &f.pod_token(&allowed))],
        None,
    );
    assert_eq!(req.secrets, "null");
    let resp = f.mount(req).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![("db".into(), 0o644, "team-a-password".into())]
    );
    let auth = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .unwrap();
    let who = auth.identity.expect("identity of the login");
    assert_eq!(who.namespace.as_deref(), Some("team-a"));
    assert_eq!(who.pod_uid.as_deref(), Some(allowed.uid.as_str()));
    assert!(
        auth.fields
            .contains(&"k8s-service-account-token".to_string())
    );

    // Another namespace, same SPC: denied by the item's sub-claim rule, and no files.
    let other = pod("team-b", "api");
    let req = driver::mount_request("spc", &p, &other, &[(AUDIENCE, &f.pod_token(&other))], None);
    let msg = expect_error(
        f.mount(req).await,
        Code::PermissionDenied,
        "PermissionDenied",
    );
    assert!(
        msg.contains("object \"db\" (secretPath /team-a/db)"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8s_auth_method_bound_to_namespace_rejects_other_pods() {
    let f = Fixture::new().await;
    f.state()
        .add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &["team-a"], &[]);
    f.state().grant_read(K8S_ACCESS_ID, "/*", &[]);
    f.state().put_static_secret("/x", "x");
    let p = params(&[
        ("akeylessAccessID", K8S_ACCESS_ID),
        ("akeylessK8sAuthConfigName", K8S_CONFIG),
        ("objects", "- secretPath: /x\n  type: static\n"),
    ]);
    let other = pod("team-b", "api");
    let req = driver::mount_request("spc", &p, &other, &[(AUDIENCE, &f.pod_token(&other))], None);
    let msg = expect_error(f.mount(req).await, Code::Unauthenticated, "AuthFailed");
    assert!(
        msg.contains(K8S_ACCESS_ID) && msg.contains("binds this pod's namespace"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_auth_with_the_pods_token() {
    let f = Fixture::new().await;
    f.state().add_jwt_auth("p-jwtauth000001", &[]);
    f.state().grant_read("p-jwtauth000001", "/*", &[]);
    f.state().put_static_secret("/j", "jwt-read");
    let p = params(&[
        ("akeylessAccessID", "p-jwtauth000001"),
        ("akeylessAccessType", "jwt"),
        ("akeylessTokenAudience", AUDIENCE),
        ("objects", "- secretPath: /j\n  type: static\n"),
    ]);
    let pd = pod("ns", "p");
    let req = driver::mount_request(
        "spc",
        &p,
        &pd,
        &[(AUDIENCE, &f.pod_token(&pd)), ("other", "x")],
        None,
    );
    let resp = f.mount(req).await.unwrap();
    assert_eq!(files(&resp), vec![("j".into(), 0o644, "jwt-read".into())]);
    let auth = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .unwrap();
    assert!(
        auth.fields.contains(&"jwt".to_string()),
        "{:?}",
        auth.fields
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_pinning_reads_and_reports_the_pinned_version() {
    let f = access_key_fixture().await;
    for v in ["one", "two", "three"] {
        f.state().put_static_secret("/apps/multi", v);
    }
    let objects = "- secretPath: /apps/multi\n  fileName: pinned\n  type: static\n  version: 2\n  mode: \"0440\"\n- secretPath: /apps/multi\n  fileName: latest\n  type: static\n";
    let resp = f.mount(access_key_request(objects)).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![
            ("latest".into(), 0o644, "three".into()),
            ("pinned".into(), 0o440, "two".into()),
        ]
    );
    assert_eq!(versions(&resp)["pinned"], "2");
    // One read per version group.
    let reads: Vec<_> = f
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/get-secret-value")
        .map(|r| r.version)
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads.contains(&Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_changes_only_the_rotated_objects_version() {
    let f = access_key_fixture().await;
    f.state().put_static_secret("/apps/a", "a1");
    f.state().put_static_secret("/apps/b", "b1");
    let objects = "- secretPath: /apps/a\n  type: static\n- secretPath: /apps/b\n  type: static\n";
    let first = versions(&f.mount(access_key_request(objects)).await.unwrap());
    let again = versions(&f.mount(access_key_request(objects)).await.unwrap());
    assert_eq!(first, again, "versions are stable while content is");
    f.state().put_static_secret("/apps/a", "a2");
    let rotated = f.mount(access_key_request(objects)).await.unwrap();
    assert_eq!(files(&rotated)[0], ("a".into(), 0o644, "a2".into()));
    let after = versions(&rotated);
    assert_ne!(after["a"], first["a"]);
    assert_eq!(after["b"], first["b"]);
}

/// Every validation error is reported before any backend request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_make_no_backend_requests() {
    let f = access_key_fixture().await;
    let with = |pairs: &[(&str, &str)], secret: Option<(&str, &str)>| {
        let secret = secret.map(|(k, v)| params(&[(k, v)]));
        driver::mount_request("spc", &params(pairs), &pod("ns", "p"), &[], secret.as_ref())
    };
    let key = Some(("akeylessAccessKey", ACCESS_KEY));
    let cases: Vec<(&str, proto::MountRequest, &str)> = vec![
        (
            "unsafe fileName",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    (
                        "objects",
                        "- secretPath: /a\n  fileName: ../../etc/passwd\n",
                    ),
                ],
                key,
            ),
            "objects[0] (secretPath /a): fileName \"../../etc/passwd\" must not contain .. segments",
        ),
        (
            "absolute fileName",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("objects", "- secretPath: /a\n  fileName: /etc/passwd\n"),
                ],
                key,
            ),
            "relative path",
        ),
        (
            "duplicate fileName",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("objects", "- secretPath: /a/x\n- secretPath: /b/x\n"),
                ],
                key,
            ),
            "already used by objects[0]",
        ),
        (
            "empty objects",
            with(&[("akeylessAccessID", ACCESS_ID), ("objects", "[]")], key),
            "lists no objects",
        ),
        (
            "missing objects",
            with(&[("akeylessAccessID", ACCESS_ID)], key),
            "parameter objects is required",
        ),
        (
            "unknown access type",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("akeylessAccessType", "password"),
                    ("objects", "- secretPath: /a\n"),
                ],
                key,
            ),
            "akeylessAccessType \"password\" is not supported",
        ),
        (
            "missing access key",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("objects", "- secretPath: /a\n"),
                ],
                None,
            ),
            "needs an access key",
        ),
        (
            "missing access id",
            with(&[("objects", "- secretPath: /a\n")], key),
            "akeylessAccessID is required",
        ),
        (
            "k8s without token requests",
            with(
                &[
                    ("akeylessAccessID", K8S_ACCESS_ID),
                    ("akeylessK8sAuthConfigName", "c"),
                    ("objects", "- secretPath: /a\n"),
                ],
                None,
            ),
            "tokenRequests",
        ),
        (
            "unknown object field",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("objects", "- secretPath: /a\n  filename: typo\n"),
                ],
                key,
            ),
            "accepted fields: secretPath, fileName",
        ),
        (
            "bad mode",
            with(
                &[
                    ("akeylessAccessID", ACCESS_ID),
                    ("objects", "- secretPath: /a\n  mode: \"0999\"\n"),
                ],
                key,
            ),
            "objects[0] (secretPath /a): mode",
        ),
    ];
    for (name, request, expected) in cases {
        let msg = expect_error(
            f.mount(request).await,
            Code::InvalidArgument,
            "InvalidConfig",
        );
        assert!(
            msg.contains(expected),
            "{name}: {msg:?} should mention {expected:?}"
        );
    }
    // Malformed wire fields too.
    let mut bad = access_key_request("- secretPath: /a\n");
    bad.attributes = "{not json".into();
    expect_error(f.mount(bad).await, Code::InvalidArgument, "InvalidConfig");
    let mut bad = access_key_request("- secretPath: /a\n");
    bad.permission = "\"rw\"".into();
    expect_error(f.mount(bad).await, Code::InvalidArgument, "InvalidConfig");

    assert_eq!(f.state().requests().len(), 0, "{:?}", f.state().requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_statuses_map_to_public_codes_and_the_next_mount_succeeds() {
    let f = access_key_fixture().await;
    f.state().put_static_secret("/apps/s0", "v0");
    let ok_request = || access_key_request(&static_objects(1));
    let cases: Vec<(&str, u16, Code, &str)> = vec![
        (
            "/get-secret-value",
            401,
            Code::PermissionDenied,
            "PermissionDenied",
        ),
        (
            "/get-secret-value",
            403,
            Code::PermissionDenied,
            "PermissionDenied",
        ),
        ("/get-secret-value", 404, Code::NotFound, "NotFound"),
        (
            "/get-secret-value",
            429,
            Code::ResourceExhausted,
            "Throttled",
        ),
        (
            "/get-secret-value",
            500,
            Code::Internal,
            "BackendUnavailable",
        ),
        (
            "/get-secret-value",
            503,
            Code::Internal,
            "BackendUnavailable",
        ),
        ("/auth", 401, Code::Unauthenticated, "AuthFailed"),
        ("/auth", 500, Code::Internal, "BackendUnavailable"),
    ];
    for (i, (path, status, grpc, code)) in cases.into_iter().enumerate() {
        // More failures than retries (and re-logins) can absorb; a new pod logs in afresh.
        f.state().fail_next(path, status, 10);
        let fresh_pod = pod("default", &format!("case-{i}"));
        // 429 and 503 back the gateway off for every mount (growing waits, then probes): a
        // mount whose deadline ends first fails with the gateway's status.
        let msg = expect_error(
            f.mount_with_timeout(
                access_key_request_as(&static_objects(1), &fresh_pod),
                Some(Duration::from_secs(3)),
            )
            .await,
            grpc,
            code,
        );
        f.state().clear_faults();
        assert!(msg.contains(&status.to_string()), "{path} {status}: {msg}");
        // A failure never poisons the next mount.
        let resp = f
            .mount(ok_request())
            .await
            .unwrap_or_else(|e| panic!("after {path} {status}: {e}"));
        assert_eq!(files(&resp), vec![("s0".into(), 0o644, "v0".into())]);
    }

    // Dropped connections.
    f.state().drop_next("/get-secret-value", 10);
    expect_error(
        f.mount(ok_request()).await,
        Code::Internal,
        "BackendUnavailable",
    );
    f.state().clear_faults();
    f.mount(ok_request()).await.unwrap();

    // A single transient failure is retried away: the mount succeeds.
    for status in [429, 500, 503] {
        let reads = f.state().count("/get-secret-value");
        f.state().fail_next("/get-secret-value", status, 1);
        f.mount(ok_request())
            .await
            .unwrap_or_else(|e| panic!("{status} once: {e}"));
        assert_eq!(
            f.state().count("/get-secret-value"),
            reads + 2,
            "one retry after {status}"
        );
    }

    // A real 404: the item does not exist. The message names the object.
    let msg = expect_error(
        f.mount(access_key_request(
            "- secretPath: /apps/missing\n  fileName: gone\n  type: static\n",
        ))
        .await,
        Code::NotFound,
        "NotFound",
    );
    assert!(
        msg.contains("object \"gone\" (secretPath /apps/missing)"),
        "{msg}"
    );

    // A wrong access key.
    let p = params(&[
        ("akeylessAccessID", ACCESS_ID),
        ("objects", &static_objects(1)),
    ]);
    let wrong = params(&[("akeylessAccessKey", "wrong-key-value")]);
    let msg = expect_error(
        f.mount(driver::mount_request(
            "spc",
            &p,
            &pod("ns", "p"),
            &[],
            Some(&wrong),
        ))
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(!msg.contains("wrong-key-value"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_path_in_a_batch_is_named() {
    let f = access_key_fixture().await;
    for i in 0..4 {
        f.state().put_static_secret(&format!("/apps/s{i}"), "v");
    }
    let objects = format!(
        "{}- secretPath: /apps/typo\n  fileName: broken\n  type: static\n",
        static_objects(4)
    );
    let msg = expect_error(
        f.mount(access_key_request(&objects)).await,
        Code::NotFound,
        "NotFound",
    );
    assert!(
        msg.contains("object \"broken\" (secretPath /apps/typo)"),
        "{msg}"
    );
    assert!(
        !msg.contains("/apps/s0"),
        "only the culprit is named: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_ends_in_timeout_within_the_callers_deadline() {
    let f = access_key_fixture().await;
    f.state().put_static_secret("/apps/s0", "v0");
    f.state()
        .set_delay("/get-secret-value", Duration::from_secs(5));
    let started = std::time::Instant::now();
    let result = f
        .mount_with_timeout(
            access_key_request(&static_objects(1)),
            Some(Duration::from_millis(1500)),
        )
        .await;
    expect_error(result, Code::DeadlineExceeded, "Timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    f.state().clear_faults();
    f.mount(access_key_request(&static_objects(1)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_list_fails_over_to_the_next_url() {
    let f = access_key_fixture().await;
    f.state().put_static_secret("/apps/s0", "v0");
    // Nothing listens on port 1 of loopback: connection refused, then the emulator answers.
    let p = params(&[
        (
            "akeylessGatewayURL",
            &format!("http://127.0.0.1:1,{}", f.emulator.url()),
        ),
        ("akeylessAccessID", ACCESS_ID),
        ("objects", &static_objects(1)),
    ]);
    let secret = params(&[("akeylessAccessKey", ACCESS_KEY)]);
    let resp = f
        .mount(driver::mount_request(
            "spc",
            &p,
            &pod("ns", "p"),
            &[],
            Some(&secret),
        ))
        .await
        .unwrap();
    assert_eq!(resp.files.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private_and_logs_hold_no_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let f = access_key_fixture().await;
    f.state()
        .put_static_secret("/apps/s0", "the-secret-value-0");
    let mode = std::fs::metadata(&f.provider.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    f.mount(access_key_request(&static_objects(1)))
        .await
        .unwrap();
    f.state().fail_next("/get-secret-value", 401, 2);
    let _ = f.mount(access_key_request(&static_objects(1))).await;
    let logs = f.provider.logs();
    assert!(logs.contains("\"result\":\"ok\""), "{logs}");
    assert!(logs.contains("\"code\":\"PermissionDenied\""), "{logs}");
    for secret in [ACCESS_KEY, "the-secret-value-0"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced_and_sigterm_drains_in_flight_mounts() {
    let emulator = akeyless_emulator::Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    emulator.state().grant_read(ACCESS_ID, "/*", &[]);
    emulator.state().put_static_secret("/apps/s0", "v0");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("akeyless.sock");
    let spawn = |socket: &std::path::Path| {
        std::process::Command::new(provider_bin())
            .arg("--endpoint")
            .arg(socket)
            .args([
                "--akeyless-url",
                &emulator.url(),
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // A first provider serves on the endpoint, then is SIGKILLed: no cleanup, so its socket
    // file stays behind with nobody listening.
    let mut first = spawn(&socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = driver::connect(&socket).await
            && c.version(proto::VersionRequest::default()).await.is_ok()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "first provider never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(exists(&socket), "a killed provider leaves its socket file");
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_err(),
        "nobody listens on the stale socket"
    );
    let mut child = spawn(&socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        if let Ok(mut c) = driver::connect(&socket).await
            && c.version(proto::VersionRequest::default()).await.is_ok()
        {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "provider did not replace the stale socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // A slow mount is in flight when SIGTERM arrives: it completes, then the process exits 0.
    emulator
        .state()
        .set_delay("/get-secret-value", Duration::from_millis(800));
    let in_flight =
        tokio::spawn(async move { client.mount(access_key_request(&static_objects(1))).await });
    // Wait until the provider is inside the mount (the emulator has seen its login).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while emulator.state().count("/auth") == 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(child.id(), "TERM");
    let resp = in_flight.await.unwrap().expect("in-flight mount completes");
    assert_eq!(resp.into_inner().files.len(), 1);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!exists(&socket), "socket removed on exit");
}
