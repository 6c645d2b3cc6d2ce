//! Upstream request shaping: URLs (gateway.md §4a), the OAuth Codex body transform (§4b and
//! §1 step 15) with the forced-instructions template, and the upstream headers (§4c, §1 steps
//! 21–24).

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::config::{AccountConfig, AccountKind, Secret};
use crate::error::AccountsError;
use crate::model::{normalize_codex_model, strip_sys_suffix};

/// Default base URL of API-key accounts.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default base URL of OAuth (ChatGPT/Codex) accounts.
pub const CODEX_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";
/// The Codex CLI version ferry presents to the Codex backend by default: the newest Codex
/// CLI release when this was written (`npm view @openai/codex version`, 2026-12-02). The
/// backend refuses old clients for newer models (0.144.0 for GPT-5.6; below 0.148.0 at
/// times), so ferry presents a current one; accounts set their own with
/// `codex_client_version`.
pub const CODEX_CLI_VERSION: &str = "0.171.0";
/// The oldest calling Codex client whose version ferry follows; an older one is presented
/// as the configured (or default) version.
pub const CODEX_MIN_CLIENT_VERSION: &str = "0.148.0";
/// The header that asks the Codex backend for the Responses Lite request shape.
pub const RESPONSES_LITE_HEADER: &str = "x-openai-internal-codex-responses-lite";
/// The canonical Codex CLI originator.
pub const CODEX_ORIGINATOR: &str = "codex_cli_rs";
/// Originators of first-party Codex clients, kept when the client's user-agent names one.
const CODEX_ORIGINATORS: &[&str] = &["codex_cli_rs", "codex_vscode", "codex_exec", "codex_sdk_ts"];

/// The upstream Responses URL for an account: `{base_url}/responses`, with the kind's default
/// base URL when none is configured.
pub fn responses_url(account: &AccountConfig) -> String {
    let default = match account.kind {
        AccountKind::Oauth => CODEX_BASE_URL,
        AccountKind::ApiKey | AccountKind::Simulated => OPENAI_BASE_URL,
    };
    let base = account
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(default);
    format!("{}/responses", base.trim_end_matches('/'))
}

/// Inputs of [`apply_codex_transform`] besides the body.
#[derive(Clone, Copy, Debug, Default)]
pub struct CodexTransformOptions<'a> {
    /// `gateway.forced_codex_instructions_template`, if configured (already loaded from its file).
    pub forced_instructions_template: Option<&'a str>,
    /// The model as the client sent it (template field `OriginalModel`).
    pub original_model: &'a str,
    /// The suffix-stripped model (template field `NormalizedModel`).
    pub normalized_model: &'a str,
    /// The mapped model (template field `BillingModel`).
    pub billing_model: &'a str,
    /// Rewrite the body into the Responses Lite shape ([`apply_responses_lite`]).
    pub responses_lite: bool,
}

/// What [`apply_codex_transform`] reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodexTransformOutcome {
    /// The model now in the body (Codex-normalised); adopt it as the upstream model.
    pub upstream_model: String,
    /// The body's `prompt_cache_key` (trimmed, non-empty), removed from the body: OAuth carries
    /// the key in headers only.
    pub prompt_cache_key: Option<String>,
}

/// Fields deleted from OAuth bodies: the Codex backend rejects them.
const CODEX_DROPPED_FIELDS: &[&str] = &[
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "prompt_cache_retention",
    "user",
    "metadata",
    "safety_identifier",
    "stream_options",
];

