//! Stream direction: Responses events → Anthropic events.
//!
//! Data-driven: every `fixtures/upstream/*.sse` is fed through the converter, the emitted
//! SSE text is snapshotted, parsed back strictly and checked against the stream invariant.
//! The named tests below pin the spec cases (S…, E…, B…, D… = ferry's decisions).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use ferry_apicompat::convert::{FailureKind, stream};
use ferry_apicompat::{anthropic, responses};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::upstream::{
    TBlock, TDelta, TEvent, Upstream, buffered_content, check_invariant, fixtures, load_stream,
    normalise, parse_frames, reassemble, render, run, split_sse, strict, upstream,
};

/// The one caller of the converter for fixtures: emitted SSE text plus a trailer of SSE
/// comments with what the server reads from the converter.
fn check(path: &std::path::Path) -> String {
    let frames = load_stream(path);
    let (out, conv) = run(&frames);
    let events = strict(&out);
    if let Err(e) = check_invariant(&events) {
        panic!(
            "{}: invariant violated: {e}\n{}",
            path.display(),
            render(&out)
        );
    }
    let mut text = render(&out);
    text.push_str(&format!(
        ": started_output={} response_id={} failure={}\n",
        conv.started_output(),
        conv.response_id().unwrap_or("-"),
        conv.failure().map_or("-".to_owned(), |f| format!(
            "{} code={} type={}",
            f.kind,
            f.code.as_deref().unwrap_or("-"),
            f.error_kind()
        )),
    ));
    text
}

#[test]
fn stream_fixtures() {
    insta::glob!(fixtures(), "upstream/*.sse", |path| {
        insta::with_settings!({
            omit_expression => true,
            input_file => path,
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(check(path));
        });
    });
}

fn events_of(name: &str) -> Vec<TEvent> {
    let (out, _) = run(&load_stream(&upstream(name)));
    let events = strict(&out);
    check_invariant(&events).unwrap();
    events
}

fn message_of(name: &str) -> Value {
    reassemble(&events_of(name)).unwrap_or_else(|| panic!("{name} ended in an error"))
}

fn error_of(name: &str) -> (String, String) {
    match events_of(name).last() {
        Some(TEvent::Error { error }) => (error.kind.clone(), error.message.clone()),
        other => panic!("{name}: ends with {other:?}"),
    }
}

const ENC: &str = "gAAAAABoZ3mK9x_enc_reasoning_ciphertext_AbCdEf0123456789==";

/// Every fixture that completes reassembles to the buffered conversion of its terminal
/// response: nothing lost, nothing duplicated, same blocks in the same order.
#[test]
fn streamed_content_matches_buffered_conversion_of_the_terminal_response() {
    let mut compared = 0;
    for entry in std::fs::read_dir(fixtures().join("upstream")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "sse") {
            continue;
        }
        let frames = load_stream(&path);
        let (out, _) = run(&frames);
        let Some(message) = reassemble(&strict(&out)) else {
            continue;
        };
        let terminal = frames.iter().rev().find_map(|f| match f {
            Upstream::Event(ev) if ev.is_terminal() => ev.response().cloned(),
            _ => None,
        });
        let Some(terminal) = terminal.filter(|r| !r.output.is_empty()) else {
            continue;
        };
        let Some(buffered) = buffered_content(&terminal) else {
            continue;
        };
        let streamed = message["content"].as_array().unwrap();
        assert_eq!(
            normalise(streamed),
            normalise(&buffered),
            "{}",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} fixtures compared");
}

