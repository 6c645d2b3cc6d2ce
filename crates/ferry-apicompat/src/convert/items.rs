//! Which output item an upstream event is about, and which streamed item a terminal
//! response's item is.
//!
//! Real upstreams and relays name items inconsistently: by `item_id` alone, by
//! `output_index` alone, by both, by neither (the Codex CLI's own fixture), with an id that
//! changes on every event (a GitHub Copilot capture), or with a terminal response whose
//! items carry no ids or other ids than the stream's. [`ItemIndex`] is the one place that
//! decides; the stream converter and the [`Accumulator`](super::Accumulator) both use it, so a streamed
//! and a buffered answer can never disagree on what is one item.

use crate::responses;

/// Where an upstream event says its item is.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ItemRef<'a> {
    /// The item id (`item.id` or the event's `item_id`); empty means absent.
    pub id: Option<&'a str>,
    /// The event's `output_index`.
    pub output_index: Option<u32>,
    /// The call id of a tool call; empty means absent.
    pub call_id: Option<&'a str>,
    /// The item type (`message`, `reasoning`, `function_call`, …), when the event implies
    /// one.
    pub kind: Option<&'a str>,
}

impl<'a> ItemRef<'a> {
    /// A reference by item id and output index, of item type `kind`.
    pub fn new(id: Option<&'a str>, output_index: Option<u32>, kind: Option<&'a str>) -> Self {
        Self {
            id: id.filter(|s| !s.is_empty()),
            output_index,
            call_id: None,
            kind: kind.filter(|s| !s.is_empty()),
        }
    }

    /// A reference to an output item itself (of `output_item.added` / `.done`).
    pub fn item(item: &'a responses::OutputItem, output_index: Option<u32>) -> Self {
        Self::new(item.id(), output_index, Some(item.type_name())).with_call_id(call_id(item))
    }

    /// The same reference with a tool call id.
    pub fn with_call_id(mut self, call_id: Option<&'a str>) -> Self {
        self.call_id = call_id.filter(|s| !s.is_empty());
        self
    }
}

/// What kind of event refers to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Seen {
    /// `output_item.added`: an event that names nothing starts a new item.
    Added,
    /// A delta, a `.done` event or `output_item.done`: an event that names nothing is about
    /// the latest item of its type that is not done; one whose id was never seen is about
    /// such an item only if that item has no id.
    Content,
}

/// The items of one response, in the order the stream introduced them (slots `0, 1, …`).
#[derive(Debug, Clone, Default)]
pub struct ItemIndex {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    kind: Option<String>,
    /// Every id the item was named by (several when a relay rotates them).
    ids: Vec<String>,
    call_id: Option<String>,
    output_index: Option<u32>,
    done: bool,
}

impl Slot {
    fn fits(&self, kind: Option<&str>) -> bool {
        match (self.kind.as_deref(), kind) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    fn has_id(&self, id: &str) -> bool {
        self.ids.iter().any(|i| i == id)
    }
}

impl ItemIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many items the stream introduced.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no item was introduced yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The output index an item was given, if any event named one.
    pub fn output_index(&self, slot: usize) -> Option<u32> {
        self.slots.get(slot).and_then(|s| s.output_index)
    }

