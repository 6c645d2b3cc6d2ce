//! The account-pool scenarios of issue 7 through the whole server: Codex usage windows,
//! pool-mode retries, every account down, request errors, 403 counting, OAuth refresh under
//! concurrency, the Codex request shape, `/ready` and the pool metrics, and concurrency
//! slots shared by two replicas through one real `redis-server`.
//!
//! Cooldowns of minutes or hours are crossed by moving the server's clock: the gateway runs
//! on the test's runtime and keeps every cooldown in `tokio::time::Instant`, so [`jump`]
//! (pause, advance, resume) between two requests makes the time pass for the pool. Time is
//! never paused *during* a request: with real sockets a paused clock would auto-advance
//! while the upstream answers and fire the gateway's timeouts.

use std::time::Duration;

use ferry_accounts::{AccountConfig, CODEX_CLI_VERSION, Secret};
use ferry_server::config::SessionStoreKind;
use ferry_testkit::redis::RedisServer;
use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
use ferry_testkit::upstream::{
    mount_sequence, mount_sse, mount_status, sse_response, start, status_response,
};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::time::timeout;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::common::*;

/// Upper bound for any single answer: "never a hang".
const BOUND: Duration = Duration::from_secs(10);

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Accounts `a` (priority 0) on `ua` and `b` (priority 1) on `ub`.
fn two_accounts(ua: &str, ub: &str) -> ferry_server::Config {
    let mut c = config(ua);
    c.accounts[0].name = "a".to_owned();
    let mut b = account("b", ub);
    b.priority = 1;
    c.accounts.push(b);
    c
}

/// An OAuth (ChatGPT/Codex) account on `base_url`, without refresh token or expiry.
fn oauth(name: &str, base_url: &str) -> AccountConfig {
    let mut a = AccountConfig::oauth(name, Secret::new(TEST_UPSTREAM_KEY), None);
    a.base_url = Some(base_url.to_owned());
    a.chatgpt_account_id = Some(format!("acct_{name}"));
    a.default_model = Some("gpt-5.1-codex".to_owned());
    a
}

/// Moves the gateway's clock forward by `by` between requests, then gives the test a
/// fresh client (pooled connections may have timed out in the jump).
async fn jump(server: &mut TestServer, by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
    server.client = reqwest::Client::builder().no_proxy().build().unwrap();
}

/// One non-streaming request with a text of its own (so no sticky binding from an earlier
/// request applies), bounded by [`BOUND`]; returns the status, `retry-after` and body.
async fn ask(server: &TestServer, text: &str) -> (u16, Option<u64>, Value) {
    let resp = timeout(BOUND, server.messages(&request(text, false)))
        .await
        .expect("an answer in time");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, json_body(resp).await)
}

fn answer_text(body: &Value) -> &str {
    body["content"][0]["text"].as_str().unwrap_or_default()
}

