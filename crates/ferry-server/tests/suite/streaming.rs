//! Time-dependent stream behaviour against a scripted upstream: keep-alive pings, the
//! data-interval timeout, client disconnects (usage still recorded) and graceful shutdown.

use std::time::Duration;

use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
use ferry_testkit::*;
use futures_util::StreamExt as _;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn send(evs: Vec<Value>) -> Step {
    Step::Send(sse(evs))
}

fn ms(n: u64) -> Step {
    Step::Sleep(Duration::from_millis(n))
}

fn fast_config(uri: &str, keepalive_ms: u64, idle_ms: u64) -> ferry_server::Config {
    let mut c = config(uri);
    c.gateway.stream_keepalive_interval = Some(Duration::from_millis(keepalive_ms));
    c.gateway.stream_data_interval_timeout = Some(Duration::from_millis(idle_ms));
    c
}

#[tokio::test]
async fn a_stalled_upstream_gets_pings_then_an_error_event() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_s"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "wait"),
        ]),
        Step::Hang,
    ])])
    .await;
    let server = TestServer::start(fast_config(&upstream.uri(), 100, 550)).await;
    let started = tokio::time::Instant::now();
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    let elapsed = started.elapsed();
    let n = names(&events);
    assert_eq!(
        &n[..3],
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    let pings = n.iter().filter(|n| **n == "ping").count();
    assert!((3..=6).contains(&pings), "{n:?}");
    assert_eq!(
        events.last().unwrap().data,
        json!({"type": "error", "error": {"type": "api_error", "message": "stream data interval timeout: the upstream sent nothing for too long"}})
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn pings_keep_a_slow_first_token_alive() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        ms(350),
        send(text_events("resp_k", &["late"], Usage::new(3, 1))),
    ])])
    .await;
    let server = TestServer::start(fast_config(&upstream.uri(), 100, 2000)).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let n = names(&events);
    assert_eq!(n[0], "ping", "{n:?}");
    assert_eq!(streamed_text(&events), "late");
    assert_eq!(n.last(), Some(&"message_stop"));
}

#[tokio::test]
async fn a_stalled_upstream_gives_a_json_client_504() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![ev_created("resp_s")]),
        Step::Hang,
    ])])
    .await;
    let server = TestServer::start(fast_config(&upstream.uri(), 100, 300)).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(json_body(resp).await["error"]["type"], json!("api_error"));
}

#[tokio::test]
async fn a_connection_cut_mid_stream_ends_with_an_error_event() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_x"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "so far"),
        ]),
        Step::Cut,
    ])])
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "so far");
    assert_eq!(events.last().unwrap().name, "error");
}

#[tokio::test]
async fn usage_is_recorded_when_the_client_disconnects() {
    let (logs, _guard) = capture_logs();
    let mut rest = vec![ev_text_delta(0, "m", " more")];
    rest.push(ev_completed("resp_d", Usage::new(11, 5).cached(4)));
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_d"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "first"),
        ]),
        ms(300),
        send(rest),
    ])])
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    drop(body); // the client goes away mid-stream

    let usage = logs.wait_for("ferry::usage", 1).await;
    assert_eq!(usage.len(), 1);
    let u = &usage[0];
    assert_eq!(
        (
            &u["outcome"],
            &u["input_tokens"],
            &u["output_tokens"],
            &u["cache_read_tokens"],
            &u["account"]
        ),
        (
            &json!("client_disconnected"),
            &json!(7),
            &json!(5),
            &json!(4),
            &json!("primary")
        )
    );
    assert_eq!(upstream.completed(), 1, "the upstream was read to its end");
    assert_eq!(
        server.metric("ferry_tokens_total{kind=\"output\"}").await,
        5.0
    );
    assert_eq!(server.metric("ferry_open_streams").await, 0.0);
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_an_error_event() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_g"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "going"),
        ]),
        ms(5000),
        send(vec![ev_completed("resp_g", Usage::new(1, 1))]),
    ])])
    .await;
    let mut cfg = config(&upstream.uri());
    cfg.server.shutdown_grace = Duration::from_millis(200);
    let server = TestServer::start(cfg).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    #[expect(
        clippy::disallowed_methods,
        reason = "the client reads while the test shuts the server down"
    )]
    let reading = tokio::spawn(async move { resp.text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = tokio::time::Instant::now();
    server.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let events = parse_sse(&reading.await.unwrap());
    assert_eq!(streamed_text(&events), "going");
    assert_eq!(
        events.last().unwrap().data,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "the gateway is shutting down"}})
    );
}

