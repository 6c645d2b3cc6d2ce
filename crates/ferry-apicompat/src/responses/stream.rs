//! Server-sent events of a streaming Responses API response.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::de::{json_text, null_default};
use super::{ErrorBody, OutputItem, Response, Usage};
use crate::ConvertError;

/// Declares [`StreamEvent`] from the one table of event wire names: each row gives the
/// name, the variant and its payload type, and `terminal` for a kind that ends the
/// response. The serde names, [`StreamEvent::parse_kind`], [`StreamEvent::kind`] and
/// [`StreamEvent::is_terminal_kind`] all come from it.
macro_rules! stream_events {
    (
        $(#[$enum_meta:meta])*
        pub enum StreamEvent {
            $(
                $(#[doc = $doc:literal])*
                $name:literal => $variant:ident($payload:ty) $($terminal:ident)?;
            )*
        }
    ) => {
        $(#[$enum_meta])*
        pub enum StreamEvent {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                $variant($payload),
            )*
        /// An event kind this crate does not model, kept as received.
        #[serde(untagged)]
        Unknown {
            /// The event's `type`.
            #[serde(rename = "type")]
            kind: String,
            /// The rest of the event.
            #[serde(flatten)]
            data: Map<String, Value>,
        },
        }

        /// The event kinds that end a response.
        const TERMINAL_KINDS: &[&str] = &[$($(stream_events!(@terminal $terminal $name),)?)*];

        impl StreamEvent {
            /// Parses `data` as an event of `kind` (its `type`, already read).
            fn parse_kind(kind: &str, data: &str, parse: Parse) -> Result<Self, ConvertError> {
                let event = match kind {
                    $($name => Self::$variant(parse.typed(kind, data)?),)*
                    _ => Self::unknown(kind, data)?,
                };
                Ok(event)
            }

            /// The event's `type` as it appears on the wire.
            pub fn kind(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $name,)*
                    Self::Unknown { kind, .. } => kind,
                }
            }
        }
    };
    (@terminal terminal $name:literal) => { $name };
}

