//! Finding the item an event is about, and completing items from their final payloads.

use serde_json::Value;

use super::StreamConverter;
use super::state::{BlockKind, Emitted, Item, ItemKind, PartKey};
use crate::anthropic::{self, ContentBlock, StreamEvent as Out};
use crate::convert::response::{
    encrypted, server_tool_id, unexpressible, unexpressible_dropped, unexpressible_notice,
    web_search_result,
};
use crate::convert::{ItemRef, Seen};
use crate::responses;

impl StreamConverter {
    /// The item an event refers to (see [`ItemIndex::locate`]), created when new.
    pub(super) fn item_for(&mut self, at: ItemRef<'_>, kind: ItemKind) -> usize {
        self.locate(at, kind, Seen::Content)
    }

    /// The item a non-empty delta goes to, or `None` when the delta is empty or its item is
    /// already done (a late delta). The message starts first either way.
    pub(super) fn delta_item(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        delta: &str,
        out: &mut Vec<Out>,
    ) -> Option<usize> {
        self.ensure_started(out);
        if delta.is_empty() {
            return None;
        }
        let i = self.item_for(at, kind);
        (!self.items[i].done).then_some(i)
    }

    pub(super) fn locate(&mut self, mut at: ItemRef<'_>, kind: ItemKind, seen: Seen) -> usize {
        if at.kind.is_none() {
            at.kind = kind.type_name();
        }
        let i = self.index.locate(at, seen);
        if i == self.items.len() {
            self.items.push(Item::new(kind, at));
        }
        let item = &mut self.items[i];
        if item.id.is_none() {
            item.id = at.id.map(str::to_owned);
        }
        if item.output_index.is_none() {
            item.output_index = at.output_index;
        }
        if item.call_id.is_empty()
            && let Some(call_id) = at.call_id
        {
            item.call_id = call_id.to_owned();
        }
        i
    }

    /// Marks item `i` complete (later content for it is ignored).
    pub(super) fn mark_done(&mut self, i: usize) {
        self.items[i].done = true;
        self.index.mark_done(i);
    }

    pub(super) fn set_name(&mut self, item: usize, upstream_name: &str) {
        if !upstream_name.is_empty() && self.items[item].name.is_empty() {
            self.items[item].name = self.opts.tool_names.to_client(upstream_name).into_owned();
        }
    }

    pub(super) fn set_call_id(&mut self, item: usize, call_id: &str) {
        if !call_id.is_empty() && self.items[item].call_id.is_empty() {
            self.items[item].call_id = call_id.to_owned();
        }
    }

    pub(super) fn item_added(
        &mut self,
        output_index: Option<u32>,
        item: &responses::OutputItem,
        out: &mut Vec<Out>,
    ) {
        use responses::OutputItem as O;
        let at = ItemRef::item(item, output_index);
        let i = self.locate(at, ItemKind::of(item), Seen::Added);
        match item {
            O::Reasoning(r) => self.note_encrypted(i, r.encrypted_content.as_deref()),
            O::FunctionCall(f) => {
                self.set_call_id(i, &f.call_id);
                self.set_name(i, &f.name);
                self.tool_block(i);
                self.advance(out);
            }
            O::CustomToolCall(c) => {
                self.set_call_id(i, &c.call_id);
                self.set_name(i, &c.name);
                self.tool_block(i);
                self.advance(out);
            }
            O::Message(_) | O::WebSearchCall(_) | O::Unknown(_) => {}
        }
    }

    pub(super) fn item_done(
        &mut self,
        output_index: Option<u32>,
        item: &responses::OutputItem,
        out: &mut Vec<Out>,
    ) {
        let i = self.item_for(ItemRef::item(item, output_index), ItemKind::of(item));
        self.complete_item(i, item, out);
    }

