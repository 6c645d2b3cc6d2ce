//! Output items of a response: messages, reasoning, tool calls and web searches.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::de::{json_text, null_default};

/// One item of [`Response::output`](super::Response::output).
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
