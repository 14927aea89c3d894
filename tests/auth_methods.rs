//! Universal Identity, AWS IAM and GCP auth over the real socket, against the emulator (which
//! also plays AWS STS, Google STS and IAM Credentials, and the GCP metadata server). Each method runs only when configured, and
//! the provider's own cloud identity only behind its opt-in flag.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_emulator::Emulator;
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

/// A Universal Identity mount that forks and rotates a token chain (`akeylessUIDRotation: fork`).
fn uid_request(pod: &SimulatedPod, init_token: &str) -> akeyless_csi_provider::proto::MountRequest {
    uid_request_with(pod, UID_ACCESS_ID, init_token, Some("fork"))
}

fn uid_request_with(
    pod: &SimulatedPod,
    access_id: &str,
    init_token: &str,
    rotation: Option<&str>,
) -> akeyless_csi_provider::proto::MountRequest {
    let mut p = params(&[
        ("akeylessAccessType", "universal_identity"),
        ("akeylessAccessID", access_id),
        ("objects", OBJECTS),
    ]);
    if let Some(rotation) = rotation {
        p.insert("akeylessUIDRotation".into(), rotation.into());
    }
    let secret = params(&[("akeylessUIDInitToken", init_token)]);
    driver::mount_request("spc", &p, pod, &[], Some(&secret))
}

