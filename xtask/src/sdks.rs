//! `cargo xtask sdks [--update]`: the official SDK releases the mocks are tested against, pinned in
//! the requirements and package files below, checked against the newest releases and refreshed in
//! one command (then the SDK and example-backend tests say whether the mocks still satisfy them).
//!
//! The newest npm release taken is the newest whose `engines.node` accepts the Node on this
//! machine: an SDK that needs a newer Node cannot be tested here, and is named as such.

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
        "harness/tests/backends/fastify_jobs/package.json",
        Ecosystem::Npm,
        "openai",
    ),
];

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

/// The newest release of `package` whose `engines.node` this machine's Node satisfies, and the
/// newest release of all when that one needs a newer Node.
fn newest_npm(package: &str) -> Result<(String, Option<String>)> {
    let node = output(Command::new("node").arg("--version"))?;
    let node_major: u32 = node
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("cannot read the Node version {node:?}"))?;
    let list = output(Command::new("npm").args(["view", package, "versions", "--json"]))?;
    let versions: Vec<&str> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|v| !v.contains('-'))
        .collect();
    let newest = versions
        .last()
        .ok_or_else(|| format!("npm lists no release of {package}"))?;
    for v in versions.iter().rev() {
        let engines =
            output(Command::new("npm").args(["view", &format!("{package}@{v}"), "engines.node"]))?;
        if node_major_needed(&engines) <= node_major {
            let newer = (v != newest).then(|| (*newest).to_owned());
            return Ok(((*v).to_owned(), newer));
        }
    }
    Err(format!("no release of {package} runs on Node {node_major}"))
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
        let (newest, unusable) = match eco {
            Ecosystem::Pip => (newest_pip(package)?, None),
            Ecosystem::Npm => newest_npm(package)?,
        };
        let note = unusable
            .map(|v| format!(" ({package} {v} needs a newer Node than this machine's)"))
            .unwrap_or_default();
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