stream_events! {
    /// One event of a Responses stream (the JSON `data:` of an SSE frame).
    ///
    /// Parse it with [`StreamEvent::from_json`], in two steps: the envelope's `type` first, then
    /// the typed payload of a kind this crate models. A kind it does not model becomes
    /// [`StreamEvent::Unknown`] (never an error); a known kind whose payload does not parse is
    /// an error, which the caller skips for a delta and treats as a failure for a terminal
    /// event ([`is_terminal_kind`](StreamEvent::is_terminal_kind) tells them apart).
    ///
    /// Every payload field is optional on the wire: a missing `output_index` is `None`, not 0.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(tag = "type")]
    #[non_exhaustive]
    pub enum StreamEvent {
        /// `response.created`: the response exists.
        "response.created" => Created(ResponseEvent);
        /// `response.in_progress`.
        "response.in_progress" => InProgress(ResponseEvent);
        /// `response.queued`.
        "response.queued" => Queued(ResponseEvent);
        /// `response.completed` (terminal).
        "response.completed" => Completed(TerminalEvent) terminal;
        /// `response.incomplete` (terminal).
        "response.incomplete" => Incomplete(TerminalEvent) terminal;
        /// `response.failed` (terminal).
        "response.failed" => Failed(TerminalEvent) terminal;
        /// `response.done`, an alias of `response.completed` used by websocket relays (terminal).
        "response.done" => Done(TerminalEvent) terminal;
        /// `response.output_item.added`: an output item begins.
        "response.output_item.added" => OutputItemAdded(ItemEvent);
        /// `response.output_item.done`: an output item is complete (full payload).
        "response.output_item.done" => OutputItemDone(ItemEvent);
        /// `response.content_part.added`.
        "response.content_part.added" => ContentPartAdded(PartEvent);
        /// `response.content_part.done`.
        "response.content_part.done" => ContentPartDone(PartEvent);
        /// `response.output_text.delta`.
        "response.output_text.delta" => OutputTextDelta(DeltaEvent);
        /// `response.output_text.done` (full text of the part).
        "response.output_text.done" => OutputTextDone(TextDoneEvent);
        /// `response.output_text.annotation.added`.
        "response.output_text.annotation.added" => OutputTextAnnotationAdded(AnnotationEvent);
        /// `response.refusal.delta`.
        "response.refusal.delta" => RefusalDelta(DeltaEvent);
        /// `response.refusal.done` (full refusal text).
        "response.refusal.done" => RefusalDone(RefusalDoneEvent);
        /// `response.function_call_arguments.delta`.
        "response.function_call_arguments.delta" => FunctionCallArgumentsDelta(DeltaEvent);
        /// `response.function_call_arguments.done` (full arguments).
        "response.function_call_arguments.done" => FunctionCallArgumentsDone(ArgumentsDoneEvent);
        /// `response.custom_tool_call_input.delta`.
        "response.custom_tool_call_input.delta" => CustomToolCallInputDelta(DeltaEvent);
        /// `response.custom_tool_call_input.done` (full input).
        "response.custom_tool_call_input.done" => CustomToolCallInputDone(InputDoneEvent);
        /// `response.reasoning_summary_part.added`.
        "response.reasoning_summary_part.added" => ReasoningSummaryPartAdded(PartEvent);
        /// `response.reasoning_summary_part.done`.
        "response.reasoning_summary_part.done" => ReasoningSummaryPartDone(PartEvent);
        /// `response.reasoning_summary_text.delta`.
        "response.reasoning_summary_text.delta" => ReasoningSummaryTextDelta(DeltaEvent);
        /// `response.reasoning_summary_text.done` (full text of the summary part).
        "response.reasoning_summary_text.done" => ReasoningSummaryTextDone(TextDoneEvent);
        /// `response.reasoning_text.delta` (raw reasoning of open-weight models).
        "response.reasoning_text.delta" => ReasoningTextDelta(DeltaEvent);
        /// `response.reasoning_text.done`.
        "response.reasoning_text.done" => ReasoningTextDone(TextDoneEvent);
        /// `response.web_search_call.in_progress`.
        "response.web_search_call.in_progress" => WebSearchCallInProgress(ProgressEvent);
        /// `response.web_search_call.searching`.
        "response.web_search_call.searching" => WebSearchCallSearching(ProgressEvent);
        /// `response.web_search_call.completed`.
        "response.web_search_call.completed" => WebSearchCallCompleted(ProgressEvent);
        /// A top-level `error` event: the stream failed.
        "error" => Error(ErrorEvent) terminal;
    }
}

impl StreamEvent {
    /// Parses the JSON `data` of one SSE frame.
    ///
    /// A frame without a `type` (some relays put it only in the SSE `event:` line) must have
    /// it injected by the caller first.
    ///
    /// # Errors
    ///
    /// [`ConvertError::InvalidShape`] when `data` is not a JSON object with a string `type`,
    /// or when the payload of a kind this crate models does not parse (the path starts with
    /// the kind). An unknown kind is never an error.
    pub fn from_json(data: &str) -> Result<Self, ConvertError> {
        // Fast path: the `type` read off the front of the payload and the payload parsed in
        // one pass, without field-path tracking. Any failure goes the full way below, which
        // produces the error (with its path) exactly as before.
        if let Some(kind) = sniff_kind(data)
            && let Ok(event) = Self::parse_kind(kind, data, Parse::Fast)
        {
            return Ok(event);
        }

        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<Cow<'a, str>>,
        }

