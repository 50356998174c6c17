//! The one path resolver: a path from a user's file, relative to that file's folder.

use std::path::{Path, PathBuf};

/// `p` relative to `base`, absolute, with `.` and `..` resolved lexically (symlinks are kept).
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    normalize(&std::path::absolute(&joined).unwrap_or(joined))
}

/// `p` with `.` and `..` removed lexically.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_lexically() {
        assert_eq!(resolve(Path::new("/a/b/c"), "../../d/./e"), PathBuf::from("/a/d/e"));
        assert_eq!(resolve(Path::new("/a"), "/x/../y"), PathBuf::from("/y"));
    }
}
