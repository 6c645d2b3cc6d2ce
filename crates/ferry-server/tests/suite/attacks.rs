//! Attacks and faults of issue 15 (hostile clients, broken upstreams), each through the
//! running gateway on real sockets; the figures are in `docs/RELIABILITY.md`.

use std::time::Duration;

use ferry_server::Config;
use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
use ferry_testkit::*;
use futures_util::StreamExt as _;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use super::common::*;

/// Every wait in this file is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

/// Four `count_tokens` requests, each one 128 KB word (quadratic BPE merging took seconds
/// per request on the async workers), then `/health`: it answers at once while they run,
/// and every count answers with a plausible number.
#[tokio::test]
async fn huge_words_in_count_tokens_never_delay_health() {
    let server = TestServer::start(Config::for_tests()).await;
    let word = "a".repeat(128 * 1024);
    let body = serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": word}],
    }))
    .unwrap();
    let started = Instant::now();
    let counts: Vec<_> = (0..4)
        .map(|_| {
            let req = server
                .post("/v1/messages/count_tokens")
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            #[expect(clippy::disallowed_methods, reason = "the requests run side by side")]
            tokio::spawn(req)
        })
        .collect();
    // Let the counts reach the server first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health_sent = Instant::now();
    let health = timeout(BOUND, server.client.get(server.url("/health")).send())
        .await
        .expect("health answers")
        .unwrap();
    let health_ms = health_sent.elapsed().as_millis();
    assert_eq!(health.status(), 200);
    for c in counts {
        let resp = timeout(BOUND, c)
            .await
            .expect("count in time")
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let n = json_body(resp).await["input_tokens"].as_u64().unwrap();
        // o200k packs runs of one letter at several bytes a token.
        assert!((1_000..=140_000).contains(&n), "{n}");
    }
    let counts_ms = started.elapsed().as_millis();
    eprintln!("health answered in {health_ms} ms; the four counts took {counts_ms} ms");
    // A generous bound: on the async workers, health waited for every count (tens of s).
    assert!(health_ms < 2_000, "health took {health_ms} ms");
}

fn send(evs: Vec<Value>) -> Step {
    Step::Send(sse(evs))
}

fn fast_config(uri: &str, keepalive_ms: u64, idle_ms: u64) -> Config {
    let mut c = config(uri);
    c.gateway.stream_keepalive_interval = Some(Duration::from_millis(keepalive_ms));
    c.gateway.stream_data_interval_timeout = Some(Duration::from_millis(idle_ms));
    c
}

/// An upstream that answers 200 and then only SSE comments (`: ping` every 50 ms): the
/// client still gets ferry's pings, and the data-interval timeout ends the stream with an
/// `error` event (before: comments reset both timers and the client saw nothing, ever).
#[tokio::test]
async fn an_upstream_sending_only_comments_times_out_and_the_client_gets_pings() {
    let mut steps = vec![send(vec![ev_created("resp_c")])];
    for _ in 0..200 {
        steps.push(Step::Send(": ping\n\n".to_owned()));
        steps.push(Step::Sleep(Duration::from_millis(50)));
    }
    let upstream = ScriptedUpstream::start(vec![Script::sse(steps)]).await;
    let server = TestServer::start(fast_config(&upstream.uri(), 200, 700)).await;
    let started = Instant::now();
    let resp = timeout(BOUND, server.messages(&request("hi", true)))
        .await
        .expect("headers in time");
    assert_eq!(resp.status(), 200);
    let text = timeout(BOUND, resp.text())
        .await
        .expect("the stream ends in time (the upstream alone would go on for 10 s)")
        .unwrap();
    let elapsed = started.elapsed();
    let events = parse_sse(&text);
    let n = names(&events);
    let pings = n.iter().filter(|e| **e == "ping").count();
    assert!(pings >= 2, "{n:?}");
    assert_eq!(n.last(), Some(&"error"), "{n:?}");
    assert!(
        events.last().unwrap().data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data interval"),
        "{text}"
    );
    eprintln!("comment-only upstream: {pings} pings, error after {elapsed:?}");
}

