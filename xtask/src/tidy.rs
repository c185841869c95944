//! House rules, checked by the test suite itself: every Rust file opens with a `//!` line saying
//! its role, and no file carries a stray to-do marker.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" && name != "node_modules" {
                    rust_files(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn all_files() -> Vec<PathBuf> {
        let root = crate::project_root();
        let mut files = Vec::new();
        for dir in ["pipeline", "harness", "xtask"] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "found only {} Rust files", files.len());
        files
    }

    #[test]
    fn every_file_says_its_role_first() {
        let missing: Vec<_> = all_files()
            .into_iter()
            .filter(|f| {
                !std::fs::read_to_string(f)
                    .unwrap()
                    .trim_start()
                    .starts_with("//!")
            })
            .collect();
        assert!(
            missing.is_empty(),
            "files without a leading `//!` line: {missing:#?}"
        );
    }

    #[test]
    fn no_stray_todos() {
        let marked: Vec<_> = all_files()
            .into_iter()
            .filter(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.contains(concat!("TO", "DO")) || text.contains(concat!("FIX", "ME"))
            })
            .collect();
        assert!(marked.is_empty(), "files with a stray marker: {marked:#?}");
    }
}
