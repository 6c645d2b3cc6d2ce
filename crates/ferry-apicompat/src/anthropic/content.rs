//! Content blocks, shared by requests (message history) and responses.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A content block of a message.
///
/// The last variant, [`ContentBlock::Unknown`], keeps any block whose `type` this crate
/// does not model, unchanged. Because serde also falls back to it when a *known* type has a
/// malformed field, [`ContentBlock::unknown_known_type`] tells such blocks apart so callers
/// can reject them instead of dropping them silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlock {
    /// Plain text.
    Text(TextBlock),
    /// An image (base64 or URL source).
    Image(ImageBlock),
    /// A document (PDF, plain text, URL, or nested content).
    Document(DocumentBlock),
    /// A tool call made by the assistant.
    ToolUse(ToolUseBlock),
    /// The result of a tool call, sent by the user.
    ToolResult(ToolResultBlock),
    /// Extended thinking, with the signature that lets it be replayed.
    Thinking(ThinkingBlock),
    /// Thinking the client may not read, as opaque data.
    RedactedThinking(RedactedThinkingBlock),
    /// A call of a server-side tool (for example web search).
    ServerToolUse(ServerToolUseBlock),
    /// The result of a server-side web search.
    WebSearchToolResult(WebSearchToolResultBlock),
    /// A block of a type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// The `type` tags that [`ContentBlock`] models.
pub(crate) const KNOWN_BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
];

impl ContentBlock {
    /// The block's `type` tag as it appears on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Document(_) => "document",
            Self::ToolUse(_) => "tool_use",
            Self::ToolResult(_) => "tool_result",
            Self::Thinking(_) => "thinking",
            Self::RedactedThinking(_) => "redacted_thinking",
            Self::ServerToolUse(_) => "server_tool_use",
            Self::WebSearchToolResult(_) => "web_search_tool_result",
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// For an [`ContentBlock::Unknown`] block whose `type` is one this crate models (so the
    /// block is malformed rather than new), returns that type.
    pub fn unknown_known_type(&self) -> Option<&str> {
        match self {
            Self::Unknown(v) => {
                let t = v.get("type").and_then(Value::as_str)?;
                KNOWN_BLOCK_TYPES.contains(&t).then_some(t)
            }
            _ => None,
        }
    }

    /// A text block without cache control.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextBlock {
            text: text.into(),
            cache_control: None,
            citations: None,
        })
    }
}

/// Prompt-caching hint on a block, system part or tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Always `ephemeral` today.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional time to live (`5m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A text block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextBlock {
    /// The text.
    pub text: String,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Citations, carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Value>,
}

/// An image block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// Where the image comes from.
    pub source: ImageSource,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// The source of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImageSource {
    /// Inline base64 data.
    Base64 {
        /// MIME type, e.g. `image/png`.
        #[serde(default)]
        media_type: String,
        /// Base64 data (not decoded by this crate).
        data: String,
    },
    /// An image on the web.
    Url {
        /// Absolute http(s) URL.
        url: String,
    },
    /// A source type this crate does not model.
    #[serde(untagged)]
    Unknown(Value),
}

/// A document block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// Where the document comes from.
    pub source: DocumentSource,
    /// Optional title (used as the file name upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Optional context about the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Citations settings, carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<Value>,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// The source of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DocumentSource {
    /// Inline base64 data (PDF and other binary types).
    Base64 {
        /// MIME type, e.g. `application/pdf`.
        #[serde(default)]
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// Plain text.
    Text {
        /// MIME type, normally `text/plain`.
        #[serde(default)]
        media_type: String,
        /// The text.
        data: String,
    },
    /// A document on the web.
    Url {
        /// Absolute http(s) URL.
        url: String,
    },
    /// Nested content blocks (text and images).
    Content {
        /// The content: a string or blocks.
        content: Value,
    },
    /// A source type this crate does not model.
    #[serde(untagged)]
    Unknown(Value),
}

