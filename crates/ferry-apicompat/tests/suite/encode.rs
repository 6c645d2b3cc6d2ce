//! The Anthropic SSE encoder: exact bytes, and output that reads back as what went in.

use ferry_apicompat::anthropic::{
    self, ContentBlock, ContentDelta, ErrorBody, ErrorKind, Message, MessageDelta, StopReason,
    StreamEvent, Usage,
};
use ferry_apicompat::anthropic::{PING_FRAME, encode_error, encode_event};
use ferry_sse::Parser;
use pretty_assertions::assert_eq;

use super::support::{convert_chunks, upstream_fixtures};

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn text(buf: &[u8]) -> &str {
    std::str::from_utf8(buf).unwrap()
}

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn sample_events() -> Vec<StreamEvent> {
    let block = |json: &str| -> ContentBlock { serde_json::from_str(json).unwrap() };
    vec![
        StreamEvent::MessageStart {
            message: Message::new("resp_1", "claude-sonnet-4-5"),
        },
        StreamEvent::Ping,
        StreamEvent::ContentBlockStart {
            index: 0,
            content_block: block(r#"{"type":"thinking","thinking":"","signature":""}"#),
        },
        StreamEvent::ContentBlockDelta {
            index: 0,
            delta: ContentDelta::ThinkingDelta {
                thinking: "line one\nline \"two\"".into(),
            },
        },
        StreamEvent::ContentBlockDelta {
            index: 0,
            delta: ContentDelta::SignatureDelta {
                signature: "gAAAA==".into(),
            },
        },
        StreamEvent::ContentBlockStop { index: 0 },
        StreamEvent::ContentBlockStart {
            index: 1,
            content_block: block(r#"{"type":"text","text":""}"#),
        },
        StreamEvent::ContentBlockDelta {
            index: 1,
            delta: ContentDelta::TextDelta {
                text: "h\u{e9}llo \u{1F600}\r\n".into(),
            },
        },
        StreamEvent::ContentBlockStop { index: 1 },
        StreamEvent::ContentBlockStart {
            index: 2,
            content_block: block(r#"{"type":"tool_use","id":"call_1","name":"Read","input":{}}"#),
        },
        StreamEvent::ContentBlockDelta {
            index: 2,
            delta: ContentDelta::InputJsonDelta {
                partial_json: "{\"file_path\":\"/tmp/a\"}".into(),
            },
        },
        StreamEvent::ContentBlockStop { index: 2 },
        StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason: Some(StopReason::ToolUse),
                stop_sequence: None,
            },
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 4,
                server_tool_use: None,
            },
        },
        StreamEvent::MessageStop,
        StreamEvent::Error {
            error: ErrorBody::new(ErrorKind::OverloadedError, "Overloaded"),
        },
    ]
}

#[test]
fn encoded_events_snapshot() {
    let mut buf = Vec::new();
    for event in sample_events() {
        encode_event(&event, &mut buf);
    }
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!(text(&buf));
    });
}

#[test]
fn ping_is_byte_exact() {
    assert_eq!(PING_FRAME, b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    let mut buf = Vec::new();
    encode_event(&StreamEvent::Ping, &mut buf);
    assert_eq!(text(&buf), text(PING_FRAME));
}

#[test]
fn error_frames_are_byte_exact() {
    let mut buf = b"kept".to_vec();
    encode_error("api_error", "upstream said \"no\"\nand stopped", &mut buf);
    assert_eq!(
        text(&buf),
        "keptevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream said \\\"no\\\"\\nand stopped\"}}\n\n"
    );
    // The same bytes as encoding the typed event.
    let mut typed = Vec::new();
    encode_event(
        &StreamEvent::Error {
            error: ErrorBody::new(ErrorKind::ApiError, "upstream said \"no\"\nand stopped"),
        },
        &mut typed,
    );
    assert_eq!(text(&typed), text(&buf[4..]));
}

/// Test-side mirror of an Anthropic event frame: fails on any field the encoder should not
/// write (style guide §4.9).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "the fields exist only so that deny_unknown_fields accepts them"
)]
struct StrictEnvelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    content_block: Option<serde_json::Value>,
    #[serde(default)]
    delta: Option<serde_json::Value>,
    #[serde(default)]
    usage: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The converter's events for every upstream fixture, encoded, read back by our own parser:
/// one frame per event, the event name equal to the payload's `type`, the payload equal to
/// the event.
#[test]
fn encoded_streams_read_back_as_the_same_events() {
    for fixture in upstream_fixtures() {
        let events = convert_chunks([&fixture.bytes[..]]);
        let mut buf = Vec::new();
        for event in &events {
            encode_event(event, &mut buf);
        }
        let mut parser = Parser::new(1 << 20);
        let mut frames = Vec::new();
        parser.feed(&buf, &mut frames).unwrap();
        parser.finish(&mut frames).unwrap();
        assert_eq!(frames.len(), events.len(), "{}", fixture.name);
        for (frame, event) in frames.iter().zip(&events) {
            let strict: StrictEnvelope = serde_json::from_str(&frame.data)
                .unwrap_or_else(|e| panic!("{}: {e}: {}", fixture.name, frame.data));
            assert_eq!(frame.event.as_deref(), Some(strict.kind.as_str()));
            assert_eq!(strict.kind, event.event_name());
            let back: anthropic::StreamEvent = serde_json::from_str(&frame.data).unwrap();
            assert_eq!(&back, event, "{}", fixture.name);
        }
    }
}
