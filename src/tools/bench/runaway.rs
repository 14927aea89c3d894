//! `bench --runaway-jq`: issue 12's hostile-filter scenario against this binary, measured from
//! outside as a tenant would see it. Prints every hostile answer and its time, `Version` and
//! ordinary-mount latencies while runaway filters run, the CPU the provider and its children
//! use in the second after the hostile mounts are answered, and the peak RSS of the provider
//! and its children (sampled every 10 ms from /proc).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::args::BenchArgs;
use super::process::start_provider;
use crate::driver::{self, SimulatedPod};
use crate::proto;
use crate::proto::csi_driver_provider_client::CsiDriverProviderClient;
use akeyless_emulator::Emulator;

/// Filters that never end (the issue's and a few more).
pub const RUNAWAY: &[&str] = &[
    "last(range(1e18))",
    "[limit(1e9; repeat(.a))]",
    "def f: f; f",
    "[range(1e9)] | length",
    "[repeat(.)] | length",
    "reduce range(1e9) as $i (0; . + $i)",
];

/// Filters that grow memory or the stack without end.
pub const BOMBS: &[&str] = &[
    "reduce range(60) as $i (\"x\"; . + .)",
    "[range(1e8) | tostring] | add",
    "def f: [f]; f",
    "def f: 1 + f; f",
    "[.. , .. , ..] as $x | [range(1e9) | $x]",
    "[range(1e7)] | tostring | [., ., ., ., .] | add | length",
];

const ACCESS_ID: &str = "p-runaway000001";
const ACCESS_KEY: &str = "runaway-access-key";

/// Fields of /proc/<pid>/stat after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn field(fields: &[String], i: usize) -> u64 {
    fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0)
}

/// The direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&c| stat_fields(c).is_some_and(|f| field(&f, 1) == u64::from(pid)))
        .collect()
}

/// CPU clock ticks used so far by `pid`, its reaped children and its live children.
fn cpu_ticks(pid: u32) -> u64 {
    let own = stat_fields(pid).map_or(0, |f| {
        field(&f, 11) + field(&f, 12) + field(&f, 13) + field(&f, 14)
    });
    own + children(pid)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| field(&f, 11) + field(&f, 12))
        .sum::<u64>()
}

fn status_kib(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// RSS of `pid` and its children together, in KiB.
fn tree_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
        + children(pid)
            .into_iter()
            .map(|c| status_kib(c, "VmRSS:"))
            .sum::<u64>()
}

/// Samples the tree's RSS every 10 ms while running; the peak, in KiB.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(tree_rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

async fn client(
    socket: &Path,
) -> Result<CsiDriverProviderClient<tonic::transport::Channel>, String> {
    driver::connect(socket)
        .await
        .map(|c| c.max_decoding_message_size(64 << 20))
        .map_err(|e| e.to_string())
}

fn request(namespace: &str, file: &str, item: &str, extra: &str) -> proto::MountRequest {
    let objects = format!("- secretPath: {item}\n  fileName: {file}\n  type: static\n{extra}");
    let parameters = std::collections::BTreeMap::from([
        ("akeylessAccessID".to_string(), ACCESS_ID.to_string()),
        ("objects".to_string(), objects),
    ]);
    let secret = std::collections::BTreeMap::from([(
        "akeylessAccessKey".to_string(),
        ACCESS_KEY.to_string(),
    )]);
    let pod = SimulatedPod::new(namespace, file, &format!("uid-{namespace}-{file}"), "app");
    driver::mount_request("runaway", &parameters, &pod, &[], Some(&secret))
}

fn jq_line(expr: &str) -> String {
    format!(
        "  jq: {}\n",
        serde_json::to_string(expr).unwrap_or_default()
    )
}

/// Sends one mount with a deadline; the answer as text (`ok, N files` or the status message)
/// and how long it took.
async fn mount(socket: &Path, req: proto::MountRequest, timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let answer = match client(socket).await {
        Err(e) => format!("connect failed: {e}"),
        Ok(mut c) => {
            let mut req = tonic::Request::new(req);
            req.set_timeout(timeout);
            match c.mount(req).await {
                Ok(r) => format!("ok, {} files", r.into_inner().files.len()),
                Err(s) => format!("{:?}: {}", s.code(), s.message()),
            }
        }
    };
    (answer, started.elapsed())
}

