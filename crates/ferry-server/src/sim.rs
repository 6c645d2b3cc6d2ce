//! The simulated OpenAI Responses upstream: a generator of realistic Responses answers for a
//! given Responses request body, and a small hyper server around it.
//!
//! Used in process by the `simulated` account kind (so `ferry serve` answers out of the box,
//! with no network), and standalone by `ferry sim-upstream` (demos, e2e tests, benchmarks).
//!
//! # API (for the account code and the binary)
//! - [`SimOptions`]: number of text deltas, time to first event, time between events, and an
//!   optional fixed `created_at` (tests).
//! - [`simulate`]`(req, opts) -> `[`SimReply`]: the whole answer for one request: an HTTP
//!   status, extra headers, and either SSE frames ([`SimBody::Events`], when the request has
//!   `"stream": true`) or a JSON body ([`SimBody::Json`]: the response object, or an OpenAI
//!   error body when the status is not 200). Pure apart from reading the clock when
//!   `created_at` is not fixed.
//! - [`sim_events`]`(req, opts) -> Vec<Bytes>`: just the SSE frames (`event: …\ndata: …\n\n`,
//!   one per element) of a streamed answer, whatever the request's `stream` says; a request
//!   that asks for an HTTP error status gets a `response.failed` stream instead.
//! - [`PacedBody`]: an `http_body::Body` over frames that waits `ttft` before the first and
//!   `event_interval` between the others (zero delays: everything in one chunk).
//! - [`run_sim_upstream`]`(listener, opts, shutdown)`: serves `POST …/responses` (so both
//!   `/v1/responses` and `/responses`), `GET /health`, until `shutdown` resolves.
//!
//! # What it answers
//! Deterministic for a given request body and options (ids are derived from a hash of the
//! body; repeated identical requests get identical ids). It looks at the **last user
//! message** of `input` (text inside `<system-reminder>` tags is ignored, unless the message is
//! nothing but reminders, as a client's own "resume" prompt after `max_tokens` or a cut
//! stream is: then the reminders' text is the prompt):
//! - **Text** (default): `response.created`, `response.in_progress`, a message item
//!   (`output_item.added`, `content_part.added`, `output_text.delta` × `deltas`,
//!   `output_text.done`, `content_part.done`, `output_item.done`), `response.completed` with
//!   usage. The reply starts with `Simulated reply to: "<the prompt, shortened>".`
//! - **Reasoning**: when `reasoning.effort` is set and not `none`, a reasoning item comes first;
//!   with `reasoning.summary` set it carries a summary streamed as
//!   `reasoning_summary_text.delta`s; with `include: ["reasoning.encrypted_content"]` it
//!   carries an opaque `encrypted_content` (`gAAAAA…`). Reasoning tokens are counted in usage.
//! - **Tool calls**: `[[tool:NAME]]` or `[[tool:NAME:ARG]]` in the prompt calls the declared
//!   function tool NAME (several directives give parallel calls); without a directive, a
//!   prompt saying "use/call/run/invoke \[the\] NAME" for a declared tool NAME calls the first
//!   such tool. Arguments are plausible for the tool's JSON schema: required properties (or
//!   the first one), with ARG as the first string property, and streamed as
//!   `function_call_arguments.delta`s; an ARG that is a JSON object (`[[tool:Agent:{…}]]`)
//!   is the arguments exactly. Status `completed`, no text.
//! - **After a tool**: when the last input item is a `function_call_output`, the reply is text
//!   that quotes the output (`The tool returned: …`), never another call.
//! - **JSON mode**: `text.format.type` `json_object` gives `{"answer": "…"}`; `json_schema`
//!   gives an object plausible for `text.format.schema`.
//! - **Other directives** (for failure tests): `[[reply:TEXT]]` replies exactly TEXT;
//!   `[[incomplete]]` ends with `response.incomplete` (`max_output_tokens`);
//!   `[[fail:MESSAGE]]` ends with `response.failed` (`server_error`, MESSAGE);
//!   `[[cut]]` stops after half the deltas with no terminal event;
//!   `[[status:CODE]]` answers HTTP CODE with an OpenAI error body (429 adds `retry-after: 1`);
//!   `[[overflow:LIMIT]]` answers HTTP 400 `context_length_exceeded` (the Responses API's
//!   "Your input exceeds the context window of this model.") when the request's estimated
//!   input tokens are over LIMIT, and answers normally otherwise (a conversation that grows
//!   past LIMIT overflows; a compacted one fits again).
//! - **Tool loop** (for multi-turn client tests): `[[tool-loop:NAME:N]]` calls the declared
//!   tool NAME, after a tool result too, until the input holds N `function_call_output`s,
//!   then replies `Tool loop done: REPORT`. Each call's first string argument is REPORT:
//!   what this request carried, `outputs=O;calls=C;items=I;developer=D;tools=T` (tool
//!   outputs, tool calls, input items, developer/system messages, declared tools), so a
//!   client can check that every turn reached the upstream whole.
//!
//! Usage: `input_tokens` is estimated as bytes/4 of the instructions, input and tools;
//! `cached_tokens` is the estimate of the previous request's prompt (instructions, tools and
//! the input before the model's last output), counted only from 1,024 tokens and in steps of
//! 128 (OpenAI's prompt-cache granularity): 0 on a first turn, then growing turn by turn.
//! A request with `previous_response_id` (a continuation of a simulated response) is priced
//! as the whole conversation, everything before it cached: the response id ends with the
//! conversation's token count, so this needs no server state; `output_tokens` is bytes/4 of the output plus the
//! reasoning tokens (64 low, 128 medium, 256 high, 512 xhigh).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{DefaultHasher, Hasher as _};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// How the simulated upstream answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of `output_text.delta` events of a text answer (at least 1).
    pub deltas: usize,
    /// Delay before the first byte of a streamed answer (paced mode).
    pub ttft: Duration,
    /// Delay between two events of a streamed answer (paced mode).
    pub event_interval: Duration,
    /// `created_at` of every response; `None` reads the clock.
    pub created_at: Option<u64>,
}

