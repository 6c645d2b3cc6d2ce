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
pub use self::output::{
    CustomToolCallItem, FunctionCallItem, ItemStatus, MessageItem, OutputContent, OutputItem,
    ReasoningContent, ReasoningItem, SummaryPart, WebSearchCallItem,
};
pub use self::request::{
    FunctionCall, FunctionCallOutput, FunctionOutput, FunctionTool, InputContent, InputItem,
    InputMessage, MessageRole, NamedToolChoice, Reasoning, ReasoningEffort, ReasoningInput,
    ReasoningSummary, Request, TextConfig, Tool, ToolChoice, ToolChoiceMode, UserLocation,
    WebSearchFilters, WebSearchTool,
};
pub use self::response::{
    ErrorBody, IncompleteDetails, IncompleteReason, Response, ResponseStatus,
};
pub use self::stream::{
    AnnotationEvent, ArgumentsDoneEvent, DeltaEvent, ErrorEvent, InputDoneEvent, ItemEvent,
    PartEvent, ProgressEvent, RefusalDoneEvent, ResponseEvent, StreamEvent, TerminalEvent,
    TextDoneEvent,
};
pub use self::usage::{InputTokensDetails, OutputTokensDetails, Usage};
