//! Bounded evaluation against the real binary over its real socket: runaway `jq` filters,
//! memory bombs, deep nesting and huge `explode`s get a provider error code (never a reset
//! stream), the process stays up, no jq worker outlives its answer, and `Version` and ordinary
//! mounts are served while runaway filters run.

mod common;

use std::time::Duration;

use akeyless_csi_provider::driver;
use akeyless_csi_provider::proto;
use common::*;
use tonic::Code;

/// The provider's direct children, as (pid, state) from /proc (a worker is a child while it
/// runs, and until it is reaped).
fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let name = entry.expect("entry").file_name();
        let Some(child) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Processes may end while we look.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid {
            children.push((child, state));
        }
    }
    children
}

async fn fixture(args: &[&str]) -> Fixture {
    let f = Fixture::with_args(args).await;
    f.state().add_access_key_auth(ACCESS_ID, ACCESS_KEY);
    f.state().grant_read(ACCESS_ID, "/*", &[]);
    f.state().put_static_secret(
        "/apps/json",
        r#"{"a":{"b":"value-b"},"list":[1,2,3],"user":"s3cr3t-user","host":"db"}"#,
    );
    f.state().put_static_secret("/apps/plain", "plain-value");
    f
}

/// A request for one object with `extra` YAML lines, from its own pod (and namespace).
fn request(namespace: &str, file: &str, item: &str, extra: &str) -> proto::MountRequest {
    let objects = format!("- secretPath: {item}\n  fileName: {file}\n  type: static\n{extra}");
    access_key_request_as(&objects, &pod(namespace, file))
}

fn jq_line(expr: &str) -> String {
    format!("  jq: {}\n", serde_json::to_string(expr).unwrap())
}

