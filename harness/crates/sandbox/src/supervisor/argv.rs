//! The pipeline's command line, built from plain data: the launchers that wrap it, the command
//! itself, its environment and its directory. No I/O happens here (no PATH lookup, no file, no
//! process): whatever the machine says is looked up beforehand and passed in.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::PipelineSpec;
use crate::strace;

/// The programs that wrap the pipeline's command, each optional, as found in PATH.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Launchers<'a> {
    /// strace, and the path it writes its trace to.
    pub strace: Option<(&'a Path, &'a str)>,
    pub setpriv: Option<&'a Path>,
    pub unshare: Option<&'a Path>,
}

/// What the harness itself is run with, that the command line depends on.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Harness<'a> {
    /// Its current directory (`None` when it cannot be read).
    pub dir: Option<&'a Path>,
    /// Its PATH (`None` when unset).
    pub path: Option<&'a OsStr>,
}

/// Everything the process is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandLine {
    /// The first is the program started; it is also the process's own `argv[0]`.
    pub argv: Vec<String>,
    /// The whole environment (the harness's own is not inherited).
    pub env: BTreeMap<OsString, OsString>,
    pub dir: PathBuf,
}

/// The PATH the pipeline gets when the harness has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The command line that starts `spec`'s command under `launchers`.
pub(super) fn command_line(
    spec: &PipelineSpec,
    launchers: &Launchers<'_>,
    harness: &Harness<'_>,
) -> CommandLine {
    let mut command = spec.command.clone();
    if let Some(program) = command.first_mut() {
        *program = program_path(program, harness.dir);
    }
    CommandLine {
        argv: launcher_argv(launchers, command),
        env: environment(spec, harness.path),
        dir: spec.workdir.clone(),
    }
}

/// The program as the pipeline's first argument: a path (it holds a `/`) is made absolute, since a
/// relative path names a file from the harness's directory, not from the pipeline's workdir; a bare
/// name is left for PATH.
fn program_path(program: &str, harness_dir: Option<&Path>) -> String {
    if !program.contains('/') {
        return program.to_owned();
    }
    let path = Path::new(program);
    // `absolute` reads the current directory only for a relative path: joined to the harness's
    // directory first, the path is absolute, and `absolute` only tidies it (`a/./b` is `a/b`).
    let joined = match harness_dir {
        Some(dir) => dir.join(path.strip_prefix(".").unwrap_or(path)),
        None if path.is_absolute() => path.to_path_buf(),
        None => return program.to_owned(),
    };
    std::path::absolute(&joined)
        .unwrap_or(joined)
        .to_string_lossy()
        .into_owned()
}

/// The PATH the pipeline gets: the spec's own, else the harness's, else a default. A bare program
/// name is looked for in this one, by the check before the start as by the start itself.
pub(super) fn pipeline_path(spec: &PipelineSpec, harness_path: Option<&OsStr>) -> OsString {
    match spec.env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => v.into(),
        None => harness_path.unwrap_or(OsStr::new(DEFAULT_PATH)).to_owned(),
    }
}

/// The pipeline's whole environment: the spec's variables, its PATH (see [`pipeline_path`]), then
/// TMPDIR and HOME (which the spec cannot override).
fn environment(spec: &PipelineSpec, harness_path: Option<&OsStr>) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> =
        spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    env.insert("PATH".into(), pipeline_path(spec, harness_path));
    env.insert("TMPDIR".into(), spec.tmpdir.clone().into_os_string());
    env.insert("HOME".into(), spec.home.clone().into_os_string());
    env
}

