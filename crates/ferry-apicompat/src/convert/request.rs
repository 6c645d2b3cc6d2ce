//! Anthropic Messages request → OpenAI Responses request.
//!
//! [`convert`] is pure: the same request and options always give the same output. It
//! never sets `prompt_cache_key` or `previous_response_id` (the caller owns sessions and
//! caching), and it copies the client's `stream` flag (the caller usually forces `true`).
//! The rules, and where they differ from the reference implementation, are written down in
//! `docs/conversion.md`.

mod media;
mod messages;
mod params;
mod schema;
mod tools;

use self::messages::is_user_turn;
use crate::anthropic::{self, ContentBlock, MessagesRequest, System};
use crate::convert::ToolNames;
use crate::responses::{self, ReasoningEffort, ReasoningSummary};
use crate::{ConvertError, Converted, Dropped};

/// Smallest `max_output_tokens` ferry sends: a reasoning model needs room to think
/// before it writes anything, and the API rejects values below 16.
pub const MIN_OUTPUT_TOKENS: u64 = 128;

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
}
