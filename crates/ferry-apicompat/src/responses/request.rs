//! The Responses request (`POST /v1/responses`): what ferry sends upstream.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SummaryPart;

/// A Responses API request.
///
/// Serialisation is exact: absent optional fields and empty lists are not written, so the
/// upstream never sees a `null` it might reject. Fields this crate does not model can be
/// added through [`Request::extra`] (the OAuth transform does).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Request {
    /// Upstream model id.
    pub model: String,
    /// The conversation as input items.
    #[serde(default)]
    pub input: Vec<InputItem>,
    /// System-level instructions (ferry puts the system prompt in `input`; the OAuth
    /// transform may move it here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Upper bound on generated tokens, reasoning included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature (non-reasoning models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling (non-reasoning models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Whether to stream server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether the upstream may store the response (ferry sends `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// How the model must use the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning settings (reasoning models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Extra output to include, e.g. `reasoning.encrypted_content`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Text output settings (verbosity, structured-output format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// Up to 16 string key/value pairs attached to the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Legacy end-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Stable, privacy-preserving end-user id for abuse detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    /// Processing tier (`auto`, `default`, `flex`, `priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Key that groups requests sharing a prompt prefix for caching (set by the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// Continue from a stored response (set by the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Context-overflow strategy (`auto`, `disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<String>,
    /// Every other field, written as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Request {
    /// A request for `model` with the given input and nothing else set.
    pub fn new(model: impl Into<String>, input: Vec<InputItem>) -> Self {
        Self {
            model: model.into(),
            input,
            ..Self::default()
        }
    }
}

/// An item of the request `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputItem {
    /// A message from the user, the assistant, or the developer.
    Message(InputMessage),
    /// A function call the model made earlier.
    FunctionCall(FunctionCall),
    /// The result of a function call.
    FunctionCallOutput(FunctionCallOutput),
    /// Reasoning the model did earlier, replayed by its encrypted content.
    Reasoning(ReasoningInput),
    /// An item this crate does not model (or a message without `type`), kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

impl InputItem {
    /// A message with the given role and parts.
    pub fn message(role: MessageRole, content: Vec<InputContent>) -> Self {
        Self::Message(InputMessage {
            role,
            content,
            id: None,
            status: None,
        })
    }
}

/// A message input item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputMessage {
    /// Who wrote it.
    pub role: MessageRole,
    /// Content parts (a plain string is read as one `input_text` part).
    #[serde(deserialize_with = "content_parts")]
    pub content: Vec<InputContent>,
    /// Item id, when replaying a stored item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Item status, when replaying an output item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Reads message content: a string or a list of parts.
fn content_parts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<InputContent>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Parts {
        Text(String),
        Parts(Vec<InputContent>),
    }
    Ok(match Parts::deserialize(d)? {
        Parts::Text(text) => vec![InputContent::InputText { text }],
        Parts::Parts(parts) => parts,
    })
}

/// The role of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MessageRole {
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// Instructions with system priority.
    System,
    /// Instructions from the application developer.
    Developer,
    /// A role this crate does not know.
    #[serde(untagged)]
    Other(String),
}

/// A content part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputContent {
    /// Text written by the user or developer.
    InputText {
        /// The text (always written, even when empty).
        text: String,
    },
    /// Text the model wrote earlier.
    OutputText {
        /// The text (always written, even when empty).
        text: String,
        /// Annotations, carried opaquely.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        annotations: Vec<Value>,
    },
    /// An image.
    InputImage {
        /// An http(s) URL or a `data:` URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        /// An uploaded file id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
        /// Detail level (`auto`, `low`, `high`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A file (PDF and other documents).
    InputFile {
        /// File name; its extension tells the upstream the file type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        /// Inline content as a `data:` URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_data: Option<String>,
        /// A URL the upstream fetches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_url: Option<String>,
        /// An uploaded file id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_id: Option<String>,
    },
    /// A refusal the model wrote earlier.
    Refusal {
        /// The refusal text.
        refusal: String,
    },
    /// A part type this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

impl InputContent {
    /// An `input_text` part.
    pub fn input_text(text: impl Into<String>) -> Self {
        Self::InputText { text: text.into() }
    }

    /// An `output_text` part without annotations.
    pub fn output_text(text: impl Into<String>) -> Self {
        Self::OutputText {
            text: text.into(),
            annotations: Vec::new(),
        }
    }
}

/// A function call item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionCall {
    /// Call id, echoed by the matching output.
    pub call_id: String,
    /// Function name (as sent upstream).
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
    /// Item id, when replaying a stored item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl FunctionCall {
    /// A function call without item id or status.
    pub fn new(
        call_id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            name: name.into(),
            arguments: arguments.into(),
            id: None,
            status: None,
        }
    }
}

