//! Universal Identity, AWS IAM and GCP auth over the real socket, against the emulator (which
//! also plays AWS STS and the GCP metadata server). Each method runs only when configured, and
//! the provider's own cloud identity only behind its opt-in flag.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_csi_provider::emulator::Emulator;
use common::*;
use tonic::Code;

const UID_ACCESS_ID: &str = "p-uidauth000001";
const AWS_ACCESS_ID: &str = "p-awsauth000001";
const GCP_ACCESS_ID: &str = "p-gcpauth000001";
const ROLE: &str = "arn:aws:iam::123456789012:role/web";
const OBJECTS: &str = "- secretPath: /cloud/db\n  type: static\n";

async fn fixture_with(args: impl FnOnce(&str) -> Vec<String>, env: &[(&str, &str)]) -> Fixture {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    let args = args(&emulator.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let provider = ProviderProcess::start_with_env(&emulator.url(), &args, env).await;
    let f = Fixture { emulator, provider };
    f.state().put_static_secret("/cloud/db", "cloud-value");
    f
}

fn uid_request(pod: &SimulatedPod, init_token: &str) -> akeyless_csi_provider::proto::MountRequest {
    let p = params(&[
        ("akeylessAccessType", "universal_identity"),
        ("akeylessAccessID", UID_ACCESS_ID),
        ("objects", OBJECTS),
    ]);
    let secret = params(&[("akeylessUIDInitToken", init_token)]);
    driver::mount_request("spc", &p, pod, &[], Some(&secret))
}

fn fields_of(f: &Fixture, path: &str) -> Vec<Vec<String>> {
    f.state()
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.fields)
        .collect()
}

/// The first login forks a child from the Secret's init token (which stays valid for other
/// nodes and restarts); later logins rotate that child, per identity. A mount presenting another
/// init token never continues someone else's chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn universal_identity_rotates_per_identity_and_keeps_the_init_token() {
    let f = fixture_with(|_| vec![], &[]).await;
    let s = f.state();
    let init = s.add_universal_identity_auth(UID_ACCESS_ID);
    s.grant_read(UID_ACCESS_ID, "/cloud/*", &[]);
    let web = pod("team-a", "web");

    let resp = f.mount(uid_request(&web, &init)).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![("db".into(), 0o644, "cloud-value".into())]
    );
    assert_eq!((s.count("/uid-rotate-token"), s.count("/auth")), (1, 1));
    let rotate = &fields_of(&f, "/uid-rotate-token")[0];
    assert!(
        rotate.contains(&"fork".into()) && rotate.contains(&"uid-token".into()),
        "{rotate:?}"
    );
    let login = &fields_of(&f, "/auth")[0];
    assert!(login.contains(&"uid-token".into()), "{login:?}");
    assert!(
        s.uid_token_is_valid(&init),
        "forking leaves the init token valid"
    );
    assert_eq!(
        s.valid_uid_tokens(UID_ACCESS_ID),
        2,
        "init + the node's child"
    );
    let who = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .and_then(|r| r.identity)
        .unwrap();
    assert_eq!(who.access_type, "universal_identity");

    // Warm: the cached t- token is reused, nothing rotates.
    f.mount(uid_request(&web, &init)).await.unwrap();
    assert_eq!((s.count("/uid-rotate-token"), s.count("/auth")), (1, 1));

    // The t- token is refused: one re-login, which rotates the child (replacing it).
    s.revoke_all_tokens();
    f.mount(uid_request(&web, &init)).await.unwrap();
    assert_eq!((s.count("/uid-rotate-token"), s.count("/auth")), (2, 2));
    assert_eq!(
        s.valid_uid_tokens(UID_ACCESS_ID),
        2,
        "the old child was replaced, not added to"
    );
    assert!(s.uid_token_is_valid(&init));

    // A pod presenting another (invalid) token for the same access ID gets nothing from the
    // existing chain: its own /uid-rotate-token is refused and it never reaches /auth.
    let intruder = pod("team-b", "intruder");
    let msg = expect_error(
        f.mount(uid_request(&intruder, "u-notarealtoken0000000000"))
            .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("akeylessUIDInitToken") && !msg.contains("u-notarealtoken"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), 2);

    // The remembered child is revoked behind our back: the chain restarts from the init token.
    s.revoke_all_tokens();
    s.revoke_uid_tokens_except(UID_ACCESS_ID, &init);
    f.mount(uid_request(&web, &init)).await.unwrap();
    let forks = fields_of(&f, "/uid-rotate-token");
    // fork, rotate, the intruder's refused fork, then the refused rotate and a new fork.
    assert_eq!(forks.len(), 5, "{forks:?}");
    assert!(s.uid_token_is_valid(&init));

    // The init token itself is gone too (e.g. revoked, or expired): a clear AuthFailed.
    s.revoke_all_tokens();
    s.revoke_uid_tokens_except(UID_ACCESS_ID, &init);
    s.revoke_uid_token(&init);
    let msg = expect_error(
        f.mount(uid_request(&web, &init)).await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(msg.contains("update the Secret"), "{msg}");
    let logs = f.provider.logs();
    assert!(!logs.contains(&init), "the init token was logged");
}

