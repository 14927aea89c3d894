//! An opt-in mount against a real Akeyless account, so that a user can prove their setup in one
//! command: `cargo test --features live-akeyless --test live -- --nocapture`.
//!
//! The real provider binary is started with `--akeyless-url` set to the account's API (or
//! gateway) and mounts one static secret over its Unix socket with real gRPC, as the CSI driver
//! would. Credentials come from the environment (see README, "Prove your setup"):
//!
//! - `AKEYLESS_ACCESS_ID`, `AKEYLESS_ACCESS_KEY`: an access-key auth method;
//! - or, with `AKEYLESS_GATEWAY_URL` set, `AKEYLESS_K8S_AUTH_CONFIG` and
//!   `AKEYLESS_K8S_SA_TOKEN_FILE` (a service-account token the gateway's config accepts)
//!   instead of the access key;
//! - `AKEYLESS_LIVE_SECRET`: the path of a static secret that identity may read.
//!
//! Without them the test prints why it did nothing. It is never part of `.ci/run`, which has
//! no account. The secret's value is never printed: only its length.
#![cfg(feature = "live-akeyless")]

mod common;

use akeyless_csi_provider::driver;
use common::*;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_from_a_real_akeyless_account() {
    let (Some(access_id), Some(secret_path)) =
        (env("AKEYLESS_ACCESS_ID"), env("AKEYLESS_LIVE_SECRET"))
    else {
        println!(
            "live-akeyless: not run: set AKEYLESS_ACCESS_ID and AKEYLESS_LIVE_SECRET, plus \
             AKEYLESS_ACCESS_KEY (or, with AKEYLESS_GATEWAY_URL, AKEYLESS_K8S_AUTH_CONFIG and \
             AKEYLESS_K8S_SA_TOKEN_FILE); see README, \"Prove your setup\""
        );
        return;
    };
    let gateway = env("AKEYLESS_GATEWAY_URL");
    let url = gateway
        .clone()
        .unwrap_or_else(|| "https://api.akeyless.io".to_string());
    let objects = format!("- secretPath: {secret_path}\n  fileName: live\n");
    let pod = pod("default", "live-check");
    let request = match (
        env("AKEYLESS_ACCESS_KEY"),
        gateway.as_ref().and(env("AKEYLESS_K8S_AUTH_CONFIG")),
        env("AKEYLESS_K8S_SA_TOKEN_FILE"),
    ) {
        (Some(key), _, _) => {
            let p = params(&[
                ("akeylessAccessID", access_id.as_str()),
                ("objects", objects.as_str()),
            ]);
            let secret = params(&[("akeylessAccessKey", key.as_str())]);
            driver::mount_request("live", &p, &pod, &[], Some(&secret))
        }
        (None, Some(config), Some(token_file)) => {
            let token = std::fs::read_to_string(&token_file)
                .unwrap_or_else(|e| panic!("AKEYLESS_K8S_SA_TOKEN_FILE {token_file}: {e}"));
            let p = params(&[
                ("akeylessAccessID", access_id.as_str()),
                ("akeylessAccessType", "k8s"),
                ("akeylessK8sAuthConfigName", config.as_str()),
                ("objects", objects.as_str()),
            ]);
            driver::mount_request("live", &p, &pod, &[("akeyless", token.trim())], None)
        }
        _ => {
            println!(
                "live-akeyless: not run: set AKEYLESS_ACCESS_KEY, or AKEYLESS_GATEWAY_URL with \
                 AKEYLESS_K8S_AUTH_CONFIG and AKEYLESS_K8S_SA_TOKEN_FILE"
            );
            return;
        }
    };
    let provider = ProviderProcess::start(&url, &["--log-level", "info"]).await;
    let mut client = provider.client().await;
    let response = client
        .mount(tonic::Request::new(request))
        .await
        .unwrap_or_else(|status| {
            panic!(
                "live-akeyless: the mount from {url} failed: {}",
                status.message()
            )
        })
        .into_inner();
    let files = files(&response);
    assert_eq!(files.len(), 1, "one file for {secret_path}");
    assert!(!files[0].2.is_empty(), "the secret {secret_path} is empty");
    println!(
        "live-akeyless: mounted {secret_path} from {url}: {} bytes, version {:?}",
        files[0].2.len(),
        versions(&response)
    );
}