/// A Responses body delivered only through `response.created` and `response.completed`
/// (nothing streamed) converts like the buffered path (S17).
#[test]
fn s17_terminal_only_stream_matches_buffered_conversion_for_every_body() {
    let mut compared = 0;
    for entry in std::fs::read_dir(fixtures().join("upstream")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let body: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let resp: responses::Response = serde_json::from_value(body.clone()).unwrap();
        let Some(buffered) = buffered_content(&resp) else {
            continue;
        };
        let created = json!({"type": "response.created", "response": {"id": resp.id, "status": "in_progress"}});
        let kind = match resp.status {
            Some(responses::ResponseStatus::Incomplete) => "response.incomplete",
            _ => "response.completed",
        };
        let completed = json!({"type": kind, "response": body});
        let frames = parse_frames(&[(None, created.to_string()), (None, completed.to_string())]);
        let (out, _) = run(&frames);
        let events = strict(&out);
        check_invariant(&events).unwrap();
        let message = reassemble(&events).unwrap();
        assert_eq!(
            normalise(message["content"].as_array().unwrap()),
            normalise(&buffered),
            "{}",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} bodies compared");
}

#[test]
fn s01_plain_text() {
    let m = message_of("s01_plain_text.sse");
    assert_eq!(
        m,
        json!({
            "id": "msg_68a1b2c3d4e5f6",
            "model": "claude-opus-4-8",
            "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1200, "output_tokens": 85, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        })
    );
}

#[test]
fn s02_implicit_message_start_uses_the_fallback_id() {
    let frames = load_stream(&upstream("s02_implicit_message_start.sse"));
    let mut conv = stream::StreamConverter::new(
        super::upstream::stream_options().with_message_id("msg_fallback"),
    );
    let mut out = Vec::new();
    for f in &frames {
        if let Upstream::Event(ev) = f {
            conv.on_event(ev, &mut out);
        }
    }
    let events = strict(&out);
    check_invariant(&events).unwrap();
    let TEvent::MessageStart { message } = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(message.id, "msg_fallback");
    // The terminal event still names the upstream response.
    assert_eq!(conv.response_id(), Some("resp_68a1b2c3d4e5f6"));
}

#[test]
fn s05_reasoning_becomes_one_thinking_block_signed_with_the_encrypted_content() {
    let events = events_of("s05_reasoning_summary_signature.sse");
    let m = reassemble(&events).unwrap();
    assert_eq!(
        m["content"][0],
        json!({
            "type": "thinking",
            "thinking": "**Checking the request**\n\nThe user wants a greeting.\n\n**Answering**\n\nKeep it short.",
            "signature": ENC,
        })
    );
    assert_eq!(
        m["content"][1],
        json!({"type": "text", "text": "Hi there!"})
    );
    // The signature is the last delta of the thinking block, right before its stop.
    let stop = events
        .iter()
        .position(|e| matches!(e, TEvent::ContentBlockStop { index: 0 }))
        .unwrap();
    assert!(matches!(
        &events[stop - 1],
        TEvent::ContentBlockDelta {
            index: 0,
            delta: TDelta::SignatureDelta { .. }
        }
    ));
}

#[test]
fn s07_ciphertext_without_summary_becomes_redacted_thinking() {
    let m = message_of("s07_reasoning_ciphertext_only.sse");
    assert_eq!(
        m["content"],
        json!([
            {"type": "redacted_thinking", "data": ENC},
            {"type": "text", "text": "Done."},
        ])
    );
}

#[test]
fn s07_reasoning_without_ciphertext_has_an_empty_signature() {
    let m = message_of("s07_reasoning_without_ciphertext.sse");
    assert_eq!(
        m["content"][0],
        json!({"type": "thinking", "thinking": "Thinking without ciphertext.", "signature": ""})
    );
}

#[test]
fn s10_single_tool_after_reasoning_and_text() {
    let m = message_of("s10_single_tool.sse");
    let types: Vec<&str> = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["thinking", "text", "tool_use"]);
    assert_eq!(
        m["content"][2],
        json!({"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}})
    );
    assert_eq!(m["stop_reason"], "tool_use");
}

fn assert_parallel(name: &str, n: usize) {
    let events = events_of(name);
    let m = reassemble(&events).unwrap();
    let tools: Vec<Value> = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .cloned()
        .collect();
    let want: Vec<Value> = (1..=n)
        .map(|k| {
            json!({"type": "tool_use", "id": format!("call_P{k:02}"), "name": "get_weather",
                   "input": {"city": format!("City{k}"), "unit": "celsius"}})
        })
        .collect();
    assert_eq!(tools, want);
    assert_eq!(m["stop_reason"], "tool_use");
    // Each tool's start, deltas and stop are contiguous (E13: deltas on the tool's own index).
    let mut current = None;
    for ev in &events {
        match ev {
            TEvent::ContentBlockStart { index, .. } => current = Some(*index),
            TEvent::ContentBlockDelta { index, .. } | TEvent::ContentBlockStop { index } => {
                assert_eq!(Some(*index), current);
            }
            _ => {}
        }
    }
}

#[test]
fn s14_parallel_tools_2_are_serialised_in_arrival_order() {
    assert_parallel("s14_parallel_tools_2.sse", 2);
}

#[test]
fn e13_parallel_tools_20_each_delta_on_its_own_index() {
    assert_parallel("s14_parallel_tools_20.sse", 20);
}

#[test]
fn s14_queued_tool_replays_its_buffered_arguments_in_one_delta() {
    let events = events_of("s14_parallel_tools_2.sse");
    let second_tool_deltas: Vec<&TDelta> = events
        .iter()
        .filter_map(|e| match e {
            TEvent::ContentBlockDelta { index: 2, delta } => Some(delta),
            _ => None,
        })
        .collect();
    assert_eq!(second_tool_deltas.len(), 1, "{second_tool_deltas:?}");
}

#[test]
fn s15_arguments_only_in_done_are_sent_once() {
    let events = events_of("s15_tool_args_only_in_done.sse");
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            TEvent::ContentBlockDelta {
                delta: TDelta::InputJsonDelta { partial_json },
                ..
            } => Some(partial_json.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, [r#"{"city":"Paris","unit":"celsius"}"#]);
}

#[test]
fn e05_arguments_only_in_the_terminal_response_are_sent() {
    let m = message_of("e05_args_only_in_terminal.sse");
    assert_eq!(
        m["content"][0]["input"],
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(m["stop_reason"], "tool_use");
}

#[test]
fn e04_text_only_in_done_events_is_sent_once() {
    for (name, text) in [
        ("e04_text_only_in_done.sse", "Only in the done event."),
        (
            "e04_text_only_in_item_done.sse",
            "Only in output_item.done.",
        ),
        (
            "s17_text_only_in_terminal.sse",
            "Only in the terminal response.",
        ),
        ("s_d4_text_suffix_from_done.sse", "Hello, world!"),
        ("e07_missing_output_index.sse", "No indexes."),
        ("b12_type_from_event_line.sse", "typed by event line"),
    ] {
        let m = message_of(name);
        assert_eq!(
            m["content"],
            json!([{"type": "text", "text": text}]),
            "{name}"
        );
    }
}

#[test]
fn e06_late_text_and_reasoning_never_close_the_active_tool() {
    let events = events_of("e06_content_during_active_tool.sse");
    let m = reassemble(&events).unwrap();
    assert_eq!(
        m["content"],
        json!([
            {"type": "tool_use", "id": "call_A", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "text", "text": "Late text."},
            {"type": "thinking", "thinking": "late thought", "signature": ENC},
        ])
    );
}

#[test]
fn e14_done_events_of_other_items_do_not_close_the_active_tool() {
    let events = events_of("e14_late_done_events_do_not_close_the_tool.sse");
    let m = reassemble(&events).unwrap();
    assert_eq!(
        m["content"],
        json!([
            {"type": "tool_use", "id": "call_A", "name": "get_weather", "input": {"city": "Rome"}},
            {"type": "thinking", "thinking": "Thought only in done.", "signature": ENC},
            {"type": "text", "text": "Text only in done."},
        ])
    );
    // The tool's block is the first one and nothing else starts before it stops.
    let first_stop = events
        .iter()
        .position(|e| matches!(e, TEvent::ContentBlockStop { .. }))
        .unwrap();
    let second_start = events
        .iter()
        .position(|e| matches!(e, TEvent::ContentBlockStart { index: 1, .. }))
        .unwrap();
    assert!(first_stop < second_start);
}

#[test]
fn s18_terminal_response_completes_pending_tools_in_order() {
    let m = message_of("s18_terminal_completes_pending_tools.sse");
    assert_eq!(
        m["content"],
        json!([
            {"type": "tool_use", "id": "call_R", "name": "Read", "input": {"file_path": "/a.md"}},
            {"type": "tool_use", "id": "call_W", "name": "get_weather", "input": {"city": "Oslo"}},
        ])
    );
    assert_eq!(m["stop_reason"], "tool_use");
}

#[test]
fn e08_refusal_is_text_with_stop_reason_refusal() {
    let m = message_of("e08_refusal.sse");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(m["stop_reason"], "refusal");
}

#[test]
fn b10_incomplete_max_output_tokens_is_max_tokens() {
    let m = message_of("b10_incomplete_max_output_tokens.sse");
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "This answer is cut"}])
    );
}

#[test]
fn e09_incomplete_content_filter_is_refusal() {
    assert_eq!(
        message_of("e09_incomplete_content_filter.sse")["stop_reason"],
        "refusal"
    );
}

#[test]
fn d2_incomplete_for_another_reason_is_an_error() {
    let (kind, message) = error_of("d2_incomplete_other_reason.sse");
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("api_error", "upstream response incomplete: max_tool_calls")
    );
}

#[test]
fn e10_failed_is_an_error_event_with_a_sanitised_message() {
    let (out, conv) = run(&load_stream(&upstream("e10_failed.sse")));
    let failure = conv.failure().unwrap();
    assert_eq!(failure.kind, FailureKind::Failed);
    assert_eq!(failure.code.as_deref(), Some("server_error"));
    assert!(
        !failure.message.contains("abcdefghijklmnop"),
        "{}",
        failure.message
    );
    assert!(conv.started_output());
    assert!(matches!(
        out.last(),
        Some(anthropic::StreamEvent::Error { .. })
    ));
    assert!(
        !out.iter()
            .any(|e| matches!(e, anthropic::StreamEvent::MessageStop))
    );
}

#[test]
fn e10_failed_before_output_can_fail_over() {
    let (out, conv) = run(&load_stream(&upstream("e10_failed_before_output.sse")));
    assert!(!conv.started_output());
    assert_eq!(
        conv.failure().unwrap().error_kind(),
        anthropic::ErrorKind::RateLimitError
    );
    assert_eq!(out.len(), 2, "message_start then error: {out:?}");
}

#[test]
fn s20_error_event_ends_the_stream_with_an_error() {
    let (kind, message) = error_of("s20_error_event.sse");
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "overloaded_error",
            "The server is overloaded, please retry."
        )
    );
}

