//! Wire types of the OpenAI Responses API (`POST /v1/responses`).
//!
//! Lenient on what is received (unknown fields ignored, unknown item and event types kept
//! or skipped), exact on what is emitted (absent optional fields are not serialised, so the
//! upstream never sees a `null` it might reject).

mod de;
mod decode;
mod output;
mod request;
mod response;
mod stream;
mod usage;

pub use self::decode::{DecodeError, decode, is_done, payload_with_type};
pub use self::output::*;
pub use self::request::*;
pub use self::response::*;
pub use self::stream::*;
pub use self::usage::*;
