//! The response object, its output items and usage.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A Responses API response object: the body of a non-streaming response and the
/// `response` of lifecycle and terminal stream events.
///
/// Every field is optional on the wire (an in-progress response has little), and fields this
/// crate does not model are kept in [`Response::extra`] so that the object round-trips.
///
/// Deserialised by hand rather than with `#[serde(flatten)]`, which would buffer the whole
/// object before reading it: this object arrives three times in every stream (created,
/// in progress, completed). A `null` `id`, `model` or `output` reads as empty, as absent.
/// The other fields are kept as raw JSON text, not as [`Value`] trees: the upstream echoes
/// the request's `instructions` and `tools` in every copy (tens of KiB for a Claude Code
/// request), and nothing here reads them.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Response {
    /// Response id (`resp_…`).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Lifecycle status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Output items, in order.
    pub output: Vec<OutputItem>,
    /// Token usage (terminal responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Why the response is incomplete (status `incomplete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_details: Option<IncompleteDetails>,
    /// Why the response failed (status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Every other field, kept as received (its JSON text).
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, Box<RawValue>>,
}

/// Equal when every field is, the [`Response::extra`] values compared as JSON text.
impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.model == other.model
            && self.status == other.status
            && self.output == other.output
            && self.usage == other.usage
            && self.incomplete_details == other.incomplete_details
            && self.error == other.error
            && self.extra.len() == other.extra.len()
            && self
                .extra
                .iter()
                .zip(&other.extra)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

/// A key of a [`Response`] object.
enum ResponseField {
    Id,
    Model,
    Status,
    Output,
    Usage,
    IncompleteDetails,
    Error,
    Other(String),
}

impl<'de> Deserialize<'de> for ResponseField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl de::Visitor<'_> for FieldVisitor {
            type Value = ResponseField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResponseField, E> {
                Ok(match v {
                    "id" => ResponseField::Id,
                    "model" => ResponseField::Model,
                    "status" => ResponseField::Status,
                    "output" => ResponseField::Output,
                    "usage" => ResponseField::Usage,
                    "incomplete_details" => ResponseField::IncompleteDetails,
                    "error" => ResponseField::Error,
                    other => ResponseField::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResponseVisitor;
        impl<'de> de::Visitor<'de> for ResponseVisitor {
            type Value = Response;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a response object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Response, A::Error> {
                let mut r = Response::default();
                let mut seen = [false; 7];
                let mut once = |i: usize, name: &'static str| {
                    if std::mem::replace(&mut seen[i], true) {
                        Err(de::Error::duplicate_field(name))
                    } else {
                        Ok(())
                    }
                };
                while let Some(key) = map.next_key::<ResponseField>()? {
                    match key {
                        ResponseField::Id => {
                            once(0, "id")?;
                            r.id = map.next_value::<Option<String>>()?.unwrap_or_default();
                        }
                        ResponseField::Model => {
                            once(1, "model")?;
                            r.model = map.next_value::<Option<String>>()?.unwrap_or_default();
                        }
                        ResponseField::Status => {
                            once(2, "status")?;
                            r.status = map.next_value()?;
                        }
                        ResponseField::Output => {
                            once(3, "output")?;
                            r.output = map
                                .next_value::<Option<Vec<OutputItem>>>()?
                                .unwrap_or_default();
                        }
                        ResponseField::Usage => {
                            once(4, "usage")?;
                            r.usage = map.next_value()?;
                        }
                        ResponseField::IncompleteDetails => {
                            once(5, "incomplete_details")?;
                            r.incomplete_details = map.next_value()?;
                        }
                        ResponseField::Error => {
                            once(6, "error")?;
                            r.error = map.next_value()?;
                        }
                        ResponseField::Other(name) => {
                            let value: Box<RawValue> = map.next_value()?;
                            r.extra.insert(name, value);
                        }
                    }
                }
                Ok(r)
            }
        }
        deserializer.deserialize_map(ResponseVisitor)
    }
}

/// Status of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseStatus {
    /// Finished normally.
    Completed,
    /// Ended early; see [`Response::incomplete_details`].
    Incomplete,
    /// Failed; see [`Response::error`].
    Failed,
    /// Still running.
    InProgress,
    /// Waiting to run.
    Queued,
    /// Cancelled.
    Cancelled,
    /// A status this crate does not know.
    #[serde(untagged)]
    Other(String),
}

/// Why a response is incomplete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// The reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<IncompleteReason>,
}

/// The reason in [`IncompleteDetails`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IncompleteReason {
    /// The output token limit was reached.
    MaxOutputTokens,
    /// A content filter stopped the output.
    ContentFilter,
    /// A reason this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl IncompleteReason {
    /// The reason as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MaxOutputTokens => "max_output_tokens",
            Self::ContentFilter => "content_filter",
            Self::Other(s) => s,
        }
    }
}

