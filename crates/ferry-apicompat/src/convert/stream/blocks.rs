//! Content into blocks: the queue of Anthropic blocks, one open at a time.

use serde_json::Value;

use super::StreamConverter;
use super::state::{Block, BlockKind, ItemKind, PartKey};
use crate::anthropic::{self, ContentBlock, ContentDelta, StreamEvent as Out};
use crate::convert::response::{SUMMARY_SEPARATOR, call_id};
use crate::convert::{ItemRef, stop};

impl StreamConverter {
    pub(super) fn content_delta(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        key: PartKey,
        delta: &str,
        out: &mut Vec<Out>,
    ) {
        let Some(i) = self.delta_item(at, kind, delta, out) else {
            return;
        };
        self.emit_part(i, key, delta, out);
    }

    pub(super) fn content_done(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        key: PartKey,
        full: &str,
        out: &mut Vec<Out>,
    ) {
        self.ensure_started(out);
        let i = self.item_for(at, kind);
        if self.items[i].done {
            return;
        }
        self.reconcile(i, key, full, out);
    }

    /// Emits what of `full` has not reached the client for this part. If what was emitted
    /// is not a prefix of `full`, nothing can be corrected and nothing is emitted.
    pub(super) fn reconcile(&mut self, i: usize, key: PartKey, full: &str, out: &mut Vec<Out>) {
        let emitted = *self.part(i, key);
        if let Some(missing) = emitted.missing(full)
            && !missing.is_empty()
        {
            self.emit_part(i, key, missing, out);
        }
    }

    /// Emits text of a message or reasoning part into the item's open (or a new) block.
    pub(super) fn emit_part(&mut self, i: usize, key: PartKey, text: &str, out: &mut Vec<Out>) {
        let first_of_part = self.part(i, key).len == 0;
        let other_parts_emitted = self.items[i]
            .parts
            .iter()
            .any(|(k, e)| *k != key && e.len > 0 && matches!(k, PartKey::Summary(_)));
        self.part(i, key).push(text);
        let (block_kind, separator) = match key {
            PartKey::Summary(_) => (BlockKind::Thinking, first_of_part && other_parts_emitted),
            PartKey::ReasoningText(_) => (BlockKind::Thinking, false),
            _ => (BlockKind::Text, false),
        };
        let b = self.content_block(i, block_kind);
        if separator {
            self.push_content(b, SUMMARY_SEPARATOR, out);
        }
        if block_kind == BlockKind::Text {
            self.push_text(b, text, out);
        } else {
            self.push_content(b, text, out);
        }
        self.advance(out);
    }

    /// The item's block of `kind` that can still take content, or a new one.
    pub(super) fn content_block(&mut self, i: usize, kind: BlockKind) -> usize {
        if let Some(b) = self.items[i].block {
            let block = &self.blocks[b];
            if block.kind == kind && !block.done && !block.closed {
                return b;
            }
        }
        self.new_block(i, kind, None)
    }

    /// Appends a block (the caller then runs [`advance`](Self::advance)).
    pub(super) fn new_block(
        &mut self,
        item: usize,
        kind: BlockKind,
        payload: Option<ContentBlock>,
    ) -> usize {
        self.blocks.push(Block {
            item,
            kind,
            started: false,
            closed: false,
            done: matches!(kind, BlockKind::Fixed),
            index: 0,
            buffer: String::new(),
            held: String::new(),
            signature: None,
            payload,
        });
        let b = self.blocks.len() - 1;
        self.items[item].block = Some(b);
        b
    }

    /// Sends `text` as a delta of block `b` if it is open, else buffers it.
    pub(super) fn push_content(&mut self, b: usize, text: &str, out: &mut Vec<Out>) {
        if text.is_empty() {
            return;
        }
        let block = &mut self.blocks[b];
        if block.started && !block.closed {
            out.push(Out::ContentBlockDelta {
                index: block.index,
                delta: delta(block.kind, text.to_owned()),
            });
        } else {
            block.buffer.push_str(text);
        }
    }

