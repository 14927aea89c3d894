use std::collections::BTreeMap;

use super::aws::AWS_DEFAULT_REGION;
use super::azure::{AZURE_AUTHORITY_HOSTS, AzureCloud};
use super::*;
use crate::request::{NodePublishSecrets, ServiceAccountToken, ServiceAccountTokens};
use crate::secret::{ExposeSecret, SecretString};

fn params(pairs: &[(&str, &str)]) -> Parameters {
    Parameters::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn secrets(pairs: &[(&str, &str)]) -> NodePublishSecrets {
    NodePublishSecrets::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
            .collect(),
    )
}

fn tokens(auds: &[&str]) -> ServiceAccountTokens {
    ServiceAccountTokens::new(
        auds.iter()
            .map(|a| {
                (
                    a.to_string(),
                    ServiceAccountToken {
                        token: SecretString::from(format!("jwt-for-{a}")),
                        expiration: None,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    )
}

const OBJ: &str = "- secretPath: /a\n";

fn spec(pairs: &[(&str, &str)]) -> Result<SecretProviderSpec, SpecErrors> {
    SecretProviderSpec::from_parameters(&params(pairs), &SpecDefaults::default())
}

#[test]
fn defaults_and_access_type_inference() {
    let s = spec(&[("objects", OBJ)]).unwrap();
    assert_eq!(s.connection.gateways, vec!["https://api.akeyless.io"]);
    assert_eq!(s.auth.access_type, AccessType::AccessKey);
    let s = spec(&[("objects", OBJ), (keys::K8S_AUTH_CONFIG, "conf")]).unwrap();
    assert_eq!(s.auth.access_type, AccessType::Kubernetes);
}

#[test]
fn azure_cloud_picks_the_arm_scope_and_the_authority() {
    let azure = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("objects", OBJ),
            (keys::ACCESS_TYPE, "azure_ad"),
            (keys::AZURE_CLIENT_ID, "c"),
            (keys::AZURE_TENANT_ID, "t"),
        ];
        pairs.extend_from_slice(extra);
        spec(&pairs).map(|s| s.auth.azure.unwrap())
    };
    let public = azure(&[]).unwrap();
    assert_eq!(public.cloud, AzureCloud::Public);
    assert_eq!(public.authority_host, "https://login.microsoftonline.com");
    assert_eq!(
        public.cloud.arm_scope(),
        "https://management.azure.com/.default"
    );
    assert_eq!(
        public.cloud.arm_scope(),
        crate::cloud::azure::ARM_SCOPE,
        "the public cloud keeps today's scope"
    );
    let gov = azure(&[(keys::AZURE_CLOUD, "usgovernment")]).unwrap();
    assert_eq!(gov.cloud, AzureCloud::UsGovernment);
    assert_eq!(gov.authority_host, "https://login.microsoftonline.us");
    assert_eq!(
        gov.cloud.arm_scope(),
        "https://management.usgovcloudapi.net/.default"
    );
    let china = azure(&[(keys::AZURE_CLOUD, "China")]).unwrap();
    assert_eq!(china.cloud, AzureCloud::China);
    assert_eq!(china.authority_host, "https://login.chinacloudapi.cn");
    assert_eq!(
        china.cloud.arm_scope(),
        "https://management.chinacloudapi.cn/.default"
    );
    // Each cloud's authority is one of the always-allowed Azure AD hosts.
    for cloud in [
        AzureCloud::Public,
        AzureCloud::UsGovernment,
        AzureCloud::China,
    ] {
        assert!(AZURE_AUTHORITY_HOSTS.contains(&cloud.authority_host()));
    }
    // The sovereign hosts are accepted as akeylessAzureAuthorityHost without an allow-list
    // entry; an explicit host wins over the cloud's default.
    for host in [
        "https://login.microsoftonline.us",
        "https://login.chinacloudapi.cn/",
    ] {
        let a = azure(&[
            (keys::AZURE_CLOUD, "usgovernment"),
            (keys::AZURE_AUTHORITY_HOST, host),
        ])
        .unwrap();
        assert_eq!(a.authority_host, host.trim_end_matches('/'));
    }
    let e = azure(&[(keys::AZURE_CLOUD, "germany")]).unwrap_err();
    assert_eq!(e.0[0].location, "parameters.akeylessAzureCloud");
    assert!(
        e.to_string().contains("public, usgovernment or china"),
        "{e}"
    );
}

#[test]
fn uid_rotation_parameter() {
    let uid = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("objects", OBJ), (keys::ACCESS_TYPE, "universal_identity")];
        pairs.extend_from_slice(extra);
        spec(&pairs).map(|s| s.auth.uid_rotation)
    };
    assert_eq!(uid(&[]).unwrap(), UidRotation::None);
    assert_eq!(
        uid(&[(keys::UID_ROTATION, "none")]).unwrap(),
        UidRotation::None
    );
    assert_eq!(
        uid(&[(keys::UID_ROTATION, "fork")]).unwrap(),
        UidRotation::Fork
    );
    let e = uid(&[(keys::UID_ROTATION, "always")]).unwrap_err();
    assert_eq!(e.0[0].location, "parameters.akeylessUIDRotation");
    assert!(e.to_string().contains("use none"), "{e}");
}

