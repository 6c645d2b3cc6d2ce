//! Response direction: Responses object → Anthropic message.
//!
//! Data-driven: every `fixtures/upstream/*.json` is converted; the message and what was
//! dropped (or the failure) is snapshotted.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use ferry_apicompat::convert::{self, FailureKind, UpstreamFailure};
use ferry_apicompat::{anthropic, responses};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::upstream::{CLIENT_MODEL, fixtures, tool_names, upstream};

fn parse(path: &std::path::Path) -> responses::Response {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn convert(
    resp: &responses::Response,
) -> Result<(anthropic::Message, Vec<Value>), UpstreamFailure> {
    let opts = convert::response::Options::new(CLIENT_MODEL, tool_names());
    let converted = convert::response::convert(resp, &opts)?;
    let dropped = converted
        .dropped
        .iter()
        .map(|d| json!({"path": d.path, "kind": d.kind, "detail": d.detail}))
        .collect();
    Ok((converted.value, dropped))
}

/// The one caller of the converter for fixtures.
fn check(path: &std::path::Path) -> Value {
    match convert(&parse(path)) {
        Ok((message, dropped)) => json!({"message": message, "dropped": dropped}),
        Err(f) => json!({"failure": {
            "kind": f.kind.as_str(),
            "code": f.code,
            "message": f.message,
            "error": f.to_anthropic(),
        }}),
    }
}

#[test]
fn response_fixtures() {
    insta::glob!(fixtures(), "upstream/*.json", |path| {
        insta::with_settings!({
            omit_expression => true,
            input_file => path,
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_json_snapshot!(check(path));
        });
    });
}

fn message(name: &str) -> (Value, Vec<Value>) {
    let (m, dropped) = convert(&parse(&upstream(name))).unwrap();
    (serde_json::to_value(m).unwrap(), dropped)
}

const ENC: &str = "gAAAAABoZ3mK9x_enc_reasoning_ciphertext_AbCdEf0123456789==";

#[test]
fn b01_message_shape_is_exact() {
    let (m, dropped) = convert(&parse(&upstream("b01_text.json"))).unwrap();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"id":"msg_68a1b2c3d4e5f6","type":"message","role":"assistant","model":"claude-opus-4-8","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1200,"output_tokens":85,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#
    );
    assert!(dropped.is_empty());
}

#[test]
fn b02_reasoning_becomes_signed_thinking_or_redacted_thinking() {
    let (m, _) = message("b02_reasoning_signature.json");
    assert_eq!(
        m["content"][0],
        json!({"type": "thinking", "thinking": "First part.\n\nSecond part.", "signature": ENC})
    );
    let (m, _) = message("b02_reasoning_ciphertext_only.json");
    assert_eq!(
        m["content"][0],
        json!({"type": "redacted_thinking", "data": ENC})
    );
    let (m, _) = message("b02_reasoning_text_content.json");
    assert_eq!(
        m["content"][0],
        json!({"type": "thinking", "thinking": "Raw chain of thought.", "signature": ""})
    );
}

#[test]
fn b03_one_text_block_per_non_empty_part() {
    let (m, dropped) = message("b03_message_parts.json");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "Part one."}, {"type": "text", "text": "Part two."}])
    );
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["kind"], "unknown_content_part");
}

#[test]
fn b04_function_call_becomes_tool_use() {
    let (m, _) = message("b04_function_call.json");
    assert_eq!(
        m["content"][2],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}})
    );
    assert_eq!(m["stop_reason"], "tool_use");
    let (m, _) = message("b04_arguments_as_object.json");
    assert_eq!(m["content"][0]["input"], json!({"city": "Rome"}));
}

#[test]
fn e12_invalid_or_empty_arguments_become_empty_input_and_are_reported() {
    let (m, dropped) = message("b04_invalid_arguments.json");
    let inputs: Vec<&Value> = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["input"])
        .collect();
    assert_eq!(inputs, [&json!({}), &json!({}), &json!({})]);
    let kinds: Vec<&str> = dropped
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invalid_tool_arguments"; 3]);
}

#[test]
fn b05_custom_tool_call_input_is_wrapped() {
    let (m, _) = message("b05_custom_tool_call.json");
    assert_eq!(
        m["content"][0]["input"],
        json!({"input": "*** Begin Patch\n*** End Patch"})
    );
}

