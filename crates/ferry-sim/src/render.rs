//! Rendering a [`Plan`]: Responses events framed as SSE (by the shared
//! `ferry_sse::encode_frame`), the final response object, and the OpenAI error body.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::plan::{Item, Plan, estimate_tokens, split_pieces};

/// The Responses API's answer to an input over the context window.
pub(crate) fn overflow_body() -> Value {
    json!({"error": {
        "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }})
}

/// The OpenAI error body the simulated upstream sends with a non-200 status.
pub(crate) fn error_body(status: u16) -> Value {
    let (kind, code, message) = match status {
        400 => (
            "invalid_request_error",
            "invalid_request",
            "Simulated bad request.",
        ),
        401 => (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            "unsupported_country_region_territory",
            "Simulated permission error.",
        ),
        404 => (
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you do not have access to it.",
        ),
        429 => (
            "rate_limit_error",
            "rate_limit_exceeded",
            "Rate limit reached (simulated). Please try again in 1s.",
        ),
        503 => (
            "server_error",
            "server_is_overloaded",
            "The server is overloaded (simulated).",
        ),
        _ => (
            "server_error",
            "server_error",
            "The server had an error while processing your request (simulated).",
        ),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

impl Plan {
    pub(crate) fn output_tokens(&self, output_bytes: usize) -> u64 {
        estimate_tokens(output_bytes) + self.reasoning_tokens
    }

    fn response(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        let mut r = Map::new();
        r.insert("id".to_owned(), json!(self.response_id));
        r.insert("object".to_owned(), json!("response"));
        r.insert("created_at".to_owned(), json!(self.created_at));
        r.insert("status".to_owned(), json!(status));
        r.insert("background".to_owned(), json!(false));
        r.insert("error".to_owned(), Value::Null);
        r.insert("incomplete_details".to_owned(), Value::Null);
        for (k, v) in &self.echo {
            r.insert(k.clone(), v.clone());
        }
        r.insert("output".to_owned(), Value::Array(output));
        r.insert("truncation".to_owned(), json!("disabled"));
        r.insert("usage".to_owned(), usage);
        r.insert("user".to_owned(), Value::Null);
        Value::Object(r)
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}{index:02}", self.id_base)
    }

    /// The final output items and the number of output bytes (for usage).
    pub(crate) fn output_items(&self) -> (Vec<Value>, usize) {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (index, item) in self.items.iter().enumerate() {
            match item {
                Item::Reasoning { summary, encrypted } => {
                    let mut v = json!({
                        "id": self.item_id("rs", index),
                        "type": "reasoning",
                        "summary": summary.iter().map(|s| json!({"type": "summary_text", "text": s})).collect::<Vec<_>>(),
                    });
                    if let (Some(e), Value::Object(m)) = (encrypted, &mut v) {
                        m.insert("encrypted_content".to_owned(), json!(e));
                    }
                    out.push(v);
                }
                Item::Text(text) => {
                    let text = self.visible_text(text);
                    bytes += text.len();
                    out.push(json!({
                        "id": self.item_id("msg", index),
                        "type": "message",
                        "status": if self.directives.incomplete { "incomplete" } else { "completed" },
                        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
                        "role": "assistant",
                    }));
                }
                Item::Call { name, arguments } => {
                    bytes += arguments.len() + name.len();
                    out.push(json!({
                        "id": self.item_id("fc", index),
                        "type": "function_call",
                        "status": "completed",
                        "arguments": arguments,
                        "call_id": self.item_id("call", index),
                        "name": name,
                    }));
                }
            }
        }
        (out, bytes)
    }

    /// With `[[incomplete]]` only the first half of the text is produced.
    fn visible_text(&self, text: &str) -> String {
        if self.directives.incomplete {
            let pieces = split_pieces(text, self.deltas);
            pieces[..pieces.len().div_ceil(2)].concat()
        } else {
            text.to_owned()
        }
    }

    fn usage(&self, output_bytes: usize) -> Value {
        let output_tokens = self.output_tokens(output_bytes);
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + output_tokens,
        })
    }

    fn terminal_status(&self) -> &'static str {
        if self.directives.fail.is_some() {
            "failed"
        } else if self.directives.incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response object of a non-streamed answer (the same as the terminal event's).
    pub(crate) fn final_response(&self) -> Value {
        let (output, bytes) = self.output_items();
        let mut response = self.response(self.terminal_status(), output, self.usage(bytes));
        self.mark_terminal(&mut response);
        response
    }

    fn mark_terminal(&self, response: &mut Value) {
        if let Some(message) = &self.directives.fail {
            response["error"] = json!({"code": "server_error", "message": message});
        }
        if self.directives.incomplete {
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
    }

    /// Every SSE frame of the streamed answer.
    pub(crate) fn events(&self) -> Vec<Bytes> {
        let mut w = EventWriter::default();
        let start = self.response("in_progress", Vec::new(), Value::Null);
        w.emit("response.created", json!({"response": start.clone()}));
        w.emit("response.in_progress", json!({"response": start}));
        let (finals, _) = self.output_items();
        let mut cut_now = false;
        for (index, (item, done)) in self.items.iter().zip(&finals).enumerate() {
            let id = done.get("id").cloned().unwrap_or(Value::Null);
            match item {
                Item::Reasoning { summary, .. } => {
                    w.emit(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
                    );
                    if let Some(summary) = summary {
                        let part = json!({"type": "summary_text", "text": ""});
                        w.emit(
                            "response.reasoning_summary_part.added",
                            json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                        );
                        for piece in split_pieces(summary, 4) {
                            w.emit(
                                "response.reasoning_summary_text.delta",
                                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": piece}),
                            );
                        }
                        w.emit(
                            "response.reasoning_summary_text.done",
                            json!({"item_id": id, "output_index": index, "summary_index": 0, "text": summary}),
                        );
                        w.emit(
                            "response.reasoning_summary_part.done",
                            json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": summary}}),
                        );
                    }
                    w.emit(
                        "response.output_item.done",
                        json!({"output_index": index, "item": done}),
                    );
                }
                Item::Text(text) => {
                    w.emit(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}),
                    );
                    w.emit(
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}),
                    );
                    let pieces = split_pieces(text, self.deltas);
                    let shown = if self.directives.cut || self.directives.incomplete {
                        pieces.len().div_ceil(2)
                    } else {
                        pieces.len()
                    };
                    for piece in &pieces[..shown] {
                        w.emit(
                            "response.output_text.delta",
                            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": piece, "logprobs": []}),
                        );
                    }
                    if self.directives.cut {
                        cut_now = true;
                        break;
                    }
                    let full = self.visible_text(text);
                    w.emit(
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "text": full, "logprobs": []}),
                    );
                    w.emit(
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": full}}),
                    );
                    w.emit(
                        "response.output_item.done",
                        json!({"output_index": index, "item": done}),
                    );
                }
                Item::Call { name, arguments } => {
                    let call_id = done.get("call_id").cloned().unwrap_or(Value::Null);
                    w.emit(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": call_id, "name": name}}),
                    );
                    let pieces = split_pieces(arguments, 3);
                    let shown = if self.directives.cut {
                        pieces.len().div_ceil(2)
                    } else {
                        pieces.len()
                    };
                    for piece in &pieces[..shown] {
                        w.emit(
                            "response.function_call_arguments.delta",
                            json!({"item_id": id, "output_index": index, "delta": piece}),
                        );
                    }
                    if self.directives.cut {
                        cut_now = true;
                        break;
                    }
                    w.emit(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": arguments}),
                    );
                    w.emit(
                        "response.output_item.done",
                        json!({"output_index": index, "item": done}),
                    );
                }
            }
        }
        if !cut_now {
            let response = self.final_response();
            let kind = match self.terminal_status() {
                "failed" => "response.failed",
                "incomplete" => "response.incomplete",
                _ => "response.completed",
            };
            w.emit(kind, json!({"response": response}));
        }
        w.frames
    }
}

/// Numbers events and frames them as SSE.
#[derive(Default)]
struct EventWriter {
    seq: u64,
    frames: Vec<Bytes>,
}

impl EventWriter {
    fn emit(&mut self, kind: &str, mut payload: Value) {
        if let Value::Object(m) = &mut payload {
            // `type` and `sequence_number` on every event, as OpenAI writes them.
            let mut ordered = Map::new();
            ordered.insert("type".to_owned(), json!(kind));
            ordered.append(m);
            ordered.insert("sequence_number".to_owned(), json!(self.seq));
            payload = Value::Object(ordered);
        }
        self.seq += 1;
        let data = payload.to_string();
        let mut frame = Vec::with_capacity(kind.len() + data.len() + 16);
        ferry_sse::encode_frame(kind, data.as_bytes(), &mut frame);
        self.frames.push(Bytes::from(frame));
    }
}
