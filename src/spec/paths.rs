//! `fileName` rules. Every accepted path must also pass the driver's own checks
//! (`fileutil.Validate`): relative, equal to its cleaned form, no `..` segment, a first segment
//! that doesn't start with `..` (reserved by the atomic writer), segments ≤ 255 bytes, total ≤ 4096.

pub const MAX_PATH_LEN: usize = 4096;
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks one relative file path; the error says what is wrong in words a user can act on.
pub fn check_file_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("is longer than {MAX_PATH_LEN} bytes"));
    }
    if path.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    if path.contains('\\') {
        return Err("must use / as the separator, not \\".into());
    }
    if path.starts_with('/') {
        return Err("must be a relative path (no leading /)".into());
    }
    for (i, segment) in path.split('/').enumerate() {
        match segment {
            "" => return Err("must not contain empty segments (// or a trailing /)".into()),
            "." => return Err("must not contain . segments".into()),
            ".." => return Err("must not contain .. segments".into()),
            s if i == 0 && s.starts_with("..") => {
                return Err(
                    "must not start with .. (reserved by the driver's atomic writer)".into(),
                );
            }
            s if s.len() > MAX_SEGMENT_LEN => {
                return Err(format!("has a segment longer than {MAX_SEGMENT_LEN} bytes"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Finds the first pair of output paths that cannot coexist in one mount: the same path twice,
/// or a file that is also a directory of another path. Returns the two offending paths' indexes.
pub fn find_conflict(paths: &[&str]) -> Option<(usize, usize)> {
    let mut sorted: Vec<(usize, &str)> = paths.iter().copied().enumerate().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    // After sorting, a path that is a directory prefix of others sorts directly before one of
    // them ("a" < "a/b"; anything between them would also start with "a" and be checked first).
    for pair in sorted.windows(2) {
        let [(ia, a), (ib, b)] =
            [pair.first(), pair.get(1)].map(|p| p.copied().unwrap_or_default());
        if a == b || (b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'/')) {
            return Some((ia, ib));
        }
    }
    // "a" < "a-b" < "a/b": a prefix directory may be separated from its child by siblings.
    for (i, a) in paths.iter().enumerate() {
        for (j, b) in paths.iter().enumerate() {
            if i != j
                && b.len() > a.len()
                && b.starts_with(a)
                && b.as_bytes().get(a.len()) == Some(&b'/')
            {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_clean_relative_paths() {
        for ok in [
            "a",
            "db-password",
            "db/user",
            "a/b/c.txt",
            "x..y",
            "a/..b",
            ".hidden",
        ] {
            assert!(check_file_path(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_the_driver_rejects() {
        let long_segment = "a".repeat(256);
        let long_path = format!("{}/b", "a/".repeat(2100));
        for bad in [
            "",
            "/abs",
            "../x",
            "a/../b",
            "..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "..data",
            "..x/y",
            "a\\b",
            &long_segment,
            &long_path,
        ] {
            assert!(check_file_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn finds_conflicts() {
        assert_eq!(find_conflict(&["a", "b"]), None);
        assert_eq!(find_conflict(&["a", "a"]), Some((0, 1)));
        assert!(find_conflict(&["tls", "tls/tls.crt"]).is_some());
        assert!(find_conflict(&["a/b", "a-b", "a"]).is_some());
        assert_eq!(find_conflict(&["ab", "a/b"]), None);
    }
}