async fn version(f: &Fixture) -> Result<proto::VersionResponse, tonic::Status> {
    f.provider
        .client()
        .await
        .version(proto::VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Filters a tenant may write that never end, or grow without bound.
const RUNAWAY: &[&str] = &[
    "last(range(1e18))",
    "[limit(1e9; repeat(.a))]",
    "def f: f; f",
    "[range(1e9)] | length",
    "[repeat(.)] | length",
    "reduce range(1e9) as $i (0; . + $i)",
];

/// Filters that blow up memory or the stack rather than time.
const BOMBS: &[&str] = &[
    // Doubling a string 60 times: 2^60 bytes.
    "reduce range(60) as $i (\"x\"; . + .)",
    "[range(1e8) | tostring] | add",
    "def f: [f]; f",
    "def f: 1 + f; f",
    "[.. , .. , ..] as $x | [range(1e9) | $x]",
    "[range(1e7)] | tostring | [., ., ., ., .] | add | length",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_filters_fail_their_mount_while_others_are_served_and_no_worker_outlives_them() {
    let mut f = fixture(&["--jq-timeout", "2s"]).await;
    let pid = f.provider.pid();
    let mut hostile = Vec::new();
    for (i, expr) in RUNAWAY.iter().enumerate() {
        let req = request(
            &format!("tenant-{i}"),
            &format!("h{i}"),
            "/apps/json",
            &jq_line(expr),
        );
        let socket = f.provider.socket.clone();
        hostile.push(tokio::spawn(async move {
            let mut client = driver::connect(&socket).await.unwrap();
            let mut req = tonic::Request::new(req);
            req.set_timeout(Duration::from_secs(30));
            client.mount(req).await.map(tonic::Response::into_inner)
        }));
    }

    // Wait (for the condition, not a fixed time) until workers are evaluating.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while children_of(pid).iter().all(|(_, state)| *state == 'Z') {
        assert!(std::time::Instant::now() < deadline, "no jq worker started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // While they run: Version, a mount without jq and a plain-path jq mount are answered.
    let v = version(&f)
        .await
        .expect("Version while runaway filters run");
    assert_eq!(v.runtime_name, "akeyless-csi-provider");
    let plain = f
        .mount(request("calm", "plain", "/apps/plain", ""))
        .await
        .expect("an ordinary mount while runaway filters run");
    assert_eq!(
        files(&plain),
        vec![("plain".into(), 0o644, "plain-value".into())]
    );
    let path = f
        .mount(request("calm", "b", "/apps/json", &jq_line(".a.b")))
        .await
        .expect("a plain-path jq mount while runaway filters run");
    assert_eq!(files(&path), vec![("b".into(), 0o644, "value-b".into())]);
    // ...and they were answered while the runaway filters were still running.
    assert!(
        hostile.iter().any(|h| !h.is_finished()),
        "the runaway mounts were all over before the calm ones were answered"
    );
    assert!(
        children_of(pid).iter().any(|(_, state)| *state != 'Z'),
        "no worker was running any more"
    );

    for (i, (h, expr)) in hostile.into_iter().zip(RUNAWAY).enumerate() {
        let msg = expect_error(h.await.unwrap(), Code::InvalidArgument, "InvalidConfig");
        assert!(msg.contains(&format!("object \"h{i}\"")), "{expr}: {msg}");
        // Stopped at the budget, or (those that also grow) at the memory limit first.
        assert!(
            (msg.contains("did not finish within 2.0s") && msg.contains("--jq-timeout"))
                || msg.contains("--jq-memory-mib"),
            "{expr}: {msg}"
        );
    }
    // Every worker was killed and reaped before its mount was answered.
    assert_eq!(children_of(pid), vec![], "workers left after the answers");
    assert!(f.provider.try_wait().is_none(), "the provider exited");
    version(&f)
        .await
        .expect("Version after the runaway filters");
    let logs = f.provider.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_stack_bombs_fail_their_mount_and_the_provider_stays_up() {
    let mut f = fixture(&["--jq-timeout", "5s", "--jq-memory-mib", "24"]).await;
    let pid = f.provider.pid();
    for (i, expr) in BOMBS.iter().enumerate() {
        let req = request(
            &format!("bomb-{i}"),
            &format!("b{i}"),
            "/apps/json",
            &jq_line(expr),
        );
        let msg = expect_error(f.mount(req).await, Code::InvalidArgument, "InvalidConfig");
        assert!(msg.contains(&format!("object \"b{i}\"")), "{expr}: {msg}");
        assert!(
            msg.contains("--jq-memory-mib")
                || msg.contains("recursed too deeply")
                || msg.contains("--jq-timeout"),
            "{expr}: {msg}"
        );
        assert_eq!(
            children_of(pid),
            vec![],
            "{expr}: a worker outlived its answer"
        );
    }
    assert!(f.provider.try_wait().is_none(), "the provider exited");
    // An honest filter still works afterwards, through a worker.
    let ok = f
        .mount(request(
            "calm",
            "dsn",
            "/apps/json",
            &jq_line(r#""\(.user)@\(.host)""#),
        ))
        .await
        .expect("an honest jq mount");
    assert_eq!(
        files(&ok),
        vec![("dsn".into(), 0o644, "s3cr3t-user@db".into())]
    );
    // A failing filter's message names the object but never quotes the value.
    let msg = expect_error(
        f.mount(request(
            "calm",
            "n",
            "/apps/json",
            &jq_line(".user | tonumber"),
        ))
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("object \"n\"") && !msg.contains("s3cr3t"),
        "{msg}"
    );
    assert!(!f.provider.logs().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_is_stopped_at_the_mounts_deadline_when_that_comes_first() {
    let f = fixture(&["--jq-timeout", "60s"]).await;
    let pid = f.provider.pid();
    let started = std::time::Instant::now();
    let msg = expect_error(
        f.mount_with_timeout(
            request("late", "late", "/apps/json", &jq_line("last(range(1e18))")),
            Some(Duration::from_secs(2)),
        )
        .await,
        Code::DeadlineExceeded,
        "Timeout",
    );
    assert!(msg.contains("object \"late\""), "{msg}");
    assert!(msg.contains("before the mount's deadline"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(children_of(pid), vec![]);
}

/// `depth` nested arrays, as JSON text.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let mut f = fixture(&[]).await;
    let deep = format!("{{\"a\":{}}}", nested(200_000));
    f.state().put_static_secret("/apps/deep", &deep);
    // A secret's value, through key, a plain path, a worker filter and explode.
    for (file, extra) in [
        ("k", "  key: a\n".to_string()),
        ("p", jq_line(".a")),
        ("j", jq_line(".a | length")),
        ("e", "  explode: true\n".to_string()),
    ] {
        let msg = expect_error(
            f.mount(request("deep", file, "/apps/deep", &extra)).await,
            Code::InvalidArgument,
            "InvalidConfig",
        );
        assert!(
            msg.contains(&format!("object \"{file}\""))
                && msg.contains("nested more than 127 levels"),
            "{file}: {msg}"
        );
    }
    // The SPC's objects YAML.
    let yaml = format!(
        "- secretPath: /apps/plain\n  secretArgs: {}\n",
        nested(200_000)
    );
    let msg = expect_error(
        f.mount(access_key_request(&yaml)).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("nests [ ] or { } 200000 levels deep"), "{msg}");
    // The driver's attributes and secrets JSON.
    let mut attributes = access_key_request("- secretPath: /apps/plain\n");
    attributes.attributes = format!("{{\"objects\":{}}}", nested(200_000));
    let msg = expect_error(
        f.mount(attributes).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("attributes"), "{msg}");
    let mut secrets = access_key_request("- secretPath: /apps/plain\n");
    secrets.secrets = nested(200_000);
    let msg = expect_error(
        f.mount(secrets).await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(msg.contains("secrets"), "{msg}");

    assert!(f.provider.try_wait().is_none(), "the provider exited");
    version(&f).await.expect("Version afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explode_is_capped_by_max_files() {
    let f = fixture(&["--max-files", "3"]).await;
    f.state()
        .put_static_secret("/apps/four", r#"{"a":"1","b":"2","c":"3","d":"4"}"#);
    f.state()
        .put_static_secret("/apps/three", r#"{"a":"1","b":"2","c":"3"}"#);
    let ok = f
        .mount(request("x", "d", "/apps/three", "  explode: true\n"))
        .await
        .expect("three files");
    assert_eq!(ok.files.len(), 3);
    let msg = expect_error(
        f.mount(request("x", "d", "/apps/four", "  explode: true\n"))
            .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("object \"d\"") && msg.contains("4 keys") && msg.contains("--max-files"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explode_of_two_hundred_thousand_keys_is_answered() {
    let f = fixture(&[]).await;
    let mut value = String::from("{");
    for i in 0..200_000 {
        if i > 0 {
            value.push(',');
        }
        value.push_str(&format!("\"k{i}\":\"v\""));
    }
    value.push('}');
    f.state().put_static_secret("/apps/huge", &value);
    // The default --max-files refuses it at once, naming the object and the flag.
    let msg = expect_error(
        f.mount_with_timeout(
            request("x", "all", "/apps/huge", "  explode: true\n"),
            Some(Duration::from_secs(30)),
        )
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("object \"all\"")
            && msg.contains("200000 keys")
            && msg.contains("--max-files"),
        "{msg}"
    );
    drop(f);

    // With the cap raised, the 200,000 files are rendered (and fail only the byte limit the
    // driver imposes, here lowered so the answer stays small).
    let f = fixture(&["--max-files", "300000", "--max-mount-bytes", "100000"]).await;
    f.state().put_static_secret("/apps/huge", &value);
    let msg = expect_error(
        f.mount_with_timeout(
            request("x", "all", "/apps/huge", "  explode: true\n"),
            Some(Duration::from_secs(30)),
        )
        .await,
        Code::InvalidArgument,
        "InvalidConfig",
    );
    assert!(
        msg.contains("files total") && msg.contains("--max-mount-bytes"),
        "{msg}"
    );
}
