//! The evaluation worker: one `jq` evaluation in a process of its own (the hidden
//! `__eval-worker` subcommand; see the parent module for why).
//!
//! Protocol. stdin: the filter's length in bytes (4 bytes, big-endian), the filter, then the raw
//! value until end of input. stdout: `V` and the result as JSON, or `E` and a [`Failure`] as
//! JSON. The exit status is 0 whenever an answer was written. Nothing is ever written to stderr
//! by this code, and the provider discards the worker's stderr anyway, so the value can't leak
//! through a message.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// Arguments the provider passes (never a user).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Heap limit (RLIMIT_DATA), in bytes.
    #[arg(long)]
    pub memory_bytes: u64,
    /// CPU time limit (RLIMIT_CPU), in seconds: a backstop for the provider's own kill.
    #[arg(long)]
    pub cpu_seconds: u64,
    /// The provider's process ID: the worker dies with it.
    #[arg(long)]
    pub parent_pid: i32,
}

/// Why an evaluation failed, as the worker reports it. Never holds any part of the value.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Failure {
    /// The value is not JSON; where the parser stopped.
    NotJson { line: usize, column: usize },
    /// The value nests deeper than serde_json's limit.
    TooDeep { line: usize, column: usize },
    /// jq failed (compile or runtime): a message from `crate::jq`, built from the expression
    /// and fixed words only.
    Jq(String),
    /// The request could not be read.
    BadRequest,
    /// The worker could not set its own limits, so it did not evaluate.
    Limits(String),
}

/// Bytes that are not a worker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garbled;

/// A worker's answer.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Value(serde_json::Value),
    Failure(Failure),
}

impl Answer {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Answer::Value(v) => (b'V', serde_json::to_vec(v)),
            Answer::Failure(f) => (b'E', serde_json::to_vec(f)),
        };
        let mut out = vec![tag];
        match body {
            Ok(body) => out.extend(body),
            // Serializing a JSON value or a plain enum cannot fail; answer something readable.
            Err(_) => return b"E\"BadRequest\"".to_vec(),
        }
        out
    }

    /// Reads an answer (JSON at most [`crate::jq::MAX_JSON_DEPTH`] levels deep).
    pub fn decode(bytes: &[u8]) -> Result<Answer, Garbled> {
        match bytes.split_first() {
            Some((b'V', body)) => serde_json::from_slice(body)
                .map(Answer::Value)
                .map_err(|_| Garbled),
            Some((b'E', body)) => serde_json::from_slice(body)
                .map(Answer::Failure)
                .map_err(|_| Garbled),
            _ => Err(Garbled),
        }
    }

    pub(crate) fn into_result(self) -> Result<serde_json::Value, Failure> {
        match self {
            Answer::Value(v) => Ok(v),
            Answer::Failure(f) => Err(f),
        }
    }
}

/// The 4-byte header of a request for `filter`.
pub fn request_header(filter: &str) -> [u8; 4] {
    u32::try_from(filter.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
}

/// Splits a request into the filter and the value.
pub fn split_request(request: &[u8]) -> Option<(&str, &[u8])> {
    let (header, rest) = request.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*header)).ok()?;
    let filter = rest.get(..len)?;
    let value = rest.get(len..)?;
    Some((std::str::from_utf8(filter).ok()?, value))
}

/// Evaluates one request in this process (what the worker does once its limits are set).
pub fn evaluate(request: &[u8]) -> Answer {
    let Some((filter, raw)) = split_request(request) else {
        return Answer::Failure(Failure::BadRequest);
    };
    let value: serde_json::Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) if crate::jq::is_too_deep(&e) => {
            return Answer::Failure(Failure::TooDeep {
                line: e.line(),
                column: e.column(),
            });
        }
        Err(e) => {
            return Answer::Failure(Failure::NotJson {
                line: e.line(),
                column: e.column(),
            });
        }
    };
    // A panic inside jaq (an arithmetic corner, say) is an answer, not a crash.
    match std::panic::catch_unwind(|| crate::jq::apply(filter, &value)) {
        Ok(Ok(v)) => Answer::Value(v),
        Ok(Err(message)) => Answer::Failure(Failure::Jq(message)),
        Err(_) => Answer::Failure(Failure::Jq(format!(
            "jq expression {filter:?} failed on the value (the evaluator gave up on it)"
        ))),
    }
}

/// Nice value of workers: well below the provider's threads, which serve `Version` and
/// every other mount.
const NICE: i32 = 10;
/// Stack limit (RLIMIT_STACK), when the inherited one is larger.
const STACK_BYTES: u64 = 8 * 1024 * 1024;
/// Address space beyond the heap limit: the mapped binary and libraries, stack, vdso.
const ADDRESS_SPACE_HEADROOM: u64 = 256 * 1024 * 1024;
/// Open files: stdin, stdout, stderr and a few spare.
const OPEN_FILES: u64 = 8;

