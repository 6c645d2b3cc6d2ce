//! Tools and `tool_choice`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Cx, schema};
use crate::anthropic::{self, MessagesRequest};
use crate::responses::{
    self, FunctionTool, NamedToolChoice, ToolChoiceMode, UserLocation, WebSearchFilters,
    WebSearchTool,
};

/// What a client tool became upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToolKind {
    Function,
    WebSearch,
}

/// Converts `tools`; returns what each client tool name became.
pub(super) fn convert_tools(
    cx: &mut Cx,
    req: &MessagesRequest,
    out: &mut responses::Request,
) -> BTreeMap<String, ToolKind> {
    let mut kinds = BTreeMap::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        let path = format!("tools[{i}]");
        cx.cache_hint(&path, tool.cache_control.is_some());
        let kind = tool.kind.as_deref().unwrap_or("");
        let converted = if tool.is_custom() {
            for key in tool.extra.keys() {
                cx.drop(
                    format!("{path}.{key}"),
                    "tool_option",
                    "tool option is not supported",
                );
            }
            let (parameters, repairs) = schema::sanitize(tool.input_schema.as_ref());
            if !repairs.is_empty() {
                cx.drop(
                    format!("{path}.input_schema"),
                    "tool_schema",
                    repairs.join("; "),
                );
            }
            Some(function(cx, tool, tool.description.clone(), parameters))
        } else if kind.starts_with("web_search_") {
            Some(web_search(cx, &path, tool))
        } else if let Some((description, parameters)) = client_tool(kind, tool) {
            for key in tool.extra.keys() {
                if !(kind.starts_with("computer_")
                    && matches!(key.as_str(), "display_width_px" | "display_height_px"))
                {
                    cx.drop(
                        format!("{path}.{key}"),
                        "tool_option",
                        "tool option has no Responses equivalent",
                    );
                }
            }
            Some(function(cx, tool, Some(description), parameters))
        } else {
            cx.drop(
                path,
                "tool",
                format!("tool type {kind:?} has no Responses equivalent"),
            );
            None
        };
        if let Some(converted) = converted {
            let k = match converted {
                responses::Tool::WebSearch(_) => ToolKind::WebSearch,
                _ => ToolKind::Function,
            };
            kinds.insert(tool.name.clone(), k);
            out.tools.push(converted);
        }
    }
    kinds
}

fn function(
    cx: &Cx,
    tool: &anthropic::Tool,
    description: Option<String>,
    parameters: Value,
) -> responses::Tool {
    let name = cx.names.to_upstream(&tool.name).into_owned();
    responses::Tool::Function(FunctionTool::new(name, description, parameters))
}

fn web_search(cx: &mut Cx, path: &str, tool: &anthropic::Tool) -> responses::Tool {
    let mut out = WebSearchTool::default();
    for (key, value) in &tool.extra {
        match key.as_str() {
            "allowed_domains" => {
                let domains: Vec<String> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect();
                if !domains.is_empty() {
                    out.filters = Some(WebSearchFilters {
                        allowed_domains: domains,
                    });
                }
            }
            "user_location" => match serde_json::from_value::<UserLocation>(value.clone()) {
                Ok(location) => out.user_location = Some(location),
                Err(_) => cx.drop(
                    format!("{path}.{key}"),
                    "tool_option",
                    "invalid user_location",
                ),
            },
            _ if value.is_null() => {}
            _ => cx.drop(
                format!("{path}.{key}"),
                "tool_option",
                "web search option has no Responses equivalent",
            ),
        }
    }
    responses::Tool::WebSearch(out)
}

