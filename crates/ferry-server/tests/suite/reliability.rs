//! Fault injection against the running gateway (the fault table of `docs/RELIABILITY.md`):
//! upstreams that reset, stall, flood, answer garbage, refuse connections or speak the wrong
//! protocol, and clients that read slowly, send half a body or leave by the thousand.
//!
//! Every upstream here is a raw TCP server written in this file (or wiremock), on
//! 127.0.0.1; every wait is bounded; each test takes well under 5 s.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
use ferry_testkit::upstream::{mount_sse, start, status_response};
use ferry_testkit::*;
use futures_util::StreamExt as _;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::common::*;
use ferry_server::Config;

/// Every request and wait in this file is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

// ---------------------------------------------------------------------------------------
// A raw upstream

/// A raw TCP upstream on 127.0.0.1: every connection has its request read, then is handed
/// to `answer` with a byte counter for what it writes.
struct RawUpstream {
    addr: std::net::SocketAddr,
    written: Arc<AtomicU64>,
    connections: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start<F, Fut>(answer: F) -> Self
    where
        F: Fn(TcpStream, Arc<AtomicU64>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (w, c) = (written.clone(), connections.clone());
        let answer = Arc::new(answer);
        #[expect(
            clippy::disallowed_methods,
            reason = "the test upstream runs for the whole test"
        )]
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (w, answer) = (w.clone(), answer.clone());
                #[expect(clippy::disallowed_methods, reason = "one task per test connection")]
                tokio::spawn(async move {
                    if read_request_head(&mut stream).await {
                        answer(stream, w).await;
                    }
                });
            }
        });
        Self {
            addr,
            written,
            connections,
        }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `content-length` body); false when the client went away.
async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    let end = loop {
        match stream.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - end;
    while have < len {
        match stream.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => have += n,
        }
    }
    true
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

/// Writes `bytes` and counts them.
async fn write_counted(stream: &mut TcpStream, written: &AtomicU64, bytes: &[u8]) -> bool {
    let ok = stream.write_all(bytes).await.is_ok();
    if ok {
        written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
    }
    ok
}

/// The first events of a text answer, up to and including one delta.
fn first_events(id: &str, text: &str) -> String {
    sse(vec![
        ev_created(id),
        ev_message_added(0, "msg_1"),
        ev_content_part_added(0, "msg_1"),
        ev_text_delta(0, "msg_1", text),
    ])
}

/// A gateway config on `uri` with the given idle timeout and no keep-alive pings.
fn cfg(uri: &str, idle: Duration) -> ferry_server::Config {
    let mut c = config(uri);
    c.gateway.stream_keepalive_interval = None;
    c.gateway.stream_data_interval_timeout = Some(idle);
    c.gateway.upstream_connect_timeout = Duration::from_secs(1);
    c.gateway.upstream_header_timeout = Duration::from_secs(2);
    c
}

/// Sends a request, reads its (status, JSON body), and says how long that took.
async fn timed_answer(server: &TestServer, stream: bool) -> ((u16, Value), Duration) {
    let started = Instant::now();
    let resp = send_bounded(server, &request("hi", stream)).await;
    let answer = (resp.status().as_u16(), json_body(resp).await);
    (answer, started.elapsed())
}

async fn send_bounded(server: &TestServer, body: &Value) -> reqwest::Response {
    timeout(BOUND, server.messages(body))
        .await
        .expect("the gateway answered in time")
}

async fn text_bounded(resp: reqwest::Response) -> String {
    timeout(BOUND, resp.text())
        .await
        .expect("the body ended in time")
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Upstream resets and stalls

#[tokio::test]
async fn upstream_reset_mid_stream_ends_with_an_error_event() {
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, SSE_HEAD).await;
        write_counted(&mut s, &w, first_events("resp_r", "partial").as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // RST instead of FIN.
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_secs(3))).await;
    let started = Instant::now();
    let resp = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&text_bounded(resp).await);
    assert_eq!(streamed_text(&events), "partial");
    let last = events.last().unwrap();
    assert_eq!(
        (last.name.as_str(), &last.data["error"]["type"]),
        ("error", &json!("api_error"))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.metric("ferry_open_streams").await, 0.0);
}

