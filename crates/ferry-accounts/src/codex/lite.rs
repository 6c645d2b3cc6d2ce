//! The Responses Lite request shape that the Codex backend requires for some models: tools
//! and instructions moved into leading input items, and the fields Lite refuses removed.

use serde_json::{Map, Value};

use crate::error::AccountsError;

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