/// The whole argv: `[strace ... -o OUT --] [setpriv --pdeathsig KILL --] [unshare --pid
/// --fork --kill-child --] command...`. setpriv is only of use after strace: strace forks the next
/// link itself, and only setpriv can give that one a parent-death signal.
fn launcher_argv(l: &Launchers<'_>, command: Vec<String>) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if let Some((strace, out)) = l.strace {
        argv.extend([
            strace.to_string_lossy().into_owned(),
            "-f".into(),
            "--seccomp-bpf".into(),
            "-ttt".into(),
            // Paths of fds only: `-yy` also asks the kernel (sock_diag over netlink) about
            // every socket at every stop, which tripled a request's latency.
            "-y".into(),
            // pids from inside the PID namespace are translated to the harness's view
            "--decode-pids=pidns".into(),
            "-s".into(),
            "4096".into(),
            "-xx".into(),
            "-e".into(),
            format!("trace={}", strace::TRACED_SYSCALLS),
            "-e".into(),
            format!("raw={}", strace::RAW_SYSCALLS),
            "-e".into(),
            "signal=none".into(),
            "-o".into(),
            out.to_owned(),
            "--".into(),
        ]);
        if let Some(setpriv) = l.setpriv {
            argv.extend(link(setpriv, &["--pdeathsig", "KILL"]));
        }
    }
    if let Some(unshare) = l.unshare {
        argv.extend(link(unshare, &["--pid", "--fork", "--kill-child"]));
    }
    argv.extend(command);
    argv
}

