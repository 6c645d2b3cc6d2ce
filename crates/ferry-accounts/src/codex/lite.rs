//! The Responses Lite request shape that the Codex backend requires for some models: tools
//! and instructions moved into leading input items, and the fields Lite refuses removed.

use ferry_apicompat::responses::{
    self, InputContent, InputItem, MessageRole, Tool, ToolChoice, ToolChoiceMode,
};
use serde_json::{Map, Value};

use crate::error::AccountsError;

/// Tool types the Responses Lite shape accepts.
const LITE_TOOL_TYPES: &[&str] = &["function", "custom"];

/// Rewrites a Codex request into the Responses Lite shape that the Codex backend requires for
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
    req: &mut responses::Request,
    model: &str,
) -> Result<(), AccountsError> {
    if let Some(bad) = req
        .tools
        .iter()
        .map(tool_type)
        .find(|kind| !kind.is_some_and(|k| LITE_TOOL_TYPES.contains(&k)))
    {
        return Err(AccountsError::LiteUnsupportedTool {
            tool: bad.unwrap_or("unknown").to_owned(),
            model: model.to_owned(),
        });
    }
    let tools = std::mem::take(&mut req.tools);
    let mut lead: Vec<InputItem> = Vec::new();
    if !tools.is_empty() {
        lead.push(additional_tools(tools));
    }
    if let Some(text) = req.instructions.take()
        && !text.trim().is_empty()
    {
        lead.push(InputItem::message(
            MessageRole::Developer,
            vec![InputContent::input_text(text)],
        ));
    }
    let mut input = lead;
    input.append(&mut req.input);
    for item in &mut input {
        strip_image_detail(item);
    }
    req.input = input;
    req.parallel_tool_calls = Some(false);
    req.reasoning.get_or_insert_default().context = Some("all_turns".to_owned());
    req.previous_response_id = None;
    if req.tool_choice.as_ref().is_some_and(|c| match c {
        ToolChoice::Named(_) => true,
        ToolChoice::Other(v) => v.is_object(),
        _ => false,
    }) {
        req.tool_choice = Some(ToolChoice::Mode(ToolChoiceMode::Auto));
    }
    Ok(())
}

/// A tool's Responses `type`, `None` when an unmodelled tool has none.
pub(super) fn tool_type(tool: &Tool) -> Option<&str> {
    match tool {
        Tool::Function(_) => Some("function"),
        Tool::WebSearch(_) => Some("web_search"),
        Tool::Unknown(v) => v.get("type").and_then(Value::as_str),
        _ => None,
    }
}

/// The leading `additional_tools` input item that carries the tools under Lite.
fn additional_tools(tools: Vec<Tool>) -> InputItem {
    let tools = tools
        .into_iter()
        .map(|tool| match tool {
            Tool::Unknown(v) => v,
            // A modelled tool always serialises (its fields are strings, bools and JSON).
            tool => serde_json::to_value(tool).unwrap_or(Value::Null),
        })
        .collect();
    let mut item = Map::new();
    item.insert("type".into(), "additional_tools".into());
    item.insert("role".into(), "developer".into());
    item.insert("tools".into(), Value::Array(tools));
    InputItem::Unknown(Value::Object(item))
}

/// Removes `detail` from the `input_image` parts of a message.
fn strip_image_detail(item: &mut InputItem) {
    let InputItem::Message(message) = item else {
        return;
    };
    for part in &mut message.content {
        match part {
            InputContent::InputImage { detail, .. } => *detail = None,
            InputContent::Unknown(Value::Object(obj))
                if obj.get("type").and_then(Value::as_str) == Some("input_image") =>
            {
                obj.remove("detail");
            }
            _ => {}
        }
    }
}
