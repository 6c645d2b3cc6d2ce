//! The Messages request (`POST /v1/messages`): messages, system prompt, tools and settings.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::content::{self, CacheControl, ContentBlock};

/// A Messages API request, as a client sends it.
///
/// Parse inbound bodies with [`parse_request`](super::parse_request), which names the JSON path of any problem
/// and rejects malformed blocks of known types. Fields this crate does not model are kept
/// in [`MessagesRequest::extra`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessagesRequest {
    /// The model the client asked for (for example `claude-opus-4-8`).
    pub model: String,
    /// The conversation, oldest first.
    pub messages: Vec<InputMessage>,
    /// The system prompt. `null` is treated as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// Upper bound on generated tokens (thinking included). Required by the Messages
    /// endpoint, absent on `count_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Whether the client wants server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model must use the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended-thinking settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Output settings (`effort`, structured-output `format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// Request metadata (Claude Code puts a JSON document in `user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Anthropic service tier (`auto`, `standard_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Context editing settings, carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<Value>,
    /// Every other top-level field (`container`, `mcp_servers`, …), kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessagesRequest {
    /// A request for `model` with the given messages and nothing else set.
    pub fn new(model: impl Into<String>, messages: Vec<InputMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            system: None,
            max_tokens: None,
            stream: None,
            tools: None,
            tool_choice: None,
            thinking: None,
            output_config: None,
            metadata: None,
            temperature: None,
            top_p: None,
            top_k: None,
            stop_sequences: None,
            service_tier: None,
            context_management: None,
            extra: Map::new(),
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: MessageContent,
}

impl InputMessage {
    /// A message with the given role and content.
    pub fn new(role: Role, content: MessageContent) -> Self {
        Self { role, content }
    }
}

/// The author of a message.
///
/// Claude Code sends `system` messages inside `messages` (the mid-conversation system
/// beta); any other role is kept in [`Role::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// The user (also carries tool results).
    User,
    /// The model (also carries tool calls).
    Assistant,
    /// A system instruction at a point in the conversation.
    System,
    /// A role this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let role = String::deserialize(d)?;
        Ok(match role.as_str() {
            "user" => Self::User,
            "assistant" => Self::Assistant,
            "system" => Self::System,
            _ => Self::Other(role),
        })
    }
}

impl Role {
    /// The role as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
            Self::Other(s) => s,
        }
    }
}

/// The content of a message: a plain string or content blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// A plain string (one text block).
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match content::deserialize_text_or_blocks(d)? {
            content::TextOrBlocks::Text(t) => Self::Text(t),
            content::TextOrBlocks::Blocks(b) => Self::Blocks(b),
        })
    }
}

/// The system prompt: a plain string or text blocks (possibly with cache control).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum System {
    /// A plain string.
    Text(String),
    /// Blocks; only `text` blocks carry meaning.
    Blocks(Vec<ContentBlock>),
}

impl<'de> Deserialize<'de> for System {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match content::deserialize_text_or_blocks(d)? {
            content::TextOrBlocks::Text(t) => Self::Text(t),
            content::TextOrBlocks::Blocks(b) => Self::Blocks(b),
        })
    }
}

/// A tool definition: a custom tool (no `type`, or `custom`) or a versioned Anthropic tool
/// such as `web_search_20250305` or `bash_20250124`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tool {
    /// Versioned tool type for Anthropic-defined tools; absent or `custom` for custom tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Tool name, as the model calls it.
    pub name: String,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the tool input (custom tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Every other field (`max_uses`, `allowed_domains`, `user_location`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Tool {
    /// A custom tool with a name, a description and an input schema.
    pub fn custom(
        name: impl Into<String>,
        description: Option<String>,
        input_schema: Value,
    ) -> Self {
        Self {
            kind: None,
            name: name.into(),
            description,
            input_schema: Some(input_schema),
            cache_control: None,
            extra: Map::new(),
        }
    }

    /// Whether this is a custom (client-implemented) tool rather than an Anthropic-defined one.
    pub fn is_custom(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("custom") | Some(""))
    }
}

/// How the model must use the tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// Allow at most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// Allow at most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call the named tool.
    Tool {
        /// The tool to call.
        name: String,
        /// Allow at most one tool call per turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must not call tools.
    None {},
    /// A choice this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

impl ToolChoice {
    /// The `disable_parallel_tool_use` flag, when the variant has one.
    pub fn disable_parallel_tool_use(&self) -> Option<bool> {
        match self {
            Self::Auto {
                disable_parallel_tool_use,
            }
            | Self::Any {
                disable_parallel_tool_use,
            }
            | Self::Tool {
                disable_parallel_tool_use,
                ..
            } => *disable_parallel_tool_use,
            Self::None {} | Self::Unknown(_) => None,
        }
    }
}

/// Extended-thinking settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Thinking {
    /// Thinking with a token budget.
    Enabled {
        /// Tokens the model may spend thinking.
        budget_tokens: u64,
    },
    /// The model decides how much to think.
    Adaptive {},
    /// No thinking.
    Disabled {},
    /// A mode this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// Output settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputConfig {
    /// How much effort (thinking and output) the model should spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    /// Structured-output format (`{"type":"json_schema","schema":…}`), carried opaquely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Effort level of `output_config.effort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Effort {
    /// Least effort.
    Low,
    /// Balanced.
    Medium,
    /// High effort.
    High,
    /// Maximum effort.
    Max,
    /// A level this crate does not know.
    #[serde(untagged)]
    Other(String),
}

impl<'de> Deserialize<'de> for Effort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let effort = String::deserialize(d)?;
        Ok(match effort.as_str() {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "max" => Self::Max,
            _ => Self::Other(effort),
        })
    }
}

/// Request metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// Opaque end-user id. Claude Code sends a JSON document here with `device_id`,
    /// `account_uuid` and `session_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Metadata {
    /// The client session id carried in `user_id`, if there is one: the `session_id` key of
    /// Claude Code's JSON `user_id`, or the part after `_session_` in the older
    /// `user_<hash>_account_<uuid>_session_<uuid>` form.
    pub fn session_id(&self) -> Option<String> {
        let user_id = self.user_id.as_deref()?.trim();
        let sid = if user_id.starts_with('{') {
            let doc: Map<String, Value> = serde_json::from_str(user_id).ok()?;
            doc.get("session_id")?.as_str()?.to_owned()
        } else {
            user_id.rsplit_once("_session_")?.1.to_owned()
        };
        (!sid.is_empty()).then_some(sid)
    }
}
