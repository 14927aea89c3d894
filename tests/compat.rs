//! The compatibility corpus (`tests/compat/*.yaml`): SecretProviderClasses in the shapes of the
//! existing Akeyless provider's documented examples. Each is checked with `validate` (the
//! binary and the library), then mounted over the provider's real socket against the emulator
//! (which also plays Azure IMDS, the GCP metadata server and AWS STS), once by a provider
//! without any provider-identity flag and once by one with all three. The outcomes asserted
//! here are the ones the README's "Migrating from the Akeyless Go provider" table documents.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_csi_provider::proto;
use akeyless_csi_provider::spec::{MIGRATION_GUIDE, ProviderIdentityFlag};
use akeyless_emulator::Emulator;
use common::*;
use tonic::Code;

/// The gateway the documented examples name; the test points it at the emulator.
const DOCS_GATEWAY: &str = "https://api.akeyless.io";

const KEY_ID: &str = "p-compatkey0001";
const KEY: &str = "compat-access-key-0001";
const K8S_ID: &str = "p-compatk8s0001";
const AWS_ID: &str = "p-compataws0001";
const AZURE_ID: &str = "p-compatazr0001";
const GCP_ID: &str = "p-compatgcp0001";

const NODE_AWS_KEY_ID: &str = "AKIACOMPATNODE000001";
const NODE_AWS_SECRET: &str = "compat-node-secret-access-key-000000000000";
const NODE_AWS_ARN: &str = "arn:aws:iam::123456789012:role/aks-node";
const NODE_GSA: &str = "node@compat-project.iam.gserviceaccount.com";
const TENANT: &str = "7a3c1e4f-0000-4000-8000-00000000aaaa";
/// The user-assigned identity `azure-ad.yaml` names with `akeylessAzureObjectID`.
const NODE_UAMI_OID: &str = "5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13";
const NODE_UAMI_CLIENT: &str = "0c9d8e7f-1111-4222-8333-444455556666";
/// The node's system-assigned identity: not bound to the auth method, so only a token of the
/// identity the SPC selects can log in.
const NODE_SYSTEM_OID: &str = "11111111-2222-4333-8444-555555555555";

/// What a fixture does on a provider without / with the provider-identity flags.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Mounted,
    /// `InvalidConfig` naming the flag, both ways forward and the README section.
    NeedsFlag(ProviderIdentityFlag),
}

