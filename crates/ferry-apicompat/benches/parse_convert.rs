//! Parse + convert throughput of the streaming path, against a `serde_json` floor.
//!
//! Three synthetic upstream streams shaped like OpenAI's (every field OpenAI sends, so the
//! JSON work is realistic): 50 text deltas, 5,000 text deltas, and 20 parallel tool calls
//! whose argument deltas are interleaved. For each stream:
//!
//! * `sse_parse`: the SSE framing alone (`Parser::feed` over 4 KiB chunks);
//! * `parse_decode`: framing plus `decode_event` (the typed `responses::StreamEvent`);
//! * `parse_convert`: the whole streaming path of the server without I/O: framing,
//!   `decode_event`, `StreamConverter::on_event` and `encode_event` into client bytes;
//! * `floor_value`: `serde_json::from_slice::<serde_json::Value>` of the same `data:`
//!   payloads, already cut out (the floor the issue asks for);
//! * `floor_ignored`: `serde_json::from_slice::<serde::de::IgnoredAny>` of the payloads (a
//!   validating scan that builds nothing, for scale).
//!
//! Throughput is in bytes of upstream SSE. Results and ratios: `docs/BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry_apicompat::anthropic::encode_event;
use ferry_apicompat::convert::{
    ToolNames,
    stream::{Options, StreamConverter},
};
use ferry_apicompat::responses;
use ferry_sse::{Frame, Parser};

fn decode_event(frame: &Frame) -> Option<Result<responses::StreamEvent, responses::DecodeError>> {
    responses::decode(frame.event.as_deref(), &frame.data)
}
use serde_json::{Value, json};

const CHUNK: usize = 4096;
const MAX_LINE: usize = 1 << 24;

/// Builds an upstream SSE stream, OpenAI style (`event:` line, then the JSON with `type`).
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    sequence: u64,
}

impl Stream {
    /// Appends one event. As OpenAI does, `type` and `sequence_number` come first; the
    /// other fields follow in key order.
    fn event(&mut self, mut payload: Value) {
        let kind = payload["type"].as_str().unwrap_or_default().to_owned();
        if let Some(map) = payload.as_object_mut() {
            map.remove("type");
        }
        let rest = serde_json::to_string(&payload).unwrap_or_default();
        self.bytes.extend_from_slice(b"event: ");
        self.bytes.extend_from_slice(kind.as_bytes());
        self.bytes.extend_from_slice(b"\ndata: {\"type\":");
        self.bytes
            .extend_from_slice(serde_json::to_string(&kind).unwrap_or_default().as_bytes());
        self.bytes.extend_from_slice(b",\"sequence_number\":");
        self.bytes
            .extend_from_slice(self.sequence.to_string().as_bytes());
        self.sequence += 1;
        if rest.len() > 2 {
            self.bytes.push(b',');
            self.bytes.extend_from_slice(&rest.as_bytes()[1..]);
        } else {
            self.bytes.push(b'}');
        }
        self.bytes.extend_from_slice(b"\n\n");
    }
}

fn response(status: &str, output: &Value, usage: &Value) -> Value {
    json!({
        "id": "resp_0b2d4c6e8a1f3b5d7c9e0a2b4d6f8a1c3e5b7d9f",
        "object": "response",
        "created_at": 1_750_000_000,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "max_tool_calls": null,
        "model": "gpt-5.1-codex",
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "prompt_cache_key": "0f9a8b7c-6d5e-4f3a-2b1c-0d9e8f7a6b5c",
        "reasoning": {"effort": "medium", "summary": "auto"},
        "safety_identifier": null,
        "service_tier": "auto",
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {}
    })
}

fn usage() -> Value {
    json!({
        "input_tokens": 12_345,
        "input_tokens_details": {"cached_tokens": 11_264},
        "output_tokens": 5_120,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 17_465
    })
}

const WORDS: &[&str] = &[
    " the",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " lazy",
    " dog",
    ",",
    " and",
    " then",
    " writes",
    " `fn main()`",
    " with",
    " \"quotes\"",
    " in",
    " Rust",
    ".\n",
];

/// A message streamed as `deltas` text deltas.
fn text_stream(deltas: usize) -> Vec<u8> {
    let mut s = Stream::default();
    let item_id = "msg_0b2d4c6e8a1f3b5d7c9e0a2b4d6f8a1c";
    s.event(json!({"type": "response.created", "response": response("in_progress", &json!([]), &Value::Null)}));
    s.event(json!({"type": "response.in_progress", "response": response("in_progress", &json!([]), &Value::Null)}));
    s.event(json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}));
    s.event(json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0, "content_index": 0,
        "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}));
    let mut text = String::new();
    for i in 0..deltas {
        let word = WORDS[i % WORDS.len()];
        text.push_str(word);
        s.event(
            json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
            "content_index": 0, "delta": word, "logprobs": [], "obfuscation": "Xk2Lp9qR"}),
        );
    }
    s.event(
        json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
        "content_index": 0, "text": text, "logprobs": []}),
    );
    let part = json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
    s.event(
        json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0,
        "content_index": 0, "part": part}),
    );
    let item = json!({"id": item_id, "type": "message", "status": "completed", "content": [part], "role": "assistant"});
    s.event(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    s.event(json!({"type": "response.completed", "response": response("completed", &json!([item]), &usage())}));
    s.bytes
}

