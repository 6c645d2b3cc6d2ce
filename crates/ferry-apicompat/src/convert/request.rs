//! Anthropic Messages request → OpenAI Responses request.
//!
//! [`convert`] is pure: the same request and options always give the same output. It
//! never sets `prompt_cache_key` or `previous_response_id` (the caller owns sessions and
//! caching), and it copies the client's `stream` flag (the caller usually forces `true`).
//! The rules, and where they differ from the reference implementation, are written down in
//! `docs/conversion.md`.

mod schema;
mod tools;

use serde_json::Value;

use crate::anthropic::{
    self, ContentBlock, DocumentBlock, DocumentSource, Effort, ImageBlock, ImageSource,
    MessageContent, MessagesRequest, Role, System, TextBlock, Thinking, ToolResultBlock,
    ToolResultContent,
};
use crate::convert::ToolNames;
use crate::responses::{
    self, FunctionCall, FunctionCallOutput, InputContent, InputItem, MessageRole, Reasoning,
    ReasoningEffort, ReasoningInput, ReasoningSummary,
};
use crate::{ConvertError, Converted, Dropped};

/// Smallest `max_output_tokens` ferry sends: a reasoning model needs room to think
/// before it writes anything, and the API rejects values below 16.
pub const MIN_OUTPUT_TOKENS: u64 = 128;

/// Prefix of the billing header Claude Code puts in the first system block.
const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header:";

/// Text that stands in for an image whose URL cannot be forwarded.
const IMAGE_OMITTED: &str = "[image omitted: its URL could not be forwarded to the model]";

/// Text that stands in for a document whose URL cannot be forwarded.
const DOCUMENT_OMITTED: &str = "[document omitted: its URL could not be forwarded to the model]";

/// Output of a tool result with no text.
const EMPTY_TOOL_OUTPUT: &str = "(empty)";

/// Options of [`convert`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// Upstream model id. The output `model` is this when set, else the client's model.
    /// Reasoning support is detected from it (see [`Options::reasoning_model`]).
    pub model: Option<String>,
    /// `reasoning.summary` whenever reasoning is on (default `auto`).
    pub reasoning_summary: ReasoningSummary,
    /// `service_tier` to send (the caller sets `priority` for Anthropic's fast mode).
    pub service_tier: Option<String>,
    /// `max_output_tokens` when the client sent no `max_tokens`.
    pub default_max_output_tokens: Option<u64>,
    /// Whether the upstream model reasons; `None` detects it from the model id
    /// (see [`is_reasoning_model`]).
    pub reasoning_model: Option<bool>,
}

impl Options {
    /// Default options: client model, `auto` summaries, no service tier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the upstream model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the reasoning summary mode.
    pub fn with_reasoning_summary(mut self, summary: ReasoningSummary) -> Self {
        self.reasoning_summary = summary;
        self
    }

    /// Sets the service tier.
    pub fn with_service_tier(mut self, tier: impl Into<String>) -> Self {
        self.service_tier = Some(tier.into());
        self
    }

    /// Sets the output-token default used when the client sends no `max_tokens`.
    pub fn with_default_max_output_tokens(mut self, tokens: u64) -> Self {
        self.default_max_output_tokens = Some(tokens);
        self
    }

    /// Overrides reasoning-model detection.
    pub fn with_reasoning_model(mut self, reasoning: bool) -> Self {
        self.reasoning_model = Some(reasoning);
        self
    }
}

/// Whether a model id names a reasoning model, which takes `reasoning` and rejects
/// `temperature`/`top_p`.
///
/// The id is lower-cased and any provider prefix (`openai/`) removed. `gpt-` followed by a
/// major version below 5, `gpt-4o…`, `chatgpt-…` and `gpt-3.5…` are not reasoning models;
/// everything else is (GPT-5 and later, the o-series, codex models, and ids ferry does not
/// know, since the upstreams it targets serve reasoning models).
pub fn is_reasoning_model(model: &str) -> bool {
    let id = model.trim().to_ascii_lowercase();
    let id = id.rsplit('/').next().unwrap_or(&id);
    if id.starts_with("chatgpt-") {
        return false;
    }
    if let Some(rest) = id.strip_prefix("gpt-") {
        let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return match major.parse::<u32>() {
            Ok(major) => major >= 5,
            Err(_) => true,
        };
    }
    true
}

