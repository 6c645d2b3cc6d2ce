//! Emulated `stop_sequences`: the text is cut at the first stop sequence, across delta
//! boundaries, in the stream and the JSON conversion alike.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: bad test data must fail the test"
)]

use ferry_apicompat::convert::{response, stream};
use ferry_apicompat::{anthropic, responses};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::upstream::{CLIENT_MODEL, tool_names};

fn events(deltas: &[&str], then_tool: bool) -> Vec<responses::StreamEvent> {
    let full: String = deltas.concat();
    let mut evs = vec![
        json!({"type":"response.created","response":{"id":"resp_s","status":"in_progress"}}),
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_a","role":"assistant","content":[]}}),
    ];
    for d in deltas {
        evs.push(json!({"type":"response.output_text.delta","output_index":0,"item_id":"msg_a","content_index":0,"delta":d}));
    }
    evs.push(json!({"type":"response.output_text.done","output_index":0,"item_id":"msg_a","content_index":0,"text":full}));
    let mut output = vec![
        json!({"type":"message","id":"msg_a","role":"assistant","content":[{"type":"output_text","text":full,"annotations":[]}]}),
    ];
    if then_tool {
        let call = json!({"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{}"});
        evs.push(json!({"type":"response.output_item.added","output_index":1,"item":call}));
        evs.push(json!({"type":"response.output_item.done","output_index":1,"item":call}));
        output.push(call);
    }
    evs.push(json!({"type":"response.completed","response":{"id":"resp_s","status":"completed","output":output,
        "usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}}}));
    evs.iter()
        .map(|e| responses::StreamEvent::from_json(&e.to_string()).expect("event"))
        .collect()
}

/// The streamed text, the message_delta, and the block types.
fn run_stream(evs: &[responses::StreamEvent], stops: &[&str]) -> (String, Value, Vec<String>) {
    let opts = stream::Options::new(CLIENT_MODEL, tool_names())
        .with_stop_sequences(stops.iter().map(|s| (*s).to_owned()));
    let mut conv = stream::StreamConverter::new(opts);
    let mut out = Vec::new();
    for ev in evs {
        conv.on_event(ev, &mut out);
    }
    conv.finish(&mut out);
    let mut text = String::new();
    let mut delta = Value::Null;
    let mut blocks = Vec::new();
    for ev in &out {
        match ev {
            anthropic::StreamEvent::ContentBlockStart { content_block, .. } => {
                blocks.push(content_block.type_name().to_owned());
            }
            anthropic::StreamEvent::ContentBlockDelta {
                delta: anthropic::ContentDelta::TextDelta { text: t },
                ..
            } => text.push_str(t),
            anthropic::StreamEvent::MessageDelta { delta: d, .. } => {
                delta = serde_json::to_value(d).expect("delta");
            }
            _ => {}
        }
    }
    assert!(matches!(
        out.last(),
        Some(anthropic::StreamEvent::MessageStop)
    ));
    (text, delta, blocks)
}

fn run_json(evs: &[responses::StreamEvent], stops: &[&str]) -> Value {
    let Some(responses::StreamEvent::Completed(t)) = evs.last() else {
        panic!("fixture ends in completed");
    };
    let opts = response::Options::new(CLIENT_MODEL, tool_names())
        .with_stop_sequences(stops.iter().map(|s| (*s).to_owned()));
    let msg = response::convert(&t.response, &opts)
        .expect("converts")
        .value;
    serde_json::to_value(msg).expect("message")
}

#[test]
fn a_stop_sequence_split_across_deltas_cuts_the_text_and_what_follows() {
    let evs = events(&["The answer is 4", "2.</ans", "wer> and more"], true);
    let (text, delta, blocks) = run_stream(&evs, &["</answer>"]);
    assert_eq!(text, "The answer is 42.");
    assert_eq!(
        delta,
        json!({"stop_reason": "stop_sequence", "stop_sequence": "</answer>"})
    );
    // The tool call after the stop is not shown: the model stopped.
    assert_eq!(blocks, ["text"]);

    let msg = run_json(&evs, &["</answer>"]);
    assert_eq!(
        msg["content"],
        json!([{"type": "text", "text": "The answer is 42."}])
    );
    assert_eq!(msg["stop_reason"], "stop_sequence");
    assert_eq!(msg["stop_sequence"], "</answer>");
}

#[test]
fn a_held_back_partial_match_is_sent_when_it_is_not_a_stop_sequence() {
    let evs = events(&["a </an", "chor> b </"], false);
    let (text, delta, _) = run_stream(&evs, &["</answer>"]);
    assert_eq!(text, "a </anchor> b </");
    assert_eq!(
        delta,
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    let msg = run_json(&evs, &["</answer>"]);
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["stop_sequence"], Value::Null);
}

#[test]
fn the_earliest_of_several_stop_sequences_wins() {
    let evs = events(&["one STOP two", " END"], false);
    let (text, delta, _) = run_stream(&evs, &["END", "STOP"]);
    assert_eq!(text, "one ");
    assert_eq!(delta["stop_sequence"], "STOP");
    assert_eq!(
        run_json(&evs, &["END", "STOP"])["content"][0]["text"],
        "one "
    );
}

#[test]
fn without_stop_sequences_nothing_is_held() {
    let evs = events(&["a </an", "swer> b"], false);
    let (text, delta, _) = run_stream(&evs, &[]);
    assert_eq!(text, "a </answer> b");
    assert_eq!(delta["stop_reason"], "end_turn");
}
