//! `isolate_process` changes the process that calls it, so this test runs it in a re-executed copy of
//! itself (a single-threaded `main`, as the harness calls it) and checks the host is left untouched.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;

use traceless_sandbox::events::{MonitorKind, MonitorState};
use traceless_sandbox::isolate::{IsolationOptions, isolate_process};

const CHILD_ENV: &str = "TRACELESS_ISOLATE_TEST_CHILD";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        in_the_isolated_child();
        return;
    }
    let resolv_before = std::fs::read("/etc/resolv.conf").ok();
    let hosts_before = std::fs::read("/etc/hosts").ok();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "isolated child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("isolated: ok"), "{stdout}\n{stderr}");
    // the host's files were never touched: the bind mounts lived in the child's namespace only
    assert_eq!(std::fs::read("/etc/resolv.conf").ok(), resolv_before);
    assert_eq!(std::fs::read("/etc/hosts").ok(), hosts_before);
    println!("test isolate_process_in_a_subprocess ... ok");
}

fn in_the_isolated_child() {
    let opts = IsolationOptions {
        resolver: Ipv4Addr::new(127, 0, 0, 53),
        hosts: vec![(
            "api.openai.com".into(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
        )],
    };
    let status = isolate_process(&opts);
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
    println!("isolated: ok");
}
