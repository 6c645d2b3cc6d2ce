//! The OAuth Codex body transform (gateway.md §4b and §1 step 15): a Responses request body
//! rewritten for the ChatGPT Codex backend, then the forced-instructions template and, when
//! asked, the Responses Lite shape.

use serde_json::{Map, Value};

use super::input::{normalize_input, prompt_like_instructions};
use super::lite::apply_responses_lite;
use super::template::{TemplateFields, render_instructions_template};
use crate::error::AccountsError;
use crate::model::{normalize_codex_model, strip_sys_suffix};

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
