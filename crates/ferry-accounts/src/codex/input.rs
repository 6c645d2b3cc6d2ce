//! The `input` items of a Codex request (part of the Codex transform): item ids dropped,
//! since nothing is stored; and the developer/system texts the instructions template falls
//! back to.

use ferry_apicompat::responses::{InputContent, InputItem, MessageRole};

/// Removes the item ids: with `store: false` the backend has nothing to look them up in.
pub(super) fn drop_item_ids(input: &mut [InputItem]) {
    for item in input {
        match item {
            InputItem::Message(m) => m.id = None,
            InputItem::FunctionCall(c) => c.id = None,
            InputItem::FunctionCallOutput(o) => o.id = None,
            InputItem::Reasoning(r) => r.id = None,
            _ => {}
        }
    }
}

/// The developer/system texts of the input, joined with blank lines: per message, its
/// non-blank text parts joined with blank lines; messages without text are skipped.
pub(super) fn prompt_like_instructions(input: &[InputItem]) -> String {
    input
        .iter()
        .filter_map(|item| match item {
            InputItem::Message(m)
                if matches!(m.role, MessageRole::Developer | MessageRole::System) =>
            {
                text_of(&m.content)
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The joined non-blank texts of a message's parts, `None` when there is none.
fn text_of(parts: &[InputContent]) -> Option<String> {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            InputContent::InputText { text } | InputContent::OutputText { text, .. } => {
                Some(text.as_str())
            }
            InputContent::Unknown(v) => v.get("text").and_then(serde_json::Value::as_str),
            _ => None,
        })
        .filter(|t| !t.trim().is_empty())
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}