const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// Rewrites a Responses request body for the ChatGPT Codex backend (OAuth accounts).
///
/// `store=false` and `stream=true` (even if `store:true` was sent); sampling and bookkeeping
/// fields the backend rejects are deleted; legacy `functions`/`function_call` become
/// `tools`/`tool_choice`; Chat-style function tools are flattened and invalid ones dropped; a
/// `tool_choice` naming a missing tool becomes `"auto"`; the model is Codex-normalised;
/// `prompt_cache_key` is removed and returned; `include` gains `reasoning.encrypted_content`
/// when `reasoning` is present; input items are normalised (string input → a user message,
/// `system` → `developer`, `tool` → `function_call_output`, non-string text stringified,
/// `item_reference` dropped, `call_id` filled from `id`, item `id`s removed since nothing is
/// stored); Spark models lose `image_generation` tools. Then the forced-instructions template
/// (if any) is rendered, and `instructions` is guaranteed to be a string.
pub fn apply_codex_transform(
    body: &mut Map<String, Value>,
    opts: &CodexTransformOptions<'_>,
) -> Result<CodexTransformOutcome, AccountsError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .map_or_else(String::new, |m| normalize_codex_model(strip_sys_suffix(m)));
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("store".into(), Value::Bool(false));
    body.insert("stream".into(), Value::Bool(true));
    for field in CODEX_DROPPED_FIELDS {
        body.remove(*field);
    }

    convert_legacy_functions(body);
    normalize_tools(body);
    if model.to_ascii_lowercase().contains("spark")
        && let Some(Value::Array(tools)) = body.get_mut("tools")
    {
        tools.retain(|t| t.get("type").and_then(Value::as_str) != Some("image_generation"));
    }
    normalize_tool_choice(body);

    let prompt_cache_key = match body.remove("prompt_cache_key") {
        Some(Value::String(key)) => Some(key.trim().to_owned()).filter(|k| !k.is_empty()),
        _ => None,
    };

    if body.get("reasoning").is_some_and(|r| !r.is_null()) {
        ensure_include(body, ENCRYPTED_REASONING);
    }
    normalize_input(body);

    if let Some(template) = opts.forced_instructions_template {
        let existing = match body.get("instructions").and_then(Value::as_str) {
            Some(text) if !text.trim().is_empty() => text.to_owned(),
            _ => prompt_like_instructions(body),
        };
        let fields = TemplateFields {
            existing_instructions: &existing,
            original_model: opts.original_model,
            normalized_model: opts.normalized_model,
            billing_model: opts.billing_model,
            upstream_model: &model,
        };
        let rendered = render_instructions_template(template, &fields)?;
        let rendered = rendered.trim();
        if !rendered.is_empty() && rendered != existing {
            body.insert("instructions".into(), Value::String(rendered.to_owned()));
        }
    }
    if !body.get("instructions").is_some_and(Value::is_string) {
        body.insert("instructions".into(), Value::String(String::new()));
    }
    if opts.responses_lite {
        apply_responses_lite(body, &model)?;
    }

    Ok(CodexTransformOutcome {
        upstream_model: model,
        prompt_cache_key,
    })
}

/// Tool types the Responses Lite shape accepts.
const LITE_TOOL_TYPES: &[&str] = &["function", "custom"];

/// Rewrites a Codex body into the Responses Lite shape that the Codex backend requires for
/// some models (GPT-5.6 Sol/Terra/Luna; chosen by the catalog or the account):
///
/// - the tools move from top-level `tools` into an input item
///   `{type: "additional_tools", role: "developer", tools}` at the start of `input`;
/// - non-empty `instructions` become a developer message right after it; the top-level
///   field is removed;
/// - `parallel_tool_calls: false`, `reasoning.context: "all_turns"`;
/// - no `previous_response_id`, no image `detail`, a `tool_choice` naming one tool becomes
///   `"auto"` (the named tool is no longer top-level).
///
/// # Errors
///
/// [`AccountsError::LiteUnsupportedTool`] when a tool other than a function or custom tool
/// (hosted web search, file search, image generation) is declared: the backend would refuse
/// the request, so the client is told which tool and why.
pub fn apply_responses_lite(
    body: &mut Map<String, Value>,
    model: &str,
) -> Result<(), AccountsError> {
    let tools = match body.remove("tools") {
        Some(Value::Array(tools)) => tools,
        _ => Vec::new(),
    };
    if let Some(bad) = tools.iter().find(|t| {
        !t.get("type")
            .and_then(Value::as_str)
            .is_some_and(|k| LITE_TOOL_TYPES.contains(&k))
    }) {
        let kind = bad.get("type").and_then(Value::as_str).unwrap_or("unknown");
        return Err(AccountsError::LiteUnsupportedTool {
            tool: kind.to_owned(),
            model: model.to_owned(),
        });
    }
    let mut lead: Vec<Value> = Vec::new();
    if !tools.is_empty() {
        let mut item = Map::new();
        item.insert("type".into(), "additional_tools".into());
        item.insert("role".into(), "developer".into());
        item.insert("tools".into(), Value::Array(tools));
        lead.push(Value::Object(item));
    }
    if let Some(Value::String(text)) = body.remove("instructions")
        && !text.trim().is_empty()
    {
        let mut part = Map::new();
        part.insert("type".into(), "input_text".into());
        part.insert("text".into(), Value::String(text));
        let mut message = Map::new();
        message.insert("type".into(), "message".into());
        message.insert("role".into(), "developer".into());
        message.insert("content".into(), Value::Array(vec![Value::Object(part)]));
        lead.push(Value::Object(message));
    }
    let input = match body.remove("input") {
        Some(Value::Array(items)) => items,
        Some(other) if !other.is_null() => vec![other],
        _ => Vec::new(),
    };
    let mut items = lead;
    items.extend(input);
    for item in &mut items {
        strip_image_detail(item);
    }
    body.insert("input".into(), Value::Array(items));
    body.insert("parallel_tool_calls".into(), Value::Bool(false));
    let reasoning = body
        .entry("reasoning")
        .or_insert_with(|| Value::Object(Map::new()));
    if !reasoning.is_object() {
        *reasoning = Value::Object(Map::new());
    }
    if let Some(r) = reasoning.as_object_mut() {
        r.insert("context".into(), "all_turns".into());
    }
    body.remove("previous_response_id");
    if body.get("tool_choice").is_some_and(Value::is_object) {
        body.insert("tool_choice".into(), "auto".into());
    }
    Ok(())
}