/// The effort a `thinking.budget_tokens` maps to: below 4,000 low, below 16,000 medium,
/// else high.
pub fn effort_for_budget(budget_tokens: u64) -> ReasoningEffort {
    match budget_tokens {
        0..4_000 => ReasoningEffort::Low,
        4_000..16_000 => ReasoningEffort::Medium,
        _ => ReasoningEffort::High,
    }
}

/// Whether a thinking signature is OpenAI reasoning ciphertext (a Fernet token, `gAAAA…`),
/// which ferry sends to clients as the signature and can replay.
pub fn is_openai_signature(signature: &str) -> bool {
    signature.trim().starts_with("gAAAA")
}

/// Converts a Messages request into a Responses request.
///
/// Returns an error only for input that cannot be converted: no messages, or a block,
/// `thinking` or `tool_choice` of a known type with malformed fields (when the request was
/// not built by [`anthropic::parse_request`], which rejects those already). Everything
/// left out is listed in [`Converted::dropped`].
pub fn convert(
    req: &MessagesRequest,
    opts: &Options,
) -> Result<Converted<responses::Request>, ConvertError> {
    anthropic::validate_request(req)?;
    if req.messages.is_empty() {
        return Err(ConvertError::InvalidValue {
            path: "messages".to_owned(),
            message: "at least one message is required".to_owned(),
        });
    }
    let model = opts.model.clone().unwrap_or_else(|| req.model.clone());
    let reasoning_model = opts
        .reasoning_model
        .unwrap_or_else(|| is_reasoning_model(&model));
    let mut cx = Cx {
        names: ToolNames::from_request(req),
        reasoning_model,
        dropped: Vec::new(),
        cache_hints: 0,
        first_cache_hint: None,
    };

    let mut out = responses::Request::new(model, Vec::new());
    if let Some(system) = &req.system
        && let Some(item) = cx.developer_message("system", system_blocks(system))
    {
        out.input.push(item);
    }
    let last = req.messages.len() - 1;
    for (i, message) in req.messages.iter().enumerate() {
        let before = (out.input.len(), cx.dropped.len());
        cx.message(i, message, &mut out.input);
        // A final user turn with nothing left would make the upstream answer the turn
        // before it: refuse it instead.
        if i == last && out.input.len() == before.0 && is_user_turn(&message.role) {
            let why: Vec<String> = cx.dropped[before.1..]
                .iter()
                .map(|d| format!("{}: {}", d.path, d.detail))
                .collect();
            return Err(ConvertError::InvalidValue {
                path: format!("messages[{i}].content"),
                message: if why.is_empty() {
                    "the final user message has no content".to_owned()
                } else {
                    format!(
                        "the final user message has nothing that can be sent ({})",
                        why.join("; ")
                    )
                },
            });
        }
    }
    if out.input.is_empty() {
        return Err(ConvertError::InvalidValue {
            path: "messages".to_owned(),
            message: "no message has any content to send".to_owned(),
        });
    }

    let tool_kinds = tools::convert_tools(&mut cx, req, &mut out);
    tools::convert_tool_choice(&mut cx, req, &tool_kinds, &mut out);

    cx.reasoning(req, opts, &mut out);
    cx.parameters(req, opts, &mut out);
    out.store = Some(false);
    out.stream = req.stream;
    out.service_tier = opts.service_tier.clone();

    if let Some(path) = cx.first_cache_hint.take() {
        let n = cx.cache_hints;
        cx.drop(
            path,
            "cache_control",
            format!(
                "{n} cache_control hint(s) ignored: the Responses API caches prefixes automatically"
            ),
        );
    }
    Ok(Converted::new(out, cx.dropped))
}

