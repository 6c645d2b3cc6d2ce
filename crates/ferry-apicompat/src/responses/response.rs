//! The response object: its status, why it is incomplete, and upstream errors.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::de::null_default;
use super::{OutputItem, Usage};

/// A Responses API response object: the body of a non-streaming response and the
/// `response` of lifecycle and terminal stream events.
///
/// Every field is optional on the wire (an in-progress response has little), and fields this
/// crate does not model are kept in [`Response::extra`] so that the object round-trips.
///
/// Deserialised by hand rather than with `#[serde(flatten)]`, which would buffer the whole
/// object before reading it: this object arrives three times in every stream (created,
/// in progress, completed). A `null` `id`, `model` or `output` reads as empty, as absent.
/// The other fields are kept as raw JSON text, not as [`Value`](serde_json::Value) trees: the upstream echoes
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