async fn available(server: &TestServer, account: &str) -> f64 {
    server
        .metric(&format!("ferry_account_available{{account=\"{account}\"}}"))
        .await
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

/// A Codex usage-limit 429: the 5-hour window at `percent`, resetting in `reset_secs`.
fn usage_429(percent: &str, reset_secs: &str) -> ResponseTemplate {
    status_response(
        429,
        &[
            ("x-codex-primary-used-percent", percent),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-after-seconds", reset_secs),
            ("x-codex-secondary-used-percent", "40"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-after-seconds", "500000"),
        ],
        r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached"}}"#,
    )
}

fn text_sse(id: &str, text: &str) -> String {
    sse(text_events(id, &[text], Usage::new(3, 1)))
}

// ---------------------------------------------------------------------------------------
// Rate limits and usage windows

#[tokio::test]
async fn a_full_usage_window_keeps_the_account_out_until_the_window_resets() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_sequence(
        &ua,
        vec![
            usage_429("100", "3600"),
            sse_response(text_sse("resp_a", "a is back")),
        ],
    )
    .await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let mut c = config(&ua.uri());
    let mut second = oauth("b", &ub.uri());
    second.priority = 1;
    c.accounts = vec![oauth("a", &ua.uri()), second];
    let mut server = TestServer::start(c).await;

    let (status, _, body) = ask(&server, "one").await;
    assert_eq!((status, answer_text(&body)), (200, "from b"));
    assert_eq!((a.count(), b.count()), (1, 1));
    assert_eq!(available(&server, "a").await, 0.0);
    // The 429's usage headers are the account's latest snapshot.
    assert_eq!(
        server
            .metric("ferry_codex_usage_percent{account=\"a\",window=\"5h\"}")
            .await,
        100.0
    );

    // Long past the 5 s fallback cooldown, the window has not reset yet: `a` is skipped.
    jump(&mut server, Duration::from_secs(1800)).await;
    let (status, _, body) = ask(&server, "two").await;
    assert_eq!((status, answer_text(&body)), (200, "from b"));
    assert_eq!((a.count(), b.count()), (1, 2));
    assert_eq!(available(&server, "a").await, 0.0);

    // Once the window has reset, `a` takes traffic again.
    jump(&mut server, Duration::from_secs(1801)).await;
    assert_eq!(available(&server, "a").await, 1.0);
    let (status, _, body) = ask(&server, "three").await;
    assert_eq!((status, answer_text(&body)), (200, "a is back"));
    assert_eq!((a.count(), b.count()), (2, 2));
}

#[tokio::test]
async fn a_429_with_a_window_below_100_percent_only_gets_the_short_fallback() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_sequence(
        &ua,
        vec![
            usage_429("50", "3600"),
            sse_response(text_sse("resp_a", "a is back")),
        ],
    )
    .await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let mut c = config(&ua.uri());
    let mut second = oauth("b", &ub.uri());
    second.priority = 1;
    c.accounts = vec![oauth("a", &ua.uri()), second];
    let mut server = TestServer::start(c).await;

    let (status, _, body) = ask(&server, "one").await;
    assert_eq!((status, answer_text(&body)), (200, "from b"));
    assert_eq!(available(&server, "a").await, 0.0);
    // A window at 50 % is no proof of exhaustion: the 5 s fallback applies, not 3600 s.
    jump(&mut server, Duration::from_secs(6)).await;
    let (status, _, body) = ask(&server, "two").await;
    assert_eq!((status, answer_text(&body)), (200, "a is back"));
    assert_eq!((a.count(), b.count()), (2, 1));
}

// ---------------------------------------------------------------------------------------
// Pool mode, every account down, request errors

#[tokio::test]
async fn pool_mode_5xx_retries_the_same_account_then_fails_over() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(&ua, 503, &[], r#"{"error":{"message":"upstream busy"}}"#).await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let mut c = two_accounts(&ua.uri(), &ub.uri());
    c.accounts[0].pool_mode = true;
    c.accounts[0].pool_mode_retry_status_codes = Some(vec![500, 502, 503]);
    c.accounts[0].pool_mode_retry_count = Some(2);
    let server = TestServer::start(c).await;

    let (status, _, body) = ask(&server, "one").await;
    assert_eq!((status, answer_text(&body)), (200, "from b"));
    // One call and two same-account retries on `a`, then one switch to `b`.
    assert_eq!((a.count(), b.count()), (3, 1));
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"server_error\"}")
            .await,
        3.0
    );
    // The pool-mode soft cooldown keeps `a` out of the next request.
    assert_eq!(available(&server, "a").await, 0.0);
    let (status, _, _) = ask(&server, "two").await;
    assert_eq!(status, 200);
    assert_eq!((a.count(), b.count()), (3, 2));
}

