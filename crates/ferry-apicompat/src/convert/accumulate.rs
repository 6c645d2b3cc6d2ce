//! Rebuilding a Responses response from its stream events.
//!
//! Pure, like the rest of this crate: it lives here (not in `ferry-sse`, which knows only
//! frames) because it needs the Responses types and the [`ItemIndex`] item matcher.

use std::collections::BTreeMap;

use self::item::Acc;
use super::{ItemIndex, ItemRef, Seen};
use crate::responses::{self, OutputItem, StreamEvent};
use serde_json::Value;

mod item;

/// Collects the events of a Responses stream so that the complete response can be rebuilt,
/// for a client that asked for a non-streamed answer.
///
/// Feed every event to [`on_event`](Accumulator::on_event), then pass the terminal event's
/// response to [`supplement`](Accumulator::supplement): some upstreams end the stream with
/// an empty or partial `output`, and the text, reasoning summaries and tool arguments that
/// arrived as deltas would otherwise be lost (the reference's `SupplementResponseOutput`).
///
/// Which item an event is about, and which streamed item a terminal item is, is decided by
/// [`ItemIndex`], the rules the stream converter uses too. For each item, the `output_item.done` payload wins over
/// `output_item.added`, a `.done` text wins over the concatenated deltas, and whatever the
/// terminal response already has wins over both: the accumulator only fills what is empty
/// or missing.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// Slot `i` of `index` is `items[i]`.
    items: Vec<Acc>,
    index: ItemIndex,
    /// The latest response object of a lifecycle or terminal event.
    response: Option<responses::Response>,
    /// `usage` at the top level of a terminal event (some relays send it there).
    top_usage: Option<responses::Usage>,
}

/// Appends a delta to the text of part `index`.
fn append(parts: &mut BTreeMap<u32, String>, index: Option<u32>, delta: &str) {
    parts.entry(index.unwrap_or(0)).or_default().push_str(delta);
}

/// Sets the full text of part `index`; an empty full text does not erase streamed deltas.
fn replace(parts: &mut BTreeMap<u32, String>, index: Option<u32>, full: &str) {
    let part = parts.entry(index.unwrap_or(0)).or_default();
    if !full.is_empty() {
        full.clone_into(part);
    }
}

fn set_full(slot: &mut Option<String>, full: &str) {
    if !full.is_empty() || slot.is_none() {
        *slot = Some(full.to_owned());
    }
}

const MESSAGE: &str = "message";
const REASONING: &str = "reasoning";
const FUNCTION_CALL: &str = "function_call";
const CUSTOM_TOOL_CALL: &str = "custom_tool_call";

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

