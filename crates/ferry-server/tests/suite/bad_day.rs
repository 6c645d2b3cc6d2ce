//! Issue 15, items 8–10: what a broken upstream or a dying Redis does to the accounts and to
//! `/ready`, through the real server. Every wait is a bounded poll, never a speed assertion.

use std::time::Duration;

use ferry_testkit::upstream::{mount_fn, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;

use super::common::*;

/// Polls `GET /ready` (every 20 ms, up to 10 s) until it answers `status`.
async fn wait_ready(server: &TestServer, status: u16) {
    for _ in 0..500 {
        let got = server
            .client
            .get(server.url("/ready"))
            .send()
            .await
            .unwrap()
            .status();
        if got == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/ready did not answer {status} within 10 s");
}

async fn ready_status(server: &TestServer) -> u16 {
    server
        .client
        .get(server.url("/ready"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Item 8: `retry-after: 99999999` (3.2 years) benched the account for that long, and every
/// client got a 429 with that `retry-after`. The cooldown is capped
/// (`rate_limit.max_cooldown_secs`), the cap and the capped count are in the metrics, and
/// the account comes back when the cap runs out.
#[tokio::test]
async fn a_bogus_retry_after_is_capped_and_the_account_comes_back() {
    let upstream = start().await;
    let mock = mount_fn(&upstream, |_, n| {
        if n == 0 {
            status_response(
                429,
                &[("retry-after", "99999999")],
                r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
            )
        } else {
            sse_response(sse(text_events("resp_ok", &["back"], Usage::new(2, 2))))
        }
    })
    .await;

    // The shipped default: 2 h, and what a client is told to wait.
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (7000..=7200).contains(&retry_after),
        "retry-after {retry_after}"
    );
    assert_eq!(server.metric("ferry_cooldown_cap_seconds").await, 7200.0);
    assert_eq!(server.metric("ferry_cooldowns_capped_total").await, 1.0);
    assert_eq!(ready_status(&server).await, 503);
    assert_eq!(mock.count(), 1);
}

/// Item 8 with its own upstream: a 429 with `retry-after: 99999999`, then 200s. With
/// `max_cooldown` 300 ms the account is benched, `/ready` says 503, then recovers by itself
/// and the next request is served by the same account.
#[tokio::test]
async fn a_capped_cooldown_ends_and_ready_recovers() {
    let upstream = start().await;
    let mock = mount_fn(&upstream, |_, n| {
        if n == 0 {
            status_response(
                429,
                &[("retry-after", "99999999")],
                r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
            )
        } else {
            sse_response(sse(text_events("resp_ok", &["back"], Usage::new(2, 2))))
        }
    })
    .await;
    let mut c = config(&upstream.uri());
    c.rate_limit.max_cooldown = Duration::from_millis(300);
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after <= 1, "retry-after {retry_after}");
    assert_eq!(server.metric("ferry_cooldowns_capped_total").await, 1.0);
    assert_eq!(server.metric("ferry_cooldown_cap_seconds").await, 0.3);
    wait_ready(&server, 200).await;
    let body = json_body(server.messages(&request("again", false)).await).await;
    assert_eq!(body["content"][0]["text"], "back");
    assert_eq!(mock.count(), 2);
}

/// Item 9: one 401 on an API-key account disabled it until restart, and `/ready` stayed 503.
/// It is benched with back-off instead: `/ready` recovers when the bench ends, the account is
/// probed by the next request, a second 401 benches it for twice as long, and a success ends
/// the run.
#[tokio::test]
async fn a_transient_401_benches_an_api_key_account_with_back_off() {
    let upstream = start().await;
    // 401, 200, 401, 401, 200…
    let mock = mount_fn(&upstream, |_, n| {
        if matches!(n, 0 | 2 | 3) {
            status_response(
                401,
                &[],
                r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
            )
        } else {
            sse_response(sse(text_events("resp_ok", &["ok"], Usage::new(2, 2))))
        }
    })
    .await;
    let mut c = config(&upstream.uri());
    c.rate_limit.unauthorized_backoff = Duration::from_millis(200);
    let (logs, _guard) = capture_logs();
    let server = TestServer::start(c).await;

    let first = server.messages(&request("hi", false)).await;
    assert_eq!(first.status(), 502, "{:?}", first.text().await);
    assert_eq!(ready_status(&server).await, 503);
    wait_ready(&server, 200).await;
    let body = json_body(server.messages(&request("probe", false)).await).await;
    assert_eq!(body["content"][0]["text"], "ok");

    // Two 401s in a row: the second bench is twice the first (asked of the pool's log).
    assert_eq!(server.messages(&request("a", false)).await.status(), 502);
    wait_ready(&server, 200).await;
    assert_eq!(server.messages(&request("b", false)).await.status(), 502);
    wait_ready(&server, 200).await;
    let body = json_body(server.messages(&request("c", false)).await).await;
    assert_eq!(body["content"][0]["text"], "ok");
    assert_eq!(mock.count(), 5);

    let benches: Vec<u64> = logs
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "account cooling down")
        .filter_map(|v| v["fields"]["cooldown_ms"].as_u64())
        .collect();
    assert_eq!(benches, vec![200, 200, 400]);
    assert!(
        !logs.text().contains("disabled until restart"),
        "{}",
        logs.text()
    );
}
