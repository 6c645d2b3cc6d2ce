//! Frames to Responses stream events.

use std::borrow::Cow;

use ferry_apicompat::responses;

use crate::{Frame, ParseError, frame::starts_with_type};

/// Decodes one upstream frame into a Responses stream event.
///
/// Returns `None` for a frame that carries no event: the `[DONE]` sentinel (check
/// [`Frame::is_done`] first if its arrival matters) and a blank payload. Otherwise the
/// payload, with the SSE event name injected as `type` when it has none
/// ([`Frame::payload_with_type`]), is parsed with
/// [`responses::StreamEvent::from_json`]: an unknown kind is
/// [`responses::StreamEvent::Unknown`], a known kind that does not parse is
/// [`ParseError::InvalidEvent`] (see [`ParseError::is_terminal_event`] to decide between
/// skipping it and failing the stream).
///
/// The payload is parsed once; a payload that starts with `{"type":"…` (every OpenAI event)
/// is not inspected before that.
pub fn decode_event(frame: &Frame) -> Option<Result<responses::StreamEvent, ParseError>> {
    if frame.data.trim().is_empty() || frame.is_done() {
        return None;
    }
    let payload = if starts_with_type(&frame.data) {
        Cow::Borrowed(frame.data.as_str())
    } else {
        frame.payload_with_type()
    };
    Some(
        responses::StreamEvent::from_json(&payload).map_err(|source| ParseError::InvalidEvent {
            event: frame.event.clone(),
            kind: event_kind(&payload),
            source,
        }),
    )
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
                .is_some_and(responses::StreamEvent::is_terminal_kind),
            _ => false,
        }
    }
}
