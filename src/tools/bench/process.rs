//! The provider under test as a child process, and the figures the benchmarks print.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::driver;
use crate::proto;

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

pub(crate) async fn start_provider(
    socket: &Path,
    url: &str,
    flags: &[&str],
) -> Result<ProviderProcess, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--endpoint")
        .arg(socket)
        .args(["--akeyless-url", url])
        .args([
            "--health-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--log-level", "error"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the provider: {e}"))?;
    wait_for_socket(socket, &mut child).await?;
    Ok(ProviderProcess(child))
}
