//! `isolate_process` changes the process that calls it, so this test runs it in a re-executed copy of
//! itself (a single-threaded `main`, as the harness calls it) and checks the host is left untouched:
//! once as the caller (root in CI), once as the unprivileged user `nobody` (through a user
//! namespace), and once as an ordinary user whose kernel forbids user namespaces.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;

use traceless_sandbox::events::{MonitorKind, MonitorState};
use traceless_sandbox::isolate::{IsolationOptions, isolate_process};

const CHILD_ENV: &str = "TRACELESS_ISOLATE_TEST_CHILD";

fn main() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("forbidden") => return in_a_child_without_user_namespaces(),
        Ok(_) => return in_the_isolated_child(),
        Err(_) => {}
    }
    let resolv_before = std::fs::read("/etc/resolv.conf").ok();
    let hosts_before = std::fs::read("/etc/hosts").ok();
    let exe = std::env::current_exe().unwrap();
    let mut runs = vec![("as the caller", Command::new(&exe))];
    if nix::unistd::geteuid().is_root() {
        let mut nobody = Command::new("setpriv");
        nobody.args(UNPRIVILEGED).arg(&exe);
        runs.push(("as nobody", nobody));
    } else {
        println!("note: not root, the unprivileged run is the run as the caller");
    }
    for (who, mut cmd) in runs {
        let out = cmd
            .env(CHILD_ENV, "1")
            .output()
            .expect("re-running the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "isolated child ({who}) failed: {}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(stdout.contains("isolated: ok"), "{who}: {stdout}\n{stderr}");
        // the host's files were never touched: the bind mounts lived in the child's namespace only
        assert_eq!(std::fs::read("/etc/resolv.conf").ok(), resolv_before);
        assert_eq!(std::fs::read("/etc/hosts").ok(), hosts_before);
    }
    if nix::unistd::geteuid().is_root() {
        forbidden_user_namespaces_are_an_error_naming_the_setting(&exe);
    }
    println!("test isolate_process_in_a_subprocess ... ok");
}

/// `setpriv` arguments that drop to the unprivileged user `nobody`.
const UNPRIVILEGED: &[&str] = &["--reuid=65534", "--regid=65534", "--clear-groups"];

/// A kernel that forbids unprivileged user namespaces, made for real without touching the host's
/// settings: as nobody, a user namespace whose `user.max_user_namespaces` allows exactly one more,
/// spent on a nested one where the child runs as uid 1000, so the child's own attempt fails.
fn forbidden_user_namespaces_are_an_error_naming_the_setting(exe: &std::path::Path) {
    let out = Command::new("setpriv")
        .args(UNPRIVILEGED)
        .args(["unshare", "--user", "--map-root-user", "sh", "-c"])
        .arg(
            "echo 1 > /proc/sys/user/max_user_namespaces && \
             exec unshare --user --map-user=1000 --map-group=1000 \"$0\"",
        )
        .arg(exe)
        .env(CHILD_ENV, "forbidden")
        .output()
        .expect("running the child with user namespaces forbidden");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("refused: "), "{stdout}\n{stderr}");
    assert!(stdout.contains("user.max_user_namespaces"), "{stdout}");
    assert!(stdout.contains("creating a user namespace"), "{stdout}");
}

fn in_the_isolated_child() {
    let opts = IsolationOptions {
        resolver: Ipv4Addr::new(127, 0, 0, 53),
        hosts: vec![(
            "api.openai.com".into(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
        )],
    };
    let status = isolate_process(&opts).expect("isolating");
    assert_eq!(status.monitor, MonitorKind::Egress);
    assert_eq!(status.state, MonitorState::Active, "{status:?}");

    // only loopback exists in this network
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, vec!["lo"]);

    // and it is up: a loopback connection works
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    // the resolver address can be served from here
    UdpSocket::bind("127.0.0.53:53").expect("binding the private resolver's address");

    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert!(
        resolv.lines().any(|l| l == "nameserver 127.0.0.53"),
        "{resolv}"
    );
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        hosts.lines().any(|l| l == "127.0.0.9\tapi.openai.com"),
        "{hosts}"
    );
    // root inside: the pipeline's PID namespace can be made here (as the supervisor does)
    assert!(nix::unistd::geteuid().is_root());
    println!("isolated: ok");
}

fn in_a_child_without_user_namespaces() {
    assert!(!nix::unistd::geteuid().is_root());
    match isolate_process(&IsolationOptions::default()) {
        Ok(status) => panic!("isolated although user namespaces are forbidden: {status:?}"),
        Err(e) => println!("refused: {e}"),
    }
}
