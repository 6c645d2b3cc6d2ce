//! Cache-miss explanations through the real server: two turns of a conversation against an
//! upstream that reads nothing from its cache, where the second turn changes one part of
//! the prefix; `ferry_cache_miss_total{reason}` names the part.

use std::time::Duration;

use ferry_testkit::upstream::{mount_fn, sse_response, start, status_response};
use ferry_testkit::{Usage, sse, text_events};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

const SESSION: &str = "5f1c2b9e-0d3a-4c7b-8e21-9a6f4d3c2b10";

/// Every `ferry_cache_miss_total` series that is not 0.
async fn misses(server: &TestServer) -> Vec<(String, f64)> {
    let text = server.metrics().await;
    ferry_session::MissReason::ALL
        .into_iter()
        .chain(ferry_session::MissReason::REFINED)
        .filter_map(|r| {
            let v = metric_value(
                &text,
                &format!("ferry_cache_miss_total{{reason=\"{}\"}}", r.as_str()),
            );
            (v != 0.0).then(|| (r.as_str().to_owned(), v))
        })
        .collect()
}

/// The misses once `total` of them are counted (the explained ones are counted after the
/// response, from the turn log).
async fn misses_after(server: &TestServer, total: f64) -> Vec<(String, f64)> {
    for _ in 0..200 {
        let m = misses(server).await;
        if m.iter().map(|(_, v)| v).sum::<f64>() >= total {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    misses(server).await
}

fn tools() -> Value {
    json!([
        {"name": "Bash", "description": "run a command", "input_schema": {"type": "object",
            "properties": {"command": {"type": "string"}}}},
        {"name": "Read", "description": "read a file", "input_schema": {"type": "object",
            "properties": {"file_path": {"type": "string"}}}}
    ])
}

/// Turn 1 of a Claude Code conversation (one question), or turn 2 (answered, one more).
fn turn(n: usize, stream: bool) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "question 0"})];
    if n == 2 {
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}));
        messages.push(json!({"role": "user", "content": "question 1"}));
    }
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are a coding agent.",
        "tools": tools(),
        "metadata": {"user_id": format!("user_{}_account__session_{SESSION}", "c".repeat(64))},
        "messages": messages,
    })
}

/// An upstream that answers every request with 4,000 prompt tokens, none from the cache.
async fn cold_upstream() -> wiremock::MockServer {
    let upstream = start().await;
    mount_fn(&upstream, |_, n| {
        sse_response(sse(text_events(
            &format!("resp_{n}"),
            &["ok"],
            Usage::new(4000, 5),
        )))
    })
    .await;
    upstream
}

async fn send(server: &TestServer, body: &Value) {
    let resp = server.messages(body).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
}

/// Runs turn 1, then `second`, and returns the misses counted.
async fn two_turns(second: Value) -> Vec<(String, f64)> {
    let upstream = cold_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    send(&server, &turn(1, false)).await;
    send(&server, &second).await;
    misses_after(&server, 2.0).await
}

fn counted(reasons: &[&str]) -> Vec<(String, f64)> {
    reasons.iter().map(|r| ((*r).to_owned(), 1.0)).collect()
}

#[tokio::test]
async fn a_changed_system_prompt_is_system_changed() {
    let mut second = turn(2, false);
    second["system"] = json!("You are a coding agent. Today is 2026-12-03.");
    assert_eq!(
        two_turns(second).await,
        counted(&["new_session", "system_changed"])
    );
}

#[tokio::test]
async fn a_changed_system_prompt_is_system_changed_when_streamed() {
    let mut second = turn(2, true);
    second["system"] = json!("You are a coding agent. Today is 2026-12-03.");
    assert_eq!(
        two_turns(second).await,
        counted(&["new_session", "system_changed"])
    );
}

#[tokio::test]
async fn a_changed_tool_list_is_tools_changed() {
    // The digest chain does not cover tools: without the fingerprint this miss would read
    // as an upstream eviction.
    let mut second = turn(2, false);
    second["tools"].as_array_mut().unwrap().pop();
    assert_eq!(
        two_turns(second).await,
        counted(&["new_session", "tools_changed"])
    );
}