#[test]
fn gateway_failover_list() {
    let s = spec(&[
        ("objects", OBJ),
        (
            keys::GATEWAY_URL,
            "https://gw1:8000/api/v2/, http://127.0.0.1:8081",
        ),
    ])
    .unwrap();
    assert_eq!(
        s.connection.gateways,
        vec!["https://gw1:8000/api/v2", "http://127.0.0.1:8081"]
    );
    assert!(spec(&[("objects", OBJ), (keys::GATEWAY_URL, "ftp://x")]).is_err());
}

#[test]
fn parameter_problems_name_the_key() {
    let e = spec(&[
        ("objects", OBJ),
        (keys::ACCESS_TYPE, "password"),
        ("akeylessAccessId", "typo"),
        (keys::IGNORE_CACHE, "yes"),
        (keys::CA_CERT, "not pem"),
    ])
    .unwrap_err();
    let locations: Vec<&str> = e.0.iter().map(|p| p.location.as_str()).collect();
    assert!(locations.contains(&"parameters.akeylessAccessType"), "{e}");
    assert!(locations.contains(&"parameters.akeylessAccessId"), "{e}");
    assert!(locations.contains(&"parameters.akeylessIgnoreCache"), "{e}");
    assert!(locations.contains(&"parameters.akeylessCACert"), "{e}");
    assert!(e.to_string().contains("use one of: access_key, k8s"));
    let e = spec(&[(keys::ACCESS_TYPE, "k8s"), ("objects", OBJ)]).unwrap_err();
    assert!(e.to_string().contains(keys::K8S_AUTH_CONFIG));
    let e = spec(&[]).unwrap_err();
    assert!(e.to_string().contains("parameter objects is required"));
}