#[tokio::test]
async fn shutdown_lets_a_short_stream_finish() {
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_h"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "quick"),
        ]),
        ms(150),
        send(vec![ev_completed("resp_h", Usage::new(1, 1))]),
    ])])
    .await;
    let mut cfg = config(&upstream.uri());
    cfg.server.shutdown_grace = Duration::from_secs(3);
    let server = TestServer::start(cfg).await;
    let resp = server.messages(&request("hi", true)).await;
    #[expect(
        clippy::disallowed_methods,
        reason = "the client reads while the test shuts the server down"
    )]
    let reading = tokio::spawn(async move { resp.text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(30)).await;
    server.shutdown().await.unwrap();
    let events = parse_sse(&reading.await.unwrap());
    assert_eq!(names(&events).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn an_upstream_without_response_headers_times_out() {
    let upstream = ferry_testkit::upstream::start().await;
    let slow = ferry_testkit::upstream::sse_response(sse(text_events(
        "resp_t",
        &["late"],
        Usage::new(1, 1),
    )))
    .set_delay(Duration::from_secs(3));
    let _m = ferry_testkit::upstream::mount_sequence(&upstream, vec![slow]).await;
    let mut c = config(&upstream.uri());
    c.gateway.upstream_header_timeout = Duration::from_millis(300);
    let server = TestServer::start(c).await;
    let started = tokio::time::Instant::now();
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        json_body(resp).await,
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream timed out: no response headers in time"}})
    );
}

#[tokio::test]
async fn a_terminal_event_ends_the_answer_even_if_the_upstream_stays_open() {
    // Cases 6 and 7: a comment line, then a terminal event whose data has no
    // `type` (it is only in the `event:` line), and the connection never closes.
    let completed = ev_completed_with_output(
        "resp_o",
        vec![message_item("msg_1", "ok", "completed")],
        Usage::new(15, 6).cached(5),
    );
    let mut terminal = completed["response"].clone();
    terminal["id"] = json!("resp_o");
    let body = format!(
        ": keep-alive\n\nevent: response.completed\ndata: {}\n\n",
        json!({ "response": terminal })
    );
    let script = Script::sse(vec![
        send(vec![ev_created("resp_o")]),
        Step::Send(body),
        Step::Hang,
    ]);
    let upstream = ScriptedUpstream::start(vec![script.clone(), script]).await;
    let server = TestServer::start(fast_config(&upstream.uri(), 5000, 5000)).await;
    let started = tokio::time::Instant::now();
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    let delta = events.iter().find(|e| e.name == "message_delta").unwrap();
    assert_eq!(delta.data["delta"]["stop_reason"], json!("end_turn"));
    assert_eq!(
        (
            &delta.data["usage"]["input_tokens"],
            &delta.data["usage"]["output_tokens"],
            &delta.data["usage"]["cache_read_input_tokens"]
        ),
        (&json!(10), &json!(6), &json!(5))
    );
    let body = json_body(server.messages(&request("hi", false)).await).await;
    assert_eq!(body["content"], json!([{"type": "text", "text": "ok"}]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn usage_is_recorded_when_a_json_client_leaves_early() {
    let (logs, _guard) = capture_logs();
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![
            ev_created("resp_j"),
            ev_message_added(0, "m"),
            ev_text_delta(0, "m", "slow"),
        ]),
        ms(300),
        send(vec![ev_completed("resp_j", Usage::new(9, 4))]),
    ])])
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let gave_up = server
        .post("/v1/messages")
        .timeout(Duration::from_millis(100))
        .body(serde_json::to_vec(&request("hi", false)).unwrap())
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    let usage = logs.wait_for("ferry::usage", 1).await;
    let u = &usage[0];
    assert_eq!(
        (&u["input_tokens"], &u["output_tokens"], &u["stream"]),
        (&json!(9), &json!(4), &json!(false))
    );
    assert_eq!(upstream.completed(), 1);
}

#[tokio::test]
async fn usage_is_recorded_when_a_stream_client_leaves_before_the_first_token() {
    let (logs, _guard) = capture_logs();
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        send(vec![ev_created("resp_e")]),
        ms(300),
        send(text_events("resp_e", &["late"], Usage::new(8, 2))[2..].to_vec()),
    ])])
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let gave_up = server
        .post("/v1/messages")
        .timeout(Duration::from_millis(100))
        .body(serde_json::to_vec(&request("hi", true)).unwrap())
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    let usage = logs.wait_for("ferry::usage", 1).await;
    let u = &usage[0];
    assert_eq!(
        (&u["input_tokens"], &u["output_tokens"], &u["outcome"]),
        (&json!(8), &json!(2), &json!("client_disconnected"))
    );
    assert_eq!(upstream.completed(), 1);
    assert_eq!(server.metric("ferry_open_streams").await, 0.0);
}
