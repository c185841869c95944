//! Network isolation for the whole harness process: a private network namespace with loopback only,
//! and private /etc/resolv.conf and /etc/hosts in a private mount namespace.
//!
//! The harness, its mock providers and the pipeline then share one network where nothing can leave
//! the machine: a connection to anything but loopback fails at once, and the attempt is still seen
//! by strace. Name lookups go to the audit's own resolver (see [`crate::dns`]).
//!
//! Run by an ordinary user, the harness first creates a user namespace in which that user is root
//! (uid and gid 0 inside map to the caller's own ids outside), and the network and mount
//! namespaces within it; the supervisor's PID namespace for the pipeline is then made inside it
//! too. Every monitor works there as under root: strace traces the harness's own children,
//! /proc/PID/mem of a process of the same user is readable, inotify needs no privilege. A kernel
//! that forbids unprivileged user namespaces is an [`IsolationError`] naming the setting to change:
//! an audit without its isolation would only look like one.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::events::{MonitorKind, MonitorStatus};

/// How the private network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationOptions {
    /// The resolver named in the private /etc/resolv.conf (where [`crate::dns::start`] should listen).
    pub resolver: Ipv4Addr,
    /// Names the private /etc/hosts resolves, besides localhost.
    pub hosts: Vec<(String, IpAddr)>,
}

impl Default for IsolationOptions {
    fn default() -> Self {
        IsolationOptions {
            resolver: Ipv4Addr::new(127, 0, 0, 53),
            hosts: Vec::new(),
        }
    }
}

/// Why the harness could not isolate itself at all (only ever for an unprivileged caller: root
/// degrades to an observed network instead, see [`isolate_process`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "running as uid {uid}, the audit needs an unprivileged user namespace, and the kernel refused it: {step}: {cause}\n{hint}"
)]
pub struct IsolationError {
    pub uid: u32,
    /// What was being done: "creating a user namespace", "writing /proc/self/uid_map", ...
    pub step: String,
    pub cause: String,
    /// The kernel settings that govern unprivileged user namespaces, with what to change.
    pub hint: String,
}

/// Moves the calling process into a new network and mount namespace (call while single-threaded,
/// before any runtime starts), inside a new user namespace first when the caller is not root.
///
/// Root never fails here: the egress monitor's status says what was achieved. An ordinary user
/// whose kernel forbids unprivileged user namespaces gets an [`IsolationError`] (the audit must
/// then end incomplete, exit 2), because without the user namespace nothing else can be set up.
pub fn isolate_process(opts: &IsolationOptions) -> Result<MonitorStatus, IsolationError> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        enter_user_namespace().map_err(|(step, cause)| IsolationError {
            uid: uid.as_raw(),
            step,
            cause,
            hint: userns_hint(Path::new("/proc/sys")),
        })?;
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS) {
        if !uid.is_root() {
            return Err(IsolationError {
                uid: uid.as_raw(),
                step: "creating the network and mount namespaces inside the user namespace".into(),
                cause: e.to_string(),
                hint: userns_hint(Path::new("/proc/sys")),
            });
        }
        return Ok(MonitorStatus::degraded(
            MonitorKind::Egress,
            format!(
                "no private network namespace (unshare: {e}); connections can leave the machine and are only observed"
            ),
        ));
    }
    if let Err(e) = loopback_up() {
        return Ok(MonitorStatus::degraded(
            MonitorKind::Egress,
            format!("private network has no loopback ({e}); the mocks are unreachable"),
        ));
    }
    Ok(match private_name_files(opts) {
        Ok(()) => MonitorStatus::active(MonitorKind::Egress),
        Err(e) => MonitorStatus::degraded(
            MonitorKind::Egress,
            format!(
                "network isolated, but name lookups are not answered by the audit's resolver: {e}"
            ),
        ),
    })
}

/// Creates a user namespace where the caller is root: `unshare --user --map-root-user`.
/// The error is (what was being done, why it failed).
fn enter_user_namespace() -> Result<(), (String, String)> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| ("creating a user namespace".to_owned(), e.to_string()))?;
    // An unprivileged process may map only its own ids, and its gid only once setgroups is denied.
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ] {
        std::fs::write(file, text).map_err(|e| (format!("writing {file}"), e.to_string()))?;
    }
    Ok(())
}

