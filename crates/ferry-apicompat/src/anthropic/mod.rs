//! Wire types of the Anthropic Messages API (`POST /v1/messages`).
//!
//! Lenient on what is received: unknown fields are ignored, unknown block types are kept
//! as [`ContentBlock::Unknown`], growing string enums have an `Other(String)` variant.
//! Exact on what is emitted: optional fields are skipped when absent.

mod content;
mod parse;
mod request;
mod response;
mod sse;
mod stream;

pub use self::content::{
    CacheControl, ContentBlock, DocumentBlock, DocumentSource, ImageBlock, ImageSource,
    RedactedThinkingBlock, ServerToolUseBlock, TextBlock, ThinkingBlock, ToolResultBlock,
    ToolResultContent, ToolUseBlock, WebSearchToolResultBlock,
};
pub use self::parse::parse_request;
pub(crate) use self::parse::validate_request;
pub use self::request::{
    Effort, InputMessage, MessageContent, MessagesRequest, Metadata, OutputConfig, Role, System,
    Thinking, Tool, ToolChoice,
};
pub use self::response::{
    ErrorBody, ErrorKind, ErrorResponse, Message, ServerToolUsage, StopReason, Usage,
};
pub use self::sse::{PING_FRAME, encode_error, encode_event};
pub use self::stream::{ContentDelta, MessageDelta, StreamEvent};
