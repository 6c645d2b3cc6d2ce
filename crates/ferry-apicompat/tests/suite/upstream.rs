//! Test support for the response and stream directions: a tiny SSE splitter for
//! `fixtures/upstream/*.sse`, a driver for the stream converter, strict test-side types for
//! what it emits, the stream invariant, and a reassembler that folds an Anthropic stream
//! into the message a client SDK would build.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::path::{Path, PathBuf};

use ferry_apicompat::convert::{self, FailureKind, ToolNames, UpstreamFailure, stream};
use ferry_apicompat::{anthropic, responses};
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

pub(super) fn upstream(name: &str) -> PathBuf {
    fixtures().join("upstream").join(name)
}

/// The client model every fixture is converted for.
pub(super) const CLIENT_MODEL: &str = "claude-opus-4-8";

/// A client tool name longer than the Responses limit (see `d5_long_tool_name`).
pub(super) const LONG_TOOL: &str =
    "mcp__very_long_server_name_for_testing__tool_with_an_extremely_long_descriptive_name";

/// The tool names of the (imaginary) request behind every fixture.
pub(super) fn tool_names() -> ToolNames {
    ToolNames::from_names(["Read", "get_weather", "apply_patch", LONG_TOOL])
}

pub(super) fn stream_options() -> stream::Options {
    stream::Options::new(CLIENT_MODEL, tool_names())
}

/// One upstream frame, as the server would hand it to the converter.
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "a test fixture, built once")]
pub(super) enum Upstream {
    Event(responses::StreamEvent),
    /// A frame that did not parse; `terminal` when its kind ends a response.
    Bad {
        kind: String,
        terminal: bool,
    },
    /// `data: [DONE]`.
    DoneMarker,
}

/// Splits SSE text into `(event, data)` frames: blank-line separated, `data:` lines joined
/// with `\n`, comments and other fields ignored.
pub(super) fn split_sse(text: &str) -> Vec<(Option<String>, String)> {
    let mut frames = Vec::new();
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !data.is_empty() {
            frames.push((event, data.join("\n")));
        }
    }
    frames
}

/// Parses frames the way the server does: `[DONE]` is a marker, a missing `type` is taken
/// from the `event:` line, a frame that does not parse is remembered as bad.
pub(super) fn parse_frames(frames: &[(Option<String>, String)]) -> Vec<Upstream> {
    frames
        .iter()
        .map(|(event, data)| {
            if data.trim() == "[DONE]" {
                return Upstream::DoneMarker;
            }
            let mut payload = data.clone();
            if let (Some(event), Ok(Value::Object(mut map))) =
                (event, serde_json::from_str::<Value>(data))
                && !map.contains_key("type")
            {
                map.insert("type".to_owned(), Value::String(event.clone()));
                payload = Value::Object(map).to_string();
            }
            match responses::StreamEvent::from_json(&payload) {
                Ok(ev) => Upstream::Event(ev),
                Err(_) => {
                    let kind = serde_json::from_str::<Value>(&payload)
                        .ok()
                        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                        .or_else(|| event.clone())
                        .unwrap_or_default();
                    let terminal = responses::StreamEvent::is_terminal_kind(&kind);
                    Upstream::Bad { kind, terminal }
                }
            }
        })
        .collect()
}

pub(super) fn load_stream(path: &Path) -> Vec<Upstream> {
    parse_frames(&split_sse(&std::fs::read_to_string(path).unwrap()))
}

/// Feeds frames to a converter as the server would, then finishes it.
pub(super) fn run(frames: &[Upstream]) -> (Vec<anthropic::StreamEvent>, stream::StreamConverter) {
    let mut conv = stream::StreamConverter::new(stream_options());
    let mut out = Vec::new();
    for frame in frames {
        match frame {
            Upstream::Event(ev) => conv.on_event(ev, &mut out),
            Upstream::Bad {
                kind,
                terminal: true,
            } => conv.fail(
                UpstreamFailure::new(
                    FailureKind::InvalidStream,
                    None,
                    &format!("unreadable `{kind}` event from upstream"),
                ),
                &mut out,
            ),
            Upstream::Bad {
                terminal: false, ..
            } => {}
            Upstream::DoneMarker => break,
        }
    }
    conv.finish(&mut out);
    (out, conv)
}