/// Removes `detail` from the `input_image` parts of one input item.
fn strip_image_detail(item: &mut Value) {
    let Some(content) = item.get_mut("content").and_then(Value::as_array_mut) else {
        return;
    };
    for part in content {
        if part.get("type").and_then(Value::as_str) == Some("input_image")
            && let Some(obj) = part.as_object_mut()
        {
            obj.remove("detail");
        }
    }
}

fn convert_legacy_functions(body: &mut Map<String, Value>) {
    if let Some(functions) = body.remove("functions")
        && let Value::Array(functions) = functions
    {
        let tools = functions
            .into_iter()
            .map(|f| {
                let mut tool = Map::new();
                tool.insert("type".into(), "function".into());
                tool.insert("function".into(), f);
                Value::Object(tool)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(call) = body.remove("function_call") {
        match call {
            Value::String(mode) => {
                body.insert("tool_choice".into(), Value::String(mode));
            }
            Value::Object(obj) => {
                if let Some(name) = obj.get("name").and_then(Value::as_str)
                    && !name.trim().is_empty()
                {
                    let mut choice = Map::new();
                    choice.insert("type".into(), "function".into());
                    choice.insert("name".into(), name.into());
                    body.insert("tool_choice".into(), Value::Object(choice));
                }
            }
            _ => {}
        }
    }
}

/// Flattens Chat-style `{type:function, function:{…}}` tools and drops invalid function tools.
fn normalize_tools(body: &mut Map<String, Value>) {
    let Some(Value::Array(tools)) = body.get_mut("tools") else {
        return;
    };
    tools.retain_mut(|tool| {
        let Some(obj) = tool.as_object_mut() else {
            return true;
        };
        if obj.get("type").and_then(Value::as_str).map(str::trim) != Some("function") {
            return true;
        }
        if obj
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.trim().is_empty())
        {
            return true;
        }
        let Some(Value::Object(function)) = obj.remove("function") else {
            return false;
        };
        let Some(name) = function
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
        else {
            return false;
        };
        obj.insert("name".into(), name.into());
        for key in ["description", "parameters", "strict"] {
            if let Some(value) = function.get(key)
                && !obj.contains_key(key)
                && !value.is_null()
            {
                obj.insert(key.into(), value.clone());
            }
        }
        true
    });
}

/// A function choice without a (present) name, or a choice type with no matching tool → `"auto"`.
fn normalize_tool_choice(body: &mut Map<String, Value>) {
    let Some(Value::Object(choice)) = body.get("tool_choice") else {
        return;
    };
    let tools: Vec<&Map<String, Value>> = match body.get("tools") {
        Some(Value::Array(tools)) => tools.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    let kind = choice.get("type").and_then(Value::as_str).unwrap_or("");
    let replacement = if kind == "function" {
        let name = choice
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| {
                choice
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
            })
            .map(str::trim)
            .filter(|n| !n.is_empty());
        match name {
            Some(name)
                if tools.iter().any(|t| {
                    t.get("type").and_then(Value::as_str) == Some("function")
                        && t.get("name").and_then(Value::as_str) == Some(name)
                }) =>
            {
                let mut flat = Map::new();
                flat.insert("type".into(), "function".into());
                flat.insert("name".into(), name.into());
                Value::Object(flat)
            }
            _ => Value::String("auto".into()),
        }
    } else if kind == "allowed_tools"
        || tools
            .iter()
            .any(|t| t.get("type").and_then(Value::as_str) == Some(kind))
    {
        return;
    } else {
        Value::String("auto".into())
    };
    body.insert("tool_choice".into(), replacement);
}

fn ensure_include(body: &mut Map<String, Value>, wanted: &str) {
    let entry = body
        .entry("include")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(items) = entry
        && !items.iter().any(|v| v.as_str() == Some(wanted))
    {
        items.push(Value::String(wanted.to_owned()));
    }
}

fn is_call_item(kind: &str) -> bool {
    kind.ends_with("_call") || kind.ends_with("_call_output")
}

fn normalize_input(body: &mut Map<String, Value>) {
    let items = match body.remove("input") {
        Some(Value::Array(items)) => items,
        Some(Value::String(text)) => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                let mut msg = Map::new();
                msg.insert("type".into(), "message".into());
                msg.insert("role".into(), "user".into());
                msg.insert("content".into(), Value::String(text));
                vec![Value::Object(msg)]
            }
        }
        Some(other) => {
            body.insert("input".into(), other);
            return;
        }
        None => return,
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut obj) = item else {
            out.push(item);
            continue;
        };
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if kind == "item_reference" {
            continue;
        }
        let role = obj.get("role").and_then(Value::as_str).map(str::to_owned);
        if role.as_deref() == Some("tool") {
            obj = tool_message_to_output(&obj);
        } else if role.as_deref() == Some("system") {
            obj.insert("role".into(), "developer".into());
        }
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&kind)
            .to_owned();
        if is_call_item(&kind) {
            let has_call_id = obj
                .get("call_id")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.trim().is_empty());
            if !has_call_id
                && let Some(id) = obj
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|i| !i.trim().is_empty())
            {
                let id = id.to_owned();
                obj.insert("call_id".into(), Value::String(id));
            }
        } else {
            obj.remove("call_id");
        }
        obj.remove("id");
        if let Some(Value::Array(parts)) = obj.get_mut("content") {
            for part in parts.iter_mut() {
                if let Some(text) = part.get_mut("text")
                    && !text.is_string()
                    && !text.is_null()
                {
                    *text = Value::String(text.to_string());
                }
            }
        }
        out.push(Value::Object(obj));
    }
    body.insert("input".into(), Value::Array(out));
}