/// Conversion state.
struct Cx {
    names: ToolNames,
    reasoning_model: bool,
    dropped: Vec<Dropped>,
    cache_hints: usize,
    first_cache_hint: Option<String>,
}

/// A borrowed view of system content: a string or blocks.
#[derive(Clone, Copy)]
enum SystemView<'a> {
    Text(&'a str),
    Blocks(&'a [ContentBlock]),
}

fn system_blocks(system: &System) -> SystemView<'_> {
    match system {
        System::Text(t) => SystemView::Text(t),
        System::Blocks(b) => SystemView::Blocks(b),
    }
}

impl Cx {
    fn drop(&mut self, path: impl Into<String>, kind: &'static str, detail: impl Into<String>) {
        self.dropped.push(Dropped::new(path, kind, detail));
    }

    fn cache_hint(&mut self, path: &str, present: bool) {
        if present {
            self.cache_hints += 1;
            if self.first_cache_hint.is_none() {
                self.first_cache_hint = Some(format!("{path}.cache_control"));
            }
        }
    }

    /// Lists a block of an unknown type (malformed known types were rejected up front).
    fn unknown_block(&mut self, path: &str, block: &ContentBlock) {
        let t = block.type_name().to_owned();
        self.drop(
            path,
            "unknown_block",
            format!("block type {t:?} is not supported"),
        );
    }

    fn misplaced(&mut self, path: &str, block: &ContentBlock, role: &str) {
        let t = block.type_name().to_owned();
        self.drop(
            path,
            "misplaced_block",
            format!("{t:?} block is not supported in a {role} message"),
        );
    }

    /// A developer message from the system prompt or a `system` message.
    fn developer_message(&mut self, path: &str, content: SystemView<'_>) -> Option<InputItem> {
        let mut parts = Vec::new();
        match content {
            SystemView::Text(text) => self.developer_text(path, text, &mut parts),
            SystemView::Blocks(blocks) => {
                for (j, block) in blocks.iter().enumerate() {
                    let path = format!("{path}[{j}]");
                    match block {
                        ContentBlock::Text(t) => {
                            self.cache_hint(&path, t.cache_control.is_some());
                            self.developer_text(&path, &t.text, &mut parts);
                        }
                        ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                        _ => self.misplaced(&path, block, "system"),
                    }
                }
            }
        }
        (!parts.is_empty()).then(|| InputItem::message(MessageRole::Developer, parts))
    }