/// One account with one slot; the first client reads its first event and leaves while
/// the upstream hangs. The second client is served at once (before: the drain kept the
/// slot for up to 4x the data interval and the second client got 529).
#[tokio::test]
async fn a_client_that_leaves_frees_the_account_slot_at_once() {
    let first = Script::sse(vec![
        send(vec![
            ev_created("resp_1"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "part"),
        ]),
        Step::Hang,
    ]);
    let second = Script::sse(vec![send(text_events("resp_2", &["ok"], Usage::new(5, 1)))]);
    let upstream = ScriptedUpstream::start(vec![first, second]).await;
    // A 60 s data interval: a drain that kept the slot would hold it far past the bound
    // below.
    let mut c = fast_config(&upstream.uri(), 5_000, 60_000);
    c.accounts[0].concurrency = 1;
    let server = TestServer::start(c).await;

    let resp = server.messages(&request("first", true)).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let chunk = timeout(BOUND, body.next()).await.expect("first bytes");
    assert!(chunk.is_some());
    drop(body);

    let started = Instant::now();
    let resp = timeout(
        Duration::from_secs(10),
        server.messages(&request("second", true)),
    )
    .await
    .expect("the second client is answered in time, not after the drain");
    let waited = started.elapsed();
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(streamed_text(&events), "ok");
    eprintln!("second client answered after {waited:?}");
}

/// A raw upstream that reads the request and then answers nothing for 3 s.
async fn silent_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "the test upstream runs for the whole test"
    )]
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            #[expect(clippy::disallowed_methods, reason = "one task per test connection")]
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                drop(stream);
            });
        }
    });
    format!("http://{addr}")
}

/// A client that leaves before the upstream's response headers still leaves exactly one
/// usage record (status 499, outcome `client_disconnected`) and one
/// `ferry_requests_total` count (before: neither).
#[tokio::test]
async fn a_client_that_leaves_before_upstream_headers_leaves_one_usage_record() {
    let (logs, _guard) = capture_logs();
    let uri = silent_upstream().await;
    let server = TestServer::start(config(&uri)).await;
    for stream in [true, false] {
        let sent = server
            .post("/v1/messages")
            .header("content-type", "application/json")
            .timeout(Duration::from_millis(300))
            .body(serde_json::to_vec(&request("hi", stream)).unwrap())
            .send()
            .await;
        assert!(sent.is_err(), "the upstream never answers");
    }
    let records = logs.wait_for("ferry::usage", 2).await;
    // Nothing more comes later (e.g. when the upstream finally closes).
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let records = {
        let later = logs.events("ferry::usage");
        assert_eq!(later.len(), records.len(), "{later:?}");
        later
    };
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["status"], json!(499), "{r}");
        assert_eq!(r["outcome"], json!("client_disconnected"), "{r}");
        assert_eq!(r["account"], json!("primary"), "{r}");
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"ferry_requests_total{status="499",stream="true"}"#
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            r#"ferry_requests_total{status="499",stream="false"}"#
        ),
        1.0
    );
}

/// An upstream reporting `input_tokens: 1e30` and `output_tokens: -5`: the client and the
/// log get 0 (before: 18446744073709551615 input tokens), the record is flagged and
/// `ferry_usage_implausible_total` counts it; in the stream and in JSON.
#[tokio::test]
async fn impossible_usage_numbers_are_dropped_and_flagged() {
    let (logs, _guard) = capture_logs();
    let mut events = text_events("resp_u", &["ok"], Usage::new(1, 1));
    let last = events.last_mut().unwrap();
    last["response"]["usage"] =
        json!({"input_tokens": 1e30, "output_tokens": -5, "total_tokens": 1e30});
    let body = sse(events);
    let mock = ferry_testkit::upstream::start().await;
    ferry_testkit::upstream::mount_sse(&mock, body).await;
    let server = TestServer::start(config(&mock.uri())).await;

    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let delta = events
        .iter()
        .find(|e| e.name == "message_delta")
        .expect("message_delta");
    assert_eq!(
        delta.data["usage"]["input_tokens"],
        json!(0),
        "{:?}",
        delta.data
    );
    assert_eq!(
        delta.data["usage"]["output_tokens"],
        json!(0),
        "{:?}",
        delta.data
    );

    let records = logs.wait_for("ferry::usage", 1).await;
    assert_eq!(records[0]["input_tokens"], json!(0));
    assert_eq!(records[0]["usage_implausible"], json!(true));
    assert_eq!(server.metric("ferry_usage_implausible_total").await, 1.0);
    let text = logs.text();
    assert!(!text.contains("18446744073709551615"), "{text}");
}

