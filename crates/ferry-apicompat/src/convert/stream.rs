//! Responses stream events → Anthropic stream events.
//!
//! [`StreamConverter`] is a synchronous state machine: feed it every upstream event with
//! [`StreamConverter::on_event`], then call [`StreamConverter::finish`] when the upstream
//! stream ends. It pushes Anthropic events into the caller's vector.
//!
//! # Model
//!
//! Every upstream output item produces one or more Anthropic content blocks. Blocks are
//! emitted in the order they were created, **one open at a time**, with dense indexes:
//!
//! - the first block not yet closed (the *head*) streams live; content for any later block
//!   is buffered and replayed as one delta when that block becomes the head;
//! - a live text or thinking block is closed as soon as a later block exists (the upstream
//!   moved on to another item); a later piece of the same item opens a new block, while a
//!   queued block keeps collecting its item's content until it goes live;
//! - a `tool_use` block is never cut short: it stays the head until its arguments are done,
//!   and everything after it waits (parallel tool calls are serialised in arrival order,
//!   each with its start, deltas and stop contiguous).
//!
//! Text, refusals, reasoning summaries and tool arguments that arrive only in `.done`
//! events, in `output_item.done` or in the terminal response are reconciled against what was
//! already emitted: the missing suffix is emitted, nothing is emitted twice.

use serde_json::Value;

use self::state::{Block, Item, ItemKind, PartKey};
use crate::Dropped;
use crate::anthropic::{self, StreamEvent as Out};
use crate::convert::response::message_id;
use crate::convert::{FailureKind, ItemIndex, ItemRef, ToolNames, UpstreamFailure};
use crate::responses::{self, StreamEvent as In};

mod blocks;
mod items;
mod state;
mod terminal;
mod tools;

/// Options of a [`StreamConverter`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The model the client asked for; `message_start` reports it.
    pub model: String,
    /// The tool-name mapping of the request, to give tools back their client names.
    pub tool_names: ToolNames,
    /// The request's `stop_sequences`: the text is cut at the first one (the Responses API
    /// has none, so ferry emulates them; `convert::stop` in the source).
    pub stop_sequences: Vec<String>,
    /// The message id `message_start` reports when it has to be sent before the upstream
    /// named its response; normally the id is made from the upstream response id
    /// ([`crate::convert::response::message_id`]).
    pub message_id: Option<String>,
}

impl Options {
    /// Options for a client that asked for `model` with the request's `tool_names`.
    pub fn new(model: impl Into<String>, tool_names: ToolNames) -> Self {
        Self {
            model: model.into(),
            tool_names,
            stop_sequences: Vec::new(),
            message_id: None,
        }
    }

    /// Sets the stop sequences to emulate (empty ones are ignored).
    pub fn with_stop_sequences(mut self, stops: impl IntoIterator<Item = String>) -> Self {
        self.stop_sequences = stops.into_iter().filter(|s| !s.is_empty()).collect();
        self
    }

    /// Sets the fallback message id (see [`Options::message_id`]).
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }
}

/// Converts a stream of Responses events into a stream of Anthropic events.
///
/// The output always starts with `message_start` (or is a lone `error`) and always ends
/// with `message_stop` or `error`, after [`finish`](StreamConverter::finish) at the latest.
#[derive(Debug)]
pub struct StreamConverter {
    opts: Options,
    /// `message_start` was emitted.
    started: bool,
    /// `message_stop` or `error` was emitted; everything after is ignored.
    finished: bool,
    /// A content block was started.
    started_output: bool,
    response_id: Option<String>,
    next_index: u32,
    /// Which item each event is about; slot `i` is `items[i]`.
    index: ItemIndex,
    items: Vec<Item>,
    /// Output items that could not be expressed (each also got a notice block).
    dropped: Vec<Dropped>,
    /// The types of those items.
    unexpressed: Vec<String>,
    /// Web searches shown (`usage.server_tool_use.web_search_requests`).
    searches: u32,
    /// The stop sequence the text was cut at, and the block it was found in.
    stopped: Option<(String, usize)>,

    blocks: Vec<Block>,
    /// The first block that is not closed.
    head: usize,
    has_tool_use: bool,
    refusal: bool,
    usage: anthropic::Usage,
    /// The terminal event's usage had implausible numbers (see
    /// [`super::response::checked_usage`]).
    usage_implausible: bool,
    failure: Option<UpstreamFailure>,
}

/// An item reference of an event (its type is added by the caller).
fn at(id: Option<&str>, output_index: Option<u32>) -> ItemRef<'_> {
    ItemRef::new(id, output_index, None)
}