#[test]
fn access_key_prefers_node_publish_secret() {
    let p = params(&[
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_KEY, "inline"),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let c = Credentials::resolve(
        &s.auth,
        &p,
        &secrets(&[(keys::ACCESS_KEY, "fromref")]),
        &tokens(&[]),
    )
    .unwrap();
    let Credential::AccessKey(k) = c.credential else {
        panic!()
    };
    assert_eq!(k.expose_secret(), "fromref");
    let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
    let Credential::AccessKey(k) = c.credential else {
        panic!()
    };
    assert_eq!(k.expose_secret(), "inline");
}

#[test]
fn missing_credentials_are_invalid_config() {
    let p = params(&[("objects", OBJ)]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
    assert!(e.to_string().contains(keys::ACCESS_ID), "{e}");
    let p = params(&[("objects", OBJ), (keys::ACCESS_ID, "p-1")]);
    let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
    assert!(e.to_string().contains("nodePublishSecretRef"), "{e}");
}

#[test]
fn pod_token_selection() {
    let p = params(&[
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::K8S_AUTH_CONFIG, "c"),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let none = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
    assert!(none.to_string().contains("tokenRequests"), "{none}");
    let many = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a", "b"])).unwrap_err();
    assert!(many.to_string().contains("a, b"), "{many}");
    let one = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a"])).unwrap();
    assert!(matches!(one.credential, Credential::PodToken { ref audience, .. } if audience == "a"));

    let p = params(&[
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::K8S_AUTH_CONFIG, "c"),
        (keys::TOKEN_AUDIENCE, "b"),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let chosen = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a", "b"])).unwrap();
    let Credential::PodToken { audience, token } = chosen.credential else {
        panic!()
    };
    assert_eq!(
        (audience.as_str(), token.expose_secret()),
        ("b", "jwt-for-b")
    );
    let missing = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["a"])).unwrap_err();
    assert!(
        missing.to_string().contains("only for audiences: a"),
        "{missing}"
    );
}

#[test]
fn universal_identity_token_from_secret_or_parameter() {
    let p = params(&[
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_TYPE, "universal_identity"),
        (keys::UID_INIT_TOKEN, "u-inline"),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let from_ref = Credentials::resolve(
        &s.auth,
        &p,
        &secrets(&[(keys::UID_INIT_TOKEN, "u-fromref\n")]),
        &tokens(&[]),
    )
    .unwrap();
    let Credential::UidToken(t) = from_ref.credential else {
        panic!()
    };
    assert_eq!(t.expose_secret(), "u-fromref");
    let inline = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
    assert!(
        matches!(inline.credential, Credential::UidToken(ref t) if t.expose_secret() == "u-inline")
    );
    let p = params(&[
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_TYPE, "universal_identity"),
    ]);
    let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap_err();
    assert_eq!(e.0[0].location, "parameters.akeylessUIDInitToken", "{e}");
    assert!(e.to_string().contains("nodePublishSecretRef"), "{e}");
}

#[test]
fn aws_iam_role_region_and_token_audience() {
    let base = [
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_TYPE, "aws_iam"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        params(&all)
    };
    let p = with(&[(keys::AWS_ROLE_ARN, "arn:aws:iam::123456789012:role/app")]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let aws = s.auth.aws.clone().unwrap();
    assert_eq!(aws.region, AWS_DEFAULT_REGION);
    // The IRSA audience is chosen among several tokens without akeylessTokenAudience.
    let c = Credentials::resolve(
        &s.auth,
        &p,
        &secrets(&[]),
        &tokens(&["akeyless", AWS_TOKEN_AUDIENCE]),
    )
    .unwrap();
    assert!(
        matches!(c.credential, Credential::PodToken { ref audience, .. } if audience == AWS_TOKEN_AUDIENCE)
    );
    let e = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["akeyless"])).unwrap_err();
    assert!(e.to_string().contains("sts.amazonaws.com"), "{e}");
    // Without a role: the provider's identity (allowed only by a provider flag, at login).
    let p = with(&[]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&[])).unwrap();
    assert!(matches!(c.credential, Credential::ProviderIdentity));
    let e = SecretProviderSpec::from_parameters(
        &with(&[
            (keys::AWS_ROLE_ARN, "arn:aws:iam::123:user/bob"),
            (keys::AWS_REGION, "US East"),
        ]),
        &SpecDefaults::default(),
    )
    .unwrap_err();
    let locations: Vec<&str> = e.0.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "parameters.akeylessAWSRoleARN",
            "parameters.akeylessAWSRegion"
        ],
        "{e}"
    );
}

