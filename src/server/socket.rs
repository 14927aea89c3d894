//! The provider's Unix socket: stale files removed, mode 0600 (only the driver, running as
//! root, may connect: the socket is the only access control of this interface).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

/// Refuses a socket directory that anyone may write to: whoever can write there could replace
/// the socket and receive every mount (credentials and tokens included). `allow` overrides it,
/// for setups that really need such a directory.
pub(crate) fn check_socket_dir(path: &Path, allow: bool) -> io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()), // created 0755 by us
        Err(e) => return Err(e),
    };
    if meta.permissions().mode() & 0o002 != 0 && !allow {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the socket directory {} is world-writable, so anyone could replace the socket and receive mounts; \
                 fix its mode, or pass --allow-world-writable-socket-dir",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// A gRPC channel to the provider's socket at `socket` (as the driver dials it). The URI is
/// required by the API but unused: the connector always dials the socket.
pub(crate) async fn unix_channel(
    socket: &Path,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
}

/// Binds `path`, replacing a stale socket left by a previous run. Anything else at that path
/// is left alone and reported.
pub fn bind_socket(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_writable_socket_dir_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = open.join("akeyless.sock");
        let e = check_socket_dir(&socket, false).unwrap_err();
        assert!(
            e.to_string().contains("--allow-world-writable-socket-dir"),
            "{e}"
        );
        assert!(check_socket_dir(&socket, true).is_ok());
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_socket_dir(&private.join("akeyless.sock"), false).is_ok());
        assert!(check_socket_dir(&dir.path().join("missing/akeyless.sock"), false).is_ok());
    }
}
