//! Builders for OpenAI Responses stream events and SSE bodies (as codex's
//! `core/tests/common/responses.rs`).
//!
//! Each `ev_*` returns one event as JSON; [`sse`] frames a list of them the way the OpenAI
//! API does (`event: <type>` + `data: <json>`, through `ferry_sse`'s one framing function). The model in `response` objects is
//! [`MODEL`].

use serde_json::{Value, json};

/// The model name the builders put in `response` objects.
pub const MODEL: &str = "gpt-test";

/// Token counts for `ev_completed` and friends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `input_tokens` (cached ones included, as OpenAI reports them).
    pub input: u64,
    /// `output_tokens` (reasoning included).
    pub output: u64,
    /// `input_tokens_details.cached_tokens`.
    pub cached: u64,
    /// `output_tokens_details.reasoning_tokens`.
    pub reasoning: u64,
}

impl Usage {
    /// Input and output tokens, nothing cached.
    pub fn new(input: u64, output: u64) -> Self {
        Self {
            input,
            output,
            cached: 0,
            reasoning: 0,
        }
    }

    /// With `cached` input tokens.
    pub fn cached(self, cached: u64) -> Self {
        Self { cached, ..self }
    }

    /// The Responses `usage` object.
    pub fn to_json(self) -> Value {
        json!({
            "input_tokens": self.input,
            "input_tokens_details": { "cached_tokens": self.cached },
            "output_tokens": self.output,
            "output_tokens_details": { "reasoning_tokens": self.reasoning },
            "total_tokens": self.input + self.output,
        })
    }
}

fn response(id: &str, status: &str, output: &[Value], usage: Option<Usage>) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": MODEL,
        "output": output,
        "usage": usage.map(Usage::to_json),
    })
}

/// Frames events as an SSE body: `event: <type>\ndata: <json>\n\n` each (framed by
/// [`ferry_sse::encode_frame`]).
pub fn sse(events: Vec<Value>) -> String {
    let mut out = Vec::new();
    for ev in events {
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or("message");
        ferry_sse::encode_frame(kind, ev.to_string().as_bytes(), &mut out);
    }
    into_text(out)
}

/// Frames events with `data:` lines only (some compatible upstreams omit `event:`).
pub fn sse_data_only(events: Vec<Value>) -> String {
    let mut out = Vec::new();
    for ev in events {
        let Ok(()) = ferry_sse::encode_frame_with(None, &mut out, |buf| {
            buf.extend_from_slice(ev.to_string().as_bytes());
            Ok::<(), std::convert::Infallible>(())
        });
    }
    into_text(out)
}

/// SSE built from `String`s is UTF-8.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `response.created`
pub fn ev_created(id: &str) -> Value {
    json!({ "type": "response.created", "response": response(id, "in_progress", &[], None) })
}

/// `response.in_progress`
pub fn ev_in_progress(id: &str) -> Value {
    json!({ "type": "response.in_progress", "response": response(id, "in_progress", &[], None) })
}

/// An assistant `message` output item with one `output_text` part.
pub fn message_item(item_id: &str, text: &str, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([{ "type": "output_text", "text": text, "annotations": [] }])
    };
    json!({ "id": item_id, "type": "message", "status": status, "role": "assistant", "content": content })
}

/// `response.output_item.added` for an assistant message.
pub fn ev_message_added(output_index: u32, item_id: &str) -> Value {
    json!({
        "type": "response.output_item.added",
        "output_index": output_index,
        "item": message_item(item_id, "", "in_progress"),
    })
}

/// `response.content_part.added` (an empty `output_text` part).
pub fn ev_content_part_added(output_index: u32, item_id: &str) -> Value {
    json!({
        "type": "response.content_part.added",
        "item_id": item_id, "output_index": output_index, "content_index": 0,
        "part": { "type": "output_text", "text": "", "annotations": [] },
    })
}

/// `response.output_text.delta`
pub fn ev_text_delta(output_index: u32, item_id: &str, delta: &str) -> Value {
    json!({
        "type": "response.output_text.delta",
        "item_id": item_id, "output_index": output_index, "content_index": 0, "delta": delta,
    })
}

/// `response.output_text.done`
pub fn ev_text_done(output_index: u32, item_id: &str, text: &str) -> Value {
    json!({
        "type": "response.output_text.done",
        "item_id": item_id, "output_index": output_index, "content_index": 0, "text": text,
    })
}

/// `response.content_part.done`
pub fn ev_content_part_done(output_index: u32, item_id: &str, text: &str) -> Value {
    json!({
        "type": "response.content_part.done",
        "item_id": item_id, "output_index": output_index, "content_index": 0,
        "part": { "type": "output_text", "text": text, "annotations": [] },
    })
}

/// `response.output_item.done` for an assistant message.
pub fn ev_message_done(output_index: u32, item_id: &str, text: &str) -> Value {
    json!({
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": message_item(item_id, text, "completed"),
    })
}

/// A `reasoning` output item.
pub fn reasoning_item(item_id: &str, summary: &str, encrypted: Option<&str>) -> Value {
    let summary = if summary.is_empty() {
        json!([])
    } else {
        json!([{ "type": "summary_text", "text": summary }])
    };
    let mut item = json!({ "id": item_id, "type": "reasoning", "summary": summary });
    if let Some(enc) = encrypted {
        item["encrypted_content"] = json!(enc);
    }
    item
}

/// `response.output_item.added` for a reasoning item.
pub fn ev_reasoning_added(output_index: u32, item_id: &str) -> Value {
    json!({
        "type": "response.output_item.added",
        "output_index": output_index,
        "item": reasoning_item(item_id, "", None),
    })
}

