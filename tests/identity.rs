//! Identity, token caching and the hot path: tokens are cached per identity and never cross
//! identities, logins are single-flight, a refused cached token triggers one re-login, retries
//! stay inside the deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use akeyless_csi_provider::driver::{self, SimulatedPod};
use common::*;
use tonic::Code;

const TYPED: &str =
    "- secretPath: /apps/a\n  type: static\n- secretPath: /apps/b\n  type: static\n";

async fn access_key_fixture(args: &[&str]) -> Fixture {
    let f = Fixture::with_args(args).await;
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f.state().put_static_secret("/apps/a", "a");
    f.state().put_static_secret("/apps/b", "b");
    f
}

fn k8s_request(
    f: &Fixture,
    pod: &SimulatedPod,
    objects: &str,
    scope: &str,
) -> akeyless_csi_provider::proto::MountRequest {
    let p = params(&[
        ("akeylessAccessID", K8S_ACCESS_ID),
        ("akeylessK8sAuthConfigName", K8S_CONFIG),
        ("akeylessTokenScope", scope),
        ("objects", objects),
    ]);
    driver::mount_request("spc", &p, pod, &[(AUDIENCE, &f.pod_token(pod))], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_mounts_reuse_the_token_and_read_once() {
    let f = access_key_fixture(&[]).await;
    f.mount(access_key_request(TYPED)).await.unwrap();
    assert_eq!(
        (
            f.state().count("/auth"),
            f.state().count("/get-secret-value")
        ),
        (1, 1),
        "cold: 1 auth + 1 read"
    );
    for _ in 0..5 {
        f.mount(access_key_request(TYPED)).await.unwrap();
    }
    assert_eq!(
        (
            f.state().count("/auth"),
            f.state().count("/get-secret-value")
        ),
        (1, 6),
        "warm: 0 auth + 1 read per mount"
    );
    // Another pod of the same SPC has its own token (default scope: pod).
    f.mount(access_key_request_as(TYPED, &pod("default", "other")))
        .await
        .unwrap();
    assert_eq!(f.state().count("/auth"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cached_token_triggers_exactly_one_relogin() {
    let f = access_key_fixture(&[]).await;
    f.mount(access_key_request(TYPED)).await.unwrap();
    f.state().revoke_all_tokens();
    let resp = f.mount(access_key_request(TYPED)).await.unwrap();
    assert_eq!(resp.files.len(), 2);
    assert_eq!(f.state().count("/auth"), 2, "one re-login");
    assert_eq!(
        f.state().count("/get-secret-value"),
        3,
        "the refused read and its retry"
    );
    // A fresh token that is refused is final: no second re-login.
    f.state().fail_next("/get-secret-value", 401, 10);
    let fresh = pod("default", "fresh");
    expect_error(
        f.mount(access_key_request_as(TYPED, &fresh)).await,
        Code::PermissionDenied,
        "PermissionDenied",
    );
    assert_eq!(f.state().count("/auth"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mounts_of_one_identity_log_in_once() {
    let f = Arc::new(access_key_fixture(&[]).await);
    f.state().set_delay("/auth", Duration::from_millis(200));
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            f.mount(access_key_request(TYPED)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(f.state().count("/auth"), 1, "single-flight login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_scope_with_value_cache_reads_once_per_window() {
    let f = Arc::new(Fixture::with_args(&["--value-cache-ttl", "60s"]).await);
    f.state().add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &[], &[]);
    f.state().grant_read(K8S_ACCESS_ID, "/apps/*", &[]);
    f.state().put_static_secret("/apps/a", "a");
    f.state().put_static_secret("/apps/b", "b");
    for ns in ["team-a", "team-b"] {
        for i in 0..10 {
            let pd = SimulatedPod::new(ns, &format!("web-{i}"), &format!("{ns}-uid-{i}"), "web");
            let resp = f
                .mount(k8s_request(&f, &pd, TYPED, "serviceAccount"))
                .await
                .unwrap();
            assert_eq!(resp.files.len(), 2);
        }
    }
    assert_eq!(
        f.state().count("/auth"),
        2,
        "one login per (namespace, service account)"
    );
    assert_eq!(
        f.state().count("/get-secret-value"),
        2,
        "one read per (service account, SPC) per cache window"
    );
    let logins: Vec<_> = f
        .state()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/auth")
        .filter_map(|r| r.identity.and_then(|i| i.namespace))
        .collect();
    assert_eq!(logins.len(), 2);
    assert_ne!(logins[0], logins[1], "never shared across namespaces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stay_inside_the_deadline() {
    let f = access_key_fixture(&[]).await;
    f.mount(access_key_request(TYPED)).await.unwrap();
    let reads = f.state().count("/get-secret-value");
    f.state().fail_next("/get-secret-value", 503, 1000);
    f.state()
        .set_delay("/get-secret-value", Duration::from_millis(300));
    let started = Instant::now();
    let result = f
        .mount_with_timeout(access_key_request(TYPED), Some(Duration::from_millis(1500)))
        .await;
    let elapsed = started.elapsed();
    let status = result.expect_err("a failing backend fails the mount");
    assert!(
        status.message().starts_with("[BackendUnavailable]")
            || status.message().starts_with("[Timeout]"),
        "{}",
        status.message()
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "answered within the caller's deadline: {elapsed:?}"
    );
    let attempts = f.state().count("/get-secret-value") - reads;
    assert!((2..=4).contains(&attempts), "bounded retries: {attempts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let f = access_key_fixture(&[]).await;
    f.mount(access_key_request(TYPED)).await.unwrap();
    f.state()
        .fail_next_with_retry_after("/get-secret-value", 429, 1, 1);
    let started = Instant::now();
    f.mount(access_key_request(TYPED)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

/// 2,000 interleaved concurrent mounts from two namespaces (several service accounts and
/// pods each, both token scopes), each namespace's items readable only by its own identities.
/// Besides the namespace's items, a `pod`-scoped mount reads its pod's own item and a
/// `serviceAccount`-scoped mount its service account's. The emulator records which identity
/// every request acted as: zero reads of another namespace's, pod's or service account's item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identity_ever_receives_another_identitys_token() {
    let f = Arc::new(Fixture::new().await);
    f.state().add_k8s_auth(K8S_ACCESS_ID, K8S_CONFIG, &[], &[]);
    let namespaces = ["team-a", "team-b"];
    for ns in namespaces {
        f.state()
            .grant_read(K8S_ACCESS_ID, &format!("/{ns}/*"), &[ns]);
        f.state()
            .put_static_secret(&format!("/{ns}/db"), &format!("{ns}-db"));
        f.state()
            .put_static_secret(&format!("/{ns}/api"), &format!("{ns}-api"));
    }
    let pods: Vec<SimulatedPod> = (0..40)
        .map(|i| {
            let ns = namespaces[i % 2];
            SimulatedPod::new(
                ns,
                &format!("p{i}"),
                &format!("uid-{i}"),
                &format!("sa{}", i % 3),
            )
        })
        .collect();
    for pd in &pods {
        let (ns, uid, sa) = (&pd.namespace, &pd.uid, &pd.service_account);
        f.state()
            .put_static_secret(&format!("/{ns}/pods/{uid}"), &format!("pod-{uid}"));
        f.state()
            .put_static_secret(&format!("/{ns}/sas/{sa}"), &format!("sa-{ns}-{sa}"));
    }
    let requests: Vec<_> = (0..2000)
        .map(|i| {
            let pd = pods[(i * 7) % pods.len()].clone();
            let scope = if i % 3 == 0 { "serviceAccount" } else { "pod" };
            let own = match scope {
                "pod" => format!("/{}/pods/{}", pd.namespace, pd.uid),
                _ => format!("/{}/sas/{}", pd.namespace, pd.service_account),
            };
            let objects = format!(
                "- secretPath: /{0}/db\n  type: static\n- secretPath: /{0}/api\n  type: static\n\
                 - secretPath: {own}\n  type: static\n  fileName: own\n",
                pd.namespace
            );
            let request = k8s_request(&f, &pd, &objects, scope);
            (pd, scope, request)
        })
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for (pd, scope, request) in requests {
        let (f, semaphore) = (f.clone(), semaphore.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            (pd, scope, f.mount(request).await)
        }));
    }
    let mut mounted = 0;
    for t in tasks {
        let (pd, scope, result) = t.await.unwrap();
        let ns = &pd.namespace;
        let resp = result.unwrap_or_else(|e| panic!("mount in {ns}: {}", e.message()));
        let own = match scope {
            "pod" => format!("pod-{}", pd.uid),
            _ => format!("sa-{ns}-{}", pd.service_account),
        };
        assert_eq!(
            files(&resp),
            vec![
                ("api".into(), 0o644, format!("{ns}-api")),
                ("db".into(), 0o644, format!("{ns}-db")),
                ("own".into(), 0o644, own),
            ]
        );
        mounted += 1;
    }
    assert_eq!(mounted, 2000);
    let mut violations = 0;
    let mut reads = 0;
    let mut identities = std::collections::BTreeSet::new();
    for r in f.state().requests() {
        let Some(who) = r.identity.clone() else {
            continue;
        };
        identities.insert((
            who.namespace.clone(),
            who.service_account.clone(),
            who.pod_uid.clone(),
        ));
        if r.path == "/get-secret-value" {
            reads += 1;
            let ns = who.namespace.clone().unwrap_or_default();
            let pod_uid = who.pod_uid.clone().unwrap_or_default();
            let sa = who.service_account.clone().unwrap_or_default();
            violations += r
                .items
                .iter()
                .filter(|item| {
                    let foreign_ns = !item.starts_with(&format!("/{ns}/"));
                    // A pod-scoped token (one pod's) reading another pod's item, or any token
                    // reading another service account's item.
                    let foreign_pod =
                        item.contains("/pods/") && !item.ends_with(&format!("/pods/{pod_uid}"));
                    let foreign_sa =
                        item.contains("/sas/") && !item.ends_with(&format!("/sas/{sa}"));
                    foreign_ns || foreign_pod || foreign_sa
                })
                .count();
            assert_eq!(r.status, 200, "{r:?}");
        }
    }
    let logins = f.state().count("/auth");
    eprintln!(
        "isolation: {mounted} mounts, {} identities, {logins} logins, {reads} reads, {violations} violations",
        identities.len()
    );
    assert_eq!(violations, 0);
    assert!(logins < 100, "tokens are cached: {logins} logins");
}

/// Two Akeyless accounts behind one gateway (as on the shared api.akeyless.io) each hold an
/// item named `/shared/config`, one static, one rotated. Untyped objects: every mount of each
/// tenant gets its own account's item, whatever the other tenant's mounts taught the caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_never_share_an_item_type() {
    let f = Arc::new(Fixture::new().await);
    let s = f.state();
    for (access_id, key, account) in [
        ("p-tenanta00001", "key-a", "acc-a"),
        ("p-tenantb00001", "key-b", "acc-b"),
    ] {
        s.add_access_key_auth(access_id, key);
        s.set_account(access_id, account);
        s.grant_read(access_id, "/*", &[]);
    }
    s.put_static_secret_in("acc-a", "/shared/config", "static-of-a");
    s.put_rotated_secret_in(
        "acc-b",
        "/shared/config",
        serde_json::json!({"password": "rotated-of-b"}),
    );
    let request = |access_id: &str, key: &str, i: usize| {
        let p = params(&[
            ("akeylessAccessID", access_id),
            (
                "objects",
                "- secretPath: /shared/config\n  fileName: config\n",
            ),
        ]);
        let secret = params(&[("akeylessAccessKey", key)]);
        driver::mount_request("spc", &p, &pod("ns", &format!("p{i}")), &[], Some(&secret))
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let f = f.clone();
        let (access_id, key, want) = if i % 2 == 0 {
            ("p-tenanta00001", "key-a", "static-of-a")
        } else {
            ("p-tenantb00001", "key-b", r#"{"password":"rotated-of-b"}"#)
        };
        let req = request(access_id, key, i % 10);
        tasks.push(tokio::spawn(async move {
            let resp = f
                .mount(req)
                .await
                .unwrap_or_else(|e| panic!("{access_id}: {}", e.message()));
            assert_eq!(files(&resp)[0].2, want, "{access_id}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let describes = f.state().count("/describe-item");
    eprintln!("two accounts: 200 concurrent mounts, {describes} describe-item calls");
    // Once learned, each account's type is remembered: later mounts describe nothing.
    for i in 0..10 {
        let (access_id, key) = if i % 2 == 0 {
            ("p-tenanta00001", "key-a")
        } else {
            ("p-tenantb00001", "key-b")
        };
        f.mount(request(access_id, key, i)).await.unwrap();
    }
    assert_eq!(f.state().count("/describe-item"), describes);
}

/// An untyped object whose item was deleted and re-created as another type mounts the new
/// type: the remembered type is dropped as soon as the backend disagrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_type_heals_when_the_item_changes_type() {
    let f = access_key_fixture(&[]).await;
    let untyped = "- secretPath: /apps/changing\n  fileName: v\n";
    f.state()
        .put_static_secret("/apps/changing", "static-value");
    let resp = f.mount(access_key_request(untyped)).await.unwrap();
    assert_eq!(files(&resp)[0].2, "static-value");
    assert_eq!(f.state().count("/describe-item"), 1);
    f.state().delete_item("/apps/changing");
    f.state()
        .put_rotated_secret("/apps/changing", serde_json::json!({"password": "rotated"}));
    let resp = f
        .mount(access_key_request(untyped))
        .await
        .expect("the next mount re-learns the type");
    assert_eq!(files(&resp)[0].2, r#"{"password":"rotated"}"#);
    assert_eq!(f.state().count("/describe-item"), 2, "described once more");
    f.mount(access_key_request(untyped)).await.unwrap();
    assert_eq!(f.state().count("/describe-item"), 2, "and remembered again");
}

/// AKS workload identity: the pod's own token (audience api://AzureADTokenExchange) is exchanged
/// at Azure AD for an ARM token of the app it federates with; Akeyless's azure_ad auth takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ad_workload_identity_as_the_pod() {
    let f = Fixture::new().await;
    let s = f.state();
    s.add_azure_app("tenant-1", "client-1", "oid-app-1", "team-a", "web");
    s.add_azure_ad_auth("p-azureauth0001", &["oid-app-1"]);
    s.grant_read("p-azureauth0001", "/azure/*", &[]);
    s.put_static_secret("/azure/db", "from-azure");
    let authority = format!("{}/azure-ad", f.emulator.url());
    let request = |pd: &SimulatedPod, client: &str| {
        let p = params(&[
            ("akeylessAccessType", "azure_ad"),
            ("akeylessAccessID", "p-azureauth0001"),
            ("akeylessAzureClientID", client),
            ("akeylessAzureTenantID", "tenant-1"),
            ("akeylessAzureAuthorityHost", &authority),
            ("objects", "- secretPath: /azure/db\n  type: static\n"),
        ]);
        let exchange = s.issue_service_account_token(
            &pd.namespace,
            &pd.service_account,
            &pd.name,
            &pd.uid,
            "api://AzureADTokenExchange",
            Duration::from_secs(3600),
        );
        // Several audiences delivered: azure_ad picks the exchange audience by itself.
        driver::mount_request(
            "spc",
            &p,
            pd,
            &[
                ("api://AzureADTokenExchange", &exchange),
                (AUDIENCE, &f.pod_token(pd)),
            ],
            None,
        )
    };

    let web = SimulatedPod::new("team-a", "web-1", "uid-web-1", "web");
    let resp = f.mount(request(&web, "client-1")).await.unwrap();
    assert_eq!(
        files(&resp),
        vec![("db".into(), 0o644, "from-azure".into())]
    );
    let login = f
        .state()
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth")
        .unwrap();
    assert!(
        login.fields.contains(&"cloud-id".to_string()),
        "{:?}",
        login.fields
    );
    let who = login.identity.unwrap();
    assert_eq!(
        (who.access_type.as_str(), who.subject.as_deref()),
        ("azure_ad", Some("oid-app-1"))
    );

    // Another service account has no federated credential on the app: Azure AD refuses.
    let other = SimulatedPod::new("team-a", "batch-1", "uid-batch-1", "batch");
    let msg = expect_error(
        f.mount(request(&other, "client-1")).await,
        Code::Unauthenticated,
        "AuthFailed",
    );
    assert!(
        msg.contains("federated credential") && msg.contains("client-1"),
        "{msg}"
    );

    // Missing client/tenant IDs are caught before any call.
    let before = f.state().requests().len();
    let p = params(&[
        ("akeylessAccessType", "azure_ad"),
        ("akeylessAccessID", "p-azureauth0001"),
        ("objects", "- secretPath: /azure/db\n"),
    ]);
    let msg = expect_error(
        f.mount(driver::mount_request("spc", &p, &web, &[], None))
            .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("akeylessAzureClientID") && msg.contains("akeylessAzureTenantID"),
        "{msg}"
    );
    assert_eq!(f.state().requests().len(), before);
}

/// The published `/auth` answer states the token's lifetime only as `creds.expiry` (Unix
/// time). A token that lives 4 s must never be presented after it expired: the emulator sends
/// no `expiration` and counts every call that presents an expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_living_4s_by_creds_expiry_is_never_presented_expired() {
    let f = access_key_fixture(&[]).await;
    f.state().set_auth_expiration_field(false);
    f.state().set_token_ttl(Duration::from_secs(4));
    f.mount(access_key_request(TYPED)).await.unwrap();
    let first_done = Instant::now();
    let mut mounts = 1;
    // Keep mounting (as a rotation poll would) until the first token is surely past its
    // expiry, then once more.
    while first_done.elapsed() <= Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let resp = f.mount(access_key_request(TYPED)).await.unwrap();
        assert_eq!(resp.files.len(), 2);
        mounts += 1;
    }
    assert_eq!(
        f.state().expired_token_presentations(),
        0,
        "an expired token was presented"
    );
    let auths = f.state().count("/auth");
    assert!(
        auths >= 2 && auths <= mounts,
        "{auths} /auth for {mounts} mounts"
    );
    println!("creds.expiry 4 s: {mounts} mounts, {auths} /auth, 0 expired presentations");
}
