//! Criterion micro-benchmarks of the two pure stages of a mount: parsing a 10-object
//! SecretProviderClass (`spec::parse_mount`, and the wire decoding before it) and rendering 10
//! fetched values into files (`render::render`, including a JSON `key` and a `jq` extraction).
//! Also: the same render with the `jq` object a plain path (evaluated without jaq), and one
//! evaluation in a jq worker process (what a mount pays for a `jq` that isn't a plain path).
//! Run: `cargo bench --bench parse_render`; figures in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::SystemTime;

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_csi_provider::eval::worker;
use akeyless_csi_provider::render::{self, Fetched, JqResults, OutputLimits, VersionKey};
use akeyless_csi_provider::request::MountRequest;
use akeyless_csi_provider::secret::SecretString;
use akeyless_csi_provider::spec::{self, SpecDefaults};
use criterion::{Criterion, criterion_group, criterion_main};

/// Ten objects in the shapes users write: plain, pinned versions, modes, a JSON key, a jq
/// expression, base64 decoding.
const OBJECTS: &str = "\
- secretPath: /prod/app/db-password
  fileName: db-password
  type: static
- secretPath: /prod/app/db
  fileName: db-user
  type: static
  key: username
- secretPath: /prod/app/db
  fileName: db-url
  type: static
  jq: '\"postgres://\" + .username + \"@\" + .host'
- secretPath: /prod/app/api-key
  fileName: api-key
  type: static
  version: 3
- secretPath: /prod/app/tls-key
  fileName: tls/key.pem
  type: static
  mode: \"0400\"
- secretPath: /prod/app/blob
  fileName: blob.bin
  type: static
  encoding: base64
- secretPath: /prod/app/feature-flags
  fileName: flags.json
  type: static
- secretPath: /prod/app/smtp
  fileName: smtp-password
  type: static
  key: password
- secretPath: /prod/app/queue
  fileName: queue-url
  type: static
- secretPath: /prod/app/license
  fileName: license.txt
  type: static
";

/// The same objects with the `jq` expression replaced by a plain path (no jaq).
fn objects_with_jq_path() -> String {
    OBJECTS.replace(
        "  jq: '\"postgres://\" + .username + \"@\" + .host'",
        "  jq: .host",
    )
}

/// The same objects with the `jq` expression replaced by a `key`, to show what jq costs.
fn objects_without_jq() -> String {
    OBJECTS.replace(
        "  jq: '\"postgres://\" + .username + \"@\" + .host'",
        "  key: host",
    )
}

