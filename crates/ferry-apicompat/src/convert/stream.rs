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

use crate::Dropped;
use crate::anthropic::{self, ContentBlock, ContentDelta, StreamEvent as Out};
use crate::convert::response::{
    READ_TOOL, SUMMARY_SEPARATOR, call_id, encrypted, ending, is_json_object, message_id,
    only_unexpressible, read_arguments, server_tool_id, server_tool_use, unexpressible,
    unexpressible_dropped, unexpressible_notice, web_search_result,
};
use crate::convert::{FailureKind, ItemIndex, ItemRef, Seen, ToolNames, UpstreamFailure, stop};
use crate::responses::{self, StreamEvent as In};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Message,
    Reasoning,
    FunctionCall,
    CustomToolCall,
    WebSearch,
    /// An item type ferry does not convert (see [`unexpressible`]).
    Other,
}

impl ItemKind {
    fn is_tool(self) -> bool {
        matches!(self, Self::FunctionCall | Self::CustomToolCall)
    }

    fn of(item: &responses::OutputItem) -> Self {
        use responses::OutputItem as O;
        match item {
            O::Message(_) => Self::Message,
            O::Reasoning(_) => Self::Reasoning,
            O::FunctionCall(_) => Self::FunctionCall,
            O::CustomToolCall(_) => Self::CustomToolCall,
            O::WebSearchCall(_) => Self::WebSearch,
            O::Unknown(_) => Self::Other,
        }
    }

    /// The Responses item type (`None` for [`ItemKind::Other`], whose type varies).
    fn type_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Message => "message",
            Self::Reasoning => "reasoning",
            Self::FunctionCall => "function_call",
            Self::CustomToolCall => "custom_tool_call",
            Self::WebSearch => "web_search_call",
            Self::Other => return None,
        })
    }
}

/// What is known about one upstream output item.
#[derive(Debug)]
struct Item {
    kind: ItemKind,
    id: Option<String>,
    output_index: Option<u32>,
    call_id: String,
    /// Tool name as the client knows it.
    name: String,
    /// Latest block of this item.
    block: Option<usize>,
    /// What reached (or is buffered for) the client, per part.
    parts: Vec<(PartKey, Emitted)>,
    encrypted: Option<String>,
    /// Read tool: arguments held back until they are complete.
    held: String,
    /// Arguments of an `arguments.done` that came before the tool's name.
    pending_arguments: Option<String>,
    /// Custom tool: the `{"input":"` prefix was emitted.
    json_opened: bool,
    done: bool,
    status: Option<responses::ItemStatus>,
    query: Option<String>,
}

