//! The audit's own resolver on loopback: listed names get their address, every other name NXDOMAIN,
//! and every question asked becomes a `DnsQuery` event (the egress monitor's view of name lookups).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::events::{EventKind, EventLog, MonitorKind};

const TTL: u32 = 60;

/// A running resolver; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Where it listens (UDP and TCP on the same port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn shutdown(self) {
        drop(self);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Lower-case, without the final dot: the key names are matched by.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

struct Zone {
    answers: HashMap<String, IpAddr>,
    log: EventLog,
}

impl Zone {
    /// The response to a raw query, or `None` when it is not a DNS query at all.
    fn answer(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let query = Message::from_vec(packet).ok()?;
        if query.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        response.add_queries(query.queries.iter().cloned());
        if query.metadata.op_code != OpCode::Query {
            response.metadata.response_code = ResponseCode::NotImp;
            return response.to_vec().ok();
        }
        let mut nxdomain = false;
        for q in &query.queries {
            let name = normalise(&q.name().to_ascii());
            let qtype = q.query_type();
            let known = self.answers.get(&name);
            let rdata = match (known, qtype) {
                (Some(IpAddr::V4(ip)), RecordType::A) => Some(RData::A(A(*ip))),
                (Some(IpAddr::V6(ip)), RecordType::AAAA) => Some(RData::AAAA(AAAA(*ip))),
                _ => None,
            };
            let answered = rdata.is_some();
            if let Some(rdata) = rdata {
                response.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
            }
            nxdomain |= known.is_none();
            self.log.record(
                MonitorKind::Egress,
                None,
                EventKind::DnsQuery {
                    name,
                    qtype: qtype.to_string(),
                    answered,
                },
            );
        }
        if nxdomain {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.to_vec().ok()
    }
}

/// How many free UDP ports are tried, for port 0, before giving up on finding the same TCP port free.
const PORT_ATTEMPTS: usize = 32;

/// Starts the resolver on `addr` (UDP, and TCP on the same port). With port 0, the port is one
/// free for both: a free UDP port's TCP twin may be taken on a busy machine, so another is tried.
pub async fn start(
    addr: SocketAddr,
    answers: HashMap<String, IpAddr>,
    log: EventLog,
) -> anyhow::Result<DnsServer> {
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut attempt = 0;
    let (udp, tcp) = loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding the audit's DNS resolver to udp {addr}"))?;
        let bound = udp.local_addr().context("reading the resolver's address")?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => break (udp, tcp),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < attempts => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("binding the audit's DNS resolver to tcp {bound}")));
            }
        }
    };
    let addr = udp.local_addr().context("reading the resolver's address")?;
    let zone = Arc::new(Zone {
        answers: answers
            .into_iter()
            .map(|(k, v)| (normalise(&k), v))
            .collect(),
        log,
    });

    let udp_zone = zone.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(reply) = udp_zone.answer(&buf[..n]) {
                let _ = udp.send_to(&reply, from).await;
            }
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                continue;
            };
            let zone = zone.clone();
            tokio::spawn(async move {
                // RFC 1035 4.2.2: each message is preceded by its length
                loop {
                    let Ok(len) = stream.read_u16().await else {
                        return;
                    };
                    let mut packet = vec![0u8; len as usize];
                    if stream.read_exact(&mut packet).await.is_err() {
                        return;
                    }
                    let Some(reply) = zone.answer(&packet) else {
                        return;
                    };
                    let Ok(reply_len) = u16::try_from(reply.len()) else {
                        return;
                    };
                    if stream.write_u16(reply_len).await.is_err()
                        || stream.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(DnsServer {
        addr,
        tasks: vec![udp_task, tcp_task],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    /// Sends one query from a blocking std socket, as a libc resolver would.
    fn ask(server: SocketAddr, packet: &[u8]) -> Message {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.send_to(packet, server).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer within 5 s");
        Message::from_vec(&buf[..n]).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_listed_names_and_records_every_query() {
        let log = EventLog::new();
        let answers = HashMap::from([
            (
                "api.openai.com".to_string(),
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            ),
            (
                "Generativelanguage.googleapis.com.".to_string(),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ),
        ]);
        let server = start("127.0.0.1:0".parse().unwrap(), answers, log.clone())
            .await
            .unwrap();
        let addr = server.local_addr();
        let (a, nx, aaaa, mismatch) = tokio::task::spawn_blocking(move || {
            (
                ask(addr, &query(1, "API.openai.com.", RecordType::A)),
                ask(addr, &query(2, "tracker.example.", RecordType::A)),
                ask(
                    addr,
                    &query(3, "generativelanguage.googleapis.com.", RecordType::AAAA),
                ),
                ask(addr, &query(4, "api.openai.com.", RecordType::AAAA)),
            )
        })
        .await
        .unwrap();

        assert_eq!(a.metadata.id, 1);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].data, RData::A(A(Ipv4Addr::new(127, 0, 0, 1))));
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert!(nx.answers.is_empty());
        assert_eq!(aaaa.answers[0].data, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)));
        assert_eq!(mismatch.metadata.response_code, ResponseCode::NoError);
        assert!(mismatch.answers.is_empty());

        let queries: Vec<(String, String, bool)> = log
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::DnsQuery {
                    name,
                    qtype,
                    answered,
                } => Some((name, qtype, answered)),
                _ => None,
            })
            .collect();
        assert_eq!(
            queries,
            vec![
                ("api.openai.com".to_string(), "A".to_string(), true),
                ("tracker.example".to_string(), "A".to_string(), false),
                (
                    "generativelanguage.googleapis.com".to_string(),
                    "AAAA".to_string(),
                    true
                ),
                ("api.openai.com".to_string(), "AAAA".to_string(), false),
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_over_tcp_and_ignores_garbage() {
        let log = EventLog::new();
        let answers = HashMap::from([(
            "mock.local".to_string(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)),
        )]);
        let server = start("127.0.0.1:0".parse().unwrap(), answers, log.clone())
            .await
            .unwrap();
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let packet = query(9, "mock.local.", RecordType::A);
        stream.write_u16(packet.len() as u16).await.unwrap();
        stream.write_all(&packet).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut reply = vec![0u8; len as usize];
        stream.read_exact(&mut reply).await.unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(
            reply.answers[0].data,
            RData::A(A(Ipv4Addr::new(127, 0, 0, 7)))
        );

        // not DNS: no answer and no event; the next real query on the same socket gets the first reply
        let addr = server.local_addr();
        let first_reply = tokio::task::spawn_blocking(move || {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            sock.send_to(b"\x01", addr).unwrap();
            sock.send_to(&query(10, "other.local.", RecordType::A), addr)
                .unwrap();
            let mut buf = [0u8; 512];
            let (n, _) = sock.recv_from(&mut buf).expect("a reply");
            Message::from_vec(&buf[..n]).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(first_reply.metadata.id, 10);
        assert_eq!(first_reply.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(log.len(), 2);
    }
}