#[test]
fn e11_stream_without_terminal_ends_in_an_error_not_a_silent_stop() {
    for name in [
        "e11_missing_terminal.sse",
        "e11_missing_terminal_in_tool.sse",
        "e11_done_marker_without_terminal.sse",
    ] {
        let (out, conv) = run(&load_stream(&upstream(name)));
        assert_eq!(
            conv.failure().unwrap().kind,
            FailureKind::Truncated,
            "{name}"
        );
        let (kind, message) = error_of(name);
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("api_error", "upstream stream ended before a terminal event"),
            "{name}"
        );
        assert!(
            !out.iter()
                .any(|e| matches!(e, anthropic::StreamEvent::MessageStop)),
            "{name}"
        );
    }
}

#[test]
fn e02_bad_delta_is_skipped_and_bad_terminal_is_an_error() {
    let events = events_of("e02_malformed_terminal.sse");
    let m_text: String = events
        .iter()
        .filter_map(|e| match e {
            TEvent::ContentBlockDelta {
                delta: TDelta::TextDelta { text },
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(m_text, "Before a bad frame.");
    assert!(matches!(events.last(), Some(TEvent::Error { .. })));
}

#[test]
fn e03_duplicate_events_are_ignored() {
    let events = events_of("e03_duplicate_events.sse");
    let count = |f: fn(&TEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, TEvent::MessageStart { .. })), 1);
    assert_eq!(count(|e| matches!(e, TEvent::ContentBlockStart { .. })), 1);
    assert_eq!(count(|e| matches!(e, TEvent::ContentBlockStop { .. })), 1);
    assert_eq!(count(|e| matches!(e, TEvent::MessageStop)), 1);
    assert_eq!(
        reassemble(&events).unwrap()["content"][0]["input"],
        json!({"city": "Paris", "unit": "celsius"})
    );
}

#[test]
fn s08_empty_deltas_are_ignored() {
    let m = message_of("s08_empty_deltas.sse");
    assert_eq!(
        m["content"],
        json!([
            {"type": "text", "text": "Text"},
            {"type": "tool_use", "id": "call_E", "name": "get_weather", "input": {}},
        ])
    );
}

#[test]
fn s16_web_search_becomes_server_tool_use_and_result() {
    let m = message_of("s16_web_search.sse");
    assert_eq!(
        m["content"],
        json!([
            {"type": "server_tool_use", "id": "srvtoolu_ws_01", "name": "web_search", "input": {"query": "rust sse parser"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_01", "content": []},
            {"type": "text", "text": "Here is what I found."},
        ])
    );
    // A web search is not a client tool call.
    assert_eq!(m["stop_reason"], "end_turn");
}

#[test]
fn e01_unknown_events_are_ignored() {
    let m = message_of("e01_unknown_events.sse");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "Unknown events are ignored."}])
    );
}