/// An upstream error: the `error` of a failed response, or the body of an error response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Error code (`server_error`, `rate_limit_exceeded`, `context_length_exceeded`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable message (may contain anything the upstream chose to say).
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    /// Error type, when given (`invalid_request_error`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The request parameter at fault, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// One item of [`Response::output`].
///
/// Items of a type this crate does not model are kept as [`OutputItem::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputItem {
    /// An assistant message (text and refusals).
    Message(MessageItem),
    /// Reasoning: a summary and the encrypted reasoning.
    Reasoning(ReasoningItem),
    /// A call of a function tool.
    FunctionCall(FunctionCallItem),
    /// A call of a custom (free-text) tool.
    CustomToolCall(CustomToolCallItem),
    /// A hosted web search.
    WebSearchCall(WebSearchCallItem),
    /// An item type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

impl OutputItem {
    /// The item's `type` tag as it appears on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::Reasoning(_) => "reasoning",
            Self::FunctionCall(_) => "function_call",
            Self::CustomToolCall(_) => "custom_tool_call",
            Self::WebSearchCall(_) => "web_search_call",
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The item's `id`, when it has one.
    pub fn id(&self) -> Option<&str> {
        let id = match self {
            Self::Message(m) => m.id.as_str(),
            Self::Reasoning(r) => r.id.as_str(),
            Self::FunctionCall(f) => f.id.as_str(),
            Self::CustomToolCall(c) => c.id.as_str(),
            Self::WebSearchCall(w) => w.id.as_str(),
            Self::Unknown(v) => v.get("id").and_then(Value::as_str).unwrap_or(""),
        };
        (!id.is_empty()).then_some(id)
    }
}

/// Status of an output item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Being generated.
    InProgress,
    /// Done.
    Completed,
    /// Cut short.
    Incomplete,
    /// A web search in progress.
    Searching,
    /// Failed.
    Failed,
    /// A status this crate does not know.
    #[serde(untagged)]
    Other(String),
}

/// An assistant message item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    /// Item id (`msg_…`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `assistant` in output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Content parts, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub content: Vec<OutputContent>,
}

/// A content part of a [`MessageItem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputContent {
    /// Text.
    OutputText {
        /// The text.
        #[serde(default, deserialize_with = "null_default")]
        text: String,
        /// Annotations (citations), carried opaquely.
        #[serde(default, deserialize_with = "null_default")]
        annotations: Vec<Value>,
    },
    /// The model declined to answer.
    Refusal {
        /// The refusal text.
        #[serde(default, deserialize_with = "null_default")]
        refusal: String,
    },
    /// A part type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// A reasoning item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningItem {
    /// Item id (`rs_…`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Reasoning summary parts.
    #[serde(default, deserialize_with = "null_default")]
    pub summary: Vec<SummaryPart>,
    /// Raw reasoning text parts (open-weight models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ReasoningContent>>,
    /// The encrypted reasoning, requested with `include: ["reasoning.encrypted_content"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// A part of a reasoning summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SummaryPart {
    /// Summary text.
    SummaryText {
        /// The text.
        #[serde(default, deserialize_with = "null_default")]
        text: String,
    },
    /// A part type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// A part of a reasoning item's raw `content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasoningContent {
    /// Raw reasoning text.
    ReasoningText {
        /// The text.
        #[serde(default, deserialize_with = "null_default")]
        text: String,
    },
    /// A part type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// A function tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// Item id (`fc_…`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Call id, echoed by the `function_call_output`.
    #[serde(default, deserialize_with = "null_default")]
    pub call_id: String,
    /// Function name (as sent upstream, possibly shortened).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Arguments as JSON text (a JSON object or array on the wire is kept as its text).
    #[serde(default, deserialize_with = "json_text")]
    pub arguments: String,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// A custom (free-text input) tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCallItem {
    /// Item id (`ctc_…`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Call id.
    #[serde(default, deserialize_with = "null_default")]
    pub call_id: String,
    /// Tool name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// The free-text input.
    #[serde(default, deserialize_with = "null_default")]
    pub input: String,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
}

/// A hosted web search call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebSearchCallItem {
    /// Item id (`ws_…`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// What the search did (`{"type":"search","query":…}`), carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Value>,
}

impl WebSearchCallItem {
    /// The search query, when the action is a search with one.
    pub fn query(&self) -> Option<&str> {
        self.action.as_ref()?.get("query")?.as_str()
    }

    /// Whether the item is a search: an action of type `search`, or no action type at all.
    /// `open_page` and `find_in_page` are browsing steps of a search, not searches.
    pub fn is_search(&self) -> bool {
        match self.action.as_ref().and_then(|a| a.get("type")) {
            None => true,
            Some(t) => t.as_str() == Some("search"),
        }
    }

