//! A stateful fake of the OpenAI Responses API for the session tests (replay, replicas),
//! and a client that keeps a Claude Code conversation going through the gateway.
//!
//! The fake behaves like OpenAI where sessions are concerned, so the figures the tests
//! compute depend on what ferry sends, not on numbers written into the test:
//! - **Stored responses**: a response is kept only when its request said `store: true`;
//!   `previous_response_id` naming anything else (or a response of another account) gets
//!   OpenAI's `400 previous_response_not_found`.
//! - **Prompt cache**: per account and `prompt_cache_key` (no key, no cache: requests
//!   without one land on arbitrary machines). `cached_tokens` is the longest prefix (in
//!   whole items) shared with an earlier prompt under that key, counted from 1,024 tokens
//!   and in steps of 128, as OpenAI does. A token is 4 bytes of an item's JSON.
//! - **Checks**: every `function_call_output` of the effective prompt (the stored
//!   conversation plus the new input) answers a call before it, else `400`.
//!
//! Each request is answered with the [`Reply`] the test set with [`FakeOpenAi::reply_next`]
//! (ids numbered per served response), except a request whose body contains `[[hold]]`,
//! which is answered after [`HOLD`] with zero usage (it keeps an account busy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_testkit::upstream::{CapturedRequest, UpstreamMock, mount_fn, sse_response};
use ferry_testkit::*;
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use super::common::{Event, TestServer, parse_sse};

/// How long a `[[hold]]` request waits before its answer.
pub(crate) const HOLD: Duration = Duration::from_millis(1500);

/// What the fake answers to the next request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A text answer.
    Text(String),
    /// Function calls (`name`, JSON arguments), in parallel when there are several.
    Calls(Vec<(&'static str, Value)>),
    /// A reasoning item (summary, encrypted `gAAAA…` content), then one call.
    ThinkThenCall(String, (&'static str, Value)),
}

/// What the fake did with one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Served {
    /// The account: the first path segment of the request (`/a/responses` → `a`).
    pub(crate) account: String,
    /// The response id, or the error code for a 400.
    pub(crate) outcome: Result<String, String>,
    /// Tokens of the effective prompt (stored conversation plus new input).
    pub(crate) prompt_tokens: u64,
    /// Of which read from the prompt cache.
    pub(crate) cached_tokens: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    account: String,
    /// The effective prompt's items, then the response's output items.
    conversation: Vec<Value>,
}

#[derive(Default)]
struct State {
    next: Option<Reply>,
    served_count: u64,
    stored: HashMap<String, Stored>,
    /// (account, prompt_cache_key) → earlier prompts, as item strings.
    prompts: HashMap<(String, String), Vec<Vec<String>>>,
    served: Vec<Served>,
}

/// The fake upstream; accounts point at `{uri}/<name>`.
pub(crate) struct FakeOpenAi {
    pub(crate) server: MockServer,
    pub(crate) mock: UpstreamMock,
    state: Arc<Mutex<State>>,
}

impl FakeOpenAi {
    pub(crate) async fn start() -> Self {
        let server = ferry_testkit::upstream::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let s = Arc::clone(&state);
        let mock = mount_fn(&server, move |req, _| answer(&mut s.lock().unwrap(), req)).await;
        Self {
            server,
            mock,
            state,
        }
    }

    /// The base URL of account `name`.
    pub(crate) fn base_url(&self, name: &str) -> String {
        format!("{}/{name}", self.server.uri())
    }

    /// Sets the answer to the following requests.
    pub(crate) fn reply_next(&self, reply: Reply) {
        self.state.lock().unwrap().next = Some(reply);
    }

    /// Every request served so far (holds excluded), in order.
    pub(crate) fn served(&self) -> Vec<Served> {
        self.state.lock().unwrap().served.clone()
    }
}

/// A token estimate: 4 bytes of JSON per token, at least 1 per item.
fn tokens(item: &str) -> u64 {
    (item.len() as u64).div_ceil(4).max(1)
}

fn error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({ "error": {
        "message": message, "type": "invalid_request_error", "param": null, "code": code } }))
}

