//! House rules, checked by the test suite itself: every Rust file opens with a `//!` line saying
//! its role; no file carries a stray to-do marker or cites a document the repository does not
//! hold; every dependency a crate declares is used; and the benchmarks add no feature to the
//! release build's dependencies, so `cargo xtask bench` rebuilds nothing `cargo xtask audit` built.
//!
//! Unused dependencies are found here rather than by installing cargo-machete in CI: the rule is
//! the same (a crate's code names the dependency, `name::` or `use name`), it costs no install
//! (cargo-machete builds from source in minutes on a 2-core machine), and `cargo metadata` gives
//! each dependency's name in code (its library name, or its rename), which a text search of
//! Cargo.toml alone gets wrong (`kamadak-exif` is `exif`).

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Whether `code` names the crate `name` as a path root (`name::`, `::name::`) or in `use
    /// name` / `extern crate name`; a piece of a longer name or of another path (`other::name`)
    /// does not count.
    fn names_crate(code: &str, name: &str) -> bool {
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let ends_in_ident = |s: &str| s.as_bytes().last().copied().is_some_and(ident);
        code.match_indices(name).any(|(at, _)| {
            let end = at + name.len();
            if code.as_bytes().get(end).copied().is_some_and(ident) {
                return false;
            }
            let head = &code[..at];
            if code[end..].trim_start().starts_with("::") {
                return match head.strip_suffix("::") {
                    Some(rest) => !ends_in_ident(rest),
                    None => !ends_in_ident(head),
                };
            }
            let keyword = head.trim_end();
            keyword.len() < head.len()
                && ["use", "extern crate"].iter().any(|k| {
                    keyword
                        .strip_suffix(k)
                        .is_some_and(|rest| !ends_in_ident(rest))
                })
        })
    }

    fn files_with(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" && name != "node_modules" {
                    files_with(&path, extensions, out);
                }
            } else if path
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        files_with(dir, &["rs"], out);
    }

    fn all_files() -> Vec<PathBuf> {
        let root = crate::project_root();
        let mut files = Vec::new();
        for dir in ["pipeline", "harness", "bench", "xtask"] {
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

    /// The project's design document stayed outside the repository; what the code needs from it
    /// is said in ARCHITECTURE.md, README.md or the code itself, so nothing may cite it.
    #[test]
    fn no_citations_of_documents_outside_the_repository() {
        let root = crate::project_root();
        let mut files = Vec::new();
        for dir in [
            "pipeline",
            "harness",
            "bench",
            "xtask",
            "fixtures",
            "scenarios",
        ] {
            files_with(
                &root.join(dir),
                &["rs", "md", "toml", "py", "js", "txt"],
                &mut files,
            );
        }
        files.extend(
            [
                "README.md",
                "ARCHITECTURE.md",
                "Cargo.toml",
                "traceless.toml",
            ]
            .map(|f| root.join(f)),
        );
        let word = concat!("SP", "EC");
        let citing: Vec<_> = files
            .into_iter()
            .filter(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                text.match_indices(word).any(|(at, _)| {
                    let b = text.as_bytes();
                    let letter = |i: Option<&u8>| i.is_some_and(|c| c.is_ascii_alphanumeric());
                    !letter(at.checked_sub(1).and_then(|i| b.get(i)))
                        && !letter(b.get(at + word.len()))
                })
            })
            .collect();
        assert!(
            citing.is_empty(),
            "files citing a document outside the repository ({word}): {citing:#?}"
        );
    }

    #[test]
    fn names_crate_finds_roots_and_ignores_look_alikes() {
        for (code, used) in [
            ("use serde_json::Value;", true),
            ("let v = serde_json::json!({});", true),
            ("let v = ::serde_json::from_str(s);", true),
            ("use serde_json;", true),
            ("extern crate serde_json;", true),
            ("use {anyhow::Context, serde_json::Value};", true),
            ("let v = my_serde_json::x();", false),
            ("let v = serde_json_ext::x();", false),
            ("let v = other::serde_json::x();", false),
            ("// serde_json is not needed", false),
            ("reuse serde_json", false),
        ] {
            assert_eq!(names_crate(code, "serde_json"), used, "{code}");
        }
    }

    fn cargo() -> Command {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(crate::project_root());
        cmd
    }

    fn metadata() -> serde_json::Value {
        let out = cargo()
            .args(["metadata", "--format-version", "1", "--locked"])
            .output()
            .expect("running cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
    }

    /// The Rust text of `dirs` under `manifest_dir`, concatenated.
    fn code_under(manifest_dir: &Path, dirs: &[&str]) -> String {
        let mut files = Vec::new();
        for dir in dirs {
            let path = manifest_dir.join(dir);
            if path.is_file() {
                files.push(path);
            } else {
                rust_files(&path, &mut files);
            }
        }
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `(member, dependency as Cargo.toml names it, kind)` for every dependency no code of its
    /// kind names: normal ones must be named in `src/`, dev ones in `src/`, `tests/`, `benches/`
    /// or `examples/`, build ones in `build.rs`.
    fn unused_dependencies(metadata: &serde_json::Value) -> Vec<(String, String, String)> {
        let packages: BTreeMap<&str, &serde_json::Value> = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p))
            .collect();
        let members: BTreeSet<&str> = metadata["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let mut unused = Vec::new();
        for node in metadata["resolve"]["nodes"].as_array().unwrap() {
            let id = node["id"].as_str().unwrap();
            if !members.contains(id) {
                continue;
            }
            let package = packages[id];
            let manifest = Path::new(package["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap();
            let normal = code_under(dir, &["src"]);
            let dev = code_under(dir, &["src", "tests", "benches", "examples"]);
            let build = code_under(dir, &["build.rs"]);
            for dep in node["deps"].as_array().unwrap() {
                // The name the code uses: the library's name, or the rename.
                let in_code = dep["name"].as_str().unwrap();
                let declared = packages[dep["pkg"].as_str().unwrap()]["name"]
                    .as_str()
                    .unwrap();
                for kind in dep["dep_kinds"].as_array().unwrap() {
                    let (kind, code) = match kind["kind"].as_str() {
                        None => ("dependencies", &normal),
                        Some("dev") => ("dev-dependencies", &dev),
                        Some(_) => ("build-dependencies", &build),
                    };
                    if !names_crate(code, in_code) {
                        unused.push((
                            package["name"].as_str().unwrap().to_owned(),
                            declared.to_owned(),
                            kind.to_owned(),
                        ));
                    }
                }
            }
        }
        unused
    }

    #[test]
    fn every_dependency_is_used() {
        let metadata = metadata();
        let unused = unused_dependencies(&metadata);
        assert!(
            unused.is_empty(),
            "dependencies no code names (member, dependency, section); remove them from the \
             member's Cargo.toml: {unused:#?}"
        );

        // [workspace.dependencies] entries no member declares.
        let root = crate::project_root();
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
        let declared: BTreeSet<&str> = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                metadata["workspace_members"]
                    .as_array()
                    .unwrap()
                    .contains(&p["id"])
            })
            .flat_map(|p| p["dependencies"].as_array().unwrap())
            .map(|d| d["rename"].as_str().or(d["name"].as_str()).unwrap())
            .collect();
        let stale: Vec<&String> = manifest["workspace"]["dependencies"]
            .as_table()
            .unwrap()
            .keys()
            .filter(|k| !declared.contains(k.as_str()))
            .collect();
        assert!(
            stale.is_empty(),
            "Cargo.toml: [workspace.dependencies] that no member uses: {stale:?}"
        );
    }

    /// The detector fires on a member whose code no longer names a dependency, and not on one
    /// that does (a metadata shaped like cargo's, with the member's code in a temporary folder).
    #[test]
    fn unused_dependency_detector_fires_on_a_faulty_member_only() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(
            dir.join("src/lib.rs"),
            "//! x\nuse exif::Reader;\npub fn f() { anyhow::bail!(\"x\") }\n",
        )
        .unwrap();
        std::fs::write(dir.join("tests/t.rs"), "//! t\nuse tempfile::tempdir;\n").unwrap();
        let manifest = dir.join("Cargo.toml").display().to_string();
        let dep = |pkg: &str, name: &str, kind: Option<&str>| serde_json::json!({"pkg": pkg, "name": name, "dep_kinds": [{"kind": kind}]});
        let package = |id: &str, name: &str| serde_json::json!({"id": id, "name": name, "manifest_path": manifest});
        let metadata = serde_json::json!({
            "packages": [
                package("member", "member"),
                package("exif-id", "kamadak-exif"),
                package("anyhow-id", "anyhow"),
                package("tempfile-id", "tempfile"),
                package("bytes-id", "bytes"),
                package("rand-id", "rand"),
            ],
            "workspace_members": ["member"],
            "resolve": {"nodes": [{"id": "member", "deps": [
                dep("exif-id", "exif", None),
                dep("anyhow-id", "anyhow", None),
                dep("tempfile-id", "tempfile", Some("dev")),
                dep("bytes-id", "bytes", None),
                dep("rand-id", "rand", Some("dev")),
            ]}]},
        });
        let found = unused_dependencies(&metadata);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            [
                ("member".into(), "bytes".into(), "dependencies".into()),
                ("member".into(), "rand".into(), "dev-dependencies".into()),
            ]
        );
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Each package of a release build of `packages` and its features, as `cargo tree` resolves
    /// them (the same resolution a build uses).
    fn release_features(packages: &[&str]) -> BTreeMap<String, String> {
        let mut cmd = cargo();
        cmd.args(["tree", "--locked", "-e", "normal,build", "--prefix", "none"]);
        cmd.args(["--format", "{p} features={f}"]);
        for p in packages {
            cmd.args(["-p", p]);
        }
        let out = cmd.output().expect("running cargo tree");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (package, features) = l.split_once(" features=")?;
                let features = features.trim_end_matches(" (*)");
                Some((package.to_owned(), features.to_owned()))
            })
            .collect()
    }

    /// Packages both builds compile whose features differ: each would be compiled twice.
    fn rebuilt(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
        a.iter()
            .filter(|(p, f)| b.get(*p).is_some_and(|g| g != *f))
            .map(|(p, f)| format!("{p}: {f:?} against {:?}", b[p]))
            .collect()
    }

    #[test]
    fn benchmarks_add_no_features_to_the_release_build() {
        let audit = release_features(&["traceless", "traceless-pipeline"]);
        let bench = release_features(&["traceless", "traceless-pipeline", "traceless-bench"]);
        assert!(
            audit.len() > 100,
            "cargo tree listed {} packages",
            audit.len()
        );
        let twice = rebuilt(&audit, &bench);
        assert!(
            twice.is_empty(),
            "`cargo xtask bench` would rebuild what `cargo xtask audit` built; align the \
             benchmark crate's dependency features: {twice:#?}"
        );
        // The check itself: the pipeline alone resolves some features differently, which is
        // why every command builds both binaries together.
        let pipeline = release_features(&["traceless-pipeline"]);
        assert!(!rebuilt(&pipeline, &audit).is_empty());
    }

    /// Which workspace crates each crate may depend on (normal, build and dev dependencies
    /// alike): the direction of ARCHITECTURE.md's code map. The evidence vocabulary and the
    /// report know no other crate of ours; the judge reads evidence and writes a report; the
    /// scanner, the mocks and the sandbox speak the evidence vocabulary, and the sandbox may
    /// scan; the harness composes them all; the benchmarks
    /// measure the crates, never the harness; the pipeline and xtask stand alone (the harness
    /// audits the pipeline as a black box and never links it).
    const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
        ("traceless-evidence", &[]),
        ("traceless-report", &[]),
        (
            "traceless-judge",
            &["traceless-evidence", "traceless-report"],
        ),
        ("traceless-scan", &["traceless-evidence"]),
        ("traceless-mock", &["traceless-evidence"]),
        (
            "traceless-sandbox",
            &["traceless-scan", "traceless-evidence"],
        ),
        (
            "traceless",
            &[
                "traceless-evidence",
                "traceless-judge",
                "traceless-scan",
                "traceless-mock",
                "traceless-sandbox",
                "traceless-report",
            ],
        ),
        (
            "traceless-bench",
            &["traceless-scan", "traceless-sandbox", "traceless-mock"],
        ),
        ("traceless-pipeline", &[]),
        ("xtask", &[]),
    ];

    /// Dependencies between workspace members that [`MAY_DEPEND_ON`] does not allow, and
    /// members it does not know: (from, to).
    fn forbidden_edges(metadata: &serde_json::Value) -> Vec<(String, String)> {
        let packages = metadata["packages"].as_array().unwrap();
        let members: Vec<&str> = metadata["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|id| {
                packages
                    .iter()
                    .find(|p| p["id"] == *id)
                    .and_then(|p| p["name"].as_str())
            })
            .collect();
        let mut bad = Vec::new();
        for p in packages {
            let name = p["name"].as_str().unwrap();
            if !members.contains(&name) {
                continue;
            }
            let Some((_, allowed)) = MAY_DEPEND_ON.iter().find(|(n, _)| *n == name) else {
                bad.push((name.to_owned(), "(not in the dependency map)".to_owned()));
                continue;
            };
            for d in p["dependencies"].as_array().unwrap() {
                let dep = d["name"].as_str().unwrap();
                // A crate may dev-depend on itself, to turn on its own test features.
                if members.contains(&dep) && dep != name && !allowed.contains(&dep) {
                    bad.push((name.to_owned(), dep.to_owned()));
                }
            }
        }
        bad
    }

    #[test]
    fn crates_depend_only_in_the_directions_the_code_map_allows() {
        let bad = forbidden_edges(&metadata());
        assert!(
            bad.is_empty(),
            "dependencies the code map forbids (update ARCHITECTURE.md and MAY_DEPEND_ON if the design changed): {bad:?}"
        );
    }

    #[test]
    fn the_dependency_map_check_fires_on_a_forbidden_edge() {
        let metadata = serde_json::json!({
            "workspace_members": ["r", "s", "n"],
            "packages": [
                {"id": "r", "name": "traceless-report", "dependencies": [{"name": "traceless-scan"}, {"name": "serde"}]},
                {"id": "s", "name": "traceless-scan", "dependencies": []},
                {"id": "n", "name": "newcomer", "dependencies": []},
                {"id": "x", "name": "serde", "dependencies": []}
            ]
        });
        assert_eq!(
            forbidden_edges(&metadata),
            [
                ("traceless-report".to_owned(), "traceless-scan".to_owned()),
                (
                    "newcomer".to_owned(),
                    "(not in the dependency map)".to_owned()
                )
            ]
        );
    }

    /// Crates that do I/O or run it: a runtime, system calls, sockets, files. The judging core
    /// must reach none of them.
    const IO_CRATES: &[&str] = &[
        "tokio", "mio", "nix", "libc", "rustix", "socket2", "hyper", "reqwest", "notify",
        "walkdir", "tempfile",
    ];

    /// The crates of [`IO_CRATES`] that `krate` links through its normal dependencies when it
    /// is built on its own, for this machine (`cargo tree`: features as that build resolves
    /// them, not as the whole workspace unifies them).
    fn io_reached(krate: &str) -> Vec<String> {
        let out = cargo()
            .args([
                "tree", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}",
            ])
            .args(["-p", krate])
            .output()
            .expect("running cargo tree");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let linked: BTreeSet<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
        IO_CRATES
            .iter()
            .filter(|c| linked.contains(**c))
            .map(|c| (*c).to_owned())
            .collect()
    }

    /// What the judging core's sources must not name: files, sockets, processes, threads, the
    /// environment, the clock.
    const IO_PATHS: &[&str] = &[
        "std::fs",
        "std::net",
        "std::process",
        "std::thread",
        "std::env",
        "std::io::stdin",
        "std::io::stdout",
        "File::",
        "OpenOptions",
        "SystemTime::now",
        "Instant::now",
    ];

    fn io_named(code: &str) -> Vec<&'static str> {
        IO_PATHS
            .iter()
            .copied()
            .filter(|p| code.contains(p))
            .collect()
    }

    #[test]
    fn the_judging_core_does_no_io() {
        for krate in ["traceless-judge", "traceless-evidence"] {
            let reached = io_reached(krate);
            assert!(
                reached.is_empty(),
                "{krate} reaches crates that do I/O: {reached:?} (ARCHITECTURE.md: the judging core does no I/O)"
            );
        }
        let root = crate::project_root();
        for dir in ["harness/crates/judge", "harness/crates/evidence"] {
            let named = io_named(&code_under(&root.join(dir), &["src"]));
            assert!(named.is_empty(), "{dir}/src names I/O: {named:?}");
        }
    }

    #[test]
    fn the_io_check_fires_on_the_harness_and_on_io_in_code() {
        assert!(io_reached("traceless-mock").contains(&"tokio".to_owned()));
        assert!(io_reached("traceless-sandbox").contains(&"nix".to_owned()));
        assert_eq!(io_named("let x = std::fs::read(p)?;"), ["std::fs"]);
        assert!(io_named("use std::collections::BTreeMap;").is_empty());
    }

    /// The top-level modules whose non-test code (all but its `#[cfg(test)] mod`) `code` names: `crate::a::...`, and each
    /// `a` of `crate::{a, b::c}`.
    fn crate_modules_named(code: &str) -> BTreeSet<String> {
        // A file's test module comes last; a `#[cfg(test)]` item before it is code like the rest.
        let code = code.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut named = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                named.extend(group.split(',').map(ident));
            } else {
                named.insert(ident(rest));
            }
        }
        named.retain(|n| !n.is_empty());
        named
    }

    /// Edges between one crate's top-level modules (`src/a.rs` and everything under `src/a/`
    /// are `a`): `a -> b` when a's non-test code names `crate::b`. Test-only files (`tests.rs`)
    /// are left out: a test may reach anywhere.
    fn module_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let module = |f: &Path| -> Option<String> {
            let rel = f.strip_prefix(src).ok()?;
            let first = rel.components().next()?.as_os_str().to_str()?;
            let name = first.strip_suffix(".rs").unwrap_or(first);
            let test = f.file_name().is_some_and(|n| n == "tests.rs");
            (!test && name != "lib" && name != "main").then(|| name.to_owned())
        };
        let modules: BTreeSet<String> = files.iter().filter_map(|f| module(f)).collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let Some(from) = module(f) else { continue };
            let code = std::fs::read_to_string(f).unwrap();
            let to: Vec<String> = crate_modules_named(&code)
                .into_iter()
                .filter(|m| modules.contains(m) && *m != from)
                .collect();
            edges.entry(from).or_default().extend(to);
        }
        edges
    }

    /// A circle of imports, `a -> ... -> a`, if the graph has one.
    fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit<'a>(
            node: &'a str,
            edges: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| *n == node) {
                let mut found: Vec<String> = path[at..].iter().map(|n| (*n).to_owned()).collect();
                found.push(node.to_owned());
                return Some(found);
            }
            if !done.insert(node) {
                return None;
            }
            path.push(node);
            for next in edges.get(node).into_iter().flatten() {
                if let Some(found) = visit(next, edges, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        edges
            .keys()
            .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
    }

    #[test]
    fn no_crate_has_an_import_circle_between_its_modules() {
        let metadata = metadata();
        let mut circles = Vec::new();
        for p in metadata["packages"].as_array().unwrap() {
            let manifest = p["manifest_path"].as_str().unwrap();
            if !manifest.starts_with(crate::project_root().to_str().unwrap()) {
                continue;
            }
            let src = Path::new(manifest).parent().unwrap().join("src");
            if let Some(found) = circle(&module_edges(&src)) {
                circles.push((p["name"].as_str().unwrap().to_owned(), found.join(" -> ")));
            }
        }
        assert!(
            circles.is_empty(),
            "modules that import each other (give the shared piece a module of its own): {circles:#?}"
        );
    }

    #[test]
    fn the_circle_check_fires_on_a_circle_only() {
        let named = crate_modules_named(
            "use crate::{events::Event, spool::Spool};\nfn f() { crate::output::x() }\n\
             #[cfg(test)]\nmod tests { use crate::config; }",
        );
        assert_eq!(
            named,
            ["events", "output", "spool"].map(String::from).into()
        );
        let graph = |pairs: &[(&str, &str)]| {
            let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in pairs {
                edges.entry((*a).into()).or_default().insert((*b).into());
            }
            edges
        };
        assert_eq!(circle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
        assert_eq!(
            circle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
            Some(["a", "b", "c", "a"].map(String::from).to_vec())
        );
    }

    /// An interrupted audit drops the future that drives the pipeline; a task that still held the
    /// supervisor would keep the stop from taking it, and the report would list no monitor (see
    /// ARCHITECTURE.md, "An interrupted audit still stops its pipeline"). So the harness never
    /// clones its `Arc<Supervisor>`: work that needs the supervisor borrows it.
    #[test]
    fn no_task_is_handed_the_supervisor() {
        let mut files = Vec::new();
        rust_files(&crate::project_root().join("harness/src"), &mut files);
        let clones: Vec<_> = files
            .into_iter()
            .filter(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.contains("supervisor.clone()") || text.contains("Arc::clone(&supervisor")
            })
            .collect();
        assert!(
            clones.is_empty(),
            "files that clone the supervisor: {clones:#?}"
        );
    }
}
