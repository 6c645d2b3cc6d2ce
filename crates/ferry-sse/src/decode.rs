//! Frames to Responses stream events.

use std::borrow::Cow;

use ferry_apicompat::responses::{DeltaEvent, StreamEvent};

use crate::{Frame, ParseError, frame::starts_with_type};

/// Decodes one upstream frame into a Responses stream event.
///
/// Returns `None` for a frame that carries no event: the `[DONE]` sentinel (check
/// [`Frame::is_done`] first if its arrival matters) and a blank payload. Otherwise the
/// payload, with the SSE event name injected as `type` when it has none
/// ([`Frame::payload_with_type`]), is parsed with
/// [`StreamEvent::from_json`]: an unknown kind is
/// [`StreamEvent::Unknown`], a known kind that does not parse is
/// [`ParseError::InvalidEvent`] (see [`ParseError::is_terminal_event`] to decide between
/// skipping it and failing the stream).
///
/// A payload that starts with `{"type":"…` (every OpenAI event) is not inspected before it
/// is parsed, and the delta kinds (nearly every event) are parsed in a single pass.
pub fn decode_event(frame: &Frame) -> Option<Result<StreamEvent, ParseError>> {
    // Only leading whitespace is scanned: a JSON object cannot be `[DONE]`.
    let start = frame.data.trim_start();
    if start.is_empty() || (!start.starts_with('{') && frame.is_done()) {
        return None;
    }
    let payload = if starts_with_type(&frame.data) {
        if let Some(event) = fast_delta(&frame.data) {
            return Some(Ok(event));
        }
        Cow::Borrowed(frame.data.as_str())
    } else {
        frame.payload_with_type()
    };
    Some(
        StreamEvent::from_json(&payload).map_err(|source| ParseError::InvalidEvent {
            event: frame.event.clone(),
            kind: event_kind(&payload),
            source,
        }),
    )
}

/// The delta kinds, nearly every event of a stream, parsed in one pass.
///
/// `StreamEvent::from_json` reads the `type` first, then parses the payload again with
/// field-path tracking for its error messages. For a delta whose `type` can be read off the
/// front of the payload, this parses the same [`DeltaEvent`] directly; on success the
/// result is the same event. On failure it returns `None` and the caller goes the full way,
/// which produces the error with its path.
fn fast_delta(data: &str) -> Option<StreamEvent> {
    let kind = data.strip_prefix("{\"type\":\"")?;
    let kind = &kind[..kind.find('"')?];
    let variant: fn(DeltaEvent) -> StreamEvent = match kind {
        "response.output_text.delta" => StreamEvent::OutputTextDelta,
        "response.function_call_arguments.delta" => StreamEvent::FunctionCallArgumentsDelta,
        "response.reasoning_summary_text.delta" => StreamEvent::ReasoningSummaryTextDelta,
        "response.reasoning_text.delta" => StreamEvent::ReasoningTextDelta,
        "response.custom_tool_call_input.delta" => StreamEvent::CustomToolCallInputDelta,
        "response.refusal.delta" => StreamEvent::RefusalDelta,
        _ => return None,
    };
    serde_json::from_str(data).ok().map(variant)
}

/// The `type` of a payload that failed to parse as an event, if it has a string one.
fn event_kind(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    serde_json::from_str::<Kind<'_>>(payload)
        .ok()
        .map(|k| k.kind.into_owned())
}

impl ParseError {
    /// Whether this error is a terminal upstream event (`response.completed`, `.failed`,
    /// `.incomplete`, `.done` or `error`) whose payload did not parse, judged by its `type`
    /// or, failing that, its SSE event name. Such a stream must end in an error; a
    /// non-terminal event that does not parse may be skipped.
    pub fn is_terminal_event(&self) -> bool {
        match self {
            Self::InvalidEvent { event, kind, .. } => kind
                .as_deref()
                .or(event.as_deref())
                .is_some_and(StreamEvent::is_terminal_kind),
            _ => false,
        }
    }
}
