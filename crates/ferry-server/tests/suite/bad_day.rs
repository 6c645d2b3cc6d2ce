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

/// The `/ready` body.
async fn ready_body(server: &TestServer) -> serde_json::Value {
    json_body(
        server
            .client
            .get(server.url("/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Polls `/ready` (every 20 ms, up to 10 s) until its `session_store` is `want`.
async fn wait_store(server: &TestServer, want: &str) {
    for _ in 0..500 {
        if ready_body(server).await["session_store"] == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/ready did not say session_store {want} within 10 s");
}

/// A config on `upstream` with the session store in Redis at `url`, a 100 ms operation
/// timeout and a 100 ms probe.
fn redis_config(upstream: &str, url: &str) -> ferry_server::Config {
    let mut c = config(upstream);
    c.session.store = ferry_server::config::SessionStoreKind::Redis {
        url: ferry_server::config::Secret::new(url),
    };
    c.session.redis_timeout = Duration::from_millis(100);
    c.session.redis_probe_interval = Duration::from_millis(100);
    c
}

/// Sends `n` requests, each with a 5 s client deadline (a frozen Redis cost 10 s per request
/// before the breaker), all answered 200; returns the slowest, for the figures.
async fn serve_n(server: &TestServer, n: usize, label: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let started = tokio::time::Instant::now();
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            server.messages(&request(&format!("{label} {i}"), false)),
        )
        .await
        .unwrap_or_else(|_| panic!("{label}: request {i} waited on Redis for 5 s"));
        assert_eq!(resp.status(), 200, "{label} {i}");
        let _ = resp.bytes().await;
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("{label}: slowest of {n} requests {slowest:?}");
    slowest
}

/// The number of ferry keys in the Redis at `port`.
fn redis_keys(port: u16) -> usize {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--scan", "--pattern", "ferry:*"])
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Item 10: while Redis was frozen every request waited 10 s, while it was down 2.7 s. A
/// circuit breaker fails the first operation after 100 ms (`session.redis_timeout_ms`),
/// then answers from local state at once; `/ready` and the metrics say "degraded"; when
/// Redis answers again the writes made meanwhile are replayed into it.
#[tokio::test]
async fn a_frozen_then_dead_redis_costs_no_request_a_wait() {
    let redis = ferry_testkit::redis::RedisServer::start();
    let upstream = start().await;
    mount_fn(&upstream, |_, _| {
        sse_response(sse(text_events("resp_ok", &["ok"], Usage::new(2, 2))))
    })
    .await;
    let server = TestServer::start(redis_config(&upstream.uri(), &redis.url())).await;
    serve_n(&server, 3, "redis up").await;
    assert_eq!(ready_body(&server).await["session_store"], "ok");
    let keys_before = redis_keys(redis.port());

    redis.freeze();
    serve_n(&server, 5, "redis frozen").await;
    let body = ready_body(&server).await;
    assert_eq!(
        (body["status"].as_str(), body["session_store"].as_str()),
        (Some("ready"), Some("degraded"))
    );
    assert_eq!(server.metric("ferry_session_store_degraded").await, 1.0);
    // One operation waited for the timeout; everything after it was answered locally.
    assert_eq!(server.metric("ferry_session_store_trips_total").await, 1.0);
    assert!(server.metric("ferry_session_store_local_ops_total").await >= 5.0);

    redis.thaw();
    wait_store(&server, "ok").await;
    assert!(server.metric("ferry_session_store_reconciled_total").await >= 1.0);
    assert_eq!(server.metric("ferry_session_store_degraded").await, 0.0);
    assert!(
        redis_keys(redis.port()) > keys_before,
        "the writes made while Redis was frozen are in it"
    );

    drop(redis);
    serve_n(&server, 5, "redis down").await;
    assert_eq!(ready_body(&server).await["session_store"], "degraded");
    assert_eq!(server.metric("ferry_session_store_trips_total").await, 2.0);
}

/// Item 10: `ferry serve` refused to start without Redis. It starts degraded, serves, and
/// becomes shared (with what it wrote meanwhile) when Redis comes up.
#[tokio::test]
async fn the_gateway_starts_degraded_without_redis_and_reconciles_when_it_comes() {
    let port = ferry_testkit::redis::free_port();
    let upstream = start().await;
    mount_fn(&upstream, |_, _| {
        sse_response(sse(text_events("resp_ok", &["ok"], Usage::new(2, 2))))
    })
    .await;
    let server = TestServer::start(redis_config(
        &upstream.uri(),
        &format!("redis://127.0.0.1:{port}"),
    ))
    .await;
    assert_eq!(ready_status(&server).await, 200);
    assert_eq!(ready_body(&server).await["session_store"], "degraded");
    serve_n(&server, 3, "no redis at start").await;

    let redis = ferry_testkit::redis::RedisServer::start_on(port);
    wait_store(&server, "ok").await;
    assert!(server.metric("ferry_session_store_reconciled_total").await >= 1.0);
    assert!(redis_keys(redis.port()) > 0);
    serve_n(&server, 2, "redis came up").await;
}

/// Item 9, the other half: a rotated key brings a benched API-key account back without a
/// restart. The account is benched for 10 minutes after its key was refused; reloading the
/// config with the new key (SIGHUP in `ferry serve`) makes it available at once, and the next
/// request goes out with the new key. Items 9 and 12 together.
#[tokio::test]
async fn a_rotated_key_brings_a_benched_account_back_on_reload() {
    let upstream = start().await;
    let mock = mount_fn(&upstream, |req, _| {
        if req.header("authorization") == Some("Bearer sk-rotated-key") {
            sse_response(sse(text_events("resp_ok", &["rotated"], Usage::new(2, 2))))
        } else {
            status_response(
                401,
                &[],
                r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
            )
        }
    })
    .await;
    let mut c = config(&upstream.uri());
    c.rate_limit.unauthorized_backoff = Duration::from_secs(600);
    let server = TestServer::start(c.clone()).await;
    assert_eq!(server.messages(&request("hi", false)).await.status(), 502);
    assert_eq!(ready_status(&server).await, 503);

    c.accounts[0].api_key = Some(ferry_accounts::Secret::new("sk-rotated-key"));
    let notes = server.reloader.reload(c).unwrap();
    assert_eq!(notes, Vec::<String>::new());
    assert_eq!(ready_status(&server).await, 200);
    let body = json_body(server.messages(&request("again", false)).await).await;
    assert_eq!(body["content"][0]["text"], "rotated");
    assert_eq!(
        mock.last_request().header("authorization"),
        Some("Bearer sk-rotated-key")
    );
    assert_eq!(mock.count(), 2);
}
