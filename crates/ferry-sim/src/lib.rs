//! The simulated OpenAI Responses upstream: a generator of realistic Responses answers for a
//! given Responses request body, and a small hyper server around it.
//!
//! Started on loopback by `ferry serve` when no account is configured (an ordinary API-key
//! account points at it, so ferry answers out of the box with no network), and standalone by
//! `ferry sim-upstream` (demos, e2e tests, benchmarks).
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
//!   `/v1/responses` and `/responses`), `GET /health`, until `shutdown` resolves. On a
//!   `…/backend-api/codex/responses` path (an OAuth account's base URL pointed at the
//!   simulator) it first applies the Codex backend's rules ([`codex_refusal`]: client
//!   version, service tier, the Responses Lite shape for [`needs_lite`] models) and answers
//!   a request that breaks one with the backend's HTTP 400; under Lite the declared tools are
//!   read from the `additional_tools` input item.
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
//!
//! # Layout
//! - `directives`: reading the request (the prompt, `[[…]]` directives, declared tools).
//! - `plan`: everything decided about one answer before any event is written.
//! - `render`: the plan as Responses events (framed by `ferry_sse::encode_frame`) or one
//!   response object, and the OpenAI error body.
//! - `codex`: the Codex backend's request rules.
//! - `serve`: the paced body and the hyper accept loop.

mod codex;
mod directives;
mod plan;
mod render;
mod serve;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

pub use codex::{MIN_CLIENT_VERSION, codex_refusal, needs_lite};
use plan::Plan;
use render::{error_body, overflow_body};
pub use serve::{PacedBody, run_sim_upstream};

/// How the simulated upstream answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of `output_text.delta` events of a text answer (at least 1).
    pub deltas: usize,
    /// Delay before the first byte of a streamed answer (paced mode). A JSON answer
    /// (`stream: false`) comes whole after `ttft + deltas × event_interval`.
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

#[cfg(test)]
mod tests;
