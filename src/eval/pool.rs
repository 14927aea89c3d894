//! The worker pool: jq filters that are not plain paths run in a child process each, at most
//! `--jq-workers` at once and half of them per namespace, killed at the budget or the mount's
//! deadline (see the module above for why).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, MountError};
use crate::spec::ObjectSpec;

use super::{DEADLINE_MARGIN, WORKER_SUBCOMMAND, worker};

/// Worker processes: how many run at once, per namespace, and their limits.
#[derive(Debug)]
pub(crate) struct WorkerPool {
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
pub(super) enum EvalError {
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
    pub(super) fn into_mount_error(
        self,
        object: &ObjectSpec,
        expr: &str,
        pool: &WorkerPool,
    ) -> MountError {
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
    pub(super) fn new(exe: PathBuf, workers: usize, timeout: Duration, memory_bytes: u64) -> Self {
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
    pub(super) async fn evaluate(
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
}
