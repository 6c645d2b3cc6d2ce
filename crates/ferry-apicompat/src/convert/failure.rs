//! Upstream failures reported inside a response or stream.

/// A response the upstream marked as failed (or incomplete for a reason that is not a
/// normal end). The server maps it to an HTTP status or an SSE `error` event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamFailure {
    /// The upstream error code, when it gave one (`server_error`, `rate_limit_exceeded`, …).
    pub code: Option<String>,
    /// The upstream message, sanitised (no credentials or URLs with secrets).
    pub message: String,
}