/// Description and input schema of Anthropic-defined tools that the client executes, so
/// they can be offered to the upstream model as ordinary functions.
fn client_tool(kind: &str, tool: &anthropic::Tool) -> Option<(String, Value)> {
    if kind.starts_with("bash_") {
        return Some((
            "Run a command in a persistent bash shell. Use `restart: true` to restart the shell."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The bash command to run."},
                    "restart": {"type": "boolean", "description": "Restart the shell instead of running a command."}
                }
            }),
        ));
    }
    if kind.starts_with("text_editor_") {
        return Some((
            "View, create and edit text files. `view` shows a file (optionally a line range) \
             or lists a directory; `create` writes `file_text` to a new file; `str_replace` \
             replaces the unique occurrence of `old_str` with `new_str`; `insert` inserts \
             text after line `insert_line`; `undo_edit` reverts the last edit (older versions)."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert", "undo_edit"]},
                    "path": {"type": "string", "description": "Absolute path of the file or directory."},
                    "file_text": {"type": "string", "description": "Content of the file to create."},
                    "old_str": {"type": "string", "description": "Exact text to replace."},
                    "new_str": {"type": "string", "description": "Replacement text (or, in older versions, the text to insert)."},
                    "insert_line": {"type": "integer", "description": "Line after which to insert (0 for the start)."},
                    "insert_text": {"type": "string", "description": "Text to insert."},
                    "view_range": {"type": "array", "items": {"type": "integer"}, "description": "First and last line to view (-1 for the end)."}
                },
                "required": ["command", "path"]
            }),
        ));
    }
    if kind.starts_with("memory_") {
        return Some((
            "Read and write files in the /memories directory that persist across conversations."
                .to_owned(),
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert", "delete", "rename"]},
                    "path": {"type": "string"},
                    "file_text": {"type": "string"},
                    "old_str": {"type": "string"},
                    "new_str": {"type": "string"},
                    "insert_line": {"type": "integer"},
                    "insert_text": {"type": "string"},
                    "view_range": {"type": "array", "items": {"type": "integer"}},
                    "old_path": {"type": "string"},
                    "new_path": {"type": "string"}
                },
                "required": ["command"]
            }),
        ));
    }
    if kind.starts_with("computer_") {
        let width = tool.extra.get("display_width_px").and_then(Value::as_u64);
        let height = tool.extra.get("display_height_px").and_then(Value::as_u64);
        let mut description =
            "Control the computer with the mouse and keyboard and take screenshots.".to_owned();
        if let (Some(w), Some(h)) = (width, height) {
            description.push_str(&format!(" The display is {w}x{h} pixels."));
        }
        return Some((
            description,
            json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": [
                        "key", "hold_key", "type", "cursor_position", "mouse_move",
                        "left_mouse_down", "left_mouse_up", "left_click", "left_click_drag",
                        "right_click", "middle_click", "double_click", "triple_click",
                        "scroll", "wait", "screenshot", "zoom"
                    ]},
                    "coordinate": {"type": "array", "items": {"type": "integer"}, "description": "[x, y] in pixels."},
                    "start_coordinate": {"type": "array", "items": {"type": "integer"}, "description": "[x, y] where a drag starts."},
                    "text": {"type": "string", "description": "Text to type or key combination to press."},
                    "scroll_direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
                    "scroll_amount": {"type": "integer"},
                    "duration": {"type": "number", "description": "Seconds to wait or hold."},
                    "region": {"type": "array", "items": {"type": "integer"}, "description": "[x1, y1, x2, y2] to zoom into."}
                },
                "required": ["action"]
            }),
        ));
    }
    None
}

/// Converts `tool_choice` and `disable_parallel_tool_use`.
pub(super) fn convert_tool_choice(
    cx: &mut Cx,
    req: &MessagesRequest,
    kinds: &BTreeMap<String, ToolKind>,
    out: &mut responses::Request,
) {
    let choice = req.tool_choice.as_ref();
    if out.tools.is_empty() {
        if matches!(
            choice,
            Some(anthropic::ToolChoice::Any { .. } | anthropic::ToolChoice::Tool { .. })
        ) {
            cx.drop("tool_choice", "tool_choice", "no tool to choose from");
        }
        return;
    }
    out.parallel_tool_calls = Some(
        !choice
            .and_then(anthropic::ToolChoice::disable_parallel_tool_use)
            .unwrap_or(false),
    );
    out.tool_choice = match choice {
        None => None,
        Some(anthropic::ToolChoice::Auto { .. }) => {
            Some(responses::ToolChoice::Mode(ToolChoiceMode::Auto))
        }
        Some(anthropic::ToolChoice::Any { .. }) => {
            Some(responses::ToolChoice::Mode(ToolChoiceMode::Required))
        }
        Some(anthropic::ToolChoice::None {}) => {
            Some(responses::ToolChoice::Mode(ToolChoiceMode::None))
        }
        Some(anthropic::ToolChoice::Tool { name, .. }) => match kinds.get(name) {
            Some(ToolKind::WebSearch) => {
                cx.drop(
                    "tool_choice.name",
                    "tool_choice",
                    "forcing web search is sent as `required`",
                );
                Some(responses::ToolChoice::Mode(ToolChoiceMode::Required))
            }
            _ => Some(responses::ToolChoice::Named(NamedToolChoice::Function {
                name: cx.names.to_upstream(name).into_owned(),
            })),
        },
        Some(anthropic::ToolChoice::Unknown(v)) => {
            let t = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            cx.drop(
                "tool_choice",
                "tool_choice",
                format!("tool_choice type {t:?} is not supported"),
            );
            None
        }
    };
}
