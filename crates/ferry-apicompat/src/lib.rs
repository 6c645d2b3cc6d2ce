//! Wire types of the Anthropic Messages API and the OpenAI Responses API, and pure
//! conversion between them.
//!
//! `ferry-apicompat` turns an Anthropic Messages request into an OpenAI Responses request,
//! and a Responses response or event stream back into Anthropic form. It does no I/O, uses
//! no async runtime, no clock and no randomness: everything it needs (ids, options) is
//! passed in, so the same input always gives the same output. It cannot fail except on
//! input that cannot be converted; a conversion that has to leave something out returns
//! what it dropped next to the value ([`Converted`]). It does not pick accounts, keep
//! sessions, set `prompt_cache_key`/`previous_response_id` or speak HTTP: that is the
//! embedding gateway's job.
//!
//! # Brief overview
//!
//! * [`anthropic::parse_request`] reads a Messages request body into an
//!   [`anthropic::MessagesRequest`]; errors name the JSON path of the problem, and a block
//!   of a known type with malformed fields is rejected rather than silently dropped.
//! * [`convert::request::convert`] turns it into a [`responses::Request`] (system prompt
//!   and `system` messages as developer messages, tool calls and results paired by call
//!   id, signed thinking replayed as reasoning items, thinking budgets as effort, tool
//!   schemas repaired). [`convert::ToolNames`] shortens tool names the upstream would
//!   reject and maps them back.
//! * [`convert::response::convert`] turns a buffered [`responses::Response`] into an
//!   [`anthropic::Message`]; [`convert::stream::StreamConverter`] turns Responses stream
//!   events into Anthropic stream events, one at a time.
//! * [`anthropic::encode_event`] writes an Anthropic stream event as exact SSE bytes
//!   (framed by [`ferry_sse::encode_frame_with`], the crate's one dependency on another
//!   ferry crate, itself pure); [`anthropic::encode_error`] and [`anthropic::PING_FRAME`]
//!   are the `error` and keep-alive frames.
//! * [`Converted`] carries a value and the [`Dropped`] parts; [`ConvertError`] is input
//!   that cannot be converted (an `invalid_request_error` for the client).
//!
//! # Example
//!
//! Convert a recorded request for an upstream model:
//!
//! ```
//! use ferry_apicompat::{anthropic, convert, responses};
//!
//! let body = include_bytes!("../../../fixtures/requests/cases/r21_reasoning_round_trip.json");
//! let request = anthropic::parse_request(body)?;
//!
//! let options = convert::request::Options::new().with_model("gpt-5.4");
//! let converted = convert::request::convert(&request, &options)?;
//! let upstream: &responses::Request = &converted.value;
//!
//! assert_eq!(upstream.model, "gpt-5.4");
//! assert_eq!(upstream.store, Some(false));
//! // The signed thinking block of the assistant turn is replayed as a reasoning item,
//! // in its place, before the function call it led to.
//! assert!(matches!(upstream.input[1], responses::InputItem::Reasoning(_)));
//! assert!(matches!(upstream.input[2], responses::InputItem::FunctionCall(_)));
//! assert!(converted.dropped.is_empty());
//!
//! // The same mapping turns upstream tool names back into the client's.
//! let names = convert::ToolNames::from_request(&request);
//! assert_eq!(names.to_client("get_weather"), "get_weather");
//! # Ok::<(), ferry_apicompat::ConvertError>(())
//! ```
//!
//! The crate has no features.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anthropic;
pub mod convert;
pub mod responses;

mod converted;
mod error;

pub use crate::{
    converted::{Converted, Dropped},
    error::ConvertError,
};
