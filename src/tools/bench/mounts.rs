//! The mount benchmark (the default): cold and warm rounds of many pods at once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akeyless_emulator::{Emulator, EmulatorState};

use super::args::BenchArgs;
use super::process::{ProviderProcess, ms, percentile, rss_kib, wait_for_socket};
use crate::driver::{self, SimulatedPod};
use crate::proto;

/// The JSON value of the first item when `--jq` is given.
fn jq_value(ns: &str) -> String {
    serde_json::json!({
        "user": format!("user-{ns}"),
        "host": "db.example.internal",
        "password": "x".repeat(32),
    })
    .to_string()
}

struct RoundResult {
    latencies: Vec<Duration>,
    wall: Duration,
    auths: usize,
    reads: usize,
    failures: usize,
}

async fn round(
    socket: &Path,
    requests: &Arc<Vec<proto::MountRequest>>,
    concurrency: usize,
    emulator: &Emulator,
) -> Result<RoundResult, String> {
    let (auth0, read0) = (
        emulator.state().count("/auth"),
        emulator.state().count("/get-secret-value"),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (socket, requests, next) = (socket.to_path_buf(), requests.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut client = driver::connect(&socket).await.map_err(|e| e.to_string())?;
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                let t = Instant::now();
                match client.mount(request.clone()).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(status) => {
                        failures += 1;
                        if failures == 1 {
                            eprintln!("mount failed: {}", status.message());
                        }
                    }
                }
            }
            Ok::<_, String>((latencies, failures))
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        failures += f;
    }
    let wall = started.elapsed();
    latencies.sort();
    Ok(RoundResult {
        latencies,
        wall,
        auths: emulator.state().count("/auth") - auth0,
        reads: emulator.state().count("/get-secret-value") - read0,
        failures,
    })
}

fn print_round(name: &str, r: &RoundResult, pods: usize) {
    let n = r.latencies.len().max(1) as f64;
    println!(
        "{name:<6} mounts {:>5} ok {:>3} failed | wall {:>9} | {:>8.0} mounts/s | p50 {:>9} p95 {:>9} p99 {:>9} max {:>9} | /auth per mount {:.3} | fetch per mount {:.3}",
        r.latencies.len(),
        r.failures,
        ms(r.wall),
        r.latencies.len() as f64 / r.wall.as_secs_f64(),
        ms(percentile(&r.latencies, 50.0)),
        ms(percentile(&r.latencies, 95.0)),
        ms(percentile(&r.latencies, 99.0)),
        ms(r.latencies.last().copied().unwrap_or_default()),
        r.auths as f64 / n,
        r.reads as f64 / n,
    );
    let _ = pods;
}

const ACCESS_ID: &str = "p-benchk8sauth1";

/// One k8s auth method, and the objects of every bench namespace; returns the namespaces.
fn seed(state: &EmulatorState, args: &BenchArgs) -> Vec<String> {
    state.add_k8s_auth(ACCESS_ID, "bench", &[], &[]);
    state.set_token_ttl(Duration::from_secs(3600));
    if args.latency_ms > 0 {
        state.set_delay("*", Duration::from_millis(args.latency_ms));
    }
    let namespaces: Vec<String> = (0..args.namespaces.max(1))
        .map(|i| format!("bench-ns{i}"))
        .collect();
    for ns in &namespaces {
        state.grant_read(ACCESS_ID, &format!("/{ns}/*"), &[ns]);
        for o in 0..args.objects {
            let value = match &args.jq {
                Some(_) if o == 0 => jq_value(ns),
                _ => format!("value-{ns}-{o}-{}", "x".repeat(32)),
            };
            state.put_static_secret(&format!("/{ns}/secret-{o}"), &value);
        }
    }
    namespaces
}