#[test]
fn e01_unknown_event_before_created_does_not_start_the_message() {
    let mut conv = stream::StreamConverter::new(super::upstream::stream_options());
    let mut out = Vec::new();
    let ev = responses::StreamEvent::from_json(r#"{"type":"response.future","x":1}"#).unwrap();
    conv.on_event(&ev, &mut out);
    let ev = responses::StreamEvent::from_json(
        r#"{"type":"response.in_progress","response":{"id":"r"}}"#,
    )
    .unwrap();
    conv.on_event(&ev, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn b09_read_tool_empty_pages_are_removed() {
    let m = message_of("b09_read_tool_empty_pages.sse");
    assert_eq!(
        m["content"][0]["input"],
        json!({"file_path": "/work/src/main.rs"})
    );
    let m = message_of("b09_read_tool_pages_kept.sse");
    assert_eq!(
        m["content"][0]["input"],
        json!({"file_path": "/work/doc.pdf", "pages": "1-3"})
    );
}

#[test]
fn b05_custom_tool_input_is_wrapped() {
    let m = message_of("b05_custom_tool_call.sse");
    assert_eq!(
        m["content"][0],
        json!({"type": "tool_use", "id": "call_X1", "name": "apply_patch",
               "input": {"input": "*** Begin Patch\n*** Update File: a.txt\n-\"old\"\n+new\\path\n*** End Patch"}})
    );
    let m = message_of("b05_custom_tool_call_input_only_in_done.sse");
    assert_eq!(m["content"][0]["input"], json!({"input": "line1\nline2"}));
}

#[test]
fn d5_shortened_tool_names_are_mapped_back() {
    assert_eq!(
        super::upstream::tool_names().to_upstream(super::upstream::LONG_TOOL),
        "mcp__very_long_serve__extremely_long_descriptive_name_1f97724686",
        "the fixture's upstream name must match the shortening scheme"
    );
    let m = message_of("d5_long_tool_name.sse");
    assert_eq!(m["content"][0]["name"], super::upstream::LONG_TOOL);
}

#[test]
fn b11_usage_in_message_delta() {
    let usage = |name| message_of(name)["usage"].clone();
    let u = |i: u64, o: u64, c: u64, r: u64| json!({"input_tokens": i, "output_tokens": o, "cache_creation_input_tokens": c, "cache_read_input_tokens": r});
    assert_eq!(usage("b11_usage_cached_tokens.sse"), u(464, 12, 0, 1536));
    assert_eq!(usage("b11_usage_cache_creation.sse"), u(10, 5, 6, 4));
    assert_eq!(usage("b11_usage_top_level.sse"), u(200, 7, 0, 100));
    assert_eq!(usage("b11_usage_chat_style.sse"), u(25, 9, 5, 20));
}

#[test]
fn s18_response_done_is_terminal() {
    assert_eq!(
        message_of("s18_response_done_alias.sse")["stop_reason"],
        "end_turn"
    );
}

#[test]
fn finish_after_the_end_and_events_after_the_end_add_nothing() {
    let frames = load_stream(&upstream("s01_plain_text.sse"));
    let (mut out, mut conv) = run(&frames);
    let n = out.len();
    conv.finish(&mut out);
    for f in &frames {
        if let Upstream::Event(ev) = f {
            conv.on_event(ev, &mut out);
        }
    }
    assert_eq!(out.len(), n);
    assert!(conv.is_finished());
    assert!(conv.failure().is_none());
}

#[test]
fn thinking_block_starts_with_an_empty_signature() {
    let events = events_of("s05_reasoning_summary_signature.sse");
    assert!(matches!(
        &events[1],
        TEvent::ContentBlockStart { index: 0, content_block: TBlock::Thinking { thinking, signature } }
            if thinking.is_empty() && signature.is_empty()
    ));
}

// ----- upstream event parsing ----------------------------------------------------------

#[test]
fn every_fixture_event_round_trips_through_its_typed_form() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures().join("upstream")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "sse") {
            continue;
        }
        for frame in parse_frames(&split_sse(&std::fs::read_to_string(&path).unwrap())) {
            if let Upstream::Event(ev) = frame {
                let text = serde_json::to_string(&ev).unwrap();
                let back = responses::StreamEvent::from_json(&text).unwrap();
                assert_eq!(back, ev, "{}", path.display());
                n += 1;
            }
        }
    }
    assert!(n > 500, "only {n} events");
}

