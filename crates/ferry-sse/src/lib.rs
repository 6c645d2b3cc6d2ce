//! Incremental SSE parsing, Anthropic SSE encoding and Responses stream accumulation.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accumulate;
mod decode;
mod encode;
mod error;
mod frame;
mod parser;

pub use crate::{
    accumulate::Accumulator,
    decode::decode_event,
    encode::{PING_FRAME, encode_error, encode_event, encode_frame},
    error::ParseError,
    frame::Frame,
    parser::Parser,
};