    /// The search query: `query`, else the `queries` of the action joined with ` | `
    /// (newer models send several at once), else empty.
    pub fn search_query(&self) -> String {
        if let Some(q) = self.query().filter(|q| !q.is_empty()) {
            return q.to_owned();
        }
        let queries = self
            .action
            .as_ref()
            .and_then(|a| a.get("queries"))
            .and_then(Value::as_array);
        queries
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|q| !q.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Token usage of a response.
///
/// Lenient on input: counters may be missing, `null` or negative (read as 0), and cache
/// counters may come in several spellings that relays use; [`Usage::cache_read_tokens`] and
/// [`Usage::cache_creation_tokens`] resolve them. Unknown fields are kept in
/// [`Usage::extra`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, cached ones included.
    #[serde(default, deserialize_with = "count")]
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    #[serde(default, deserialize_with = "count")]
    pub output_tokens: u64,
    /// Input plus output.
    #[serde(default, deserialize_with = "count")]
    pub total_tokens: u64,
    /// Breakdown of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Breakdown of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Cache-write tokens, as some relays report them (not standard OpenAI).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_input_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Breakdown of [`Usage::input_tokens`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens read from the prompt cache. `Some` whenever the key is present (`null` → 0).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_tokens: Option<u64>,
    /// Tokens written to the cache, in one relay spelling.
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write_tokens: Option<u64>,
    /// Tokens written to the cache, in another relay spelling.
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Breakdown of [`Usage::output_tokens`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens (already inside `output_tokens`).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    /// Input tokens; falls back to a chat-style `prompt_tokens` when `input_tokens` is 0.
    pub fn resolved_input_tokens(&self) -> u64 {
        if self.input_tokens > 0 {
            self.input_tokens
        } else {
            self.extra_count("prompt_tokens").unwrap_or(0)
        }
    }

    /// Output tokens; falls back to a chat-style `completion_tokens` when `output_tokens`
    /// is 0.
    pub fn resolved_output_tokens(&self) -> u64 {
        if self.output_tokens > 0 {
            self.output_tokens
        } else {
            self.extra_count("completion_tokens").unwrap_or(0)
        }
    }

    /// Tokens read from the prompt cache.
    ///
    /// `input_tokens_details.cached_tokens` wins whenever it is present (even 0 or `null`);
    /// then `prompt_tokens_details.cached_tokens`; then the first positive of the top-level
    /// `cache_read_input_tokens`, `cache_read_tokens`, `cached_tokens`; else 0.
    pub fn cache_read_tokens(&self) -> u64 {
        if let Some(n) = self
            .input_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
        {
            return n;
        }
        if let Some(n) = self.prompt_details_count("cached_tokens") {
            return n;
        }
        [
            "cache_read_input_tokens",
            "cache_read_tokens",
            "cached_tokens",
        ]
        .iter()
        .filter_map(|k| self.extra_count(k))
        .find(|&n| n > 0)
        .unwrap_or(0)
    }

    /// Tokens written to the prompt cache.
    ///
    /// The first present of `input_tokens_details.cache_write_tokens`,
    /// `prompt_tokens_details.cache_write_tokens`, `input_tokens_details.cache_creation_tokens`,
    /// `prompt_tokens_details.cache_creation_tokens`; else the first positive of the
    /// top-level `cache_write_tokens`, `cache_creation_input_tokens`,
    /// `cache_write_input_tokens`, `cache_creation_tokens`; else 0.
    pub fn cache_creation_tokens(&self) -> u64 {
        let details = self.input_tokens_details.as_ref();
        let nested = details
            .and_then(|d| d.cache_write_tokens)
            .or_else(|| self.prompt_details_count("cache_write_tokens"))
            .or_else(|| details.and_then(|d| d.cache_creation_tokens))
            .or_else(|| self.prompt_details_count("cache_creation_tokens"));
        if let Some(n) = nested {
            return n;
        }
        [
            self.extra_count("cache_write_tokens"),
            self.cache_creation_input_tokens,
            self.extra_count("cache_write_input_tokens"),
            self.extra_count("cache_creation_tokens"),
        ]
        .into_iter()
        .flatten()
        .find(|&n| n > 0)
        .unwrap_or(0)
    }

    fn extra_count(&self, key: &str) -> Option<u64> {
        self.extra.get(key).map(value_count)
    }

    fn prompt_details_count(&self, key: &str) -> Option<u64> {
        self.extra
            .get("prompt_tokens_details")?
            .as_object()?
            .get(key)
            .map(value_count)
    }
}

/// A JSON value read as a token count: numbers are truncated and clamped at 0, anything
/// else is 0.
fn value_count(v: &Value) -> u64 {
    // `as` saturates: negative and NaN floats become 0, fractions are truncated.
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .unwrap_or(0)
}

/// Deserializes a token count leniently (see [`value_count`]).
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(value_count(&Value::deserialize(d)?))
}

/// Deserializes a token count whose presence matters: present (even `null`) → `Some`.
pub(super) fn present_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Some(value_count(&Value::deserialize(d)?)))
}

/// Deserializes `null` as the type's default.
pub(super) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes a string, or any other JSON value as its compact text (`null` → "").
pub(super) fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => serde_json::to_string(&other).map_err(de::Error::custom),
    }
}

impl fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
            Self::InProgress => "in_progress",
            Self::Queued => "queued",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        })
    }
}