/// A Chat-style `role:"tool"` message → `function_call_output` (or a user message without an id).
fn tool_message_to_output(obj: &Map<String, Value>) -> Map<String, Value> {
    let call_id = ["call_id", "tool_call_id", "id"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let content = obj.get("content").cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    match call_id {
        Some(call_id) => {
            let output = match content {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => text_of(&other).unwrap_or_else(|| other.to_string()),
            };
            out.insert("type".into(), "function_call_output".into());
            out.insert("call_id".into(), Value::String(call_id));
            out.insert("output".into(), Value::String(output));
        }
        None => {
            out.insert("type".into(), "message".into());
            out.insert("role".into(), "user".into());
            out.insert("content".into(), content);
        }
    }
    out
}

/// The text of a message content: a string, or the joined `text` of its parts.
fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .filter(|t| !t.trim().is_empty())
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n\n"))
        }
        _ => None,
    }
}

/// The developer/system texts of the input, joined with blank lines.
fn prompt_like_instructions(body: &Map<String, Value>) -> String {
    let Some(Value::Array(items)) = body.get("input") else {
        return String::new();
    };
    items
        .iter()
        .filter(|item| {
            matches!(
                item.get("role").and_then(Value::as_str),
                Some("developer" | "system")
            )
        })
        .filter_map(|item| item.get("content").and_then(text_of))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The values a forced-instructions template can use.
#[derive(Clone, Copy, Debug, Default)]
pub struct TemplateFields<'a> {
    /// `{{ .ExistingInstructions }}`.
    pub existing_instructions: &'a str,
    /// `{{ .OriginalModel }}`.
    pub original_model: &'a str,
    /// `{{ .NormalizedModel }}`.
    pub normalized_model: &'a str,
    /// `{{ .BillingModel }}`.
    pub billing_model: &'a str,
    /// `{{ .UpstreamModel }}`.
    pub upstream_model: &'a str,
}