struct Case {
    file: &'static str,
    without_flags: Outcome,
    with_flags: Outcome,
    /// (file, contents) expected, sorted by path; `None`: checked separately.
    files: Option<Vec<(&'static str, &'static str)>>,
    /// The identity `/auth` logged in as, when flags are on.
    subject_with_flags: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    use Outcome::*;
    vec![
        Case {
            file: "api-key.yaml",
            without_flags: Mounted,
            with_flags: Mounted,
            files: Some(vec![("secret", "api-key-value")]),
            subject_with_flags: None,
        },
        Case {
            file: "k8s.yaml",
            without_flags: Mounted,
            with_flags: Mounted,
            files: Some(vec![("secret", "k8s-value")]),
            subject_with_flags: None,
        },
        Case {
            file: "aws-iam.yaml",
            without_flags: NeedsFlag(ProviderIdentityFlag::Aws),
            with_flags: Mounted,
            files: Some(vec![("secret", "aws-value")]),
            subject_with_flags: Some(NODE_AWS_ARN),
        },
        Case {
            file: "azure-ad.yaml",
            without_flags: NeedsFlag(ProviderIdentityFlag::Azure),
            with_flags: Mounted,
            files: Some(vec![("secret", "azure-value")]),
            subject_with_flags: Some(NODE_UAMI_OID),
        },
        Case {
            file: "gcp.yaml",
            without_flags: NeedsFlag(ProviderIdentityFlag::Gcp),
            with_flags: Mounted,
            files: Some(vec![("secret", "gcp-value")]),
            subject_with_flags: Some(NODE_GSA),
        },
        Case {
            file: "objects.yaml",
            without_flags: Mounted,
            with_flags: Mounted,
            files: None,
            subject_with_flags: None,
        },
    ]
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

fn read(file: &str) -> String {
    std::fs::read_to_string(corpus_dir().join(file)).expect("fixture")
}

/// The fixture's `spec.parameters`, with the documented gateway pointed at the emulator.
fn parameters(file: &str, emulator_url: &str) -> BTreeMap<String, String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(file)).expect("YAML");
    let params: BTreeMap<String, String> =
        serde_yaml_ng::from_value(doc["spec"]["parameters"].clone()).expect("string parameters");
    assert_eq!(
        params.get("akeylessGatewayURL").map(String::as_str),
        Some(DOCS_GATEWAY),
        "{file}: the corpus names the documented gateway"
    );
    params
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "akeylessGatewayURL" {
                emulator_url.to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn seed(emulator: &Emulator) {
    let s = emulator.state();
    s.add_access_key_auth(KEY_ID, KEY);
    s.add_k8s_auth(K8S_ID, "compat-k8s-conf", &[], &[]);
    s.add_aws_user(NODE_AWS_KEY_ID, NODE_AWS_SECRET, NODE_AWS_ARN);
    s.add_aws_iam_auth(AWS_ID, &[NODE_AWS_ARN]);
    s.set_gcp_node_service_account(NODE_GSA);
    s.add_gcp_auth(GCP_ID, "akeyless.io", &[NODE_GSA]);
    s.add_azure_node_identity(TENANT, NODE_SYSTEM_OID, None);
    s.add_azure_node_identity(TENANT, NODE_UAMI_OID, Some(NODE_UAMI_CLIENT));
    s.add_azure_ad_auth(AZURE_ID, &[NODE_UAMI_OID]);
    for id in [KEY_ID, K8S_ID, AWS_ID, AZURE_ID, GCP_ID] {
        s.grant_read(id, "/compat/*", &[]);
    }
    s.put_static_secret("/compat/api-key/secret", "api-key-value");
    s.put_static_secret("/compat/k8s/secret", "k8s-value");
    s.put_static_secret("/compat/aws/secret", "aws-value");
    s.put_static_secret("/compat/azure/secret", "azure-value");
    s.put_static_secret("/compat/gcp/secret", "gcp-value");
    s.put_static_secret("/compat/objects/static", "static-value");
    s.put_static_secret("/compat/objects/single-quoted", "quoted-value");
    s.put_static_secret("/compat/objects/plain", "plain-value");
    s.put_dynamic_secret(
        "/compat/objects/dynamic",
        serde_json::json!({"username": "compat", "password": "x"}),
        Duration::from_secs(900),
    );
}

/// A mount of `file` by `pod` as the driver sends it: every SPC parameter, the pod's token for
/// the CSIDriver's audience, and (for `objects.yaml`, which keeps the key out of the SPC as
/// the README recommends) the nodePublishSecretRef.
fn request(emulator: &Emulator, file: &str, pod: &SimulatedPod) -> proto::MountRequest {
    let params = parameters(file, &emulator.url());
    let token = emulator.state().issue_service_account_token(
        &pod.namespace,
        &pod.service_account,
        &pod.name,
        &pod.uid,
        AUDIENCE,
        Duration::from_secs(3600),
    );
    let secret = (!params.contains_key("akeylessAccessKey"))
        .then(|| BTreeMap::from([("akeylessAccessKey".to_string(), KEY.to_string())]));
    driver::mount_request(file, &params, pod, &[(AUDIENCE, &token)], secret.as_ref())
}

async fn mount(
    provider: &ProviderProcess,
    request: proto::MountRequest,
) -> Result<proto::MountResponse, tonic::Status> {
    let mut client = provider.client().await;
    client
        .mount(tonic::Request::new(request))
        .await
        .map(tonic::Response::into_inner)
}

/// The refusal names the flag, both ways forward (the per-pod parameters, and the flag) and
/// the README section; it never quotes a credential.
fn assert_names_both_ways(msg: &str, flag: ProviderIdentityFlag) {
    let per_pod: &[&str] = match flag {
        ProviderIdentityFlag::Aws => &["akeylessAWSRoleARN"],
        ProviderIdentityFlag::Gcp => &[
            "akeylessGCPServiceAccount",
            "akeylessGCPWorkloadIdentityProvider",
        ],
        ProviderIdentityFlag::Azure => &["akeylessAzureClientID", "akeylessAzureTenantID"],
    };
    for needle in per_pod
        .iter()
        .copied()
        .chain([flag.flag(), flag.chart_value(), MIGRATION_GUIDE])
        .chain(["authenticate as the pod", "every pod on the node"])
        .chain(flag.per_pod_parameters().iter().copied())
    {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    assert!(
        !msg.contains(KEY) && !msg.contains(NODE_AWS_SECRET),
        "{msg}"
    );
}

/// `validate` accepts every fixture (the flags are the operator's, which an offline check
/// cannot see) and warns about each node-identity case with both ways forward.
#[test]
fn validate_accepts_the_corpus_and_names_the_way_forward() {
    for case in cases() {
        let checked = akeyless_csi_provider::validate::check_text(&read(case.file));
        assert_eq!(checked.classes, 1, "{}", case.file);
        assert!(
            checked.problems.is_empty(),
            "{}: {:?}",
            case.file,
            checked.problems
        );
        let flag_warnings: Vec<_> = checked
            .warnings
            .iter()
            .filter(|w| w.message.contains(MIGRATION_GUIDE))
            .collect();
        match case.without_flags {
            Outcome::Mounted => assert!(flag_warnings.is_empty(), "{}", case.file),
            Outcome::NeedsFlag(flag) => {
                assert_eq!(flag_warnings.len(), 1, "{}: {:?}", case.file, checked);
                let w = flag_warnings[0];
                assert_eq!(w.location, "spec.parameters.akeylessAccessType");
                assert!(
                    w.message.contains(flag.flag())
                        && w.message.contains("authenticate as the pod")
                        && w.message.chars().count() + w.location.len() + 2 <= 256,
                    "{}: {}",
                    case.file,
                    w.message
                );
            }
        }
    }

    // The binary: exit 0, one warning line per node-identity fixture.
    let files: Vec<PathBuf> = cases().iter().map(|c| corpus_dir().join(c.file)).collect();
    let out = std::process::Command::new(BIN)
        .arg("validate")
        .args(&files)
        .output()
        .expect("validate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for flag in [
        ProviderIdentityFlag::Aws,
        ProviderIdentityFlag::Azure,
        ProviderIdentityFlag::Gcp,
    ] {
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("warning:") && l.contains(flag.flag()))
            .collect();
        assert_eq!(lines.len(), 1, "{flag:?}: {stdout}");
        assert!(lines[0].contains(MIGRATION_GUIDE), "{}", lines[0]);
    }
    assert_eq!(
        stdout.matches(": ok (1 akeyless").count(),
        files.len(),
        "{stdout}"
    );
}

/// Every fixture mounted by a provider without and with the provider-identity flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_mounts_as_documented_with_and_without_the_flags() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    seed(&emulator);
    let url = emulator.url();
    let plain = ProviderProcess::start(&url, &[]).await;
    let flagged = ProviderProcess::start_with_env(
        &url,
        &[
            "--aws-provider-credentials",
            "--gcp-metadata-identity",
            "--gcp-metadata-url",
            &url,
            "--azure-provider-identity",
            "--azure-imds-url",
            &url,
        ],
        &[
            ("AWS_ACCESS_KEY_ID", NODE_AWS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", NODE_AWS_SECRET),
        ],
    )
    .await;
    let s = emulator.state();

    for case in cases() {
        for (label, provider, outcome) in [
            ("without flags", &plain, case.without_flags),
            ("with flags", &flagged, case.with_flags),
        ] {
            let pod = SimulatedPod::new(
                "team-a",
                &format!("{}-{}", case.file.trim_end_matches(".yaml"), label.len()),
                &format!("uid-{}-{}", case.file, label.len()),
                "app",
            );
            let auths_before = s.count("/auth");
            let result = mount(provider, request(&emulator, case.file, &pod)).await;
            match outcome {
                Outcome::NeedsFlag(flag) => {
                    let msg = expect_error(result, Code::InvalidArgument, "InvalidConfig");
                    assert_names_both_ways(&msg, flag);
                    assert_eq!(
                        s.count("/auth"),
                        auths_before,
                        "{} {label}: refused before any login",
                        case.file
                    );
                }
                Outcome::Mounted => {
                    let resp =
                        result.unwrap_or_else(|e| panic!("{} {label}: {}", case.file, e.message()));
                    if let Some(expected) = &case.files {
                        let got: Vec<(String, String)> =
                            files(&resp).into_iter().map(|(p, _, c)| (p, c)).collect();
                        let expected: Vec<(String, String)> = expected
                            .iter()
                            .map(|(p, c)| (p.to_string(), c.to_string()))
                            .collect();
                        assert_eq!(got, expected, "{} {label}", case.file);
                    } else {
                        check_objects(&resp, &emulator);
                    }
                    if label == "with flags"
                        && let Some(subject) = case.subject_with_flags
                    {
                        let who = s
                            .requests()
                            .into_iter()
                            .rev()
                            .find(|r| r.path == "/auth")
                            .and_then(|r| r.identity)
                            .expect("a login");
                        assert_eq!(who.subject.as_deref(), Some(subject), "{}", case.file);
                    }
                }
            }
        }
    }
    // The flagged provider logs each opt-in at start; neither logs a credential.
    let logs = flagged.logs();
    for flag in [
        "--aws-provider-credentials",
        "--gcp-metadata-identity",
        "--azure-provider-identity",
    ] {
        assert!(logs.contains(flag), "{flag} is not logged at start");
    }
    assert!(!logs.contains(NODE_AWS_SECRET) && !plain.logs().contains(KEY));
}

/// `objects.yaml`: quoted names kept, `secretType` ignored, `secretArgs` ignored on a static
/// item and passed as `args` to the dynamic one, the default file name is the last segment.
fn check_objects(resp: &proto::MountResponse, emulator: &Emulator) {
    let got = files(resp);
    let names: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["args-on-static", "dynamic-secret", "plain", "static-secret"]
    );
    assert_eq!(got[0].2, "quoted-value");
    assert_eq!(got[2].2, "plain-value");
    assert_eq!(got[3].2, "static-value");
    let dynamic: serde_json::Value = serde_json::from_str(&got[1].2).expect("dynamic JSON");
    assert_eq!(dynamic["username"], "compat");
    let args = emulator
        .state()
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/get-dynamic-secret-value")
        .expect("a dynamic read")
        .args;
    assert_eq!(args, ["role=ro", "ttl=15m"]);
}