fn aws_request(
    f: &Fixture,
    pod: &SimulatedPod,
    role: Option<&str>,
) -> akeyless_csi_provider::proto::MountRequest {
    let mut p = params(&[
        ("akeylessAccessType", "aws_iam"),
        ("akeylessAccessID", AWS_ACCESS_ID),
        ("akeylessAWSRegion", "eu-west-1"),
        ("objects", OBJECTS),
    ]);
    if let Some(role) = role {
        p.insert("akeylessAWSRoleARN".into(), role.into());
    }
    let irsa = f.state().issue_service_account_token(
        &pod.namespace,
        &pod.service_account,
        &pod.name,
        &pod.uid,
        "sts.amazonaws.com",
        Duration::from_secs(3600),
    );
    driver::mount_request(
        "spc",
        &p,
        pod,
        &[("sts.amazonaws.com", &irsa), (AUDIENCE, &f.pod_token(pod))],
        None,
    )
}

/// EKS IRSA: the pod's token → STS AssumeRoleWithWebIdentity → a SigV4-signed, unsent
/// GetCallerIdentity as cloud-id, which the emulator verifies with the secret it issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_assumes_the_pods_role_and_signs_get_caller_identity() {
    let f = fixture_with(
        |url| vec!["--aws-sts-endpoint".into(), format!("{url}/aws-sts")],
        &[],
    )
    .await;
    let s = f.state();
    s.add_aws_role(ROLE, "team-a", "web");
    s.add_aws_iam_auth(AWS_ACCESS_ID, &[ROLE]);
    s.grant_read(AWS_ACCESS_ID, "/cloud/*", &[]);

    let web = SimulatedPod::new("team-a", "web-1", "uid-web-1", "web");
    let resp = f.mount(aws_request(&f, &web, Some(ROLE))).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![("db".into(), 0o644, "cloud-value".into())]
    );
    let login = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .unwrap();
    assert!(
        login.fields.contains(&"cloud-id".into()),
        "{:?}",
        login.fields
    );
    let who = login.identity.unwrap();
    assert_eq!(
        (who.access_type.as_str(), who.subject.as_deref()),
        ("aws_iam", Some(ROLE))
    );

    // Another service account is not trusted by the role: STS refuses, no /auth.
    let batch = SimulatedPod::new("team-a", "batch-1", "uid-batch-1", "batch");
    let msg = expect_error(
        f.mount(aws_request(&f, &batch, Some(ROLE))).await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("trust policy") && msg.contains(ROLE) && msg.contains("AccessDenied"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), 1);

    // No role and no opt-in: the provider's own identity is never used.
    let msg = expect_error(
        f.mount(aws_request(&f, &web, None)).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("akeylessAWSRoleARN") && msg.contains("--aws-provider-credentials"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), 1);
}