/// `calls` function calls whose argument deltas arrive interleaved.
fn parallel_tools_stream(calls: usize) -> Vec<u8> {
    let mut s = Stream::default();
    s.event(json!({"type": "response.created", "response": response("in_progress", &json!([]), &Value::Null)}));
    s.event(json!({"type": "response.in_progress", "response": response("in_progress", &json!([]), &Value::Null)}));
    let names = ["Read", "Grep", "Glob", "Bash"];
    let mut items = Vec::new();
    let mut pieces = Vec::new();
    for i in 0..calls {
        let id = format!("fc_0b2d4c6e8a1f3b5d7c9e0a2b4d6f{i:04}");
        let call_id = format!("call_Zx8Yw7Vu6Ts5Rq4Po3Nm{i:04}");
        let name = names[i % names.len()];
        let arguments = json!({"file_path": format!("/work/project/src/module_{i}/file_{i}.rs"),
            "offset": i * 10, "limit": 200, "pattern": "fn \\w+\\(", "description": "look at it"})
        .to_string();
        s.event(
            json!({"type": "response.output_item.added", "output_index": i,
            "item": {"id": id, "type": "function_call", "status": "in_progress", "arguments": "",
                     "call_id": call_id, "name": name}}),
        );
        let chunks: Vec<String> = arguments
            .as_bytes()
            .chunks(8)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        pieces.push(chunks);
        items.push(
            json!({"id": id, "type": "function_call", "status": "completed",
            "arguments": arguments, "call_id": call_id, "name": name}),
        );
    }
    let rounds = pieces.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for (i, chunks) in pieces.iter().enumerate() {
            if let Some(delta) = chunks.get(round) {
                s.event(json!({"type": "response.function_call_arguments.delta", "item_id": items[i]["id"],
                    "output_index": i, "delta": delta, "obfuscation": "Xk2Lp9qR"}));
            }
        }
    }
    for (i, item) in items.iter().enumerate() {
        s.event(
            json!({"type": "response.function_call_arguments.done", "item_id": item["id"],
            "output_index": i, "arguments": item["arguments"]}),
        );
        s.event(json!({"type": "response.output_item.done", "output_index": i, "item": item}));
    }
    s.event(json!({"type": "response.completed", "response": response("completed", &Value::Array(items), &usage())}));
    s.bytes
}

fn frames(sse: &[u8]) -> Vec<Frame> {
    let mut parser = Parser::new(MAX_LINE);
    let mut frames = Vec::new();
    let _ = parser.feed(sse, &mut frames);
    let _ = parser.finish(&mut frames);
    frames
}

/// Parse + decode + convert + encode, returning the client bytes written.
fn parse_convert(sse: &[u8], client: &mut Vec<u8>) -> usize {
    let mut parser = Parser::new(MAX_LINE);
    let mut converter =
        StreamConverter::new(Options::new("claude-sonnet-4-5", ToolNames::default()));
    let mut frames = Vec::new();
    let mut events = Vec::new();
    client.clear();
    for chunk in sse.chunks(CHUNK) {
        let _ = parser.feed(chunk, &mut frames);
        for frame in frames.drain(..) {
            if let Some(Ok(event)) = decode_event(&frame) {
                converter.on_event(&event, &mut events);
                for out in events.drain(..) {
                    encode_event(&out, client);
                }
            }
        }
    }
    let _ = parser.finish(&mut frames);
    converter.finish(&mut events);
    for out in events.drain(..) {
        encode_event(&out, client);
    }
    client.len()
}

fn bench(c: &mut Criterion) {
    let streams = [
        ("text_50_deltas", text_stream(50)),
        ("text_5000_deltas", text_stream(5_000)),
        ("parallel_tools_20", parallel_tools_stream(20)),
    ];
    for (name, sse) in &streams {
        let payloads: Vec<Vec<u8>> = frames(sse)
            .into_iter()
            .map(|f| f.data.into_bytes())
            .collect();
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(sse.len() as u64));
        group.bench_function(BenchmarkId::new("sse_parse", payloads.len()), |b| {
            let mut out = Vec::with_capacity(payloads.len());
            b.iter(|| {
                let mut parser = Parser::new(MAX_LINE);
                out.clear();
                for chunk in sse.chunks(CHUNK) {
                    let _ = parser.feed(black_box(chunk), &mut out);
                }
                let _ = parser.finish(&mut out);
                out.len()
            });
        });
        group.bench_function(BenchmarkId::new("parse_decode", payloads.len()), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                let mut parser = Parser::new(MAX_LINE);
                let mut decoded = 0usize;
                for chunk in sse.chunks(CHUNK) {
                    let _ = parser.feed(black_box(chunk), &mut out);
                    for frame in out.drain(..) {
                        decoded += usize::from(black_box(decode_event(&frame)).is_some());
                    }
                }
                decoded
            });
        });
        group.bench_function(BenchmarkId::new("parse_convert", payloads.len()), |b| {
            let mut client = Vec::new();
            b.iter(|| parse_convert(black_box(sse), &mut client));
        });
        group.bench_function(BenchmarkId::new("floor_value", payloads.len()), |b| {
            b.iter(|| {
                for p in &payloads {
                    let _ = black_box(serde_json::from_slice::<Value>(black_box(p)));
                }
            });
        });
        group.bench_function(BenchmarkId::new("floor_ignored", payloads.len()), |b| {
            b.iter(|| {
                for p in &payloads {
                    let _ = black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(
                        p,
                    )));
                }
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