    /// The text of a user or assistant text block, or `None` (listed) when it is empty.
    /// Its cache hint and citations are accounted for either way.
    fn message_text<'b>(&mut self, path: &str, t: &'b TextBlock) -> Option<&'b str> {
        self.cache_hint(path, t.cache_control.is_some());
        if t.citations.is_some() {
            self.drop(
                format!("{path}.citations"),
                "citations",
                "citations are not sent",
            );
        }
        if t.text.is_empty() {
            self.drop(path, "empty_text", "empty text is not sent");
            None
        } else {
            Some(&t.text)
        }
    }

    fn developer_text(&mut self, path: &str, text: &str, parts: &mut Vec<InputContent>) {
        if text.is_empty() {
            self.drop(path, "empty_text", "empty text is not sent");
        } else if text.starts_with(BILLING_HEADER_PREFIX) {
            self.drop(path, "billing_header", "Anthropic billing header removed");
        } else {
            parts.push(InputContent::input_text(text));
        }
    }

    fn message(&mut self, i: usize, message: &anthropic::InputMessage, out: &mut Vec<InputItem>) {
        let path = format!("messages[{i}].content");
        match &message.role {
            Role::User => self.user_message(&path, &message.content, out),
            Role::Assistant => self.assistant_message(&path, &message.content, out),
            Role::System => self.system_message(&path, &message.content, out),
            Role::Other(role) if role == "developer" => {
                self.system_message(&path, &message.content, out);
            }
            Role::Other(role) => {
                let role = role.clone();
                self.drop(
                    format!("messages[{i}].role"),
                    "unknown_role",
                    format!("role {role:?} converted as a user message"),
                );
                self.user_message(&path, &message.content, out)
            }
        }
    }

    fn system_message(&mut self, path: &str, content: &MessageContent, out: &mut Vec<InputItem>) {
        let view = match content {
            MessageContent::Text(t) => SystemView::Text(t),
            MessageContent::Blocks(b) => SystemView::Blocks(b),
        };
        if let Some(item) = self.developer_message(path, view) {
            out.push(item);
        }
    }

    /// User turn: tool outputs first (in block order), then one user message with the other
    /// parts, then the images and documents taken out of tool results.
    fn user_message(&mut self, path: &str, content: &MessageContent, out: &mut Vec<InputItem>) {
        let blocks = match content {
            MessageContent::Text(text) => {
                if text.is_empty() {
                    self.drop(path, "empty_text", "empty text is not sent");
                } else {
                    out.push(InputItem::message(
                        MessageRole::User,
                        vec![InputContent::input_text(text)],
                    ));
                }
                return;
            }
            MessageContent::Blocks(blocks) => blocks,
        };
        let mut parts = Vec::new();
        let mut moved = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("{path}[{j}]");
            match block {
                ContentBlock::Text(t) => {
                    if let Some(text) = self.message_text(&path, t) {
                        parts.push(InputContent::input_text(text));
                    }
                }
                ContentBlock::Image(image) => self.image(&path, image, &mut parts),
                ContentBlock::Document(doc) => self.document(&path, doc, &mut parts),
                ContentBlock::ToolResult(result) => {
                    let output = self.tool_result(&path, result, &mut moved);
                    out.push(InputItem::FunctionCallOutput(output));
                }
                ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                _ => self.misplaced(&path, block, "user"),
            }
        }
        parts.append(&mut moved);
        if !parts.is_empty() {
            out.push(InputItem::message(MessageRole::User, parts));
        }
    }

    fn tool_result(
        &mut self,
        path: &str,
        result: &ToolResultBlock,
        moved: &mut Vec<InputContent>,
    ) -> FunctionCallOutput {
        self.cache_hint(path, result.cache_control.is_some());
        let mut texts: Vec<&str> = Vec::new();
        match &result.content {
            None => {}
            Some(ToolResultContent::Text(text)) => texts.push(text),
            Some(ToolResultContent::Blocks(blocks)) => {
                for (k, block) in blocks.iter().enumerate() {
                    let path = format!("{path}.content[{k}]");
                    match block {
                        ContentBlock::Text(t) => {
                            self.cache_hint(&path, t.cache_control.is_some());
                            if !t.text.is_empty() {
                                texts.push(&t.text);
                            }
                        }
                        ContentBlock::Image(image) => self.image(&path, image, moved),
                        ContentBlock::Document(doc) => self.document(&path, doc, moved),
                        ContentBlock::Unknown(_) => {
                            let t = block.type_name().to_owned();
                            self.drop(
                                path,
                                "unknown_block",
                                format!("block type {t:?} is not supported in a tool result"),
                            );
                        }
                        _ => self.misplaced(&path, block, "tool_result"),
                    }
                }
            }
        }
        let mut output = texts
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        if output.is_empty() {
            output = EMPTY_TOOL_OUTPUT.to_owned();
        }
        if result.is_error == Some(true) {
            output.insert_str(0, "Error: ");
        }
        let call_id = self.names.call_id_to_upstream(&result.tool_use_id);
        FunctionCallOutput::text(call_id.as_ref(), output)
    }

    /// Assistant turn: items in block order; consecutive text blocks form one message.
    fn assistant_message(
        &mut self,
        path: &str,
        content: &MessageContent,
        out: &mut Vec<InputItem>,
    ) {
        let blocks = match content {
            MessageContent::Text(text) => {
                if text.is_empty() {
                    self.drop(path, "empty_text", "empty text is not sent");
                } else {
                    out.push(InputItem::message(
                        MessageRole::Assistant,
                        vec![InputContent::output_text(text)],
                    ));
                }
                return;
            }
            MessageContent::Blocks(blocks) => blocks,
        };
        let mut text = Vec::new();
        // Reasoning items and where they came from, to drop any that nothing follows.
        let mut reasoning_at: Vec<(usize, String)> = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("{path}[{j}]");
            match block {
                ContentBlock::Text(t) => {
                    if let Some(t) = self.message_text(&path, t) {
                        text.push(InputContent::output_text(t));
                    }
                }
                ContentBlock::ToolUse(call) => {
                    flush_assistant(&mut text, out);
                    self.cache_hint(&path, call.cache_control.is_some());
                    let arguments = call.arguments();
                    let name = self.names.to_upstream(&call.name).into_owned();
                    let call_id = self.names.call_id_to_upstream(&call.id).into_owned();
                    out.push(InputItem::FunctionCall(FunctionCall::new(
                        call_id, name, arguments,
                    )));
                }
                ContentBlock::Thinking(thinking) => {
                    let signature = thinking.signature.as_deref().unwrap_or("").trim();
                    if signature.is_empty() {
                        self.drop(
                            path,
                            "unsigned_thinking",
                            "thinking without a signature cannot be replayed",
                        );
                    } else if let Some(item) = self.replay(&path, signature, &thinking.thinking) {
                        flush_assistant(&mut text, out);
                        reasoning_at.push((out.len(), path));
                        out.push(item);
                    }
                }
                ContentBlock::RedactedThinking(redacted) => {
                    if let Some(item) = self.replay(&path, redacted.data.trim(), "") {
                        flush_assistant(&mut text, out);
                        reasoning_at.push((out.len(), path));
                        out.push(item);
                    }
                }
                ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                ContentBlock::ServerToolUse(_) | ContentBlock::WebSearchToolResult(_) => {
                    let t = block.type_name().to_owned();
                    self.drop(
                        path,
                        "server_tool_history",
                        format!("{t:?} history has no Responses input equivalent"),
                    );
                }
                _ => self.misplaced(&path, block, "assistant"),
            }
        }
        flush_assistant(&mut text, out);
        // A reasoning item must be followed by the output it led to; drop trailing ones.
        for (at, path) in reasoning_at.into_iter().rev() {
            let followed = out[at + 1..]
                .iter()
                .any(|item| !matches!(item, InputItem::Reasoning(_)));
            if !followed {
                out.remove(at);
                self.drop(
                    path,
                    "orphan_reasoning",
                    "reasoning not followed by output in its turn is not replayed",
                );
            }
        }
    }

    /// A reasoning item for a signed thinking block, or why there is none.
    fn replay(&mut self, path: &str, signature: &str, summary: &str) -> Option<InputItem> {
        if !is_openai_signature(signature) {
            self.drop(
                path,
                "foreign_signature",
                "thinking signed by another provider cannot be replayed",
            );
            return None;
        }
        if !self.reasoning_model {
            self.drop(
                path,
                "reasoning_unsupported",
                "the upstream model does not take reasoning items",
            );
            return None;
        }
        Some(InputItem::Reasoning(ReasoningInput::encrypted(
            signature, summary,
        )))
    }

    fn image(&mut self, path: &str, image: &ImageBlock, parts: &mut Vec<InputContent>) {
        self.cache_hint(path, image.cache_control.is_some());
        match &image.source {
            ImageSource::Base64 { media_type, data } => {
                if data.is_empty() {
                    self.drop(path, "empty_image", "image without data");
                    return;
                }
                let media_type = if media_type.is_empty() {
                    "image/png"
                } else {
                    media_type
                };
                parts.push(InputContent::InputImage {
                    image_url: Some(format!("data:{media_type};base64,{data}")),
                    file_id: None,
                    detail: None,
                });
            }
            ImageSource::Url { url } => {
                if is_forwardable_url(url) {
                    parts.push(InputContent::InputImage {
                        image_url: Some(url.clone()),
                        file_id: None,
                        detail: None,
                    });
                } else {
                    self.drop(
                        format!("{path}.source.url"),
                        "image_url",
                        "image URL is not an absolute http(s) URL",
                    );
                    parts.push(InputContent::input_text(IMAGE_OMITTED));
                }
            }
            ImageSource::Unknown(source) => {
                let t = source
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    format!("{path}.source"),
                    "image_source",
                    format!("image source {t:?} is not supported"),
                );
            }
        }
    }

    fn document(&mut self, path: &str, doc: &DocumentBlock, parts: &mut Vec<InputContent>) {
        self.cache_hint(path, doc.cache_control.is_some());
        if doc.citations.is_some() {
            self.drop(
                format!("{path}.citations"),
                "citations",
                "citations are not supported",
            );
        }
        let mut header = Vec::new();
        let file_like = matches!(doc.source, DocumentSource::Base64 { .. });
        if !file_like && let Some(title) = doc.title.as_deref().filter(|t| !t.is_empty()) {
            header.push(format!("Document: {title}"));
        }
        if let Some(context) = doc.context.as_deref().filter(|c| !c.is_empty()) {
            header.push(format!("Context: {context}"));
        }
        if !header.is_empty() {
            parts.push(InputContent::input_text(header.join("\n")));
        }
        match &doc.source {
            DocumentSource::Base64 { media_type, data } => {
                if data.is_empty() {
                    self.drop(path, "empty_document", "document without data");
                    return;
                }
                let media_type = if media_type.is_empty() {
                    "application/pdf"
                } else {
                    media_type
                };
                parts.push(InputContent::InputFile {
                    filename: Some(filename_for(doc.title.as_deref(), media_type)),
                    file_data: Some(format!("data:{media_type};base64,{data}")),
                    file_url: None,
                    file_id: None,
                });
            }
            DocumentSource::Url { url } => {
                if is_forwardable_url(url) {
                    parts.push(InputContent::InputFile {
                        filename: None,
                        file_data: None,
                        file_url: Some(url.clone()),
                        file_id: None,
                    });
                } else {
                    self.drop(
                        format!("{path}.source.url"),
                        "document_url",
                        "document URL is not an absolute http(s) URL",
                    );
                    parts.push(InputContent::input_text(DOCUMENT_OMITTED));
                }
            }
            DocumentSource::Text { data, .. } => {
                if data.is_empty() {
                    self.drop(path, "empty_document", "document without text");
                } else {
                    parts.push(InputContent::input_text(data));
                }
            }
            DocumentSource::Content { content } => match content {
                Value::String(text) if !text.is_empty() => {
                    parts.push(InputContent::input_text(text))
                }
                Value::Array(_) => {
                    let blocks: Vec<ContentBlock> =
                        serde::Deserialize::deserialize(content).unwrap_or_default();
                    for (k, block) in blocks.iter().enumerate() {
                        let path = format!("{path}.source.content[{k}]");
                        match block {
                            ContentBlock::Text(t) if !t.text.is_empty() => {
                                parts.push(InputContent::input_text(&t.text));
                            }
                            ContentBlock::Text(_) => {
                                self.drop(path, "empty_text", "empty text is not sent")
                            }
                            ContentBlock::Image(image) => self.image(&path, image, parts),
                            _ => {
                                let t = block.type_name().to_owned();
                                self.drop(
                                    path,
                                    "unknown_block",
                                    format!("block type {t:?} is not supported in a document"),
                                );
                            }
                        }
                    }
                }
                _ => self.drop(path, "empty_document", "document without content"),
            },
            DocumentSource::Unknown(source) => {
                let t = source
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    format!("{path}.source"),
                    "document_source",
                    format!("document source {t:?} is not supported"),
                );
            }
        }
    }

    /// `reasoning` and `include`.
    fn reasoning(&mut self, req: &MessagesRequest, opts: &Options, out: &mut responses::Request) {
        let requested_effort = req.output_config.as_ref().and_then(|c| c.effort.as_ref());
        if !self.reasoning_model {
            if matches!(
                req.thinking,
                Some(Thinking::Enabled { .. } | Thinking::Adaptive {})
            ) {
                self.drop("thinking", "thinking", "the upstream model does not reason");
            }
            if requested_effort.is_some() {
                self.drop(
                    "output_config.effort",
                    "effort",
                    "the upstream model does not reason",
                );
            }
            return;
        }
        let effort = match (&req.thinking, requested_effort) {
            (Some(Thinking::Disabled {}), _) => ReasoningEffort::None,
            (_, Some(effort)) => match effort {
                Effort::Low => ReasoningEffort::Low,
                Effort::Medium => ReasoningEffort::Medium,
                Effort::High => ReasoningEffort::High,
                Effort::Max => ReasoningEffort::Xhigh,
                Effort::Other(other) => ReasoningEffort::Other(other.clone()),
            },
            (Some(Thinking::Enabled { budget_tokens }), None) => effort_for_budget(*budget_tokens),
            (Some(Thinking::Unknown(v)), None) => {
                let t = v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    "thinking",
                    "thinking",
                    format!("thinking type {t:?} is not supported; medium effort used"),
                );
                ReasoningEffort::Medium
            }
            (Some(Thinking::Adaptive {}) | None, None) => ReasoningEffort::Medium,
        };
        if matches!(req.thinking, Some(Thinking::Disabled {})) && requested_effort.is_some() {
            self.drop(
                "output_config.effort",
                "effort",
                "thinking is disabled: effort none sent",
            );
        }
        // Thinking blocks reach the client only when it asked for thinking: Anthropic never
        // returns them otherwise. Without a request for thinking the model still reasons at
        // the effort above, but no summary is requested and no ciphertext is included, so the
        // answer carries no thinking or redacted_thinking blocks.
        let wants_thinking = matches!(
            req.thinking,
            Some(Thinking::Enabled { .. } | Thinking::Adaptive {} | Thinking::Unknown(_))
        );
        let visible = wants_thinking && effort != ReasoningEffort::None;
        let summary = visible.then(|| opts.reasoning_summary.clone());
        out.reasoning = Some(Reasoning {
            effort: Some(effort),
            summary,
            context: None,
        });
        if visible {
            out.include = vec!["reasoning.encrypted_content".to_owned()];
        }
    }

    /// Sampling and the remaining top-level parameters.
    fn parameters(&mut self, req: &MessagesRequest, opts: &Options, out: &mut responses::Request) {
        out.max_output_tokens = req
            .max_tokens
            .or(opts.default_max_output_tokens)
            .filter(|n| *n > 0)
            .map(|n| n.max(MIN_OUTPUT_TOKENS));
        if self.reasoning_model {
            if req.temperature.is_some() {
                self.drop(
                    "temperature",
                    "temperature",
                    "reasoning models take no temperature",
                );
            }
            if req.top_p.is_some() {
                self.drop("top_p", "top_p", "reasoning models take no top_p");
            }
        } else {
            out.temperature = req.temperature;
            out.top_p = req.top_p;
        }
        if req.top_k.is_some() {
            self.drop("top_k", "top_k", "the Responses API has no top_k");
        }
        // `stop_sequences` are not sent (the Responses API has none): the response
        // converters emulate them (`stream::Options::with_stop_sequences`).
        if req.service_tier.as_deref().is_some_and(|t| t != "auto") {
            self.drop(
                "service_tier",
                "service_tier",
                "Anthropic service tiers have no Responses equivalent",
            );
        }
        if req.metadata.is_some() {
            self.drop("metadata", "metadata", "metadata is not forwarded upstream");
        }
        if req.context_management.is_some() {
            self.drop(
                "context_management",
                "context_management",
                "context editing has no Responses equivalent",
            );
        }
        if let Some(config) = &req.output_config {
            if let Some(format) = &config.format {
                match structured_output(format) {
                    Some((format, repairs)) => {
                        out.text = Some(responses::TextConfig {
                            format: Some(format),
                            verbosity: None,
                        });
                        if !repairs.is_empty() {
                            self.drop(
                                "output_config.format.schema",
                                "output_schema",
                                repairs.join("; "),
                            );
                        }
                    }
                    None => self.drop(
                        "output_config.format",
                        "output_config",
                        "output format is not supported",
                    ),
                }
            }
            for key in config.extra.keys() {
                self.drop(
                    format!("output_config.{key}"),
                    "output_config",
                    "not supported",
                );
            }
        }
        for (key, value) in &req.extra {
            // `speed` (`fast` or `standard`) is the caller's to map: fast mode is
            // `Options::service_tier` (`priority`).
            if key == "speed" && matches!(value.as_str(), Some("fast" | "standard")) {
                continue;
            }
            self.drop(key.clone(), "unknown_field", "field is not supported");
        }
    }
}

