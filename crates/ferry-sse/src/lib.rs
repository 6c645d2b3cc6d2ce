//! Streaming plumbing between upstream bytes and client bytes: an incremental SSE frame
//! parser and an exact SSE encoder.
//!
//! `ferry-sse` sits on both sides of the stream converter in `ferry-apicompat`: upstream
//! bytes, in chunks of any size, become [`Frame`]s (which `ferry_apicompat::responses::decode`
//! turns into `responses::StreamEvent`s), and
//! the converter's `anthropic::StreamEvent`s become `event: …\ndata: …\n\n` bytes. It does
//! no I/O and needs no async runtime: it works on byte slices, so the caller decides how
//! bytes are read and written (and the tests can split a stream at every byte). Upstream
//! input can never make it panic or allocate without bound: a line over the configured
//! limit, a frame that is too large or a field that is not UTF-8 is a typed [`ParseError`]
//! that drops only the frame it hit. It does not decide what an error means for the
//! client: that, and every HTTP concern, belongs to the server.
//!
//! # Brief overview
//!
//! * [`Parser`] turns chunks into [`Frame`]s (`event`, `data`, `id`, `retry`), following the
//!   SSE field rules: comments, LF/CRLF/CR line ends split anywhere, a leading BOM, several
//!   `data:` lines joined with `\n`, and [`Parser::finish`] for a last frame without its
//!   blank line.
//! * [`Frame::is_done`] recognises the `[DONE]` sentinel. Decoding a frame's data into an
//!   event is not this crate's job: `ferry_apicompat::responses::decode` takes the event
//!   name and the data, so the parser knows no event type.
//! * [`encode_event`], [`encode_error`], [`PING_FRAME`] and [`encode_frame`] write exact
//!   Anthropic SSE.
//! * [`ParseError`] is the crate's one error type.
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
//! use ferry_sse::{Parser, encode_event};
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
//!
//! The crate has no cargo features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod encode;
mod error;
mod frame;
mod parser;

pub use crate::{
    encode::{PING_FRAME, encode_error, encode_event, encode_frame},
    error::ParseError,
    frame::Frame,
    parser::Parser,
};
