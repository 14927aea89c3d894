// The CSI driver's own path rules (pkg/util/fileutil Validate), written independently of the
// provider's implementation so the property "everything we accept, the driver accepts" means
// something.
pub fn driver_accepts(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') || path.len() > 4096 {
        return false;
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.len() > 255 || *s == "..") {
        return false;
    }
    if segments[0].starts_with("..") {
        return false;
    }
    // filepath.Clean(path) == path: no empty or "." segments (so no "//", no trailing "/").
    !segments.iter().any(|s| s.is_empty() || *s == ".")
}
