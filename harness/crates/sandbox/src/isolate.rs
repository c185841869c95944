//! Network isolation for the whole harness process: a private network namespace with loopback only,
//! and private /etc/resolv.conf and /etc/hosts in a private mount namespace.
//!
//! The harness, its mock providers and the pipeline then share one network where nothing can leave
//! the machine: a connection to anything but loopback fails at once, and the attempt is still seen
//! by strace. Name lookups go to the audit's own resolver (see [`crate::dns`]).

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

/// Moves the calling process into a new network and mount namespace (call while single-threaded,
/// before any runtime starts). Never fails: the egress monitor's status says what was achieved.
pub fn isolate_process(opts: &IsolationOptions) -> MonitorStatus {
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS) {
        return MonitorStatus::degraded(
            MonitorKind::Egress,
            format!(
                "no private network namespace (unshare: {e}); connections can leave the machine and are only observed"
            ),
        );
    }
    if let Err(e) = loopback_up() {
        return MonitorStatus::degraded(
            MonitorKind::Egress,
            format!("private network has no loopback ({e}); the mocks are unreachable"),
        );
    }
    match private_name_files(opts) {
        Ok(()) => MonitorStatus::active(MonitorKind::Egress),
        Err(e) => MonitorStatus::degraded(
            MonitorKind::Egress,
            format!(
                "network isolated, but name lookups are not answered by the audit's resolver: {e}"
            ),
        ),
    }
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