impl StreamConverter {
    /// A converter for one response.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            started: false,
            finished: false,
            started_output: false,
            response_id: None,
            next_index: 0,
            index: ItemIndex::new(),
            items: Vec::new(),
            dropped: Vec::new(),
            unexpressed: Vec::new(),
            searches: 0,
            stopped: None,

            blocks: Vec::new(),
            head: 0,
            has_tool_use: false,
            refusal: false,
            usage: anthropic::Usage::default(),
            usage_implausible: false,
            failure: None,
        }
    }

    /// Whether the output is complete (`message_stop` or `error` was emitted). Later events
    /// are ignored.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether a content block was emitted. Until then a failure can still be retried on
    /// another upstream without the client seeing partial content (only `message_start`).
    pub fn started_output(&self) -> bool {
        self.started_output
    }

    /// Usage reported by the terminal event (zeros before it).
    pub fn usage(&self) -> anthropic::Usage {
        self.usage
    }

    /// Whether the terminal event's usage had implausible numbers (dropped from
    /// [`StreamConverter::usage`]).
    pub fn usage_implausible(&self) -> bool {
        self.usage_implausible
    }

    /// The output items the stream carried that the Anthropic API cannot express (a
    /// `shell_call`, a `computer_call`, …): each was replaced by a text block naming it.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// The upstream response id, once known.
    pub fn response_id(&self) -> Option<&str> {
        self.response_id.as_deref()
    }

    /// Why the stream ended in an `error` event, if it did.
    pub fn failure(&self) -> Option<&UpstreamFailure> {
        self.failure.as_ref()
    }

    /// Converts one upstream event, pushing the resulting Anthropic events into `out`.
    pub fn on_event(&mut self, ev: &In, out: &mut Vec<Out>) {
        if self.finished {
            return;
        }
        // After a stop sequence the model has stopped: only the end of the stream counts.
        if self.stopped.is_some() && !ev.is_terminal() {
            return;
        }
        match ev {
            In::Created(e) => {
                self.note_response_id(&e.response.id);
                self.ensure_started(out);
            }
            In::InProgress(e) | In::Queued(e) => self.note_response_id(&e.response.id),
            In::Completed(t) | In::Done(t) => {
                self.terminal(t, &responses::ResponseStatus::Completed, out);
            }
            In::Incomplete(t) => self.terminal(t, &responses::ResponseStatus::Incomplete, out),
            In::Failed(t) => self.terminal(t, &responses::ResponseStatus::Failed, out),
            In::Error(e) => {
                self.fail(
                    UpstreamFailure::from_error(FailureKind::ErrorEvent, &e.body()),
                    out,
                );
            }
            In::OutputItemAdded(e) => {
                self.ensure_started(out);
                self.item_added(e.output_index, &e.item, out);
            }
            In::OutputItemDone(e) => {
                self.ensure_started(out);
                self.item_done(e.output_index, &e.item, out);
            }
            In::OutputTextDelta(d) => {
                let at = at(d.item_id.as_deref(), d.output_index);
                let key = PartKey::Text(d.content_index.unwrap_or(0));
                self.content_delta(at, ItemKind::Message, key, &d.delta, out);
            }
            In::RefusalDelta(d) => {
                self.refusal = true;
                let at = at(d.item_id.as_deref(), d.output_index);
                let key = PartKey::Refusal(d.content_index.unwrap_or(0));
                self.content_delta(at, ItemKind::Message, key, &d.delta, out);
            }
            In::ReasoningSummaryTextDelta(d) => {
                let at = at(d.item_id.as_deref(), d.output_index);
                let key = PartKey::Summary(d.summary_index.unwrap_or(0));
                self.content_delta(at, ItemKind::Reasoning, key, &d.delta, out);
            }
            In::ReasoningTextDelta(d) => {
                let at = at(d.item_id.as_deref(), d.output_index);
                let key = PartKey::ReasoningText(d.content_index.unwrap_or(0));
                self.content_delta(at, ItemKind::Reasoning, key, &d.delta, out);
            }
            In::OutputTextDone(t) => {
                let at = at(t.item_id.as_deref(), t.output_index);
                let key = PartKey::Text(t.content_index.unwrap_or(0));
                self.content_done(at, ItemKind::Message, key, &t.text, out);
            }
            In::RefusalDone(t) => {
                self.refusal = true;
                let at = at(t.item_id.as_deref(), t.output_index);
                let key = PartKey::Refusal(t.content_index.unwrap_or(0));
                self.content_done(at, ItemKind::Message, key, &t.refusal, out);
            }
            In::ReasoningSummaryTextDone(t) => {
                let at = at(t.item_id.as_deref(), t.output_index);
                let key = PartKey::Summary(t.summary_index.unwrap_or(0));
                self.content_done(at, ItemKind::Reasoning, key, &t.text, out);
            }
            In::ReasoningTextDone(t) => {
                let at = at(t.item_id.as_deref(), t.output_index);
                let key = PartKey::ReasoningText(t.content_index.unwrap_or(0));
                self.content_done(at, ItemKind::Reasoning, key, &t.text, out);
            }
            In::ContentPartDone(p) => {
                let at = at(p.item_id.as_deref(), p.output_index);
                let ci = p.content_index.unwrap_or(0);
                let Some(part) = p.part.as_ref() else { return };
                let (key, field) = match part.get("type").and_then(Value::as_str) {
                    Some("output_text") => (PartKey::Text(ci), "text"),
                    Some("refusal") => (PartKey::Refusal(ci), "refusal"),
                    _ => return,
                };
                if let Some(text) = part.get(field).and_then(Value::as_str) {
                    if field == "refusal" {
                        self.refusal = true;
                    }
                    self.content_done(at, ItemKind::Message, key, text, out);
                }
            }
            In::ReasoningSummaryPartDone(p) => {
                let at = at(p.item_id.as_deref(), p.output_index);
                let key = PartKey::Summary(p.summary_index.unwrap_or(0));
                let text = p
                    .part
                    .as_ref()
                    .and_then(|v| v.get("text"))
                    .and_then(Value::as_str);
                if let Some(text) = text {
                    self.content_done(at, ItemKind::Reasoning, key, text, out);
                }
            }
            In::FunctionCallArgumentsDelta(d) => {
                let at =
                    at(d.item_id.as_deref(), d.output_index).with_call_id(d.call_id.as_deref());
                self.arguments_delta(at, ItemKind::FunctionCall, &d.delta, out);
            }
            In::CustomToolCallInputDelta(d) => {
                let at =
                    at(d.item_id.as_deref(), d.output_index).with_call_id(d.call_id.as_deref());
                self.arguments_delta(at, ItemKind::CustomToolCall, &d.delta, out);
            }
            In::FunctionCallArgumentsDone(a) => {
                self.ensure_started(out);
                let at =
                    at(a.item_id.as_deref(), a.output_index).with_call_id(a.call_id.as_deref());
                let item = self.item_for(at, ItemKind::FunctionCall);
                if let Some(name) = a.name.as_deref() {
                    self.set_name(item, name);
                }
                if self.items[item].name.is_empty() {
                    // No name yet: the block cannot start. Keep the arguments until
                    // `output_item.done` (or the terminal response) names the tool.
                    self.items[item].pending_arguments = Some(a.arguments.clone());
                    return;
                }
                self.finish_tool(item, Some(&a.arguments), out);
            }
            In::CustomToolCallInputDone(a) => {
                self.ensure_started(out);
                let at =
                    at(a.item_id.as_deref(), a.output_index).with_call_id(a.call_id.as_deref());
                let item = self.item_for(at, ItemKind::CustomToolCall);
                self.finish_tool(item, Some(&a.input), out);
            }
            In::ContentPartAdded(_)
            | In::ReasoningSummaryPartAdded(_)
            | In::OutputTextAnnotationAdded(_)
            | In::WebSearchCallInProgress(_)
            | In::WebSearchCallSearching(_)
            | In::WebSearchCallCompleted(_) => self.ensure_started(out),
            In::Unknown { .. } => {}
        }
    }

    /// Ends the conversion when the upstream stream ended. Without a terminal event this
    /// emits an `error` event (a cut stream is never a normal end); otherwise nothing.
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        if !self.finished {
            self.fail(UpstreamFailure::truncated(), out);
        }
    }

    /// Ends the stream with an `error` event for `failure` (for example a terminal event
    /// that could not be parsed, or an idle timeout), unless it already ended.
    pub fn fail(&mut self, failure: UpstreamFailure, out: &mut Vec<Out>) {
        if self.finished {
            return;
        }
        self.finished = true;
        out.push(Out::Error {
            error: failure.to_anthropic(),
        });
        self.failure = Some(failure);
    }

    fn note_response_id(&mut self, id: &str) {
        if self.response_id.is_none() && !id.is_empty() {
            self.response_id = Some(id.to_owned());
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<Out>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = match (self.response_id.as_deref(), &self.opts.message_id) {
            (Some(resp), _) => message_id(resp),
            (None, Some(id)) => id.clone(),
            (None, None) => message_id(""),
        };
        out.push(Out::MessageStart {
            message: anthropic::Message::new(id, self.opts.model.as_str()),
        });
    }
}