/// Whether a message is converted as a user turn (`user`, or an unknown role).
fn is_user_turn(role: &Role) -> bool {
    match role {
        Role::User => true,
        Role::Other(role) => role != "developer",
        Role::Assistant | Role::System => false,
    }
}

/// Appends a pending assistant message, if any.
fn flush_assistant(text: &mut Vec<InputContent>, out: &mut Vec<InputItem>) {
    if !text.is_empty() {
        out.push(InputItem::message(
            MessageRole::Assistant,
            std::mem::take(text),
        ));
    }
}

/// `output_config.format` (`{"type":"json_schema","schema":…}`) → `text.format`.
fn structured_output(format: &Value) -> Option<(Value, Vec<String>)> {
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    let (schema, repairs) = schema::sanitize(format.get("schema"));
    let mut out = serde_json::Map::new();
    out.insert("type".to_owned(), Value::String("json_schema".to_owned()));
    out.insert("name".to_owned(), Value::String("output".to_owned()));
    out.insert("schema".to_owned(), schema);
    out.insert("strict".to_owned(), Value::Bool(false));
    Some((Value::Object(out), repairs))
}

/// An absolute http(s) URL with a host and no whitespace or control characters.
fn is_forwardable_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// File extension for a document MIME type.
fn extension_for(media_type: &str) -> Option<&'static str> {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match base.as_str() {
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/html" => "html",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => return None,
    })
}

