//! Tool calls: streaming their arguments into `tool_use` blocks.

use super::StreamConverter;
use super::state::{BlockKind, ItemKind, PartKey};
use crate::anthropic::StreamEvent as Out;
use crate::convert::ItemRef;
use crate::convert::response::{READ_TOOL, is_json_object, read_arguments};

impl StreamConverter {
    /// The tool block of item `i`, created on first use.
    pub(super) fn tool_block(&mut self, i: usize) -> usize {
        self.has_tool_use = true;
        match self.items[i].block {
            Some(b) => b,
            None => self.new_block(i, BlockKind::ToolUse, None),
        }
    }

    pub(super) fn arguments_delta(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        delta: &str,
        out: &mut Vec<Out>,
    ) {
        let Some(i) = self.delta_item(at, kind, delta, out) else {
            return;
        };
        let b = self.tool_block(i);
        self.part(i, PartKey::Arguments).push(delta);
        let item = &mut self.items[i];
        match item.kind {
            ItemKind::FunctionCall if item.name == READ_TOOL => item.held.push_str(delta),
            ItemKind::CustomToolCall => {
                let mut fragment = String::with_capacity(delta.len() + 12);
                if !item.json_opened {
                    item.json_opened = true;
                    fragment.push_str("{\"input\":\"");
                }
                push_json_escaped(&mut fragment, delta);
                self.push_content(b, &fragment, out);
            }
            _ => self.push_content(b, delta, out),
        }
        self.advance(out);
    }

    /// The tool call of item `i` is complete, with `full` arguments (or input) when known:
    /// emits what the client has not seen and lets the block close.
    pub(super) fn finish_tool(&mut self, i: usize, full: Option<&str>, out: &mut Vec<Out>) {
        if self.items[i].done || !self.items[i].kind.is_tool() {
            return;
        }
        let b = self.tool_block(i);
        let emitted = *self.part(i, PartKey::Arguments);
        let pending = self.items[i].pending_arguments.take();
        let full = full.filter(|f| !f.is_empty()).or(pending.as_deref());
        self.mark_done(i);
        let item = &mut self.items[i];
        let rest: Option<String> = match item.kind {
            // Read arguments are held back until complete (unless some went out before the
            // tool's name was known).
            ItemKind::FunctionCall if item.name == READ_TOOL && item.held.len() == emitted.len => {
                let args = full.unwrap_or(item.held.as_str());
                read_arguments(args)
            }
            ItemKind::FunctionCall => match full.and_then(|f| emitted.missing(f)) {
                // Nothing emitted yet: send the whole arguments only if they are an object,
                // so that the client never sees invalid input (it gets `{}` instead).
                Some(all) if emitted.len == 0 => is_json_object(all).then(|| all.to_owned()),
                Some(missing) => Some(missing.to_owned()),
                None => None,
            },
            ItemKind::CustomToolCall => {
                let missing = full.and_then(|f| emitted.missing(f)).unwrap_or_default();
                let mut fragment = String::with_capacity(missing.len() + 14);
                if !item.json_opened {
                    item.json_opened = true;
                    fragment.push_str("{\"input\":\"");
                }
                push_json_escaped(&mut fragment, missing);
                fragment.push_str("\"}");
                Some(fragment)
            }
            _ => None,
        };
        if let Some(rest) = rest {
            self.push_content(b, &rest, out);
        }
        self.blocks[b].done = true;
        self.advance(out);
    }
}

/// Appends `s` escaped as the inside of a JSON string.
pub(super) fn push_json_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
}
