//! Message threads (`message-threads-2026-08-12`) through the gateway: a continue is
//! rebuilt into the whole conversation for the upstream, and a thread ferry does not hold
//! gets the error the SDKs fall back on.

use ferry_server::config::ClientKey;
use ferry_testkit::upstream::{mount_sequence, sse_response, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

const SYSTEM: &str = "You are a careful shell assistant.";

fn tool_turn(resp: &str, call: &str) -> wiremock::ResponseTemplate {
    tool_turn_with(resp, call, &[r#"{"command":"#, r#""ls"}"#])
}

/// A `Bash` call whose arguments stream in `parts`.
fn tool_turn_with(resp: &str, call: &str, parts: &[&str]) -> wiremock::ResponseTemplate {
    let args = parts.concat();
    let item = format!("fc_{call}");
    let mut evs = vec![ev_created(resp), ev_in_progress(resp)];
    evs.extend(function_call_events(0, &item, call, "Bash", parts));
    evs.push(ev_completed_with_output(
        resp,
        vec![function_call_item(&item, call, "Bash", &args, "completed")],
        Usage::new(40, 8),
    ));
    sse_response(sse(evs))
}

fn text_turn(resp: &str, text: &str) -> wiremock::ResponseTemplate {
    sse_response(sse(text_events(resp, &[text], Usage::new(60, 4))))
}

fn create(stream: bool) -> Value {
    let mut r = request_with_tools("list the files, twice", stream);
    r["system"] = json!(SYSTEM);
    r["thread"] = json!({"type": "create"});
    r
}

/// The SDK's continue: only the tool result, no system and no tools.
fn continue_with_result(previous: &str, tool_use_id: &str, stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "stream": stream,
        "thread": {"type": "continue", "previous_message_id": previous},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use_id, "content": "a.txt b.txt"}
        ]}],
    })
}

/// The reply's id and its `tool_use` id (if any), from a JSON or SSE answer.
async fn reply_ids(resp: reqwest::Response, stream: bool) -> (String, Option<String>) {
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("x-ferry-dropped"), None);
    if stream {
        let events = parse_sse(&resp.text().await.unwrap());
        assert_eq!(names(&events).last(), Some(&"message_stop"));
        let id = events[0].data["message"]["id"].as_str().unwrap().to_owned();
        let tool = events
            .iter()
            .find(|e| e.data["content_block"]["type"] == "tool_use")
            .map(|e| e.data["content_block"]["id"].as_str().unwrap().to_owned());
        (id, tool)
    } else {
        let body = json_body(resp).await;
        let tool = body["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .map(|b| b["id"].as_str().unwrap().to_owned());
        (body["id"].as_str().unwrap().to_owned(), tool)
    }
}

fn types(input: &[Value]) -> Vec<String> {
    input
        .iter()
        .map(|i| {
            let t = i["type"].as_str().unwrap_or("message");
            match i["role"].as_str() {
                Some(role) if t == "message" => format!("{t}:{role}"),
                _ => t.to_owned(),
            }
        })
        .collect()
}