/// A tool call made by the assistant.
///
/// It serializes `input` in the key order it was received in (from a client request, or
/// from the model's arguments through [`ToolUseBlock::set_input_json`]) for as long as that
/// text still means `input`; a changed `input` serializes as [`Value`] does, keys sorted.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "ToolUseWire")]
pub struct ToolUseBlock {
    /// Call id, echoed by the matching `tool_result`.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Tool input, a JSON object.
    #[serde(default)]
    pub input: Value,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `input` as compact JSON with the client's key order, when the block was parsed from a
    /// request. [`Value`] sorts object keys, so re-serialising `input` would change the bytes
    /// of arguments the model produced (and break the upstream's cached prefix).
    #[serde(skip)]
    pub input_json: Option<String>,
}

impl PartialEq for ToolUseBlock {
    /// Compares the call, not how its input was spelt.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.input == other.input
            && self.cache_control == other.cache_control
    }
}

impl ToolUseBlock {
    /// The input as the upstream's `arguments` string: the client's text (key order kept)
    /// when known, else `input` serialised; `{}` for a missing input.
    pub fn arguments(&self) -> String {
        if let Some(text) = &self.input_json
            && text != "null"
            && self.ordered_input().is_some()
        {
            return text.clone();
        }
        match &self.input {
            Value::Null => "{}".to_owned(),
            input => serde_json::to_string(input).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
}

impl ToolUseBlock {
    /// Sets `input` from JSON text (the model's arguments) and remembers the text, so the
    /// block serializes with the model's key order. Fails, changing nothing, when the text
    /// is not JSON.
    pub fn set_input_json(&mut self, json: &str) -> Result<(), serde_json::Error> {
        let ordered: OrderedJson = serde_json::from_str(json)?;
        self.input = serde_json::to_value(&ordered)?;
        self.input_json = Some(serde_json::to_string(&ordered)?);
        Ok(())
    }

    /// `input_json` re-read with its key order, when it is set and still means `input`.
    /// One parse and an in-place comparison: no second tree is built (this runs on every
    /// serialisation and every `arguments()`, and a Write call's input can be large).
    fn ordered_input(&self) -> Option<OrderedJson> {
        let text = self.input_json.as_deref()?;
        let ordered: OrderedJson = serde_json::from_str(text).ok()?;
        ordered.means(&self.input).then_some(ordered)
    }
}

impl Serialize for ToolUseBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = if self.cache_control.is_some() { 5 } else { 4 };
        let mut st = s.serialize_struct("ToolUseBlock", fields)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("name", &self.name)?;
        match self.ordered_input() {
            Some(ordered) => st.serialize_field("input", &ordered)?,
            None => st.serialize_field("input", &self.input)?,
        }
        if let Some(cc) = &self.cache_control {
            st.serialize_field("cache_control", cc)?;
        }
        st.end()
    }
}

/// The wire shape of a [`ToolUseBlock`], whose input keeps its key order.
#[derive(Deserialize)]
struct ToolUseWire {
    id: String,
    name: String,
    #[serde(default)]
    input: Option<OrderedJson>,
    #[serde(default)]
    cache_control: Option<CacheControl>,
}

impl From<ToolUseWire> for ToolUseBlock {
    fn from(w: ToolUseWire) -> Self {
        let (input, input_json) = match w.input {
            Some(j) => (
                serde_json::to_value(&j).unwrap_or(Value::Null),
                serde_json::to_string(&j).ok(),
            ),
            None => (Value::Null, None),
        };
        Self {
            id: w.id,
            name: w.name,
            input,
            cache_control: w.cache_control,
            input_json,
        }
    }
}

