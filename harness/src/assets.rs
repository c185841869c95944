//! The files built into the `traceless` binary, so that an audit needs no clone of this repository.
//!
//! A config names a built-in file with the `builtin:` prefix, and gets the built-in one when it
//! names nothing:
//!
//! | name | what | default for |
//! | --- | --- | --- |
//! | `builtin:policy/privacy-policy.txt` | the shipped privacy policy | `policy.text` |
//! | `builtin:policy/clauses.toml` | its clause map | `policy.clauses` |
//! | `builtin:scenarios/*.toml` | the reference library (the reference API's status codes) | `audit.scenarios` |
//! | `builtin:starter/*.toml` | generic scenarios for any backend, per provider | |
//! | `builtin:fixtures` | the images scenarios name with `fixture = "..."` | `audit.fixtures` |
//!
//! The rest of the harness reads files by path (and the report records each file's path and
//! digest), so the built-in tree is written once to a folder of the user's cache
//! (`$XDG_CACHE_HOME/traceless/builtin-VERSION`, else `~/.cache/...`, else the temp dir) and
//! the `builtin:` names resolve into it. Every file there is compared with the embedded bytes on
//! each use and rewritten when it differs, so an edited or stale copy is never read.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use include_dir::{Dir, DirEntry, include_dir};

/// The prefix that names a built-in file in a config.
pub const PREFIX: &str = "builtin:";

static POLICY: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../fixtures/policy");
static SCENARIOS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../scenarios");
static STARTER: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/backends/scenarios");
static FIXTURES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../fixtures");

/// The built-in folders, by the name they have after `builtin:`.
static TREES: [(&str, &Dir<'static>); 4] = [
    ("policy", &POLICY),
    ("scenarios", &SCENARIOS),
    ("starter", &STARTER),
    ("fixtures", &FIXTURES),
];

/// Every built-in file: its name after `builtin:` (e.g. `policy/clauses.toml`) and its bytes.
pub fn files() -> Vec<(String, &'static [u8])> {
    fn walk(prefix: &str, dir: &'static Dir<'static>, out: &mut Vec<(String, &'static [u8])>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(d) => walk(prefix, d, out),
                DirEntry::File(f) => {
                    out.push((format!("{prefix}/{}", f.path().display()), f.contents()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (name, dir) in TREES {
        walk(name, dir, &mut out);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The built-in files under `folder` (e.g. `scenarios`), relative to it, sorted.
pub fn files_under(folder: &str) -> Vec<(String, &'static [u8])> {
    let prefix = format!("{}/", folder.trim_end_matches('/'));
    files()
        .into_iter()
        .filter_map(|(name, bytes)| Some((name.strip_prefix(&prefix)?.to_owned(), bytes)))
        .collect()
}

/// `builtin:NAME` -> `Some(NAME)`; anything else -> `None`.
pub fn builtin_name(value: &str) -> Option<&str> {
    value.strip_prefix(PREFIX)
}

/// Where `builtin:NAME` lives on disk (the tree is written there first). `NAME` may be a glob; a
/// plain name must be a built-in file or folder.
pub fn resolve(name: &str) -> anyhow::Result<PathBuf> {
    let name = name.trim_start_matches('/');
    let is_glob = name.contains(['*', '?', '[']);
    if !is_glob && !exists(name) {
        anyhow::bail!(
            "there is no built-in {name:?}; built in are: {}",
            TREES
                .iter()
                .map(|(n, _)| format!("{PREFIX}{n}/"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(root()?.join(name))
}

fn exists(name: &str) -> bool {
    let name = name.trim_end_matches('/');
    files()
        .iter()
        .any(|(f, _)| f == name || f.starts_with(&format!("{name}/")))
}

/// The folder holding the built-in tree, written (or refreshed) on first use in this process.
pub fn root() -> anyhow::Result<&'static Path> {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = ROOT.get() {
        return Ok(p);
    }
    let mut last_err = None;
    for base in cache_bases() {
        let dir = base
            .join("traceless")
            .join(format!("builtin-{}", env!("CARGO_PKG_VERSION")));
        match write_tree(&dir) {
            Ok(()) => return Ok(ROOT.get_or_init(|| dir)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err
        .unwrap_or_else(|| anyhow::anyhow!("no cache folder"))
        .context("writing the built-in policy, scenarios and fixtures to a cache folder"))
}

/// Candidate parents, best first. The temp dir is per user, so another user cannot plant files.
fn cache_bases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        out.push(PathBuf::from(x));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        out.push(PathBuf::from(h).join(".cache"));
    }
    out.push(std::env::temp_dir().join(format!("traceless-{}", nix::unistd::geteuid())));
    out
}

/// Writes every built-in file under `dir` whose copy there is missing or differs.
fn write_tree(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    use std::os::unix::fs::MetadataExt as _;
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        anyhow::bail!(
            "{} belongs to another user (uid {}); not trusting its files",
            dir.display(),
            meta.uid()
        );
    }
    for (name, bytes) in files() {
        let path = dir.join(&name);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        // Written aside and renamed: a concurrent audit never reads a half-written file.
        let tmp = tempfile::NamedTempFile::new_in(parent)
            .with_context(|| format!("writing in {}", parent.display()))?;
        std::fs::write(tmp.path(), bytes)
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_clauses_scenarios_and_fixtures_are_built_in() {
        let names: Vec<String> = files().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "policy/privacy-policy.txt",
            "policy/clauses.toml",
            "scenarios/openai-happy-path.toml",
            "starter/openai-photo.toml",
            "fixtures/faces/astronaut.png",
            "fixtures/exif/gps-camera.jpg",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let on_disk = std::fs::read(repo.join("fixtures/policy/clauses.toml")).unwrap();
        let built_in = files()
            .into_iter()
            .find(|(n, _)| n == "policy/clauses.toml")
            .unwrap()
            .1;
        assert_eq!(built_in, on_disk.as_slice());
    }

    #[test]
    fn a_stale_copy_is_rewritten_and_an_unknown_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path()).unwrap();
        let clauses = dir.path().join("policy/clauses.toml");
        std::fs::write(&clauses, "tampered").unwrap();
        write_tree(dir.path()).unwrap();
        assert_ne!(std::fs::read(&clauses).unwrap(), b"tampered");
        assert_eq!(files_under("starter").len(), STARTER.files().count());

        let err = resolve("policy/nope.txt").unwrap_err().to_string();
        assert!(
            err.contains("policy/nope.txt") && err.contains("builtin:scenarios/"),
            "{err}"
        );
        assert!(resolve("scenarios/*.toml").is_ok());
    }
}
