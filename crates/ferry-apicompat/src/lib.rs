//! Wire types of the Anthropic Messages API and the OpenAI Responses API, and pure
//! conversion between them.
//!
//! `ferry-apicompat` turns an Anthropic Messages request into an OpenAI Responses request,
//! and a Responses response or event stream back into Anthropic form. It does no I/O, uses
//! no async runtime, no clock and no randomness: everything it needs (ids, options) is
//! passed in, so the same input always gives the same output. It cannot fail except on
//! input that cannot be converted; a conversion that has to leave something out returns
//! what it dropped next to the value ([`Converted`]).
//!
//! (The crate documentation is completed as the converters land.)
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