#[tokio::test]
async fn every_account_down_answers_at_once_with_retry_after_and_recovers() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_sequence(
        &ua,
        vec![
            status_response(
                529,
                &[("retry-after", "7")],
                r#"{"error":{"message":"overloaded"}}"#,
            ),
            sse_response(text_sse("resp_a", "a is back")),
        ],
    )
    .await;
    let b = mount_status(
        &ub,
        429,
        &[("retry-after", "20")],
        r#"{"error":{"message":"Rate limit reached"}}"#,
    )
    .await;
    let mut server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;

    // Both fail on the first request: the last upstream error, with its retry-after.
    assert_eq!(
        ask(&server, "one").await,
        (
            429,
            Some(20),
            error_body("rate_limit_error", "upstream rate limit exceeded")
        )
    );
    // Then nothing is left: one overloaded error without an upstream call, retry-after
    // the earliest account's return.
    let (status, retry_after, body) = ask(&server, "two").await;
    assert_eq!(
        (status, body),
        (
            529,
            error_body(
                "overloaded_error",
                "every upstream account is busy or cooling down; retry later"
            )
        )
    );
    assert!(
        retry_after.is_some_and(|s| (1..=7).contains(&s)),
        "{retry_after:?}"
    );
    assert_eq!((a.count(), b.count()), (1, 1));
    assert_eq!(ready_status(&server).await, 503);

    jump(&mut server, Duration::from_secs(8)).await;
    assert_eq!(ready_status(&server).await, 200);
    let (status, _, body) = ask(&server, "three").await;
    assert_eq!((status, answer_text(&body)), (200, "a is back"));
}

#[tokio::test]
async fn a_context_length_error_is_prompt_too_long_and_does_not_fail_over() {
    let (ua, ub) = (start().await, start().await);
    let message = "Your input exceeds the context window of this model. Please adjust your input and try again.";
    let a = mount_status(
        &ua,
        400,
        &[],
        &json!({"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}})
            .to_string(),
    )
    .await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    for stream in [true, false] {
        let resp = timeout(BOUND, server.messages(&request("long", stream)))
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "stream {stream}");
        prompt_too_long_figures(&json_body(resp).await);
    }
    assert_eq!((a.count(), b.count()), (2, 0));
    assert_eq!(available(&server, "a").await, 1.0);
    let metrics = server.metrics().await;
    assert!(!metrics.contains("ferry_failovers_total{"), "{metrics}");
}

// ---------------------------------------------------------------------------------------
// 403s

#[tokio::test]
async fn structured_403s_cool_the_account_down_and_the_third_disables_it() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(
        &ua,
        403,
        &[],
        r#"{"error":{"message":"Request forbidden","code":"forbidden"}}"#,
    )
    .await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let mut server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;

    let mut seen = Vec::new();
    for (i, text) in ["one", "two", "three", "four"].into_iter().enumerate() {
        if i > 0 {
            // Past the 10-minute cooldown of a 403, well inside the 180-minute window.
            jump(&mut server, Duration::from_secs(601)).await;
        }
        let (status, _, body) = ask(&server, text).await;
        assert_eq!((status, answer_text(&body)), (200, "from b"), "{text}");
        seen.push((a.count(), available(&server, "a").await));
    }
    // 403 #1 and #2 cool `a` down for 10 minutes; #3 disables it: the 4th request, another
    // 10 minutes later, does not try it.
    assert_eq!(seen, vec![(1, 0.0), (2, 0.0), (3, 0.0), (3, 0.0)]);
    assert_eq!(b.count(), 4);
    jump(&mut server, Duration::from_secs(3600)).await;
    assert_eq!(available(&server, "a").await, 0.0);
}

#[tokio::test]
async fn an_html_403_fails_over_without_penalising_the_account() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_status(
        &ua,
        403,
        &[],
        "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>",
    )
    .await;
    let b = mount_sse(&ub, text_sse("resp_b", "from b")).await;
    let server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let mut seen = Vec::new();
    for text in ["one", "two", "three", "four"] {
        let (status, _, body) = ask(&server, text).await;
        assert_eq!((status, answer_text(&body)), (200, "from b"), "{text}");
        seen.push((a.count(), available(&server, "a").await));
    }
    // Tried on every request, never cooled down or counted towards disabling.
    assert_eq!(seen, vec![(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)]);
    assert_eq!(b.count(), 4);
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"forbidden\"}")
            .await,
        4.0
    );
}

// ---------------------------------------------------------------------------------------
// /ready and ferry_account_available

