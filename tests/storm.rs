//! A node restart storm over the real socket: concurrent mounts share in-flight type look-ups,
//! and a throttled gateway is backed off once for every mount, not retried by each.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Untyped: every item's type must be looked up.
const UNTYPED: &str = "- secretPath: /apps/a\n- secretPath: /apps/b\n- secretPath: /apps/c\n";

async fn fixture() -> Arc<Fixture> {
    let f = Fixture::new().await;
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    for item in ["a", "b", "c"] {
        f.state().put_static_secret(&format!("/apps/{item}"), item);
    }
    Arc::new(f)
}

async fn storm(f: &Arc<Fixture>, pods: usize) -> Vec<Result<(), String>> {
    let mut tasks = Vec::new();
    for i in 0..pods {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            f.mount(access_key_request_as(
                UNTYPED,
                &pod("default", &format!("p{i}")),
            ))
            .await
            .map(|r| assert_eq!(r.files.len(), 3))
            .map_err(|s| s.message().to_string())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mounts_share_each_items_type_look_up() {
    let f = fixture().await;
    // Slow enough that every mount asks while the first look-ups are in flight.
    f.state().set_delay("*", Duration::from_millis(100));
    let results = storm(&f, 30).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        f.state().count("/auth"),
        30,
        "one login per pod (token scope pod)"
    );
    assert_eq!(
        f.state().count("/describe-item"),
        3,
        "one look-up per item, however many pods"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_gateway_is_waited_out_once_by_every_mount() {
    let f = fixture().await;
    f.state().set_delay("*", Duration::from_millis(20));
    let (pods, window) = (30, Duration::from_secs(4));
    f.state().throttle_for(window, Some(1));
    let started = Instant::now();
    let sampler = {
        let f = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            f.state().total_count()
        })
    };
    let results = storm(&f, pods).await;
    let in_window = sampler.await.unwrap();
    assert!(
        results.iter().all(Result::is_ok),
        "every mount succeeds once the window ends: {results:?}"
    );
    assert!(started.elapsed() >= window);
    assert!(
        in_window <= 2 * pods,
        "{in_window} requests during the 429 window for {pods} pods"
    );
}
