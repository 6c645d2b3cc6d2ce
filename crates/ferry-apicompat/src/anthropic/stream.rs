//! Server-sent events of a streaming Messages response.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ContentBlock, ErrorBody, Message, StopReason, Usage};

/// One event of a streaming response, the `data:` of an SSE frame whose `event:` is
/// [`StreamEvent::event_name`].
///
/// A stream is `message_start`, then for each content block `content_block_start`, its
/// `content_block_delta`s and `content_block_stop` (one block open at a time, indexes
/// 0, 1, 2, …), then `message_delta` and `message_stop`; or it ends early with `error`.
/// `ping` may appear anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// The message begins; `message.content` is empty and `stop_reason` is `null`.
    MessageStart {
        /// The message shell.
        message: Message,
    },
    /// A content block begins (text `""`, thinking `""` with signature `""`, tool input `{}`).
    ContentBlockStart {
        /// Block index, dense from 0.
        index: u32,
        /// The block's initial shape.
        content_block: ContentBlock,
    },
    /// A piece of the open block.
    ContentBlockDelta {
        /// Block index.
        index: u32,
        /// The piece.
        delta: ContentDelta,
    },
    /// The block is complete.
    ContentBlockStop {
        /// Block index.
        index: u32,
    },
    /// Top-level changes at the end: the stop reason and the final usage.
    MessageDelta {
        /// Stop reason and stop sequence.
        delta: MessageDelta,
        /// Final usage.
        usage: Usage,
    },
    /// The message is complete; nothing follows.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// The stream failed; nothing follows.
    Error {
        /// What went wrong.
        error: ErrorBody,
    },
    /// An event type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

impl StreamEvent {
    /// The SSE `event:` name of this event (equal to its `type`).
    pub fn event_name(&self) -> &str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }

    /// Whether nothing may follow this event (`message_stop` or `error`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::MessageStop | Self::Error { .. })
    }
}

/// The payload of a `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentDelta {
    /// More text of a `text` block.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More of a tool input's JSON text (concatenated, parsed at `content_block_stop`).
    InputJsonDelta {
        /// A fragment of JSON text.
        partial_json: String,
    },
    /// More text of a `thinking` block.
    ThinkingDelta {
        /// The thinking text.
        thinking: String,
    },
    /// The signature of a `thinking` block, sent just before it stops.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// A citation for a `text` block.
    CitationsDelta {
        /// The citation, carried opaquely.
        citation: Value,
    },
    /// A delta type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// The `delta` of a `message_delta` event. Both fields are always serialised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the model stopped.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended generation, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}
