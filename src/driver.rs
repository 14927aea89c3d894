//! What the Secrets Store CSI Driver (v1.6) sends, built the same way: `attributes` is the SPC
//! parameters merged with kubelet's volume context (sorted JSON object of strings), the tokens
//! attribute is the double-encoded TokenRequest status, `secrets` is the nodePublishSecretRef
//! data or `null`, and `permission` is `"420"`. Used by `demo`, tests and benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tonic::transport::Channel;

use crate::proto;
use crate::proto::csi_driver_provider_client::CsiDriverProviderClient;
use crate::request::{
    ATTR_POD_NAME, ATTR_POD_NAMESPACE, ATTR_POD_UID, ATTR_SERVICE_ACCOUNT, ATTR_TOKENS,
};

/// The pod a simulated mount is for.
#[derive(Clone, Debug)]
pub struct SimulatedPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub service_account: String,
    pub volume: String,
}

impl SimulatedPod {
    pub fn new(namespace: &str, name: &str, uid: &str, service_account: &str) -> Self {
        SimulatedPod {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            service_account: service_account.into(),
            volume: "secrets-store-inline".into(),
        }
    }

    /// kubelet's target path for this pod's CSI volume.
    pub fn target_path(&self) -> String {
        format!(
            "/var/lib/kubelet/pods/{}/volumes/kubernetes.io~csi/{}/mount",
            self.uid, self.volume
        )
    }
}

/// Builds a `MountRequest` as the driver does.
pub fn mount_request(
    spc_name: &str,
    parameters: &BTreeMap<String, String>,
    pod: &SimulatedPod,
    tokens: &[(&str, &str)],
    node_publish_secret: Option<&BTreeMap<String, String>>,
) -> proto::MountRequest {
    let mut attributes = parameters.clone();
    attributes.insert("secretProviderClass".into(), spc_name.into());
    attributes.insert(ATTR_POD_NAME.into(), pod.name.clone());
    attributes.insert(ATTR_POD_NAMESPACE.into(), pod.namespace.clone());
    attributes.insert(ATTR_POD_UID.into(), pod.uid.clone());
    attributes.insert(ATTR_SERVICE_ACCOUNT.into(), pod.service_account.clone());
    attributes.insert("csi.storage.k8s.io/ephemeral".into(), "true".into());
    if !tokens.is_empty() {
        let by_audience: BTreeMap<&str, serde_json::Value> = tokens
            .iter()
            .map(|(aud, token)| {
                (
                    *aud,
                    serde_json::json!({"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}),
                )
            })
            .collect();
        attributes.insert(
            ATTR_TOKENS.into(),
            serde_json::to_string(&by_audience).unwrap_or_default(),
        );
    }
    proto::MountRequest {
        attributes: serde_json::to_string(&attributes).unwrap_or_default(),
        secrets: match node_publish_secret {
            Some(s) => serde_json::to_string(s).unwrap_or_default(),
            None => "null".into(),
        },
        target_path: pod.target_path(),
        permission: "420".into(),
        current_object_version: vec![],
    }
}

/// Connects a gRPC client to the provider's Unix socket, as the driver does.
pub async fn connect(
    socket: &Path,
) -> Result<CsiDriverProviderClient<Channel>, tonic::transport::Error> {
    let channel = crate::server::unix_channel(socket).await?;
    Ok(CsiDriverProviderClient::new(channel))
}

/// Writes a mount response's files under `dir` (directories as needed, each file's mode), as the
/// driver's writer would; returns the paths written.
pub fn write_files(dir: &Path, files: &[proto::File]) -> std::io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let mut written = Vec::new();
    for file in files {
        crate::spec::paths::check_file_path(&file.path).map_err(|why| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {why}", file.path),
            )
        })?;
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
        std::fs::set_permissions(
            &path,
            std::fs::Permissions::from_mode(file.mode as u32 & 0o777),
        )?;
        written.push(path);
    }
    Ok(written)
}