/// One launcher: `program args... --`.
fn link(program: &Path, args: &[&str]) -> Vec<String> {
    let mut link = vec![program.to_string_lossy().into_owned()];
    link.extend(args.iter().map(|a| a.to_string()));
    link.push("--".into());
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRACE: &str = "/usr/bin/strace";
    const SETPRIV: &str = "/usr/bin/setpriv";
    const UNSHARE: &str = "/usr/bin/unshare";
    const TRACE_OUT: &str = "/proc/1/fd/7";

    fn spec(command: &[&str]) -> PipelineSpec {
        PipelineSpec {
            command: command.iter().map(|a| a.to_string()).collect(),
            env: vec![("GIVEN".into(), "1".into())],
            workdir: "/audit/work".into(),
            tmpdir: "/audit/tmp".into(),
            home: "/audit/home".into(),
            ..PipelineSpec::default()
        }
    }

    fn harness() -> Harness<'static> {
        Harness {
            dir: Some(Path::new("/srv/harness")),
            path: Some(OsStr::new("/opt/bin:/usr/bin")),
        }
    }

    fn launchers(strace: bool, setpriv: bool, unshare: bool) -> Launchers<'static> {
        Launchers {
            strace: strace.then(|| (Path::new(STRACE), TRACE_OUT)),
            setpriv: setpriv.then(|| Path::new(SETPRIV)),
            unshare: unshare.then(|| Path::new(UNSHARE)),
        }
    }

    fn argv(launchers: Launchers<'_>, command: &[&str]) -> Vec<String> {
        command_line(&spec(command), &launchers, &harness()).argv
    }

    /// strace's own arguments, up to and including the `--` that ends them.
    fn strace_argv() -> Vec<String> {
        [
            STRACE,
            "-f",
            "--seccomp-bpf",
            "-ttt",
            "-y",
            "--decode-pids=pidns",
            "-s",
            "4096",
            "-xx",
            "-e",
            &format!("trace={}", strace::TRACED_SYSCALLS),
            "-e",
            &format!("raw={}", strace::RAW_SYSCALLS),
            "-e",
            "signal=none",
            "-o",
            TRACE_OUT,
            "--",
        ]
        .map(String::from)
        .to_vec()
    }

    /// setpriv's and unshare's arguments, each up to and including its `--`.
    const SETPRIV_ARGV: [&str; 4] = [SETPRIV, "--pdeathsig", "KILL", "--"];
    const UNSHARE_ARGV: [&str; 5] = [UNSHARE, "--pid", "--fork", "--kill-child", "--"];

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    /// strace's arguments, then `rest`.
    fn traced(rest: &[&[&str]]) -> Vec<String> {
        let mut argv = strace_argv();
        argv.extend(strings(&rest.concat()));
        argv
    }

    #[test]
    fn every_launcher_wraps_the_next_in_order() {
        assert_eq!(
            argv(launchers(true, true, true), &["python3", "app.py"]),
            traced(&[&SETPRIV_ARGV, &UNSHARE_ARGV, &["python3", "app.py"]])
        );
    }

    #[test]
    fn strace_without_a_pid_namespace_wraps_setpriv_then_the_command() {
        assert_eq!(
            argv(launchers(true, true, false), &["python3"]),
            traced(&[&SETPRIV_ARGV, &["python3"]])
        );
    }

    #[test]
    fn strace_without_setpriv_starts_the_next_link_itself() {
        assert_eq!(
            argv(launchers(true, false, true), &["python3"]),
            traced(&[&UNSHARE_ARGV, &["python3"]])
        );
        assert_eq!(
            argv(launchers(true, false, false), &["python3"]),
            traced(&[&["python3"]])
        );
    }

    #[test]
    fn setpriv_is_left_out_without_strace() {
        // setpriv only ever follows strace: without strace there is nothing for it to do.
        assert_eq!(
            argv(launchers(false, true, true), &["python3", "app.py"]),
            strings(&[&UNSHARE_ARGV[..], &["python3", "app.py"]].concat())
        );
        assert_eq!(
            argv(launchers(false, true, false), &["python3", "app.py"]),
            strings(&["python3", "app.py"])
        );
    }

    #[test]
    fn without_launchers_the_command_is_the_whole_argv() {
        assert_eq!(
            argv(Launchers::default(), &["python3", "-c", "print(1)"]),
            strings(&["python3", "-c", "print(1)"])
        );
    }

    #[test]
    fn a_relative_program_path_is_read_from_the_harness_s_directory() {
        assert_eq!(
            argv(Launchers::default(), &["./venv/bin/python", "./app.py"]),
            strings(&["/srv/harness/venv/bin/python", "./app.py"])
        );
        assert_eq!(
            argv(launchers(false, false, true), &["bin/./serve"]),
            strings(&[&UNSHARE_ARGV[..], &["/srv/harness/bin/serve"]].concat())
        );
        // an absolute path is only tidied; a bare name is left for PATH
        assert_eq!(
            argv(Launchers::default(), &["/usr//bin/./python3"]),
            strings(&["/usr/bin/python3"])
        );
        assert_eq!(
            argv(Launchers::default(), &["python3"]),
            strings(&["python3"])
        );
    }

    /// The command line of `spec` without launchers, for a harness with no directory or no PATH.
    fn bare_line(spec: &PipelineSpec, dir: bool, path: bool) -> CommandLine {
        let full = harness();
        let harness = Harness {
            dir: full.dir.filter(|_| dir),
            path: full.path.filter(|_| path),
        };
        command_line(spec, &Launchers::default(), &harness)
    }

    #[test]
    fn a_relative_program_path_stays_as_given_when_the_harness_s_directory_is_unknown() {
        let line = bare_line(&spec(&["./serve"]), false, true);
        assert_eq!(line.argv, strings(&["./serve"]));
        let line = bare_line(&spec(&["/usr//bin/serve"]), false, true);
        assert_eq!(line.argv, strings(&["/usr/bin/serve"]));
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<OsString, OsString> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn the_environment_is_path_the_spec_s_variables_tmpdir_and_home() {
        let line = bare_line(&spec(&["python3"]), true, true);
        assert_eq!(
            line.env,
            env(&[
                ("GIVEN", "1"),
                ("HOME", "/audit/home"),
                ("PATH", "/opt/bin:/usr/bin"),
                ("TMPDIR", "/audit/tmp"),
            ])
        );
        assert_eq!(line.dir, Path::new("/audit/work"));
    }

    #[test]
    fn the_spec_may_set_path_but_not_tmpdir_or_home() {
        let mut spec = spec(&["python3"]);
        spec.env = vec![
            ("PATH".into(), "/venv/bin".into()),
            ("TMPDIR".into(), "/elsewhere".into()),
            ("HOME".into(), "/root".into()),
        ];
        assert_eq!(
            bare_line(&spec, true, true).env,
            env(&[
                ("HOME", "/audit/home"),
                ("PATH", "/venv/bin"),
                ("TMPDIR", "/audit/tmp"),
            ])
        );
    }

    #[test]
    fn without_a_path_of_its_own_the_harness_hands_on_the_usual_one() {
        let line = bare_line(&spec(&["python3"]), true, false);
        assert_eq!(line.env[OsStr::new("PATH")], OsStr::new(DEFAULT_PATH));
    }
}