impl Item {
    fn new(kind: ItemKind, at: ItemRef<'_>) -> Self {
        Self {
            kind,
            id: at.id.map(str::to_owned),
            output_index: at.output_index,
            call_id: at.call_id.unwrap_or_default().to_owned(),
            name: String::new(),
            block: None,
            parts: Vec::new(),
            encrypted: None,
            held: String::new(),
            pending_arguments: None,
            json_opened: false,
            done: false,
            status: None,
            query: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKey {
    Text(u32),
    Refusal(u32),
    Summary(u32),
    ReasoningText(u32),
    Arguments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    ToolUse,
    ServerToolUse,
    Fixed,
}

/// One Anthropic content block, queued, open or closed.
#[derive(Debug)]
struct Block {
    item: usize,
    kind: BlockKind,
    started: bool,
    closed: bool,
    /// May be closed once it is the head.
    done: bool,
    index: u32,
    /// Content waiting for the block to become the head.
    buffer: String,
    /// Text held back because it may be the start of a stop sequence.
    held: String,
    signature: Option<String>,
    /// The complete start payload of a [`BlockKind::Fixed`] or server-tool block.
    payload: Option<ContentBlock>,
}

/// Length and FNV-1a hash of the text emitted for a part, so that a full text arriving
/// later can be checked to extend it without keeping the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Emitted {
    len: usize,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Emitted {
    const EMPTY: Self = Self {
        len: 0,
        hash: FNV_OFFSET,
    };

    fn push(&mut self, s: &str) {
        self.len += s.len();
        self.hash = fnv(self.hash, s.as_bytes());
    }

    /// The part of `full` not emitted yet, if what was emitted is a prefix of it.
    fn missing<'a>(&self, full: &'a str) -> Option<&'a str> {
        let head = full.get(..self.len)?;
        (fnv(FNV_OFFSET, head.as_bytes()) == self.hash).then(|| &full[self.len..])
    }
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

    // ----- items -------------------------------------------------------------------------

    /// The item an event refers to (see [`ItemIndex::locate`]), created when new.
    fn item_for(&mut self, at: ItemRef<'_>, kind: ItemKind) -> usize {
        self.locate(at, kind, Seen::Content)
    }

    fn locate(&mut self, mut at: ItemRef<'_>, kind: ItemKind, seen: Seen) -> usize {
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
    fn mark_done(&mut self, i: usize) {
        self.items[i].done = true;
        self.index.mark_done(i);
    }

    fn set_name(&mut self, item: usize, upstream_name: &str) {
        if !upstream_name.is_empty() && self.items[item].name.is_empty() {
            self.items[item].name = self.opts.tool_names.to_client(upstream_name).into_owned();
        }
    }

    fn set_call_id(&mut self, item: usize, call_id: &str) {
        if !call_id.is_empty() && self.items[item].call_id.is_empty() {
            self.items[item].call_id = call_id.to_owned();
        }
    }

    fn item_added(
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

    fn item_done(
        &mut self,
        output_index: Option<u32>,
        item: &responses::OutputItem,
        out: &mut Vec<Out>,
    ) {
        let i = self.item_for(ItemRef::item(item, output_index), ItemKind::of(item));
        self.complete_item(i, item, out);
    }

    /// Reconciles item `i` with its complete payload and ends it.
    fn complete_item(&mut self, i: usize, item: &responses::OutputItem, out: &mut Vec<Out>) {
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

    fn note_encrypted(&mut self, i: usize, enc: Option<&str>) {
        if let Some(enc) = encrypted(enc) {
            self.items[i].encrypted = Some(enc.to_owned());
        }
    }

    fn part(&mut self, i: usize, key: PartKey) -> &mut Emitted {
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

    // ----- content ---------------------------------------------------------------------

    fn content_delta(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        key: PartKey,
        delta: &str,
        out: &mut Vec<Out>,
    ) {
        self.ensure_started(out);
        if delta.is_empty() {
            return;
        }
        let i = self.item_for(at, kind);
        if self.items[i].done {
            return;
        }
        self.emit_part(i, key, delta, out);
    }

    fn content_done(
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
    fn reconcile(&mut self, i: usize, key: PartKey, full: &str, out: &mut Vec<Out>) {
        let emitted = *self.part(i, key);
        if let Some(missing) = emitted.missing(full)
            && !missing.is_empty()
        {
            self.emit_part(i, key, missing, out);
        }
    }

    /// Emits text of a message or reasoning part into the item's open (or a new) block.
    fn emit_part(&mut self, i: usize, key: PartKey, text: &str, out: &mut Vec<Out>) {
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
    fn content_block(&mut self, i: usize, kind: BlockKind) -> usize {
        if let Some(b) = self.items[i].block {
            let block = &self.blocks[b];
            if block.kind == kind && !block.done && !block.closed {
                return b;
            }
        }
        self.new_block(i, kind, None)
    }

    /// Appends a block (the caller then runs [`advance`](Self::advance)).
    fn new_block(&mut self, item: usize, kind: BlockKind, payload: Option<ContentBlock>) -> usize {
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
    fn push_content(&mut self, b: usize, text: &str, out: &mut Vec<Out>) {
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
    fn push_text(&mut self, b: usize, text: &str, out: &mut Vec<Out>) {
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
    fn advance(&mut self, out: &mut Vec<Out>) {
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

    fn start_block(&mut self, b: usize, out: &mut Vec<Out>) {
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

    /// A message item is complete: its block may close.
    fn finish_plain(&mut self, i: usize, out: &mut Vec<Out>) {
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
    fn finish_reasoning(&mut self, i: usize, out: &mut Vec<Out>) {
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

    fn finish_web_search(&mut self, i: usize, out: &mut Vec<Out>) {
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

    // ----- tools -----------------------------------------------------------------------

    /// The tool block of item `i`, created on first use.
    fn tool_block(&mut self, i: usize) -> usize {
        self.has_tool_use = true;
        match self.items[i].block {
            Some(b) => b,
            None => self.new_block(i, BlockKind::ToolUse, None),
        }
    }

    fn arguments_delta(
        &mut self,
        at: ItemRef<'_>,
        kind: ItemKind,
        delta: &str,
        out: &mut Vec<Out>,
    ) {
        self.ensure_started(out);
        if delta.is_empty() {
            return;
        }
        let i = self.item_for(at, kind);
        if self.items[i].done {
            return;
        }
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
    fn finish_tool(&mut self, i: usize, full: Option<&str>, out: &mut Vec<Out>) {
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

    // ----- terminal --------------------------------------------------------------------

    fn terminal(
        &mut self,
        t: &responses::TerminalEvent,
        implied: &responses::ResponseStatus,
        out: &mut Vec<Out>,
    ) {
        let resp = &t.response;
        self.note_response_id(&resp.id);
        if let Some(u) = resp.usage.as_ref().or(t.usage.as_ref()) {
            (self.usage, self.usage_implausible) = super::response::checked_usage(u);
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

fn delta(kind: BlockKind, text: String) -> ContentDelta {
    match kind {
        BlockKind::Thinking => ContentDelta::ThinkingDelta { thinking: text },
        BlockKind::ToolUse | BlockKind::ServerToolUse => {
            ContentDelta::InputJsonDelta { partial_json: text }
        }
        BlockKind::Text | BlockKind::Fixed => ContentDelta::TextDelta { text },
    }
}

/// Appends `s` escaped as the inside of a JSON string.
fn push_json_escaped(out: &mut String, s: &str) {
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