async fn three_turns(stream: bool) {
    let upstream = start().await;
    let mock = mount_sequence(
        &upstream,
        vec![
            tool_turn("resp_1", "call_1"),
            tool_turn("resp_2", "call_2"),
            text_turn("resp_3", "two listings done"),
        ],
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;

    let (id1, tool1) = reply_ids(server.messages(&create(stream)).await, stream).await;
    let (id2, tool2) = reply_ids(
        server
            .messages(&continue_with_result(&id1, &tool1.unwrap(), stream))
            .await,
        stream,
    )
    .await;
    let (_id3, tool3) = reply_ids(
        server
            .messages(&continue_with_result(&id2, &tool2.unwrap(), stream))
            .await,
        stream,
    )
    .await;
    assert_eq!(tool3, None);

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        // Every turn carries the system prompt and both tools, though the client sent
        // them only on the first.
        assert_eq!(r.input()[0]["role"], json!("developer"), "turn {}", i + 1);
        assert_eq!(
            r.input()[0]["content"][0]["text"],
            json!(SYSTEM),
            "turn {}",
            i + 1
        );
        assert_eq!(
            r.body["tools"].as_array().map(Vec::len),
            Some(2),
            "turn {}",
            i + 1
        );
        assert_eq!(r.body.get("previous_response_id"), None);
    }
    assert_eq!(
        types(&reqs[0].input()),
        ["message:developer", "message:user"]
    );
    assert_eq!(
        types(&reqs[1].input()),
        [
            "message:developer",
            "message:user",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(
        types(&reqs[2].input()),
        [
            "message:developer",
            "message:user",
            "function_call",
            "function_call_output",
            "function_call",
            "function_call_output"
        ]
    );
    let input = reqs[2].input();
    assert_eq!(input[2]["call_id"], json!("call_1"));
    assert_eq!(input[2]["arguments"], json!(r#"{"command":"ls"}"#));
    assert_eq!(input[3]["call_id"], json!("call_1"));
    assert_eq!(input[4]["call_id"], json!("call_2"));
    assert_eq!(input[5]["output"], json!("a.txt b.txt"));

    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(&metrics, r#"ferry_threads_total{result="created"}"#),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"ferry_threads_total{result="continued"}"#),
        2.0
    );
    assert_eq!(
        metric_value(&metrics, r#"ferry_threads_total{result="stored"}"#),
        3.0
    );
}

#[tokio::test]
async fn a_streamed_thread_reaches_the_upstream_whole_every_turn() {
    three_turns(true).await;
}

#[tokio::test]
async fn a_json_thread_reaches_the_upstream_whole_every_turn() {
    three_turns(false).await;
}

#[tokio::test]
async fn an_unknown_thread_is_thread_not_found_and_nothing_goes_upstream() {
    let upstream = start().await;
    let mock = mount_sequence(&upstream, vec![text_turn("resp_1", "never")]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server
        .messages(&continue_with_result("msg_unknown", "toolu_1", true))
        .await;
    assert_eq!(resp.status(), 404);
    let body = json_body(resp).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(
        body["error"]["details"],
        json!({"error_code": "thread_not_found"})
    );
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn another_keys_thread_is_not_found() {
    let upstream = start().await;
    let _mock = mount_sequence(&upstream, vec![tool_turn("resp_1", "call_1")]).await;
    let mut cfg = config(&upstream.uri());
    cfg.client_keys.push(ClientKey {
        name: "bob".to_owned(),
        key: ferry_server::config::Secret::new("sk-ferry-bob-key"),
        budget: Default::default(),
    });
    let server = TestServer::start(cfg).await;
    let (id1, tool1) = reply_ids(server.messages(&create(false)).await, false).await;
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(server.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "sk-ferry-bob-key")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&continue_with_result(&id1, &tool1.unwrap(), false)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["details"]["error_code"], "thread_not_found");
}

#[tokio::test]
async fn a_thread_over_the_bound_is_thread_unsupported_request() {
    let upstream = start().await;
    let mock = mount_sequence(&upstream, vec![text_turn("resp_1", "never")]).await;
    let mut cfg = config(&upstream.uri());
    cfg.session.max_thread_bytes = 64 * 1024;
    let server = TestServer::start(cfg).await;
    let mut big = create(false);
    big["messages"][0]["content"] = json!("x".repeat(70 * 1024));
    let resp = server.messages(&big).await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["details"]["error_code"],
        "thread_unsupported_request"
    );
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn a_continue_that_changes_the_tools_is_a_fingerprint_mismatch() {
    let upstream = start().await;
    let _mock = mount_sequence(&upstream, vec![tool_turn("resp_1", "call_1")]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let (id1, tool1) = reply_ids(server.messages(&create(false)).await, false).await;
    let mut next = continue_with_result(&id1, &tool1.unwrap(), false);
    next["tools"] = json!([{"name": "Other", "input_schema": {"type": "object"}}]);
    let resp = server.messages(&next).await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(
        body["error"]["details"]["error_code"],
        "thread_fingerprint_mismatch"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`tools`"),
        "{body}"
    );
}

#[tokio::test]
async fn count_tokens_counts_the_whole_thread() {
    let upstream = start().await;
    let _mock = mount_sequence(&upstream, vec![tool_turn("resp_1", "call_1")]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let (id1, tool1) = reply_ids(server.messages(&create(false)).await, false).await;
    let tool1 = tool1.unwrap();
    let count = |body: Value| {
        let server = &server;
        async move {
            let resp = server
                .post("/v1/messages/count_tokens")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), json_body(resp).await)
        }
    };
    let mut alone = continue_with_result(&id1, &tool1, false);
    alone.as_object_mut().unwrap().remove("thread");
    let (_, alone) = count(alone).await;
    let (status, whole) = count(continue_with_result(&id1, &tool1, false)).await;
    assert_eq!(status, 200);
    assert!(
        whole["input_tokens"].as_u64().unwrap() > alone["input_tokens"].as_u64().unwrap() + 20,
        "{whole} vs {alone}"
    );
    let (status, missing) = count(continue_with_result("msg_nope", &tool1, false)).await;
    assert_eq!(status, 404);
    assert_eq!(
        missing["error"]["details"]["error_code"],
        "thread_not_found"
    );
}

#[tokio::test]
async fn a_malformed_thread_is_a_400() {
    let upstream = start().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    for thread in [
        json!({"type": "continue"}),
        json!({"type": "fork"}),
        json!("create"),
    ] {
        let mut r = request("hi", false);
        r["thread"] = thread.clone();
        let resp = server.messages(&r).await;
        assert_eq!(resp.status(), 400, "{thread}");
        let body = json_body(resp).await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("thread"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn with_continuation_a_thread_continues_its_own_upstream_response() {
    let upstream = start().await;
    let mock = mount_sequence(
        &upstream,
        vec![tool_turn("resp_1", "call_1"), text_turn("resp_2", "listed")],
    )
    .await;
    let mut cfg = config(&upstream.uri());
    cfg.accounts[0].continuation = true;
    let server = TestServer::start(cfg).await;
    let (id1, tool1) = reply_ids(server.messages(&create(true)).await, true).await;
    let (_, tool2) = reply_ids(
        server
            .messages(&continue_with_result(&id1, &tool1.unwrap(), true))
            .await,
        true,
    )
    .await;
    assert_eq!(tool2, None);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body["store"], json!(true));
    // The upstream holds turn 1 (system, tools, prompt, call): only the output travels.
    assert_eq!(reqs[1].body["previous_response_id"], json!("resp_1"));
    assert_eq!(types(&reqs[1].input()), ["function_call_output"]);
    assert_eq!(reqs[1].input()[0]["call_id"], json!("call_1"));
}

/// The model's arguments, keys not in sorted order, go back upstream byte for byte on the
/// next turn of a thread (a re-serialised call would break the cached prefix there).
async fn thread_replays_the_model_key_order(stream: bool) {
    let args = r#"{"description":"list","command":"ls -la","b":{"z":1,"a":2}}"#;
    let upstream = start().await;
    let mock = mount_sequence(
        &upstream,
        vec![
            tool_turn_with(
                "resp_1",
                "call_1",
                &[
                    r#"{"description":"list","comm"#,
                    r#"and":"ls -la","b":{"z":1,"a":2}}"#,
                ],
            ),
            text_turn("resp_2", "done"),
        ],
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let (id1, tool1) = reply_ids(server.messages(&create(stream)).await, stream).await;
    reply_ids(
        server
            .messages(&continue_with_result(&id1, &tool1.unwrap(), stream))
            .await,
        stream,
    )
    .await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let input = reqs[1].input();
    let call = input
        .iter()
        .find(|i| i["type"] == "function_call")
        .expect("the replayed call");
    assert_eq!(call["arguments"], json!(args));
}

#[tokio::test]
async fn a_streamed_thread_replays_tool_arguments_in_the_model_key_order() {
    thread_replays_the_model_key_order(true).await;
}

#[tokio::test]
async fn a_json_thread_replays_tool_arguments_in_the_model_key_order() {
    thread_replays_the_model_key_order(false).await;
}