        let envelope: Envelope<'_> =
            serde_json::from_str(data).map_err(|e| ConvertError::InvalidShape {
                path: "event".to_owned(),
                message: e.to_string(),
            })?;
        let Some(kind) = envelope.kind else {
            return Err(ConvertError::InvalidShape {
                path: "event.type".to_owned(),
                message: "missing event type".to_owned(),
            });
        };
        let kind = kind.as_ref();
        if let Ok(event) = Self::parse_kind(kind, data, Parse::Fast) {
            return Ok(event);
        }
        Self::parse_kind(kind, data, Parse::WithPath)
    }

    /// A kind this crate does not model, kept as received.
    fn unknown(kind: &str, data: &str) -> Result<Self, ConvertError> {
        let mut data: Map<String, Value> =
            serde_json::from_str(data).map_err(|e| ConvertError::InvalidShape {
                path: "event".to_owned(),
                message: e.to_string(),
            })?;
        data.remove("type");
        Ok(Self::Unknown {
            kind: kind.to_owned(),
            data,
        })
    }

    /// Whether this event ends the response: `response.completed`, `.incomplete`,
    /// `.failed`, `.done`, or a top-level `error`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed(_)
                | Self::Incomplete(_)
                | Self::Failed(_)
                | Self::Done(_)
                | Self::Error(_)
        )
    }

    /// Whether an event `type` names a terminal event (see [`StreamEvent::is_terminal`]);
    /// useful when its payload failed to parse.
    pub fn is_terminal_kind(kind: &str) -> bool {
        TERMINAL_KINDS.contains(&kind)
    }

    /// The response carried by a lifecycle or terminal event.
    pub fn response(&self) -> Option<&Response> {
        match self {
            Self::Created(e) | Self::InProgress(e) | Self::Queued(e) => Some(&e.response),
            Self::Completed(e) | Self::Incomplete(e) | Self::Failed(e) | Self::Done(e) => {
                Some(&e.response)
            }
            _ => None,
        }
    }

    /// Takes the full response object out of the event, for the same kinds as
    /// [`StreamEvent::response`], without copying it.
    pub fn into_response(self) -> Option<Response> {
        match self {
            Self::Created(e) | Self::InProgress(e) | Self::Queued(e) => Some(e.response),
            Self::Completed(e) | Self::Incomplete(e) | Self::Failed(e) | Self::Done(e) => {
                Some(e.response)
            }
            _ => None,
        }
    }
}

/// How [`StreamEvent::parse_kind`] parses a known kind's payload.
#[derive(Debug, Clone, Copy)]
enum Parse {
    /// In one pass; the error (only used to take the slow way) has no field path.
    Fast,
    /// With field-path tracking, for the error message.
    WithPath,
}

impl Parse {
    /// Parses the payload of a known kind.
    fn typed<'a, T: Deserialize<'a>>(self, kind: &str, data: &'a str) -> Result<T, ConvertError> {
        match self {
            Self::Fast => serde_json::from_str(data).map_err(|e| ConvertError::InvalidShape {
                path: kind.to_owned(),
                message: e.to_string(),
            }),
            Self::WithPath => typed(kind, data),
        }
    }
}

/// The `type` of an event read without parsing it: a string `type` that is the first or the
/// last key of the top-level object (`{"type":"…", …}` or `{…, "type":"…"}`, JSON whitespace
/// allowed), when the payload cannot hold a second `type` key: no other `"type"` and no
/// `\u` escape (the only other way to spell one). `None` sends the caller the full way,
/// which reads the `type` with a parse of the whole payload. The payload is still parsed in
/// full after this, so a match on a malformed payload only costs that parse.
fn sniff_kind(data: &str) -> Option<&str> {
    let kind = front_kind(data).or_else(|| back_kind(data))?;
    one_type_key(data.as_bytes()).then_some(kind)
}

/// Whether `data` holds `"type"` once and no `\u` (a backslash followed by `u`, even when
/// the backslash is itself escaped: a false `false` only costs the full parse).
fn one_type_key(data: &[u8]) -> bool {
    let mut seen = false;
    for i in memchr::memchr2_iter(b'"', b'\\', data) {
        let rest = &data[i..];
        if rest.starts_with(b"\"type\"") {
            if seen {
                return false;
            }
            seen = true;
        } else if rest.starts_with(b"\\u") {
            return false;
        }
    }
    true
}

/// JSON whitespace.
const WS: [char; 4] = [' ', '\t', '\n', '\r'];

/// `{"type":"K"` at the front: `K`, which has no escape.
pub(super) fn front_kind(data: &str) -> Option<&str> {
    let rest = data.trim_start_matches(WS).strip_prefix('{')?;
    let rest = rest.trim_start_matches(WS).strip_prefix("\"type\"")?;
    let rest = rest.trim_start_matches(WS).strip_prefix(':')?;
    let rest = rest.trim_start_matches(WS).strip_prefix('"')?;
    let (kind, after) = rest.split_at(rest.find(['"', '\\'])?);
    after.starts_with('"').then_some(kind)
}