#[tokio::test]
async fn ready_and_account_gauges_follow_the_cooldowns() {
    let (ua, ub) = (start().await, start().await);
    let a = mount_sequence(
        &ua,
        vec![
            status_response(
                429,
                &[("retry-after", "30")],
                r#"{"error":{"message":"slow down"}}"#,
            ),
            sse_response(text_sse("resp_a", "a is back")),
        ],
    )
    .await;
    let b = mount_sequence(
        &ub,
        vec![status_response(
            429,
            &[("retry-after", "90")],
            r#"{"error":{"message":"slow down"}}"#,
        )],
    )
    .await;
    let mut server = TestServer::start(two_accounts(&ua.uri(), &ub.uri())).await;
    let gauges = async |s: &TestServer| {
        (
            ready_status(s).await,
            available(s, "a").await,
            available(s, "b").await,
        )
    };
    assert_eq!(gauges(&server).await, (200, 1.0, 1.0));
    assert_eq!(ask(&server, "one").await.0, 429);
    assert_eq!(gauges(&server).await, (503, 0.0, 0.0));
    jump(&mut server, Duration::from_secs(31)).await;
    assert_eq!(gauges(&server).await, (200, 1.0, 0.0));
    let (status, _, body) = ask(&server, "two").await;
    assert_eq!((status, answer_text(&body)), (200, "a is back"));
    jump(&mut server, Duration::from_secs(60)).await;
    assert_eq!(gauges(&server).await, (200, 1.0, 1.0));
    assert_eq!((a.count(), b.count()), (2, 1));
}

// ---------------------------------------------------------------------------------------
// OAuth: refresh under concurrency, Codex request shape, usage metrics

const OLD_TOKEN: &str = "oauth-access-old-7c1d";
const NEW_TOKEN: &str = "oauth-access-new-93ab";

/// A token endpoint that answers one refresh slowly (so that concurrent requests pile up
/// behind it) and fails the test if called more than once.
async fn mount_token_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    json!({"access_token": NEW_TOKEN, "refresh_token": "rt-2", "expires_in": 3600})
                        .to_string(),
                    "application/json",
                )
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_for_token(server: &MockServer, token: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/responses"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn refreshing_account(upstream: &MockServer) -> AccountConfig {
    let mut a = AccountConfig::oauth("codex", Secret::new(OLD_TOKEN), Some(Secret::new("rt-1")));
    a.base_url = Some(upstream.uri());
    a.token_url = Some(format!("{}/oauth/token", upstream.uri()));
    a.chatgpt_account_id = Some("acct_codex".to_owned());
    a.default_model = Some("gpt-5.1-codex".to_owned());
    a.concurrency = 32;
    a
}

/// Sends 20 requests at once; returns their statuses.
async fn twenty_at_once(server: &TestServer) -> Vec<u16> {
    let all = (0..20).map(|i| async move {
        let resp = server.messages(&request(&format!("q{i}"), false)).await;
        resp.status().as_u16()
    });
    timeout(BOUND, futures_util::future::join_all(all))
        .await
        .expect("all answered")
}

/// `(authorization value, count)` of the upstream `/responses` calls, sorted.
async fn calls_by_token(server: &MockServer) -> Vec<(String, usize)> {
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for r in server.received_requests().await.unwrap() {
        if r.url.path() == "/responses" {
            let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
            *by.entry(auth.to_owned()).or_default() += 1;
        }
    }
    by.into_iter().collect()
}

