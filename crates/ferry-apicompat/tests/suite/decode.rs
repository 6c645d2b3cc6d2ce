//! Frames to upstream events: `[DONE]`, injected types, typed errors.

use ferry_apicompat::responses::{DecodeError, StreamEvent};
use ferry_sse::Frame;
use pretty_assertions::assert_eq;

use super::support::{
    UPSTREAM_MAX, decode_event, events, fixtures_root, parse_chunks, payload_with_type,
};

#[test]
fn done_and_blank_frames_carry_no_event() {
    assert!(decode_event(&Frame::new(None, "[DONE]")).is_none());
    assert!(decode_event(&Frame::new(Some("response.completed"), " \n")).is_none());
}

/// Case 6: the type comes from the `event:` line (docs/conversion.md § Wire types).
#[test]
fn a_payload_without_type_is_typed_by_its_event_name() {
    let bytes = std::fs::read(fixtures_root().join("sse/case6_missing_type.sse")).unwrap();
    let frames = parse_chunks(UPSTREAM_MAX, [&bytes[..]]).frames;
    let event = decode_event(&frames[0]).unwrap().unwrap();
    assert!(matches!(&event, StreamEvent::Completed(_)), "{event:?}");
    assert!(event.is_terminal());
    let usage = event.response().unwrap().usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens()
        ),
        (15, 6, 5)
    );
}

#[test]
fn the_upstream_fixture_typed_by_event_lines_decodes_fully() {
    let bytes =
        std::fs::read(fixtures_root().join("upstream/b12_type_from_event_line.sse")).unwrap();
    let kinds: Vec<String> = events(&bytes).iter().map(|e| e.kind().to_owned()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_text.delta",
            "response.completed"
        ]
    );
}

#[test]
fn unknown_kinds_are_events_not_errors() {
    let event = decode_event(&Frame::new(
        None,
        "{\"type\":\"response.future_thing\",\"x\":1}",
    ))
    .unwrap()
    .unwrap();
    assert_eq!(event.kind(), "response.future_thing");
    assert!(matches!(event, StreamEvent::Unknown { .. }));
}

#[test]
fn a_known_kind_that_does_not_parse_is_a_typed_error() {
    let bad_delta = Frame::new(
        None,
        "{\"type\":\"response.output_text.delta\",\"delta\":5}",
    );
    let err = decode_event(&bad_delta).unwrap().unwrap_err();
    assert!(matches!(
        &err,
        DecodeError { event: None, kind: Some(k), .. } if k == "response.output_text.delta"
    ));
    assert!(!err.is_terminal_event());

    let bad_terminal = Frame::new(Some("response.completed"), "{\"response\":{\"output\":7}}");
    let err = decode_event(&bad_terminal).unwrap().unwrap_err();
    assert!(err.is_terminal_event(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("invalid upstream event `response.completed`: "),
        "{err}"
    );

    // Not JSON at all: no kind, judged by the event name.
    let garbage = Frame::new(Some("error"), "not json");
    let err = decode_event(&garbage).unwrap().unwrap_err();
    assert!(matches!(&err, DecodeError { kind: None, .. }));
    assert!(err.is_terminal_event());
    let garbage = Frame::new(None, "not json");
    assert!(
        !decode_event(&garbage)
            .unwrap()
            .unwrap_err()
            .is_terminal_event()
    );
}

/// `decode_event` takes shortcuts (no type probe, a single pass for deltas); it must give
/// exactly what the two-step `StreamEvent::from_json` gives, for every fixture frame and for
/// deltas that do not parse.
#[test]
fn decode_event_agrees_with_from_json() {
    let mut frames: Vec<Frame> = super::support::upstream_fixtures()
        .iter()
        .flat_map(|f| parse_chunks(UPSTREAM_MAX, [&f.bytes[..]]).frames)
        .collect();
    for bad in [
        "{\"type\":\"response.output_text.delta\",\"delta\":5}",
        "{\"type\":\"response.output_text.delta\",\"output_index\":-1,\"delta\":\"x\"}",
        "{\"type\":\"response.function_call_arguments.delta\",\"delta\":\"x\"} trailing",
        "{\"type\":\"response.refusal.delta\\u0020\",\"delta\":\"x\"}",
        "{\"type\":\"response.reasoning_text.delta\",\"delta\":null,\"item_id\":null}",
    ] {
        frames.push(Frame::new(None, bad));
    }
    assert!(frames.len() > 500, "{}", frames.len());
    for frame in &frames {
        if frame.is_done() || frame.data.trim().is_empty() {
            assert!(decode_event(frame).is_none());
            continue;
        }
        let expected = StreamEvent::from_json(&payload_with_type(frame));
        match (decode_event(frame).unwrap(), expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{}", frame.data),
            (Err(DecodeError { source, .. }), Err(expected)) => {
                assert_eq!(source, expected, "{}", frame.data);
            }
            (got, expected) => panic!("{}: {got:?} vs {expected:?}", frame.data),
        }
    }
}
