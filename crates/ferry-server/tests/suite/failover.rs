//! Several accounts: failover before the first byte, cooldowns, budgets.

use ferry_testkit::upstream::{
    mount_sequence, mount_sse, mount_sse_once, mount_status, sse_response, start, status_response,
};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::json;

use super::common::*;

fn two_accounts(a: &str, b: &str) -> ferry_server::Config {
    let mut c = config(a);
    c.accounts[0].name = "a".to_owned();
    let mut second = account("b", b);
    second.priority = 1;
    c.accounts.push(second);
    c
}

#[tokio::test]
async fn a_rate_limited_account_fails_over_and_cools_down() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(
        &ua,
        429,
        &[("retry-after", "30")],
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
    )
    .await;
    let b = mount_sse(
        &ub,
        sse(text_events("resp_b", &["from b"], Usage::new(2, 2))),
    )
    .await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "from b");
    let body = json_body(server.messages(&request("again", false)).await).await;
    assert_eq!(body["content"][0]["text"], json!("from b"));
    assert_eq!((a.count(), b.count()), (1, 2));
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"rate_limited\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("ferry_account_available{account=\"a\"}")
            .await,
        0.0
    );
    assert_eq!(
        server
            .metric("ferry_account_available{account=\"b\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn the_switch_budget_is_respected() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(&ua, 503, &[], r#"{"error":{"message":"unavailable"}}"#).await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    let mut c = two_accounts(&ua.uri(), &ub.uri());
    c.gateway.max_account_switches = 0;
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!((a.count(), b.count()), (1, 0));
}

#[tokio::test]
async fn every_account_down_gives_one_clear_error() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(
        &ua,
        429,
        &[("retry-after", "20")],
        r#"{"error":{"message":"slow down"}}"#,
    )
    .await;
    let b = mount_status(
        &ub,
        429,
        &[("retry-after", "40")],
        r#"{"error":{"message":"slow down"}}"#,
    )
    .await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let first = server.messages(&request("hi", true)).await;
    assert_eq!(first.status(), 429);
    assert_eq!(
        json_body(first).await["error"]["type"],
        json!("rate_limit_error")
    );
    let second = server.messages(&request("hi", true)).await;
    assert_eq!(second.status(), 429);
    let after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (15..=20).contains(&after),
        "retry-after {after}: the earliest account back"
    );
    assert_eq!((a.count(), b.count()), (1, 1));
}

#[tokio::test]
async fn request_errors_do_not_fail_over() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(&ua, 400, &[], r#"{"error":{"message":"maximum context length is 400000 tokens","code":"context_length_exceeded"}}"#).await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!((a.count(), b.count()), (1, 0));
    assert_eq!(
        server
            .metric("ferry_account_available{account=\"a\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_failure_after_the_first_byte_is_not_retried_elsewhere() {
    let (ua, ub) = (start().await, start().await);
    let evs = vec![
        ev_created("resp_a"),
        ev_message_added(0, "m"),
        ev_text_delta(0, "m", "started"),
        ev_failed("resp_a", "server_error", "upstream broke"),
    ];
    let a = mount_sse_once(&ua, sse(evs)).await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "started");
    assert_eq!(events.last().unwrap().name, "error");
    assert_eq!((a.count(), b.count()), (1, 0));
}

#[tokio::test]
async fn a_stream_failing_before_output_fails_over() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_sse_once(
        &ua,
        sse(vec![
            ev_created("resp_a"),
            ev_failed("resp_a", "server_is_overloaded", "busy"),
        ]),
    )
    .await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "b");
    assert_eq!(
        names(&events)
            .iter()
            .filter(|n| **n == "message_start")
            .count(),
        1
    );
    assert_eq!((a.count(), b.count()), (1, 1));
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"overloaded\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_unreachable_account_fails_over() {
    let ub = start().await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = TestServer::start(two_accounts(&dead, &ub.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(b.count(), 1);
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"transport\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("ferry_upstream_requests_total{account=\"a\",status=\"error\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn pool_mode_retries_the_same_account() {
    let ua = start().await;
    let a = mount_sequence(
        &ua,
        vec![
            status_response(500, &[], r#"{"error":{"message":"flaky"}}"#),
            sse_response(sse(text_events(
                "resp_a",
                &["second try"],
                Usage::new(1, 1),
            ))),
        ],
    )
    .await;
    let mut c = config(&ua.uri());
    c.accounts[0].pool_mode = true;
    c.accounts[0].pool_mode_retry_status_codes = Some(vec![500]);
    let server = TestServer::start(c).await;
    let body = json_body(server.messages(&request("hi", false)).await).await;
    assert_eq!(body["content"][0]["text"], json!("second try"));
    assert_eq!(a.count(), 2);
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"server_error\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn dropped_fields_are_counted_once_per_request() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(&ua, 503, &[], r#"{"error":{"message":"unavailable"}}"#).await;
    let b = mount_sse(&ub, sse(text_events("resp_b", &["b"], Usage::new(1, 1)))).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let mut body = request("hi", false);
    body["top_k"] = json!(5);
    body["container"] = json!("c_1");
    body["mcp_servers"] = json!([]);
    let resp = server.messages(&body).await;
    assert_eq!(resp.status(), 200);
    // Converted on both accounts, counted once.
    assert_eq!((a.count(), b.count()), (1, 1));
    let metrics = server.metrics().await;
    let value = |kind: &str| {
        metric_value(
            &metrics,
            &format!("ferry_dropped_fields_total{{kind=\"{kind}\"}}"),
        )
    };
    assert_eq!((value("top_k"), value("unknown_field")), (1.0, 2.0));
}