/// The kernel settings that can forbid unprivileged user namespaces, as found under `sysctl_dir`
/// (normally /proc/sys), each with its value and the command that allows them.
pub fn userns_hint(sysctl_dir: &Path) -> String {
    // (setting, value that forbids, value that allows)
    let settings = [
        ("kernel.unprivileged_userns_clone", "0", "1"),
        ("user.max_user_namespaces", "0", "15000"),
        ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
    ];
    let mut blocking = Vec::new();
    let mut present = Vec::new();
    for (name, forbids, allows) in settings {
        let file = sysctl_dir.join(name.replace('.', "/"));
        let Ok(value) = std::fs::read_to_string(&file) else {
            continue;
        };
        let value = value.trim().to_owned();
        present.push(format!("{name} = {value}"));
        if value == forbids {
            blocking.push(format!("sysctl -w {name}={allows}"));
        }
    }
    let mut out = String::new();
    if blocking.is_empty() {
        out.push_str(
            "Unprivileged user namespaces are governed by the sysctls kernel.unprivileged_userns_clone (Debian: 1 allows), user.max_user_namespaces (0 forbids) and kernel.apparmor_restrict_unprivileged_userns (Ubuntu: 0 allows); a container runtime's seccomp profile can also forbid unshare(CLONE_NEWUSER).",
        );
    } else {
        out.push_str("To allow them, as root: ");
        out.push_str(&blocking.join("; "));
        out.push_str(" (or run the audit as root).");
    }
    if !present.is_empty() {
        out.push_str(&format!(" This kernel has: {}.", present.join(", ")));
    }
    out
}

/// `ip link set lo up`, by ioctl.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain syscalls on a socket we own; `ifreq` is zero-initialised and its name NUL-terminated.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result
    }
}

pub fn resolv_conf(opts: &IsolationOptions) -> String {
    format!(
        "# private to this audit\nnameserver {}\noptions attempts:1 timeout:1\n",
        opts.resolver
    )
}

pub fn hosts_file(opts: &IsolationOptions) -> String {
    let mut text = String::from(
        "# private to this audit\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for (name, ip) in &opts.hosts {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text
}

/// Bind-mounts private copies over /etc/resolv.conf and /etc/hosts; the sources are deleted at once
/// (a bind mount keeps its file alive, and vanishes with the namespace).
fn private_name_files(opts: &IsolationOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private (mount --make-rprivate /)")?;
    let dir = tempfile::Builder::new()
        .prefix("traceless-net-")
        .tempdir()
        .context("creating a private temp dir")?;
    for (target, text) in [
        ("/etc/resolv.conf", resolv_conf(opts)),
        ("/etc/hosts", hosts_file(opts)),
    ] {
        let name = Path::new(target).file_name().unwrap_or_default();
        let source = dir.path().join(name);
        let mut f = std::fs::File::create(&source)
            .with_context(|| format!("writing {}", source.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", source.display()))?;
        drop(f);
        mount(
            Some(&source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting a private {target}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctls(values: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in values {
            let file = dir.path().join(name.replace('.', "/"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, format!("{value}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn the_hint_names_the_setting_that_forbids_user_namespaces() {
        for (name, forbids, fix) in [
            (
                "kernel.unprivileged_userns_clone",
                "0",
                "sysctl -w kernel.unprivileged_userns_clone=1",
            ),
            (
                "user.max_user_namespaces",
                "0",
                "sysctl -w user.max_user_namespaces=15000",
            ),
            (
                "kernel.apparmor_restrict_unprivileged_userns",
                "1",
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
            ),
        ] {
            let dir = sysctls(&[(name, forbids)]);
            let hint = userns_hint(dir.path());
            assert!(hint.contains(fix), "{name}: {hint}");
            assert!(hint.contains(&format!("{name} = {forbids}")), "{hint}");
        }
    }

    #[test]
    fn with_every_setting_allowing_the_hint_lists_them_all_and_suggests_no_change() {
        let dir = sysctls(&[
            ("user.max_user_namespaces", "63000"),
            ("kernel.unprivileged_userns_clone", "1"),
        ]);
        let hint = userns_hint(dir.path());
        assert!(!hint.contains("sysctl -w"), "{hint}");
        for name in [
            "kernel.unprivileged_userns_clone",
            "user.max_user_namespaces",
            "kernel.apparmor_restrict_unprivileged_userns",
        ] {
            assert!(hint.contains(name), "{hint}");
        }
        assert!(hint.contains("user.max_user_namespaces = 63000"), "{hint}");
    }

    #[test]
    fn name_files_list_the_resolver_and_hosts() {
        let opts = IsolationOptions {
            resolver: Ipv4Addr::new(127, 0, 0, 53),
            hosts: vec![(
                "api.openai.com".into(),
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
            )],
        };
        assert!(
            resolv_conf(&opts)
                .lines()
                .any(|l| l == "nameserver 127.0.0.53")
        );
        let hosts = hosts_file(&opts);
        assert!(hosts.lines().any(|l| l == "127.0.0.9\tapi.openai.com"));
        assert!(hosts.lines().any(|l| l == "127.0.0.1\tlocalhost"));
    }
}