/// A function call output item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionCallOutput {
    /// The call this answers.
    pub call_id: String,
    /// The result.
    pub output: FunctionOutput,
    /// Item id, when replaying a stored item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Item status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl FunctionCallOutput {
    /// A text output for `call_id`.
    pub fn text(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            output: FunctionOutput::Text(output.into()),
            id: None,
            status: None,
        }
    }
}

/// The result of a function call: text, or content parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum FunctionOutput {
    /// Plain text (what ferry sends).
    Text(String),
    /// Content parts (text, images, files).
    Parts(Vec<InputContent>),
    /// Any other JSON, kept as received.
    Other(Value),
}

/// A reasoning item replayed as input.
///
/// `summary` is always written (the API requires it, even when empty); no `id` is sent by
/// ferry, since with `store: false` the upstream has nothing to look it up in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReasoningInput {
    /// Summary parts shown to the client earlier as thinking text.
    #[serde(default)]
    pub summary: Vec<SummaryPart>,
    /// The encrypted reasoning (`gAAAA…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    /// Item id, when replaying a stored item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl ReasoningInput {
    /// A reasoning item with encrypted content and, if not empty, one summary text.
    pub fn encrypted(encrypted_content: impl Into<String>, summary: &str) -> Self {
        let summary = if summary.is_empty() {
            Vec::new()
        } else {
            vec![SummaryPart::SummaryText {
                text: summary.to_owned(),
            }]
        };
        Self {
            summary,
            encrypted_content: Some(encrypted_content.into()),
            id: None,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tool {
    /// A function the client implements.
    Function(FunctionTool),
    /// OpenAI's hosted web search.
    WebSearch(WebSearchTool),
    /// A tool this crate does not model, kept as received.
    #[serde(untagged)]
    Unknown(Value),
}

/// A function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionTool {
    /// Function name: 1–64 characters from `[A-Za-z0-9_-]`.
    pub name: String,
    /// What the function does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    /// Whether the arguments must match the schema exactly.
    #[serde(default)]
    pub strict: bool,
}

impl FunctionTool {
    /// A non-strict function tool.
    pub fn new(name: impl Into<String>, description: Option<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description,
            parameters,
            strict: false,
        }
    }
}

/// The hosted web search tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebSearchTool {
    /// Domain filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<WebSearchFilters>,
    /// Approximate user location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_location: Option<UserLocation>,
    /// How much context the search may use (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_context_size: Option<String>,
}

/// Domain filters of the web search tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebSearchFilters {
    /// Only search these domains (and their subdomains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
}

/// An approximate user location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserLocation {
    /// Always `approximate`.
    #[serde(rename = "type", default = "approximate")]
    pub kind: String,
    /// City name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region or state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 two-letter country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

fn approximate() -> String {
    "approximate".to_owned()
}

/// How the model must use the tools: a mode string or a named tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ToolChoice {
    /// `auto`, `none` or `required`.
    Mode(ToolChoiceMode),
    /// A specific tool.
    Named(NamedToolChoice),
    /// A shape this crate does not model, kept as received.
    Other(Value),
}

/// The mode form of [`ToolChoice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ToolChoiceMode {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
}

/// The named form of [`ToolChoice`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NamedToolChoice {
    /// Call this function.
    Function {
        /// Function name (as sent upstream).
        name: String,
    },
}

/// Reasoning settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reasoning {
    /// How hard the model thinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<ReasoningEffort>,
    /// Whether and how the reasoning is summarised (needed to get thinking text back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ReasoningSummary>,
    /// Which turns' reasoning the model sees (`all_turns`: the Codex Responses Lite shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// `reasoning.effort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReasoningEffort {
    /// No reasoning.
    None,
    /// Minimal reasoning.
    Minimal,
    /// Low.
    Low,
    /// Medium (the API default).
    Medium,
    /// High.
    High,
    /// Extra high.
    Xhigh,
    /// A level this crate does not know, sent as is.
    #[serde(untagged)]
    Other(String),
}

/// `reasoning.summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReasoningSummary {
    /// The most detailed summary the model supports.
    #[default]
    Auto,
    /// A short summary.
    Concise,
    /// A detailed summary.
    Detailed,
    /// A mode this crate does not know, sent as is.
    #[serde(untagged)]
    Other(String),
}

/// Text output settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TextConfig {
    /// Output format (`{"type":"json_schema",…}` for structured output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Verbosity (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
}