/// Renders a forced-instructions template: `{{ .Field }}` substitutions only (with Go-style
/// `{{-`/`-}}` whitespace trimming). An unknown field, any other action, or an unclosed `{{`
/// is an error, which aborts the request.
pub fn render_instructions_template(
    template: &str,
    fields: &TemplateFields<'_>,
) -> Result<String, AccountsError> {
    let mut out = String::with_capacity(template.len() + fields.existing_instructions.len());
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        if trim_next {
            literal = literal.trim_start();
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(AccountsError::Template {
                problem: "unclosed {{".into(),
            });
        };
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            literal = literal.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        out.push_str(literal);
        let value = match action.trim() {
            ".ExistingInstructions" => fields.existing_instructions,
            ".OriginalModel" => fields.original_model,
            ".NormalizedModel" => fields.normalized_model,
            ".BillingModel" => fields.billing_model,
            ".UpstreamModel" => fields.upstream_model,
            other => {
                return Err(AccountsError::Template {
                    problem: format!("unsupported action {{{{ {other} }}}}"),
                });
            }
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(if trim_next { rest.trim_start() } else { rest });
    Ok(out)
}

/// Inputs of [`build_upstream_headers`].
#[derive(Clone, Copy, Debug)]
pub struct UpstreamHeaderInput<'a> {
    /// The account's kind (OAuth gets the Codex identity).
    pub kind: AccountKind,
    /// The bearer credential (API key or OAuth access token).
    pub token: &'a Secret,
    /// The client's request headers (a whitelist is copied).
    pub client_headers: &'a HeaderMap,
    /// OAuth: the ChatGPT account id.
    pub chatgpt_account_id: Option<&'a str>,
    /// The isolated session id derived from the prompt cache key (gateway.md §1 step 21);
    /// `None` when there is no key.
    pub session_id: Option<&'a str>,
    /// A stored `x-codex-turn-state` to send when the client sent none (§1 step 24).
    pub turn_state: Option<&'a str>,
    /// `gateway.force_codex_cli`: present the Codex CLI user-agent.
    pub force_codex_cli: bool,
    /// OAuth: the Codex client version to present (the account's `codex_client_version`);
    /// `None` for [`CODEX_CLI_VERSION`].
    pub codex_client_version: Option<&'a str>,
    /// OAuth: ask for the Responses Lite shape ([`RESPONSES_LITE_HEADER`]`: true`).
    pub responses_lite: bool,
}

/// Client headers copied to the upstream request.
const COPIED_CLIENT_HEADERS: &[&str] = &[
    "accept-language",
    "content-type",
    "conversation_id",
    "user-agent",
    "originator",
    "session_id",
    "x-codex-turn-state",
    "x-codex-turn-metadata",
];

fn value(name: &'static str, text: &str) -> Result<HeaderValue, AccountsError> {
    HeaderValue::from_str(text).map_err(|_| AccountsError::InvalidHeader { name })
}