#[tokio::test]
async fn an_edited_earlier_message_is_message_edited() {
    let mut second = turn(2, false);
    second["messages"][0]["content"] = json!("question 0, rephrased");
    assert_eq!(
        two_turns(second).await,
        counted(&["new_session", "message_edited"])
    );
}

#[tokio::test]
async fn nothing_changed_is_upstream_evicted() {
    assert_eq!(
        two_turns(turn(2, false)).await,
        counted(&["new_session", "upstream_evicted"])
    );
}

#[tokio::test]
async fn a_moved_cache_control_marker_is_cache_control_moved() {
    // No session id: the key comes from the marked system blocks, so unmarking one gives
    // the conversation a new key.
    let marked = |n: usize, first_marked: bool| {
        let mut v = turn(n, false);
        v.as_object_mut().unwrap().remove("metadata");
        let mut first = json!({"type": "text", "text": "You are a coding agent."});
        if first_marked {
            first["cache_control"] = json!({"type": "ephemeral"});
        }
        v["system"] = json!([first, {"type": "text", "text": "Be brief.",
            "cache_control": {"type": "ephemeral"}}]);
        v
    };
    assert_eq!(
        two_turns_of(marked(1, true), marked(2, false)).await,
        counted(&["new_session", "cache_control_moved"])
    );
}

async fn two_turns_of(first: Value, second: Value) -> Vec<(String, f64)> {
    let upstream = cold_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    send(&server, &first).await;
    send(&server, &second).await;
    misses_after(&server, 2.0).await
}

#[tokio::test]
async fn another_account_is_account_switched() {
    // The first account answers turn 1, then is rate limited: turn 2 fails over.
    let primary = start().await;
    mount_fn(&primary, |_, n| {
        if n == 0 {
            sse_response(sse(text_events("resp_p", &["ok"], Usage::new(4000, 5))))
        } else {
            status_response(429, &[], r#"{"error":{"message":"slow down"}}"#)
        }
    })
    .await;
    let backup = cold_upstream().await;
    let mut c = config(&primary.uri());
    c.accounts.push(account("backup", &backup.uri()));
    let server = TestServer::start(c).await;
    send(&server, &turn(1, false)).await;
    send(&server, &turn(2, false)).await;
    assert_eq!(
        misses_after(&server, 2.0).await,
        counted(&["new_session", "account_switched"])
    );
}

#[tokio::test]
async fn warm_turns_count_no_miss() {
    let upstream = start().await;
    mount_fn(&upstream, |_, n| {
        let mut usage = Usage::new(4000, 5);
        usage.cached = if n == 0 { 0 } else { 3800 };
        sse_response(sse(text_events(&format!("resp_{n}"), &["ok"], usage)))
    })
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    send(&server, &turn(1, false)).await;
    send(&server, &turn(2, false)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(misses(&server).await, counted(&["new_session"]));
}

#[tokio::test]
async fn replicas_sharing_redis_explain_each_others_turns() {
    // Turn 1 on replica a, turn 2 (another system prompt) on replica b: b finds a's turn
    // in the shared turn log.
    let redis = ferry_testkit::redis::RedisServer::start();
    let upstream = cold_upstream().await;
    let replica = || {
        let mut c = config(&upstream.uri());
        c.session.store = ferry_server::config::SessionStoreKind::Redis {
            url: ferry_server::config::Secret::new(redis.url()),
        };
        c
    };
    let a = TestServer::start(replica()).await;
    let b = TestServer::start(replica()).await;
    send(&a, &turn(1, false)).await;
    // a logs the turn after its response: wait until Redis has it.
    let store = ferry_session::open(&ferry_session::StoreConfig::Redis(
        ferry_session::RedisConfig::new(redis.url()),
    ))
    .await
    .unwrap();
    let sessions = ferry_session::Sessions::new(store, ferry_session::SessionConfig::default());
    for _ in 0..200 {
        if !sessions.recent_sessions(&["alice"], 1).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(sessions.recent_sessions(&["alice"], 1).await[0].turns, 1);
    let mut second = turn(2, false);
    second["system"] = json!("You are a coding agent. Today is 2026-12-03.");
    send(&b, &second).await;
    assert_eq!(misses(&a).await, counted(&["new_session"]));
    assert_eq!(misses_after(&b, 1.0).await, counted(&["system_changed"]));
}
