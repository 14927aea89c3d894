//! `demo`: the whole main job on an embedded default. It starts the Akeyless emulator with
//! sample secrets and the provider on a temporary socket, mounts a SecretProviderClass exactly
//! as the CSI driver would (as a pod, with Kubernetes auth), writes the files to a folder, then
//! rotates a secret and mounts again to show the version change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::driver::{self, SimulatedPod};
use crate::proto;
use crate::runtime::{BackendArgs, provider_context};
use crate::server::{self, ProviderService, Readiness};
use crate::telemetry::{self, LogFormat};
use akeyless_emulator::Emulator;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Folder to write the mounted files to (default: a new temporary folder, kept).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Log level of the embedded provider (its logs go to stderr).
    #[arg(long, default_value = "error")]
    pub log_level: String,
}

const ACCESS_ID: &str = "p-demok8sauth01";
const AUTH_CONFIG: &str = "demo-cluster";
const AUDIENCE: &str = "akeyless";

const OBJECTS: &str = r#"- secretPath: /demo/db/password
  fileName: db-password
  type: static
  mode: "0400"
- secretPath: /demo/db/config
  fileName: db/username
  key: username
- secretPath: /demo/db/config
  fileName: db/config.json
- secretPath: /demo/api/token
  fileName: api-token
  version: 1
- secretPath: /demo/features
  fileName: features
  explode: true
"#;

fn seed(emulator: &Emulator) {
    let s = emulator.state();
    s.add_k8s_auth(ACCESS_ID, AUTH_CONFIG, &["demo"], &["web"]);
    s.grant_read(ACCESS_ID, "/demo/*", &["demo"]);
    s.put_static_secret("/demo/db/password", "correct-horse-battery-staple");
    s.put_static_secret(
        "/demo/db/config",
        r#"{"username":"app","host":"db.demo.svc","port":5432}"#,
    );
    s.put_static_secret("/demo/api/token", "api-token-v1");
    s.put_static_secret("/demo/api/token", "api-token-v2");
    s.put_static_secret(
        "/demo/features",
        r#"{"new-checkout":"on","dark-mode":"off"}"#,
    );
}

fn print_mount(
    title: &str,
    response: &proto::MountResponse,
    previous: Option<&proto::MountResponse>,
) {
    println!("\n{title}");
    println!("  {:<20} {:>5} {:>6}", "file", "mode", "bytes");
    for f in &response.files {
        println!("  {:<20} {:>5o} {:>6}", f.path, f.mode, f.contents.len());
    }
    println!("  {:<20} version", "object");
    for v in &response.object_version {
        let before = previous.and_then(|p| p.object_version.iter().find(|o| o.id == v.id));
        match before {
            Some(b) if b.version != v.version => {
                println!("  {:<20} {}  (was {}: rotated)", v.id, v.version, b.version)
            }
            Some(_) => println!("  {:<20} {}  (unchanged)", v.id, v.version),
            None => println!("  {:<20} {}", v.id, v.version),
        }
    }
}

/// `demo`: an emulator, a provider on a temporary socket, a mount as the driver sends it, a
/// rotation and a second mount.
pub async fn run(args: DemoArgs) -> Result<(), String> {
    telemetry::init_logging(LogFormat::Text, &args.log_level);
    let emulator = Emulator::start("127.0.0.1:0".parse().expect("literal address"))
        .await
        .map_err(|e| format!("starting the Akeyless emulator: {e}"))?;
    seed(&emulator);

    let work = tempfile::Builder::new()
        .prefix("akeyless-csi-demo-")
        .tempdir()
        .map_err(|e| format!("creating a temporary folder: {e}"))?;
    let socket = work.path().join("akeyless.sock");
    let out = match args.out {
        Some(dir) => dir,
        None => work.path().join("mount"),
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let (stop_tx, provider) = start_provider(&socket, &emulator.url())?;
    println!("Akeyless emulator:  {}", emulator.url());
    println!("provider socket:    {}", socket.display());
    println!(
        "pod:                demo/web-7d4f9 (service account web), Kubernetes auth as the pod"
    );
    let changed = mount_rotate_mount(&socket, &emulator, &out).await?;
    println!(
        "Files are in {} (inspect them with ls -l / cat).",
        out.display()
    );

    let _ = stop_tx.send(());
    let _ = provider.await;
    emulator.shutdown().await;
    // Keep the output folder (and the work folder when it holds it) for the user.
    let _ = work.keep();
    if changed == 0 {
        return Err("rotation did not change any object version".into());
    }
    Ok(())
}

/// The in-process provider: send on the first to stop it, await the second for its end.
type RunningProvider = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
);