/// `,"type":"K"}` (or `{"type":"K"}`) at the end: `K`, which has no escape.
///
/// In valid JSON, a string just before the final `}` is the value of the top-level object's
/// last member, and the quote before an escape-free string value is its opening quote.
pub(super) fn back_kind(data: &str) -> Option<&str> {
    let rest = data.trim_end_matches(WS).strip_suffix('}')?;
    let rest = rest.trim_end_matches(WS).strip_suffix('"')?;
    let (rest, kind) = rest.split_at(rest.rfind(['"', '\\'])?);
    let kind = kind.strip_prefix('"')?;
    let rest = rest.trim_end_matches(WS).strip_suffix(':')?;
    let rest = rest.trim_end_matches(WS).strip_suffix("\"type\"")?;
    rest.trim_end_matches(WS)
        .ends_with([',', '{'])
        .then_some(kind)
}

/// Parses the payload of a known kind, naming the failing field.
fn typed<'a, T: Deserialize<'a>>(kind: &str, data: &'a str) -> Result<T, ConvertError> {
    let de = &mut serde_json::Deserializer::from_str(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConvertError::InvalidShape {
            path: if path == "." {
                kind.to_owned()
            } else {
                format!("{kind}.{path}")
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// Payload of `response.created`, `.in_progress` and `.queued`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    /// The response so far.
    #[serde(default, deserialize_with = "null_default")]
    pub response: Response,
}

/// Payload of a terminal event (`response.completed`, `.incomplete`, `.failed`, `.done`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TerminalEvent {
    /// The final response (default when the event carries none).
    #[serde(default, deserialize_with = "null_default")]
    pub response: Response,
    /// Usage at the top level of the event, as some relays send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// Payload of `response.output_item.added` and `.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemEvent {
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// The item (partial for `added`, complete for `done`).
    pub item: OutputItem,
}

/// Payload of `response.content_part.*` and `response.reasoning_summary_part.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartEvent {
    /// Id of the item the part belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Position of the part in a message's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// Position of the part in a reasoning summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_index: Option<u32>,
    /// The part, carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Value>,
}

/// Payload of every `*.delta` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeltaEvent {
    /// Id of the item the delta belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Position of the part in a message's (or reasoning item's) content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// Position of the part in a reasoning summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_index: Option<u32>,
    /// Call id of a tool call (sent by some relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The new text.
    #[serde(default, deserialize_with = "null_default")]
    pub delta: String,
}

/// Payload of `response.output_text.done`, `.reasoning_summary_text.done` and
/// `.reasoning_text.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextDoneEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Position of the part in a message's (or reasoning item's) content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// Position of the part in a reasoning summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_index: Option<u32>,
    /// The full text of the part.
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
}

/// Payload of `response.refusal.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefusalDoneEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Position of the part in the message's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// The full refusal text.
    #[serde(default, deserialize_with = "null_default")]
    pub refusal: String,
}

/// Payload of `response.function_call_arguments.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArgumentsDoneEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Call id (sent by some relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Function name (sent by some relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The full arguments JSON text.
    #[serde(default, deserialize_with = "json_text")]
    pub arguments: String,
}

/// Payload of `response.custom_tool_call_input.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputDoneEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Call id (sent by some relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The full free-text input.
    #[serde(default, deserialize_with = "null_default")]
    pub input: String,
}

/// Payload of `response.output_text.annotation.added`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotationEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
    /// Position of the part in the message's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// The annotation, carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<Value>,
}

/// Payload of `response.web_search_call.*` progress events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// Id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Position of the item in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_index: Option<u32>,
}

/// Payload of a top-level `error` event.
///
/// OpenAI sends `code`, `message` and `param` at the top level; some relays nest them in an
/// `error` object. [`ErrorEvent::body`] merges both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request parameter at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// A nested error object, as some relays send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl ErrorEvent {
    /// The error, top-level fields first, then the nested object's.
    pub fn body(&self) -> ErrorBody {
        let nested = self.error.clone().unwrap_or_default();
        ErrorBody {
            code: self.code.clone().or(nested.code),
            message: self
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or(nested.message),
            kind: nested.kind,
            param: self.param.clone().or(nested.param),
        }
    }
}
