//! Conversions between the two APIs: [`request`] (Anthropic → Responses), [`response`]
//! (Responses JSON → Anthropic message) and [`stream`] (Responses events → Anthropic events).

mod accumulate;
mod failure;
mod items;
mod overflow;
pub mod request;
pub mod response;
mod stop;
pub mod stream;
mod tool_names;

pub use self::accumulate::Accumulator;
pub use self::failure::{FailureKind, UpstreamFailure};
pub use self::items::{ItemIndex, ItemRef, Seen};
pub use self::overflow::{is_context_overflow, prompt_too_long_message};
pub use self::tool_names::ToolNames;