/// The SSE text a client receives.
pub(super) fn render(events: &[anthropic::StreamEvent]) -> String {
    let mut text = String::new();
    for ev in events {
        text.push_str("event: ");
        text.push_str(ev.event_name());
        text.push_str("\ndata: ");
        text.push_str(&serde_json::to_string(ev).unwrap());
        text.push_str("\n\n");
    }
    text
}

// ----- strict test-side types ------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum TEvent {
    MessageStart { message: TMessage },
    ContentBlockStart { index: u32, content_block: TBlock },
    ContentBlockDelta { index: u32, delta: TDelta },
    ContentBlockStop { index: u32 },
    MessageDelta { delta: TMessageDelta, usage: TUsage },
    MessageStop,
    Ping,
    Error { error: TError },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TMessage {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) role: String,
    pub(super) model: String,
    pub(super) content: Vec<Value>,
    pub(super) stop_reason: Value,
    pub(super) stop_sequence: Value,
    pub(super) usage: TUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TUsage {
    pub(super) input_tokens: u64,
    pub(super) output_tokens: u64,
    pub(super) cache_creation_input_tokens: u64,
    pub(super) cache_read_input_tokens: u64,
    #[serde(default)]
    pub(super) server_tool_use: Option<TServerToolUse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TServerToolUse {
    pub(super) web_search_requests: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum TBlock {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ServerToolUse {
        id: String,
        name: String,
        input: Value,
    },
    WebSearchToolResult {
        tool_use_id: String,
        content: Value,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[expect(clippy::enum_variant_names, reason = "the wire names end in _delta")]
pub(super) enum TDelta {
    TextDelta { text: String },
    InputJsonDelta { partial_json: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TMessageDelta {
    pub(super) stop_reason: String,
    pub(super) stop_sequence: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TError {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) message: String,
}

/// Serialises every event and parses it back strictly: a stray or missing field fails.
pub(super) fn strict(events: &[anthropic::StreamEvent]) -> Vec<TEvent> {
    events
        .iter()
        .map(|ev| {
            let text = serde_json::to_string(ev).unwrap();
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
        })
        .collect()
}

/// The stream invariant: one `message_start` first (or a lone `error`), dense indexes, one
/// open block at a time, deltas only on the open block and of its kind, a signature only
/// last in a thinking block, every started block stopped before `message_delta`, exactly
/// one `message_delta` right before `message_stop`, and nothing after `message_stop` or
/// `error`. Tool inputs reassemble to JSON objects.
pub(super) fn check_invariant(events: &[TEvent]) -> Result<(), String> {
    check_structure(events, true)
}

/// [`check_invariant`]; `tool_json` also requires tool inputs to reassemble to JSON objects
/// (not guaranteed when upstream argument deltas were lost or repeated: they stream live).
pub(super) fn check_structure(events: &[TEvent], tool_json: bool) -> Result<(), String> {
    let Some(first) = events.first() else {
        return Err("empty stream".into());
    };
    match first {
        TEvent::MessageStart { message } => {
            if message.kind != "message" || message.role != "assistant" {
                return Err("message_start: wrong type or role".into());
            }
            if !message.content.is_empty()
                || !message.stop_reason.is_null()
                || !message.stop_sequence.is_null()
            {
                return Err(
                    "message_start: content, stop_reason and stop_sequence must be empty".into(),
                );
            }
            // E16: usage is known only at the end, in message_delta.
            let zero = TUsage {
                input_tokens: 0,
                output_tokens: 0,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
                server_tool_use: None,
            };
            if message.usage != zero {
                return Err("message_start: usage must be zeros".into());
            }
            if message.model != CLIENT_MODEL {
                return Err(format!("message_start: model {}", message.model));
            }
        }
        TEvent::Error { .. } if events.len() == 1 => return Ok(()),
        other => return Err(format!("first event is {other:?}")),
    }
    let mut next_index = 0u32;
    let mut open: Option<(u32, TBlock, String, bool)> = None; // index, block, json, signed
    let mut saw_message_delta = false;
    for (n, ev) in events.iter().enumerate().skip(1) {
        let last = n + 1 == events.len();
        match ev {
            TEvent::MessageStart { .. } => return Err(format!("#{n}: second message_start")),
            TEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if saw_message_delta {
                    return Err(format!("#{n}: block after message_delta"));
                }
                if let Some((i, ..)) = &open {
                    return Err(format!("#{n}: start {index} while {i} is open"));
                }
                if *index != next_index {
                    return Err(format!("#{n}: start {index}, expected {next_index}"));
                }
                match content_block {
                    TBlock::Text { text } if !text.is_empty() => {
                        return Err(format!("#{n}: text block starts non-empty"));
                    }
                    TBlock::Thinking {
                        thinking,
                        signature,
                    } if !thinking.is_empty() || !signature.is_empty() => {
                        return Err(format!("#{n}: thinking block starts non-empty"));
                    }
                    TBlock::ToolUse { input, .. } | TBlock::ServerToolUse { input, .. }
                        if *input != json!({}) =>
                    {
                        return Err(format!("#{n}: tool block starts with input"));
                    }
                    _ => {}
                }
                open = Some((*index, content_block.clone(), String::new(), false));
            }
            TEvent::ContentBlockDelta { index, delta } => {
                let Some((i, block, json, signed)) = open.as_mut() else {
                    return Err(format!("#{n}: delta on {index} with no open block"));
                };
                if index != i {
                    return Err(format!("#{n}: delta on {index} while {i} is open"));
                }
                if *signed {
                    return Err(format!("#{n}: delta after signature_delta"));
                }
                match (block, delta) {
                    (TBlock::Text { .. }, TDelta::TextDelta { text }) if !text.is_empty() => {}
                    (TBlock::Thinking { .. }, TDelta::ThinkingDelta { thinking })
                        if !thinking.is_empty() => {}
                    (TBlock::Thinking { .. }, TDelta::SignatureDelta { signature })
                        if !signature.is_empty() =>
                    {
                        *signed = true;
                    }
                    (
                        TBlock::ToolUse { .. } | TBlock::ServerToolUse { .. },
                        TDelta::InputJsonDelta { partial_json },
                    ) if !partial_json.is_empty() => json.push_str(partial_json),
                    (b, d) => return Err(format!("#{n}: delta {d:?} on block {b:?}")),
                }
            }
            TEvent::ContentBlockStop { index } => {
                let Some((i, block, json, _)) = open.take() else {
                    return Err(format!("#{n}: stop {index} with no open block"));
                };
                if *index != i {
                    return Err(format!("#{n}: stop {index} while {i} is open"));
                }
                if tool_json
                    && matches!(block, TBlock::ToolUse { .. } | TBlock::ServerToolUse { .. })
                    && !json.is_empty()
                    && !matches!(serde_json::from_str::<Value>(&json), Ok(Value::Object(_)))
                {
                    return Err(format!("#{n}: tool input {json:?} is not a JSON object"));
                }
                next_index += 1;
            }
            TEvent::MessageDelta { delta, .. } => {
                if !delta.stop_sequence.is_null() {
                    return Err(format!("#{n}: stop_sequence {}", delta.stop_sequence));
                }
                if saw_message_delta {
                    return Err(format!("#{n}: second message_delta"));
                }
                if let Some((i, ..)) = &open {
                    return Err(format!("#{n}: message_delta while {i} is open"));
                }
                saw_message_delta = true;
            }
            TEvent::MessageStop => {
                if !saw_message_delta {
                    return Err(format!("#{n}: message_stop without message_delta"));
                }
                if !last {
                    return Err(format!("#{n}: events after message_stop"));
                }
            }
            TEvent::Error { .. } => {
                if !last {
                    return Err(format!("#{n}: events after error"));
                }
                if saw_message_delta {
                    return Err(format!("#{n}: error after message_delta"));
                }
            }
            TEvent::Ping => {}
        }
    }
    match events.last() {
        Some(TEvent::MessageStop | TEvent::Error { .. }) => Ok(()),
        other => Err(format!("stream ends with {other:?}")),
    }
}

/// Folds a stream into the message a client SDK builds from it (tool inputs parsed,
/// signatures attached), plus the stop reason and usage; `None` if it ended in an error.
pub(super) fn reassemble(events: &[TEvent]) -> Option<Value> {
    let mut content: Vec<Value> = Vec::new();
    let mut json_buf = String::new();
    let mut result = json!({});
    for ev in events {
        match ev {
            TEvent::MessageStart { message } => {
                result = json!({"id": message.id, "model": message.model});
            }
            TEvent::ContentBlockStart { content_block, .. } => {
                json_buf.clear();
                content.push(block_json(content_block));
            }
            TEvent::ContentBlockDelta { delta, .. } => {
                let block = content.last_mut().unwrap();
                match delta {
                    TDelta::TextDelta { text } => append(block, "text", text),
                    TDelta::ThinkingDelta { thinking } => append(block, "thinking", thinking),
                    TDelta::SignatureDelta { signature } => append(block, "signature", signature),
                    TDelta::InputJsonDelta { partial_json } => json_buf.push_str(partial_json),
                }
            }
            TEvent::ContentBlockStop { .. } => {
                let block = content.last_mut().unwrap();
                if block.get("input").is_some() && !json_buf.is_empty() {
                    block["input"] = serde_json::from_str(&json_buf).unwrap();
                }
                json_buf.clear();
            }
            TEvent::MessageDelta { delta, usage } => {
                result["stop_reason"] = json!(delta.stop_reason);
                result["usage"] = json!({
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                    "cache_read_input_tokens": usage.cache_read_input_tokens,
                });
            }
            TEvent::Error { .. } => return None,
            TEvent::MessageStop | TEvent::Ping => {}
        }
    }
    result["content"] = Value::Array(content);
    Some(result)
}

fn append(block: &mut Value, field: &str, text: &str) {
    let current = block[field].as_str().unwrap_or_default().to_owned();
    block[field] = Value::String(current + text);
}

fn block_json(block: &TBlock) -> Value {
    match block {
        TBlock::Text { text } => json!({"type": "text", "text": text}),
        TBlock::Thinking {
            thinking,
            signature,
        } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        TBlock::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
        TBlock::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        TBlock::ServerToolUse { id, name, input } => {
            json!({"type": "server_tool_use", "id": id, "name": name, "input": input})
        }
        TBlock::WebSearchToolResult {
            tool_use_id,
            content,
        } => {
            json!({"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": content})
        }
    }
}

/// Content blocks compared across the buffered and streamed paths: empty text blocks
/// dropped and adjacent text blocks merged (a stream keeps one text block per message item,
/// a buffered message one per part).
pub(super) fn normalise(content: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for block in content {
        if block["type"] == "text" {
            let text = block["text"].as_str().unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            if let Some(prev) = out.last_mut().filter(|p| p["type"] == "text") {
                append(prev, "text", text);
                continue;
            }
        }
        out.push(block.clone());
    }
    out
}

/// The buffered conversion of a response, as JSON content blocks.
pub(super) fn buffered_content(resp: &responses::Response) -> Option<Vec<Value>> {
    let opts = convert::response::Options::new(CLIENT_MODEL, tool_names());
    let converted = convert::response::convert(resp, &opts).ok()?;
    Some(
        converted
            .value
            .content
            .iter()
            .map(|b| serde_json::to_value(b).unwrap())
            .collect(),
    )
}
