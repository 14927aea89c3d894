//! `render`: a dry-run mount of a SecretProviderClass file against a real Akeyless API or
//! gateway, without a cluster. The request is built exactly as the CSI driver builds it (see
//! `driver`), runs through the same pipeline as a real mount, and the files are written to a
//! folder. It prints each file's mode and size and each object's version, never the contents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::driver::{self, SimulatedPod};
use crate::proto;
use crate::request::MountRequest;
use crate::runtime::BackendArgs;
use crate::secret::ExposeSecret;
use crate::spec::parse_duration;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// SecretProviderClass YAML file (the first `provider: akeyless` class, or the one --name picks).
    #[arg(long)]
    pub spc: PathBuf,
    /// Name of the SecretProviderClass in --spc when the file holds several.
    #[arg(long)]
    pub name: Option<String>,
    /// Folder to write the files to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Namespace of the simulated pod (default: the SPC's namespace, else `default`).
    #[arg(long)]
    pub pod_namespace: Option<String>,
    /// Name of the simulated pod.
    #[arg(long, default_value = "akeyless-csi-render")]
    pub pod_name: String,
    /// UID of the simulated pod.
    #[arg(long, default_value = "00000000-0000-0000-0000-000000000000")]
    pub pod_uid: String,
    /// Service account of the simulated pod.
    #[arg(long, default_value = "default")]
    pub service_account: String,
    /// The pod's service-account token for k8s/jwt auth, as `[AUDIENCE:]FILE` (repeatable). The
    /// audience defaults to the SPC's akeylessTokenAudience, else `akeyless`. For a real token:
    /// `kubectl create token SA -n NS --audience akeyless > token`.
    #[arg(long, value_name = "[AUD:]FILE")]
    pub token_file: Vec<String>,
    /// A nodePublishSecretRef key, e.g. `akeylessAccessKey=…` (repeatable). Prefer --secret-file:
    /// command lines are visible to other users of the machine.
    #[arg(long, value_name = "KEY=VALUE")]
    pub secret: Vec<String>,
    /// The nodePublishSecretRef data: a Kubernetes Secret manifest (`data`, `stringData`) or a
    /// plain YAML map of strings.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Default Akeyless API or gateway URL, for SecretProviderClasses that set no akeylessGatewayURL.
    #[arg(
        long,
        env = "AKEYLESS_CSI_AKEYLESS_URL",
        default_value = "https://api.akeyless.io"
    )]
    pub akeyless_url: String,
    /// Extra CA certificates (PEM) trusted for Akeyless/gateway TLS.
    #[arg(long, env = "AKEYLESS_CSI_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Key of the content hashes reported as versions (use the cluster's to compare versions).
    #[arg(long, env = "AKEYLESS_CSI_OBJECT_VERSION_KEY_FILE")]
    pub object_version_key_file: Option<PathBuf>,
    /// Longest the mount may take.
    #[arg(long, default_value = "110s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Log level (logs go to stderr as text).
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

/// Only to build `BackendArgs` with its defaults (and environment), so the context is made
/// exactly as `serve` makes it.
#[derive(Parser)]
struct BackendOnly {
    #[command(flatten)]
    backend: BackendArgs,
}

/// The SecretProviderClass picked from a file.
#[derive(Debug)]
pub struct SpcFile {
    pub name: String,
    pub namespace: Option<String>,
    pub parameters: BTreeMap<String, String>,
}