/// A JSON value whose objects keep their key order. It deserializes through any
/// deserializer (serde buffers the fields of an internally tagged enum, which rules out
/// `RawValue`), and serializes back as compact JSON in the same order.
enum OrderedJson {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl OrderedJson {
    /// Whether this is the same JSON value as `value`, object key order aside (what
    /// comparing `serde_json::to_value(self)` with `value` would say, without building it).
    fn means(&self, value: &Value) -> bool {
        match (self, value) {
            (Self::Null, Value::Null) => true,
            (Self::Bool(a), Value::Bool(b)) => a == b,
            (Self::U64(a), Value::Number(n)) => n.as_u64() == Some(*a),
            (Self::I64(a), Value::Number(n)) => n.as_i64() == Some(*a),
            (Self::F64(a), Value::Number(n)) => n.is_f64() && n.as_f64() == Some(*a),
            (Self::String(a), Value::String(b)) => a == b,
            (Self::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.means(y))
            }
            (Self::Object(fields), Value::Object(map)) => {
                fields.len() == map.len()
                    && fields
                        .iter()
                        .all(|(k, v)| map.get(k).is_some_and(|other| v.means(other)))
            }
            _ => false,
        }
    }
}

impl Serialize for OrderedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::U64(n) => s.serialize_u64(*n),
            Self::I64(n) => s.serialize_i64(*n),
            Self::F64(n) => s.serialize_f64(*n),
            Self::String(t) => s.serialize_str(t),
            Self::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;

        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedJson;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                OrderedJson::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(OrderedJson::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(OrderedJson::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(OrderedJson::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(OrderedJson::F64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OrderedJson::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(OrderedJson::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OrderedJson::Array(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields: Vec<(String, OrderedJson)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, OrderedJson>()? {
                    // A repeated key keeps its first place and its last value, as `Value` does.
                    match fields.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => fields.push((k, v)),
                    }
                }
                Ok(OrderedJson::Object(fields))
            }
        }

        d.deserialize_any(OrderedVisitor)
    }
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResultBlock {
    /// The id of the `tool_use` this answers.
    pub tool_use_id: String,
    /// The result: a string or blocks (text, image, …). Absent means empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ToolResultContent>,
    /// Whether the tool failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// The content of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    /// A plain string.
    Text(String),
    /// Content blocks (text and image; others are dropped on conversion).
    Blocks(Vec<ContentBlock>),
}

impl<'de> Deserialize<'de> for ToolResultContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match deserialize_text_or_blocks(d)? {
            TextOrBlocks::Text(t) => Self::Text(t),
            TextOrBlocks::Blocks(b) => Self::Blocks(b),
        })
    }
}

/// A string or a list of blocks: the shape of message content, system prompts and tool
/// results.
pub(crate) enum TextOrBlocks {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// Deserializes a string or an array of blocks, element by element, so that a path-tracking
/// deserializer sees the index of each block and the error says what was expected.
pub(crate) fn deserialize_text_or_blocks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<TextOrBlocks, D::Error> {
    struct TextOrBlocksVisitor;

    impl<'de> Visitor<'de> for TextOrBlocksVisitor {
        type Value = TextOrBlocks;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of content blocks")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(TextOrBlocks::Text(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(TextOrBlocks::Text(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(block) = seq.next_element()? {
                blocks.push(block);
            }
            Ok(TextOrBlocks::Blocks(blocks))
        }
    }

    d.deserialize_any(TextOrBlocksVisitor)
}

/// Extended thinking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingBlock {
    /// The thinking text (a summary for OpenAI models).
    #[serde(default)]
    pub thinking: String,
    /// Opaque signature; for OpenAI models the reasoning item's `encrypted_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Thinking the client may not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedactedThinkingBlock {
    /// Opaque data; for OpenAI models the reasoning item's `encrypted_content`.
    pub data: String,
}

/// A call of a server-side tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerToolUseBlock {
    /// Call id (`srvtoolu_…`).
    pub id: String,
    /// Server tool name, e.g. `web_search`.
    pub name: String,
    /// Tool input.
    #[serde(default)]
    pub input: Value,
}

/// The result of a server-side web search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSearchToolResultBlock {
    /// The id of the `server_tool_use` this answers.
    pub tool_use_id: String,
    /// Results, carried opaquely (a list of results or an error object).
    #[serde(default)]
    pub content: Value,
}