fn short(text: &str, n: usize) -> String {
    let cut: String = text.chars().take(n).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `Version` and ordinary-mount latencies measured while `busy` holds.
#[derive(Default)]
struct Calm {
    version: Vec<Duration>,
    plain: Vec<Duration>,
    path: Vec<Duration>,
    failures: Vec<String>,
}

async fn calm_loop(socket: PathBuf, busy: Arc<AtomicBool>) -> Calm {
    let mut calm = Calm::default();
    while busy.load(Ordering::Relaxed) {
        let t = Instant::now();
        match client(&socket).await {
            Ok(mut c) => match c.version(proto::VersionRequest::default()).await {
                Ok(_) => calm.version.push(t.elapsed()),
                Err(s) => calm.failures.push(format!("Version: {}", s.message())),
            },
            Err(e) => calm.failures.push(format!("Version: {e}")),
        }
        let (answer, took) = mount(
            &socket,
            request("calm", "plain", "/bench/plain", ""),
            Duration::from_secs(30),
        )
        .await;
        if answer.starts_with("ok") {
            calm.plain.push(took);
        } else {
            calm.failures.push(format!("plain mount: {answer}"));
        }
        let (answer, took) = mount(
            &socket,
            request("calm", "path", "/bench/json", &jq_line(".a.b")),
            Duration::from_secs(30),
        )
        .await;
        if answer.starts_with("ok") {
            calm.path.push(took);
        } else {
            calm.failures.push(format!("plain-path jq mount: {answer}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    calm
}

fn print_latencies(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let max = v.last().copied().unwrap_or_default();
    let p50 = v.get(v.len() / 2).copied().unwrap_or_default();
    println!(
        "  {name:<28} {:>3} calls, p50 {:>9}, max {:>9}",
        v.len(),
        ms(p50),
        ms(max)
    );
}

/// Runs `filters` as concurrent mounts (each from its own namespace) with `timeout`; prints each
/// answer and the calm latencies, then the CPU of the second after the last answer.
async fn hostile_phase(
    title: &str,
    socket: &Path,
    pid: u32,
    filters: &[&str],
    timeout: Duration,
) -> Result<(), String> {
    println!("\n{title}");
    let busy = Arc::new(AtomicBool::new(true));
    let calm = tokio::spawn(calm_loop(socket.to_path_buf(), busy.clone()));
    let hostile: Vec<_> = filters
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            let socket = socket.to_path_buf();
            let req = request(
                &format!("tenant-{i}"),
                &format!("h{i}"),
                "/bench/json",
                &jq_line(expr),
            );
            tokio::spawn(async move { mount(&socket, req, timeout).await })
        })
        .collect();
    for (h, expr) in hostile.into_iter().zip(filters) {
        let (answer, took) = h.await.map_err(|e| e.to_string())?;
        println!(
            "  {:<55} {:>9}  {}",
            short(expr, 55),
            format!("{:.2} s", took.as_secs_f64()),
            short(&answer, 150)
        );
    }
    busy.store(false, Ordering::Relaxed);
    let answered = Instant::now();
    let ticks_before = cpu_ticks(pid);
    let calm = calm.await.map_err(|e| e.to_string())?;
    let rest = Duration::from_secs(1).saturating_sub(answered.elapsed());
    tokio::time::sleep(rest).await;
    let used = cpu_ticks(pid).saturating_sub(ticks_before);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    println!("  while the hostile mounts ran:");
    print_latencies("Version", calm.version);
    print_latencies("mount, no jq", calm.plain);
    print_latencies("mount, jq .a.b (plain path)", calm.path);
    for f in &calm.failures {
        println!("  FAILED: {}", short(f, 200));
    }
    println!(
        "  CPU of provider + children in the second after the last answer: {:.0}% of one core ({used} ticks), workers left: {}",
        used as f64 * 100.0 / per_second as f64,
        children(pid).len()
    );
    if !calm.failures.is_empty() {
        return Err(format!(
            "{} calm calls failed during {title}",
            calm.failures.len()
        ));
    }
    Ok(())
}

pub async fn run(args: &BenchArgs) -> Result<(), String> {
    let emulator = Emulator::start("127.0.0.1:0".parse().map_err(|_| "address")?)
        .await
        .map_err(|e| format!("starting the emulator: {e}"))?;
    let state = emulator.state();
    state.add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    state.grant_read(ACCESS_ID, "/*", &[]);
    state.put_static_secret(
        "/bench/json",
        r#"{"a":{"b":"value-b"},"list":[1,2,3],"user":"app","host":"db"}"#,
    );
    state.put_static_secret("/bench/plain", "plain-value");
    let mut huge = String::from("{");
    for i in 0..200_000 {
        if i > 0 {
            huge.push(',');
        }
        huge.push_str(&format!("\"k{i}\":\"\""));
    }
    huge.push('}');
    state.put_static_secret("/bench/huge", &huge);
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let budget = args.jq_timeout.clone();
    println!(
        "runaway-jq scenario: {} cores, provider {}, --jq-timeout {budget} (phases 1 and 3), defaults otherwise",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );

    // Phases 1 and 3: the per-evaluation budget stops the filters.
    let socket = work.path().join("a.sock");
    let provider = start_provider(&socket, &emulator.url(), &["--jq-timeout", &budget]).await?;
    let pid = provider.0.id();
    let idle = tree_rss_kib(pid);
    let sampler = RssSampler::start(pid);
    hostile_phase(
        &format!(
            "1. six runaway filters at once, stopped by --jq-timeout {budget} (mount deadline 30 s)"
        ),
        &socket,
        pid,
        RUNAWAY,
        Duration::from_secs(30),
    )
    .await?;
    hostile_phase(
        "3. six memory and stack bombs at once (mount deadline 30 s)",
        &socket,
        pid,
        BOMBS,
        Duration::from_secs(30),
    )
    .await?;
    println!("\n4. explode of a 200,000-key object (default --max-files)");
    let (answer, took) = mount(
        &socket,
        request("x", "all", "/bench/huge", "  explode: true\n"),
        Duration::from_secs(30),
    )
    .await;
    println!(
        "  {:>9}  {}",
        format!("{:.2} s", took.as_secs_f64()),
        short(&answer, 150)
    );
    let peak = sampler.finish();
    let hwm = status_kib(pid, "VmHWM:");
    println!(
        "\nprovider + children RSS: idle {:.1} MiB, peak {:.1} MiB (sampled every 10 ms); provider's own VmHWM {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(provider);

    // Phase 2: a budget longer than the mount's deadline; the deadline stops them.
    let socket = work.path().join("b.sock");
    let provider = start_provider(
        &socket,
        &emulator.url(),
        &["--jq-timeout", "60s", "--max-files", "250000"],
    )
    .await?;
    let pid = provider.0.id();
    let sampler = RssSampler::start(pid);
    hostile_phase(
        "2. six runaway filters at once, --jq-timeout 60s, stopped by the mount's 3 s deadline",
        &socket,
        pid,
        RUNAWAY,
        Duration::from_secs(3),
    )
    .await?;
    println!("\n5. explode of a 200,000-key object with --max-files 250000");
    let (answer, took) = mount(
        &socket,
        request("x", "all", "/bench/huge", "  explode: true\n"),
        Duration::from_secs(30),
    )
    .await;
    println!(
        "  {:>9}  {}",
        format!("{:.2} s", took.as_secs_f64()),
        short(&answer, 150)
    );
    let peak = sampler.finish();
    println!(
        "\nprovider + children RSS, phases 2 and 5: peak {:.1} MiB (sampled every 10 ms); provider's own VmHWM {:.1} MiB",
        peak as f64 / 1024.0,
        status_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    drop(provider);
    emulator.shutdown().await;
    Ok(())
}