#[test]
fn gcp_workload_identity_settings_and_token_audience() {
    const GSA: &str = "app@proj.iam.gserviceaccount.com";
    const POOL: &str =
        "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c1";
    const GKE: &str = "identitynamespace:proj.svc.id.goog:https://container.googleapis.com/v1/projects/proj/locations/eu/clusters/c1";
    let base = [
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_TYPE, "gcp"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        params(&all)
    };
    let resolve = |p: &Parameters, auds: &[&str]| {
        let s = SecretProviderSpec::from_parameters(p, &SpecDefaults::default()).unwrap();
        Credentials::resolve(&s.auth, p, &secrets(&[]), &tokens(auds))
    };
    let audience_of = |c: Credentials| match c.credential {
        Credential::PodToken { audience, .. } => audience,
        other => panic!("not a pod token: {other:?}"),
    };
    // GKE: the identity namespace is the default token audience, picked among several.
    let p = with(&[
        (keys::GCP_SERVICE_ACCOUNT, GSA),
        (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, GKE),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    assert_eq!(
        s.auth.gcp,
        Some(GcpWorkloadIdentity {
            service_account: GSA.into(),
            provider: GKE.into()
        })
    );
    let c = resolve(&p, &["akeyless", "proj.svc.id.goog"]).unwrap();
    assert_eq!(audience_of(c), "proj.svc.id.goog");
    let e = resolve(&p, &["akeyless"]).unwrap_err();
    assert!(e.to_string().contains("proj.svc.id.goog"), "{e}");
    // A pool provider: https://iam.googleapis.com/… unless akeylessTokenAudience says otherwise.
    let p = with(&[
        (keys::GCP_SERVICE_ACCOUNT, GSA),
        (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
    ]);
    let pool_aud = "https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c1";
    let c = resolve(&p, &["akeyless", pool_aud]).unwrap();
    assert_eq!(audience_of(c), pool_aud);
    let chosen = with(&[
        (keys::GCP_SERVICE_ACCOUNT, GSA),
        (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
        (keys::TOKEN_AUDIENCE, "custom"),
    ]);
    let c = resolve(&chosen, &["custom", pool_aud]).unwrap();
    assert_eq!(audience_of(c), "custom");
    // Neither: the node's identity (allowed only by a provider flag, at login).
    let c = resolve(&with(&[]), &["akeyless"]).unwrap();
    assert!(matches!(c.credential, Credential::ProviderIdentity));
    // One without the other, and malformed values, name the parameter.
    for (extra, location, hint) in [
        (
            vec![(keys::GCP_SERVICE_ACCOUNT, GSA)],
            "parameters.akeylessGCPServiceAccount",
            "set both",
        ),
        (
            vec![(keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL)],
            "parameters.akeylessGCPServiceAccount",
            "akeylessGCPWorkloadIdentityProvider",
        ),
        (
            vec![
                (keys::GCP_SERVICE_ACCOUNT, "app/../x"),
                (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, POOL),
            ],
            "parameters.akeylessGCPServiceAccount",
            "iam.gserviceaccount.com",
        ),
        (
            vec![
                (keys::GCP_SERVICE_ACCOUNT, GSA),
                (keys::GCP_WORKLOAD_IDENTITY_PROVIDER, "projects/123/pools/x"),
            ],
            "parameters.akeylessGCPWorkloadIdentityProvider",
            "//iam.googleapis.com/projects/PROJECT_NUMBER",
        ),
    ] {
        let e = SecretProviderSpec::from_parameters(&with(&extra), &SpecDefaults::default())
            .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].location, location, "{e}");
        assert!(e.0[0].message.contains(hint), "{e}");
    }
}

#[test]
fn azure_ad_as_the_pod_or_as_the_node() {
    const OID: &str = "5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13";
    let base = [
        ("objects", OBJ),
        (keys::ACCESS_ID, "p-1"),
        (keys::ACCESS_TYPE, "azure_ad"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        params(&all)
    };
    // The existing provider's AKS shape: the node's identity (a provider flag decides).
    let p = with(&[(keys::AZURE_OBJECT_ID, OID)]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    assert_eq!(
        (s.auth.azure.as_ref(), s.auth.azure_object_id.as_deref()),
        (None, Some(OID))
    );
    assert_eq!(s.auth.pod_token_audience(), None);
    let c = Credentials::resolve(&s.auth, &p, &secrets(&[]), &tokens(&["akeyless"])).unwrap();
    assert!(matches!(c.credential, Credential::ProviderIdentity));
    // Both per-pod parameters: the pod's token.
    let p = with(&[
        (keys::AZURE_CLIENT_ID, "c"),
        (keys::AZURE_TENANT_ID, "t"),
        (keys::AZURE_OBJECT_ID, OID),
    ]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let c = Credentials::resolve(
        &s.auth,
        &p,
        &secrets(&[]),
        &tokens(&["akeyless", AZURE_TOKEN_AUDIENCE]),
    )
    .unwrap();
    assert!(
        matches!(c.credential, Credential::PodToken { ref audience, .. } if audience == AZURE_TOKEN_AUDIENCE)
    );
    // One of them, or an object ID that is not a GUID, names the parameter.
    for (extra, location, hint) in [
        (
            vec![(keys::AZURE_CLIENT_ID, "c")],
            "parameters.akeylessAzureClientID",
            "--azure-provider-identity",
        ),
        (
            vec![(keys::AZURE_TENANT_ID, "t")],
            "parameters.akeylessAzureClientID",
            MIGRATION_GUIDE,
        ),
        (
            vec![(keys::AZURE_OBJECT_ID, "x&resource=evil")],
            "parameters.akeylessAzureObjectID",
            "GUID",
        ),
    ] {
        let e = SecretProviderSpec::from_parameters(&with(&extra), &SpecDefaults::default())
            .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].location, location, "{e}");
        assert!(e.0[0].message.contains(hint), "{e}");
    }
    // Other access types ignore the object ID, as before.
    assert!(spec(&[("objects", OBJ), (keys::AZURE_OBJECT_ID, "whatever")]).is_ok());
}

#[test]
fn provider_identity_messages_name_both_ways_forward() {
    for (flag, per_pod) in [
        (ProviderIdentityFlag::Aws, &[keys::AWS_ROLE_ARN][..]),
        (
            ProviderIdentityFlag::Gcp,
            &[
                keys::GCP_SERVICE_ACCOUNT,
                keys::GCP_WORKLOAD_IDENTITY_PROVIDER,
            ][..],
        ),
        (
            ProviderIdentityFlag::Azure,
            &[keys::AZURE_CLIENT_ID, keys::AZURE_TENANT_ID][..],
        ),
    ] {
        for text in [flag.warning(), flag.refusal()] {
            for needle in per_pod.iter().chain(&[flag.flag(), MIGRATION_GUIDE]) {
                assert!(text.contains(needle), "{needle} missing: {text}");
            }
        }
        // The API server cuts warnings after 256 characters (location included).
        let line = format!("spec.parameters.{}: {}", keys::ACCESS_TYPE, flag.warning());
        assert!(line.chars().count() <= 256, "{} chars: {line}", line.len());
        assert!(flag.refusal().contains(flag.chart_value()));
    }
    assert!(is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b13"));
    assert!(!is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b1"));
    assert!(!is_azure_guid("5f0c7a52-8d3e-4b6a-9c11-2e7d4f9a0b1g"));
}

#[test]
fn credentials_debug_redacts() {
    let p = params(&[("objects", OBJ), (keys::ACCESS_ID, "p-1")]);
    let s = SecretProviderSpec::from_parameters(&p, &SpecDefaults::default()).unwrap();
    let c = Credentials::resolve(
        &s.auth,
        &p,
        &secrets(&[(keys::ACCESS_KEY, "topsecret")]),
        &tokens(&[]),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("topsecret"));
}
