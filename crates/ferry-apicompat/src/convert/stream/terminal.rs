//! The terminal event: reconciling the final response and ending the message.

use super::StreamConverter;
use super::state::{Item, ItemKind};
use crate::anthropic::{self, StreamEvent as Out};
use crate::convert::ItemRef;
use crate::convert::response::{ending, only_unexpressible, server_tool_use};
use crate::responses;

impl StreamConverter {
    pub(super) fn terminal(
        &mut self,
        t: &responses::TerminalEvent,
        implied: &responses::ResponseStatus,
        out: &mut Vec<Out>,
    ) {
        let resp = &t.response;
        self.note_response_id(&resp.id);
        if let Some(u) = resp.usage.as_ref().or(t.usage.as_ref()) {
            (self.usage, self.usage_implausible) = crate::convert::response::checked_usage(u);
        }
        let fixed_stop = match ending(resp.status.as_ref(), implied, resp) {
            Ok(stop) => stop,
            Err(failure) => {
                self.fail(failure, out);
                return;
            }
        };
        self.ensure_started(out);

        if let Some((_, b)) = &self.stopped {
            // Nothing after the stop sequence reaches the client.
            self.blocks.truncate(b + 1);
        }
        let pairs = if self.stopped.is_some() {
            Vec::new()
        } else {
            self.index.match_terminal(&resp.output)
        };
        for (item, pair) in resp.output.iter().zip(pairs) {
            let i = match pair {
                Some(i) => i,
                // An item the stream never sent: a new one, at the end.
                None => {
                    let kind = ItemKind::of(item);
                    let at = ItemRef::item(item, None);
                    let i = self.index.push(at);
                    self.items.push(Item::new(kind, at));
                    i
                }
            };
            if self.items[i].kind.is_tool() {
                self.tool_block(i);
            }
            self.complete_item(i, item, out);
        }
        // Whatever never completed ends now, in order.
        let pending = if self.stopped.is_some() {
            0
        } else {
            self.items.len()
        };
        for i in 0..pending {
            match self.items[i].kind {
                ItemKind::FunctionCall | ItemKind::CustomToolCall => self.finish_tool(i, None, out),
                ItemKind::Reasoning => self.finish_reasoning(i, out),
                ItemKind::Message => self.finish_plain(i, out),
                ItemKind::WebSearch | ItemKind::Other => {}
            }
        }
        for block in &mut self.blocks[self.head..] {
            block.done = true;
        }
        self.advance(out);

        // Nothing but notices: the answer is lost, which is an error, never an empty turn.
        if !self.dropped.is_empty()
            && self.blocks.len() == self.dropped.len()
            && fixed_stop.is_none()
        {
            let kinds: Vec<&str> = self.unexpressed.iter().map(String::as_str).collect();
            let failure = only_unexpressible(&kinds);
            self.fail(failure, out);
            return;
        }
        self.usage.server_tool_use = server_tool_use(self.searches);
        let stop_sequence = self.stopped.as_ref().map(|(seq, _)| seq.clone());
        let fixed_stop = match stop_sequence {
            Some(_) => Some(anthropic::StopReason::StopSequence),
            None => fixed_stop,
        };
        let stop_reason = fixed_stop.unwrap_or(if self.has_tool_use {
            anthropic::StopReason::ToolUse
        } else if self.refusal {
            anthropic::StopReason::Refusal
        } else {
            anthropic::StopReason::EndTurn
        });
        out.push(Out::MessageDelta {
            delta: anthropic::MessageDelta {
                stop_reason: Some(stop_reason),
                stop_sequence,
            },
            usage: self.usage,
        });
        out.push(Out::MessageStop);
        self.finished = true;
    }
}
