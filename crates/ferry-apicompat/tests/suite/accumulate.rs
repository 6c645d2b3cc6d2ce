//! The accumulator rebuilds a response's output from its stream (case 40): it fills a
//! paired terminal item's empty fields and inserts unpaired streamed items where the stream
//! had them (docs/conversion.md § Stream conversion, "Terminal response").

use ferry_apicompat::convert::Accumulator;
use ferry_apicompat::responses::{self, StreamEvent};
use ferry_sse::Frame;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::support::{decode_event, events, upstream_fixtures};

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn accumulate(events: &[Value]) -> Accumulator {
    let mut acc = Accumulator::new();
    for event in events {
        let frame = Frame::new(None, event.to_string());
        acc.on_event(&decode_event(&frame).unwrap().unwrap());
    }
    acc
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn response(value: Value) -> responses::Response {
    serde_json::from_value(value).unwrap()
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn output_json(resp: &responses::Response) -> Value {
    serde_json::to_value(&resp.output).unwrap()
}

fn terminal(events: &[StreamEvent]) -> Option<&StreamEvent> {
    events
        .iter()
        .find(|e| e.is_terminal() && e.response().is_some())
}

/// Case 40: the terminal event has an empty output, the text came as deltas.
#[test]
fn case_40_empty_terminal_output_is_rebuilt_from_text_deltas() {
    let acc = accumulate(&[
        json!({"type":"response.created","response":{"id":"resp_1","status":"in_progress","output":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel"}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo"}),
    ]);
    let out = acc.supplement(response(
        json!({"id":"resp_1","status":"completed","output":[]}),
    ));
    assert_eq!(
        output_json(&out),
        json!([{"type":"message","id":"msg_1","role":"assistant","status":"completed",
                "content":[{"type":"output_text","text":"Hello","annotations":[]}]}])
    );
    assert_eq!(out.id, "resp_1");
}

#[test]
fn every_kind_of_content_is_rebuilt_in_output_order() {
    let acc = accumulate(&[
        // Items arrive out of order; output_index decides.
        json!({"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"Read","arguments":"","status":"in_progress"}}),
        json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":2,"delta":"{\"file_path\":"}),
        json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":2,"delta":"\"/a\"}"}),
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","id":"rs_1","summary":[]}}),
        json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"First."}),
        json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":1,"delta":"Second"}),
        json!({"type":"response.reasoning_summary_text.done","item_id":"rs_1","output_index":0,"summary_index":1,"text":"Second."}),
        json!({"type":"response.output_item.added","output_index":1,"item":{"type":"message","id":"msg_1","role":"assistant","status":"in_progress","content":[]}}),
        // Two content parts; the second has no output_index (placed by item_id).
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"a"}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","content_index":1,"delta":"b"}),
        json!({"type":"response.output_text.done","item_id":"msg_1","content_index":1,"text":"bc"}),
        json!({"type":"response.output_item.added","output_index":3,"item":{"type":"custom_tool_call","id":"ctc_1","call_id":"call_2","name":"apply_patch","input":""}}),
        json!({"type":"response.custom_tool_call_input.delta","item_id":"ctc_1","output_index":3,"delta":"*** Begin"}),
    ]);
    let out = acc.supplement(response(json!({"id":"r","status":"completed","output":[]})));
    assert_eq!(
        output_json(&out),
        json!([
            {"type":"reasoning","id":"rs_1","summary":[
                {"type":"summary_text","text":"First."},{"type":"summary_text","text":"Second."}]},
            {"type":"message","id":"msg_1","role":"assistant","status":"in_progress","content":[
                {"type":"output_text","text":"a","annotations":[]},
                {"type":"output_text","text":"bc","annotations":[]}]},
            {"type":"function_call","id":"fc_1","call_id":"call_1","name":"Read",
             "arguments":"{\"file_path\":\"/a\"}","status":"in_progress"},
            {"type":"custom_tool_call","id":"ctc_1","call_id":"call_2","name":"apply_patch","input":"*** Begin"}
        ])
    );
}