#[test]
fn event_parsing_is_two_step() {
    // Unknown kinds are kept, never an error.
    let ev = responses::StreamEvent::from_json(r#"{"type":"response.brand_new","a":[1]}"#).unwrap();
    assert_eq!(ev.kind(), "response.brand_new");
    assert!(matches!(&ev, responses::StreamEvent::Unknown { data, .. } if data["a"] == json!([1])));
    assert!(!ev.is_terminal());
    // A known kind with a malformed payload is an error naming the field.
    let err = responses::StreamEvent::from_json(
        r#"{"type":"response.output_text.delta","output_index":"zero","delta":"x"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("response.output_text.delta.output_index:"),
        "{err}"
    );
    // Not an object, or no type: errors.
    assert!(responses::StreamEvent::from_json("[DONE]").is_err());
    assert!(responses::StreamEvent::from_json(r#"{"delta":"x"}"#).is_err());
    // Terminal kinds, parsed or not.
    for kind in [
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.done",
        "error",
    ] {
        assert!(responses::StreamEvent::is_terminal_kind(kind), "{kind}");
    }
    assert!(!responses::StreamEvent::is_terminal_kind(
        "response.output_text.done"
    ));
    // A nested error object is read too.
    let ev = responses::StreamEvent::from_json(
        r#"{"type":"error","error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"too long"}}"#,
    )
    .unwrap();
    let responses::StreamEvent::Error(e) = &ev else {
        panic!("{ev:?}")
    };
    let body = e.body();
    assert_eq!(
        (body.code.as_deref(), body.message.as_str()),
        (Some("context_length_exceeded"), "too long")
    );
}

#[test]
fn anthropic_events_are_exact() {
    let ev = anthropic::StreamEvent::MessageStart {
        message: anthropic::Message::new("resp_1", "claude-x"),
    };
    assert_eq!(
        serde_json::to_string(&ev).unwrap(),
        r#"{"type":"message_start","message":{"id":"resp_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#
    );
    let ev = anthropic::StreamEvent::MessageDelta {
        delta: anthropic::MessageDelta {
            stop_reason: Some(anthropic::StopReason::ToolUse),
            stop_sequence: None,
        },
        usage: anthropic::Usage::default(),
    };
    assert_eq!(
        serde_json::to_string(&ev).unwrap(),
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#
    );
    for (ev, name, json) in [
        (
            anthropic::StreamEvent::MessageStop,
            "message_stop",
            r#"{"type":"message_stop"}"#,
        ),
        (anthropic::StreamEvent::Ping, "ping", r#"{"type":"ping"}"#),
        (
            anthropic::StreamEvent::ContentBlockStop { index: 0 },
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            anthropic::StreamEvent::Error {
                error: anthropic::ErrorBody::new(anthropic::ErrorKind::OverloadedError, "busy"),
            },
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        ),
    ] {
        assert_eq!(ev.event_name(), name);
        assert_eq!(serde_json::to_string(&ev).unwrap(), json);
        let back: anthropic::StreamEvent = serde_json::from_str(json).unwrap();
        assert_eq!(back, ev);
    }
    // An event type this crate does not know is kept.
    let back: anthropic::StreamEvent =
        serde_json::from_str(r#"{"type":"future_event","x":1}"#).unwrap();
    assert_eq!(back.event_name(), "future_event");
}