    /// Sends message text, cut at the first stop sequence: text that may be the start of
    /// one is held back until the next text shows it is not (or the block ends).
    pub(super) fn push_text(&mut self, b: usize, text: &str, out: &mut Vec<Out>) {
        if self.opts.stop_sequences.is_empty() {
            self.push_content(b, text, out);
            return;
        }
        if self.stopped.is_some() {
            return;
        }
        let mut pending = std::mem::take(&mut self.blocks[b].held);
        pending.push_str(text);
        match stop::find(&pending, &self.opts.stop_sequences) {
            Some((at, seq)) => {
                pending.truncate(at);
                self.stopped = Some((seq.to_owned(), b));
                self.push_content(b, &pending, out);
            }
            None => {
                let keep = stop::possible_start(&pending, &self.opts.stop_sequences);
                let held = pending.split_off(pending.len() - keep);
                self.push_content(b, &pending, out);
                self.blocks[b].held = held;
            }
        }
    }

    /// Starts and closes blocks from the head as far as possible.
    pub(super) fn advance(&mut self, out: &mut Vec<Out>) {
        while self.head < self.blocks.len() {
            let b = self.head;
            if !self.blocks[b].started {
                let item = &self.items[self.blocks[b].item];
                let waiting_for_name = self.blocks[b].kind == BlockKind::ToolUse
                    && item.name.is_empty()
                    && !self.blocks[b].done;
                if waiting_for_name {
                    return;
                }
                self.start_block(b, out);
            }
            // A live text or thinking block ends once a later block exists: the upstream
            // moved on. Queued blocks keep taking content until they are live.
            let later = b + 1 < self.blocks.len();
            let block = &mut self.blocks[b];
            if later && matches!(block.kind, BlockKind::Text | BlockKind::Thinking) {
                block.done = true;
            }
            if !block.done {
                return;
            }
            if !block.held.is_empty() {
                out.push(Out::ContentBlockDelta {
                    index: block.index,
                    delta: delta(block.kind, std::mem::take(&mut block.held)),
                });
            }
            if let Some(signature) = block.signature.take() {
                out.push(Out::ContentBlockDelta {
                    index: block.index,
                    delta: ContentDelta::SignatureDelta { signature },
                });
            }
            block.closed = true;
            out.push(Out::ContentBlockStop { index: block.index });
            self.head += 1;
        }
    }

    pub(super) fn start_block(&mut self, b: usize, out: &mut Vec<Out>) {
        self.ensure_started(out);
        let index = self.next_index;
        self.next_index += 1;
        self.started_output = true;
        let item = &self.items[self.blocks[b].item];
        let block = &mut self.blocks[b];
        let content_block = match block.kind {
            BlockKind::Text => ContentBlock::text(""),
            BlockKind::Thinking => ContentBlock::Thinking(anthropic::ThinkingBlock {
                thinking: String::new(),
                signature: Some(String::new()),
            }),
            BlockKind::ToolUse => ContentBlock::ToolUse(anthropic::ToolUseBlock {
                id: self
                    .opts
                    .tool_names
                    .call_id_to_client(&call_id(
                        &item.call_id,
                        item.id.as_deref().unwrap_or_default(),
                        index as usize,
                    ))
                    .into_owned(),
                name: item.name.clone(),
                input: Value::Object(serde_json::Map::new()),
                cache_control: None,
                input_json: None,
            }),
            BlockKind::ServerToolUse | BlockKind::Fixed => block
                .payload
                .take()
                .unwrap_or_else(|| ContentBlock::text("")),
        };
        block.started = true;
        block.index = index;
        out.push(Out::ContentBlockStart {
            index,
            content_block,
        });
        if !block.buffer.is_empty() {
            let buffered = std::mem::take(&mut block.buffer);
            out.push(Out::ContentBlockDelta {
                index,
                delta: delta(block.kind, buffered),
            });
        }
    }
}

pub(super) fn delta(kind: BlockKind, text: String) -> ContentDelta {
    match kind {
        BlockKind::Thinking => ContentDelta::ThinkingDelta { thinking: text },
        BlockKind::ToolUse | BlockKind::ServerToolUse => {
            ContentDelta::InputJsonDelta { partial_json: text }
        }
        BlockKind::Text | BlockKind::Fixed => ContentDelta::TextDelta { text },
    }
}