    /// The slot of the item an event refers to, creating it when the event introduces a
    /// new item. The rules, in order:
    ///
    /// 1. an item already named by the same id (and of a compatible type);
    /// 2. the tool call with the same call id;
    /// 3. the item at the same `output_index` (of a compatible type); a new id for it is
    ///    remembered (relays that rotate ids keep the index);
    /// 4. with no `output_index`: for [`Seen::Content`], the latest item of the type that
    ///    is not done (for an event with an id, only an item without ids); for
    ///    [`Seen::Added`], or when there is none, a new item.
    pub fn locate(&mut self, at: ItemRef<'_>, seen: Seen) -> usize {
        let found = self.find(at, seen);
        let slot = match found {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[slot];
        if s.kind.is_none() {
            s.kind = at.kind.map(str::to_owned);
        }
        if let Some(id) = at.id
            && !s.has_id(id)
        {
            s.ids.push(id.to_owned());
        }
        if s.call_id.is_none() {
            s.call_id = at.call_id.map(str::to_owned);
        }
        if s.output_index.is_none() {
            s.output_index = at.output_index;
        }
        slot
    }

    /// A new slot for an item no event named before (a terminal response's own item).
    pub fn push(&mut self, at: ItemRef<'_>) -> usize {
        self.slots.push(Slot {
            kind: at.kind.map(str::to_owned),
            ids: at.id.map(str::to_owned).into_iter().collect(),
            call_id: at.call_id.map(str::to_owned),
            output_index: at.output_index,
            done: false,
        });
        self.slots.len() - 1
    }

    fn find(&self, at: ItemRef<'_>, seen: Seen) -> Option<usize> {
        let fits = |s: &Slot| s.fits(at.kind);
        if let Some(id) = at.id
            && let Some(i) = self.slots.iter().position(|s| fits(s) && s.has_id(id))
        {
            return Some(i);
        }
        if let Some(call) = at.call_id
            && let Some(i) = self
                .slots
                .iter()
                .position(|s| fits(s) && s.call_id.as_deref() == Some(call))
        {
            return Some(i);
        }
        if let Some(index) = at.output_index {
            return self
                .slots
                .iter()
                .position(|s| fits(s) && s.output_index == Some(index));
        }
        if seen == Seen::Added {
            return None;
        }
        // No usable name: the latest open item it fits. An event with an id never seen is
        // about another item, unless the open item has no id at all; an item named by
        // another call id is another call.
        self.slots.iter().rposition(|s| {
            fits(s)
                && !s.done
                && (at.id.is_none() || s.ids.is_empty())
                && (at.call_id.is_none() || s.call_id.is_none())
        })
    }

    /// Marks an item done: later events that name nothing are not about it.
    pub fn mark_done(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.done = true;
        }
    }

    /// Whether an item was marked done.
    pub fn is_done(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.done)
    }

    /// Pairs the items of a terminal response with the streamed items: for each terminal
    /// item, the slot it is (or `None` for an item the stream never sent). Each slot is
    /// paired at most once, by the first rule that applies:
    ///
    /// 1. the same id or call id;
    /// 2. the same position as the streamed item's `output_index`, and the same type (ids
    ///    may differ: some relays rewrite them);
    /// 3. in order, the first unpaired streamed item of the same type (terminal items
    ///    without ids, or with other ids, and streams without indexes).
    pub fn match_terminal(&self, output: &[responses::OutputItem]) -> Vec<Option<usize>> {
        let mut paired = vec![false; self.slots.len()];
        let mut result: Vec<Option<usize>> = vec![None; output.len()];
        let kind_fits = |s: &Slot, item: &responses::OutputItem| s.fits(Some(item.type_name()));
        for (t, item) in output.iter().enumerate() {
            let id = item.id();
            let call = call_id(item).filter(|c| !c.is_empty());
            let found = (0..self.slots.len()).find(|&i| {
                let s = &self.slots[i];
                !paired[i]
                    && kind_fits(s, item)
                    && (id.is_some_and(|id| s.has_id(id))
                        || (call.is_some() && s.call_id.as_deref() == call))
            });
            if let Some(i) = found {
                paired[i] = true;
                result[t] = Some(i);
            }
        }
        for (t, item) in output.iter().enumerate() {
            if result[t].is_some() {
                continue;
            }
            let position = u32::try_from(t).ok();
            let found = (0..self.slots.len()).find(|&i| {
                let s = &self.slots[i];
                !paired[i]
                    && kind_fits(s, item)
                    && s.output_index.is_some()
                    && s.output_index == position
            });
            if let Some(i) = found {
                paired[i] = true;
                result[t] = Some(i);
            }
        }
        for (t, item) in output.iter().enumerate() {
            if result[t].is_some() {
                continue;
            }
            let id = item.id();
            let call = call_id(item).filter(|c| !c.is_empty());
            let found = (0..self.slots.len()).find(|&i| {
                let s = &self.slots[i];
                // A call named by another call id is another call.
                let other_call =
                    call.is_some() && s.call_id.is_some() && s.call_id.as_deref() != call;
                // An item whose id the stream named for another item is that item.
                let other_id = id.is_some_and(|id| self.slots.iter().any(|o| o.has_id(id)));
                !paired[i]
                    && s.kind.as_deref() == Some(item.type_name())
                    && !other_call
                    && !other_id
            });
            if let Some(i) = found {
                paired[i] = true;
                result[t] = Some(i);
            }
        }
        result
    }
}

fn call_id(item: &responses::OutputItem) -> Option<&str> {
    match item {
        responses::OutputItem::FunctionCall(f) => Some(f.call_id.as_str()),
        responses::OutputItem::CustomToolCall(c) => Some(c.call_id.as_str()),
        responses::OutputItem::Unknown(v) => v.get("call_id").and_then(serde_json::Value::as_str),
        _ => None,
    }
}