#[tokio::test]
async fn upstream_reset_before_any_output_is_a_502() {
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, SSE_HEAD).await;
        write_counted(&mut s, &w, sse(vec![ev_created("resp_r")]).as_bytes()).await;
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_secs(3))).await;
    for stream in [true, false] {
        let resp = send_bounded(&server, &request("hi", stream)).await;
        assert_eq!(resp.status(), 502, "stream {stream}");
        let body = json_body(resp).await;
        assert_eq!(body["error"]["type"], json!("api_error"), "{body}");
    }
}

#[tokio::test]
async fn upstream_closing_before_response_headers_is_a_502() {
    let upstream = RawUpstream::start(|s, _| async move { drop(s) }).await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_secs(3))).await;
    let resp = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(resp.status(), 502);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["type"], json!("api_error"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("upstream connection failed"),
        "{body}"
    );
    assert!(upstream.connections.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn upstream_silent_before_headers_is_a_504_after_the_header_timeout() {
    let upstream = RawUpstream::start(|s, _| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(s);
    })
    .await;
    let mut c = cfg(&upstream.uri(), Duration::from_secs(3));
    c.gateway.upstream_header_timeout = Duration::from_millis(400);
    let server = TestServer::start(c).await;
    let (answer, took) = timed_answer(&server, true).await;
    assert_eq!(
        answer,
        (
            504,
            error_body(
                "api_error",
                "upstream timed out: no response headers in time"
            )
        )
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn upstream_stalling_after_headers_is_a_504_after_the_idle_timeout() {
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, SSE_HEAD).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_millis(400))).await;
    for stream in [true, false] {
        let started = Instant::now();
        let resp = send_bounded(&server, &request("hi", stream)).await;
        let took = started.elapsed();
        assert_eq!(resp.status(), 504, "stream {stream}");
        assert_eq!(json_body(resp).await["error"]["type"], json!("api_error"));
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}

