//! strace output (`-f -ttt -y -xx`) turned into evidence events: one line in, at most one event out.
//!
//! strace prints one syscall per line, or splits it into `<unfinished ...>` / `<... resumed>` halves
//! when processes interleave; [`LineParser`] joins the halves and splits a call into name, arguments
//! and result. [`TraceInterpreter`] then decodes the arguments that matter (paths, socket addresses,
//! argv) and keeps the little state needed across lines (thread to process, argv of each process).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::events::{EventKind, MonitorKind};

/// The syscalls the supervisor asks strace to trace (only these stop the tracee, via `--seccomp-bpf`).
pub const TRACED_SYSCALLS: &str = "open,openat,openat2,creat,rename,renameat,renameat2,unlink,unlinkat,\
connect,sendto,sendmsg,execve,execveat,clone,clone3,fork,vfork,close,write,pwrite64,writev,pwritev,pwritev2";

/// Syscalls strace prints raw (`write(0x5, 0x7f.., 0x40) = 0x40`): only their fd and byte count
/// matter, and printing the data written (up to `-s` bytes each) would flood the trace.
pub const RAW_SYSCALLS: &str = "write,pwrite64,writev,pwritev,pwritev2";

/// Open flags that mean the file is written.
const WRITE_FLAGS: [&str; 5] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_TMPFILE"];

/// One complete syscall line.
#[derive(Debug, Clone, PartialEq)]
pub struct Syscall {
    pub pid: u32,
    pub unix_time: f64,
    pub name: String,
    /// Top-level arguments, as printed.
    pub args: Vec<String>,
    pub result: SyscallResult,
}

/// What a syscall returned: `= 3<\x2f...>`, `= -1 ENOENT (No such file or directory)`, `= ?`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyscallResult {
    pub value: Option<i64>,
    pub errno: Option<String>,
    /// The `-y` decoration of a returned fd: the opened file's path.
    pub decoration: Option<String>,
}

impl SyscallResult {
    fn parse(text: &str) -> Self {
        let text = text.trim();
        let (head, rest) = text
            .split_once([' ', '<'])
            .map_or((text, ""), |(h, _)| (h, &text[h.len()..]));
        let value = head.parse::<i64>().ok().or_else(|| {
            // hex results (e.g. mmap) are never traced here, but be tolerant
            head.strip_prefix("0x")
                .and_then(|h| i64::from_str_radix(h, 16).ok())
        });
        let decoration = rest
            .starts_with('<')
            .then(|| decoration_inner(rest))
            .flatten()
            .map(|inner| unescape_path(&inner));
        // with --decode-pids=pidns a pid from inside a PID namespace is followed by its pid outside:
        // "= 2 /* 25852 in strace's PID NS */"
        let value = rest
            .split_once("/* ")
            .and_then(|(_, c)| {
                c.strip_suffix(" in strace's PID NS */")
                    .or_else(|| c.split_once(" in strace's PID NS */").map(|(n, _)| n))
            })
            .and_then(|n| n.trim().parse::<i64>().ok())
            .or(value);
        let errno = rest
            .split_whitespace()
            .next()
            .filter(|w| {
                w.starts_with('E')
                    && w.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
            .map(str::to_string);
        SyscallResult {
            value,
            errno,
            decoration,
        }
    }

    /// "0", "-1 ENETUNREACH", "?".
    pub fn describe(&self) -> String {
        match (self.value, &self.errno) {
            (Some(v), Some(e)) => format!("{v} {e}"),
            (Some(v), None) => v.to_string(),
            (None, _) => "?".to_string(),
        }
    }
}

/// How a process ended, from strace's `+++ exited with 3 +++` or `+++ killed by SIGTERM +++` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit {
    pub pid: u32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// The exit a line reports, if it is an exit line.
pub fn exit_line(line: &str) -> Option<ProcessExit> {
    let (pid, rest) = line.trim_start().split_once(' ')?;
    let pid = pid.parse().ok()?;
    let body = rest.split_once("+++ ")?.1.trim_end().strip_suffix(" +++")?;
    if let Some(code) = body.strip_prefix("exited with ") {
        return Some(ProcessExit {
            pid,
            code: code.trim().parse().ok(),
            signal: None,
        });
    }
    let name = body.strip_prefix("killed by ")?.split_whitespace().next()?;
    let signal = name
        .parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32);
    Some(ProcessExit {
        pid,
        code: None,
        signal,
    })
}

/// A line of strace output, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceLine {
    Call(Syscall),
    /// `+++ exited with N +++` or `+++ killed by SIG +++`.
    Exited {
        pid: u32,
    },
    /// Half of a split call, a signal line, or something unparseable.
    Other,
}

