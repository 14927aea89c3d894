//! Bounded evaluation: how a mount turns fetched values into files without any tenant being
//! able to hang, starve or exhaust the node's provider.
//!
//! **Why a child process.** jaq (our jq) has no step budget, no memory budget and no interrupt,
//! and a thread cannot be killed: `last(range(1e18))` or `def f: f; f` run forever and
//! `[limit(1e9; repeat(.a))]` allocates without end. A restricted terminating subset of jq would
//! refuse filters users rely on (`"\(.user)@\(.host)"`, `to_entries`, `select`), and a step
//! budget would need a fork of jaq. So:
//!
//! 1. Filters that are **plain paths** (`.a`, `.a.b`, `.["x y"]`, `.a[0]`; decided at
//!    validation, [`crate::jq::JqFilter`]) are evaluated in process, without jaq: one step per
//!    path segment.
//! 2. **Every other filter** runs in a worker: this binary re-executed (`/proc/self/exe`) with
//!    the hidden `__eval-worker` subcommand ([`worker`]). It first lowers its own priority and
//!    sets its own rlimits (heap, address space, CPU seconds, no core dumps, no files, no
//!    children, killed with the provider), then reads the filter and the value on stdin and
//!    answers on stdout; its stderr goes nowhere, so nothing can print the value. The provider
//!    kills it (SIGKILL, and reaps it) at the earlier of the per-evaluation budget
//!    (`--jq-timeout`) and the mount's deadline, so it stops using CPU by then at the latest.
//! 3. At most `--jq-workers` run at once, and one namespace may hold at most half of them, so
//!    the memory they can take is bounded (`workers × --jq-memory-mib` plus their stacks) and one
//!    tenant with runaway filters cannot stall another's jq mounts for longer than the budget.
//!    Mounts without such filters never wait for a worker.
//! 4. The pure render stage (decoding, `key`, `explode`, plain paths, versions) is linear in the
//!    bytes read from Akeyless (capped by `--max-response-bytes`). Small inputs are rendered
//!    inline; larger ones on the blocking pool, off the async workers that serve `Version`
//!    and other mounts.
//!
//! The evaluator a mount uses is chosen explicitly in the provider context
//! ([`crate::mount::ProviderContext::evaluator`]): `serve`, `sync` and `render` use workers; unit
//! tests and benches use [`Evaluator::in_process`].

pub mod worker;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, MountError};
use crate::render::{
    self, DEFAULT_MAX_FILES, Fetched, JqResults, OutputLimits, Rendered, VersionKey,
};
use crate::secret::ExposeSecret;
use crate::spec::{Extract, ObjectSpec};

pub use worker::WorkerArgs;

/// Name of the hidden subcommand that runs one evaluation.
pub const WORKER_SUBCOMMAND: &str = "__eval-worker";

/// Inputs up to this many bytes (all objects of a mount together) are rendered on the calling
/// task: well under a millisecond of work. Larger ones go to the blocking pool.
pub const INLINE_RENDER_BYTES: usize = 16 * 1024;

/// Workers are stopped this long before the mount's deadline, so the mount fails with its own
/// error naming the object (after the worker is reaped) rather than the server's generic
/// deadline error; generous, because a busy node may run the provider's timers late.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// Default of `--jq-timeout`.
pub const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(2);
/// Default of `--jq-workers`.
pub const DEFAULT_JQ_WORKERS: usize = 2;
/// Default of `--jq-memory-mib`.
pub const DEFAULT_JQ_MEMORY_MIB: u64 = 24;
/// Smallest `--jq-memory-mib` accepted: the worker itself needs a few MiB.
const MIN_JQ_MEMORY_MIB: u64 = 8;

/// Operator flags of bounded evaluation (shared by `serve`, `sync` and `render`).
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Longest one jq evaluation may run. Filters that are plain paths (.a.b, .["x"], .a[0]) are
    /// evaluated in the provider; any other filter runs in a worker process that is killed after
    /// this long (or at the mount's deadline, when earlier), failing the mount.
    #[arg(long, env = "AKEYLESS_CSI_JQ_TIMEOUT", default_value = "2s", value_parser = crate::spec::parse_duration)]
    pub jq_timeout: Duration,
    /// jq worker processes running at once; more evaluations wait (within the mount's deadline).
    /// One namespace may use at most half of them (at least one). Keep
    /// jq-workers × (jq-memory-mib + 8) + 48 MiB under the container's memory limit.
    #[arg(long, env = "AKEYLESS_CSI_JQ_WORKERS", default_value_t = DEFAULT_JQ_WORKERS)]
    pub jq_workers: usize,
    /// Heap of one jq worker process, in MiB (RLIMIT_DATA); a filter that needs more fails the
    /// mount with InvalidConfig.
    #[arg(long, env = "AKEYLESS_CSI_JQ_MEMORY_MIB", default_value_t = DEFAULT_JQ_MEMORY_MIB)]
    pub jq_memory_mib: u64,
    /// Most files one mount may return (explode included); more fails the mount with
    /// InvalidConfig.
    #[arg(long, env = "AKEYLESS_CSI_MAX_FILES", default_value_t = DEFAULT_MAX_FILES)]
    pub max_files: usize,
}

