//! Anthropic stream events as SSE bytes, framed by [`ferry_sse::encode_frame_with`].
//!
//! The event name of a frame is [`StreamEvent::event_name`], its data the event's JSON,
//! serialised straight into the output buffer; the `error` envelope is
//! [`StreamEvent::Error`] with an [`ErrorBody`], whoever writes it.
//!
//! # Example
//!
//! An upstream stream, split into 7-byte chunks, converted for a streaming client and
//! accumulated for a buffered one. The terminal event has no `type` (it comes from the
//! `event:` line) and an empty `output`.
//!
//! ```
//! use ferry_apicompat::convert::{
//!     Accumulator, ToolNames,
//!     stream::{Options, StreamConverter},
//! };
//! use ferry_apicompat::responses;
//! use ferry_apicompat::anthropic::encode_event;
//! use ferry_sse::Parser;
//!
//! let upstream = concat!(
//!     "event: response.created\n",
//!     "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"output\":[]}}\n\n",
//!     ": keep-alive comment\r\n",
//!     "event: response.output_text.delta\r\n",
//!     "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",",
//!     "\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\r\n\r\n",
//!     "event: response.completed\n",
//!     "data: {\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[]}}\n\n",
//!     "data: [DONE]\n\n",
//! );
//!
//! let mut parser = Parser::new(1 << 20);
//! let mut frames = Vec::new();
//! for chunk in upstream.as_bytes().chunks(7) {
//!     parser.feed(chunk, &mut frames)?;
//! }
//! parser.finish(&mut frames)?;
//!
//! let options = Options::new("claude-sonnet-4-5", ToolNames::default());
//! let mut converter = StreamConverter::new(options);
//! let mut accumulator = Accumulator::new();
//! let mut events = Vec::new();
//! let mut terminal = None;
//! for frame in &frames {
//!     let Some(event) = responses::decode(frame.event.as_deref(), &frame.data) else {
//!         continue; // `[DONE]` or a blank payload
//!     };
//!     let event = event?;
//!     accumulator.on_event(&event);
//!     converter.on_event(&event, &mut events);
//!     if event.is_terminal() {
//!         terminal = event.response().cloned();
//!     }
//! }
//! converter.finish(&mut events);
//!
//! // Streaming client: exact Anthropic SSE.
//! let mut body = Vec::new();
//! for event in &events {
//!     encode_event(event, &mut body);
//! }
//! let body = String::from_utf8(body)?;
//! assert!(body.starts_with("event: message_start\ndata: {\"type\":\"message_start\","));
//! assert!(body.contains("\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}"));
//! assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
//!
//! // Buffered client: the text is there although the terminal output was empty.
//! let response = accumulator.supplement(terminal.unwrap_or_default());
//! let json = serde_json::to_value(&response.output)?;
//! assert_eq!(json[0]["content"][0]["text"], "Hi");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{ErrorBody, ErrorKind, StreamEvent};

/// The keep-alive frame Anthropic clients expect, byte for byte (what [`encode_event`]
/// writes for [`StreamEvent::Ping`]).
pub const PING_FRAME: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

/// Appends one Anthropic stream event to `buf` as `event: NAME\ndata: JSON\n\n`, with the
/// JSON serialised straight into `buf` (no intermediate string).
///
/// `Ping` encodes to exactly [`PING_FRAME`]. Serialising the wire types cannot fail; if it
/// ever did, the partial frame is removed and an `api_error` event written instead, so the
/// client never sees a broken frame.
pub fn encode_event(event: &StreamEvent, buf: &mut Vec<u8>) {
    if write_event(event, buf).is_err() {
        let error = StreamEvent::Error {
            error: ErrorBody::new(ErrorKind::ApiError, "failed to encode a stream event"),
        };
        // An `error` event of a known kind and a `&str` message serialises.
        let _ = write_event(&error, buf);
    }
}

/// Appends an Anthropic `error` event to `buf`:
/// `event: error\ndata: {"type":"error","error":{"type":KIND,"message":MESSAGE}}\n\n`.
///
/// `kind` is an Anthropic error type such as `api_error` or `overloaded_error`. The message
/// is written as given, so it must already be free of secrets.
pub fn encode_error(kind: &str, message: &str, buf: &mut Vec<u8>) {
    let error = StreamEvent::Error {
        error: ErrorBody::new(ErrorKind::from(kind), message),
    };
    encode_event(&error, buf);
}

/// Frames `event`, or leaves `buf` as it was and returns the serialisation error.
fn write_event(event: &StreamEvent, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    ferry_sse::encode_frame_with(Some(event.event_name()), buf, |buf| {
        serde_json::to_writer(buf, event)
    })
}
