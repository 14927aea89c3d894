//! `fileName` rules. Every accepted path must also pass the driver's own checks
//! (`fileutil.Validate`): relative, equal to its cleaned form, no `..` segment, a first segment
//! that doesn't start with `..` (reserved by the atomic writer), segments ≤ 255 bytes, total ≤ 4096.

pub(crate) const MAX_PATH_LEN: usize = 4096;
pub(crate) const MAX_SEGMENT_LEN: usize = 255;

/// Checks one relative file path; the error says what is wrong in words a user can act on.
pub(crate) fn check_file_path(path: &str) -> Result<(), String> {
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

/// Finds a pair of output paths that cannot coexist in one mount: the same path twice, or a
/// file that is also a directory of another path. Returns the two offending paths' indexes, the
/// shorter (the file, or the first of two equal paths) first.
///
/// O(n log n) comparisons: paths are sorted segment by segment (so `a/b` sorts right after `a`,
/// before `a-b`, which a plain byte order would put in between), and then every path that is a
/// directory of others, or equal to another, sorts directly before one of them.
pub(crate) fn find_conflict(paths: &[&str]) -> Option<(usize, usize)> {
    find_conflict_counting(paths, &mut 0)
}

/// [`find_conflict`], counting the path comparisons it makes (for the complexity test).
fn find_conflict_counting(paths: &[&str], comparisons: &mut u64) -> Option<(usize, usize)> {
    let mut sorted: Vec<(usize, &str)> = paths.iter().copied().enumerate().collect();
    sorted.sort_by(|a, b| {
        *comparisons = comparisons.saturating_add(1);
        a.1.split('/').cmp(b.1.split('/'))
    });
    for pair in sorted.windows(2) {
        let [(ia, a), (ib, b)] = pair else { continue };
        *comparisons = comparisons.saturating_add(1);
        if is_same_or_directory_of(a, b) {
            return Some((*ia, *ib));
        }
    }
    None
}

/// Whether `dir` equals `path` or is one of its directories.
fn is_same_or_directory_of(dir: &str, path: &str) -> bool {
    match path.strip_prefix(dir) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
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
        // '-', '.' and ' ' sort before '/': siblings between a file and its would-be children.
        assert_eq!(
            find_conflict(&["a", "a-b", "a.c", "a b", "a/d"]),
            Some((0, 4))
        );
        assert_eq!(find_conflict(&["x/a/b", "x/a-b", "x/a"]), Some((2, 0)));
        assert_eq!(find_conflict(&["a/b", "a-b/c", "a.b"]), None);
        assert_eq!(find_conflict(&["dir/x", "dir/y", "dir"]), Some((2, 0)));
        assert_eq!(find_conflict(&[]), None);
        assert_eq!(find_conflict(&["only"]), None);
    }

    /// Brute force over every pair: the definition `find_conflict` must agree with.
    fn conflicts_brute_force(paths: &[&str]) -> bool {
        paths.iter().enumerate().any(|(i, a)| {
            paths
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && is_same_or_directory_of(a, b))
        })
    }

    #[test]
    fn agrees_with_brute_force_on_every_small_set() {
        // Every subset of paths over a small alphabet where sibling bytes sort around '/'.
        let pool = [
            "a", "a/b", "a-b", "a.b", "a/b/c", "a/b-c", "ab", "a b", "b", "a/b.c/d",
        ];
        for mask in 0u32..(1 << pool.len()) {
            let set: Vec<&str> = (0..pool.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| pool[i])
                .collect();
            let found = find_conflict(&set);
            assert_eq!(found.is_some(), conflicts_brute_force(&set), "{set:?}");
            if let Some((i, j)) = found {
                assert!(is_same_or_directory_of(set[i], set[j]), "{set:?}: {i} {j}");
            }
        }
        // Duplicates too.
        assert!(find_conflict(&["a/b", "c", "a/b"]).is_some());
    }

    #[test]
    fn two_hundred_thousand_paths_take_n_log_n_comparisons() {
        // The shape of `explode` over a 200,000-key object, plus siblings that sort between a
        // file and its children byte-wise ("k1", "k1-x", "k1.y", "k1/z").
        let n = 200_000;
        let mut owned: Vec<String> = (0..n).map(|i| format!("secrets/k{i}")).collect();
        owned.extend((0..n).map(|i| format!("secrets/k{i}-x")));
        owned.extend((0..n).map(|i| format!("secrets/k{i}.y")));
        let paths: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut comparisons = 0;
        assert_eq!(find_conflict_counting(&paths, &mut comparisons), None);
        let total = paths.len() as f64;
        let bound = (2.0 * total * total.log2()) as u64;
        assert!(
            comparisons <= bound,
            "{comparisons} comparisons for {total} paths (n log n bound {bound}; a quadratic check would make {})",
            total * total
        );
        // One child of a file, added last, is found.
        owned.push(format!("secrets/k{}/z", n / 2));
        let paths: Vec<&str> = owned.iter().map(String::as_str).collect();
        let (file, child) = find_conflict(&paths).expect("a file used as a directory");
        assert_eq!(
            (paths[file], paths[child]),
            ("secrets/k100000", "secrets/k100000/z")
        );
    }
}
