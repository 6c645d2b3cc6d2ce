//! The `data` of one SSE frame to a Responses stream event.
//!
//! The SSE layer gives an event name and a payload; this decodes them, so that any SSE
//! parser can feed the stream converter.

use std::borrow::Cow;

use super::StreamEvent;
use super::stream::{back_kind, front_kind};
use crate::ConvertError;

/// Decodes one upstream SSE frame, given by its `event:` name and its joined `data:`
/// lines, into a Responses stream event.
///
/// Returns `None` for a frame that carries no event: the `[DONE]` sentinel (check
/// [`is_done`] first if its arrival matters) and a blank payload. Otherwise the payload,
/// with the event name injected as `type` when it has none ([`payload_with_type`]), is
/// parsed with [`StreamEvent::from_json`]: an unknown kind is [`StreamEvent::Unknown`], a
/// known kind that does not parse is a [`DecodeError`] (see
/// [`DecodeError::is_terminal_event`] to decide between skipping it and failing the
/// stream).
pub fn decode(event: Option<&str>, data: &str) -> Option<Result<StreamEvent, DecodeError>> {
    // Only leading whitespace is scanned: a JSON object cannot be `[DONE]`.
    let start = data.trim_start();
    if start.is_empty() || (!start.starts_with('{') && is_done(data)) {
        return None;
    }
    let payload = payload_with_type(event, data);
    Some(
        StreamEvent::from_json(&payload).map_err(|source| DecodeError {
            event: event.map(str::to_owned),
            kind: event_kind(&payload),
            source,
        }),
    )
}

/// Whether a payload is the `[DONE]` sentinel some upstreams send after the last event.
pub fn is_done(data: &str) -> bool {
    data.trim() == "[DONE]"
}

/// A frame's payload that is not a Responses stream event of a known shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid upstream event{}: {source}", event_suffix(.kind.as_deref().or(.event.as_deref())))]
#[non_exhaustive]
pub struct DecodeError {
    /// The frame's `event:` name, if it had one.
    pub event: Option<String>,
    /// The payload's `type`, if it has a string one.
    pub kind: Option<String>,
    /// Why the payload did not parse.
    pub source: ConvertError,
}

fn event_suffix(event: Option<&str>) -> String {
    event.map(|e| format!(" `{e}`")).unwrap_or_default()
}

impl DecodeError {
    /// Whether the event that failed is terminal (`response.completed`, `.failed`,
    /// `.incomplete`, `.done` or `error`), judged by its `type` or, failing that, its SSE
    /// event name. Such a stream must end in an error; a non-terminal event that does not
    /// parse may be skipped.
    pub fn is_terminal_event(&self) -> bool {
        self.kind
            .as_deref()
            .or(self.event.as_deref())
            .is_some_and(StreamEvent::is_terminal_kind)
    }
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

/// The payload, with `"type": <event name>` added when the JSON object has no non-blank
/// `type` of its own.
///
/// The payload is returned unchanged (borrowed) when there is no event name, the payload
/// is blank or `[DONE]`, it is not a JSON object, or it already has a non-blank `type` (the
/// reference's `openAICompatPayloadWithEventType`). The common case, a `type` that is the
/// first or the last key (as serializers that sort keys write it), is recognised without
/// parsing the payload, with the same probe [`StreamEvent::from_json`] uses.
pub fn payload_with_type<'a>(event: Option<&str>, data: &'a str) -> Cow<'a, str> {
    let Some(event) = event.filter(|e| !e.trim().is_empty()) else {
        return Cow::Borrowed(data);
    };
    let has_type = front_kind(data)
        .or_else(|| back_kind(data))
        .is_some_and(|kind| !kind.trim().is_empty());
    if has_type || data.trim().is_empty() || is_done(data) {
        return Cow::Borrowed(data);
    }
    inject_type(data, event).map_or(Cow::Borrowed(data), Cow::Owned)
}

/// Probe that validates the whole payload as a JSON object and borrows its raw `type`.
#[derive(serde::Deserialize)]
struct TypeProbe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Present<'a>,
}

/// A key that may be missing, unlike `Option`, which also reads `null` as `None`.
#[derive(Default)]
enum Present<'a> {
    #[default]
    Missing,
    Value(&'a serde_json::value::RawValue),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Present<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a serde_json::value::RawValue>::deserialize(d).map(Present::Value)
    }
}

/// Whether a raw JSON value counts as a blank `type`: `null` or a blank string (any other
/// value has a non-blank text form in the reference and is kept).
fn is_blank_type(raw: &serde_json::value::RawValue) -> bool {
    match raw.get() {
        "null" => true,
        text => serde_json::from_str::<Cow<'_, str>>(text).is_ok_and(|s| s.trim().is_empty()),
    }
}

/// The payload with `type` set to `event`, or `None` when it must stay unchanged.
fn inject_type(data: &str, event: &str) -> Option<String> {
    if !data.trim_start().starts_with('{') {
        return None;
    }
    let probe: TypeProbe<'_> = serde_json::from_str(data).ok()?;
    match probe.kind {
        Present::Value(raw) if !is_blank_type(raw) => None,
        // A blank `type` key exists: replace its value (inserting a second key would make a
        // duplicate that strict parsers reject).
        Present::Value(_) => {
            let mut map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(data).ok()?;
            map.insert(
                "type".to_owned(),
                serde_json::Value::String(event.to_owned()),
            );
            serde_json::to_string(&map).ok()
        }
        // No `type`: insert it as the first key, leaving the rest of the text untouched.
        Present::Missing => {
            let open = data.find('{')?; // the first non-blank character
            let body = &data[open + 1..];
            let escaped = serde_json::to_string(event).ok()?;
            let mut out = String::with_capacity(data.len() + escaped.len() + 9);
            out.push_str(&data[..=open]);
            out.push_str("\"type\":");
            out.push_str(&escaped);
            if !body.trim_start().starts_with('}') {
                out.push(',');
            }
            out.push_str(body);
            Some(out)
        }
    }
}
