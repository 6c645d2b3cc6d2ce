//! The OAuth Codex request transform: a Responses request
//! rewritten for the ChatGPT Codex backend, then the forced-instructions template and, when
//! asked, the Responses Lite shape.

use ferry_apicompat::responses::{self, NamedToolChoice, Tool, ToolChoice, ToolChoiceMode};
use serde_json::Value;

use super::input::{drop_item_ids, prompt_like_instructions};
use super::lite::{apply_responses_lite, tool_type};
use super::template::{TemplateFields, render_instructions_template};
use crate::error::AccountsError;
use crate::model::{normalize_codex_model, strip_sys_suffix};

/// Inputs of [`apply_codex_transform`] besides the request.
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
    /// Rewrite the request into the Responses Lite shape ([`apply_responses_lite`]).
    pub responses_lite: bool,
}

/// What [`apply_codex_transform`] reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodexTransformOutcome {
    /// The model now in the request (Codex-normalised); adopt it as the upstream model.
    pub upstream_model: String,
    /// The request's `prompt_cache_key` (trimmed, non-empty), removed from the request: OAuth
    /// carries the key in headers only.
    pub prompt_cache_key: Option<String>,
}

/// Fields the Codex backend rejects that [`responses::Request`] does not model: removed
/// from [`responses::Request::extra`] (the modelled ones are cleared by name).
const CODEX_DROPPED_EXTRA_FIELDS: &[&str] = &[
    "max_completion_tokens",
    "frequency_penalty",
    "presence_penalty",
    "prompt_cache_retention",
    "stream_options",
];

const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// Rewrites a Responses request for the ChatGPT Codex backend (OAuth accounts).
///
/// `store=false` and `stream=true` (even if `store:true` was sent); sampling and bookkeeping
/// fields the backend rejects are deleted; a `tool_choice` naming a missing tool becomes
/// `"auto"`; the model is Codex-normalised; `prompt_cache_key` is removed and returned;
/// `include` gains `reasoning.encrypted_content` when `reasoning` is present; input item `id`s
/// are removed since nothing is stored; Spark models lose `image_generation` tools. Then the
/// forced-instructions template (if any) is rendered, and `instructions` is guaranteed to be
/// set (empty when there is none). Last, with `responses_lite`, [`apply_responses_lite`].
pub fn apply_codex_transform(
    req: &mut responses::Request,
    opts: &CodexTransformOptions<'_>,
) -> Result<CodexTransformOutcome, AccountsError> {
    let model = normalize_codex_model(strip_sys_suffix(&req.model));
    req.model.clone_from(&model);
    req.store = Some(false);
    req.stream = Some(true);
    req.max_output_tokens = None;
    req.temperature = None;
    req.top_p = None;
    req.metadata = None;
    req.user = None;
    req.safety_identifier = None;
    for field in CODEX_DROPPED_EXTRA_FIELDS {
        req.extra.remove(*field);
    }

    if model.to_ascii_lowercase().contains("spark") {
        req.tools
            .retain(|t| tool_type(t) != Some("image_generation"));
    }
    normalize_tool_choice(req);

    let prompt_cache_key = req
        .prompt_cache_key
        .take()
        .map(|key| key.trim().to_owned())
        .filter(|k| !k.is_empty());

    if req.reasoning.is_some() && !req.include.iter().any(|i| i == ENCRYPTED_REASONING) {
        req.include.push(ENCRYPTED_REASONING.to_owned());
    }
    drop_item_ids(&mut req.input);

    if let Some(template) = opts.forced_instructions_template {
        let existing = match req.instructions.as_deref() {
            Some(text) if !text.trim().is_empty() => text.to_owned(),
            _ => prompt_like_instructions(&req.input),
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
            req.instructions = Some(rendered.to_owned());
        }
    }
    req.instructions.get_or_insert_with(String::new);
    if opts.responses_lite {
        apply_responses_lite(req, &model)?;
    }

    Ok(CodexTransformOutcome {
        upstream_model: model,
        prompt_cache_key,
    })
}

/// A tool's name: a function tool's, or the `name` of an unmodelled one.
fn tool_name(tool: &Tool) -> Option<&str> {
    match tool {
        Tool::Function(f) => Some(&f.name),
        Tool::Unknown(v) => v.get("name").and_then(Value::as_str),
        _ => None,
    }
}

/// A function choice without a (present) name, or a choice type with no matching tool → `"auto"`.
fn normalize_tool_choice(req: &mut responses::Request) {
    let auto = Some(ToolChoice::Mode(ToolChoiceMode::Auto));
    match &req.tool_choice {
        Some(ToolChoice::Named(NamedToolChoice::Function { name })) => {
            let name = name.trim();
            let declared = !name.is_empty()
                && req
                    .tools
                    .iter()
                    .any(|t| tool_type(t) == Some("function") && tool_name(t) == Some(name));
            req.tool_choice = if declared {
                Some(ToolChoice::Named(NamedToolChoice::Function {
                    name: name.to_owned(),
                }))
            } else {
                auto
            };
        }
        Some(ToolChoice::Other(Value::Object(choice))) => {
            let kind = choice.get("type").and_then(Value::as_str).unwrap_or("");
            // A function choice that did not parse as named has no usable name.
            let keep = kind != "function"
                && (kind == "allowed_tools"
                    || req.tools.iter().any(|t| tool_type(t) == Some(kind)));
            if !keep {
                req.tool_choice = auto;
            }
        }
        _ => {}
    }
}
