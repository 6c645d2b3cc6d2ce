//! Server-sent events as bytes: an incremental SSE frame parser and an exact SSE encoder.
//!
//! `ferry-sse` turns bytes, in chunks of any size, into [`Frame`]s, and frames back into
//! `event: …\ndata: …\n\n` bytes. It knows no event type and no ferry type: what a frame's
//! data means is the job of the crate that owns the type (`ferry_apicompat::responses::decode`
//! reads upstream frames, `ferry_apicompat::anthropic::encode_event` writes client events
//! through [`encode_frame_with`]). It does no I/O and needs no async runtime: it works on
//! byte slices, so the caller decides how bytes are read and written (and the tests can
//! split a stream at every byte). Input can never make it panic or allocate without bound:
//! a line over the configured limit, a frame that is too large or a field that is not
//! UTF-8 is a typed [`ParseError`] that drops only the frame it hit. It does not decide
//! what an error means for the client: that, and every HTTP concern, belongs to the server.
//!
//! # Brief overview
//!
//! * [`Parser`] turns chunks into [`Frame`]s (`event`, `data`, `id`, `retry`), following the
//!   SSE field rules: comments, LF/CRLF/CR line ends split anywhere, a leading BOM, several
//!   `data:` lines joined with `\n`, and [`Parser::finish`] for a last frame without its
//!   blank line.
//! * [`Frame::is_done`] recognises the `[DONE]` sentinel.
//! * [`encode_frame_with`] writes one frame whose payload a closure writes in place (the one
//!   place a frame is framed); [`encode_frame`] writes one whose payload is already bytes.
//! * [`ParseError`] is the crate's one error type.
//!
//! # Example
//!
//! A stream split into 7-byte chunks, read back into frames, and one frame written again:
//!
//! ```
//! use ferry_sse::{Frame, Parser, encode_frame};
//!
//! let stream = concat!(
//!     "event: response.created\n",
//!     "data: {\"type\":\"response.created\"}\n\n",
//!     ": keep-alive comment\r\n",
//!     "event: response.output_text.delta\r\n",
//!     "data: {\"delta\":\"Hi\"}\r\n\r\n",
//!     "data: [DONE]\n\n",
//! );
//!
//! let mut parser = Parser::new(1 << 20);
//! let mut frames = Vec::new();
//! for chunk in stream.as_bytes().chunks(7) {
//!     parser.feed(chunk, &mut frames)?;
//! }
//! parser.finish(&mut frames)?;
//!
//! assert_eq!(frames.len(), 3);
//! assert_eq!(frames[1], Frame::new(Some("response.output_text.delta"), "{\"delta\":\"Hi\"}"));
//! assert!(frames[2].is_done());
//!
//! let mut out = Vec::new();
//! encode_frame("response.output_text.delta", frames[1].data.as_bytes(), &mut out);
//! assert_eq!(out, b"event: response.output_text.delta\ndata: {\"delta\":\"Hi\"}\n\n");
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
    encode::{encode_frame, encode_frame_with},
    error::ParseError,
    frame::Frame,
    parser::Parser,
};