#[test]
fn output_item_done_wins_over_added_and_deltas_fill_only_what_is_empty() {
    let acc = accumulate(&[
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1","content":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"streamed"}),
        json!({"type":"response.output_item.done","output_index":0,"item":{"type":"message","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"final","annotations":[]}]}}),
    ]);
    let out = acc.supplement(response(json!({"output":[]})));
    assert_eq!(
        output_json(&out),
        json!([{"type":"message","id":"msg_1","status":"completed",
                "content":[{"type":"output_text","text":"final","annotations":[]}]}])
    );
}

#[test]
fn a_partial_terminal_output_keeps_its_items_and_gains_the_missing_ones() {
    let acc = accumulate(&[
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1","content":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"text"}),
        json!({"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"Bash"}}),
        json!({"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":1,"arguments":"{\"command\":\"ls\"}"}),
    ]);
    // The terminal has the message with an empty text part and no function call.
    let out = acc.supplement(response(json!({"status":"completed","output":[
        {"type":"message","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"","annotations":[]}]}
    ]})));
    assert_eq!(
        output_json(&out),
        json!([
            {"type":"message","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"text","annotations":[]}]},
            {"type":"function_call","id":"fc_1","call_id":"call_1","name":"Bash","arguments":"{\"command\":\"ls\"}"}
        ])
    );
}

#[test]
fn items_with_no_item_event_are_made_up_from_their_deltas() {
    let acc = accumulate(&[
        json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"delta":"think"}),
        json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","call_id":"call_9","output_index":1,"delta":"{}"}),
        json!({"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":1,"name":"Glob","arguments":"{}"}),
        json!({"type":"response.refusal.delta","item_id":"msg_1","output_index":2,"content_index":0,"delta":"no"}),
    ]);
    let out = acc.supplement(response(json!({"output":[]})));
    assert_eq!(
        output_json(&out),
        json!([
            {"type":"reasoning","id":"rs_1","status":"completed","summary":[{"type":"summary_text","text":"think"}]},
            {"type":"function_call","id":"fc_1","call_id":"call_9","name":"Glob","arguments":"{}","status":"completed"},
            {"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"refusal","refusal":"no"}]}
        ])
    );
}

#[test]
fn a_complete_terminal_output_comes_back_unchanged() {
    let acc = accumulate(&[
        json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"partial"}),
    ]);
    let full = response(json!({"id":"r","status":"completed","output":[
        {"type":"message","id":"msg_1","content":[{"type":"output_text","text":"complete","annotations":[]}]},
        {"type":"web_search_call","id":"ws_1","status":"completed"}
    ],"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}));
    assert_eq!(acc.supplement(full.clone()), full);
    assert_eq!(Accumulator::new().supplement(full.clone()), full);
}

#[test]
fn anonymous_streamed_items_are_not_added_next_to_a_complete_output() {
    // A relay that sends neither item ids nor output indexes.
    let acc = accumulate(&[
        json!({"type":"response.reasoning_summary_text.delta","delta":"thought"}),
        json!({"type":"response.output_text.delta","delta":"answer"}),
    ]);
    let full = response(json!({"output":[
        {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thought"}]},
        {"type":"message","id":"msg_1","content":[{"type":"output_text","text":"answer","annotations":[]}]}
    ]}));
    assert_eq!(acc.supplement(full.clone()), full);
    // With an empty output, they are all there is: two items (the reasoning is not lost
    // into the message).
    let rebuilt = acc.supplement(response(json!({"output":[]})));
    assert_eq!(
        output_json(&rebuilt),
        json!([
            {"type":"reasoning","id":"","status":"completed","summary":[
                {"type":"summary_text","text":"thought"}]},
            {"type":"message","id":"","role":"assistant","status":"completed","content":[
            {"type":"output_text","text":"answer","annotations":[]}]}])
    );
}

#[test]
fn top_level_usage_fills_a_missing_response_usage() {
    let acc = accumulate(&[
        json!({"type":"response.completed","response":{"id":"r","status":"completed","output":[]},
        "usage":{"input_tokens":15,"output_tokens":6,"total_tokens":21,"input_tokens_details":{"cached_tokens":5}}}),
    ]);
    let out = acc.supplement(response(json!({"id":"r","status":"completed","output":[]})));
    let usage = out.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens()
        ),
        (15, 6, 5)
    );
    // A response usage of its own wins.
    let own = acc.supplement(response(
        json!({"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}),
    ));
    assert_eq!(own.usage.unwrap().input_tokens, 1);
}

#[test]
fn response_is_the_latest_snapshot_supplemented() {
    let acc = accumulate(&[
        json!({"type":"response.created","response":{"id":"resp_7","model":"gpt-5","status":"in_progress","output":[]}}),
        json!({"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":"cut off"}),
    ]);
    let resp = acc.response();
    assert_eq!((resp.id.as_str(), resp.model.as_str()), ("resp_7", "gpt-5"));
    assert_eq!(
        output_json(&resp),
        json!([{"type":"message","id":"","role":"assistant","status":"completed",
                "content":[{"type":"output_text","text":"cut off","annotations":[]}]}])
    );
}

/// Every upstream fixture with a terminal response: a terminal whose output is dropped is
/// rebuilt from the stream alone (snapshot), and the full terminal is not made worse.
#[test]
fn upstream_fixtures_rebuild_their_output() {
    for fixture in upstream_fixtures() {
        let events = events(&fixture.bytes);
        let Some(term) = terminal(&events) else {
            continue;
        };
        let mut acc = Accumulator::new();
        for event in &events {
            acc.on_event(event);
        }
        let full = term.response().unwrap().clone();
        let mut emptied = full.clone();
        emptied.output.clear();
        let rebuilt = acc.supplement(emptied);
        let name = fixture.name.trim_start_matches("upstream/");
        insta::with_settings!({ snapshot_path => "../snapshots", snapshot_suffix => name, omit_expression => true }, {
            insta::assert_json_snapshot!(rebuilt.output);
        });
        // Supplementing the full terminal keeps every item it had, in its order (an item
        // without an id may get the streamed item's id).
        let supplemented = acc.supplement(full.clone());
        let ids = |r: &responses::Response| -> Vec<String> {
            r.output
                .iter()
                .filter_map(|i| i.id().map(str::to_owned))
                .collect()
        };
        let kept: Vec<_> = ids(&supplemented)
            .into_iter()
            .filter(|id| ids(&full).contains(id))
            .collect();
        assert_eq!(kept, ids(&full), "{}", fixture.name);
        assert!(
            supplemented.output.len() >= full.output.len(),
            "{}",
            fixture.name
        );
    }
}