/// Picks the `provider: akeyless` SecretProviderClass (named `name`, if given) from YAML text.
pub fn pick_spc(text: &str, name: Option<&str>) -> Result<SpcFile, String> {
    let mut seen = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| format!("not valid YAML: {e}"))?;
        if value.get("kind").and_then(Value::as_str) != Some("SecretProviderClass") {
            continue;
        }
        let spec = value.get("spec");
        if spec.and_then(|s| s.get("provider")).and_then(Value::as_str) != Some("akeyless") {
            continue;
        }
        let meta = value.get("metadata");
        let spc_name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_some_and(|n| n != spc_name) {
            seen.push(spc_name);
            continue;
        }
        let mut parameters = BTreeMap::new();
        if let Some(Value::Mapping(m)) = spec.and_then(|s| s.get("parameters")) {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default().to_string();
                match v {
                    Value::String(s) => {
                        parameters.insert(key, s.clone());
                    }
                    _ => {
                        return Err(format!(
                            "spec.parameters.{key}: must be a string (quote it); Kubernetes rejects other types"
                        ));
                    }
                }
            }
        }
        return Ok(SpcFile {
            name: spc_name,
            namespace: meta
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters,
        });
    }
    match name {
        Some(n) => Err(format!(
            "no SecretProviderClass named {n:?} with provider akeyless (found: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        )),
        None => Err("no SecretProviderClass with spec.provider: akeyless".into()),
    }
}

/// `[AUD:]FILE`: a prefix before the first `:` that contains no `/` is the audience.
fn split_token_arg<'a>(arg: &'a str, default_audience: &'a str) -> (&'a str, &'a str) {
    match arg.split_once(':') {
        Some((aud, file)) if !aud.is_empty() && !aud.contains('/') && !file.is_empty() => {
            (aud, file)
        }
        _ => (default_audience, arg),
    }
}

/// nodePublishSecretRef data from a Secret manifest or a plain map.
fn read_secret_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--secret-file {}: {e}", path.display()))?;
    let value: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("--secret-file {}: not valid YAML: {e}", path.display()))?;
    let strings = |v: Option<&Value>, what: &str| -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        if let Some(Value::Mapping(m)) = v {
            for (k, v) in m {
                let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                    return Err(format!(
                        "--secret-file {}: {what} must map strings to strings",
                        path.display()
                    ));
                };
                out.insert(k.to_string(), v.to_string());
            }
        }
        Ok(out)
    };
    if value.get("kind").and_then(Value::as_str) == Some("Secret") {
        let mut out = BTreeMap::new();
        for (k, v) in strings(value.get("data"), "data")? {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| format!("--secret-file {}: data.{k} is not base64", path.display()))?;
            let s = String::from_utf8(bytes)
                .map_err(|_| format!("--secret-file {}: data.{k} is not UTF-8", path.display()))?;
            out.insert(k, s);
        }
        out.extend(strings(value.get("stringData"), "stringData")?);
        Ok(out)
    } else {
        strings(Some(&value), "the file")
    }
}

/// Builds the driver-shaped request for `args`.
fn build_request(args: &RenderArgs, spc: &SpcFile) -> Result<proto::MountRequest, String> {
    let namespace = args
        .pod_namespace
        .clone()
        .or_else(|| spc.namespace.clone())
        .unwrap_or_else(|| "default".into());
    let pod = SimulatedPod::new(
        &namespace,
        &args.pod_name,
        &args.pod_uid,
        &args.service_account,
    );
    let default_audience = spc
        .parameters
        .get("akeylessTokenAudience")
        .map(String::as_str)
        .unwrap_or("akeyless");
    let mut tokens = Vec::new();
    for arg in &args.token_file {
        let (audience, file) = split_token_arg(arg, default_audience);
        let token = std::fs::read_to_string(file)
            .map_err(|e| format!("--token-file {file}: {e}"))?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(format!("--token-file {file}: the file is empty"));
        }
        tokens.push((audience.to_string(), token));
    }
    let mut secrets = match &args.secret_file {
        Some(path) => Some(read_secret_file(path)?),
        None => None,
    };
    for kv in &args.secret {
        let Some((k, v)) = kv.split_once('=') else {
            return Err("--secret must be KEY=VALUE".into());
        };
        secrets
            .get_or_insert_with(BTreeMap::new)
            .insert(k.to_string(), v.to_string());
    }
    let token_refs: Vec<(&str, &str)> = tokens
        .iter()
        .map(|(a, t)| (a.as_str(), t.as_str()))
        .collect();
    Ok(driver::mount_request(
        &spc.name,
        &spc.parameters,
        &pod,
        &token_refs,
        secrets.as_ref(),
    ))
}

