//! One dispatched SSE frame.

use std::borrow::Cow;

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

    /// The payload, with `"type": <event name>` added when the JSON object has no non-blank
    /// `type` of its own.
    ///
    /// The payload is returned unchanged (borrowed) when the frame has no event name, the
    /// payload is blank or `[DONE]`, it is not a JSON object, or it already has a
    /// non-blank `type` (the reference's `openAICompatPayloadWithEventType`). The common case,
    /// a payload that starts with `{"type":"…` (or ends with `"type":"…"}`, as serializers
    /// that sort keys write it), is recognised without parsing it.
    pub fn payload_with_type(&self) -> Cow<'_, str> {
        let data = self.data.as_str();
        let Some(event) = self.event.as_deref().filter(|e| !e.trim().is_empty()) else {
            return Cow::Borrowed(data);
        };
        if starts_with_type(data)
            || ends_with_type(data)
            || data.trim().is_empty()
            || self.is_done()
        {
            return Cow::Borrowed(data);
        }
        inject_type(data, event).map_or(Cow::Borrowed(data), Cow::Owned)
    }
}

/// Cheap check for the shape every serializer we know emits: `{"type":"x…` as the first key
/// of the top-level object, with a value that does not start with a blank or end at once.
pub(crate) fn starts_with_type(data: &str) -> bool {
    const PREFIX: &str = "{\"type\":\"";
    data.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.as_bytes()
            .first()
            .is_some_and(|&b| b != b'"' && b != b'\\' && !b.is_ascii_whitespace())
    })
}

/// Cheap check for a payload whose last top-level key is a non-blank, escape-free string
/// `type`: `…,"type":"x"}` (JSON whitespace allowed), as key-sorting serializers write it.
///
/// In valid JSON, a string just before the final `}` is the value of the top-level object's
/// last member, and the quote before an escape-free string is its opening quote. Such a
/// payload is left unchanged by [`Frame::payload_with_type`] either way: when it is valid its
/// `type` is non-blank, and when it is not (or repeats `type`), the probe fails.
pub(crate) fn ends_with_type(data: &str) -> bool {
    const WS: [char; 4] = [' ', '\t', '\n', '\r'];
    let find = || {
        let rest = data.trim_end_matches(WS).strip_suffix('}')?;
        let rest = rest.trim_end_matches(WS).strip_suffix('"')?;
        let (rest, kind) = rest.split_at(rest.rfind(['"', '\\'])?);
        let kind = kind.strip_prefix('"')?;
        let rest = rest.trim_end_matches(WS).strip_suffix(':')?;
        let rest = rest.trim_end_matches(WS).strip_suffix("\"type\"")?;
        (rest.trim_end_matches(WS).ends_with([',', '{']) && !kind.trim().is_empty()).then_some(())
    };
    find().is_some()
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
