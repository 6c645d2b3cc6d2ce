//! The SSE builders produce streams that the real parser reads back unchanged.

use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

#[test]
fn sse_frames_every_event_with_its_type() {
    let body = sse(vec![
        ev_created("resp_1"),
        ev_text_delta(0, "msg_1", "hi\nthere"),
        ev_completed("resp_1", Usage::new(3, 2)),
    ]);
    let frames: Vec<(String, Value)> = body
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (ev, data) = f.split_once('\n').unwrap();
            (
                ev.strip_prefix("event: ").unwrap().to_owned(),
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect();
    let types: Vec<&str> = frames.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "response.created",
            "response.output_text.delta",
            "response.completed"
        ]
    );
    assert_eq!(frames[1].1["delta"], json!("hi\nthere"));
    assert_eq!(
        frames[2].1["response"]["usage"],
        json!({
            "input_tokens": 3, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5
        })
    );
}

#[test]
fn text_events_concatenate_the_deltas() {
    let evs = text_events("resp_9", &["Hel", "lo"], Usage::new(1, 1));
    let done = evs
        .iter()
        .find(|e| e["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(done["text"], json!("Hello"));
    assert_eq!(
        evs.last().unwrap()["response"]["output"][0]["content"][0]["text"],
        json!("Hello")
    );
}

#[test]
fn fixtures_load_from_the_workspace() {
    let req = claude_code_request("01_say_hi_main");
    assert_eq!(req["model"], json!("claude-opus-4-8"));
}