async fn token_calls(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/oauth/token")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .map(|b| json!({"grant_type": b["grant_type"], "refresh_token": b["refresh_token"]}))
        .collect()
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_for_twenty_concurrent_requests() {
    let upstream = start().await;
    mount_token_endpoint(&upstream).await;
    mount_for_token(
        &upstream,
        NEW_TOKEN,
        sse_response(text_sse("resp_n", "fresh")),
    )
    .await;
    let mut account = refreshing_account(&upstream);
    // Expired a minute ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    account.expires_at = Some(ferry_accounts::ExpiresAt(now - 60));
    let mut c = config(&upstream.uri());
    c.accounts = vec![account];
    let server = TestServer::start(c).await;

    assert_eq!(twenty_at_once(&server).await, vec![200; 20]);
    assert_eq!(
        token_calls(&upstream).await,
        vec![json!({"grant_type": "refresh_token", "refresh_token": "rt-1"})]
    );
    // The expired token never reached the upstream.
    assert_eq!(
        calls_by_token(&upstream).await,
        vec![(format!("Bearer {NEW_TOKEN}"), 20)]
    );
}

#[tokio::test]
async fn twenty_concurrent_401s_cause_exactly_one_refresh() {
    let upstream = start().await;
    mount_token_endpoint(&upstream).await;
    mount_for_token(
        &upstream,
        OLD_TOKEN,
        status_response(
            401,
            &[],
            r#"{"error":{"message":"Your authentication token has expired.","code":"token_expired"}}"#,
        ),
    )
    .await;
    mount_for_token(
        &upstream,
        NEW_TOKEN,
        sse_response(text_sse("resp_n", "fresh")),
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![refreshing_account(&upstream)];
    let server = TestServer::start(c).await;

    assert_eq!(twenty_at_once(&server).await, vec![200; 20]);
    assert_eq!(
        token_calls(&upstream).await,
        vec![json!({"grant_type": "refresh_token", "refresh_token": "rt-1"})]
    );
    // Each request that went out with the old token got a 401 and was retried once with
    // the new one; a request that started after the first 401 waited for the refresh.
    let calls = calls_by_token(&upstream).await;
    let count = |token: &str| {
        calls
            .iter()
            .find(|(auth, _)| *auth == format!("Bearer {token}"))
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(count(NEW_TOKEN), 20, "{calls:?}");
    assert!((1..=20).contains(&count(OLD_TOKEN)), "{calls:?}");
    assert_eq!(available(&server, "codex").await, 1.0);
    // The refreshed token is kept: the next request needs no refresh.
    assert_eq!(ask(&server, "later").await.0, 200);
    assert_eq!(token_calls(&upstream).await.len(), 1);
}

#[tokio::test]
async fn oauth_requests_carry_the_codex_headers_and_body() {
    let upstream = start().await;
    let mock = mount_sse(&upstream, text_sse("resp_c", "ok")).await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![oauth("codex", &upstream.uri())];
    let server = TestServer::start(c).await;
    let mut body = request("hi", false);
    body["system"] = json!("You are Claude Code.");
    body["temperature"] = json!(0.2);
    body["metadata"] = json!({"user_id": "user_abc_account__session_7d1f"});
    let resp = server
        .post("/v1/messages")
        .header("content-type", "application/json")
        .header("user-agent", "claude-cli/2.1.3 (external, cli)")
        .header("x-app", "cli")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = mock.single_request();
    let headers: Vec<(&str, Option<&str>)> = [
        "authorization",
        "chatgpt-account-id",
        "openai-beta",
        "originator",
        "user-agent",
        "version",
        "accept",
        "content-type",
        "conversation_id",
        "x-app",
    ]
    .into_iter()
    .map(|h| (h, r.header(h)))
    .collect();
    let ua = format!("codex_cli_rs/{CODEX_CLI_VERSION}");
    let bearer = format!("Bearer {TEST_UPSTREAM_KEY}");
    assert_eq!(
        headers,
        vec![
            ("authorization", Some(bearer.as_str())),
            ("chatgpt-account-id", Some("acct_codex")),
            ("openai-beta", Some("responses=experimental")),
            ("originator", Some("codex_cli_rs")),
            ("user-agent", Some(ua.as_str())),
            ("version", Some(CODEX_CLI_VERSION)),
            ("accept", Some("text/event-stream")),
            ("content-type", Some("application/json")),
            ("conversation_id", None),
            ("x-app", None),
        ]
    );
    // The session id is a UUID derived from the prompt cache key.
    let session_id = r.header("session_id").unwrap();
    assert!(uuid_like(session_id), "{session_id}");
    // The whole body: store off, always streamed, an `instructions` string (the system
    // prompt travels as a developer message), no prompt_cache_key (it became the
    // session_id header), no sampling fields or metadata.
    assert_eq!(
        r.body,
        json!({
            "model": "gpt-5.1-codex",
            "instructions": "",
            "input": [
                {"type": "message", "role": "developer",
                 "content": [{"type": "input_text", "text": "You are Claude Code."}]},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "hi"}]}
            ],
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "medium"},
            "store": false,
            "stream": true
        })
    );
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<usize> = s.split('-').map(str::len).collect();
    parts == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn codex_usage_headers_are_exported_as_metrics() {
    let upstream = start().await;
    let reply = sse_response(text_sse("resp_u", "ok"))
        .insert_header("x-codex-primary-used-percent", "42.5")
        .insert_header("x-codex-primary-window-minutes", "300")
        .insert_header("x-codex-primary-reset-after-seconds", "1200")
        .insert_header("x-codex-secondary-used-percent", "7")
        .insert_header("x-codex-secondary-window-minutes", "10080")
        .insert_header("x-codex-secondary-reset-after-seconds", "86400");
    let _mock = mount_sequence(&upstream, vec![reply]).await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![oauth("codex", &upstream.uri())];
    let mut server = TestServer::start(c).await;
    let text = server.metrics().await;
    assert!(
        !text.contains("ferry_codex_usage_percent{"),
        "no snapshot before any reply: {text}"
    );
    assert_eq!(ask(&server, "hi").await.0, 200);

    let series = |w: &str| {
        [
            format!("ferry_codex_usage_percent{{account=\"codex\",window=\"{w}\"}}"),
            format!("ferry_codex_usage_reset_seconds{{account=\"codex\",window=\"{w}\"}}"),
        ]
    };
    let read = async |s: &TestServer| {
        let text = s.metrics().await;
        ["5h", "7d"]
            .into_iter()
            .flat_map(series)
            .map(|name| metric_value(&text, &name))
            .collect::<Vec<f64>>()
    };
    let got = read(&server).await;
    assert_eq!((got[0], got[2]), (42.5, 7.0), "{got:?}");
    assert!((1195.0..=1200.0).contains(&got[1]), "{got:?}");
    assert!((86395.0..=86400.0).contains(&got[3]), "{got:?}");

    // The reset counts down from the reply that reported it.
    jump(&mut server, Duration::from_secs(1000)).await;
    let got = read(&server).await;
    assert_eq!((got[0], got[2]), (42.5, 7.0), "{got:?}");
    assert!((195.0..=200.0).contains(&got[1]), "{got:?}");
    assert!((85395.0..=85400.0).contains(&got[3]), "{got:?}");
    jump(&mut server, Duration::from_secs(300)).await;
    assert_eq!(read(&server).await[1], 0.0);
}