pub(super) async fn run(args: &BenchArgs) -> Result<(), String> {
    let emulator = Emulator::start("127.0.0.1:0".parse().expect("literal address"))
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let state = emulator.state();
    let namespaces = seed(state, args);

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let socket = work.path().join("akeyless.sock");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--endpoint")
        .arg(&socket)
        .args(["--akeyless-url", &emulator.url()])
        .args([
            "--health-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--log-level",
            "error",
            "--value-cache-ttl",
            &args.value_cache_ttl,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the provider: {e}"))?;
    wait_for_socket(&socket, &mut child).await?;
    let provider = ProviderProcess(child);
    let pid = provider.0.id();
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);

    let version_rtts = version_round_trips(&socket, args.version_calls).await?;

    let requests = Arc::new(requests(args, &namespaces, state));

    println!(
        "bench: {} pods x {} objects, {} namespaces x {} service accounts, concurrency {}, emulator latency {} ms, token scope {}, value cache {}, jq {}",
        args.pods,
        args.objects,
        namespaces.len(),
        args.service_accounts,
        args.concurrency,
        args.latency_ms,
        args.token_scope,
        args.value_cache_ttl,
        args.jq.as_deref().unwrap_or("none")
    );
    println!(
        "Version round trip: min {} p50 {} p99 {} ({} calls)",
        ms(version_rtts.first().copied().unwrap_or_default()),
        ms(percentile(&version_rtts, 50.0)),
        ms(percentile(&version_rtts, 99.0)),
        version_rtts.len()
    );
    let cold = round(&socket, &requests, args.concurrency, &emulator).await?;
    print_round("cold", &cold, args.pods);
    for i in 0..args.warm_rounds {
        let warm = round(&socket, &requests, args.concurrency, &emulator).await?;
        print_round(&format!("warm{}", i + 1), &warm, args.pods);
    }
    let peak = rss_kib(pid, "VmHWM:").unwrap_or(0);
    let after = rss_kib(pid, "VmRSS:").unwrap_or(0);
    println!(
        "provider RSS: idle {:.1} MiB, peak {:.1} MiB, after {:.1} MiB",
        idle_rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    drop(provider);
    emulator.shutdown().await;
    if cold.failures > 0 {
        return Err(format!("{} mounts failed in the cold round", cold.failures));
    }
    Ok(())
}

/// One mount request per pod, spread over the namespaces and service accounts, each with its
/// own service-account token.
fn requests(
    args: &BenchArgs,
    namespaces: &[String],
    state: &EmulatorState,
) -> Vec<proto::MountRequest> {
    (0..args.pods)
        .map(|i| {
            let ns = &namespaces[i % namespaces.len()];
            let sa = format!(
                "sa{}",
                (i / namespaces.len()) % args.service_accounts.max(1)
            );
            let pod = SimulatedPod::new(ns, &format!("pod-{i}"), &format!("bench-uid-{i:06}"), &sa);
            let token = state.issue_service_account_token(
                ns,
                &sa,
                &pod.name,
                &pod.uid,
                "akeyless",
                Duration::from_secs(3600),
            );
            let objects: String = (0..args.objects)
                .map(|o| {
                    let jq = match &args.jq {
                        // A JSON string is a YAML double-quoted scalar.
                        Some(expr) if o == 0 => format!(
                            "  jq: {}\n",
                            serde_json::to_string(expr).unwrap_or_default()
                        ),
                        _ => String::new(),
                    };
                    format!("- secretPath: /{ns}/secret-{o}\n  type: static\n{jq}")
                })
                .collect();
            let parameters = std::collections::BTreeMap::from([
                ("akeylessAccessID".to_string(), ACCESS_ID.to_string()),
                ("akeylessK8sAuthConfigName".to_string(), "bench".to_string()),
                ("akeylessTokenScope".to_string(), args.token_scope.clone()),
                ("objects".to_string(), objects),
            ]);
            driver::mount_request("bench", &parameters, &pod, &[("akeyless", &token)], None)
        })
        .collect()
}

/// The Version floor: `calls` sequential round trips on one connection, sorted.
async fn version_round_trips(socket: &Path, calls: usize) -> Result<Vec<Duration>, String> {
    let mut client = driver::connect(socket).await.map_err(|e| e.to_string())?;
    let mut rtts = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        client
            .version(proto::VersionRequest {
                version: "v1alpha1".into(),
            })
            .await
            .map_err(|e| e.to_string())?;
        rtts.push(t.elapsed());
    }
    rtts.sort();
    Ok(rtts)
}