/// The provider as `serve` runs it (default settings), in this process, on `socket`.
fn start_provider(socket: &Path, akeyless_url: &str) -> Result<RunningProvider, String> {
    let backend = BackendArgs {
        akeyless_url: akeyless_url.to_string(),
        allowed_gateways: String::new(),
        ca_bundle: None,
        connect_timeout: Duration::from_secs(5),
        object_version_key_file: None,
        dynamic_secret_ttl: Duration::from_secs(15 * 60),
        value_cache_ttl: Duration::ZERO,
        max_backend_concurrency: 64,
        max_objects: 500,
        max_response_bytes: crate::akeyless::MAX_RESPONSE_BYTES,
        max_mount_bytes: crate::spec::DRIVER_MESSAGE_LIMIT - 64 * 1024,
        cloud: Default::default(),
        eval: Default::default(),
    };
    let mount_timeout = Duration::from_secs(30);
    let ctx = Arc::new(provider_context(&backend)?);
    let listener = server::bind_socket(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(server::serve(
        listener,
        ProviderService::new(ctx, mount_timeout),
        Readiness::default(),
        async {
            let _ = stop_rx.await;
        },
    ));
    Ok((stop_tx, provider))
}

/// Mounts as the driver would, rotates one secret in Akeyless, mounts again, and prints both;
/// returns how many object versions changed.
async fn mount_rotate_mount(
    socket: &Path,
    emulator: &Emulator,
    out: &Path,
) -> Result<usize, String> {
    let mut client = driver::connect(socket)
        .await
        .map_err(|e| format!("connecting to the provider socket: {e}"))?;
    let version = client
        .version(proto::VersionRequest {
            version: "v1alpha1".into(),
        })
        .await
        .map_err(|e| format!("Version: {e}"))?
        .into_inner();
    println!(
        "provider:           {} {} (protocol {})",
        version.runtime_name, version.runtime_version, version.version
    );
    let request = demo_request(emulator);
    let first = client
        .mount(request.clone())
        .await
        .map_err(|e| format!("Mount: {}", e.message()))?
        .into_inner();
    driver::write_files(out, &first.files).map_err(|e| format!("writing files: {e}"))?;
    print_mount(&format!("mounted into {}", out.display()), &first, None);

    emulator
        .state()
        .put_static_secret("/demo/db/password", "tr0ub4dor-and-3");
    println!(
        "\nrotated /demo/db/password in Akeyless (new version); mounting again as the driver's rotation would"
    );
    let second = client
        .mount(request)
        .await
        .map_err(|e| format!("Mount after rotation: {}", e.message()))?
        .into_inner();
    driver::write_files(out, &second.files).map_err(|e| format!("writing files: {e}"))?;
    print_mount("after rotation", &second, Some(&first));

    let changed = second
        .object_version
        .iter()
        .filter(|v| {
            first
                .object_version
                .iter()
                .any(|f| f.id == v.id && f.version != v.version)
        })
        .count();
    println!(
        "\n{changed} object version(s) changed. Backend calls: {} /auth, {} /get-secret-value, {} /describe-item.",
        emulator.state().count("/auth"),
        emulator.state().count("/get-secret-value"),
        emulator.state().count("/describe-item"),
    );
    Ok(changed)
}

/// The demo pod's mount request, exactly as the driver builds it, with the pod's token.
fn demo_request(emulator: &Emulator) -> proto::MountRequest {
    let parameters = BTreeMap::from([
        ("akeylessGatewayURL".to_string(), emulator.url()),
        ("akeylessAccessType".to_string(), "k8s".to_string()),
        ("akeylessAccessID".to_string(), ACCESS_ID.to_string()),
        (
            "akeylessK8sAuthConfigName".to_string(),
            AUTH_CONFIG.to_string(),
        ),
        ("objects".to_string(), OBJECTS.to_string()),
    ]);
    let pod = SimulatedPod::new(
        "demo",
        "web-7d4f9",
        "6f1c3a52-8d7e-4b7a-9a55-0c2f4b1d9e10",
        "web",
    );
    let pod_token = emulator.state().issue_service_account_token(
        &pod.namespace,
        &pod.service_account,
        &pod.name,
        &pod.uid,
        AUDIENCE,
        Duration::from_secs(3600),
    );
    driver::mount_request(
        "demo-secrets",
        &parameters,
        &pod,
        &[(AUDIENCE, &pod_token)],
        None,
    )
}
