//! `responses::StreamEvent::from_json` reads the `type` off the front or the back of a
//! payload without parsing it; the result must be the same wherever the key is.

use ferry_apicompat::ConvertError;
use ferry_apicompat::responses::StreamEvent;
use pretty_assertions::assert_eq;

/// `body` (object members without `type`) with `"type":kind` first, last and in the middle
/// (before the last member, which defeats the shortcut and takes the full parse).
fn placements(kind: &str, body: &str) -> [String; 3] {
    let (a, b) = body.rsplit_once(",\"").unwrap_or((body, ""));
    let middle = if b.is_empty() {
        format!("{{{a},\"type\":\"{kind}\"}}")
    } else {
        format!("{{{a},\"type\":\"{kind}\",\"{b}}}")
    };
    [
        format!("{{\"type\":\"{kind}\",{body}}}"),
        format!("{{ {body} , \"type\" : \"{kind}\" }}\n"),
        middle,
    ]
}

fn parse_all(kind: &str, body: &str) -> Vec<Result<StreamEvent, ConvertError>> {
    placements(kind, body)
        .iter()
        .map(|p| StreamEvent::from_json(p))
        .collect()
}

#[test]
fn an_event_parses_the_same_with_type_first_last_or_in_the_middle() {
    let cases = [
        (
            "response.output_text.delta",
            r#""content_index":0,"delta":"hi \"type\" there","item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":4"#,
        ),
        (
            "response.output_item.added",
            r#""item":{"content":[],"id":"msg_1","role":"assistant","status":"in_progress","type":"message"},"output_index":0"#,
        ),
        (
            "response.completed",
            r#""response":{"id":"resp_1","model":"gpt-4.1","output":[],"status":"completed","usage":{"input_tokens":3,"output_tokens":5,"total_tokens":8}},"sequence_number":9"#,
        ),
        ("response.something_new", r#""a":1,"b":[true]"#),
    ];
    for (kind, body) in cases {
        let all = parse_all(kind, body);
        let first = all[0].as_ref().ok().cloned();
        assert!(first.is_some(), "{kind}: {:?}", all[0]);
        assert_eq!(first.as_ref().map(StreamEvent::kind), Some(kind));
        for r in &all[1..] {
            assert_eq!(r.as_ref().ok(), first.as_ref(), "{kind}");
        }
    }
}

#[test]
fn a_malformed_known_event_fails_with_its_path_wherever_the_type_is() {
    let all = parse_all(
        "response.output_text.delta",
        r#""output_index":"zero","delta":"x""#,
    );
    for r in &all {
        let Err(ConvertError::InvalidShape { path, .. }) = r else {
            panic!("expected an error, got {r:?}");
        };
        assert_eq!(path, "response.output_text.delta.output_index");
    }
}

#[test]
fn a_repeated_or_escaped_type_key_is_read_by_the_full_parse() {
    // The shortcut would see only one of the two keys: the full parse rejects the repeat.
    for payload in [
        r#"{"type":"response.output_text.delta","delta":"x","type":"response.refusal.delta"}"#,
        r#"{"typ\u0065":"response.refusal.delta","delta":"x","type":"response.output_text.delta"}"#,
    ] {
        let r = StreamEvent::from_json(payload);
        let Err(ConvertError::InvalidShape { path, .. }) = &r else {
            panic!("expected an error, got {r:?}");
        };
        assert_eq!(path, "event");
    }
    // A bad document whose ends look right is still rejected.
    let r = StreamEvent::from_json(r#"{"delta":"x",,"type":"response.output_text.delta"}"#);
    assert!(
        matches!(&r, Err(ConvertError::InvalidShape { path, .. }) if path == "event"),
        "{r:?}"
    );
}