    /// Reconciles item `i` with its complete payload and ends it.
    pub(super) fn complete_item(
        &mut self,
        i: usize,
        item: &responses::OutputItem,
        out: &mut Vec<Out>,
    ) {
        use responses::OutputItem as O;
        match item {
            O::Message(m) => {
                for (ci, part) in (0u32..).zip(&m.content) {
                    match part {
                        responses::OutputContent::OutputText { text, .. } => {
                            self.reconcile(i, PartKey::Text(ci), text, out);
                        }
                        responses::OutputContent::Refusal { refusal } => {
                            self.refusal = true;
                            self.reconcile(i, PartKey::Refusal(ci), refusal, out);
                        }
                        responses::OutputContent::Unknown(_) => {}
                    }
                }
                self.finish_plain(i, out);
            }
            O::Reasoning(r) => {
                self.note_encrypted(i, r.encrypted_content.as_deref());
                for (si, part) in (0u32..).zip(&r.summary) {
                    if let responses::SummaryPart::SummaryText { text } = part {
                        self.reconcile(i, PartKey::Summary(si), text, out);
                    }
                }
                for (ci, part) in (0u32..).zip(r.content.iter().flatten()) {
                    if let responses::ReasoningContent::ReasoningText { text } = part {
                        self.reconcile(i, PartKey::ReasoningText(ci), text, out);
                    }
                }
                self.finish_reasoning(i, out);
            }
            O::FunctionCall(f) => {
                self.set_call_id(i, &f.call_id);
                self.set_name(i, &f.name);
                self.finish_tool(i, Some(&f.arguments), out);
            }
            O::CustomToolCall(c) => {
                self.set_call_id(i, &c.call_id);
                self.set_name(i, &c.name);
                self.finish_tool(i, Some(&c.input), out);
            }
            // Browsing steps of a search (`open_page`, `find_in_page`) are not searches.
            O::WebSearchCall(w) if !w.is_search() => self.mark_done(i),
            O::WebSearchCall(w) => {
                let it = &mut self.items[i];
                if it.query.is_none() {
                    it.query = Some(w.search_query());
                }
                if it.status.is_none() {
                    it.status = w.status.clone();
                }
                self.finish_web_search(i, out);
            }
            O::Unknown(v) => {
                if self.items[i].done {
                    return;
                }
                self.mark_done(i);
                if let Some(kind) = unexpressible(v) {
                    let position = self.items[i].output_index.map_or(i, |p| p as usize);
                    self.dropped.push(unexpressible_dropped(position, kind));
                    self.unexpressed.push(kind.to_owned());
                    // A text block like any other: it starts empty, the notice is its delta.
                    let b = self.new_block(i, BlockKind::Text, None);
                    self.push_content(b, &unexpressible_notice(kind), out);
                    self.blocks[b].done = true;
                    self.advance(out);
                }
            }
        }
    }

    pub(super) fn note_encrypted(&mut self, i: usize, enc: Option<&str>) {
        if let Some(enc) = encrypted(enc) {
            self.items[i].encrypted = Some(enc.to_owned());
        }
    }

    pub(super) fn part(&mut self, i: usize, key: PartKey) -> &mut Emitted {
        let parts = &mut self.items[i].parts;
        let pos = match parts.iter().position(|(k, _)| *k == key) {
            Some(pos) => pos,
            None => {
                parts.push((key, Emitted::EMPTY));
                parts.len() - 1
            }
        };
        &mut parts[pos].1
    }

    /// A message item is complete: its block may close.
    pub(super) fn finish_plain(&mut self, i: usize, out: &mut Vec<Out>) {
        if self.items[i].done {
            return;
        }
        self.mark_done(i);
        if let Some(b) = self.items[i].block {
            self.blocks[b].done = true;
        }
        self.advance(out);
    }

    /// A reasoning item is complete: its thinking block gets the encrypted reasoning as
    /// signature and may close; without a block that can take it, the ciphertext goes into a
    /// `redacted_thinking` block.
    pub(super) fn finish_reasoning(&mut self, i: usize, out: &mut Vec<Out>) {
        if self.items[i].done {
            return;
        }
        self.mark_done(i);
        let enc = self.items[i].encrypted.clone();
        let open_thinking = self.items[i]
            .block
            .filter(|&b| self.blocks[b].kind == BlockKind::Thinking && !self.blocks[b].closed);
        match (open_thinking, enc) {
            (Some(b), enc) => {
                self.blocks[b].signature = enc;
                self.blocks[b].done = true;
            }
            (None, Some(data)) => {
                let payload =
                    ContentBlock::RedactedThinking(anthropic::RedactedThinkingBlock { data });
                self.new_block(i, BlockKind::Fixed, Some(payload));
            }
            (None, None) => {}
        }
        self.advance(out);
    }

    pub(super) fn finish_web_search(&mut self, i: usize, out: &mut Vec<Out>) {
        if self.items[i].done {
            return;
        }
        self.mark_done(i);
        self.searches += 1;
        let item = &self.items[i];
        let position = item.output_index.map_or(i, |p| p as usize);
        let id = server_tool_id(item.id.as_deref().unwrap_or_default(), position);
        let query = serde_json::json!({ "query": item.query.clone().unwrap_or_default() });
        let status = item.status.clone();
        let call = ContentBlock::ServerToolUse(anthropic::ServerToolUseBlock {
            id: id.clone(),
            name: "web_search".to_owned(),
            input: Value::Object(serde_json::Map::new()),
        });
        let b = self.new_block(i, BlockKind::ServerToolUse, Some(call));
        self.push_content(b, &query.to_string(), out);
        self.blocks[b].done = true;
        self.new_block(
            i,
            BlockKind::Fixed,
            Some(web_search_result(id, status.as_ref())),
        );
        self.advance(out);
    }
}
