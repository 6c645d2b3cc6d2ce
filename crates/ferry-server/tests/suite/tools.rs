//! Tool calls (single, parallel, round trip) and reasoning.

use ferry_testkit::upstream::{mount_sequence, mount_sse_once, sse_response, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn tool_blocks(events: &[Event]) -> Vec<Value> {
    // Rebuild each tool_use block: its start plus the concatenated input_json_delta.
    let mut out: Vec<(u64, Value, String)> = Vec::new();
    for e in events {
        match e.name.as_str() {
            "content_block_start" if e.data["content_block"]["type"] == "tool_use" => {
                out.push((
                    e.data["index"].as_u64().unwrap(),
                    e.data["content_block"].clone(),
                    String::new(),
                ));
            }
            "content_block_delta" if e.data["delta"]["type"] == "input_json_delta" => {
                let idx = e.data["index"].as_u64().unwrap();
                let entry = out.iter_mut().find(|(i, _, _)| *i == idx).unwrap();
                entry
                    .2
                    .push_str(e.data["delta"]["partial_json"].as_str().unwrap());
            }
            _ => {}
        }
    }
    out.into_iter()
        .map(|(_, mut block, json)| {
            block["input"] = serde_json::from_str(&json).unwrap();
            block
        })
        .collect()
}

fn stop_reason(events: &[Event]) -> Value {
    events
        .iter()
        .find(|e| e.name == "message_delta")
        .unwrap()
        .data["delta"]["stop_reason"]
        .clone()
}

#[tokio::test]
async fn streams_a_tool_call() {
    let upstream = start().await;
    let mut evs = vec![ev_created("resp_t")];
    evs.extend(function_call_events(
        0,
        "fc_1",
        "call_1",
        "Bash",
        &["{\"comm", "and\":\"ls\"}"],
    ));
    evs.push(ev_completed("resp_t", Usage::new(20, 7)));
    let _mock = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server
        .messages(&request_with_tools("list files", true))
        .await;
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(
        tool_blocks(&events),
        vec![
            json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}})
        ]
    );
    assert_eq!(stop_reason(&events), json!("tool_use"));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn streams_parallel_tool_calls_one_block_at_a_time() {
    let upstream = start().await;
    let mut evs = vec![ev_created("resp_p")];
    // Interleaved upstream deltas of two calls.
    evs.push(ev_function_call_added(0, "fc_1", "call_1", "Bash"));
    evs.push(ev_function_call_added(1, "fc_2", "call_2", "Read"));
    evs.push(ev_function_call_arguments_delta(0, "fc_1", "{\"command\":"));
    evs.push(ev_function_call_arguments_delta(
        1,
        "fc_2",
        "{\"file_path\":\"/a\"}",
    ));
    evs.push(ev_function_call_arguments_delta(0, "fc_1", "\"pwd\"}"));
    evs.push(ev_function_call_done(
        0,
        "fc_1",
        "call_1",
        "Bash",
        "{\"command\":\"pwd\"}",
    ));
    evs.push(ev_function_call_done(
        1,
        "fc_2",
        "call_2",
        "Read",
        "{\"file_path\":\"/a\"}",
    ));
    evs.push(ev_completed("resp_p", Usage::new(20, 9)));
    let _mock = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request_with_tools("two tools", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        tool_blocks(&events),
        vec![
            json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "pwd"}}),
            json!({"type": "tool_use", "id": "call_2", "name": "Read", "input": {"file_path": "/a"}}),
        ]
    );
    // Blocks never interleave: every delta belongs to the block opened last.
    let mut open: Option<u64> = None;
    for e in &events {
        match e.name.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "a block opened while another was open");
                open = e.data["index"].as_u64();
            }
            "content_block_delta" => assert_eq!(open, e.data["index"].as_u64()),
            "content_block_stop" => open = None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn answers_tool_calls_as_json() {
    let upstream = start().await;
    let mut evs = vec![ev_created("resp_j")];
    evs.extend(function_call_events(
        0,
        "fc_1",
        "call_1",
        "Bash",
        &["{\"command\":\"ls\"}"],
    ));
    evs.extend(function_call_events(
        1,
        "fc_2",
        "call_2",
        "Read",
        &["{\"file_path\":\"/etc/hosts\"}"],
    ));
    // The terminal response carries no output: the gateway rebuilds it from the stream.
    evs.push(ev_completed("resp_j", Usage::new(30, 12)));
    let _mock = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let body = json_body(
        server
            .messages(&request_with_tools("two tools", false))
            .await,
    )
    .await;
    assert_eq!(
        body,
        json!({
            "id": "msg_j", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "call_2", "name": "Read", "input": {"file_path": "/etc/hosts"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })
    );
}

#[tokio::test]
async fn sends_a_tool_round_trip_upstream() {
    let upstream = start().await;
    let mock = mount_sse_once(
        &upstream,
        sse(text_events("resp_r", &["done"], Usage::new(40, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let mut req = request_with_tools("list files", true);
    req["messages"] = json!([
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt", "is_error": false}]}
    ]);
    let events = parse_sse(&server.messages(&req).await.text().await.unwrap());
    assert_eq!(streamed_text(&events), "done");
    // The invariants (every output has its call) run on the captured request.
    let sent = mock.single_request();
    let kinds: Vec<&str> = sent.body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert!(
        kinds.ends_with(&["function_call", "function_call_output"]),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn streams_reasoning_as_thinking() {
    let upstream = start().await;
    let mut evs = vec![ev_created("resp_r"), ev_reasoning_added(0, "rs_1")];
    evs.push(ev_reasoning_summary_part_added(0, "rs_1", 0));
    evs.push(ev_reasoning_summary_delta(0, "rs_1", 0, "Thinking "));
    evs.push(ev_reasoning_summary_delta(0, "rs_1", 0, "hard."));
    evs.push(ev_reasoning_summary_done(0, "rs_1", 0, "Thinking hard."));
    evs.push(ev_reasoning_done(
        0,
        "rs_1",
        "Thinking hard.",
        Some("gAAAAAenc"),
    ));
    evs.push(ev_message_added(1, "msg_1"));
    evs.push(ev_text_delta(1, "msg_1", "42"));
    evs.push(ev_message_done(1, "msg_1", "42"));
    evs.push(ev_completed(
        "resp_r",
        Usage {
            input: 10,
            output: 30,
            cached: 0,
            reasoning: 20,
        },
    ));
    let mock = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let mut req = request("think", true);
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 8000});
    let events = parse_sse(&server.messages(&req).await.text().await.unwrap());
    let thinking: String = events
        .iter()
        .filter(|e| e.data["delta"]["type"] == "thinking_delta")
        .map(|e| e.data["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, "Thinking hard.");
    let signature: Vec<&str> = events
        .iter()
        .filter(|e| e.data["delta"]["type"] == "signature_delta")
        .map(|e| e.data["delta"]["signature"].as_str().unwrap())
        .collect();
    assert_eq!(signature, vec!["gAAAAAenc"]);
    assert_eq!(streamed_text(&events), "42");
    let sent = mock.single_request();
    assert_eq!(sent.body["reasoning"]["effort"], json!("medium"));
    assert_eq!(sent.body["include"], json!(["reasoning.encrypted_content"]));
}

/// A tool call the model produced with unsorted keys goes back upstream, on the next turn,
/// with arguments byte-for-byte as the model streamed them (a client keeps the input's key
/// order), so the upstream's cached prefix survives the re-sent call.
#[tokio::test]
async fn a_re_sent_tool_call_keeps_the_models_argument_bytes() {
    let upstream = start().await;
    let produced =
        r#"{"path":"src/b.rs","command":"cat","opts":{"z":1,"a":[2,{"y":true,"x":null}]}}"#;
    let mut evs = vec![ev_created("resp_1")];
    evs.extend(function_call_events(
        0,
        "fc_1",
        "call_1",
        "Bash",
        &[&produced[..20], &produced[20..45], &produced[45..]],
    ));
    evs.push(ev_completed("resp_1", Usage::new(20, 7)));
    let mock = mount_sequence(
        &upstream,
        vec![
            sse_response(sse(evs)),
            sse_response(sse(text_events("resp_2", &["done"], Usage::new(40, 1)))),
        ],
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request_with_tools("show the file", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let streamed: String = events
        .iter()
        .filter(|e| {
            e.name == "content_block_delta" && e.data["delta"]["type"] == "input_json_delta"
        })
        .map(|e| e.data["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, produced);

    // Turn 2, sent as raw JSON text with the input exactly as streamed (as a client that
    // keeps key order does).
    let mut req = request_with_tools("show the file", true);
    req["messages"] = json!([
        {"role": "user", "content": "show the file"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Bash", "input": "__INPUT__"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "fn main() {}"}]}
    ]);
    let body = req.to_string().replace("\"__INPUT__\"", &streamed);
    let resp = server
        .post("/v1/messages")
        .body(body.into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        streamed_text(&parse_sse(&resp.text().await.unwrap())),
        "done"
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let call = reqs[1]
        .input()
        .into_iter()
        .find(|i| i["type"] == "function_call")
        .expect("the call is re-sent");
    assert_eq!(call["arguments"].as_str(), Some(produced));
}