/// An upstream that floods a non-streaming client with SSE deltas (1 MiB of them against
/// a 64 KiB `gateway.max_line_bytes`): the buffered answer is refused with a clear 502
/// once it passes the cap, instead of growing without bound (before: 300 MB of deltas grew
/// RSS by 567 MB).
#[tokio::test]
async fn a_flood_of_sse_to_a_json_client_is_capped() {
    let delta = "x".repeat(1024);
    let deltas: Vec<&str> = std::iter::repeat_n(delta.as_str(), 1024).collect();
    let body = sse(text_events("resp_f", &deltas, Usage::new(5, 1024)));
    let mock = ferry_testkit::upstream::start().await;
    ferry_testkit::upstream::mount_sse(&mock, body).await;
    let mut c = config(&mock.uri());
    c.gateway.max_line_bytes = 64 * 1024;
    let server = TestServer::start(c).await;
    let resp = timeout(BOUND, server.messages(&request("hi", false)))
        .await
        .expect("answered in time");
    assert_eq!(resp.status(), 502);
    let v = json_body(resp).await;
    assert_eq!(v["type"], json!("error"));
    assert_eq!(v["error"]["type"], json!("api_error"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("gateway.max_line_bytes"), "{message}");
}

/// `server.max_connections = 3` and three idle keep-alive connections open: the fourth
/// gets a clean 503 `overloaded_error` and is closed; once one closes, a new connection is
/// served again (before: no limit, fd exhaustion stalled accept for everyone).
#[tokio::test]
async fn connections_past_the_limit_get_a_clean_503() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut c = Config::for_tests();
    c.server.max_connections = 3;
    let server = TestServer::start(c).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let health = "GET /health HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(health.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = timeout(BOUND, conn.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(conn);
    }
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    extra
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    timeout(BOUND, extra.read_to_string(&mut answer))
        .await
        .expect("refused in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["type"], json!("error"));
    assert_eq!(v["error"]["type"], json!("overloaded_error"));

    drop(held.pop());
    // The freed slot is taken again (the server notices the close on its next read).
    let mut served = false;
    for _ in 0..100 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = timeout(BOUND, conn.read_to_string(&mut answer)).await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a closed connection's slot was not given back");
    let refused = metric_value(&server.metrics().await, "ferry_connections_refused_total");
    assert!(refused >= 1.0, "{refused}");
}

/// An upstream that echoes the account's key (of no known shape) as `key:<v>` and
/// `authorization=Bearer <v>`, in a 400 and in a stream's `error` event after output:
/// neither the client nor any log line sees it (before: the pattern-based sanitiser
/// missed both, and the 400's message went to the client and the info log).
#[tokio::test]
async fn an_upstream_echoing_a_secret_never_gets_it_to_a_client_or_a_log() {
    let (logs, _guard) = capture_logs();
    let secret = "plainkey0123456789xyz";
    let echo = format!("bad key:{secret} authorization=Bearer {secret}");
    let mock = ferry_testkit::upstream::start().await;
    let mut events = text_events("resp_e", &["partial"], Usage::new(1, 1));
    events.pop();
    events.push(ev_error("server_error", &echo));
    ferry_testkit::upstream::mount_sequence(
        &mock,
        vec![
            ferry_testkit::upstream::status_response(
                400,
                &[],
                &json!({"error": {"message": echo, "type": "invalid_request_error"}}).to_string(),
            ),
            ferry_testkit::upstream::sse_response(sse(events)),
        ],
    )
    .await;
    let mut c = config(&mock.uri());
    c.accounts[0].api_key = Some(ferry_server::config::Secret::new(secret));
    let server = TestServer::start(c).await;

    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.contains(secret), "{text}");

    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains(secret), "{text}");

    logs.wait_for("ferry::usage", 2).await;
    let log = logs.text();
    assert!(!log.contains(secret), "{log}");
}