/// Builds the upstream request headers (gateway.md §4c and §1 steps 21–24).
///
/// All accounts: `authorization: Bearer …` (marked sensitive), the whitelisted client headers,
/// `content-type: application/json` when missing, `accept: text/event-stream`; with a session
/// id, `session_id` is set to it and a present `conversation_id` too.
///
/// OAuth: `chatgpt-account-id`; the client's `session_id`/`conversation_id` are replaced by the
/// derived id (`conversation_id` only when the client sent one); `OpenAI-Beta:
/// responses=experimental`; the identity is the client's when its user-agent names a Codex
/// originator and its version is at least [`CODEX_MIN_CLIENT_VERSION`] (an older one is
/// presented as the configured version), otherwise the canonical `codex_cli_rs/<version>`
/// with the configured version (default [`CODEX_CLI_VERSION`]), with `originator` and
/// `version` paired to the user-agent; with `responses_lite`, the Lite header.
///
/// Last, a stored turn state is set when the request has no `x-codex-turn-state` yet.
pub fn build_upstream_headers(input: &UpstreamHeaderInput<'_>) -> Result<HeaderMap, AccountsError> {
    let mut headers = HeaderMap::new();
    for name in COPIED_CLIENT_HEADERS {
        for v in input.client_headers.get_all(*name) {
            headers.append(HeaderName::from_static(name), v.clone());
        }
    }
    let mut auth = value("authorization", &format!("Bearer {}", input.token.expose()))?;
    auth.set_sensitive(true);
    headers.insert(AUTHORIZATION, auth);
    let presented = input
        .codex_client_version
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(CODEX_CLI_VERSION);
    if input.force_codex_cli {
        headers.insert(
            USER_AGENT,
            value("user-agent", &format!("{CODEX_ORIGINATOR}/{presented}"))?,
        );
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));

    let session = HeaderName::from_static("session_id");
    let conversation = HeaderName::from_static("conversation_id");
    match input.kind {
        AccountKind::Oauth => {
            if let Some(account_id) = input.chatgpt_account_id.filter(|a| !a.trim().is_empty()) {
                headers.insert(
                    HeaderName::from_static("chatgpt-account-id"),
                    value("chatgpt-account-id", account_id.trim())?,
                );
            }
            let client_sent_conversation = input.client_headers.contains_key(&conversation);
            headers.remove(&session);
            headers.remove(&conversation);
            if let Some(id) = input.session_id.filter(|s| !s.trim().is_empty()) {
                let id = value("session_id", id.trim())?;
                if client_sent_conversation {
                    headers.insert(conversation.clone(), id.clone());
                }
                headers.insert(session.clone(), id);
            }
            apply_codex_identity(&mut headers, presented)?;
            if input.responses_lite {
                headers.insert(
                    HeaderName::from_static(RESPONSES_LITE_HEADER),
                    HeaderValue::from_static("true"),
                );
            }
        }
        AccountKind::ApiKey | AccountKind::Simulated => {
            if let Some(id) = input.session_id.filter(|s| !s.trim().is_empty()) {
                let id = value("session_id", id.trim())?;
                if headers.contains_key(&conversation) {
                    headers.insert(conversation.clone(), id.clone());
                }
                headers.insert(session.clone(), id);
            }
        }
    }
    let turn_state = HeaderName::from_static("x-codex-turn-state");
    if let Some(state) = input.turn_state.filter(|s| !s.trim().is_empty())
        && !headers.contains_key(&turn_state)
    {
        headers.insert(turn_state, value("x-codex-turn-state", state.trim())?);
    }
    Ok(headers)
}

/// `ensure` + `enforce` of the Codex identity (gateway.md §4c): OpenAI-Beta set; originator,
/// user-agent and version paired; a Codex client's own version kept when it is at least
/// [`CODEX_MIN_CLIENT_VERSION`], else `presented`.
fn apply_codex_identity(headers: &mut HeaderMap, presented: &str) -> Result<(), AccountsError> {
    headers.insert(
        HeaderName::from_static("openai-beta"),
        HeaderValue::from_static("responses=experimental"),
    );
    let ua = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    let (first, tail) = ua.split_once(' ').unwrap_or((ua.as_str(), ""));
    let (name, version) = first.split_once('/').unwrap_or((first, ""));
    let (originator, user_agent, version) = if CODEX_ORIGINATORS.contains(&name) {
        let version = if version_at_least(version, CODEX_MIN_CLIENT_VERSION) {
            version.to_owned()
        } else {
            presented.to_owned()
        };
        let ua = if tail.is_empty() {
            format!("{name}/{version}")
        } else {
            format!("{name}/{version} {tail}")
        };
        (name.to_owned(), ua, version)
    } else {
        (
            CODEX_ORIGINATOR.to_owned(),
            format!("{CODEX_ORIGINATOR}/{presented}"),
            presented.to_owned(),
        )
    };
    headers.insert(USER_AGENT, value("user-agent", &user_agent)?);
    headers.insert(
        HeaderName::from_static("originator"),
        value("originator", &originator)?,
    );
    headers.insert(
        HeaderName::from_static("version"),
        value("version", &version)?,
    );
    Ok(())
}

/// True when dotted version `v` (pre-release suffix ignored) is ≥ `min`; false if unparsable.
pub(crate) fn version_at_least(v: &str, min: &str) -> bool {
    fn parts(v: &str) -> Option<Vec<u64>> {
        let core = v.split(['-', '+']).next()?;
        core.split('.').map(|p| p.parse().ok()).collect()
    }
    match (parts(v), parts(min)) {
        (Some(a), Some(b)) => {
            let len = a.len().max(b.len());
            let pad = |x: &[u64]| {
                (0..len)
                    .map(|i| x.get(i).copied().unwrap_or(0))
                    .collect::<Vec<_>>()
            };
            pad(&a) >= pad(&b)
        }
        _ => false,
    }
}
