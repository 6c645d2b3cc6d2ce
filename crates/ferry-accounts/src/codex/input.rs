//! Normalisation of a Codex body's `input` items (part of the Codex transform): string input
//! to a user message, Chat-style roles to Responses items, call ids filled, stored ids
//! dropped; and the developer/system texts the instructions template falls back to.

use serde_json::{Map, Value};

fn is_call_item(kind: &str) -> bool {
    kind.ends_with("_call") || kind.ends_with("_call_output")
}

pub(super) fn normalize_input(body: &mut Map<String, Value>) {
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
pub(super) fn prompt_like_instructions(body: &Map<String, Value>) -> String {
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
