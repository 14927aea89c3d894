//! Test harness: the real provider binary on a temporary Unix socket, the Akeyless emulator on
//! 127.0.0.1, and requests built exactly as the CSI driver v1.6 builds them.
#![allow(dead_code)]

pub mod hostile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use akeyless_csi_provider::driver::{self, SimulatedPod};
use akeyless_csi_provider::proto;
use akeyless_csi_provider::proto::csi_driver_provider_client::CsiDriverProviderClient;
use akeyless_emulator::Emulator;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_akeyless-csi-provider");

/// The provider binary under test: `AKEYLESS_CSI_TEST_BIN` when set (e.g. the static `dist`
/// build), else the one cargo built for these tests.
pub fn provider_bin() -> String {
    std::env::var("AKEYLESS_CSI_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// The provider binary, killed when dropped.
pub struct ProviderProcess {
    child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl ProviderProcess {
    pub async fn start(default_url: &str, extra_args: &[&str]) -> ProviderProcess {
        Self::start_with_env(default_url, extra_args, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables for the provider.
    pub async fn start_with_env(
        default_url: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> ProviderProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("providers").join("akeyless.sock");
        let log = std::fs::File::create(dir.path().join("provider.log")).expect("log file");
        let child = Command::new(provider_bin())
            .arg("--endpoint")
            .arg(&socket)
            .args(["--akeyless-url", default_url])
            .args([
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "json"])
            .args(if extra_args.contains(&"--log-level") {
                &[][..]
            } else {
                &["--log-level", "debug"][..]
            })
            .args(extra_args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn provider");
        let mut provider = ProviderProcess { child, socket, dir };
        provider.wait_ready().await;
        provider
    }

    /// Waits until the socket answers a Version call (the condition, not a fixed sleep).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("provider exited early ({status}):\n{}", self.logs());
            }
            if let Ok(mut client) = driver::connect(&self.socket).await
                && client
                    .version(proto::VersionRequest {
                        version: "v1alpha1".into(),
                    })
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "provider not ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn client(&self) -> CsiDriverProviderClient<Channel> {
        driver::connect(&self.socket)
            .await
            .expect("connect to provider")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        self.child.wait().expect("wait provider")
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// An emulator plus a provider whose default URL points at it.
pub struct Fixture {
    pub emulator: Emulator,
    pub provider: ProviderProcess,
}

pub const ACCESS_ID: &str = "p-accesskey0001";
pub const ACCESS_KEY: &str = "access-key-value-0001";
pub const K8S_ACCESS_ID: &str = "p-k8sauth000001";
pub const K8S_CONFIG: &str = "cluster-1";
pub const AUDIENCE: &str = "akeyless";

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with_args(&[]).await
    }

    pub async fn with_args(args: &[&str]) -> Fixture {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator");
        let provider = ProviderProcess::start(&emulator.url(), args).await;
        Fixture { emulator, provider }
    }

    pub fn state(&self) -> &akeyless_emulator::EmulatorState {
        self.emulator.state()
    }

    pub async fn mount(
        &self,
        request: proto::MountRequest,
    ) -> Result<proto::MountResponse, tonic::Status> {
        self.mount_with_timeout(request, None).await
    }

    pub async fn mount_with_timeout(
        &self,
        request: proto::MountRequest,
        timeout: Option<Duration>,
    ) -> Result<proto::MountResponse, tonic::Status> {
        let mut client = self.provider.client().await;
        let mut req = tonic::Request::new(request);
        if let Some(t) = timeout {
            req.set_timeout(t);
        }
        client.mount(req).await.map(tonic::Response::into_inner)
    }

    /// A pod token minted by the emulator's issuer for `pod`.
    pub fn pod_token(&self, pod: &SimulatedPod) -> String {
        self.state().issue_service_account_token(
            &pod.namespace,
            &pod.service_account,
            &pod.name,
            &pod.uid,
            AUDIENCE,
            Duration::from_secs(3600),
        )
    }
}

pub fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn pod(namespace: &str, name: &str) -> SimulatedPod {
    SimulatedPod::new(namespace, name, &format!("uid-{namespace}-{name}"), "app")
}

/// An access-key mount request in the existing Akeyless provider's shape: access ID in the
/// parameters, key in the nodePublishSecretRef.
pub fn access_key_request(objects: &str) -> proto::MountRequest {
    access_key_request_as(objects, &pod("default", "web"))
}

/// The same, for another pod (tokens are cached per pod by default).
pub fn access_key_request_as(objects: &str, pod: &SimulatedPod) -> proto::MountRequest {
    let p = params(&[("akeylessAccessID", ACCESS_ID), ("objects", objects)]);
    let secret = params(&[("akeylessAccessKey", ACCESS_KEY)]);
    driver::mount_request("spc", &p, pod, &[], Some(&secret))
}

/// Files of a response as (path, mode, utf-8 contents), sorted by path.
pub fn files(resp: &proto::MountResponse) -> Vec<(String, u32, String)> {
    let mut out: Vec<_> = resp
        .files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                f.mode as u32,
                String::from_utf8_lossy(&f.contents).into_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn versions(resp: &proto::MountResponse) -> BTreeMap<String, String> {
    resp.object_version
        .iter()
        .map(|v| (v.id.clone(), v.version.clone()))
        .collect()
}

/// Asserts a failed mount's gRPC code and `[Code]` prefix; returns the message.
pub fn expect_error(
    result: Result<proto::MountResponse, tonic::Status>,
    grpc: tonic::Code,
    code: &str,
) -> String {
    match result {
        Ok(resp) => panic!(
            "expected [{code}], got a response with {} files",
            resp.files.len()
        ),
        Err(status) => {
            assert_eq!(status.code(), grpc, "{}", status.message());
            assert!(
                status.message().starts_with(&format!("[{code}] ")),
                "message {:?} should start with [{code}]",
                status.message()
            );
            status.message().to_string()
        }
    }
}

pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