impl Default for EvalArgs {
    fn default() -> Self {
        EvalArgs {
            jq_timeout: DEFAULT_JQ_TIMEOUT,
            jq_workers: DEFAULT_JQ_WORKERS,
            jq_memory_mib: DEFAULT_JQ_MEMORY_MIB,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// How a mount evaluates `jq` filters that are not plain paths, and the file cap.
#[derive(Debug)]
pub struct Evaluator {
    mode: Mode,
    max_files: usize,
}

#[derive(Debug)]
enum Mode {
    /// jaq in process, without bounds: unit tests and benches only.
    InProcess,
    Workers(WorkerPool),
}

impl Evaluator {
    /// Evaluates every filter in process with jaq, unbounded. For unit tests and benches, where
    /// the filters are the test's own.
    pub fn in_process() -> Self {
        Evaluator {
            mode: Mode::InProcess,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// Evaluates filters that are not plain paths in worker processes started from `exe` (this
    /// binary: `/proc/self/exe`), as the flags say.
    pub fn workers(args: &EvalArgs, exe: impl Into<PathBuf>) -> Result<Self, String> {
        if args.jq_workers == 0 {
            return Err("--jq-workers must be at least 1".into());
        }
        if args.jq_memory_mib < MIN_JQ_MEMORY_MIB {
            return Err(format!(
                "--jq-memory-mib must be at least {MIN_JQ_MEMORY_MIB}"
            ));
        }
        if args.jq_timeout.is_zero() {
            return Err("--jq-timeout must be more than 0s".into());
        }
        if args.max_files == 0 {
            return Err("--max-files must be at least 1".into());
        }
        let memory_bytes = args
            .jq_memory_mib
            .checked_mul(1024 * 1024)
            .ok_or("--jq-memory-mib is too large")?;
        Ok(Evaluator {
            mode: Mode::Workers(WorkerPool::new(
                exe.into(),
                args.jq_workers,
                args.jq_timeout,
                memory_bytes,
            )),
            max_files: args.max_files,
        })
    }

    /// The same evaluator with another file cap.
    pub fn with_max_files(mut self, max_files: usize) -> Self {
        self.max_files = max_files;
        self
    }

    pub fn max_files(&self) -> usize {
        self.max_files
    }

    /// Renders a mount's objects (see [`render::render`]): `jq` filters that are not plain paths
    /// first, each in a worker bounded by time, memory and `deadline`, charged to `tenant` (the
    /// pod's namespace); then the pure stage, off the async workers when the input is large.
    #[allow(clippy::too_many_arguments)]
    pub async fn render(
        &self,
        objects: &[ObjectSpec],
        values: &[&Fetched],
        default_mode: u32,
        key: &VersionKey,
        now: SystemTime,
        max_bytes: usize,
        tenant: &str,
        deadline: Instant,
    ) -> Result<Rendered, MountError> {
        let limits = OutputLimits {
            max_bytes,
            max_files: self.max_files,
        };
        // Bytes the pure stage will read: the fetched values and the workers' answers.
        let mut input: usize = values.iter().map(|v| fetched_len(v)).sum();
        let jq = match &self.mode {
            Mode::InProcess => JqResults::InProcess,
            Mode::Workers(pool) => {
                let mut results = Vec::with_capacity(objects.len());
                // One at a time: a mount's evaluations share its namespace's slots anyway, and
                // each worker is reaped before the next starts.
                for (object, value) in objects.iter().zip(values) {
                    results.push(match (&object.extract, value) {
                        (Some(Extract::Jq(filter)), Fetched::Text(text))
                            if filter.path().is_none() =>
                        {
                            let (output, answer_bytes) = pool
                                .evaluate(
                                    filter.text(),
                                    text.expose_secret().as_bytes(),
                                    tenant,
                                    deadline,
                                    max_output(max_bytes),
                                )
                                .await
                                .map_err(|e| e.into_mount_error(object, filter.text(), pool))?;
                            input = input.saturating_add(answer_bytes);
                            Some(output)
                        }
                        _ => None,
                    });
                }
                JqResults::Evaluated(results)
            }
        };
        if input <= INLINE_RENDER_BYTES {
            return render::render(objects, values, jq, default_mode, key, now, limits);
        }
        let objects = objects.to_vec();
        let values: Vec<Fetched> = values.iter().map(|v| (*v).clone()).collect();
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&Fetched> = values.iter().collect();
            render::render(&objects, &refs, jq, default_mode, &key, now, limits)
        })
        .await
        .map_err(|e| MountError::internal(format!("rendering the mount's files failed: {e}")))?
    }
}

fn fetched_len(value: &Fetched) -> usize {
    match value {
        Fetched::Text(text) => text.expose_secret().len(),
        Fetched::Certificate(m) => m
            .certificate_pem
            .len()
            .saturating_add(m.issuer_pem.as_ref().map_or(0, String::len))
            .saturating_add(
                m.private_key_pem
                    .as_ref()
                    .map_or(0, |k| k.expose_secret().len()),
            ),
    }
}

/// Largest worker answer read: the JSON of a result that can still fit the mount (strings
/// escaped in JSON may grow, hence the factor), plus room for the framing.
fn max_output(max_bytes: usize) -> usize {
    max_bytes.saturating_mul(2).saturating_add(64 * 1024)
}

/// Worker processes: how many run at once, per namespace, and their limits.
#[derive(Debug)]
pub struct WorkerPool {
    exe: PathBuf,
    timeout: Duration,
    memory_bytes: u64,
    workers: usize,
    per_tenant: usize,
    all: Arc<Semaphore>,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A running evaluation's right to a worker: one of all the slots and one of its tenant's.
struct Slot {
    all: Option<OwnedSemaphorePermit>,
    tenant_permit: Option<OwnedSemaphorePermit>,
    tenant: String,
    tenants: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.all.take();
        self.tenant_permit.take();
        // Forget a tenant's semaphore once nobody holds or waits for it, so the map stays as
        // small as the set of namespaces evaluating right now.
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tenants
            .get(&self.tenant)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            tenants.remove(&self.tenant);
        }
    }
}

/// Why an evaluation in a worker failed.
#[derive(Debug)]
enum EvalError {
    /// No worker became free before the mount's deadline.
    NoSlot,
    /// Killed at the budget (`by_deadline: false`) or at the mount's deadline.
    TimedOut { by_deadline: bool },
    /// The worker ran out of memory (aborted on a failed allocation).
    OutOfMemory,
    /// The worker overflowed its stack.
    TooDeep,
    /// The worker went over its CPU-seconds limit.
    CpuLimit,
    /// The answer was larger than a mount may return.
    OutputTooLarge(usize),
    /// The worker could not be started.
    Spawn(std::io::Error),
    /// The worker ended without an answer.
    Crashed(ExitStatus),
    /// The worker answered with a failure.
    Failed(worker::Failure),
    /// The answer could not be read.
    Garbled,
}

impl EvalError {
    fn into_mount_error(self, object: &ObjectSpec, expr: &str, pool: &WorkerPool) -> MountError {
        let label = object.label();
        let invalid = |m: String| MountError::invalid(format!("{label}: {m}"));
        match self {
            EvalError::NoSlot => MountError::new(
                ErrorCode::Timeout,
                format!(
                    "{label}: jq expression {expr:?} waited until the mount's deadline for one of the \
                     provider's {} jq workers ({} per namespace); other mounts are evaluating jq \
                     filters, and the driver will retry",
                    pool.workers, pool.per_tenant
                ),
            ),
            EvalError::TimedOut { by_deadline: true } => MountError::new(
                ErrorCode::Timeout,
                format!(
                    "{label}: jq expression {expr:?} did not finish before the mount's deadline and was stopped"
                ),
            ),
            EvalError::TimedOut { by_deadline: false } | EvalError::CpuLimit => invalid(format!(
                "jq expression {expr:?} did not finish within {:.1}s (the provider's --jq-timeout) \
                 and was stopped; simplify it (does a generator such as range, repeat or recurse \
                 never end?)",
                pool.timeout.as_secs_f64()
            )),
            EvalError::OutOfMemory => invalid(format!(
                "jq expression {expr:?} needed more than {} MiB of memory (the provider's \
                 --jq-memory-mib) and was stopped; simplify it, or select a smaller part of the value first",
                pool.memory_bytes / (1024 * 1024)
            )),
            EvalError::TooDeep => invalid(format!(
                "jq expression {expr:?} recursed too deeply and was stopped; simplify it"
            )),
            EvalError::OutputTooLarge(limit) => invalid(format!(
                "jq expression {expr:?} produced more than {limit} bytes, more than one mount may return"
            )),
            EvalError::Failed(worker::Failure::NotJson { line, column }) => invalid(format!(
                "the value is not JSON (line {line} column {column}), so jq cannot be applied"
            )),
            EvalError::Failed(worker::Failure::TooDeep { line, column }) => invalid(format!(
                "the value is JSON nested more than {} levels deep (line {line} column {column}), so jq cannot be applied",
                crate::jq::MAX_JSON_DEPTH
            )),
            // Built by `crate::jq` from the expression and fixed words, never from the value.
            EvalError::Failed(worker::Failure::Jq(message)) => {
                invalid(message.chars().take(1000).collect())
            }
            EvalError::Failed(worker::Failure::Limits(why)) => MountError::internal(format!(
                "{label}: the jq worker could not limit itself ({why}); jq expressions cannot be evaluated safely on this node"
            )),
            EvalError::Failed(worker::Failure::BadRequest) | EvalError::Garbled => {
                MountError::internal(format!("{label}: the jq worker's answer could not be read"))
            }
            EvalError::Spawn(e) => {
                MountError::internal(format!("{label}: cannot start a jq worker process ({e})"))
            }
            EvalError::Crashed(status) => MountError::internal(format!(
                "{label}: the jq worker for expression {expr:?} ended without an answer ({status})"
            )),
        }
    }
}

impl WorkerPool {
    fn new(exe: PathBuf, workers: usize, timeout: Duration, memory_bytes: u64) -> Self {
        WorkerPool {
            exe,
            timeout,
            memory_bytes,
            workers,
            per_tenant: (workers / 2).max(1),
            all: Arc::new(Semaphore::new(workers)),
            tenants: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Waits for one of `tenant`'s share of the slots, then for one of all.
    async fn acquire(&self, tenant: &str) -> Result<Slot, EvalError> {
        let semaphore = {
            let mut tenants = self
                .tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        let mut slot = Slot {
            all: None,
            tenant_permit: None,
            tenant: tenant.to_string(),
            tenants: self.tenants.clone(),
        };
        slot.tenant_permit = Some(
            semaphore
                .acquire_owned()
                .await
                .map_err(|_| EvalError::NoSlot)?,
        );
        slot.all = Some(
            self.all
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| EvalError::NoSlot)?,
        );
        Ok(slot)
    }

    /// Runs `filter` on `input` in a worker: the result, and the size of the worker's answer.
    /// The worker is gone (killed and reaped) when this returns.
    async fn evaluate(
        &self,
        filter: &str,
        input: &[u8],
        tenant: &str,
        deadline: Instant,
        max_output: usize,
    ) -> Result<(serde_json::Value, usize), EvalError> {
        let stop = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
        let _slot = tokio::time::timeout_at(stop.into(), self.acquire(tenant))
            .await
            .map_err(|_| EvalError::NoSlot)??;
        let budget_end = Instant::now().checked_add(self.timeout).unwrap_or(stop);
        let (kill_at, by_deadline) = if stop <= budget_end {
            (stop, true)
        } else {
            (budget_end, false)
        };
        let cpu_seconds = self.timeout.as_secs().saturating_add(2);
        let mut child = tokio::process::Command::new(&self.exe)
            .arg(WORKER_SUBCOMMAND)
            .arg("--memory-bytes")
            .arg(self.memory_bytes.to_string())
            .arg("--cpu-seconds")
            .arg(cpu_seconds.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(EvalError::Spawn)?;
        let exchanged = tokio::time::timeout_at(
            kill_at.into(),
            exchange(&mut child, filter, input, max_output),
        )
        .await;
        let (output, status) = match exchanged {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                let _ = child.kill().await;
                return Err(e);
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(EvalError::TimedOut { by_deadline });
            }
        };
        if !status.success() {
            return Err(match status.signal() {
                Some(SIGABRT) => EvalError::OutOfMemory,
                Some(SIGSEGV | SIGBUS) => EvalError::TooDeep,
                Some(SIGXCPU | SIGKILL) => EvalError::CpuLimit,
                _ => EvalError::Crashed(status),
            });
        }
        let value = worker::Answer::decode(&output)
            .map_err(|worker::Garbled| EvalError::Garbled)?
            .into_result()
            .map_err(EvalError::Failed)?;
        Ok((value, output.len()))
    }
}

const SIGABRT: i32 = rustix::process::Signal::ABORT.as_raw();
const SIGBUS: i32 = rustix::process::Signal::BUS.as_raw();
const SIGKILL: i32 = rustix::process::Signal::KILL.as_raw();
const SIGSEGV: i32 = rustix::process::Signal::SEGV.as_raw();
const SIGXCPU: i32 = rustix::process::Signal::XCPU.as_raw();

/// Sends the request and reads the answer (at most `max_output` bytes), then waits for the
/// worker to exit.
async fn exchange(
    child: &mut tokio::process::Child,
    filter: &str,
    input: &[u8],
    max_output: usize,
) -> Result<(Vec<u8>, ExitStatus), EvalError> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A worker that stops reading (it failed, or hit a limit) is told apart by its
            // exit status, so write errors need no handling of their own.
            let _ = stdin.write_all(&worker::request_header(filter)).await;
            let _ = stdin.write_all(filter.as_bytes()).await;
            let _ = stdin.write_all(input).await;
            let _ = stdin.shutdown().await;
        }
    };
    let read = async move {
        let mut output = Vec::new();
        if let Some(stdout) = stdout {
            let limit = u64::try_from(max_output)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let _ = stdout.take(limit).read_to_end(&mut output).await;
        }
        output
    };
    let ((), output) = tokio::join!(write, read);
    if output.len() > max_output {
        return Err(EvalError::OutputTooLarge(max_output));
    }
    let status = child.wait().await.map_err(|_| EvalError::Garbled)?;
    Ok((output, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize) -> WorkerPool {
        WorkerPool::new(
            PathBuf::from("/nonexistent"),
            workers,
            Duration::from_secs(1),
            1 << 20,
        )
    }

    #[tokio::test]
    async fn one_namespace_gets_at_most_half_of_the_workers() {
        let pool = pool(4);
        let a1 = pool.acquire("team-a").await.unwrap();
        let _a2 = pool.acquire("team-a").await.unwrap();
        // team-a holds its share: a third waits, while team-b still gets the other two.
        let third = tokio::time::timeout(Duration::from_millis(50), pool.acquire("team-a")).await;
        assert!(third.is_err(), "a namespace got more than half the workers");
        let _b1 = pool.acquire("team-b").await.unwrap();
        let _b2 = pool.acquire("team-b").await.unwrap();
        // All four taken: team-c waits until one is released.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), pool.acquire("team-c"))
                .await
                .is_err()
        );
        drop(a1);
        let _c = tokio::time::timeout(Duration::from_secs(5), pool.acquire("team-c"))
            .await
            .expect("a released slot is handed on")
            .unwrap();
    }

    #[tokio::test]
    async fn idle_namespaces_are_forgotten() {
        let pool = pool(2);
        for i in 0..100 {
            let _slot = pool.acquire(&format!("ns-{i}")).await.unwrap();
        }
        assert_eq!(pool.tenants.lock().unwrap().len(), 0);
        let held = pool.acquire("held").await.unwrap();
        assert_eq!(pool.tenants.lock().unwrap().len(), 1);
        drop(held);
        assert_eq!(pool.tenants.lock().unwrap().len(), 0);
    }

    #[test]
    fn a_single_worker_is_shared() {
        assert_eq!(pool(1).per_tenant, 1);
        assert_eq!(pool(2).per_tenant, 1);
        assert_eq!(pool(3).per_tenant, 1);
        assert_eq!(pool(8).per_tenant, 4);
    }

    #[test]
    fn flags_are_checked() {
        let ok = EvalArgs::default();
        assert!(Evaluator::workers(&ok, "/proc/self/exe").is_ok());
        for bad in [
            EvalArgs {
                jq_workers: 0,
                ..EvalArgs::default()
            },
            EvalArgs {
                jq_memory_mib: 1,
                ..EvalArgs::default()
            },
            EvalArgs {
                jq_timeout: Duration::ZERO,
                ..EvalArgs::default()
            },
            EvalArgs {
                max_files: 0,
                ..EvalArgs::default()
            },
        ] {
            assert!(
                Evaluator::workers(&bad, "/proc/self/exe").is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_worker_binary_is_an_internal_error_naming_the_object() {
        let evaluator = Evaluator::workers(&EvalArgs::default(), "/nonexistent/binary").unwrap();
        let mut object = ObjectSpec::new("/a", "a");
        object.extract = Some(Extract::Jq(crate::jq::JqFilter::new(".a | length")));
        let value = Fetched::Text(crate::secret::SecretString::from(
            r#"{"a":[1]}"#.to_string(),
        ));
        let e = evaluator
            .render(
                &[object],
                &[&value],
                0o644,
                &VersionKey::random(),
                SystemTime::now(),
                usize::MAX,
                "ns",
                Instant::now() + Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.message.contains("object \"a\""), "{e}");
        assert!(e.message.contains("cannot start a jq worker"), "{e}");
    }
}
