//! Rebuilds the final Responses object of a stream for a non-streaming client.
//!
//! Adapter until `ferry_sse::Accumulator` lands (same API: `on_event`, `supplement`).
//! Compatible upstreams sometimes end with a terminal event whose `output` is empty, or
//! report usage only at the top level of the terminal event; the client must still get the
//! text and the tokens (gateway.md §5 "Buffered", §7 case 40).

use std::collections::BTreeMap;

use ferry_apicompat::responses::{self, StreamEvent};
use serde_json::{Value, json};

/// Output items seen in a stream, by `output_index`, as JSON.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    items: BTreeMap<u32, Value>,
    /// Items that got their `output_item.done` (complete; deltas no longer apply).
    done: std::collections::BTreeSet<u32>,
    usage: Option<responses::Usage>,
}

impl Accumulator {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn on_event(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::OutputItemAdded(e) => {
                let idx = e.output_index.unwrap_or_else(|| self.next_index());
                if let Ok(v) = serde_json::to_value(&e.item) {
                    self.items.entry(idx).or_insert(v);
                }
            }
            StreamEvent::OutputItemDone(e) => {
                let idx = e.output_index.unwrap_or_else(|| self.next_index());
                if let Ok(v) = serde_json::to_value(&e.item) {
                    self.items.insert(idx, v);
                    self.done.insert(idx);
                }
            }
            StreamEvent::OutputTextDelta(d) => self.append_text(d, "output_text", "text"),
            StreamEvent::RefusalDelta(d) => self.append_text(d, "refusal", "refusal"),
            StreamEvent::FunctionCallArgumentsDelta(d) => self.append_field(d, "arguments"),
            StreamEvent::CustomToolCallInputDelta(d) => self.append_field(d, "input"),
            StreamEvent::ReasoningSummaryTextDelta(d) => {
                if let Some(item) = self.open_item(d.output_index, d.item_id.as_deref()) {
                    let i = usize::try_from(d.summary_index.unwrap_or(0)).unwrap_or(0);
                    if let Some(summary) = ensure_array(item, "summary") {
                        while summary.len() <= i {
                            summary.push(json!({ "type": "summary_text", "text": "" }));
                        }
                        if let Some(part) = summary.get_mut(i) {
                            push_str(part, "text", &d.delta);
                        }
                    }
                }
            }
            StreamEvent::Completed(t)
            | StreamEvent::Done(t)
            | StreamEvent::Incomplete(t)
            | StreamEvent::Failed(t)
                if t.usage.is_some() =>
            {
                self.usage.clone_from(&t.usage);
            }
            _ => {}
        }
    }

    /// The terminal response, with `output` rebuilt from the stream when it came empty and
    /// the terminal event's top-level usage when the response has none.
    pub(crate) fn supplement(&self, mut terminal: responses::Response) -> responses::Response {
        if let Some(u) = &self.usage
            && (terminal.usage.is_none() || terminal.usage.as_ref().is_some_and(is_zero))
        {
            terminal.usage = Some(u.clone());
        }
        if !terminal.output.is_empty() || self.items.is_empty() {
            return terminal;
        }
        let output: Vec<responses::OutputItem> = self
            .items
            .values()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect();
        terminal.output = output;
        terminal
    }

    fn next_index(&self) -> u32 {
        self.items.keys().next_back().map_or(0, |k| k + 1)
    }

    /// The item a delta belongs to, unless it is already complete.
    fn open_item(
        &mut self,
        output_index: Option<u32>,
        item_id: Option<&str>,
    ) -> Option<&mut Value> {
        let idx = match output_index {
            Some(i) => i,
            None => {
                *self
                    .items
                    .iter()
                    .find(|(_, v)| {
                        item_id.is_some() && v.get("id").and_then(Value::as_str) == item_id
                    })?
                    .0
            }
        };
        if self.done.contains(&idx) {
            return None;
        }
        self.items.get_mut(&idx)
    }

    fn append_text(&mut self, d: &responses::DeltaEvent, part_type: &str, field: &str) {
        if let Some(item) = self.open_item(d.output_index, d.item_id.as_deref()) {
            let i = usize::try_from(d.content_index.unwrap_or(0)).unwrap_or(0);
            if let Some(content) = ensure_array(item, "content") {
                while content.len() <= i {
                    content.push(json!({ "type": part_type, field: "", "annotations": [] }));
                }
                if let Some(part) = content.get_mut(i) {
                    push_str(part, field, &d.delta);
                }
            }
        }
    }

    fn append_field(&mut self, d: &responses::DeltaEvent, field: &str) {
        if let Some(item) = self.open_item(d.output_index, d.item_id.as_deref()) {
            push_str(item, field, &d.delta);
        }
    }
}

fn is_zero(u: &responses::Usage) -> bool {
    u.input_tokens == 0 && u.output_tokens == 0
}

fn ensure_array<'a>(item: &'a mut Value, key: &str) -> Option<&'a mut Vec<Value>> {
    let obj = item.as_object_mut()?;
    if !obj.get(key).is_some_and(Value::is_array) {
        obj.insert(key.to_owned(), json!([]));
    }
    obj.get_mut(key).and_then(Value::as_array_mut)
}

fn push_str(obj: &mut Value, field: &str, s: &str) {
    if let Some(obj) = obj.as_object_mut() {
        let cur = obj
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        obj.insert(field.to_owned(), Value::String(cur + s));
    }
}
