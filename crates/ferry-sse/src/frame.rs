//! One dispatched SSE frame.

/// One server-sent event: the fields of the lines before a blank line.
///
/// Only the fields the frame itself carried are set: `id` is the frame's own `id:` line,
/// not the stream's "last event id".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The `event:` name, trimmed; `None` when absent or blank (the SSE default `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` value, if the frame had one (values containing NUL are ignored, as in the
    /// SSE specification).
    pub id: Option<String>,
    /// The `retry:` value in milliseconds, if the frame had a valid one.
    pub retry: Option<u64>,
}

impl Frame {
    /// A frame with `data` and an optional `event` name, and no `id` or `retry`.
    pub fn new(event: Option<&str>, data: impl Into<String>) -> Self {
        Self {
            event: event.map(str::to_owned),
            data: data.into(),
            id: None,
            retry: None,
        }
    }

    /// Whether this is the `[DONE]` sentinel some upstreams send after the last event.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }
}