/// The file name sent for a base64 document: the title (or `document`), with the
/// extension of its MIME type added when missing, since the upstream infers the file type
/// from it.
fn filename_for(title: Option<&str>, media_type: &str) -> String {
    let base = match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(title) => clean_filename(title),
        None => "document".to_owned(),
    };
    match extension_for(media_type) {
        Some(ext) if !base.to_ascii_lowercase().ends_with(&format!(".{ext}")) => {
            format!("{base}.{ext}")
        }
        _ => base,
    }
}

/// A title usable as a file name: path separators and control characters replaced.
fn clean_filename(title: &str) -> String {
    title
        .trim()
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_forwardable_url("https://example.com/a.png"));
        assert!(is_forwardable_url("HTTP://example.com"));
        assert!(!is_forwardable_url("https:///a.png"));
        assert!(!is_forwardable_url("ftp://example.com/a.png"));
        assert!(!is_forwardable_url("https://example.com/a b.png"));
        assert!(!is_forwardable_url("data:image/png;base64,AAAA"));
    }

    #[test]
    fn filenames() {
        assert_eq!(filename_for(None, "application/pdf"), "document.pdf");
        assert_eq!(
            filename_for(Some("Report"), "application/pdf"),
            "Report.pdf"
        );
        assert_eq!(
            filename_for(Some("report.PDF"), "application/pdf"),
            "report.PDF"
        );
        assert_eq!(filename_for(Some("a/b"), "text/plain"), "a_b.txt");
        assert_eq!(filename_for(Some("x"), "application/octet-stream"), "x");
    }
}
