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

mod pool;
pub mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::error::MountError;
use crate::render::{
    self, DEFAULT_MAX_FILES, Fetched, JqResults, OutputLimits, Rendered, VersionKey,
};
use crate::secret::ExposeSecret;
use crate::spec::{Extract, ObjectSpec};

use pool::WorkerPool;
pub use worker::WorkerArgs;

/// Name of the hidden subcommand that runs one evaluation.
pub const WORKER_SUBCOMMAND: &str = "__eval-worker";

/// Inputs up to this many bytes (all objects of a mount together) are rendered on the calling
/// task: well under a millisecond of work. Larger ones go to the blocking pool.
pub(crate) const INLINE_RENDER_BYTES: usize = 16 * 1024;

/// Workers are stopped this long before the mount's deadline, so the mount fails with its own
/// error naming the object (after the worker is reaped) rather than the server's generic
/// deadline error; generous, because a busy node may run the provider's timers late.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// Default of `--jq-timeout`.
pub(crate) const DEFAULT_JQ_TIMEOUT: Duration = Duration::from_secs(2);
/// Default of `--jq-workers`.
pub(crate) const DEFAULT_JQ_WORKERS: usize = 2;
/// Default of `--jq-memory-mib`.
pub(crate) const DEFAULT_JQ_MEMORY_MIB: u64 = 24;
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
pub(crate) struct Evaluator {
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
    pub(crate) fn in_process() -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

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