/// Lowers this process's priority and limits (before it reads any input), and has it killed
/// when the provider dies. Limits only ever go down: a hard limit below the asked one is kept.
fn limit_self(args: &WorkerArgs) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, Signal, getrlimit, setrlimit};
    let set = |resource: Resource, name: &str, value: u64| -> Result<(), String> {
        let value = match getrlimit(resource).maximum {
            Some(hard) => value.min(hard),
            None => value,
        };
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
        .map_err(|e| format!("{name}: {e}"))
    };
    // Best effort: a worker that runs at the provider's priority is still bounded in time.
    let _ = rustix::process::setpriority_process(None, NICE);
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    // The provider may have died before the line above: then nobody waits for this answer.
    match rustix::process::getppid() {
        Some(parent) if parent.as_raw_nonzero().get() == args.parent_pid => {}
        _ => return Err("the provider is gone".into()),
    }
    set(Resource::Core, "RLIMIT_CORE", 0)?;
    set(Resource::Fsize, "RLIMIT_FSIZE", 0)?;
    set(Resource::Nproc, "RLIMIT_NPROC", 0)?;
    set(Resource::Nofile, "RLIMIT_NOFILE", OPEN_FILES)?;
    set(Resource::Stack, "RLIMIT_STACK", STACK_BYTES)?;
    set(Resource::Data, "RLIMIT_DATA", args.memory_bytes)?;
    set(
        Resource::As,
        "RLIMIT_AS",
        args.memory_bytes.saturating_add(ADDRESS_SPACE_HEADROOM),
    )?;
    set(Resource::Cpu, "RLIMIT_CPU", args.cpu_seconds.max(1))?;
    Ok(())
}

/// The worker's command line alone (`<binary> __eval-worker --memory-bytes …`).
#[derive(clap::Parser, Debug)]
#[command(name = "akeyless-csi-provider")]
struct WorkerCommandLine {
    #[command(subcommand)]
    command: WorkerCommand,
}

#[derive(clap::Subcommand, Debug)]
enum WorkerCommand {
    #[command(name = super::WORKER_SUBCOMMAND)]
    EvalWorker(WorkerArgs),
}

/// `main` of the worker: parses only its own arguments, then [`run`].
pub fn main() -> ExitCode {
    use clap::Parser;
    match WorkerCommandLine::try_parse() {
        Ok(WorkerCommandLine {
            command: WorkerCommand::EvalWorker(args),
        }) => run(&args),
        Err(_) => ExitCode::FAILURE,
    }
}

/// The `__eval-worker` subcommand: limits itself, evaluates one request from stdin, answers on
/// stdout.
pub fn run(args: &WorkerArgs) -> ExitCode {
    // Panics are answered (see `evaluate`); the default hook would print to stderr, which the
    // provider discards anyway.
    std::panic::set_hook(Box::new(|_| {}));
    let answer = match limit_self(args) {
        Err(why) => Answer::Failure(Failure::Limits(why)),
        Ok(()) => {
            let mut request = Vec::new();
            match std::io::stdin().lock().read_to_end(&mut request) {
                Ok(_) => evaluate(&request),
                Err(_) => Answer::Failure(Failure::BadRequest),
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&answer.encode())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(filter: &str, value: &str) -> Vec<u8> {
        let mut r = request_header(filter).to_vec();
        r.extend(filter.as_bytes());
        r.extend(value.as_bytes());
        r
    }

    fn roundtrip(answer: &Answer) -> Answer {
        Answer::decode(&answer.encode()).unwrap()
    }

    #[test]
    fn requests_and_answers_round_trip() {
        assert_eq!(
            split_request(&request(".a", "{}")),
            Some((".a", &b"{}"[..]))
        );
        assert_eq!(split_request(&request("", "")), Some(("", &b""[..])));
        assert_eq!(split_request(b"\0\0\0\x05.a"), None);
        assert_eq!(split_request(b"\0\0"), None);
        let a = evaluate(&request(
            r#""\(.user)@\(.host)""#,
            r#"{"user":"u","host":"h"}"#,
        ));
        assert_eq!(a, Answer::Value(json!("u@h")));
        assert_eq!(roundtrip(&a), a);
        let f = Answer::Failure(Failure::Jq("x".into()));
        assert_eq!(roundtrip(&f), f);
        assert!(Answer::decode(b"").is_err());
        assert!(Answer::decode(b"Xnope").is_err());
        assert!(Answer::decode(b"V{").is_err());
    }

    #[test]
    fn failures_never_quote_the_value() {
        for (filter, value) in [
            (".a | tonumber", r#"{"a":"hunter2"}"#),
            ("error", r#""hunter2""#),
            (".[]", r#"["hunter2","hunter2"]"#),
            (".", "hunter2 is not json"),
            (".a | error(.)", r#"{"a":"hunter2"}"#),
        ] {
            let answer = evaluate(&request(filter, value));
            assert!(matches!(answer, Answer::Failure(_)), "{filter}: {answer:?}");
            let bytes = answer.encode();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("hunter2"),
                "{filter}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn deep_values_are_a_failure() {
        let deep = "[".repeat(200_000);
        assert!(matches!(
            evaluate(&request(".", &deep)),
            Answer::Failure(Failure::TooDeep { .. })
        ));
        // A result nested deeper than the answer may be is refused inside the worker.
        assert!(matches!(
            evaluate(&request("reduce range(200) as $i (0; [.])", "null")),
            Answer::Failure(Failure::Jq(m)) if m.contains("nested more than 127 levels")
        ));
    }
}