/// Joins `<unfinished ...>` and `<... resumed>` halves and splits calls into parts.
#[derive(Debug, Default)]
pub struct LineParser {
    pending: HashMap<u32, (f64, String)>,
}

impl LineParser {
    pub fn parse(&mut self, line: &str) -> TraceLine {
        let line = line.trim_end_matches(['\n', '\r']);
        // "PID TIME call": with --decode-pids the pid column is padded with extra spaces
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            return TraceLine::Other;
        };
        let Some((time, rest)) = rest.trim_start().split_once(' ') else {
            return TraceLine::Other;
        };
        let (Ok(pid), Ok(unix_time)) = (pid.parse::<u32>(), time.parse::<f64>()) else {
            return TraceLine::Other;
        };
        if rest.starts_with("+++") {
            return TraceLine::Exited { pid };
        }
        if rest.starts_with("---") {
            return TraceLine::Other;
        }
        let full = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            self.pending.insert(pid, (unix_time, head.to_string()));
            return TraceLine::Other;
        } else if let Some(tail) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = tail.split_once(" resumed>") else {
                return TraceLine::Other;
            };
            let Some((start_time, head)) = self.pending.remove(&pid) else {
                return TraceLine::Other;
            };
            return match split_call(&format!("{head}{tail}")) {
                Some((name, args, result)) => TraceLine::Call(Syscall {
                    pid,
                    unix_time: start_time,
                    name,
                    args,
                    result,
                }),
                None => TraceLine::Other,
            };
        } else {
            rest
        };
        match split_call(full) {
            Some((name, args, result)) => TraceLine::Call(Syscall {
                pid,
                unix_time,
                name,
                args,
                result,
            }),
            None => TraceLine::Other,
        }
    }
}

/// `name(a, b, c) = result` -> (name, [a, b, c], result).
fn split_call(text: &str) -> Option<(String, Vec<String>, SyscallResult)> {
    let open = text.find('(')?;
    let name = text[..open].trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let close = open + matching_close(&text[open..])?;
    let args = split_top_level(&text[open + 1..close]);
    let after = text[close + 1..].trim_start();
    let result = after
        .strip_prefix('=')
        .map(SyscallResult::parse)
        .unwrap_or_default();
    Some((name, args, result))
}

/// Index of the bracket closing the one `text` starts with; quotes and nested brackets are skipped.
fn matching_close(text: &str) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => i = skip_string(bytes, i),
            b'(' | b'[' | b'{' => stack.push(closer(b)),
            // an fd decoration: "3<...>" or "AT_FDCWD<...>"
            b'<' if i > 0 && (bytes[i - 1].is_ascii_alphanumeric()) => stack.push(b'>'),
            b')' | b']' | b'}' | b'>' if stack.last() == Some(&b) => {
                stack.pop();
                if stack.is_empty() {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Index of the closing quote of the string starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Splits at commas outside quotes and brackets; each part trimmed.
fn split_top_level(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut stack: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => i = skip_string(bytes, i),
            b'(' | b'[' | b'{' => stack.push(closer(b)),
            b'<' if i > 0 && bytes[i - 1].is_ascii_alphanumeric() => stack.push(b'>'),
            b')' | b']' | b'}' | b'>' if stack.last() == Some(&b) => {
                stack.pop();
            }
            b',' if stack.is_empty() => {
                parts.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = text[start..].trim();
    if !last.is_empty() || !parts.is_empty() {
        parts.push(last.to_string());
    }
    parts
}

/// Decodes a C-string argument `"\x2f..."` (any strace escaping); `None` if it is not a string.
pub fn decode_string(arg: &str) -> Option<Vec<u8>> {
    let arg = arg.trim_start_matches('@');
    let body = arg.strip_prefix('"')?;
    let end = skip_string(arg.as_bytes(), 0);
    let body = &body[..end.saturating_sub(1).min(body.len())];
    Some(unescape(body))
}

/// Undoes strace's escapes: `\xHH`, octal, `\n`, `\t`, `\\`, `\"`.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let e = bytes[i + 1];
        match e {
            b'x' => {
                let hex = text
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 4;
                    }
                    None => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            }
            b'0'..=b'7' => {
                let mut v: u32 = 0;
                let mut j = i + 1;
                while j < bytes.len() && j < i + 4 && (b'0'..=b'7').contains(&bytes[j]) {
                    v = v * 8 + u32::from(bytes[j] - b'0');
                    j += 1;
                }
                out.push(v as u8);
                i = j;
            }
            _ => {
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'v' => 0x0b,
                    b'f' => 0x0c,
                    other => other,
                });
                i += 2;
            }
        }
    }
    out
}