/// By default a Universal Identity logs in with the presented token itself, as other Akeyless
/// clients do, so methods with `deny-inheritance` and `deny-rotate` work; no
/// `/uid-rotate-token` is ever called and the presented token stays the only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn universal_identity_by_the_presented_token_works_with_deny_inheritance_and_deny_rotate() {
    let f = fixture_with(|_| vec![], &[]).await;
    let s = f.state();
    let web = pod("team-a", "web");
    for (i, (deny_inheritance, deny_rotate)) in
        [(false, false), (true, false), (false, true), (true, true)]
            .into_iter()
            .enumerate()
    {
        let id = format!("p-uiddeny{i}");
        let init = s.add_universal_identity_auth_with(&id, deny_inheritance, deny_rotate);
        s.grant_read(&id, "/cloud/*", &[]);
        let resp = f
            .mount(uid_request_with(&web, &id, &init, None))
            .await
            .unwrap_or_else(|e| panic!("{id}: {}", e.message()));
        assert_eq!(
            files(&resp),
            vec![("db".into(), 0o644, "cloud-value".into())]
        );
        assert!(s.uid_token_is_valid(&init));
        assert_eq!(s.valid_uid_tokens(&id), 1, "{id}: no child token");
        // The cached t- token is refused: the re-login presents the same token again.
        s.revoke_all_tokens();
        f.mount(uid_request_with(&web, &id, &init, Some("none")))
            .await
            .unwrap();
    }
    assert_eq!(s.count("/uid-rotate-token"), 0);
    assert_eq!(s.count("/auth"), 8);

    // Asking for a fork chain on a method that denies it: a clear AuthFailed.
    let denied = s.add_universal_identity_auth_with("p-uiddeny9", true, false);
    let msg = expect_error(
        f.mount(uid_request_with(&web, "p-uiddeny9", &denied, Some("fork")))
            .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(!msg.contains(&denied), "{msg}");
    // A bad value names the parameter and the accepted ones.
    let msg = expect_error(
        f.mount(uid_request_with(
            &web,
            "p-uiddeny9",
            &denied,
            Some("rotate"),
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("akeylessUIDRotation") && msg.contains("none") && msg.contains("fork"),
        "{msg}"
    );
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
/// `--gcp-metadata-identity`; the ID token's audience is the operator's
/// (`--gcp-metadata-audience`), never the SPC's `akeylessGCPAudience`.
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
    // The SPC's audience is ignored for the node's identity: still the operator's.
    let other = pod("team-a", "other");
    f.mount(gcp_request(&other, Some("https://elsewhere.example")))
        .await
        .expect("the SPC cannot choose the node token's audience");
    assert!(f.provider.logs().contains("--gcp-metadata-identity"));
    // An operator audience the auth method doesn't accept fails at Akeyless.
    let elsewhere = fixture_with(
        |url| {
            vec![
                "--gcp-metadata-identity".into(),
                "--gcp-metadata-url".into(),
                url.to_string(),
                "--gcp-metadata-audience".into(),
                "https://elsewhere.example".into(),
            ]
        },
        &[],
    )
    .await;
    elsewhere.state().set_gcp_node_service_account(NODE_SA);
    elsewhere
        .state()
        .add_gcp_auth(GCP_ACCESS_ID, "akeyless.io", &[NODE_SA]);
    expect_error(
        elsewhere.mount(gcp_request(&web, None)).await,
        Code::Unauthenticated,
        "AuthFailed",
    );

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

const GKE_PROVIDER: &str = "identitynamespace:proj-1.svc.id.goog:https://container.googleapis.com/v1/projects/proj-1/locations/europe-west1/clusters/c1";
const GKE_TOKEN_AUDIENCE: &str = "proj-1.svc.id.goog";
const WEB_GSA: &str = "web@proj-1.iam.gserviceaccount.com";
const BATCH_GSA: &str = "batch@proj-1.iam.gserviceaccount.com";

fn google_args(url: &str) -> Vec<String> {
    vec![
        "--gcp-sts-endpoint".into(),
        url.to_string(),
        "--gcp-iam-credentials-endpoint".into(),
        url.to_string(),
    ]
}

/// A gcp SPC as the pod: the pod's token for the GKE identity namespace (besides the usual
/// `akeyless` one) is exchanged for an ID token of `gsa`.
fn gcp_pod_request(
    f: &Fixture,
    pod: &SimulatedPod,
    gsa: &str,
    extra: &[(&str, &str)],
) -> akeyless_csi_provider::proto::MountRequest {
    let mut p = params(&[
        ("akeylessAccessType", "gcp"),
        ("akeylessAccessID", GCP_ACCESS_ID),
        ("akeylessGCPServiceAccount", gsa),
        ("akeylessGCPWorkloadIdentityProvider", GKE_PROVIDER),
        ("objects", OBJECTS),
    ]);
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    let gke = f.state().issue_service_account_token(
        &pod.namespace,
        &pod.service_account,
        &pod.name,
        &pod.uid,
        GKE_TOKEN_AUDIENCE,
        Duration::from_secs(3600),
    );
    driver::mount_request(
        "spc",
        &p,
        pod,
        &[(GKE_TOKEN_AUDIENCE, &gke), (AUDIENCE, &f.pod_token(pod))],
        None,
    )
}

/// The Google service account each successful request of `path` acted as, in order.
fn gcp_subjects(f: &Fixture, path: &str) -> Vec<String> {
    f.state()
        .requests()
        .into_iter()
        .filter(|r| r.path == path && r.status == 200)
        .map(|r| {
            let who = r.identity.expect("a successful request has an identity");
            assert_eq!(who.access_type, "gcp");
            who.subject
                .expect("gcp identities name the Google service account")
        })
        .collect()
}

/// GKE Workload Identity, as the pod and without any provider flag: the pod's token → Google
/// STS → generateIdToken of the Google service account it may impersonate → /auth gcp. Pods of
/// different service accounts never share an Akeyless token, even under serviceAccount scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_authenticates_as_the_pod_through_workload_identity() {
    let f = fixture_with(google_args, &[]).await;
    let s = f.state();
    s.allow_gcp_impersonation(GKE_PROVIDER, "team-a", "web", WEB_GSA);
    s.allow_gcp_impersonation(GKE_PROVIDER, "team-a", "batch", BATCH_GSA);
    s.add_gcp_auth(GCP_ACCESS_ID, "akeyless.io", &[WEB_GSA, BATCH_GSA]);
    s.grant_read(GCP_ACCESS_ID, "/cloud/*", &[]);
    let shared = [("akeylessTokenScope", "serviceAccount")];

    let web_1 = SimulatedPod::new("team-a", "web-1", "uid-web-1", "web");
    let resp = f
        .mount(gcp_pod_request(&f, &web_1, WEB_GSA, &shared))
        .await
        .unwrap();
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
    assert_eq!(gcp_subjects(&f, "/auth"), [WEB_GSA]);

    // Another pod of the same service account shares the token (serviceAccount scope) ...
    let web_2 = SimulatedPod::new("team-a", "web-2", "uid-web-2", "web");
    f.mount(gcp_pod_request(&f, &web_2, WEB_GSA, &shared))
        .await
        .unwrap();
    assert_eq!(s.count("/auth"), 1);
    // ... a pod of another service account never does: its own exchange and login.
    let batch = SimulatedPod::new("team-a", "batch-1", "uid-batch-1", "batch");
    let resp = f
        .mount(gcp_pod_request(&f, &batch, BATCH_GSA, &shared))
        .await
        .unwrap();
    assert_eq!(resp.files.len(), 1);
    assert_eq!(gcp_subjects(&f, "/auth"), [WEB_GSA, BATCH_GSA]);
    assert_eq!(
        gcp_subjects(&f, "/get-secret-value"),
        [WEB_GSA, WEB_GSA, BATCH_GSA],
        "each read used the token of its own pod's identity"
    );

    // A pod of a service account that may not impersonate web's Google account: IAM
    // Credentials refuses (403), nothing reaches /auth, no files.
    let intruder = SimulatedPod::new("team-a", "intruder-1", "uid-intruder-1", "intruder");
    let msg = expect_error(
        f.mount(gcp_pod_request(&f, &intruder, WEB_GSA, &[])).await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains(WEB_GSA)
            && msg.contains("PERMISSION_DENIED")
            && msg.contains("roles/iam.workloadIdentityUser"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), 2);

    // A provider whose default token audience the driver didn't deliver: InvalidConfig saying
    // which audience to add, before any call.
    let other_provider = "identitynamespace:other.svc.id.goog:https://container.googleapis.com/v1/projects/other/locations/x/clusters/y";
    let msg = expect_error(
        f.mount(gcp_pod_request(
            &f,
            &web_1,
            WEB_GSA,
            &[("akeylessGCPWorkloadIdentityProvider", other_provider)],
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("\"other.svc.id.goog\"") && msg.contains("tokenRequests"),
        "{msg}"
    );
    // A provider Google STS doesn't know: invalid_target, named with the fix.
    let msg = expect_error(
        f.mount(gcp_pod_request(
            &f,
            &web_1,
            WEB_GSA,
            &[
                ("akeylessGCPWorkloadIdentityProvider", other_provider),
                ("akeylessTokenAudience", GKE_TOKEN_AUDIENCE),
            ],
        ))
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("Google STS")
            && msg.contains("invalid_target")
            && msg.contains(other_provider),
        "{msg}"
    );
    // The pod token of the wrong audience (akeylessTokenAudience picks the `akeyless` one):
    // STS refuses it as invalid_grant.
    let msg = expect_error(
        f.mount(gcp_pod_request(
            &f,
            &web_1,
            WEB_GSA,
            &[("akeylessTokenAudience", AUDIENCE)],
        ))
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("invalid_grant") && msg.contains("akeylessTokenAudience"),
        "{msg}"
    );
    // The ID token's audience must be the one the Akeyless auth method accepts.
    expect_error(
        f.mount(gcp_pod_request(
            &f,
            &web_1,
            WEB_GSA,
            &[("akeylessGCPAudience", "https://elsewhere.example")],
        ))
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert_eq!(
        s.count("/auth"),
        3,
        "only the wrong ID-token audience reached /auth"
    );

    // Half the settings: InvalidConfig naming both parameters, before any call.
    let mut half = gcp_pod_request(&f, &web_1, WEB_GSA, &[]);
    let mut attributes: serde_json::Value = serde_json::from_str(&half.attributes).unwrap();
    attributes
        .as_object_mut()
        .unwrap()
        .remove("akeylessGCPWorkloadIdentityProvider");
    half.attributes = attributes.to_string();
    let msg = expect_error(f.mount(half).await, Code::InvalidArgument, "InvalidConfig");
    assert!(
        msg.contains("akeylessGCPServiceAccount")
            && msg.contains("akeylessGCPWorkloadIdentityProvider"),
        "{msg}"
    );
    // Without the settings the node's identity is still opt-in only.
    let msg = expect_error(
        f.mount(gcp_request(&web_1, None)).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("akeylessGCPServiceAccount") && msg.contains("--gcp-metadata-identity"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), 3);
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

/// At trace level, the UID tokens (init and rotated), the pod's web-identity token, the AWS keys,
/// the signed request, and the pod's GKE token, Google's federated access tokens and ID tokens
/// never reach the provider's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_uid_tokens_or_cloud_credentials() {
    const SECRET: &str = "node-secret-access-key-1111111111111111";
    let f = fixture_with(
        |url| {
            vec![
                "--log-level".into(),
                "trace".into(),
                "--aws-sts-endpoint".into(),
                format!("{url}/aws-sts"),
                "--aws-provider-credentials".into(),
                "--gcp-sts-endpoint".into(),
                url.to_string(),
                "--gcp-iam-credentials-endpoint".into(),
                url.to_string(),
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
    // gcp as the pod: a success, then a refused impersonation.
    s.allow_gcp_impersonation(GKE_PROVIDER, "team-a", "web", WEB_GSA);
    s.add_gcp_auth(GCP_ACCESS_ID, "akeyless.io", &[WEB_GSA]);
    s.grant_read(GCP_ACCESS_ID, "/cloud/*", &[]);
    let gcp = gcp_pod_request(&f, &web, WEB_GSA, &[]);
    f.mount(gcp.clone()).await.unwrap();
    let _ = f
        .mount(gcp_pod_request(&f, &web, BATCH_GSA, &[]))
        .await
        .unwrap_err();
    let gcp_issued = s.gcp_tokens_issued();
    assert_eq!(gcp_issued.len(), 3, "two federated tokens and one ID token");

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
    let gcp_attributes: serde_json::Value = serde_json::from_str(&gcp.attributes).unwrap();
    let gcp_tokens: serde_json::Value = serde_json::from_str(
        gcp_attributes["csi.storage.k8s.io/serviceAccount.tokens"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let gke_token = gcp_tokens[GKE_TOKEN_AUDIENCE]["token"].as_str().unwrap();
    assert!(!logs.contains(gke_token), "the pod's GKE token leaked");
    for issued in &gcp_issued {
        assert!(!logs.contains(issued.as_str()), "a Google token leaked");
    }
    assert!(!logs.contains("ya29."), "a Google access token leaked");
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

/// The provider asks the GCP metadata server for the node's identity token where GCE serves it
/// (the emulator answers only there, with `Metadata-Flavor: Google`, `audience` and
/// `format=full`), and takes the JWT it answers, with the audience asked for.
#[tokio::test]
async fn gcp_metadata_identity_is_asked_where_gce_serves_it() {
    use akeyless_csi_provider::secret::ExposeSecret as _;
    use base64::Engine as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    emulator
        .state()
        .set_gcp_node_service_account("node@p.iam.gserviceaccount.com");
    let http = reqwest::Client::new();
    let cloud_id = akeyless_csi_provider::cloud::gcp::cloud_id(&http, &emulator.url(), "aud-1")
        .await
        .unwrap();
    let jwt = base64::engine::general_purpose::STANDARD
        .decode(cloud_id.expose_secret())
        .unwrap();
    let jwt = String::from_utf8(jwt).unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "aud-1");
}