/// The `render` command.
pub async fn run(args: RenderArgs) -> Result<(), String> {
    crate::telemetry::init_logging(crate::telemetry::LogFormat::Text, &args.log_level);
    let text = std::fs::read_to_string(&args.spc)
        .map_err(|e| format!("--spc {}: {e}", args.spc.display()))?;
    let spc = pick_spc(&text, args.name.as_deref())
        .map_err(|e| format!("--spc {}: {e}", args.spc.display()))?;
    let wire = build_request(&args, &spc)?;

    let mut argv: Vec<std::ffi::OsString> = vec![
        "render".into(),
        "--akeyless-url".into(),
        args.akeyless_url.clone().into(),
    ];
    if let Some(p) = &args.ca_bundle {
        argv.push("--ca-bundle".into());
        argv.push(p.into());
    }
    if let Some(p) = &args.object_version_key_file {
        argv.push("--object-version-key-file".into());
        argv.push(p.into());
    }
    let backend = BackendOnly::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .backend;
    let ctx = crate::runtime::provider_context(&backend)?;

    let started = Instant::now();
    let request = MountRequest::decode(&wire).map_err(|e| {
        crate::error::MountError::from(e)
            .to_status()
            .message()
            .to_string()
    })?;
    let rendered =
        match tokio::time::timeout(args.timeout, crate::mount::mount(&ctx, &request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e.to_status().message().to_string()),
            Err(_) => {
                return Err(format!(
                    "[Timeout] the mount did not finish within {:.1}s",
                    args.timeout.as_secs_f64()
                ));
            }
        };
    let elapsed = started.elapsed();
    let files: Vec<proto::File> = rendered
        .files
        .iter()
        .map(|f| proto::File {
            path: f.path.clone(),
            mode: f.mode as i32,
            contents: f.contents.expose_secret().clone(),
        })
        .collect();
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    driver::write_files(&args.out, &files)
        .map_err(|e| format!("--out {}: {e}", args.out.display()))?;

    println!(
        "rendered SecretProviderClass {} for pod {}/{} into {} in {:.2}s",
        spc.name,
        request.pod.namespace.as_deref().unwrap_or(""),
        request.pod.name.as_deref().unwrap_or(""),
        args.out.display(),
        elapsed.as_secs_f64()
    );
    println!("files:");
    for f in &files {
        println!(
            "  {:04o}  {}  ({} bytes)",
            f.mode & 0o7777,
            f.path,
            f.contents.len()
        );
    }
    println!("object versions:");
    for v in &rendered.versions {
        println!("  {}  {}", v.id, v.version);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_argument_audience() {
        assert_eq!(split_token_arg("tok", "akeyless"), ("akeyless", "tok"));
        assert_eq!(
            split_token_arg("vault:/tmp/t", "akeyless"),
            ("vault", "/tmp/t")
        );
        assert_eq!(
            split_token_arg("/tmp/a:b", "akeyless"),
            ("akeyless", "/tmp/a:b")
        );
    }

    #[test]
    fn picks_the_named_akeyless_class() {
        let text = r#"
kind: SecretProviderClass
metadata: {name: v}
spec: {provider: vault, parameters: {}}
---
kind: SecretProviderClass
metadata: {name: a, namespace: team-a}
spec:
  provider: akeyless
  parameters: {akeylessAccessID: p-1, objects: "- secretPath: /x"}
---
kind: SecretProviderClass
metadata: {name: b}
spec: {provider: akeyless, parameters: {akeylessAccessID: p-2}}
"#;
        let a = pick_spc(text, None).unwrap();
        assert_eq!(
            (a.name.as_str(), a.namespace.as_deref()),
            ("a", Some("team-a"))
        );
        assert_eq!(a.parameters["akeylessAccessID"], "p-1");
        assert_eq!(pick_spc(text, Some("b")).unwrap().parameters.len(), 1);
        assert_eq!(
            pick_spc(text, Some("v")).unwrap_err(),
            "no SecretProviderClass named \"v\" with provider akeyless (found: a, b)"
        );
    }
}