/// The head of a non-streamed JSON answer whose body is `len` bytes long.
fn json_head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn a_json_answer_stalling_mid_body_is_a_504_after_the_idle_timeout() {
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, &json_head(1000)).await;
        write_counted(&mut s, &w, b"{\"id\":\"resp_s\",").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_millis(400))).await;
    let (answer, took) = timed_answer(&server, false).await;
    assert_eq!(
        answer,
        (
            504,
            error_body(
                "api_error",
                "upstream timed out: no data from the upstream in time"
            )
        )
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_json_answer_trickling_past_the_answer_timeout_is_a_504() {
    // A byte every 100 ms never trips the 400 ms idle timeout; the 1 s answer timeout ends it.
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, &json_head(1000)).await;
        for _ in 0..100 {
            if !write_counted(&mut s, &w, b" ").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let mut c = cfg(&upstream.uri(), Duration::from_millis(400));
    c.gateway.upstream_json_timeout = Duration::from_secs(1);
    let server = TestServer::start(c).await;
    let (answer, took) = timed_answer(&server, false).await;
    assert_eq!(
        answer,
        (
            504,
            error_body(
                "api_error",
                "upstream timed out: the upstream answer did not arrive in time"
            )
        )
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn upstream_stalling_mid_stream_ends_with_an_error_event_after_the_idle_timeout() {
    let upstream = RawUpstream::start(|mut s, w| async move {
        write_counted(&mut s, &w, SSE_HEAD).await;
        write_counted(&mut s, &w, first_events("resp_s", "so far").as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_millis(400))).await;
    let started = Instant::now();
    let resp = send_bounded(&server, &request("hi", true)).await;
    let events = parse_sse(&text_bounded(resp).await);
    let took = started.elapsed();
    assert_eq!(streamed_text(&events), "so far");
    assert_eq!(
        events.last().unwrap().data,
        error_body(
            "api_error",
            "stream data interval timeout: the upstream sent nothing for too long"
        )
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(server.metric("ferry_open_streams").await, 0.0);
}

// ---------------------------------------------------------------------------------------
// Backpressure

#[tokio::test]
async fn a_slow_reader_stops_the_gateway_reading_the_upstream() {
    // The upstream offers up to 64 MiB of text deltas as fast as TCP lets it. The client
    // reads the first bytes, then nothing for a while. With backpressure the upstream is
    // stopped by full socket buffers (a few MiB in the kernel plus hyper's buffers); a
    // gateway that read ahead into memory would take all 64 MiB.
    const CAP: u64 = 64 << 20;
    let delta = "x".repeat(32 * 1024);
    let upstream = RawUpstream::start(move |mut s, w| {
        let delta = delta.clone();
        async move {
            write_counted(&mut s, &w, SSE_HEAD).await;
            write_counted(&mut s, &w, first_events("resp_b", "start").as_bytes()).await;
            let frame = sse(vec![ev_text_delta(0, "msg_1", &delta)]);
            while w.load(Ordering::SeqCst) < CAP {
                if !write_counted(&mut s, &w, frame.as_bytes()).await {
                    return;
                }
            }
        }
    })
    .await;
    let server = TestServer::start(cfg(&upstream.uri(), Duration::from_secs(10))).await;
    let resp = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = timeout(BOUND, body.next()).await.unwrap().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    // Let the buffers fill, then watch the upstream stop: the count must stay unchanged for
    // half a second (checked for up to 20 s, generous for a loaded machine). A gateway that
    // read ahead without bound would only stop at the 64 MiB cap, and fail the bound below.
    let mut stalled_at = upstream.written();
    let mut still_since = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = upstream.written();
        if now != stalled_at {
            stalled_at = now;
            still_since = tokio::time::Instant::now();
        } else if stalled_at > 0 && still_since.elapsed() >= Duration::from_millis(500) {
            break;
        }
    }
    assert!(
        still_since.elapsed() >= Duration::from_millis(500),
        "the upstream is still being read"
    );
    assert!(
        stalled_at < 24 << 20,
        "the gateway read {} MiB ahead of a client that reads nothing",
        stalled_at >> 20
    );
    // The client reads again: the stream resumes where it stopped.
    let mut got = first.len() as u64;
    let resumed = timeout(BOUND, async {
        while got < stalled_at + (8 << 20) {
            match body.next().await {
                Some(Ok(b)) => got += b.len() as u64,
                _ => break,
            }
        }
    })
    .await;
    assert!(resumed.is_ok(), "reading did not resume");
    assert!(
        upstream.written() > stalled_at,
        "the upstream was not read again"
    );
}

// ---------------------------------------------------------------------------------------
// Clients that misbehave

/// A raw HTTP/1.1 exchange with the gateway: writes `head`, then `body`, then `then`.
async fn raw_client(server: &TestServer, head: &str, body: &[u8], close_write: bool) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    if close_write {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = timeout(BOUND, s.read_to_end(&mut out))
        .await
        .expect("the gateway answered or closed in time");
    String::from_utf8_lossy(&out).into_owned()
}

fn post_head(content_length: usize) -> String {
    format!(
        "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {TEST_CLIENT_KEY}\r\ncontent-type: application/json\r\ncontent-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_half_sent_body_then_a_stall_gets_a_408_after_the_body_timeout() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_s", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let mut cfg = config(&upstream.uri());
    cfg.server.body_read_timeout = Duration::from_millis(500);
    let server = TestServer::start(cfg).await;
    let started = Instant::now();
    // 10 of 1000 announced bytes, then nothing: the write side stays open.
    let answer = raw_client(&server, &post_head(1000), br#"{"model":"c"#, false).await;
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.contains(r#""type":"invalid_request_error""#),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(mock.count(), 0);
    assert_eq!(
        send_bounded(&server, &request("hi", false)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_half_sent_body_then_close_gets_a_400_or_a_close() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_h", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let started = Instant::now();
    let answer = raw_client(&server, &post_head(1000), br#"{"model":"c"#, true).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    if !answer.is_empty() {
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(
            answer.contains(r#""type":"invalid_request_error""#),
            "{answer}"
        );
    }
    assert_eq!(mock.count(), 0);
    // The gateway still serves.
    assert_eq!(
        send_bounded(&server, &request("hi", false)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_body_longer_than_its_content_length_is_not_misread() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_h", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let body = serde_json::to_vec(&request("hi", false)).unwrap();
    // Declares 10 bytes fewer: the body is cut there (invalid JSON), the rest is read as
    // the next request and rejected.
    let answer = raw_client(&server, &post_head(body.len() - 10), &body, true).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn garbage_instead_of_http_closes_the_connection() {
    let server = TestServer::start(Config::for_tests()).await;
    let answer = raw_client(
        &server,
        "\x16\x03\x01\x02\x00garbage\r\n\r\n",
        &[0xff; 64],
        true,
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let health = timeout(BOUND, server.client.get(server.url("/health")).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Open file descriptors of this test process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[tokio::test]
async fn a_thousand_clients_leaving_mid_stream_leak_nothing() {
    const CLIENTS: usize = 1000;
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        Step::Send(first_events("resp_t", "first")),
        Step::Sleep(Duration::from_millis(300)),
        Step::Send(sse(vec![
            ev_text_delta(0, "msg_1", " more"),
            ev_completed("resp_t", Usage::new(3, 2)),
        ])),
    ])])
    .await;
    let mut c = cfg(&upstream.uri(), Duration::from_secs(3));
    c.accounts[0].concurrency = 2 * CLIENTS as u32;
    // 1,000 connects at once on one test thread: more than the 1 s of `cfg`.
    c.gateway.upstream_connect_timeout = Duration::from_secs(10);
    c.gateway.upstream_header_timeout = Duration::from_secs(10);
    let server = TestServer::start(c).await;
    // Connections are not kept for reuse, so every one of them must close.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body = serde_json::to_vec(&request("hi", true)).unwrap();
    // One whole request first, so that lazily started background tasks (the upstream
    // client's pool) are in the baseline.
    let warm = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(
        names(&parse_sse(&text_bounded(warm).await)).last(),
        Some(&"message_stop")
    );
    let fds_before = open_fds();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let started = Instant::now();
    let clients = (0..CLIENTS).map(|_| {
        let req = client
            .post(server.url("/v1/messages"))
            .header("x-api-key", TEST_CLIENT_KEY)
            .body(body.clone());
        async move {
            let resp = req.send().await.unwrap();
            if resp.status() != 200 {
                panic!("{}", resp.text().await.unwrap());
            }
            let mut s = resp.bytes_stream();
            let first = s.next().await.unwrap().unwrap();
            assert!(String::from_utf8_lossy(&first).contains("message_start"));
            // and leave
        }
    });
    timeout(
        Duration::from_secs(20),
        futures_util::future::join_all(clients),
    )
    .await
    .expect("every client got its first event");
    drop(client);
    let opened = started.elapsed();

    // Every stream is drained to its terminal event (usage), then everything closes and
    // every task ends. The bookkeeping a finished request leaves behind on purpose (usage,
    // budget and turn-log store writes, each a few store operations) may still be running
    // when the last socket closes, so the task count is part of the wait, not a snapshot.
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let settled = timeout(Duration::from_secs(10), async {
        loop {
            let open = server.metric("ferry_open_streams").await;
            let fds = open_fds();
            if open == 0.0
                && upstream.completed() == CLIENTS + 1
                && fds <= fds_before
                && alive() <= tasks_before
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "after {opened:?}: open streams {}, upstream completions {}/{}, fds {} (before {fds_before}), tasks alive {} (before {tasks_before})",
        server.metric("ferry_open_streams").await,
        upstream.completed(),
        CLIENTS + 1,
        open_fds(),
        alive(),
    );
    assert_eq!(
        server
            .metric("ferry_requests_total{status=\"200\",stream=\"true\"}")
            .await,
        (CLIENTS + 1) as f64
    );
}

// ---------------------------------------------------------------------------------------
// Upstreams answering garbage

/// The gateway's answer (status, body) to one request against an upstream answering
/// `template`.
async fn against(template: wiremock::ResponseTemplate, stream: bool) -> (u16, String) {
    let upstream = start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(template)
        .mount(&upstream)
        .await;
    let mut c = cfg(&upstream.uri(), Duration::from_secs(3));
    c.gateway.max_line_bytes = 64 * 1024;
    let server = TestServer::start(c).await;
    let resp = send_bounded(&server, &request("hi", stream)).await;
    let status = resp.status().as_u16();
    (status, text_bounded(resp).await)
}

fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).set_body_raw(body.into(), content_type)
}

/// The JSON 502 for a stream that ended before its terminal event (the wording differs
/// between the streaming and the accumulating path).
async fn garbage_is_a_502(template: wiremock::ResponseTemplate) {
    for (stream, message) in [
        (true, "upstream stream ended before a terminal event"),
        (
            false,
            "upstream stream ended without a terminal response event",
        ),
    ] {
        let (status, body) = against(template.clone(), stream).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, body),
            (502, error_body("api_error", message)),
            "stream {stream}"
        );
    }
}

#[tokio::test]
async fn upstream_html_with_200() {
    garbage_is_a_502(raw(
        200,
        "text/html",
        "<html><body>Welcome to nginx!</body></html>",
    ))
    .await;
}

#[tokio::test]
async fn upstream_binary_noise() {
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (status, body) = against(raw(200, "text/event-stream", noise), true).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &body["error"]["type"]),
        (502, &json!("api_error")),
        "{body}"
    );
}

#[tokio::test]
async fn upstream_invalid_json_frames_only() {
    garbage_is_a_502(raw(
        200,
        "text/event-stream",
        "event: response.output_text.delta\ndata: {not json\n\ndata: [1,2\n\n",
    ))
    .await;
}

#[tokio::test]
async fn upstream_invalid_json_in_the_terminal_event() {
    let mut body = first_events("resp_g", "text");
    body.push_str(
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":7}\n\n",
    );
    let (status, text) = against(raw(200, "text/event-stream", body), true).await;
    assert_eq!(status, 200);
    let events = parse_sse(&text);
    assert_eq!(streamed_text(&events), "text");
    let last = events.last().unwrap();
    assert_eq!(
        (last.name.as_str(), &last.data["error"]["type"]),
        ("error", &json!("api_error"))
    );
}

#[tokio::test]
async fn upstream_invalid_json_mid_stream_is_skipped() {
    let mut body = first_events("resp_g", "a");
    body.push_str("event: response.output_text.delta\ndata: {broken\n\n");
    body.push_str(&sse(vec![
        ev_text_delta(0, "msg_1", "b"),
        ev_completed("resp_g", Usage::new(1, 2)),
    ]));
    let (status, text) = against(raw(200, "text/event-stream", body), true).await;
    assert_eq!(status, 200);
    let events = parse_sse(&text);
    assert_eq!(streamed_text(&events), "ab");
    assert_eq!(names(&events).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn upstream_line_longer_than_the_limit() {
    // One 1 MiB line against a 64 KiB limit: refused without buffering it.
    let mut body = String::from("data: ");
    body.push_str(&"y".repeat(1 << 20));
    body.push_str("\n\n");
    let (status, text) = against(raw(200, "text/event-stream", body), true).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, &v["error"]["type"]),
        (502, &json!("api_error")),
        "{v}"
    );
}

#[tokio::test]
async fn upstream_json_answer_that_is_not_a_response_is_a_502() {
    for body in ["{not json", "[1,2,3]", r#"{"id":"resp_x","output":7}"#] {
        let (status, text) = against(raw(200, "application/json", body), false).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, &v["error"]["type"]),
            (502, &json!("api_error")),
            "{body}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(
                "upstream sent an invalid terminal event: the answer is not a response object"
            ),
            "{v}"
        );
    }
}

#[tokio::test]
async fn upstream_json_answer_larger_than_the_limit_is_a_502() {
    // 1 MiB against a 64 KiB limit.
    let body = format!(r#"{{"id":"resp_b","pad":"{}"}}"#, "y".repeat(1 << 20));
    let (status, text) = against(raw(200, "application/json", body), false).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, &v["error"]["type"]),
        (502, &json!("api_error")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_line_bytes"),
        "{v}"
    );
}

#[tokio::test]
async fn upstream_json_answer_with_a_failed_status_is_an_error() {
    let resp = json!({"id": "resp_f", "object": "response", "status": "failed", "model": "gpt-5.1",
        "output": [], "error": {"code": "server_error", "message": "The model had an error"}});
    let (status, text) = against(raw(200, "application/json", resp.to_string()), false).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, &v["error"]["type"]),
        (502, &json!("api_error")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The model had an error"),
        "{v}"
    );
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed() {
    for stream in [true, false] {
        let upstream = start().await;
        let target = start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(
                wiremock::ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/v1/responses", target.uri())),
            )
            .mount(&upstream)
            .await;
        let server = TestServer::start(cfg(&upstream.uri(), Duration::from_secs(3))).await;
        let resp = send_bounded(&server, &request("hi", stream)).await;
        assert_eq!(resp.status(), 502, "stream {stream}");
        assert_eq!(json_body(resp).await["error"]["type"], json!("api_error"));
        let followed = target.received_requests().await.unwrap_or_default();
        assert!(
            followed.is_empty(),
            "the redirect was followed: {followed:?}"
        );
    }
}

#[tokio::test]
async fn upstream_html_error_page() {
    let (status, body) = against(
        status_response(503, &[], "<html><h1>503 Service Unavailable</h1></html>"),
        true,
    )
    .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], json!("api_error"));
    assert!(!body.to_string().contains("<html>"), "{body}");
}

#[tokio::test]
async fn upstream_json_instead_of_sse_for_a_streaming_client_is_a_502() {
    // A 200 JSON response object (an upstream that ignored `stream: true`).
    let resp = json!({"id": "resp_j", "object": "response", "status": "completed", "model": "gpt-5.1",
        "output": [message_item("msg_1", "whole", "completed")], "usage": Usage::new(1, 1).to_json()});
    let (status, body) = against(raw(200, "application/json", resp.to_string()), true).await;
    assert_eq!(status, 502, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["type"], json!("api_error"));
}

#[tokio::test]
async fn upstream_json_answer_for_a_json_client_is_converted() {
    let resp = json!({"id": "resp_j", "object": "response", "status": "completed", "model": "gpt-5.1",
        "output": [message_item("msg_1", "whole", "completed")], "usage": Usage::new(1, 1).to_json()});
    let (status, body) = against(raw(200, "application/json", resp.to_string()), false).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["content"], json!([{"type": "text", "text": "whole"}]));
    // A `msg_…` id made from the upstream's, as a stream's `message_start` has.
    assert_eq!(body["id"], json!("msg_j"));
}

// ---------------------------------------------------------------------------------------
// Connection failures

/// A 127.0.0.1 port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

#[tokio::test]
async fn upstream_connection_refused_is_a_502() {
    let uri = format!("http://127.0.0.1:{}", closed_port().await);
    let server = TestServer::start(cfg(&uri, Duration::from_secs(3))).await;
    let started = Instant::now();
    for stream in [true, false] {
        let resp = send_bounded(&server, &request("hi", stream)).await;
        assert_eq!(resp.status(), 502);
        let body = json_body(resp).await;
        assert_eq!(body["error"]["type"], json!("api_error"), "{body}");
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "the upstream URL leaked: {body}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn upstream_connection_refused_fails_over_to_the_next_account() {
    let dead = format!("http://127.0.0.1:{}", closed_port().await);
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_f", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let mut c = cfg(&dead, Duration::from_secs(3));
    let mut second = account("secondary", &upstream.uri());
    second.priority = 1;
    c.accounts.push(second);
    let server = TestServer::start(c).await;
    let resp = send_bounded(&server, &request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_body(resp).await["content"],
        json!([{"type": "text", "text": "ok"}])
    );
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_502() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_t", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let uri = upstream.uri().replace("http://", "https://");
    let server = TestServer::start(cfg(&uri, Duration::from_secs(3))).await;
    let started = Instant::now();
    let resp = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(resp.status(), 502);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["type"], json!("api_error"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn tls_to_a_port_that_answers_garbage_is_a_502() {
    // Answers the TLS hello at once with a non-TLS banner.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "the test upstream runs for the whole test"
    )]
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        }
    });
    let server = TestServer::start(cfg(&format!("https://{addr}"), Duration::from_secs(3))).await;
    let resp = send_bounded(&server, &request("hi", false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(json_body(resp).await["error"]["type"], json!("api_error"));
}

#[tokio::test]
async fn an_upstream_that_never_accepts_is_a_timeout() {
    // A listener whose accept queue is never drained: the TCP handshake completes in the
    // kernel, then nothing; the header timeout ends the wait.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let mut c = cfg(&uri, Duration::from_secs(3));
    c.gateway.upstream_header_timeout = Duration::from_millis(300);
    let server = TestServer::start(c).await;
    let resp = send_bounded(&server, &request("hi", true)).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(json_body(resp).await["error"]["type"], json!("api_error"));
    drop(listener);
}
