//! Plain text answers, streamed and as JSON.

use ferry_testkit::upstream::{Invariants, mount_sse_once, start};
use ferry_testkit::{Usage, sse, text_events};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::common::*;

#[tokio::test]
async fn streams_text() {
    let upstream = start().await;
    let mock = mount_sse_once(
        &upstream,
        sse(text_events("resp_1", &["Hel", "lo"], Usage::new(10, 2))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(
        resp.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let text = resp.text().await.unwrap();
    println!("{text}");
    let events = parse_sse(&text);
    assert_eq!(
        names(&events),
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(streamed_text(&events), "Hello");
    mock.set_invariants(Invariants {
        expect_prompt_cache_key: true,
        ..Invariants::default()
    });
    let req = mock.single_request();
    assert_eq!(req.body["model"], json!("gpt-5.1"));
    assert_eq!(req.path, "/responses");
}

#[tokio::test]
async fn answers_json() {
    let upstream = start().await;
    let _mock = mount_sse_once(
        &upstream,
        sse(text_events(
            "resp_1",
            &["Hel", "lo"],
            Usage::new(10, 2).cached(4),
        )),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    println!("{body:#}");
}

#[tokio::test]
async fn one_usage_record_per_request_with_every_field() {
    let (logs, _guard) = capture_logs();
    let upstream = start().await;
    let _mock = ferry_testkit::upstream::mount_sse(
        &upstream,
        sse(text_events(
            "resp_u",
            &["ok"],
            Usage::new(2000, 7).cached(1500),
        )),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let mut body = request("hi", true);
    body["speed"] = json!("fast");
    let resp = server
        .post("/v1/messages")
        .header("anthropic-beta", "fast-mode-2026-02-01")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    let _ = resp.text().await.unwrap();
    let usage = logs.wait_for("ferry::usage", 1).await;
    assert_eq!(usage.len(), 1);
    let mut u = usage[0].clone();
    let obj = u.as_object_mut().unwrap();
    let request_id = obj.remove("request_id").unwrap();
    assert!(request_id.as_str().unwrap().starts_with("req_"));
    assert!(obj.remove("duration_ms").unwrap().is_u64());
    assert!(obj.remove("first_token_ms").unwrap().is_u64());
    // `session` names the upstream session without logging its id: the first 8 hex digits
    // of sha256 of the `session_id` header the upstream got.
    let sent = upstream.received_requests().await.unwrap();
    let session_id = sent[0].headers["session_id"].to_str().unwrap();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(session_id.as_bytes());
    let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(obj.remove("session").unwrap(), json!(tag));
    // The price table's gpt-5.1 line: 500 uncached × $1.25/M + 1500 cached × $0.125/M
    // + 7 output × $10/M = $0.0008825.
    let cost = obj.remove("cost_usd").unwrap().as_f64().unwrap();
    assert!((cost - 0.000_882_5).abs() < 1e-12, "cost_usd {cost}");
    assert_eq!(
        u,
        json!({
            "message": "usage", "client": "alice", "account": "primary",
            "model": "claude-opus-4-8", "billing_model": "gpt-5.1", "upstream_model": "gpt-5.1",
            "stream": true, "status": 200, "outcome": "ok",
            "input_tokens": 500, "output_tokens": 7, "cache_read_tokens": 1500, "cache_creation_tokens": 0,
            "service_tier": "priority", "reasoning_effort": "medium", "prompt_cache_key_source": "digest",
            "continued": false, "response_id": "resp_u", "failovers": 0, "usage_implausible": false
        })
    );
    let metric = server
        .metric("ferry_cost_usd_total{client=\"alice\",model=\"gpt-5.1\"}")
        .await;
    assert!((metric - 0.000_882_5).abs() < 1e-12, "cost metric {metric}");
    // 1500 of 2000 prompt tokens from the cache: a hit, not a miss.
    assert_eq!(
        server
            .metric("ferry_tokens_total{kind=\"cache_read\"}")
            .await,
        1500.0
    );
    let text = server.metrics().await;
    assert!(
        text.contains("ferry_prompt_cache_hit_ratio_bucket{le=\"0.7\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("ferry_prompt_cache_hit_ratio_bucket{le=\"0.8\"} 1\n"),
        "{text}"
    );
    assert_eq!(
        server
            .metric("ferry_cache_miss_total{reason=\"new_session\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn a_cold_first_turn_counts_as_a_new_session_miss() {
    let upstream = start().await;
    let _mock = ferry_testkit::upstream::mount_sse(
        &upstream,
        sse(text_events("resp_m", &["ok"], Usage::new(4000, 7))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let _ = server
        .messages(&request("hi", false))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        server
            .metric("ferry_cache_miss_total{reason=\"new_session\"}")
            .await,
        1.0
    );
}