fn answer(state: &mut State, req: &CapturedRequest) -> ResponseTemplate {
    if String::from_utf8_lossy(&req.raw_body).contains("[[hold]]") {
        return sse_response(sse(text_events("resp_hold", &["held"], Usage::new(0, 0))))
            .set_delay(HOLD);
    }
    let account = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = &req.body;
    let mut conversation = Vec::new();
    if let Some(prev) = body["previous_response_id"].as_str() {
        match state.stored.get(prev) {
            Some(s) if s.account == account => conversation.clone_from(&s.conversation),
            _ => {
                state.served.push(Served {
                    account,
                    outcome: Err("previous_response_not_found".to_owned()),
                    prompt_tokens: 0,
                    cached_tokens: 0,
                });
                return error(
                    "previous_response_not_found",
                    &format!("Previous response with id '{prev}' not found."),
                );
            }
        }
    }
    conversation.extend(req.input());
    let mut calls: Vec<&str> = Vec::new();
    for item in &conversation {
        let call_id = item["call_id"].as_str().unwrap_or_default();
        match item["type"].as_str() {
            Some("function_call") => calls.push(call_id),
            Some("function_call_output") if !calls.contains(&call_id) => {
                return error(
                    "invalid_request",
                    &format!("No tool call found for function call output with call_id {call_id}."),
                );
            }
            _ => {}
        }
    }

    // The prompt: tools and instructions, then the items.
    let mut prompt: Vec<String> = vec![body["tools"].to_string(), body["instructions"].to_string()];
    prompt.extend(conversation.iter().map(Value::to_string));
    let prompt_tokens: u64 = prompt.iter().map(|i| tokens(i)).sum();
    let mut cached_tokens = 0;
    if let Some(key) = body["prompt_cache_key"].as_str() {
        let earlier = state
            .prompts
            .entry((account.clone(), key.to_owned()))
            .or_default();
        let shared = earlier
            .iter()
            .map(|p| {
                p.iter()
                    .zip(&prompt)
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| tokens(a))
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        if shared >= 1024 {
            cached_tokens = shared / 128 * 128;
        }
        earlier.push(prompt);
    }

    state.served_count += 1;
    let n = state.served_count;
    let id = format!("resp_{n:03}");
    let reply = state
        .next
        .clone()
        .unwrap_or_else(|| Reply::Text("ok".to_owned()));
    let (events, output) = reply_events(&id, n, &reply);
    let output_tokens = output.iter().map(|o| tokens(&o.to_string())).sum();
    let usage = Usage::new(prompt_tokens, output_tokens).cached(cached_tokens);
    let mut events = events;
    events.push(ev_completed_with_output(&id, output.clone(), usage));
    if body["store"] == json!(true) {
        conversation.extend(output.iter().map(as_input));
        state.stored.insert(
            id.clone(),
            Stored {
                account: account.clone(),
                conversation,
            },
        );
    }
    state.served.push(Served {
        account,
        outcome: Ok(id),
        prompt_tokens,
        cached_tokens,
    });
    sse_response(sse(events))
}

/// An output item as it would be replayed in `input`.
fn as_input(item: &Value) -> Value {
    match item["type"].as_str() {
        Some("function_call") => json!({ "type": "function_call", "call_id": item["call_id"],
            "name": item["name"], "arguments": item["arguments"] }),
        Some("reasoning") => json!({ "type": "reasoning", "summary": item["summary"],
            "encrypted_content": item["encrypted_content"] }),
        _ => json!({ "type": "message", "role": "assistant", "content": item["content"] }),
    }
}

/// The events before `response.completed`, and the output items.
fn reply_events(id: &str, n: u64, reply: &Reply) -> (Vec<Value>, Vec<Value>) {
    let mut events = vec![ev_created(id), ev_in_progress(id)];
    let mut output = Vec::new();
    let mut calls: &[(&str, Value)] = &[];
    let think_call;
    match reply {
        Reply::Text(text) => {
            let all = text_events(id, &[text], Usage::default());
            // Keep the message events, not created / in_progress / completed.
            events.extend(all[2..all.len() - 1].iter().cloned());
            output.push(message_item("msg_1", text, "completed"));
        }
        Reply::Calls(c) => calls = c,
        Reply::ThinkThenCall(summary, call) => {
            let rs = format!("rs_{n}");
            let enc = format!("gAAAAABfake-reasoning-{n}-{}", "x".repeat(64));
            events.push(ev_reasoning_added(0, &rs));
            events.push(ev_reasoning_summary_part_added(0, &rs, 0));
            events.push(ev_reasoning_summary_delta(0, &rs, 0, summary));
            events.push(ev_reasoning_summary_done(0, &rs, 0, summary));
            events.push(ev_reasoning_done(0, &rs, summary, Some(&enc)));
            output.push(reasoning_item(&rs, summary, Some(&enc)));
            think_call = [call.clone()];
            calls = &think_call;
        }
    }
    for (j, (name, args)) in calls.iter().enumerate() {
        let index = u32::try_from(output.len()).unwrap();
        let (fc, call_id) = (format!("fc_{n}_{j}"), format!("call_{n}_{j}"));
        let args = args.to_string();
        events.extend(function_call_events(index, &fc, &call_id, name, &[&args]));
        output.push(function_call_item(&fc, &call_id, name, &args, "completed"));
    }
    (events, output)
}

/// A Claude Code conversation, grown turn by turn from what the gateway streams back.
pub(crate) struct Conversation {
    pub(crate) body: Value,
}

impl Conversation {
    /// Starts from a recorded Claude Code request (`fixtures/requests/claude-code/`).
    pub(crate) fn from_fixture(case: &str) -> Self {
        Self {
            body: claude_code_request(case),
        }
    }

    /// Sends the conversation to `server`; appends the streamed answer as the assistant
    /// message and returns it (its content blocks).
    pub(crate) async fn send(&mut self, server: &TestServer) -> Vec<Value> {
        self.send_with(server, &[]).await
    }

    /// [`Self::send`] with extra request headers (Claude Code's agent headers).
    pub(crate) async fn send_with(
        &mut self,
        server: &TestServer,
        headers: &[(&str, &str)],
    ) -> Vec<Value> {
        let mut req = server
            .post("/v1/messages")
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req
            .body(serde_json::to_vec(&self.body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let events = parse_sse(&resp.text().await.unwrap());
        assert_eq!(events.last().map(|e| e.name.as_str()), Some("message_stop"));
        let content = assistant_content(&events);
        self.messages()
            .push(json!({ "role": "assistant", "content": content }));
        content
    }

    fn messages(&mut self) -> &mut Vec<Value> {
        self.body["messages"].as_array_mut().unwrap()
    }

    /// Appends a user message, moving the `cache_control` breakpoint to its last block as
    /// Claude Code does.
    pub(crate) fn push_user(&mut self, mut blocks: Vec<Value>) {
        for m in self.messages().iter_mut() {
            if let Some(blocks) = m["content"].as_array_mut() {
                for b in blocks {
                    if let Some(b) = b.as_object_mut() {
                        b.remove("cache_control");
                    }
                }
            }
        }
        if let Some(last) = blocks.last_mut() {
            last["cache_control"] = json!({ "type": "ephemeral" });
        }
        self.messages()
            .push(json!({ "role": "user", "content": blocks }));
    }

    /// The user's next message after `answer`: a result for every tool call (`output`
    /// gives its text), else `text`.
    pub(crate) fn reply_to(
        &mut self,
        answer: &[Value],
        text: &str,
        output: impl Fn(&Value) -> String,
    ) {
        let results: Vec<Value> = answer
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| {
                json!({ "type": "tool_result", "tool_use_id": b["id"], "content": output(&b["input"]),
                    "is_error": false })
            })
            .collect();
        if results.is_empty() {
            self.push_user(vec![json!({ "type": "text", "text": text })]);
        } else {
            self.push_user(results);
        }
    }
}

/// The content blocks of a streamed Anthropic message.
pub(crate) fn assistant_content(events: &[Event]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_args: Vec<String> = Vec::new();
    for e in events {
        let d = &e.data;
        match e.name.as_str() {
            "content_block_start" => {
                blocks.push(d["content_block"].clone());
                json_args.push(String::new());
            }
            "content_block_delta" => {
                let i = usize::try_from(d["index"].as_u64().unwrap()).unwrap();
                let delta = &d["delta"];
                let field = match delta["type"].as_str().unwrap() {
                    "text_delta" => "text",
                    "thinking_delta" => "thinking",
                    "signature_delta" => "signature",
                    "input_json_delta" => {
                        json_args[i].push_str(delta["partial_json"].as_str().unwrap());
                        continue;
                    }
                    other => panic!("unexpected delta {other}"),
                };
                let old = blocks[i][field].as_str().unwrap_or_default().to_owned();
                blocks[i][field] = json!(old + delta[field].as_str().unwrap());
            }
            _ => {}
        }
    }
    for (b, args) in blocks.iter_mut().zip(json_args) {
        if b["type"] == "tool_use" && !args.is_empty() {
            b["input"] = serde_json::from_str(&args).unwrap();
        }
    }
    blocks
}

/// The cache-economy figures of a gateway's `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CacheMetrics {
    /// `ferry_cache_miss_total{reason}` for every reason, in [`ferry_session::MissReason::ALL`] order.
    pub(crate) misses: Vec<(&'static str, f64)>,
    /// `ferry_prompt_cache_hit_ratio_count`
    pub(crate) observed: f64,
    /// `ferry_prompt_cache_hit_ratio_sum / _count`: the mean per-request hit ratio.
    pub(crate) mean_hit_ratio: f64,
    /// `ferry_tokens_total{kind="cache_read"}` / (`input` + `cache_read`).
    pub(crate) token_hit_ratio: f64,
}

impl CacheMetrics {
    pub(crate) async fn read(server: &TestServer) -> Self {
        let text = server.metrics().await;
        let m = |s: &str| super::common::metric_value(&text, s);
        let misses = ferry_session::MissReason::ALL
            .iter()
            .map(|r| {
                let series = format!("ferry_cache_miss_total{{reason=\"{}\"}}", r.as_str());
                (r.as_str(), m(&series))
            })
            .collect();
        let observed = m("ferry_prompt_cache_hit_ratio_count");
        let read = m("ferry_tokens_total{kind=\"cache_read\"}");
        let input = m("ferry_tokens_total{kind=\"input\"}");
        Self {
            misses,
            observed,
            mean_hit_ratio: m("ferry_prompt_cache_hit_ratio_sum") / observed.max(1.0),
            token_hit_ratio: read / (read + input).max(1.0),
        }
    }

    /// The miss counters with only `reason` at `n`, the others at 0.
    pub(crate) fn only_misses(reason: &str, n: f64) -> Vec<(&'static str, f64)> {
        ferry_session::MissReason::ALL
            .iter()
            .map(|r| (r.as_str(), if r.as_str() == reason { n } else { 0.0 }))
            .collect()
    }
}