/// With the Azure flag on, the node's token comes from IMDS for the operator's resource, for
/// the identity the SPC selects, and goes only to `--akeyless-url`: the SPC's gateway is
/// ignored. A selected identity the node does not have is refused by IMDS (AuthFailed, naming
/// the object ID), before any login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_node_identity_goes_only_to_the_operators_gateway() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    seed(&emulator);
    let url = emulator.url();
    let provider = ProviderProcess::start(
        &url,
        &["--azure-provider-identity", "--azure-imds-url", &url],
    )
    .await;
    let s = emulator.state();
    let web = pod("team-a", "web");

    // The tenant names another gateway: the node's token still goes only to --akeyless-url.
    let mut req = request(&emulator, "azure-ad.yaml", &web);
    req.attributes = req
        .attributes
        .replace(&format!("\"{url}\""), "\"http://127.0.0.1:9\"");
    assert!(req.attributes.contains("http://127.0.0.1:9"));
    mount(&provider, req)
        .await
        .expect("bound to --akeyless-url");

    // Without akeylessAzureObjectID IMDS answers as the system-assigned identity, which the
    // auth method does not bind: the login is refused.
    let mut p = parameters("azure-ad.yaml", &url);
    p.remove("akeylessAzureObjectID");
    let other = pod("team-a", "other");
    let msg = expect_error(
        mount(
            &provider,
            driver::mount_request("spc", &p, &other, &[], None),
        )
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(msg.contains("azure_ad"), "{msg}");

    // An identity the node does not have: IMDS refuses, the message names it, no login.
    let auths = s.count("/auth");
    p.insert(
        "akeylessAzureObjectID".into(),
        "99999999-9999-4999-8999-999999999999".into(),
    );
    let third = pod("team-a", "third");
    let msg = expect_error(
        mount(
            &provider,
            driver::mount_request("spc", &p, &third, &[], None),
        )
        .await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("99999999-9999-4999-8999-999999999999") && msg.contains("IMDS"),
        "{msg}"
    );
    assert_eq!(s.count("/auth"), auths);

    // A malformed object ID is bad input, refused before any call.
    p.insert("akeylessAzureObjectID".into(), "x&resource=evil".into());
    let msg = expect_error(
        mount(
            &provider,
            driver::mount_request("spc", &p, &third, &[], None),
        )
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("akeylessAzureObjectID"), "{msg}");
    assert_eq!(s.count("/auth"), auths);
}