impl Accumulator {
    /// An empty accumulator for one response.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one upstream event. Events that carry no output are ignored.
    pub fn on_event(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Created(e) | StreamEvent::InProgress(e) | StreamEvent::Queued(e) => {
                self.response = Some(e.response.clone());
            }
            StreamEvent::Completed(t)
            | StreamEvent::Incomplete(t)
            | StreamEvent::Failed(t)
            | StreamEvent::Done(t) => {
                if let Some(usage) = &t.usage {
                    self.top_usage = Some(usage.clone());
                }
                self.response = Some(t.response.clone());
            }
            StreamEvent::OutputItemAdded(e) => {
                let acc = self.item_slot(e.output_index, &e.item, Seen::Added);
                if !acc.done {
                    acc.item = Some(e.item.clone());
                }
            }
            StreamEvent::OutputItemDone(e) => {
                let slot = self.locate(ItemRef::item(&e.item, e.output_index), Seen::Content);
                self.index.mark_done(slot);
                let acc = &mut self.items[slot];
                acc.item = Some(e.item.clone());
                acc.done = true;
            }
            StreamEvent::OutputTextDelta(d) => {
                append(
                    &mut self
                        .slot(d.output_index, d.item_id.as_deref(), MESSAGE)
                        .text,
                    d.content_index,
                    &d.delta,
                );
            }
            StreamEvent::OutputTextDone(t) => {
                replace(
                    &mut self
                        .slot(t.output_index, t.item_id.as_deref(), MESSAGE)
                        .text,
                    t.content_index,
                    &t.text,
                );
            }
            StreamEvent::RefusalDelta(d) => {
                append(
                    &mut self
                        .slot(d.output_index, d.item_id.as_deref(), MESSAGE)
                        .refusal,
                    d.content_index,
                    &d.delta,
                );
            }
            StreamEvent::RefusalDone(r) => {
                replace(
                    &mut self
                        .slot(r.output_index, r.item_id.as_deref(), MESSAGE)
                        .refusal,
                    r.content_index,
                    &r.refusal,
                );
            }
            StreamEvent::ContentPartDone(p) => self.part_done(p, false),
            StreamEvent::ReasoningSummaryPartDone(p) => self.part_done(p, true),
            StreamEvent::ReasoningSummaryTextDelta(d) => {
                append(
                    &mut self
                        .slot(d.output_index, d.item_id.as_deref(), REASONING)
                        .summary,
                    d.summary_index,
                    &d.delta,
                );
            }
            StreamEvent::ReasoningSummaryTextDone(t) => {
                replace(
                    &mut self
                        .slot(t.output_index, t.item_id.as_deref(), REASONING)
                        .summary,
                    t.summary_index,
                    &t.text,
                );
            }
            StreamEvent::ReasoningTextDelta(d) => {
                append(
                    &mut self
                        .slot(d.output_index, d.item_id.as_deref(), REASONING)
                        .reasoning,
                    d.content_index,
                    &d.delta,
                );
            }
            StreamEvent::ReasoningTextDone(t) => {
                replace(
                    &mut self
                        .slot(t.output_index, t.item_id.as_deref(), REASONING)
                        .reasoning,
                    t.content_index,
                    &t.text,
                );
            }
            StreamEvent::FunctionCallArgumentsDelta(d)
            | StreamEvent::CustomToolCallInputDelta(d) => {
                let is_args = matches!(event, StreamEvent::FunctionCallArgumentsDelta(_));
                let kind = if is_args {
                    FUNCTION_CALL
                } else {
                    CUSTOM_TOOL_CALL
                };
                let acc = self.call_slot(
                    d.output_index,
                    d.item_id.as_deref(),
                    d.call_id.as_deref(),
                    kind,
                );
                let target = if is_args {
                    &mut acc.arguments
                } else {
                    &mut acc.input
                };
                target.get_or_insert_with(String::new).push_str(&d.delta);
            }
            StreamEvent::FunctionCallArgumentsDone(a) => {
                let acc = self.call_slot(
                    a.output_index,
                    a.item_id.as_deref(),
                    a.call_id.as_deref(),
                    FUNCTION_CALL,
                );
                set_full(&mut acc.arguments, &a.arguments);
                if let Some(name) = non_empty(a.name.as_deref()) {
                    acc.name = Some(name.to_owned());
                }
            }
            StreamEvent::CustomToolCallInputDone(i) => {
                let acc = self.call_slot(
                    i.output_index,
                    i.item_id.as_deref(),
                    i.call_id.as_deref(),
                    CUSTOM_TOOL_CALL,
                );
                set_full(&mut acc.input, &i.input);
            }
            _ => {}
        }
    }

    /// Fills the `output` of a terminal response from what the stream carried.
    ///
    /// Terminal items are paired with streamed items by [`ItemIndex::match_terminal`]; a
    /// paired item keeps every non-empty field and gets its empty text, summary, arguments
    /// or input filled in. Streamed items the terminal response lacks are inserted where the
    /// stream had them (after the terminal item paired with the streamed item before them).
    /// A complete terminal response comes back unchanged. When the response has no `usage`,
    /// the top-level `usage` of the terminal event is used.
    pub fn supplement(&self, mut terminal: responses::Response) -> responses::Response {
        if terminal.usage.is_none() {
            terminal.usage.clone_from(&self.top_usage);
        }
        let output = std::mem::take(&mut terminal.output);
        let pairs = self.index.match_terminal(&output);
        let mut paired = vec![false; self.items.len()];
        for slot in pairs.iter().flatten() {
            paired[*slot] = true;
        }
        // Streamed items in output order: by `output_index` when every item has one (items
        // may be announced out of order), else in the order the stream introduced them.
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        if (0..self.items.len()).all(|i| self.index.output_index(i).is_some()) {
            order.sort_by_key(|&i| self.index.output_index(i));
        }
        let mut rank = vec![0; self.items.len()];
        for (r, &slot) in order.iter().enumerate() {
            rank[slot] = r;
        }
        let mut result = Vec::with_capacity(output.len().max(self.items.len()));
        let mut next = 0;
        for (mut item, pair) in output.into_iter().zip(pairs) {
            if let Some(slot) = pair {
                self.add_unpaired(&order, &paired, &mut next, rank[slot], &mut result);
                next = next.max(rank[slot] + 1);
                self.items[slot].fill(&mut item);
            }
            result.push(item);
        }
        self.add_unpaired(&order, &paired, &mut next, order.len(), &mut result);
        terminal.output = result;
        terminal
    }

    /// Appends the unpaired streamed items of `order[*next..end]`.
    fn add_unpaired(
        &self,
        order: &[usize],
        paired: &[bool],
        next: &mut usize,
        end: usize,
        result: &mut Vec<OutputItem>,
    ) {
        while *next < end {
            let slot = order[*next];
            if !paired[slot] {
                result.extend(self.items[slot].build());
            }
            *next += 1;
        }
    }

    /// The response as far as the stream went: the latest response object seen (or an
    /// empty one), supplemented.
    pub fn response(&self) -> responses::Response {
        self.supplement(self.response.clone().unwrap_or_default())
    }

    /// The slot of an event that names its item by `output_index` and/or `item_id`.
    fn slot(&mut self, output_index: Option<u32>, item_id: Option<&str>, kind: &str) -> &mut Acc {
        self.call_slot(output_index, item_id, None, kind)
    }

    fn call_slot(
        &mut self,
        output_index: Option<u32>,
        item_id: Option<&str>,
        call_id: Option<&str>,
        kind: &str,
    ) -> &mut Acc {
        let at = ItemRef::new(item_id, output_index, Some(kind)).with_call_id(call_id);
        let slot = self.locate(at, Seen::Content);
        &mut self.items[slot]
    }

    /// The slot of an event's item, created when new; the first ids seen are kept.
    fn locate(&mut self, at: ItemRef<'_>, seen: Seen) -> usize {
        let slot = self.index.locate(at, seen);
        if slot == self.items.len() {
            self.items.push(Acc::default());
        }
        let acc = &mut self.items[slot];
        if let (None, Some(id)) = (&acc.item_id, at.id) {
            acc.item_id = Some(id.to_owned());
        }
        if let (None, Some(id)) = (&acc.call_id, at.call_id) {
            acc.call_id = Some(id.to_owned());
        }
        slot
    }

    /// The slot of an `output_item.*` event.
    fn item_slot(&mut self, output_index: Option<u32>, item: &OutputItem, seen: Seen) -> &mut Acc {
        let slot = self.locate(ItemRef::item(item, output_index), seen);
        &mut self.items[slot]
    }

    /// `content_part.done` / `reasoning_summary_part.done`: the full part, which some
    /// upstreams send instead of a `.done` text event.
    fn part_done(&mut self, p: &responses::PartEvent, summary: bool) {
        let Some(part) = p.part.as_ref() else { return };
        let text = |key: &str| part.get(key).and_then(Value::as_str);
        let kind = if summary { REASONING } else { MESSAGE };
        let acc = self.slot(p.output_index, p.item_id.as_deref(), kind);
        match part.get("type").and_then(Value::as_str) {
            Some("summary_text") if summary => {
                if let Some(t) = text("text") {
                    fill_part(&mut acc.summary, p.summary_index, t);
                }
            }
            Some("output_text") if !summary => {
                if let Some(t) = text("text") {
                    fill_part(&mut acc.text, p.content_index, t);
                }
            }
            Some("refusal") if !summary => {
                if let Some(t) = text("refusal") {
                    fill_part(&mut acc.refusal, p.content_index, t);
                }
            }
            _ => {}
        }
    }
}

/// Sets a part's text from a full part only when no text was streamed for it.
fn fill_part(parts: &mut BTreeMap<u32, String>, index: Option<u32>, full: &str) {
    let part = parts.entry(index.unwrap_or(0)).or_default();
    if part.is_empty() {
        full.clone_into(part);
    }
}
