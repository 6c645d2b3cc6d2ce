//! Conversions between the two APIs: [`request`] (Anthropic → Responses), [`response`]
//! (Responses JSON → Anthropic message) and [`stream`] (Responses events → Anthropic events).

mod failure;
mod items;
pub mod request;
pub mod response;
mod stop;
pub mod stream;
mod tool_names;

pub use self::failure::{FailureKind, UpstreamFailure};
pub use self::items::{ItemIndex, ItemRef, Seen};
pub use self::tool_names::ToolNames;