/// `response.reasoning_summary_part.added`
pub fn ev_reasoning_summary_part_added(
    output_index: u32,
    item_id: &str,
    summary_index: u32,
) -> Value {
    json!({
        "type": "response.reasoning_summary_part.added",
        "item_id": item_id, "output_index": output_index, "summary_index": summary_index,
        "part": { "type": "summary_text", "text": "" },
    })
}

/// `response.reasoning_summary_text.delta`
pub fn ev_reasoning_summary_delta(
    output_index: u32,
    item_id: &str,
    summary_index: u32,
    delta: &str,
) -> Value {
    json!({
        "type": "response.reasoning_summary_text.delta",
        "item_id": item_id, "output_index": output_index, "summary_index": summary_index, "delta": delta,
    })
}

/// `response.reasoning_summary_text.done`
pub fn ev_reasoning_summary_done(
    output_index: u32,
    item_id: &str,
    summary_index: u32,
    text: &str,
) -> Value {
    json!({
        "type": "response.reasoning_summary_text.done",
        "item_id": item_id, "output_index": output_index, "summary_index": summary_index, "text": text,
    })
}

/// `response.output_item.done` for a reasoning item.
pub fn ev_reasoning_done(
    output_index: u32,
    item_id: &str,
    summary: &str,
    encrypted: Option<&str>,
) -> Value {
    json!({
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": reasoning_item(item_id, summary, encrypted),
    })
}

/// A `function_call` output item.
pub fn function_call_item(
    item_id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "id": item_id, "type": "function_call", "status": status,
        "call_id": call_id, "name": name, "arguments": arguments,
    })
}

/// `response.output_item.added` for a function call.
pub fn ev_function_call_added(
    output_index: u32,
    item_id: &str,
    call_id: &str,
    name: &str,
) -> Value {
    json!({
        "type": "response.output_item.added",
        "output_index": output_index,
        "item": function_call_item(item_id, call_id, name, "", "in_progress"),
    })
}

/// `response.function_call_arguments.delta`
pub fn ev_function_call_arguments_delta(output_index: u32, item_id: &str, delta: &str) -> Value {
    json!({
        "type": "response.function_call_arguments.delta",
        "item_id": item_id, "output_index": output_index, "delta": delta,
    })
}

/// `response.function_call_arguments.done`
pub fn ev_function_call_arguments_done(output_index: u32, item_id: &str, arguments: &str) -> Value {
    json!({
        "type": "response.function_call_arguments.done",
        "item_id": item_id, "output_index": output_index, "arguments": arguments,
    })
}

/// `response.output_item.done` for a function call.
pub fn ev_function_call_done(
    output_index: u32,
    item_id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": function_call_item(item_id, call_id, name, arguments, "completed"),
    })
}

/// `response.completed` with an empty `output` (clients rebuild it from the deltas).
pub fn ev_completed(id: &str, usage: Usage) -> Value {
    ev_completed_with_output(id, Vec::new(), usage)
}

/// `response.completed` carrying the final `output` items.
pub fn ev_completed_with_output(id: &str, output: Vec<Value>, usage: Usage) -> Value {
    let output = Value::Array(output);
    json!({ "type": "response.completed", "response": {
        "id": id, "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "model": MODEL, "output": output, "usage": usage.to_json(),
    } })
}

/// `response.incomplete` with `incomplete_details.reason`.
pub fn ev_incomplete(id: &str, reason: &str, usage: Usage) -> Value {
    let mut r = response(id, "incomplete", &[], Some(usage));
    r["incomplete_details"] = json!({ "reason": reason });
    json!({ "type": "response.incomplete", "response": r })
}

/// `response.failed` with `error.code` and `error.message`.
pub fn ev_failed(id: &str, code: &str, message: &str) -> Value {
    let mut r = response(id, "failed", &[], Some(Usage::default()));
    r["error"] = json!({ "code": code, "message": message });
    json!({ "type": "response.failed", "response": r })
}

/// A bare `error` event.
pub fn ev_error(code: &str, message: &str) -> Value {
    json!({ "type": "error", "code": code, "message": message, "param": null })
}

/// The whole event sequence of a plain text answer, `text` split into `deltas` (all of
/// them concatenated must equal the answer).
pub fn text_events(resp_id: &str, deltas: &[&str], usage: Usage) -> Vec<Value> {
    let text: String = deltas.concat();
    let mut evs = vec![
        ev_created(resp_id),
        ev_in_progress(resp_id),
        ev_message_added(0, "msg_1"),
        ev_content_part_added(0, "msg_1"),
    ];
    evs.extend(deltas.iter().map(|d| ev_text_delta(0, "msg_1", d)));
    evs.push(ev_text_done(0, "msg_1", &text));
    evs.push(ev_content_part_done(0, "msg_1", &text));
    evs.push(ev_message_done(0, "msg_1", &text));
    evs.push(ev_completed_with_output(
        resp_id,
        vec![message_item("msg_1", &text, "completed")],
        usage,
    ));
    evs
}

/// The events of one function call at `output_index`, arguments streamed in `deltas`.
pub fn function_call_events(
    output_index: u32,
    item_id: &str,
    call_id: &str,
    name: &str,
    deltas: &[&str],
) -> Vec<Value> {
    let args: String = deltas.concat();
    let mut evs = vec![ev_function_call_added(output_index, item_id, call_id, name)];
    evs.extend(
        deltas
            .iter()
            .map(|d| ev_function_call_arguments_delta(output_index, item_id, d)),
    );
    evs.push(ev_function_call_arguments_done(
        output_index,
        item_id,
        &args,
    ));
    evs.push(ev_function_call_done(
        output_index,
        item_id,
        call_id,
        name,
        &args,
    ));
    evs
}