/// `--aws-provider-credentials`: an SPC without a role signs with the provider's own
/// credentials (opt-in, logged at start, never the secret key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_with_the_providers_credentials_only_when_opted_in() {
    const NODE_ARN: &str = "arn:aws:iam::123456789012:user/node";
    const SECRET: &str = "node-secret-access-key-0000000000000000";
    let f = fixture_with(
        |_| vec!["--aws-provider-credentials".into()],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIANODE000000000001"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
    .await;
    let s = f.state();
    s.add_aws_user("AKIANODE000000000001", SECRET, NODE_ARN);
    s.add_aws_iam_auth(AWS_ACCESS_ID, &[NODE_ARN]);
    s.grant_read(AWS_ACCESS_ID, "/cloud/*", &[]);
    let web = pod("team-a", "web");
    f.mount(aws_request(&f, &web, None)).await.unwrap();
    let who = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .and_then(|r| r.identity)
        .unwrap();
    assert_eq!(who.subject.as_deref(), Some(NODE_ARN));

    // A wrong secret makes the signature fail at Akeyless (the emulator verifies it).
    s.add_aws_user("AKIANODE000000000001", "another-secret", NODE_ARN);
    let other = pod("team-a", "other");
    expect_error(
        f.mount(aws_request(&f, &other, None)).await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    let logs = f.provider.logs();
    assert!(
        logs.contains("--aws-provider-credentials"),
        "opt-in is logged"
    );
    assert!(!logs.contains(SECRET), "the secret key was logged");
}

fn gcp_request(
    pod: &SimulatedPod,
    audience: Option<&str>,
) -> akeyless_csi_provider::proto::MountRequest {
    let mut p = params(&[
        ("akeylessAccessType", "gcp"),
        ("akeylessAccessID", GCP_ACCESS_ID),
        ("objects", OBJECTS),
    ]);
    if let Some(a) = audience {
        p.insert("akeylessGCPAudience".into(), a.into());
    }
    driver::mount_request("spc", &p, pod, &[], None)
}

/// `gcp` uses the node's Google identity from the metadata server, only with
/// `--gcp-metadata-identity`; the ID token's audience is `akeylessGCPAudience`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_uses_the_node_identity_only_when_opted_in() {
    const NODE_SA: &str = "node@project.iam.gserviceaccount.com";
    let f = fixture_with(
        |url| {
            vec![
                "--gcp-metadata-identity".into(),
                "--gcp-metadata-url".into(),
                url.to_string(),
            ]
        },
        &[],
    )
    .await;
    let s = f.state();
    s.set_gcp_node_service_account(NODE_SA);
    s.add_gcp_auth(GCP_ACCESS_ID, "akeyless.io", &[NODE_SA]);
    s.grant_read(GCP_ACCESS_ID, "/cloud/*", &[]);
    let web = pod("team-a", "web");
    let resp = f.mount(gcp_request(&web, None)).await.unwrap();
    assert_eq!(resp.files.len(), 1);
    let who = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .and_then(|r| r.identity)
        .unwrap();
    assert_eq!(
        (who.access_type.as_str(), who.subject.as_deref()),
        ("gcp", Some(NODE_SA))
    );
    // An audience the auth method doesn't accept fails at Akeyless.
    let other = pod("team-a", "other");
    expect_error(
        f.mount(gcp_request(&other, Some("https://elsewhere.example")))
            .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(f.provider.logs().contains("--gcp-metadata-identity"));

    // Without the flag, gcp is refused before any call.
    let plain = fixture_with(|_| vec![], &[]).await;
    let msg = expect_error(
        plain.mount(gcp_request(&web, None)).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("--gcp-metadata-identity"), "{msg}");
    assert_eq!(plain.state().count("/auth"), 0);
}

/// Whether `text` holds something shaped like an emulator UID token (`u-` + 24 alphanumerics).
fn contains_uid_token(text: &str) -> bool {
    text.match_indices("u-").any(|(i, _)| {
        let before_ok = i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric();
        before_ok
            && text
                .get(i + 2..i + 26)
                .is_some_and(|c| c.bytes().all(|b| b.is_ascii_alphanumeric()))
    })
}

/// At trace level, the UID tokens (init and rotated), the pod's web-identity token, the AWS keys
/// and the signed request never reach the provider's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_uid_tokens_or_aws_credentials() {
    const SECRET: &str = "node-secret-access-key-1111111111111111";
    let f = fixture_with(
        |url| {
            vec![
                "--log-level".into(),
                "trace".into(),
                "--aws-sts-endpoint".into(),
                format!("{url}/aws-sts"),
                "--aws-provider-credentials".into(),
            ]
        },
        &[
            ("AWS_ACCESS_KEY_ID", "AKIANODE000000000002"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "node-session-token-2222222222222222"),
        ],
    )
    .await;
    let s = f.state();
    let init = s.add_universal_identity_auth(UID_ACCESS_ID);
    s.grant_read(UID_ACCESS_ID, "/cloud/*", &[]);
    s.add_aws_role(ROLE, "team-a", "web");
    s.add_aws_iam_auth(AWS_ACCESS_ID, &[]);
    s.grant_read(AWS_ACCESS_ID, "/cloud/*", &[]);
    let web = SimulatedPod::new("team-a", "web-1", "uid-web-1", "web");
    f.mount(uid_request(&web, &init)).await.unwrap();
    s.revoke_all_tokens();
    f.mount(uid_request(&web, &init)).await.unwrap();
    let request = aws_request(&f, &web, Some(ROLE));
    f.mount(request.clone()).await.unwrap();
    // The provider's own (static) credentials: the emulator doesn't know them, so /auth fails.
    let _ = f.mount(aws_request(&f, &web, None)).await;

    let logs = f.provider.logs();
    assert!(logs.contains("TRACE"), "trace logging was on");
    assert!(s.count("/uid-rotate-token") >= 2 && s.count("/auth") >= 3);
    assert!(
        !contains_uid_token(&logs),
        "a UID token leaked into the log"
    );
    assert!(!logs.contains(&init));
    let irsa: serde_json::Value = serde_json::from_str(&request.attributes).unwrap();
    let tokens: serde_json::Value = serde_json::from_str(
        irsa["csi.storage.k8s.io/serviceAccount.tokens"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let web_identity = tokens["sts.amazonaws.com"]["token"].as_str().unwrap();
    for (what, secret) in [
        ("web-identity token", web_identity),
        ("secret access key", SECRET),
        ("session token", "node-session-token-2222222222222222"),
        ("STS answer", "<SecretAccessKey>"),
        ("signed request", "sts_request_headers"),
        ("signature", "Signature="),
    ] {
        assert!(!logs.contains(secret), "{what} leaked into the trace log");
    }
}