/// The text inside an argument's `<...>` decoration (`3<TCP:[...]>`, `AT_FDCWD<\x2f...>`).
fn decoration_inner(arg: &str) -> Option<String> {
    let start = arg.find('<')?;
    let bytes = arg.as_bytes();
    let mut depth = 0usize;
    let mut brackets = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'[' => brackets += 1,
            b']' => brackets = brackets.saturating_sub(1),
            b'<' if brackets == 0 => depth += 1,
            b'>' if brackets == 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(arg[start + 1..i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// A path decoration: escaped bytes, possibly followed by a nested `<char 1:3>` note.
fn unescape_path(inner: &str) -> String {
    let path_part = inner.split('<').next().unwrap_or(inner);
    String::from_utf8_lossy(&unescape(path_part)).into_owned()
}

fn path_of(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// A path argument resolved against its directory fd's decoration when relative.
fn resolve(dirfd: Option<&str>, path_arg: &str) -> Option<PathBuf> {
    let path = path_of(decode_string(path_arg)?);
    if path.is_absolute() {
        return Some(path);
    }
    match dirfd.and_then(decoration_inner) {
        Some(dir) => Some(Path::new(&unescape_path(&dir)).join(path)),
        None => Some(path),
    }
}

/// The fields of a printed struct `{a=1, b={...}, inet_pton(...)}`, as (key, value); keyless fields get key "".
fn struct_fields(arg: &str) -> Vec<(String, String)> {
    let inner = arg
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(arg);
    split_top_level(inner)
        .into_iter()
        .map(|field| match field.find('=') {
            Some(eq) if !field[..eq].contains('(') => {
                (field[..eq].to_string(), field[eq + 1..].to_string())
            }
            _ => (String::new(), field),
        })
        .collect()
}

/// A printed sockaddr -> (family, address): ("inet", "127.0.0.1:443"), ("inet6", "[::1]:53"), ("unix", "/run/x.sock").
pub fn decode_sockaddr(arg: &str) -> Option<(String, String)> {
    let fields = struct_fields(arg);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let family_raw = get("sa_family")?;
    let family = family_raw
        .strip_prefix("AF_")
        .unwrap_or(family_raw)
        .to_ascii_lowercase();
    let port = |v: Option<&str>| {
        v.and_then(|p| p.strip_prefix("htons("))
            .and_then(|p| p.strip_suffix(')'))
            .and_then(|p| p.parse::<u16>().ok())
    };
    let address = match family.as_str() {
        "inet" => {
            let addr = get("sin_addr")?
                .strip_prefix("inet_addr(")?
                .strip_suffix(')')?;
            let ip = String::from_utf8_lossy(&decode_string(addr)?).into_owned();
            format!("{ip}:{}", port(get("sin_port"))?)
        }
        "inet6" => {
            let pton = fields
                .iter()
                .find(|(k, v)| k.is_empty() && v.starts_with("inet_pton("))?
                .1
                .as_str();
            let inner = pton.strip_prefix("inet_pton(")?.strip_suffix(')')?;
            let ip_arg = split_top_level(inner).into_iter().nth(1)?;
            let ip = String::from_utf8_lossy(&decode_string(&ip_arg)?).into_owned();
            format!("[{ip}]:{}", port(get("sin6_port"))?)
        }
        "unix" => match get("sun_path") {
            Some(p) => {
                let abstract_ns = p.starts_with('@');
                let path = String::from_utf8_lossy(&decode_string(p)?).into_owned();
                if abstract_ns {
                    format!("@{path}")
                } else {
                    path
                }
            }
            None => "(unnamed)".to_string(),
        },
        _ => arg.to_string(),
    };
    Some((family, address))
}

/// `["\x2f\x62", "\x2d\x63"]` -> ["/b", "-c"].
fn decode_argv(arg: &str) -> Vec<String> {
    let inner = arg
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.rsplit_once(']'))
        .map(|(s, _)| s)
        .unwrap_or("");
    split_top_level(inner)
        .iter()
        .filter_map(|a| decode_string(a))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// An fd argument: decimal, decorated (`3<\x2f...>`) or raw hex (`0x3`).
fn fd_number(arg: &str) -> Option<i64> {
    let head = arg.split('<').next()?.trim();
    match head.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => head.parse().ok(),
    }
}

pub fn is_write_open(flags: &str) -> bool {
    flags.split('|').any(|f| WRITE_FLAGS.contains(&f.trim()))
}

/// An event decoded from one syscall, stamped with strace's wall-clock time.
#[derive(Debug, Clone)]
pub struct Traced {
    pub pid: u32,
    pub unix_time: f64,
    pub monitor: MonitorKind,
    pub kind: EventKind,
}

/// Turns strace lines into events, following threads and processes.
#[derive(Debug, Default)]
pub struct TraceInterpreter {
    parser: LineParser,
    /// thread id -> process id (thread group leader)
    leader: HashMap<u32, u32>,
    argv: HashMap<u32, Vec<String>>,
    /// Processes that belong to the harness (a namespace wrapper): their own calls are not evidence.
    wrappers: HashSet<u32>,
    first_pid_is_wrapper: bool,
    seen_any: bool,
    /// Files open for writing, by (process, fd): the path and the bytes written through the fd.
    written: HashMap<(u32, i64), (PathBuf, u64)>,
}

impl TraceInterpreter {
    /// With `first_pid_is_wrapper`, the first traced process is a launcher of the harness (e.g. `unshare`)
    /// whose own syscalls are left out; the processes it starts are evidence.
    pub fn new(first_pid_is_wrapper: bool) -> Self {
        TraceInterpreter {
            first_pid_is_wrapper,
            ..Default::default()
        }
    }

    fn process_of(&self, tid: u32) -> u32 {
        *self.leader.get(&tid).unwrap_or(&tid)
    }

    /// Feeds one line; returns the event it makes, if any.
    pub fn feed(&mut self, line: &str) -> Option<Traced> {
        let call = match self.parser.parse(line) {
            TraceLine::Call(call) => call,
            TraceLine::Exited { pid } => {
                self.leader.remove(&pid);
                self.written.retain(|(p, _), _| *p != pid);
                return None;
            }
            TraceLine::Other => return None,
        };
        if !self.seen_any {
            self.seen_any = true;
            if self.first_pid_is_wrapper {
                self.wrappers.insert(call.pid);
            }
        }
        let pid = self.process_of(call.pid);
        let from_wrapper = self.wrappers.contains(&pid);
        let args = &call.args;
        let arg = |i: usize| args.get(i).map(String::as_str);
        let ok = call.result.value == Some(0);
        let (monitor, kind) = match call.name.as_str() {
            "open" | "openat" | "creat" | "openat2" => {
                let (dirfd, path_arg, flags) = match call.name.as_str() {
                    "open" => (None, arg(0)?, arg(1)?.to_string()),
                    "creat" => (None, arg(0)?, "O_CREAT|O_WRONLY|O_TRUNC".to_string()),
                    "openat" => (arg(0), arg(1)?, arg(2)?.to_string()),
                    _ => {
                        let how = struct_fields(arg(2)?);
                        let flags = how
                            .into_iter()
                            .find(|(k, _)| k == "flags")
                            .map(|(_, v)| v)?;
                        (arg(0), arg(1)?, flags)
                    }
                };
                if !is_write_open(&flags) {
                    return None;
                }
                let path = match &call.result.decoration {
                    Some(p) if call.result.value.is_some_and(|v| v >= 0) && p.starts_with('/') => {
                        PathBuf::from(p)
                    }
                    _ => resolve(dirfd, path_arg)?,
                };
                let result = call.result.value.unwrap_or(-1);
                if result >= 0 && !from_wrapper {
                    self.written.insert((pid, result), (path.clone(), 0));
                }
                (
                    MonitorKind::Syscall,
                    EventKind::Open {
                        path,
                        flags,
                        result,
                    },
                )
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => {
                let n = call.result.value.filter(|v| *v > 0)?;
                if let Some((_, total)) = self.written.get_mut(&(pid, fd_number(arg(0)?)?)) {
                    *total += n as u64;
                }
                return None;
            }
            "close" => {
                let (path, written) = self.written.remove(&(pid, fd_number(arg(0)?)?))?;
                (MonitorKind::Syscall, EventKind::Closed { path, written })
            }
            "rename" | "renameat" | "renameat2" if ok => {
                let (from, to) = if call.name == "rename" {
                    (resolve(None, arg(0)?)?, resolve(None, arg(1)?)?)
                } else {
                    (resolve(arg(0), arg(1)?)?, resolve(arg(2), arg(3)?)?)
                };
                (MonitorKind::Syscall, EventKind::Rename { from, to })
            }
            "unlink" if ok => (
                MonitorKind::Syscall,
                EventKind::Unlink {
                    path: resolve(None, arg(0)?)?,
                },
            ),
            "unlinkat" if ok => (
                MonitorKind::Syscall,
                EventKind::Unlink {
                    path: resolve(arg(0), arg(1)?)?,
                },
            ),
            "connect" => {
                let (family, address) = decode_sockaddr(arg(1)?)?;
                (
                    MonitorKind::Egress,
                    EventKind::Connect {
                        address,
                        family,
                        result: call.result.describe(),
                    },
                )
            }
            "sendto" | "sendmsg" => {
                let explicit = if call.name == "sendto" {
                    arg(4)
                        .filter(|a| a.starts_with('{'))
                        .and_then(decode_sockaddr)
                } else {
                    struct_fields(arg(1)?)
                        .into_iter()
                        .find(|(k, _)| k == "msg_name")
                        .filter(|(_, v)| v.starts_with('{'))
                        .and_then(|(_, v)| decode_sockaddr(&v))
                };
                // A send on a connected socket goes where its connect() (already an event) or
                // accept() said: to a provider, or back to the client. Only an explicit
                // destination is news.
                // Netlink and unix datagrams never leave the machine.
                let (family, address) = explicit?;
                if family != "inet" && family != "inet6" {
                    return None;
                }
                let address = Some(address);
                let bytes = call.result.value.filter(|v| *v > 0).unwrap_or(0) as u64;
                (MonitorKind::Egress, EventKind::Send { address, bytes })
            }
            "execve" | "execveat" if ok => {
                let argv = decode_argv(if call.name == "execve" {
                    arg(1)?
                } else {
                    arg(2)?
                });
                self.argv.insert(pid, argv.clone());
                (MonitorKind::ProcessTree, EventKind::Exec { argv })
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                let child = u32::try_from(call.result.value.filter(|v| *v > 0)?).ok()?;
                if args.iter().any(|a| a.contains("CLONE_THREAD")) {
                    self.leader.insert(child, pid);
                    return None;
                }
                let argv = self.argv.get(&pid).cloned().unwrap_or_default();
                self.argv.insert(child, argv.clone());
                let parent = (!from_wrapper).then_some(pid);
                let event = EventKind::ProcessStarted { parent, argv };
                return Some(Traced {
                    pid: child,
                    unix_time: call.unix_time,
                    monitor: MonitorKind::ProcessTree,
                    kind: event,
                });
            }
            _ => return None,
        };
        if from_wrapper {
            return None;
        }
        Some(Traced {
            pid,
            unix_time: call.unix_time,
            monitor,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("\\x{b:02x}")).collect()
    }

    /// Feeds lines (with `{hex:...}` placeholders expanded) and returns the events as JSON values.
    fn check(first_is_wrapper: bool, lines: &[&str], expect: &[serde_json::Value]) {
        let mut interp = TraceInterpreter::new(first_is_wrapper);
        let got: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| expand(l))
            .filter_map(|l| interp.feed(&l))
            .map(|t| serde_json::json!({"pid": t.pid, "monitor": t.monitor, "kind": t.kind}))
            .collect();
        assert_eq!(got, expect, "lines: {lines:#?}");
    }

    fn expand(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find("{hex:") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace") + start;
            out.push_str(&hex(&rest[start + 5..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn opens_for_write_only() {
        check(
            false,
            &[
                r#"11834 1795941070.533590 openat(AT_FDCWD<{hex:/tmp/st}>, "{hex:/tmp/st/out file.txt}", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3<{hex:/tmp/st/out file.txt}>"#,
                r#"11834 1795941070.533591 openat(AT_FDCWD<{hex:/tmp/st}>, "{hex:/usr/lib/x.so}", O_RDONLY|O_CLOEXEC) = 3<{hex:/usr/lib/x.so}>"#,
                r#"11834 1795941070.533592 openat(AT_FDCWD<{hex:/tmp/st}>, "{hex:rel.txt}", O_RDWR|O_CREAT, 0600) = -1 EACCES (Permission denied)"#,
                r#"11619 1795941065.161978 openat(AT_FDCWD<{hex:/tmp/st}>, "{hex:/dev/null}", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3<{hex:/dev/null}<char 1:3>>"#,
                r#"12680 1795941085.149990 openat(AT_FDCWD<{hex:/tmp/st}>, "{hex:/tmp/st}", O_WRONLY|O_CLOEXEC|O_TMPFILE, 0600) = 6<{hex:/tmp/st/#10011062}>(deleted)"#,
                r#"7 1.5 creat("{hex:/var/tmp/c}", 0644) = 4<{hex:/var/tmp/c}>"#,
                r#"7 1.6 openat2(3<{hex:/root}>, "{hex:k}", {flags=O_RDWR|O_CREAT, mode=0600, resolve=0}, 24) = -1 ENOENT (No such file or directory)"#,
                r#"7 1.7 open("{hex:/etc/passwd}", O_RDONLY) = 3<{hex:/etc/passwd}>"#,
            ],
            &[
                serde_json::json!({"pid": 11834, "monitor": "syscall", "kind": {"type": "open", "path": "/tmp/st/out file.txt", "flags": "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", "result": 3}}),
                serde_json::json!({"pid": 11834, "monitor": "syscall", "kind": {"type": "open", "path": "/tmp/st/rel.txt", "flags": "O_RDWR|O_CREAT", "result": -1}}),
                serde_json::json!({"pid": 11619, "monitor": "syscall", "kind": {"type": "open", "path": "/dev/null", "flags": "O_WRONLY|O_CREAT|O_TRUNC", "result": 3}}),
                serde_json::json!({"pid": 12680, "monitor": "syscall", "kind": {"type": "open", "path": "/tmp/st/#10011062", "flags": "O_WRONLY|O_CLOEXEC|O_TMPFILE", "result": 6}}),
                serde_json::json!({"pid": 7, "monitor": "syscall", "kind": {"type": "open", "path": "/var/tmp/c", "flags": "O_CREAT|O_WRONLY|O_TRUNC", "result": 4}}),
                serde_json::json!({"pid": 7, "monitor": "syscall", "kind": {"type": "open", "path": "/root/k", "flags": "O_RDWR|O_CREAT", "result": -1}}),
            ],
        );
    }

    #[test]
    fn closes_of_written_files_count_the_bytes_written() {
        check(
            false,
            &[
                r#"9 1.0 openat(AT_FDCWD<{hex:/w}>, "{hex:/w/a/up.bin}", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3<{hex:/w/a/up.bin}>"#,
                r#"9 1.1 write(0x3, 0x7f12, 0x40) = 0x40"#,
                r#"9 1.2 pwrite64(0x3, 0x7f12, 0x10, 0x40) = 0x10"#,
                r#"9 1.3 write(0x1, 0x7f12, 0x400) = 0x400"#,
                r#"9 1.4 writev(0x3, 0x7f12, 0x2) = -1 EINTR (Interrupted system call)"#,
                r#"9 1.5 close(3<{hex:/w/a/up.bin}>) = 0"#,
                r#"9 1.6 close(4<{hex:/usr/lib/x.so}>) = 0"#,
                r#"9 1.7 close(3) = 0"#,
            ],
            &[
                serde_json::json!({"pid": 9, "monitor": "syscall", "kind": {"type": "open", "path": "/w/a/up.bin", "flags": "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", "result": 3}}),
                serde_json::json!({"pid": 9, "monitor": "syscall", "kind": {"type": "closed", "path": "/w/a/up.bin", "written": 80}}),
            ],
        );
    }

    #[test]
    fn renames_and_unlinks_that_succeeded() {
        check(
            false,
            &[
                r#"11834 1795941070.533795 rename("{hex:/tmp/st/out file.txt}", "{hex:/tmp/st/o2}") = 0"#,
                r#"11834 1795941070.533853 unlink("{hex:/tmp/st/o2}") = 0"#,
                r#"11834 1795941070.533854 unlink("{hex:/tmp/st/none}") = -1 ENOENT (No such file or directory)"#,
                r#"5 2.0 renameat2(AT_FDCWD<{hex:/w}>, "{hex:a.tmp}", 4<{hex:/w/out}>, "{hex:a.png}", RENAME_NOREPLACE) = 0"#,
                r#"5 2.1 unlinkat(5<{hex:/var/tmp}>, "{hex:x}", 0) = 0"#,
            ],
            &[
                serde_json::json!({"pid": 11834, "monitor": "syscall", "kind": {"type": "rename", "from": "/tmp/st/out file.txt", "to": "/tmp/st/o2"}}),
                serde_json::json!({"pid": 11834, "monitor": "syscall", "kind": {"type": "unlink", "path": "/tmp/st/o2"}}),
                serde_json::json!({"pid": 5, "monitor": "syscall", "kind": {"type": "rename", "from": "/w/a.tmp", "to": "/w/out/a.png"}}),
                serde_json::json!({"pid": 5, "monitor": "syscall", "kind": {"type": "unlink", "path": "/var/tmp/x"}}),
            ],
        );
    }

    #[test]
    fn connects_with_address_port_and_result() {
        check(
            false,
            &[
                r#"11834 1795941070.533963 connect(3<TCP:[17259]>, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("{hex:127.0.0.1}")}, 16) = -1 ECONNREFUSED (Connection refused)"#,
                r#"12005 1795941076.458607 connect(4<TCP:[17639]>, {sa_family=AF_INET, sin_port=htons(37659), sin_addr=inet_addr("{hex:127.0.0.1}")}, 16) = 0"#,
                r#"12680 1795941085.149115 connect(6<UDP:[19471]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("{hex:10.255.255.53}")}, 16) = -1 ENETUNREACH (Network is unreachable)"#,
                r#"11834 1795941070.536367 connect(6<UNIX-STREAM:[17266]>, {sa_family=AF_UNIX, sun_path="{hex:/tmp/nonexist.sock}"}, 21) = -1 ENOENT (No such file or directory)"#,
                r#"9 3.0 connect(5<TCPv6:[1]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "{hex:::1}", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS (Operation now in progress)"#,
            ],
            &[
                serde_json::json!({"pid": 11834, "monitor": "egress", "kind": {"type": "connect", "address": "127.0.0.1:9", "family": "inet", "result": "-1 ECONNREFUSED"}}),
                serde_json::json!({"pid": 12005, "monitor": "egress", "kind": {"type": "connect", "address": "127.0.0.1:37659", "family": "inet", "result": "0"}}),
                serde_json::json!({"pid": 12680, "monitor": "egress", "kind": {"type": "connect", "address": "10.255.255.53:53", "family": "inet", "result": "-1 ENETUNREACH"}}),
                serde_json::json!({"pid": 11834, "monitor": "egress", "kind": {"type": "connect", "address": "/tmp/nonexist.sock", "family": "unix", "result": "-1 ENOENT"}}),
                serde_json::json!({"pid": 9, "monitor": "egress", "kind": {"type": "connect", "address": "[::1]:443", "family": "inet6", "result": "-1 EINPROGRESS"}}),
            ],
        );
    }

    #[test]
    fn sends_with_an_explicit_internet_destination() {
        check(
            false,
            &[
                r#"11834 1795941070.536132 sendto(4<UDP:[17261]>, "{hex:hello}", 5, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("{hex:127.0.0.1}")}, 16) = 5"#,
                r#"11834 1795941070.536251 sendto(5<UDPv6:[17263]>, "{hex:hello}", 5, 0, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "{hex:::1}", &sin6_addr), sin6_scope_id=0}, 28) = 5"#,
                r#"12005 1795941076.460410 sendto(4<TCP:[127.0.0.1:44144->127.0.0.1:37659]>, "{hex:abc}", 3, 0, NULL, 0) = 3"#,
                r#"12005 1795941076.461957 sendmsg(4<TCP:[127.0.0.1:44144->127.0.0.1:37659]>, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="{hex:xyz}", iov_len=3}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 3"#,
                r#"12005 1795941076.462413 sendmsg(5<UDP:[127.0.0.1:49381->127.0.0.1:5353]>, {msg_name={sa_family=AF_INET, sin_port=htons(5354), sin_addr=inet_addr("{hex:127.0.0.1}")}, msg_namelen=16, msg_iov=[{iov_base="{hex:ab}", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ECONNREFUSED (Connection refused)"#,
                r#"8 4.0 sendto(3<UNIX-DGRAM:[100->101]>, "{hex:log}", 3, MSG_NOSIGNAL, NULL, 0) = 3"#,
            ],
            &[
                serde_json::json!({"pid": 11834, "monitor": "egress", "kind": {"type": "send", "address": "127.0.0.1:53", "bytes": 5}}),
                serde_json::json!({"pid": 11834, "monitor": "egress", "kind": {"type": "send", "address": "[::1]:53", "bytes": 5}}),
                serde_json::json!({"pid": 12005, "monitor": "egress", "kind": {"type": "send", "address": "127.0.0.1:5354", "bytes": 0}}),
            ],
        );
    }

    #[test]
    fn processes_threads_and_split_lines() {
        check(
            false,
            &[
                r#"11834 1795941070.477249 execve("{hex:/usr/bin/python3}", ["{hex:/usr/bin/python3}", "{hex:t.py}"], 0x7ffee51db6d0 /* 35 vars */) = 0"#,
                r#"11834 1795941070.477300 execve("{hex:/nope}", ["{hex:nope}"], 0x7ffee51db6d0 /* 35 vars */) = -1 ENOENT (No such file or directory)"#,
                r#"11834 1795941070.536521 vfork( <unfinished ...>"#,
                r#"11835 1795941070.541160 execve("{hex:/bin/sh}", ["{hex:/bin/sh}", "{hex:-c}", "{hex:echo hi > /tmp/st/sh.txt; true}"], 0x7fff2c46a4e0 /* 35 vars */ <unfinished ...>"#,
                r#"11834 1795941070.541379 <... vfork resumed>) = 11835"#,
                r#"11835 1795941070.541507 <... execve resumed>) = 0"#,
                r#"11835 1795941070.542494 +++ exited with 0 +++"#,
                r#"12680 1795941085.144390 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f80b5de0990, parent_tid=0x7f80b5de0990, exit_signal=0, stack=0x7f80b55e0000, stack_size=0x7fff80, tls=0x7f80b5de06c0} => {parent_tid=[12681]}, 88) = 12681"#,
                r#"12681 1795941085.144500 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f35cabd0a10) = 12690"#,
                r#"11834 1795941070.542760 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f5a4bfec310) = 11836"#,
                r#"11834  1795941070.542800 vfork()                           = 2 /* 25852 in strace's PID NS */"#,
                r#"11836 1795941070.544980 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---"#,
            ],
            &[
                serde_json::json!({"pid": 11834, "monitor": "process-tree", "kind": {"type": "exec", "argv": ["/usr/bin/python3", "t.py"]}}),
                serde_json::json!({"pid": 11835, "monitor": "process-tree", "kind": {"type": "process-started", "parent": 11834, "argv": ["/usr/bin/python3", "t.py"]}}),
                serde_json::json!({"pid": 11835, "monitor": "process-tree", "kind": {"type": "exec", "argv": ["/bin/sh", "-c", "echo hi > /tmp/st/sh.txt; true"]}}),
                // the thread 12681 forks on behalf of its process 12680
                serde_json::json!({"pid": 12690, "monitor": "process-tree", "kind": {"type": "process-started", "parent": 12680, "argv": []}}),
                serde_json::json!({"pid": 11836, "monitor": "process-tree", "kind": {"type": "process-started", "parent": 11834, "argv": ["/usr/bin/python3", "t.py"]}}),
                // inside a PID namespace: the pid as the harness sees it
                serde_json::json!({"pid": 25852, "monitor": "process-tree", "kind": {"type": "process-started", "parent": 11834, "argv": ["/usr/bin/python3", "t.py"]}}),
            ],
        );
    }

    #[test]
    fn wrapper_calls_are_left_out() {
        check(
            true,
            &[
                r#"100 1.0 execve("{hex:/usr/bin/unshare}", ["{hex:unshare}", "{hex:--pid}"], 0x1 /* 3 vars */) = 0"#,
                r#"100 1.1 openat(AT_FDCWD<{hex:/}>, "{hex:/tmp/w}", O_WRONLY|O_CREAT, 0600) = 3<{hex:/tmp/w}>"#,
                r#"100 1.2 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x1) = 101"#,
                r#"101 1.3 execve("{hex:/bin/app}", ["{hex:app}"], 0x1 /* 3 vars */) = 0"#,
            ],
            &[
                serde_json::json!({"pid": 101, "monitor": "process-tree", "kind": {"type": "process-started", "parent": null, "argv": ["unshare", "--pid"]}}),
                serde_json::json!({"pid": 101, "monitor": "process-tree", "kind": {"type": "exec", "argv": ["app"]}}),
            ],
        );
    }

    #[test]
    fn strings_decode_every_escape_style() {
        let cases: &[(&str, &[u8])] = &[
            (r#""\x2f\x74""#, b"/t"),
            (r#""a\"b\\c\n""#, b"a\"b\\c\n"),
            (r#""\0\377x""#, b"\0\xffx"),
            (r#""abc"..."#, b"abc"),
        ];
        for (arg, want) in cases {
            assert_eq!(decode_string(arg).as_deref(), Some(*want), "{arg}");
        }
        assert_eq!(decode_string("NULL"), None);
    }

    #[test]
    fn exit_lines_give_code_or_signal() {
        let cases = [
            (
                "11835 1795941070.542494 +++ exited with 0 +++",
                Some(ProcessExit {
                    pid: 11835,
                    code: Some(0),
                    signal: None,
                }),
            ),
            (
                "7  1.0 +++ exited with 3 +++",
                Some(ProcessExit {
                    pid: 7,
                    code: Some(3),
                    signal: None,
                }),
            ),
            (
                "8 1.0 +++ killed by SIGTERM +++",
                Some(ProcessExit {
                    pid: 8,
                    code: None,
                    signal: Some(15),
                }),
            ),
            (
                "9 1.0 +++ killed by SIGSEGV (core dumped) +++",
                Some(ProcessExit {
                    pid: 9,
                    code: None,
                    signal: Some(11),
                }),
            ),
            ("9 1.0 unlink(\"x\") = 0", None),
        ];
        for (line, want) in cases {
            assert_eq!(exit_line(line), want, "{line}");
        }
    }

    /// strace killed mid-write leaves a cut line: no prefix of any line these tests know, cut at any
    /// character, may panic the reader (a panicked reader reads nothing more).
    #[test]
    fn a_line_cut_anywhere_never_panics() {
        let source = include_str!("strace.rs");
        let lines: Vec<String> = source
            .split("r#\"")
            .skip(1)
            .filter_map(|rest| rest.split_once("\"#").map(|(line, _)| expand(line)))
            .collect();
        assert!(lines.len() > 20, "found only {} lines", lines.len());
        for line in &lines {
            for (cut, _) in line.char_indices() {
                let mut interp = TraceInterpreter::new(true);
                let _ = interp.feed(&line[..cut]);
                let _ = exit_line(&line[..cut]);
            }
        }
    }

    #[test]
    fn garbage_lines_are_ignored() {
        let mut interp = TraceInterpreter::new(false);
        for line in [
            "",
            "strace: Process 5 attached",
            "12 x openat(",
            "12 1.0 <... openat resumed>) = 3",
            "12 1.0 ???",
        ] {
            assert!(interp.feed(line).is_none(), "{line}");
        }
    }
}