#[test]
fn b06_web_search_pairs() {
    let (m, _) = message("b06_web_search.json");
    assert_eq!(
        m["content"],
        json!([
            {"type": "server_tool_use", "id": "srvtoolu_ws_01", "name": "web_search", "input": {"query": "rust serde flatten"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_01", "content": []},
            {"type": "server_tool_use", "id": "srvtoolu_ws_02", "name": "web_search", "input": {"query": ""}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_02",
             "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}},
            {"type": "text", "text": "Found it."},
        ])
    );
    assert_eq!(m["stop_reason"], "end_turn");
}

#[test]
fn b07_an_unexpressible_item_becomes_a_notice_and_is_reported() {
    // A `local_shell_call` is a call the client would have to run: it cannot vanish.
    let (m, dropped) = message("b07_unknown_item.json");
    assert_eq!(
        m["content"],
        json!([
            {"type": "text", "text": "[ferry: the upstream answered with a `local_shell_call` item, which the Anthropic Messages API cannot express; it was dropped]"},
            {"type": "text", "text": "After an unknown item."},
        ])
    );
    assert_eq!(dropped[0]["kind"], "unexpressible_output_item");
    assert_eq!(dropped[0]["path"], "output[0]");
}

#[test]
fn b08_empty_output_is_one_empty_text_block() {
    let (m, _) = message("b08_empty_output.json");
    assert_eq!(m["content"], json!([{"type": "text", "text": ""}]));
}

#[test]
fn b09_read_empty_pages_removed() {
    let (m, dropped) = message("b09_read_tool_empty_pages.json");
    assert_eq!(
        m["content"][0]["input"],
        json!({"file_path": "/work/src/main.rs"})
    );
    assert_eq!(dropped[0]["kind"], "read_empty_pages");
}

#[test]
fn b10_stop_reason_table() {
    for (name, want) in [
        ("b01_text.json", "end_turn"),
        ("b04_function_call.json", "tool_use"),
        ("b10_incomplete_max_tokens.json", "max_tokens"),
        ("b10_incomplete_content_filter.json", "refusal"),
        ("b10_completed_with_tool_and_refusal.json", "tool_use"),
        ("b10_missing_status.json", "end_turn"),
        ("e08_refusal.json", "refusal"),
        ("b06_web_search.json", "end_turn"),
    ] {
        assert_eq!(message(name).0["stop_reason"], want, "{name}");
    }
}

#[test]
fn b10_failures_are_errors_not_messages() {
    for (name, kind, code, error_kind) in [
        (
            "b10_failed.json",
            FailureKind::Failed,
            Some("context_length_exceeded"),
            anthropic::ErrorKind::InvalidRequestError,
        ),
        (
            "b10_cancelled.json",
            FailureKind::Cancelled,
            None,
            anthropic::ErrorKind::ApiError,
        ),
        (
            "b10_incomplete_other_reason.json",
            FailureKind::Incomplete,
            Some("max_tool_calls"),
            anthropic::ErrorKind::ApiError,
        ),
    ] {
        let failure = convert(&parse(&upstream(name))).unwrap_err();
        assert_eq!(failure.kind, kind, "{name}");
        assert_eq!(failure.code.as_deref(), code, "{name}");
        assert_eq!(failure.error_kind(), error_kind, "{name}");
    }
    // The URL's query string (here a token) is not passed on.
    let failure = convert(&parse(&upstream("b10_failed.json"))).unwrap_err();
    assert!(
        !failure.message.contains("abc123secret"),
        "{}",
        failure.message
    );
    // A response with an error object but no status failed.
    let resp: responses::Response = serde_json::from_value(json!({
        "id": "r", "output": [], "error": {"code": "server_error", "message": "boom"}
    }))
    .unwrap();
    assert_eq!(convert(&resp).unwrap_err().kind, FailureKind::Failed);
}

#[test]
fn b11_usage_is_net_of_cache_reads_and_writes() {
    let usage = |name| message(name).0["usage"].clone();
    let u = |i: u64, o: u64, c: u64, r: u64| json!({"input_tokens": i, "output_tokens": o, "cache_creation_input_tokens": c, "cache_read_input_tokens": r});
    assert_eq!(usage("b11_usage_cache_creation.json"), u(10, 5, 6, 4));
    assert_eq!(usage("b11_usage_no_cache_creation.json"), u(7, 2, 0, 3));
    // E17: clamped at 0.
    assert_eq!(usage("b11_usage_clamped.json"), u(0, 1, 9, 4));
    assert_eq!(usage("b11_usage_null_cached_wins.json"), u(100, 1, 0, 0));
    assert_eq!(
        usage("b11_usage_top_level_spellings.json"),
        u(58, 1, 12, 30)
    );
    assert_eq!(usage("b11_usage_absent.json"), u(0, 0, 0, 0));
}

/// The cache-counter resolution (docs/conversion.md § Usage), one wire shape per row.
#[test]
fn usage_cache_counter_resolution_table() {
    let rows = [
        // (usage JSON, cache read, cache creation, input, output)
        (
            json!({"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 200}}),
            200,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 0}, "cache_read_input_tokens": 300}),
            0,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "input_tokens_details": {"cached_tokens": -5}}),
            0,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "prompt_tokens_details": {"cached_tokens": 150}}),
            150,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "cache_read_input_tokens": 0, "cached_tokens": 70}),
            70,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "input_tokens_details": {"cache_write_tokens": 40, "cache_creation_tokens": 90}}),
            0,
            40,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "prompt_tokens_details": {"cache_write_tokens": null}, "cache_creation_input_tokens": 50}),
            0,
            0,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "input_tokens_details": {"cache_creation_tokens": 25}}),
            0,
            25,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "cache_write_tokens": 0, "cache_creation_input_tokens": 800}),
            0,
            800,
            1000,
            0,
        ),
        (
            json!({"input_tokens": 1000, "cache_write_input_tokens": 11}),
            0,
            11,
            1000,
            0,
        ),
        (
            json!({"prompt_tokens": 500, "completion_tokens": 20}),
            0,
            0,
            500,
            20,
        ),
        (
            json!({"input_tokens": 12.7, "output_tokens": null}),
            0,
            0,
            12,
            0,
        ),
    ];
    for (wire, read, creation, input, output) in rows {
        let u: responses::Usage = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            (
                u.cache_read_tokens(),
                u.cache_creation_tokens(),
                u.resolved_input_tokens(),
                u.resolved_output_tokens()
            ),
            (read, creation, input, output),
            "{wire}"
        );
        // Converted: what the client sees adds up to what was billed.
        let a = convert::response::usage(&u);
        assert_eq!(a.cache_read_input_tokens, read, "{wire}");
        assert_eq!(a.cache_creation_input_tokens, creation, "{wire}");
        assert_eq!(
            a.input_tokens,
            input.saturating_sub(read).saturating_sub(creation),
            "{wire}"
        );
    }
}

