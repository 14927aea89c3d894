//! `bench --storm`: issue 15's node restart. Every pod of a node mounts at once on a fresh
//! provider (cold), then again (warm); then, on another fresh provider, the same storm while the
//! gateway answers 429 for its first seconds. Untyped objects, so every item's type must be
//! looked up, and one Kubernetes login per pod (token scope `pod`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::BenchArgs;
use super::process::{ProviderProcess, ms, percentile, rss_kib, start_provider};
use crate::driver::{self, SimulatedPod};
use crate::proto;
use akeyless_emulator::{Emulator, EmulatorState};

const ACCESS_ID: &str = "p-stormk8sauth1";

/// One storm: every mount at once, each on its own connection.
struct Storm {
    latencies: Vec<Duration>,
    /// Until the last pod was mounted.
    wall: Duration,
    failures: usize,
    /// Backend calls by command during the storm.
    calls: BTreeMap<String, usize>,
}

fn counts(state: &EmulatorState) -> BTreeMap<String, usize> {
    state.counts().into_iter().collect()
}

async fn storm(
    socket: &Path,
    requests: &Arc<Vec<proto::MountRequest>>,
    state: &EmulatorState,
) -> Result<Storm, String> {
    // Connect first, so the storm measures mounts, not connection set-up.
    let mut clients = Vec::with_capacity(requests.len());
    for _ in 0..requests.len() {
        clients.push(driver::connect(socket).await.map_err(|e| e.to_string())?);
    }
    let before = counts(state);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, mut client) in clients.into_iter().enumerate() {
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let result = client.mount(requests[i].clone()).await;
            (
                t.elapsed(),
                result.map(|_| ()).map_err(|s| s.message().to_string()),
            )
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            (took, Ok(())) => latencies.push(took),
            (_, Err(message)) => {
                failures += 1;
                if failures == 1 {
                    eprintln!("mount failed: {message}");
                }
            }
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let mut calls = counts(state);
    for (path, n) in calls.iter_mut() {
        *n -= before.get(path).copied().unwrap_or(0);
    }
    calls.retain(|_, n| *n > 0);
    Ok(Storm {
        latencies,
        wall,
        failures,
        calls,
    })
}

/// Calls to `path` per pod (mounted or failed).
fn per_mount(s: &Storm, path: &str) -> f64 {
    let pods = s.latencies.len() + s.failures;
    s.calls.get(path).copied().unwrap_or(0) as f64 / pods.max(1) as f64
}

fn print_storm(name: &str, s: &Storm) {
    println!(
        "{name:<5} | mounted {:>3} failed {:>3} | all mounted after {:>10} | p50 {:>10} p99 {:>10} | /auth per mount {:.2} | /describe-item per mount {:.2} | reads per mount {:.2}",
        s.latencies.len(),
        s.failures,
        ms(s.wall),
        ms(percentile(&s.latencies, 50.0)),
        ms(percentile(&s.latencies, 99.0)),
        per_mount(s, "/auth"),
        per_mount(s, "/describe-item"),
        per_mount(s, "/get-secret-value"),
    );
    let calls: Vec<String> = s.calls.iter().map(|(p, n)| format!("{p} {n}")).collect();
    println!("      backend calls by command: {}", calls.join(", "));
}

fn requests(args: &BenchArgs, state: &EmulatorState) -> Vec<proto::MountRequest> {
    let namespaces = args.namespaces.max(1);
    (0..args.pods)
        .map(|i| {
            let ns = format!("storm-ns{}", i % namespaces);
            let sa = format!("sa{}", (i / namespaces) % args.service_accounts.max(1));
            let pod =
                SimulatedPod::new(&ns, &format!("pod-{i}"), &format!("storm-uid-{i:06}"), &sa);
            let token = state.issue_service_account_token(
                &ns,
                &sa,
                &pod.name,
                &pod.uid,
                "akeyless",
                Duration::from_secs(3600),
            );
            // Untyped: the provider must learn every item's type.
            let objects: String = (0..args.objects)
                .map(|o| format!("- secretPath: /{ns}/secret-{o}\n"))
                .collect();
            let parameters = BTreeMap::from([
                ("akeylessAccessID".to_string(), ACCESS_ID.to_string()),
                ("akeylessK8sAuthConfigName".to_string(), "storm".to_string()),
                ("akeylessTokenScope".to_string(), args.token_scope.clone()),
                ("objects".to_string(), objects),
            ]);
            driver::mount_request("storm", &parameters, &pod, &[("akeyless", &token)], None)
        })
        .collect()
}

pub async fn run(args: &BenchArgs) -> Result<(), String> {
    let emulator = Emulator::start("127.0.0.1:0".parse().expect("literal address"))
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let state = emulator.state();
    state.add_k8s_auth(ACCESS_ID, "storm", &[], &[]);
    state.set_token_ttl(Duration::from_secs(3600));
    state.set_delay("*", Duration::from_millis(args.latency_ms));
    let namespaces = args.namespaces.max(1);
    for n in 0..namespaces {
        let ns = format!("storm-ns{n}");
        state.grant_read(ACCESS_ID, &format!("/{ns}/*"), &[&ns]);
        for o in 0..args.objects {
            state.put_static_secret(&format!("/{ns}/secret-{o}"), &format!("value-{ns}-{o}"));
        }
    }
    let requests = Arc::new(requests(args, state));
    println!(
        "bench --storm: {} pods at once, {} namespaces x {} service accounts, {} untyped objects each ({} distinct items, one account), emulator latency {} ms, token scope {}",
        args.pods,
        namespaces,
        args.service_accounts.max(1),
        args.objects,
        namespaces * args.objects,
        args.latency_ms,
        args.token_scope,
    );

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = emulator.url();
    let flags = ["--value-cache-ttl", args.value_cache_ttl.as_str()];

    // Cold and warm on a fresh provider.
    let socket = work.path().join("storm.sock");
    let provider: ProviderProcess = start_provider(&socket, &url, &flags).await?;
    let cold = storm(&socket, &requests, state).await?;
    print_storm("cold", &cold);
    let warm = storm(&socket, &requests, state).await?;
    print_storm("warm", &warm);
    let peak = rss_kib(provider.0.id(), "VmHWM:").unwrap_or(0);
    println!("      provider peak RSS {:.1} MiB", peak as f64 / 1024.0);
    drop(provider);

    // The same storm on another fresh provider while the gateway answers 429.
    let window = Duration::from_secs(args.throttle_secs);
    let retry_after = (args.retry_after_secs > 0).then_some(args.retry_after_secs);
    let socket = work.path().join("storm-429.sock");
    let provider = start_provider(&socket, &url, &flags).await?;
    let before = state.total_count();
    state.throttle_for(window, retry_after);
    let window_end = tokio::time::Instant::now() + window;
    let sampler = {
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_end).await;
            state.total_count()
        })
    };
    let throttled = storm(&socket, &requests, state).await?;
    let in_window = sampler.await.map_err(|e| e.to_string())? - before;
    println!(
        "429 for the first {} s (Retry-After {}): requests during the window {} ({:.2} per pod)",
        window.as_secs(),
        retry_after.map_or("none".to_string(), |s| format!("{s} s")),
        in_window,
        in_window as f64 / args.pods.max(1) as f64
    );
    print_storm("429", &throttled);
    drop(provider);
    emulator.shutdown().await;
    let failed = cold.failures + warm.failures + throttled.failures;
    if failed > 0 {
        return Err(format!("{failed} mounts failed"));
    }
    Ok(())
}
