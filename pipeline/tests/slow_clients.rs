//! Slow clients over real loopback connections: 200 connections trickling their request a byte a
//! second leave normal requests answered within a second, and a head or body that trickles is cut
//! off at its read timeout.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A pipeline serving on a loopback port, pointed at wiremock providers; stops when dropped.
struct Served {
    addr: SocketAddr,
    _openai: MockServer,
    _gemini: MockServer,
    _stop: oneshot::Sender<()>,
}

async fn serve_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Served {
    let openai = MockServer::start().await;
    let gemini = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_ok_body(&output_png())))
        .mount(&openai)
        .await;
    let mut env = env_for(&openai.uri(), &gemini.uri());
    adjust(&mut env);
    let state = traceless_pipeline::AppState::new(&config_from(&env)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(traceless_pipeline::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        _openai: openai,
        _gemini: gemini,
        _stop: stop,
    }
}

fn request_head(form_len: usize) -> String {
    format!(
        "POST /v1/generations HTTP/1.1\r\nHost: pipeline\r\nContent-Type: {}\r\nContent-Length: {form_len}\r\n\r\n",
        Form::content_type()
    )
}

/// Sends a whole generation request and reads the answer; returns its status and how long it took.
async fn generation(addr: SocketAddr, image: &[u8]) -> (u16, Duration) {
    let body = Form::generation("openai", image).body();
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(request_head(body.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(&body).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no answer within 10 s");
    (status_of(&answer), started.elapsed())
}

fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_trickling_connections_leave_normal_requests_answered_within_a_second() {
    const TRICKLERS: usize = 200;
    const TRICKLE_SECONDS: u64 = 5;
    let served = serve_with(|_| {}).await;
    let image = random_png(32, 32);

    // Half trickle their request head, half send a whole head and trickle the body after the
    // start of a form: one byte a second each.
    let upload = Form::generation("openai", &random_png(256, 256)).body();
    let mut tricklers = Vec::new();
    for i in 0..TRICKLERS {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        let (sent, rest) = if i % 2 == 0 {
            let head = request_head(upload.len()).into_bytes();
            (head[..1].to_vec(), head[1..].to_vec())
        } else {
            let mut start = request_head(upload.len()).into_bytes();
            start.extend_from_slice(&upload[..64]);
            (start, upload[64..].to_vec())
        };
        stream.write_all(&sent).await.unwrap();
        tricklers.push((stream, rest));
    }
    let trickle = tokio::spawn(async move {
        for second in 0..TRICKLE_SECONDS as usize {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for (stream, rest) in &mut tricklers {
                // A connection the server closed is fine: only the normal requests are judged.
                let _ = stream.write_all(&rest[second..=second]).await;
            }
        }
        tricklers
    });

    // Normal requests, one after the other, for as long as the trickling goes on.
    let until = Instant::now() + Duration::from_secs(TRICKLE_SECONDS);
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let (status, took) = generation(served.addr, &image).await;
        assert_eq!(status, 200, "a normal request failed while others trickle");
        latencies.push(took);
    }
    let tricklers = trickle.await.unwrap();
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} normal requests beside {TRICKLERS} trickling connections; slowest {slowest:?}",
        latencies.len()
    );
    assert!(latencies.len() >= 3, "{latencies:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a normal request took {slowest:?} while {TRICKLERS} connections trickled: {latencies:?}"
    );
    drop(tricklers);
}

/// Writes `bytes` one every 100 ms until the server closes the connection; returns when it did,
/// after the connection opened, or `None` when it was still open after 10 s.
async fn trickle_until_closed(
    addr: SocketAddr,
    start: &[u8],
    bytes: &[u8],
) -> (Option<Duration>, Vec<u8>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    let (mut read, mut write) = stream.into_split();
    write.write_all(start).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = read.read_to_end(&mut answer).await;
        (opened.elapsed(), answer)
    });
    for byte in bytes.iter().take(100) {
        if reader.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if write.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
    }
    match tokio::time::timeout(Duration::from_millis(500), reader).await {
        Ok(joined) => {
            let (closed, answer) = joined.unwrap();
            (Some(closed), answer)
        }
        Err(_) => (None, Vec::new()),
    }
}

#[tokio::test]
async fn a_request_head_that_trickles_is_cut_off_at_the_header_read_timeout() {
    let served = serve_with(|env| {
        env.insert("TRACELESS_HEADER_READ_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    let head = request_head(100);
    let (closed, _) = trickle_until_closed(served.addr, b"P", &head.as_bytes()[1..]).await;
    let closed = closed.expect("the trickling head was still being read after 10 s");
    assert!(
        closed >= Duration::from_millis(450) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_is_answered_408_at_the_body_read_timeout() {
    let served = serve_with(|env| {
        env.insert("TRACELESS_BODY_READ_TIMEOUT_MS".into(), "700".into());
    })
    .await;
    let upload = Form::generation("openai", &random_png(64, 64)).body();
    let mut start = request_head(upload.len()).into_bytes();
    start.extend_from_slice(&upload[..64]);
    let (closed, answer) = trickle_until_closed(served.addr, &start, &upload[64..]).await;
    let closed = closed.expect("the trickling body was still being read after 10 s");
    assert!(
        closed >= Duration::from_millis(650) && closed < Duration::from_secs(3),
        "answered after {closed:?}"
    );
    assert_eq!(
        status_of(&answer),
        408,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(String::from_utf8_lossy(&answer).contains("request_timeout"));
}

#[tokio::test]
async fn a_normal_request_is_not_cut_off_by_the_read_timeouts() {
    let served = serve_with(|env| {
        env.insert("TRACELESS_HEADER_READ_TIMEOUT_MS".into(), "500".into());
        env.insert("TRACELESS_BODY_READ_TIMEOUT_MS".into(), "700".into());
    })
    .await;
    let (status, _) = generation(served.addr, &random_png(64, 64)).await;
    assert_eq!(status, 200);
}
