//! `bench`: drives the real provider binary over its socket, as many pods at once as asked,
//! against the in-process Akeyless emulator at a chosen latency, and prints what a platform team
//! wants to know: mount latency percentiles, mounts/s, backend calls per mount for a cold and a
//! warm (rotation) round, the provider's peak RSS, and the floor of a `Version` round trip.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{self, SimulatedPod};
use crate::emulator::Emulator;
use crate::proto;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Pods per round (each its own UID and service-account token).
    #[arg(long, default_value_t = 500)]
    pub pods: usize,
    /// Static objects per SecretProviderClass (all typed, one batch).
    #[arg(long, default_value_t = 10)]
    pub objects: usize,
    /// Namespaces the pods are spread over (each with its own items and grants).
    #[arg(long, default_value_t = 4)]
    pub namespaces: usize,
    /// Service accounts per namespace.
    #[arg(long, default_value_t = 2)]
    pub service_accounts: usize,
    /// Mounts in flight at once (kubelet publishes volumes in parallel).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Latency added by the emulator to every Akeyless call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// akeylessTokenScope of the SecretProviderClass: pod or serviceAccount.
    #[arg(long, default_value = "pod")]
    pub token_scope: String,
    /// Passed to the provider's --value-cache-ttl.
    #[arg(long, default_value = "0s")]
    pub value_cache_ttl: String,
    /// Number of warm (rotation) rounds after the cold one.
    #[arg(long, default_value_t = 1)]
    pub warm_rounds: usize,
    /// Version round trips measured for the floor.
    #[arg(long, default_value_t = 2000)]
    pub version_calls: usize,
    /// A jq expression for the first object of every SecretProviderClass, whose item then holds
    /// a JSON value with `user`, `host` and `password` (e.g. `.user`, or
    /// `"\(.user)@\(.host)"`), to measure what jq costs a mount.
    #[arg(long)]
    pub jq: Option<String>,
    /// Instead of the mount rounds: issue 12's hostile-filter scenario (six runaway jq filters
    /// at once, memory bombs, a 200,000-key explode), printing each answer and its time,
    /// `Version` and ordinary-mount latency meanwhile, CPU after the answers and peak RSS of
    /// the provider and its jq workers.
    #[arg(long)]
    pub runaway_jq: bool,
    /// Instead of the mount rounds: issue 15's node-restart storm. Every pod (`--pods`, over
    /// `--namespaces` x `--service-accounts`, `--objects` untyped objects each) mounts at once
    /// on a fresh provider, cold then warm; then, on another fresh provider, the same storm while
    /// the emulator answers 429 for `--throttle-secs`. Prints backend calls by command, time
    /// until every pod is mounted, p50/p99, and the requests received during the 429 window.
    #[arg(long)]
    pub storm: bool,
    /// With --storm: how long the emulator answers 429 in the second variant.
    #[arg(long, default_value_t = 5)]
    pub throttle_secs: u64,
    /// With --storm: the `Retry-After` (seconds) of those 429s; 0 sends none.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// With --runaway-jq: the provider's --jq-timeout.
    #[arg(long, default_value = "2s")]
    pub jq_timeout: String,
}

/// The JSON value of the first item when `--jq` is given.
fn jq_value(ns: &str) -> String {
    serde_json::json!({
        "user": format!("user-{ns}"),
        "host": "db.example.internal",
        "password": "x".repeat(32),
    })
    .to_string()
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) struct ProviderProcess(pub(crate) Child);

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn wait_for_socket(socket: &Path, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the provider exited early ({status})"));
        }
        if let Ok(mut c) = driver::connect(socket).await
            && c.version(proto::VersionRequest::default()).await.is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the provider did not come up within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.runaway_jq {
        return crate::bench_runaway::run(&args).await;
    }
    if args.storm {
        return crate::bench_storm::run(&args).await;
    }
    let emulator = Emulator::start("127.0.0.1:0".parse().expect("literal address"))
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let state = emulator.state();
    let access_id = "p-benchk8sauth1";
    state.add_k8s_auth(access_id, "bench", &[], &[]);
    state.set_token_ttl(Duration::from_secs(3600));
    if args.latency_ms > 0 {
        state.set_delay("*", Duration::from_millis(args.latency_ms));
    }
    let namespaces: Vec<String> = (0..args.namespaces.max(1))
        .map(|i| format!("bench-ns{i}"))
        .collect();
    for ns in &namespaces {
        state.grant_read(access_id, &format!("/{ns}/*"), &[ns]);
        for o in 0..args.objects {
            let value = match &args.jq {
                Some(_) if o == 0 => jq_value(ns),
                _ => format!("value-{ns}-{o}-{}", "x".repeat(32)),
            };
            state.put_static_secret(&format!("/{ns}/secret-{o}"), &value);
        }
    }

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

    // The Version floor: sequential round trips on one connection.
    let mut client = driver::connect(&socket).await.map_err(|e| e.to_string())?;
    let mut version_rtts = Vec::with_capacity(args.version_calls);
    for _ in 0..args.version_calls {
        let t = Instant::now();
        client
            .version(proto::VersionRequest {
                version: "v1alpha1".into(),
            })
            .await
            .map_err(|e| e.to_string())?;
        version_rtts.push(t.elapsed());
    }
    version_rtts.sort();

    let requests: Vec<proto::MountRequest> = (0..args.pods)
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
                ("akeylessAccessID".to_string(), access_id.to_string()),
                ("akeylessK8sAuthConfigName".to_string(), "bench".to_string()),
                ("akeylessTokenScope".to_string(), args.token_scope.clone()),
                ("objects".to_string(), objects),
            ]);
            driver::mount_request("bench", &parameters, &pod, &[("akeyless", &token)], None)
        })
        .collect();
    let requests = Arc::new(requests);

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