/// Received objects keep the fields this crate does not model.
#[test]
fn responses_round_trip_with_unknown_fields() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures().join("upstream")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let resp = parse(&path);
        let text = serde_json::to_string(&resp).unwrap();
        let back: responses::Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back, resp, "{}", path.display());
        n += 1;
    }
    assert!(n >= 25);
    let resp = parse(&upstream("b01_text.json"));
    assert_eq!(resp.extra["object"].get(), r#""response""#);
    assert_eq!(resp.extra["created_at"].get(), "1750000000");
    let usage: responses::Usage = serde_json::from_value(json!({
        "input_tokens": 1, "cache_creation": {"ephemeral_5m_input_tokens": 3}
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&usage).unwrap()["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 3})
    );
}

#[test]
fn unknown_items_and_growing_enums_are_kept() {
    let resp: responses::Response = serde_json::from_value(json!({
        "id": "r",
        "status": "expired",
        "incomplete_details": {"reason": "max_tool_calls"},
        "output": [{"type": "image_generation_call", "id": "ig_1", "result": "AAAA"}]
    }))
    .unwrap();
    assert_eq!(
        resp.status,
        Some(responses::ResponseStatus::Other("expired".into()))
    );
    assert_eq!(resp.output[0].type_name(), "image_generation_call");
    assert_eq!(resp.output[0].id(), Some("ig_1"));
    let back = serde_json::to_value(&resp).unwrap();
    assert_eq!(
        back["output"][0],
        json!({"type": "image_generation_call", "id": "ig_1", "result": "AAAA"})
    );
    assert_eq!(back["status"], "expired");
}

#[test]
fn anthropic_error_bodies_are_exact() {
    let e = anthropic::ErrorResponse::new(anthropic::ErrorKind::RateLimitError, "slow down");
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#
    );
    let back: anthropic::ErrorResponse = serde_json::from_str(
        r#"{"type":"error","error":{"type":"billing_error","message":"m"},"request_id":"req_1"}"#,
    )
    .unwrap();
    assert_eq!(back.error.kind, anthropic::ErrorKind::BillingError);
    assert_eq!(back.request_id.as_deref(), Some("req_1"));
    let other: anthropic::ErrorKind = serde_json::from_str(r#""brand_new_error""#).unwrap();
    assert_eq!(other, anthropic::ErrorKind::Other("brand_new_error".into()));
    assert_eq!(
        anthropic::ErrorKind::from("overloaded_error"),
        anthropic::ErrorKind::OverloadedError
    );
    let stop: anthropic::StopReason = serde_json::from_str(r#""pause_turn""#).unwrap();
    assert_eq!(stop, anthropic::StopReason::PauseTurn);
    let stop: anthropic::StopReason =
        serde_json::from_str(r#""model_context_window_exceeded""#).unwrap();
    assert_eq!(
        serde_json::to_string(&stop).unwrap(),
        r#""model_context_window_exceeded""#
    );
}

#[test]
fn failure_messages_are_sanitised() {
    let cases = [
        (
            "Incorrect API key provided: sk-proj-1234567890abcdef.",
            "Incorrect API key provided: sk-***.",
        ),
        (
            "auth header Bearer abc.def.ghi rejected",
            "auth header Bearer *** rejected",
        ),
        (
            "see https://h.example/p?api_key=zzz&x=1 now",
            "see https://h.example/p?*** now",
        ),
        ("token=abcdef leaked", "token=*** leaked"),
        ("line\nbreak", "line break"),
    ];
    for (raw, want) in cases {
        let f = UpstreamFailure::new(FailureKind::Failed, None, raw);
        assert_eq!(f.message, want, "{raw}");
    }
    let long = "x".repeat(5000);
    let f = UpstreamFailure::new(FailureKind::Failed, None, &long);
    assert!(f.message.len() <= 1004);
    assert_eq!(
        UpstreamFailure::truncated().to_string(),
        "upstream truncated: upstream stream ended before a terminal event"
    );
}

#[test]
fn response_nulls_read_as_absent_and_duplicates_are_refused() {
    let resp: responses::Response = serde_json::from_value(json!({
        "id": null, "model": null, "output": null, "status": null, "usage": null,
        "object": "response", "metadata": {"k": "v"}
    }))
    .unwrap();
    let mut expected = responses::Response::default();
    let raw = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
    expected
        .extra
        .insert("object".into(), raw(json!("response")));
    expected
        .extra
        .insert("metadata".into(), raw(json!({"k": "v"})));
    assert_eq!(resp, expected);

    let err = serde_json::from_str::<responses::Response>(r#"{"id":"a","id":"b"}"#).unwrap_err();
    assert!(err.to_string().contains("duplicate field `id`"), "{err}");
    let err = serde_json::from_str::<responses::Response>(r#"{"output":7}"#).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
    assert!(serde_json::from_str::<responses::Response>("[1]").is_err());
}

/// A JSON answer's `tool_use` input keeps the key order of the model's arguments, so a
/// client (or a stored thread) that sends the call back re-sends the model's bytes.
#[test]
fn json_answer_tool_call_keeps_the_model_key_order() {
    let resp: responses::Response = serde_json::from_value(json!({
        "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5",
        "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_1",
            "name": "Bash", "arguments": "{\"command\":\"ls\",\"description\":\"list\",\"a\":{\"z\":1,\"b\":2}}"}],
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    }))
    .unwrap();
    let (m, _) = convert(&resp).unwrap();
    let text = serde_json::to_string(&m.content[0]).unwrap();
    assert!(
        text.contains(r#""input":{"command":"ls","description":"list","a":{"z":1,"b":2}}"#),
        "{text}"
    );
}