// ---------------------------------------------------------------------------------------
// Concurrency slots shared by two replicas through Redis

/// A stream that sends its first text, then holds the account for `hold` before it ends.
fn slow_stream(hold: Duration) -> Script {
    Script::sse(vec![
        Step::Send(sse(vec![
            ev_created("resp_slow"),
            ev_message_added(0, "msg_1"),
            ev_content_part_added(0, "msg_1"),
            ev_text_delta(0, "msg_1", "slow"),
        ])),
        Step::Sleep(hold),
        Step::Send(sse(vec![ev_completed("resp_slow", Usage::new(3, 1))])),
    ])
}

fn fast_stream() -> Script {
    Script::sse(vec![Step::Send(text_sse("resp_fast", "fast"))])
}

/// A replica on `redis` with the given accounts, each allowing one request at a time.
fn replica(redis: &RedisServer, accounts: Vec<AccountConfig>) -> ferry_server::Config {
    let mut c = config("http://127.0.0.1:9");
    c.accounts = accounts
        .into_iter()
        .map(|mut a| {
            a.concurrency = 1;
            a
        })
        .collect();
    c.session.store = SessionStoreKind::Redis {
        url: Secret::new(redis.url()),
    };
    c
}

/// Starts a streaming request and waits for its first text (the account is now held).
async fn hold_stream(server: &TestServer, text: &str) -> reqwest::Response {
    let mut resp = timeout(BOUND, server.messages(&request(text, true)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    while !seen.contains("\"slow\"") {
        let chunk = timeout(BOUND, resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    resp
}

#[tokio::test]
async fn replicas_wait_for_an_account_slot_held_by_another_replica() {
    let redis = RedisServer::start();
    let upstream = ScriptedUpstream::start(vec![
        slow_stream(Duration::from_millis(1500)),
        fast_stream(),
    ])
    .await;
    let shared = account("shared", &upstream.uri());
    let replica_a = TestServer::start(replica(&redis, vec![shared.clone()])).await;
    let replica_b = TestServer::start(replica(&redis, vec![shared])).await;

    let held = hold_stream(&replica_a, "from a").await;
    let b_body = request("from b", false);
    let b_answer = replica_b.messages(&b_body);
    tokio::pin!(b_answer);
    // Replica B's own process has the account free, but the deployment-wide slot is taken:
    // B waits instead of sending a second request to the account.
    assert!(
        timeout(Duration::from_millis(700), &mut b_answer)
            .await
            .is_err(),
        "replica b answered while replica a held the only slot"
    );
    assert_eq!(upstream.requests().len(), 1);

    // A's stream ends and gives the slot back; B's request then goes out.
    let a_events = parse_sse(&timeout(BOUND, held.text()).await.unwrap().unwrap());
    assert_eq!(names(&a_events).last(), Some(&"message_stop"));
    let b_resp = timeout(BOUND, b_answer).await.unwrap();
    assert_eq!(b_resp.status(), 200);
    assert_eq!(answer_text(&json_body(b_resp).await), "fast");
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test]
async fn a_slot_busy_on_another_replica_sends_the_request_to_the_next_account() {
    let redis = RedisServer::start();
    let busy = ScriptedUpstream::start(vec![slow_stream(Duration::from_millis(1500))]).await;
    let spare = start().await;
    let spare_mock = mount_sse(&spare, text_sse("resp_y", "from y")).await;
    let x = account("x", &busy.uri());
    let mut y = account("y", &spare.uri());
    y.priority = 1;
    let replica_a = TestServer::start(replica(&redis, vec![x.clone(), y.clone()])).await;
    let replica_b = TestServer::start(replica(&redis, vec![x, y])).await;

    let held = hold_stream(&replica_a, "from a").await;
    // `x` is preferred by priority but busy on replica A: B uses `y` right away.
    let (status, _, body) = ask(&replica_b, "from b").await;
    assert_eq!((status, answer_text(&body)), (200, "from y"));
    assert_eq!((busy.requests().len(), spare_mock.count()), (1, 1));
    assert_eq!(busy.completed(), 0, "replica a still holds x");
    drop(held);
}

#[tokio::test]
async fn a_shared_slot_frees_itself_after_its_ttl() {
    let redis = RedisServer::start();
    let upstream = ScriptedUpstream::start(vec![
        slow_stream(Duration::from_millis(3000)),
        fast_stream(),
    ])
    .await;
    let shared = account("shared", &upstream.uri());
    let mut ca = replica(&redis, vec![shared.clone()]);
    let mut cb = replica(&redis, vec![shared]);
    for c in [&mut ca, &mut cb] {
        c.gateway.concurrency_slot_ttl = Duration::from_millis(800);
    }
    let replica_a = TestServer::start(ca).await;
    let replica_b = TestServer::start(cb).await;

    let held = hold_stream(&replica_a, "from a").await;
    // A still streams, but its slot expires 0.8 s after it was taken (as if A had
    // crashed): B waits for that, not for the end of A's 3 s stream.
    let asked = tokio::time::Instant::now();
    let (status, _, body) = ask(&replica_b, "from b").await;
    let waited = asked.elapsed();
    assert_eq!((status, answer_text(&body)), (200, "fast"));
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    assert_eq!(upstream.completed(), 1, "only b's answer is complete");
    drop(held);
}