impl Default for SimOptions {
    /// Zero-delay mode with 12 text deltas.
    fn default() -> Self {
        Self {
            deltas: 12,
            ttft: Duration::ZERO,
            event_interval: Duration::ZERO,
            created_at: None,
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReply {
    /// HTTP status (200, or what `[[status:CODE]]` asked for).
    pub status: u16,
    /// Extra response headers (`content-type` is implied by the body kind).
    pub headers: Vec<(&'static str, String)>,
    /// SSE frames or a JSON body.
    pub body: SimBody,
}

/// The body of a [`SimReply`].
#[derive(Debug, Clone, PartialEq)]
pub enum SimBody {
    /// `text/event-stream`: one complete SSE frame per element.
    Events(Vec<Bytes>),
    /// `application/json`: the response object, or an OpenAI error body.
    Json(Value),
}

/// The whole answer to a Responses request body. See the module docs for what it contains.
pub fn simulate(req: &Value, opts: &SimOptions) -> SimReply {
    let plan = Plan::new(req, opts);
    if let Some(status) = plan.directives.status {
        let mut headers = vec![("x-request-id", format!("req_{}", plan.id_base))];
        if status == 429 {
            headers.push(("retry-after", "1".to_owned()));
        }
        return SimReply {
            status,
            headers,
            body: SimBody::Json(if plan.directives.overflowed {
                overflow_body()
            } else {
                error_body(status)
            }),
        };
    }
    let headers = vec![("x-request-id", format!("req_{}", plan.id_base))];
    let streamed = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let body = if streamed {
        SimBody::Events(plan.events())
    } else {
        SimBody::Json(plan.final_response())
    };
    SimReply {
        status: 200,
        headers,
        body,
    }
}

/// The SSE frames of a streamed answer to `req` (see the module docs). A request that asks
/// for an HTTP error status gets a stream ending in `response.failed` instead.
pub fn sim_events(req: &Value, opts: &SimOptions) -> Vec<Bytes> {
    let mut plan = Plan::new(req, opts);
    if let Some(status) = plan.directives.status.take() {
        plan.directives.fail = Some(format!("simulated upstream error (HTTP {status})"));
    }
    plan.events()
}

/// The Responses API's answer to an input over the context window.
fn overflow_body() -> Value {
    json!({"error": {
        "message": "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }})
}

/// The OpenAI error body the simulated upstream sends with a non-200 status.
fn error_body(status: u16) -> Value {
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

// ---------------------------------------------------------------------------------------
// Reading the request

/// What the prompt asked for.
#[derive(Debug, Default)]
struct Directives {
    tools: Vec<(String, Option<String>)>,
    reply: Option<String>,
    incomplete: bool,
    fail: Option<String>,
    cut: bool,
    status: Option<u16>,
    /// `[[tool-loop:NAME:N]]`.
    tool_loop: Option<(String, usize)>,
    /// `[[overflow:LIMIT]]`.
    overflow: Option<u64>,
    /// Set by [`Plan::new`] when the input is over `overflow`.
    overflowed: bool,
}

fn parse_directives(text: &str) -> Directives {
    let mut d = Directives::default();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let body = &after[..end];
        rest = &after[end + 2..];
        let (name, arg) = match body.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (body.trim(), None),
        };
        match (name, arg) {
            ("tool", Some(spec)) => {
                let (tool, arg) = match spec.split_once(':') {
                    Some((t, a)) => (t.trim(), Some(a.to_owned())),
                    None => (spec.trim(), None),
                };
                if !tool.is_empty() {
                    d.tools.push((tool.to_owned(), arg));
                }
            }
            ("reply", Some(text)) => d.reply = Some(text.to_owned()),
            ("tool-loop", Some(spec)) => {
                if let Some((tool, n)) = spec.rsplit_once(':')
                    && let Ok(n) = n.trim().parse::<usize>()
                    && !tool.trim().is_empty()
                {
                    d.tool_loop = Some((tool.trim().to_owned(), n));
                }
            }
            ("incomplete", None) => d.incomplete = true,
            ("fail", arg) => d.fail = Some(arg.unwrap_or("simulated failure").to_owned()),
            ("cut", None) => d.cut = true,
            ("overflow", Some(limit)) => d.overflow = limit.trim().parse::<u64>().ok(),
            ("status", Some(code)) => {
                d.status = code
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (400..=599).contains(c));
            }
            _ => {}
        }
    }
    d
}

/// Text of a message item's content (a string, or `input_text`/`output_text` parts).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Removes `<system-reminder>…</system-reminder>` spans (Claude Code's injected context).
fn strip_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        match rest[start..].find(CLOSE) {
            Some(end) => rest = &rest[start + end + CLOSE.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The prompt of a user message's text: the text outside `<system-reminder>` spans, or, when
/// there is none (a client's resume prompt), the reminders' own text.
fn prompt_of(text: &str) -> String {
    let outside = strip_reminders(text);
    if !outside.trim().is_empty() {
        return outside;
    }
    text.replace("<system-reminder>", "")
        .replace("</system-reminder>", "")
        .trim()
        .to_owned()
}

fn is_user_message(item: &Value) -> bool {
    let typ = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    typ == "message" && item.get("role").and_then(Value::as_str) == Some("user")
}

/// A declared function tool.
struct ToolDef<'a> {
    name: &'a str,
    parameters: Option<&'a Value>,
}

fn declared_tools(req: &Value) -> Vec<ToolDef<'_>> {
    req.get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .filter_map(|t| {
                    Some(ToolDef {
                        name: t.get("name")?.as_str()?,
                        parameters: t.get("parameters"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The first declared tool the prompt asks for by name ("use the Bash tool", "call get_weather").
fn mentioned_tool<'a>(prompt: &str, tools: &[ToolDef<'a>]) -> Option<&'a str> {
    let words: Vec<&str> = prompt
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let asked = |name: &str| {
        words.iter().enumerate().any(|(i, w)| {
            *w == name
                && [1, 2].iter().any(|back| {
                    i.checked_sub(*back)
                        .and_then(|j| words.get(j))
                        .is_some_and(|v| {
                            let v = v.to_ascii_lowercase();
                            let verb = i - back;
                            // "Do NOT use Read" (Claude Code's compaction prompt) asks for no tool.
                            let negated = verb
                                .checked_sub(1)
                                .and_then(|k| words.get(k))
                                .is_some_and(|n| {
                                    matches!(
                                        n.to_ascii_lowercase().as_str(),
                                        "not" | "never" | "don" | "t" | "no"
                                    )
                                });
                            matches!(v.as_str(), "use" | "call" | "run" | "invoke")
                                && !negated
                                && (*back == 1 || words[i - 1].eq_ignore_ascii_case("the"))
                        })
                })
        })
    };
    tools.iter().find(|t| asked(t.name)).map(|t| t.name)
}

/// A value plausible for `schema`; `arg` fills the first string it meets.
fn plausible(schema: &Value, arg: &mut Option<String>, depth: usize) -> Value {
    if let Some(Value::Array(options)) = schema.get("enum") {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return plausible(first, arg, depth);
        }
    }
    let typ = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match typ {
        "object" if depth < 6 => {
            let mut out = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = props {
                let chosen: Vec<&String> = if required.is_empty() {
                    props.keys().take(1).collect()
                } else {
                    props
                        .keys()
                        .filter(|k| required.contains(&k.as_str()))
                        .collect()
                };
                // Fill string properties named first in `required` order, so ARG lands on
                // the property the tool cares most about.
                let mut ordered = chosen;
                ordered.sort_by_key(|k| required.iter().position(|r| r == k).unwrap_or(usize::MAX));
                for key in ordered {
                    if let Some(sub) = props.get(key.as_str()) {
                        out.insert(key.clone(), plausible(sub, arg, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "object" => json!({}),
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            match schema.get("items") {
                Some(items) if min > 0 && depth < 6 => {
                    Value::Array(vec![plausible(items, arg, depth + 1)])
                }
                _ => json!([]),
            }
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => Value::String(arg.take().unwrap_or_else(|| "example".to_owned())),
    }
}

/// Cached tokens as OpenAI reports them: nothing below 1,024, then in steps of 128.
fn cache_granular(tokens: u64) -> u64 {
    if tokens >= 1024 {
        tokens / 128 * 128
    } else {
        0
    }
}

/// The conversation size (tokens) carried at the end of a simulated response id
/// (`resp_` + 32 hex of hash + 8 hex of tokens); `None` for any other id.
fn response_id_tokens(id: &str) -> Option<u64> {
    let hex = id.strip_prefix("resp_")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&hex[32..], 16).ok()
}

fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

fn shorten(text: &str, max_chars: usize) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let mut s: String = collapsed.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

/// Splits `text` into exactly `n` non-empty pieces, at word boundaries when it has at least
/// `n` words (fewer pieces only when it has fewer than `n` characters).
fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    if words.len() >= n {
        return (0..n)
            .map(|i| words[words.len() * i / n..words.len() * (i + 1) / n].concat())
            .collect();
    }
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= n {
        return chars.iter().map(char::to_string).collect();
    }
    (0..n)
        .map(|i| {
            chars[chars.len() * i / n..chars.len() * (i + 1) / n]
                .iter()
                .collect()
        })
        .collect()
}

/// Appends filler words until `text` has at least `words` words, so a text answer can be
/// streamed as that many word-sized deltas.
fn pad_words(mut text: String, words: usize) -> String {
    let mut have = text.split_inclusive(' ').count();
    let mut filler = FILLER.iter().cycle();
    while have < words {
        if let Some(word) = filler.next() {
            text.push(' ');
            text.push_str(word);
        }
        have += 1;
    }
    text
}

const FILLER: &[&str] = &[
    "This",
    "answer",
    "comes",
    "from",
    "ferry's",
    "built-in",
    "simulated",
    "upstream,",
    "so",
    "it",
    "works",
    "offline",
    "and",
    "is",
    "the",
    "same",
    "every",
    "time.",
];

// ---------------------------------------------------------------------------------------
// Building the answer

/// One output item to emit.
enum Item {
    Reasoning {
        summary: Option<String>,
        encrypted: Option<String>,
    },
    Text(String),
    Call {
        name: String,
        arguments: String,
    },
}

/// Everything decided about one answer before any event is written.
struct Plan {
    directives: Directives,
    id_base: String,
    response_id: String,
    created_at: u64,
    deltas: usize,
    echo: Map<String, Value>,
    items: Vec<Item>,
    input_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
}

impl Plan {
    fn new(req: &Value, opts: &SimOptions) -> Self {
        let body = serde_json::to_string(req).unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        hasher.write(body.as_bytes());
        let h = hasher.finish();
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(h);
        hasher.write(b"ferry-sim");
        let id_base = format!("{h:016x}{:016x}", hasher.finish());
        let created_at = opts.created_at.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });

        let input = match req.get("input") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
            _ => Vec::new(),
        };
        let last_user = input.iter().rposition(is_user_message);
        let prompt = last_user
            .and_then(|i| input[i].get("content"))
            .map(content_text)
            .map(|t| prompt_of(&t))
            .unwrap_or_default();
        let mut directives = parse_directives(&prompt);
        let after_tool = input.last().is_some_and(|item| {
            item.get("type").and_then(Value::as_str) == Some("function_call_output")
        });

        // Usage estimates.
        let size_of = |v: Option<&Value>| v.map_or(0, |v| v.to_string().len());
        let fixed = size_of(req.get("instructions")) + size_of(req.get("tools"));
        let input_size = size_of(req.get("input"));
        let input_tokens = estimate_tokens(fixed + input_size).max(1);
        if directives
            .overflow
            .is_some_and(|limit| input_tokens > limit)
        {
            directives.overflowed = true;
            directives.status = Some(400);
        }
        // The previous request of this conversation ended where the model's last output
        // (assistant message, reasoning, tool call) begins; that prompt is in the cache.
        let is_model_output = |item: &Value| {
            let typ = item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("message");
            match typ {
                "message" => item.get("role").and_then(Value::as_str) == Some("assistant"),
                other => !other.ends_with("_output") && other != "item_reference",
            }
        };
        let previous_end = input.iter().rposition(is_model_output).map(|last| {
            input[..=last]
                .iter()
                .rposition(|i| !is_model_output(i))
                .map_or(0, |i| i + 1)
        });
        let prefix_tokens = previous_end.map_or(0, |end| {
            estimate_tokens(
                fixed
                    + input[..end]
                        .iter()
                        .map(|v| v.to_string().len())
                        .sum::<usize>(),
            )
        });
        // A continuation: the upstream holds the earlier conversation, whose size the
        // previous response id carries (see `response_id_tokens`); all of it is cached.
        let prior = req
            .get("previous_response_id")
            .and_then(Value::as_str)
            .and_then(response_id_tokens);
        let (input_tokens, cached_tokens) = match prior {
            Some(prior) => (prior + input_tokens, cache_granular(prior)),
            None => (
                input_tokens,
                cache_granular(prefix_tokens).min(input_tokens),
            ),
        };

        let mut items = Vec::new();
        let reasoning = req.get("reasoning");
        let effort = reasoning
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
            .filter(|e| *e != "none");
        let reasoning_tokens = match effort {
            None => 0,
            Some("minimal") => 16,
            Some("low") => 64,
            Some("high") => 256,
            Some("xhigh") => 512,
            Some(_) => 128,
        };
        if effort.is_some() {
            let wants_summary = reasoning
                .and_then(|r| r.get("summary"))
                .is_some_and(|s| !s.is_null());
            let wants_encrypted = req
                .get("include")
                .and_then(Value::as_array)
                .is_some_and(|inc| {
                    inc.iter()
                        .any(|v| v.as_str() == Some("reasoning.encrypted_content"))
                });
            let topic = if after_tool {
                "the tool result".to_owned()
            } else {
                format!("\"{}\"", shorten(&prompt, 60))
            };
            items.push(Item::Reasoning {
                summary: wants_summary.then(|| {
                    format!(
                        "**Considering the request**\n\nThe user wrote {topic}. I will answer it directly and keep the reply short."
                    )
                }),
                encrypted: wants_encrypted.then(|| format!("gAAAAABsim_{id_base}_{h:x}")),
            });
        }

        let tools = declared_tools(req);
        let mut calls = Vec::new();
        let count_type = |t: &str| {
            input
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some(t))
                .count()
        };
        let loop_report = format!(
            "outputs={};calls={};items={};developer={};tools={}",
            count_type("function_call_output"),
            count_type("function_call"),
            input.len(),
            input
                .iter()
                .filter(|i| matches!(
                    i.get("role").and_then(Value::as_str),
                    Some("developer" | "system")
                ))
                .count(),
            tools.len(),
        );
        let mut loop_done = false;
        if let Some((name, n)) = &directives.tool_loop {
            if count_type("function_call_output") < *n {
                if let Some(tool) = tools.iter().find(|t| t.name == name) {
                    calls.push((tool, Some(loop_report.clone())));
                }
            } else {
                loop_done = true;
            }
        } else if !after_tool {
            for (name, arg) in &directives.tools {
                if let Some(tool) = tools.iter().find(|t| t.name == name) {
                    calls.push((tool, arg.clone()));
                }
            }
            if calls.is_empty()
                && directives.tools.is_empty()
                && let Some(name) = mentioned_tool(&prompt, &tools)
                && let Some(tool) = tools.iter().find(|t| t.name == name)
            {
                calls.push((tool, None));
            }
            let parallel = req
                .get("parallel_tool_calls")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if !parallel {
                calls.truncate(1);
            }
        }

        if calls.is_empty() {
            let text = if let Some(reply) = &directives.reply {
                reply.clone()
            } else if loop_done {
                format!("Tool loop done: {loop_report}")
            } else if after_tool {
                let output = input
                    .last()
                    .and_then(|i| i.get("output"))
                    .map(|o| match o {
                        Value::String(s) => s.clone(),
                        other => content_text(other),
                    })
                    .unwrap_or_default();
                format!("The tool returned: {}", shorten(&output, 200))
            } else {
                let missing: Vec<&str> = directives
                    .tools
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| !tools.iter().any(|t| t.name == *n))
                    .collect();
                if missing.is_empty() {
                    pad_words(
                        format!("Simulated reply to: \"{}\".", shorten(&prompt, 80)),
                        opts.deltas,
                    )
                } else {
                    format!(
                        "Simulated reply: no tool named {} is declared.",
                        missing.join(", ")
                    )
                }
            };
            items.push(Item::Text(json_mode_text(req, text)));
        } else {
            for (tool, arg) in calls {
                let mut arg = arg;
                // `[[tool:NAME:{…}]]`: the arguments exactly as written.
                let literal = arg
                    .as_deref()
                    .map(str::trim)
                    .filter(|a| a.starts_with('{'))
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                    .filter(Value::is_object);
                let args = match (literal, tool.parameters) {
                    (Some(literal), _) => literal,
                    (None, Some(schema)) => plausible(schema, &mut arg, 0),
                    (None, None) => json!({}),
                };
                items.push(Item::Call {
                    name: tool.name.to_owned(),
                    arguments: args.to_string(),
                });
            }
        }

        let mut echo = Map::new();
        for key in [
            "instructions",
            "max_output_tokens",
            "previous_response_id",
            "prompt_cache_key",
            "tools",
            "tool_choice",
            "temperature",
            "top_p",
            "parallel_tool_calls",
            "store",
            "metadata",
            "text",
            "reasoning",
        ] {
            echo.insert(key.to_owned(), req.get(key).cloned().unwrap_or(Value::Null));
        }
        let defaults = [
            ("tools", json!([])),
            ("tool_choice", json!("auto")),
            ("temperature", json!(1.0)),
            ("top_p", json!(1.0)),
            ("parallel_tool_calls", json!(true)),
            ("store", json!(true)),
            ("metadata", json!({})),
            (
                "text",
                json!({"format": {"type": "text"}, "verbosity": "medium"}),
            ),
            ("reasoning", json!({"effort": null, "summary": null})),
        ];
        for (key, value) in defaults {
            if echo.get(key).is_none_or(Value::is_null) {
                echo.insert(key.to_owned(), value);
            }
        }
        echo.insert(
            "model".to_owned(),
            req.get("model")
                .cloned()
                .unwrap_or_else(|| json!("gpt-5.1")),
        );
        let tier = match req.get("service_tier").and_then(Value::as_str) {
            Some("priority") => "priority",
            Some("flex") => "flex",
            _ => "default",
        };
        echo.insert("service_tier".to_owned(), json!(tier));

        let deltas = opts.deltas.max(1);
        let mut plan = Self {
            directives,
            id_base,
            response_id: String::new(),
            created_at,
            deltas,
            echo,
            items,
            input_tokens,
            cached_tokens,
            reasoning_tokens,
        };
        // The id ends with the conversation's size after this answer, so a continuation
        // (`previous_response_id`) can be priced without server state.
        let (_, output_bytes) = plan.output_items();
        let total = plan.input_tokens + plan.output_tokens(output_bytes);
        plan.response_id = format!(
            "resp_{}{:08x}",
            plan.id_base,
            total.min(u64::from(u32::MAX))
        );
        plan
    }

    fn output_tokens(&self, output_bytes: usize) -> u64 {
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
    fn output_items(&self) -> (Vec<Value>, usize) {
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
    fn final_response(&self) -> Value {
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
    fn events(&self) -> Vec<Bytes> {
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

/// The output text, in JSON form when `text.format` asks for it.
fn json_mode_text(req: &Value, text: String) -> String {
    let format = req.get("text").and_then(|t| t.get("format"));
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => json!({"answer": text}).to_string(),
        Some("json_schema") => {
            let mut arg = Some(text);
            let schema = format
                .and_then(|f| f.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            plausible(&schema, &mut arg, 0).to_string()
        }
        _ => text,
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
        let mut frame = BytesMut::with_capacity(kind.len() + data.len() + 16);
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(kind.as_bytes());
        frame.extend_from_slice(b"\ndata: ");
        frame.extend_from_slice(data.as_bytes());
        frame.extend_from_slice(b"\n\n");
        self.frames.push(frame.freeze());
    }
}

// ---------------------------------------------------------------------------------------
// Pacing

/// A response body over SSE frames that waits `ttft` before the first frame and
/// `event_interval` between frames. With both zero, all frames go out as one chunk.
///
/// Frame `k` is due at `first poll + ttft + k × event_interval` (an absolute schedule), so
/// the timer's 1 ms granularity delays each frame by less than a millisecond instead of
/// adding up over the frames: a benchmark can then compare a gateway's first event with
/// the upstream's own to well under a millisecond.
pub struct PacedBody {
    frames: VecDeque<Bytes>,
    ttft: Duration,
    interval: Duration,
    /// When the body was first polled.
    origin: Option<tokio::time::Instant>,
    /// Frames sent so far.
    sent: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PacedBody {
    /// Paces `frames` as `opts` says.
    pub fn new(frames: Vec<Bytes>, opts: &SimOptions) -> Self {
        let (frames, ttft, interval) = if opts.ttft.is_zero() && opts.event_interval.is_zero() {
            let joined: BytesMut = frames.iter().fold(BytesMut::new(), |mut acc, f| {
                acc.extend_from_slice(f);
                acc
            });
            let one = if joined.is_empty() {
                VecDeque::new()
            } else {
                VecDeque::from([joined.freeze()])
            };
            (one, Duration::ZERO, Duration::ZERO)
        } else {
            (frames.into(), opts.ttft, opts.event_interval)
        };
        Self {
            frames,
            ttft,
            interval,
            origin: None,
            sent: 0,
            sleep: None,
        }
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.frames.is_empty() {
            return Poll::Ready(None);
        }
        if !(this.ttft.is_zero() && this.interval.is_zero()) {
            let origin = *this.origin.get_or_insert_with(tokio::time::Instant::now);
            let due = origin + this.ttft + this.interval * this.sent;
            if due > tokio::time::Instant::now() {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            this.sleep = None;
        }
        this.sent = this.sent.saturating_add(1);
        Poll::Ready(this.frames.pop_front().map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.frames.is_empty() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The standalone server

/// Request bodies larger than this get 413.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// A body that is either complete or paced SSE.
enum SimResponseBody {
    Full(Option<Bytes>),
    Paced(PacedBody),
}

impl Body for SimResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Paced(p) => Pin::new(p).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Paced(p) => p.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Paced(p) => p.size_hint(),
        }
    }
}

fn json_response(status: u16, body: &Value) -> hyper::Response<SimResponseBody> {
    let mut resp = hyper::Response::new(SimResponseBody::Full(Some(Bytes::from(body.to_string()))));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn openai_error(status: u16, kind: &str, message: &str) -> hyper::Response<SimResponseBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    opts: &SimOptions,
) -> hyper::Response<SimResponseBody> {
    let path = req.uri().path().trim_end_matches('/');
    if req.method() == http::Method::GET && path == "/health" {
        let mut resp =
            hyper::Response::new(SimResponseBody::Full(Some(Bytes::from_static(b"ok\n"))));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        return resp;
    }
    if !path.ends_with("/responses") {
        return openai_error(
            404,
            "invalid_request_error",
            "Unknown path: the simulated upstream serves POST /v1/responses.",
        );
    }
    if req.method() != http::Method::POST {
        return openai_error(405, "invalid_request_error", "Use POST.");
    }
    let collected = http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return openai_error(
                413,
                "invalid_request_error",
                "Request body too large or unreadable.",
            );
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return openai_error(
                400,
                "invalid_request_error",
                "We could not parse the JSON body of your request.",
            );
        }
    };
    let reply = simulate(&body, opts);
    let mut resp = match reply.body {
        SimBody::Json(v) => json_response(reply.status, &v),
        SimBody::Events(frames) => {
            let mut resp =
                hyper::Response::new(SimResponseBody::Paced(PacedBody::new(frames, opts)));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            resp
        }
    };
    for (name, value) in reply.headers {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Serves the simulated upstream on `listener` until `shutdown` resolves, then lets open
/// connections finish (at most 5 s).
pub async fn run_sim_upstream(
    listener: TcpListener,
    opts: SimOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let opts = std::sync::Arc::new(opts);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(target: "ferry::sim", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let opts = opts.clone();
                let svc = service_fn(move |req| {
                    let opts = opts.clone();
                    async move { Ok::<_, Infallible>(handle(req, &opts).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                #[expect(clippy::disallowed_methods, reason = "a connection task lives as long as the client keeps the connection open; graceful shutdown tracks it")]
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(target: "ferry::sim", error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!(target: "ferry::sim", "connections still open after shutdown; dropping them");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::*;

    fn opts() -> SimOptions {
        SimOptions {
            deltas: 4,
            created_at: Some(1_700_000_000),
            ..SimOptions::default()
        }
    }

    /// Parses frames back into (event name, payload), checking the framing.
    fn parse(frames: &[Bytes]) -> Vec<(String, Value)> {
        frames
            .iter()
            .map(|f| {
                let text = std::str::from_utf8(f).unwrap();
                let text = text.strip_suffix("\n\n").unwrap();
                let (event, data) = text.split_once('\n').unwrap();
                let event = event.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], json!(event));
                (event, data)
            })
            .collect()
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(e, _)| e.as_str()).collect()
    }

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    #[test]
    fn tool_loop_calls_until_n_outputs_and_reports_what_it_received() {
        let tools = json!([{"type": "function", "name": "probe", "parameters": {
            "type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}}]);
        let developer = json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sys"}]});
        let call = |id: &str| json!({"type": "function_call", "call_id": id, "name": "probe", "arguments": "{}"});
        let output =
            |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "ok"});
        let mut input = vec![developer, user("go [[tool-loop:probe:2]]")];
        let answer = |input: &[Value]| {
            let req = json!({"model": "gpt-5.1", "stream": false, "tools": tools, "input": input});
            match simulate(&req, &opts()).body {
                SimBody::Json(v) => v,
                SimBody::Events(_) => panic!("asked for JSON"),
            }
        };
        let first = answer(&input);
        assert_eq!(first["output"][0]["type"], json!("function_call"));
        let args: Value =
            serde_json::from_str(first["output"][0]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args["note"],
            json!("outputs=0;calls=0;items=2;developer=1;tools=1")
        );
        input.extend([call("c1"), output("c1")]);
        let second = answer(&input);
        let args: Value =
            serde_json::from_str(second["output"][0]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args["note"],
            json!("outputs=1;calls=1;items=4;developer=1;tools=1")
        );
        input.extend([call("c2"), output("c2")]);
        let third = answer(&input);
        assert_eq!(
            third["output"][0]["content"][0]["text"],
            json!("Tool loop done: outputs=2;calls=2;items=6;developer=1;tools=1")
        );
    }

    #[test]
    fn text_answer_is_a_complete_stream() {
        let req = json!({"model": "gpt-5.1", "stream": true, "input": [user("hello there")]});
        let events = parse(&sim_events(&req, &opts()));
        assert_eq!(
            names(&events),
            vec![
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let seqs: Vec<u64> = events
            .iter()
            .map(|(_, v)| v["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
        let deltas: String = events
            .iter()
            .filter(|(e, _)| e == "response.output_text.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, "Simulated reply to: \"hello there\".");
        let done = &events.last().unwrap().1["response"];
        assert_eq!(done["status"], json!("completed"));
        assert_eq!(done["output"][0]["content"][0]["text"], json!(deltas));
        assert_eq!(done["created_at"], json!(1_700_000_000));
        assert_eq!(done["model"], json!("gpt-5.1"));
        let usage = &done["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
        );
    }

    #[test]
    fn same_request_same_answer() {
        let req = json!({"model": "gpt-5.1", "stream": true, "input": [user("hi")]});
        assert_eq!(sim_events(&req, &opts()), sim_events(&req, &opts()));
        let other = json!({"model": "gpt-5.1", "stream": true, "input": [user("ho")]});
        let id = |r: &Value| parse(&sim_events(r, &opts()))[0].1["response"]["id"].clone();
        assert_ne!(id(&req), id(&other));
    }

    #[test]
    fn reasoning_comes_first_with_summary_and_ciphertext() {
        let req = json!({
            "model": "gpt-5.1", "stream": true, "input": [user("think")],
            "reasoning": {"effort": "medium", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
        });
        let events = parse(&sim_events(&req, &opts()));
        assert_eq!(events[2].1["item"]["type"], json!("reasoning"));
        let summary: String = events
            .iter()
            .filter(|(e, _)| e == "response.reasoning_summary_text.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap())
            .collect();
        assert!(
            summary.starts_with("**Considering the request**"),
            "{summary}"
        );
        let done = &events.last().unwrap().1["response"];
        assert_eq!(done["output"][0]["summary"][0]["text"], json!(summary));
        assert!(
            done["output"][0]["encrypted_content"]
                .as_str()
                .unwrap()
                .starts_with("gAAAAA")
        );
        assert_eq!(done["output"][1]["type"], json!("message"));
        assert_eq!(
            done["usage"]["output_tokens_details"]["reasoning_tokens"],
            json!(128)
        );
    }

    #[test]
    fn no_reasoning_item_when_effort_is_none() {
        let req = json!({"stream": true, "input": [user("x")], "reasoning": {"effort": "none"}});
        let events = parse(&sim_events(&req, &opts()));
        let done = &events.last().unwrap().1["response"];
        assert_eq!(done["output"].as_array().unwrap().len(), 1);
        assert_eq!(done["output"][0]["type"], json!("message"));
    }

    fn weather_tool() -> Value {
        json!({
            "type": "function", "name": "get_weather", "description": "Weather", "strict": false,
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            }, "required": ["city", "unit"]},
        })
    }

    #[test]
    fn a_json_tool_argument_is_sent_exactly() {
        let req = json!({
            "stream": true, "tools": [weather_tool()],
            "input": [user(r#"[[tool:get_weather:{"city": "Oslo", "unit": "kelvin", "extra": false}]]"#)],
        });
        let events = parse(&sim_events(&req, &opts()));
        let call = &events.last().unwrap().1["response"]["output"][0];
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args,
            json!({"city": "Oslo", "unit": "kelvin", "extra": false})
        );
    }

    #[test]
    fn tool_directive_calls_the_tool_with_plausible_arguments() {
        let req = json!({
            "stream": true, "tools": [weather_tool()],
            "input": [user("[[tool:get_weather:Paris]] what is the weather?")],
        });
        let events = parse(&sim_events(&req, &opts()));
        assert_eq!(
            names(&events)[2..],
            [
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let args: String = events
            .iter()
            .filter(|(e, _)| e == "response.function_call_arguments.delta")
            .map(|(_, v)| v["delta"].as_str().unwrap())
            .collect();
        let args: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
        let call = &events.last().unwrap().1["response"]["output"][0];
        assert_eq!(call["name"], json!("get_weather"));
        assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    }

    #[test]
    fn overflow_directive_fails_only_over_its_limit() {
        let reply = |limit: u64| {
            simulate(
                &json!({"stream": true, "input": [user(&format!("[[overflow:{limit}]] {}", "x".repeat(4000)))]}),
                &opts(),
            )
        };
        let over = reply(100);
        assert_eq!(over.status, 400);
        assert_eq!(over.body, SimBody::Json(overflow_body()));
        assert_eq!(reply(100_000).status, 200);
    }

    #[test]
    fn a_prompt_of_only_reminders_is_answered_as_their_text() {
        let text = |prompt: &str| match simulate(
            &json!({"stream": false, "input": [user(prompt)]}),
            &opts(),
        )
        .body
        {
            SimBody::Json(v) => v["output"][0]["content"][0]["text"].clone(),
            SimBody::Events(_) => Value::Null,
        };
        let resume = text("<system-reminder>\nOutput token limit hit. Resume.\n</system-reminder>");
        assert!(
            resume
                .as_str()
                .unwrap()
                .starts_with("Simulated reply to: \"Output token limit hit. Resume.\"."),
            "{resume}"
        );
        let prompt = text("<system-reminder>context</system-reminder>say hi");
        assert!(
            prompt
                .as_str()
                .unwrap()
                .starts_with("Simulated reply to: \"say hi\"."),
            "{prompt}"
        );
    }

    #[test]
    fn naming_a_tool_calls_it_but_reminders_do_not() {
        let req =
            |text: &str| json!({"stream": false, "tools": [weather_tool()], "input": [user(text)]});
        let kind = |text: &str| match simulate(&req(text), &opts()).body {
            SimBody::Json(v) => v["output"][0]["type"].clone(),
            SimBody::Events(_) => Value::Null,
        };
        assert_eq!(
            kind("please use the get_weather tool"),
            json!("function_call")
        );
        assert_eq!(kind("call get_weather now"), json!("function_call"));
        assert_eq!(kind("what does get_weather do?"), json!("message"));
        assert_eq!(
            kind("Do NOT use get_weather, or any tool"),
            json!("message")
        );
        assert_eq!(kind("don't call get_weather"), json!("message"));
        assert_eq!(
            kind("<system-reminder>use get_weather</system-reminder>hello"),
            json!("message")
        );
    }

    #[test]
    fn parallel_directives_give_parallel_calls() {
        let req = json!({
            "tools": [weather_tool()],
            "input": [user("[[tool:get_weather:Paris]] [[tool:get_weather:Rome]]")],
        });
        let SimBody::Json(v) = simulate(&req, &opts()).body else {
            panic!("expected JSON")
        };
        let cities: Vec<Value> = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                serde_json::from_str::<Value>(o["arguments"].as_str().unwrap()).unwrap()["city"]
                    .clone()
            })
            .collect();
        assert_eq!(cities, vec![json!("Paris"), json!("Rome")]);
    }

    #[test]
    fn a_function_call_output_is_answered_with_text() {
        let req = json!({
            "tools": [weather_tool()],
            "input": [
                user("[[tool:get_weather:Paris]]"),
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"},
            ],
        });
        let SimBody::Json(v) = simulate(&req, &opts()).body else {
            panic!("expected JSON")
        };
        assert_eq!(
            v["output"][0]["content"][0]["text"],
            json!("The tool returned: sunny, 21C")
        );
    }

    #[test]
    fn cached_tokens_grow_across_turns() {
        let long = "lorem ipsum dolor sit amet ".repeat(400);
        let turn = |n: usize| {
            let mut input = Vec::new();
            for i in 0..n {
                input.push(user(&format!("{long} {i}")));
                input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}));
            }
            input.push(user("next"));
            let SimBody::Json(v) = simulate(&json!({"input": input}), &opts()).body else {
                panic!("expected JSON")
            };
            v["usage"]["input_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap()
        };
        let first = json!({"instructions": long, "input": [user("first")]});
        let SimBody::Json(v) = simulate(&first, &opts()).body else {
            panic!("expected JSON")
        };
        assert_eq!(
            v["usage"]["input_tokens_details"]["cached_tokens"],
            json!(0)
        );
        let (one, two, three) = (turn(0), turn(1), turn(2));
        assert_eq!(one, 0);
        assert!(two > 0 && two % 128 == 0, "{two}");
        assert!(three > two, "{three} > {two}");
    }

    #[test]
    fn continuations_are_priced_as_the_whole_conversation() {
        let long = "lorem ipsum dolor sit amet ".repeat(400);
        let first = json!({"input": [user(&long)]});
        let SimBody::Json(one) = simulate(&first, &opts()).body else {
            panic!("expected JSON")
        };
        let id = one["id"].as_str().unwrap();
        let total = one["usage"]["total_tokens"].as_u64().unwrap();
        assert_eq!(response_id_tokens(id), Some(total));
        let next = json!({"previous_response_id": id, "input": [user("and then?")]});
        let SimBody::Json(two) = simulate(&next, &opts()).body else {
            panic!("expected JSON")
        };
        let usage = &two["usage"];
        assert_eq!(
            usage["input_tokens_details"]["cached_tokens"],
            json!(total / 128 * 128)
        );
        assert!(usage["input_tokens"].as_u64().unwrap() > total, "{usage}");
        assert_eq!(response_id_tokens("resp_abc"), None);
    }

    #[test]
    fn json_mode_answers_json() {
        let req = json!({
            "input": [user("give json")],
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {
                "type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["title", "n"],
            }}},
        });
        let SimBody::Json(v) = simulate(&req, &opts()).body else {
            panic!("expected JSON")
        };
        let text: Value =
            serde_json::from_str(v["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text["n"], json!(1));
        assert!(
            text["title"]
                .as_str()
                .unwrap()
                .starts_with("Simulated reply")
        );
    }

    #[test]
    fn failure_directives() {
        let req = |d: &str| json!({"stream": true, "input": [user(d)]});
        let last = |d: &str| {
            let events = parse(&sim_events(&req(d), &opts()));
            events.last().unwrap().0.clone()
        };
        assert_eq!(last("[[fail:boom]]"), "response.failed");
        assert_eq!(last("[[incomplete]]"), "response.incomplete");
        assert_eq!(last("[[cut]]"), "response.output_text.delta");
        assert_eq!(last("[[status:429]]"), "response.failed");

        let reply = simulate(&req("[[status:429]]"), &opts());
        assert_eq!(reply.status, 429);
        assert!(reply.headers.contains(&("retry-after", "1".to_owned())));
        assert_eq!(reply.body, SimBody::Json(error_body(429)),);
        let failed = simulate(&json!({"input": [user("[[fail:boom]]")]}), &opts());
        let SimBody::Json(v) = failed.body else {
            panic!("expected JSON")
        };
        assert_eq!(
            v["error"],
            json!({"code": "server_error", "message": "boom"})
        );
    }

    #[test]
    fn split_pieces_keeps_the_text_and_the_count() {
        for n in [1, 2, 3, 7, 50] {
            let text = "The quick brown fox jumps over the lazy dog";
            let pieces = split_pieces(text, n);
            assert_eq!(pieces.concat(), text);
            assert_eq!(pieces.len(), n.min(text.len()));
        }
        assert_eq!(split_pieces("ab", 5), vec!["a", "b"]);
    }

    #[test]
    fn deltas_option_sets_the_number_of_text_deltas() {
        let req = json!({"stream": true, "input": [user("count me")]});
        let count = |n: usize| {
            let o = SimOptions {
                deltas: n,
                ..opts()
            };
            parse(&sim_events(&req, &o))
                .iter()
                .filter(|(e, _)| e == "response.output_text.delta")
                .count()
        };
        assert_eq!(count(1), 1);
        assert_eq!(count(10), 10);
        assert_eq!(count(50), 50);
    }

    /// 200 ms to the first frame, then 10 ms between frames.
    fn paced_opts() -> SimOptions {
        SimOptions {
            ttft: Duration::from_millis(200),
            event_interval: Duration::from_millis(10),
            ..opts()
        }
    }

    #[tokio::test]
    async fn paced_body_waits_between_events() {
        tokio::time::pause();
        let frames = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let o = paced_opts();
        let start = tokio::time::Instant::now();
        let mut body = PacedBody::new(frames, &o);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, Bytes::from_static(b"a"));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_millis(202),
            "{waited:?}"
        );
        let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(second, Bytes::from_static(b"b"));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(210) && waited < Duration::from_millis(213),
            "{waited:?}"
        );
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn paced_body_keeps_an_absolute_schedule() {
        tokio::time::pause();
        let frames: Vec<Bytes> = (0..5).map(|i| Bytes::from(i.to_string())).collect();
        let o = paced_opts();
        let start = tokio::time::Instant::now();
        let mut body = PacedBody::new(frames, &o);
        body.frame().await.unwrap().unwrap();
        // A reader 35 ms late: frames 1-3 (due at 210, 220, 230 ms) are sent at once, and
        // frame 4 keeps its 240 ms slot instead of moving to 245 ms.
        tokio::time::sleep(Duration::from_millis(35)).await;
        let late = start.elapsed();
        assert!(late >= Duration::from_millis(235), "{late:?}");
        for _ in 1..4 {
            body.frame().await.unwrap().unwrap();
            assert_eq!(start.elapsed(), late);
        }
        body.frame().await.unwrap().unwrap();
        let last = start.elapsed();
        assert!(
            last >= Duration::from_millis(240) && last < Duration::from_millis(242),
            "{last:?}"
        );
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn server_answers_responses_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test's server runs beside its client"
        )]
        let server = tokio::spawn(run_sim_upstream(listener, opts(), async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            client
                .post(format!("http://{addr}{path}"))
                .bearer_auth("sk-test")
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        };

        let streamed = post(
            "/v1/responses",
            json!({"stream": true, "input": [user("hi")]}),
        )
        .await
        .unwrap();
        assert_eq!(streamed.status(), 200);
        assert_eq!(
            streamed.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let text = streamed.text().await.unwrap();
        assert!(text.starts_with("event: response.created\n"), "{text}");
        assert!(text.contains("event: response.completed\n"), "{text}");

        let plain = post("/responses", json!({"input": [user("hi")]}))
            .await
            .unwrap();
        assert_eq!(plain.status(), 200);
        let v: Value = serde_json::from_str(&plain.text().await.unwrap()).unwrap();
        assert_eq!(v["status"], json!("completed"));

        let limited = post("/v1/responses", json!({"input": [user("[[status:429]]")]}))
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "1");

        let missing = post("/v1/chat/completions", json!({})).await.unwrap();
        assert_eq!(missing.status(), 404);
        let bad = client
            .post(format!("http://{addr}/v1/responses"))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn zero_delay_body_is_one_chunk() {
        let frames = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let body = PacedBody::new(frames, &opts());
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all, Bytes::from_static(b"ab"));
    }
}
