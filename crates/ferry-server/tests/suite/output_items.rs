//! Output items the Anthropic API cannot express, through the real server: the client is
//! told (a notice block), the metric counts them, an answer of nothing else is an error;
//! and a JSON answer's id is a `msg_…` id while the session keeps the upstream's.

use ferry_testkit::upstream::{mount_sse, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

const NOTICE: &str = "[ferry: the upstream answered with a `shell_call` item, which the Anthropic Messages API cannot express; it was dropped]";
const DROPPED: &str = "ferry_response_dropped_total{kind=\"unexpressible_output_item\"}";

fn shell_call() -> Value {
    json!({"type": "shell_call", "id": "sh_1", "call_id": "call_sh", "status": "completed",
           "action": {"commands": ["ls"]}})
}

fn body(output: &[Value]) -> Value {
    json!({"id": "resp_items", "object": "response", "status": "completed", "model": "gpt-5.1",
           "output": output, "usage": Usage::new(3, 2).to_json()})
}

async fn json_upstream(answer: Value) -> wiremock::MockServer {
    let upstream = start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(answer))
        .mount(&upstream)
        .await;
    upstream
}

#[tokio::test]
async fn a_json_answer_names_a_dropped_item_counts_it_and_has_a_msg_id() {
    let upstream = json_upstream(body(&[
        shell_call(),
        message_item("msg_1", "done", "completed"),
    ]))
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": NOTICE}, {"type": "text", "text": "done"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    // `resp_items` → `msg_items`, as a stream's `message_start` reports it.
    assert_eq!(body["id"], "msg_items");
    assert_eq!(server.metric(DROPPED).await, 1.0);
}

#[tokio::test]
async fn a_json_answer_of_only_dropped_items_is_an_error() {
    let upstream = json_upstream(body(&[shell_call()])).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    let status = resp.status().as_u16();
    let body = json_body(resp).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shell_call"), "{message}");
}

#[tokio::test]
async fn a_stream_names_a_dropped_item_and_counts_it() {
    let upstream = start().await;
    let item_done =
        json!({"type": "response.output_item.done", "output_index": 0, "item": shell_call()});
    let _mock = mount_sse(
        &upstream,
        sse(vec![
            ev_created("resp_s"),
            item_done,
            ev_message_added(1, "msg_1"),
            ev_text_delta(1, "msg_1", "done"),
            ev_completed("resp_s", Usage::new(3, 2)),
        ]),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let text = server
        .messages(&request("hi", true))
        .await
        .text()
        .await
        .unwrap_or_default();
    let events = parse_sse(&text);
    assert_eq!(streamed_text(&events), format!("{NOTICE}done"));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    assert_eq!(server.metric(DROPPED).await, 1.0);
}

fn with_stops(mut req: Value) -> Value {
    req["stop_sequences"] = json!(["</answer>"]);
    req
}

#[tokio::test]
async fn stop_sequences_cut_a_stream_across_deltas() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(vec![
            ev_created("resp_st"),
            ev_message_added(0, "msg_1"),
            ev_text_delta(0, "msg_1", "42.</ans"),
            ev_text_delta(0, "msg_1", "wer> more"),
            ev_completed("resp_st", Usage::new(3, 2)),
        ]),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let text = server
        .messages(&with_stops(request("hi", true)))
        .await
        .text()
        .await
        .unwrap_or_default();
    let events = parse_sse(&text);
    assert_eq!(streamed_text(&events), "42.");
    assert!(
        text.contains(r#""stop_reason":"stop_sequence","stop_sequence":"</answer>""#),
        "{text}"
    );
    // Not sent upstream (the Responses API has no stop sequences).
    let sent = mock.single_request();
    assert!(sent.body.get("stop").is_none() && sent.body.get("stop_sequences").is_none());
}

#[tokio::test]
async fn stop_sequences_cut_a_json_answer() {
    let upstream = json_upstream(body(&[message_item(
        "msg_1",
        "42.</answer> more",
        "completed",
    )]))
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let body = json_body(server.messages(&with_stops(request("hi", false))).await).await;
    assert_eq!(body["content"], json!([{"type": "text", "text": "42."}]));
    assert_eq!(body["stop_reason"], "stop_sequence");
    assert_eq!(body["stop_sequence"], "</answer>");
}
