//! The response object, usage, stop reasons and error bodies.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ContentBlock, Role};

/// A complete assistant message: the body of a non-streaming response, and the `message`
/// of a `message_start` event (then with empty `content` and a `null` `stop_reason`).
///
/// Serialised exactly as Anthropic does: `id`, `type` (always `"message"`), `role`, `model`,
/// `content`, `stop_reason` and `stop_sequence` (both `null` when absent) and `usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Message id.
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// Always [`Role::Assistant`] for responses.
    #[serde(default = "assistant_role")]
    pub role: Role,
    /// The model the client asked for.
    #[serde(default)]
    pub model: String,
    /// The content blocks.
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// Why the model stopped; `null` while streaming.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended generation, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant_role() -> Role {
    Role::Assistant
}

impl Message {
    /// An assistant message with the given id and model, no content, no stop reason and
    /// zero usage: the shape of `message_start`.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: message_type(),
            role: Role::Assistant,
            model: model.into(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }
}

/// Token usage of a message.
///
/// All four counters are always serialised, zeros included. `input_tokens` counts only the
/// input that was neither read from nor written to the prompt cache, as Anthropic does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// Server tool use counts (web searches), when the answer used server tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolUsage>,
}

/// Server tool use counts of a message's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerToolUsage {
    /// Web searches run for the answer.
    #[serde(default)]
    pub web_search_requests: u32,
}

/// Why the model stopped generating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The output token limit was reached.
    MaxTokens,
    /// A stop sequence was generated.
    StopSequence,
    /// The model called a client tool.
    ToolUse,
    /// A long-running server tool turn was paused.
    PauseTurn,
    /// The model (or a content filter) declined to answer.
    Refusal,
    /// A stop reason this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl StopReason {
    /// The stop reason as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::ToolUse => "tool_use",
            Self::PauseTurn => "pause_turn",
            Self::Refusal => "refusal",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response body: `{"type":"error","error":{"type":…,"message":…}}`.
///
/// The same `error` object is the payload of a streaming `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "error")]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
    /// Request id, when the server assigns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorResponse {
    /// An error response with the given kind and message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody::new(kind, message),
            request_id: None,
        }
    }
}

/// The `error` object of an error response or `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error type (`invalid_request_error`, `api_error`, …).
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    /// Human-readable message (never contains secrets).
    #[serde(default)]
    pub message: String,
    /// Machine-readable details, when the error has them (the message-thread errors'
    /// `{"error_code": …}` that the SDKs branch on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An error body with the given kind and message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: None,
        }
    }

    /// The same body with `details`.
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The `type` of an Anthropic error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: the request is malformed.
    InvalidRequestError,
    /// 401: bad or missing credentials.
    AuthenticationError,
    /// 402: a billing problem.
    BillingError,
    /// 403: not allowed.
    PermissionError,
    /// 404: no such resource.
    NotFoundError,
    /// 413: the request is too large.
    RequestTooLarge,
    /// 429: rate limited.
    RateLimitError,
    /// 500: an internal or upstream error.
    ApiError,
    /// 504: timed out.
    TimeoutError,
    /// 529: overloaded.
    OverloadedError,
    /// An error type this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl ErrorKind {
    /// The error type as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequestError => "invalid_request_error",
            Self::AuthenticationError => "authentication_error",
            Self::BillingError => "billing_error",
            Self::PermissionError => "permission_error",
            Self::NotFoundError => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimitError => "rate_limit_error",
            Self::ApiError => "api_error",
            Self::TimeoutError => "timeout_error",
            Self::OverloadedError => "overloaded_error",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorKind {
    fn from(s: &str) -> Self {
        match s {
            "invalid_request_error" => Self::InvalidRequestError,
            "authentication_error" => Self::AuthenticationError,
            "billing_error" => Self::BillingError,
            "permission_error" => Self::PermissionError,
            "not_found_error" => Self::NotFoundError,
            "request_too_large" => Self::RequestTooLarge,
            "rate_limit_error" => Self::RateLimitError,
            "api_error" => Self::ApiError,
            "timeout_error" => Self::TimeoutError,
            "overloaded_error" => Self::OverloadedError,
            other => Self::Other(other.to_owned()),
        }
    }
}