fn request(objects: &str) -> MountRequest {
    let params: BTreeMap<String, String> = [
        ("akeylessGatewayURL", "https://gw.example:8000/api/v2"),
        ("akeylessAccessID", "p-bench00000001"),
        ("objects", objects),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secret: BTreeMap<String, String> =
        [("akeylessAccessKey".to_string(), "bench-key".to_string())].into();
    let pod = SimulatedPod::new("bench", "web-0", "uid-bench-0", "web");
    let wire = driver::mount_request("spc", &params, &pod, &[], Some(&secret));
    MountRequest::decode(&wire).expect("valid request")
}

fn parsing(c: &mut Criterion) {
    let defaults = SpecDefaults::default();
    let req = request(OBJECTS);
    c.bench_function("parse_mount/10_objects", |b| {
        b.iter(|| spec::parse_mount(black_box(&req), &defaults).expect("valid SPC"))
    });
    let no_jq = objects_without_jq();
    assert!(!no_jq.contains("jq:"));
    let req = request(&no_jq);
    c.bench_function("parse_mount/10_objects_without_jq", |b| {
        b.iter(|| spec::parse_mount(black_box(&req), &defaults).expect("valid SPC"))
    });
    let params: BTreeMap<String, String> = [
        ("akeylessAccessID", "p-bench00000001"),
        ("objects", OBJECTS),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secret: BTreeMap<String, String> =
        [("akeylessAccessKey".to_string(), "bench-key".to_string())].into();
    let pod = SimulatedPod::new("bench", "web-0", "uid-bench-0", "web");
    let wire = driver::mount_request("spc", &params, &pod, &[], Some(&secret));
    c.bench_function("decode_and_parse_mount/10_objects", |b| {
        b.iter(|| {
            let req = MountRequest::decode(black_box(&wire)).expect("valid request");
            spec::parse_mount(&req, &defaults).expect("valid SPC")
        })
    });
}

fn rendering(c: &mut Criterion) {
    let (spec, _) =
        spec::parse_mount(&request(OBJECTS), &SpecDefaults::default()).expect("valid SPC");
    let (no_jq, _) = spec::parse_mount(&request(&objects_without_jq()), &SpecDefaults::default())
        .expect("valid SPC");
    let text = |s: &str| Fetched::Text(SecretString::from(s.to_string()));
    let db = r#"{"username":"app","password":"pw","host":"db.internal:5432"}"#;
    let values: Vec<Fetched> = vec![
        text("s3cr3t-password"),
        text(db),
        text(db),
        text("api-key-0123456789abcdef"),
        text("-----BEGIN PRIVATE KEY-----\nMIIB...\n-----END PRIVATE KEY-----\n"),
        text("aGVsbG8gd29ybGQ="),
        text(r#"{"a":true,"b":false,"c":{"d":[1,2,3]}}"#),
        text(r#"{"user":"mailer","password":"smtp-pw"}"#),
        text("amqp://queue.internal:5672"),
        text(&"license-line\n".repeat(40)),
    ];
    let refs: Vec<&Fetched> = values.iter().collect();
    let key = VersionKey::new(vec![7; 32]);
    let now = SystemTime::now();
    let (jq_path, _) =
        spec::parse_mount(&request(&objects_with_jq_path()), &SpecDefaults::default())
            .expect("valid SPC");
    let limits = OutputLimits {
        max_bytes: SpecDefaults::default().max_mount_bytes,
        max_files: render::DEFAULT_MAX_FILES,
    };
    let run = |objects| {
        render::render(
            objects,
            &refs,
            JqResults::InProcess,
            0o644,
            &key,
            now,
            limits,
        )
        .expect("renders")
    };
    c.bench_function("render/10_objects", |b| {
        b.iter(|| run(black_box(&spec.objects)))
    });
    c.bench_function("render/10_objects_jq_plain_path", |b| {
        b.iter(|| run(black_box(&jq_path.objects)))
    });
    c.bench_function("render/10_objects_without_jq", |b| {
        b.iter(|| run(black_box(&no_jq.objects)))
    });
}

/// One evaluation in a worker process, as a mount runs it: start the binary, send the request,
/// read the answer, reap it.
fn worker_round_trip(c: &mut Criterion) {
    use std::io::{Read, Write};
    let filter = r#""postgres://" + .username + "@" + .host"#;
    let mut request = worker::request_header(filter).to_vec();
    request.extend(filter.as_bytes());
    request.extend(br#"{"username":"app","password":"pw","host":"db.internal:5432"}"#);
    let pid = std::process::id().to_string();
    c.bench_function("jq_worker/one_evaluation", |b| {
        b.iter(|| {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_akeyless-csi-provider"))
                .args([
                    akeyless_csi_provider::eval::WORKER_SUBCOMMAND,
                    "--memory-bytes",
                ])
                .arg((24u64 << 20).to_string())
                .args(["--cpu-seconds", "4", "--parent-pid", &pid])
                .env_clear()
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("worker");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&request).expect("request");
            drop(stdin);
            let mut answer = Vec::new();
            child
                .stdout
                .take()
                .expect("stdout")
                .read_to_end(&mut answer)
                .expect("answer");
            child.wait().expect("exit");
            assert_eq!(
                worker::Answer::decode(&answer),
                Ok(worker::Answer::Value(serde_json::json!(
                    "postgres://app@db.internal:5432"
                )))
            );
        })
    });
}

criterion_group!(benches, parsing, rendering, worker_round_trip);
criterion_main!(benches);
