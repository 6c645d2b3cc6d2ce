//! Conversions between the two APIs: [`request`] (Anthropic → Responses), [`response`]
//! (Responses JSON → Anthropic message) and [`stream`] (Responses events → Anthropic events).

mod accumulate;
mod codes;
mod error_reply;
mod failure;
mod items;
mod overflow;
pub mod request;
pub mod response;
mod stop;
pub mod stream;
mod tool_names;

pub use self::accumulate::Accumulator;
pub use self::codes::{
    CodeMeaning, UPSTREAM_ERROR_CODES, code_meaning, codes_meaning, is_rejected_reasoning,
};
pub use self::error_reply::ErrorReply;
pub use self::failure::{FailureKind, UpstreamFailure};
pub use self::items::{ItemIndex, ItemRef, Seen};
pub use self::overflow::{is_context_overflow, prompt_too_long_message};
pub use self::tool_names::ToolNames;
