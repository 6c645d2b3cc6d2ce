//! A wiremock OpenAI Responses upstream that records every request.
//!
//! Modelled on codex's `core/tests/common/responses.rs`: [`start`] a server, mount answers
//! with [`mount_sse_once`], [`mount_sse`], [`mount_sequence`], [`mount_status`] or
//! [`mount_fn`] (an answer computed from each request), and read
//! what ferry sent from the returned [`UpstreamMock`]. Reading the requests runs
//! [`validate_request_invariants`] on each of them and fails the test on a violation.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{TEST_CLIENT_KEY, TEST_UPSTREAM_KEY};

/// Starts a mock upstream on `127.0.0.1` (a random port). Its `uri()` is an account's
/// `base_url`; ferry posts to `{uri}/responses`.
pub async fn start() -> MockServer {
    MockServer::start().await
}

/// One request ferry sent upstream.
#[derive(Debug, Clone)]
pub struct CapturedRequest {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The raw body.
    pub raw_body: Vec<u8>,
}

impl CapturedRequest {
    fn from_wiremock(r: &Request) -> Self {
        Self {
            method: r.method.to_string(),
            path: r.url.path().to_owned(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            raw_body: r.body.clone(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's `input` array (empty when absent).
    pub fn input(&self) -> Vec<Value> {
        self.body
            .get("input")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}

/// What every captured request must satisfy.
#[derive(Debug, Clone)]
pub struct Invariants {
    /// Strings that must not appear in the body. [`TEST_CLIENT_KEY`] must additionally not
    /// appear in any header; [`TEST_UPSTREAM_KEY`] may appear only in `authorization`.
    pub secrets: Vec<String>,
    /// Require a non-blank `prompt_cache_key` in the body.
    pub expect_prompt_cache_key: bool,
    /// When set, the body's `previous_response_id` must equal it (`None` = absent).
    pub previous_response_id: Option<Option<String>>,
}

impl Default for Invariants {
    fn default() -> Self {
        Self {
            secrets: vec![TEST_CLIENT_KEY.to_owned(), TEST_UPSTREAM_KEY.to_owned()],
            expect_prompt_cache_key: false,
            previous_response_id: None,
        }
    }
}

/// Checks one upstream request; returns the violations (empty = fine).
///
/// - the body is a JSON object with a boolean `"stream"` that agrees with the `accept`
///   header (`text/event-stream`, or `application/json` for a non-streaming client's answer);
/// - every `function_call_output` in `input` answers a `function_call` earlier in `input`
///   (unless the request continues a `previous_response_id`, whose output holds the call);
/// - no secret appears in the body; the client key appears in no header; the upstream key
///   only in `authorization`;
/// - `prompt_cache_key` / `previous_response_id` as the [`Invariants`] ask.
pub fn validate_request_invariants(req: &CapturedRequest, inv: &Invariants) -> Vec<String> {
    let mut v = Vec::new();
    if !req.body.is_object() {
        v.push("body is not a JSON object".to_owned());
        return v;
    }
    let accept = req.header("accept").unwrap_or_default();
    match req.body.get("stream") {
        Some(Value::Bool(true)) if accept != "text/event-stream" => {
            v.push(format!("\"stream\": true with accept {accept:?}"));
        }
        Some(Value::Bool(false)) if accept != "application/json" => {
            v.push(format!("\"stream\": false with accept {accept:?}"));
        }
        Some(Value::Bool(_)) => {}
        _ => v.push("body has no boolean \"stream\"".to_owned()),
    }
    let continues = req
        .body
        .get("previous_response_id")
        .and_then(Value::as_str)
        .is_some();
    let mut calls: Vec<String> = Vec::new();
    for (i, item) in req.input().iter().enumerate() {
        let call_id = item
            .get("call_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match item.get("type").and_then(Value::as_str) {
            Some("function_call" | "custom_tool_call") => calls.push(call_id),
            Some("function_call_output" | "custom_tool_call_output")
                if !continues && !calls.contains(&call_id) =>
            {
                v.push(format!(
                    "input[{i}]: output for call_id {call_id:?} has no function_call before it"
                ));
            }
            _ => {}
        }
    }
    let body_text = String::from_utf8_lossy(&req.raw_body);
    for s in &inv.secrets {
        if !s.is_empty() && body_text.contains(s.as_str()) {
            v.push(format!(
                "a secret ({}...) appears in the body",
                &s[..s.len().min(6)]
            ));
        }
    }
    for (k, val) in &req.headers {
        if val.contains(TEST_CLIENT_KEY) {
            v.push(format!("the client key appears in header {k}"));
        }
        if val.contains(TEST_UPSTREAM_KEY) && k != "authorization" {
            v.push(format!("the upstream key appears in header {k}"));
        }
    }
    let pck = req
        .body
        .get("prompt_cache_key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if inv.expect_prompt_cache_key && pck.trim().is_empty() {
        v.push("prompt_cache_key is missing".to_owned());
    }
    if let Some(expected) = &inv.previous_response_id {
        let got = req
            .body
            .get("previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if &got != expected {
            v.push(format!(
                "previous_response_id is {got:?}, expected {expected:?}"
            ));
        }
    }
    v
}

#[derive(Debug, Default)]
struct Inner {
    requests: Vec<CapturedRequest>,
    invariants: Invariants,
}

/// Handle on a mounted upstream answer: the requests it received.
#[derive(Debug, Clone, Default)]
pub struct UpstreamMock {
    inner: Arc<Mutex<Inner>>,
}

impl UpstreamMock {
    /// Replaces the invariants checked on the requests.
    pub fn set_invariants(&self, invariants: Invariants) {
        self.lock().invariants = invariants;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every request received so far; fails the test if one breaks the invariants.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        let inner = self.lock();
        for (i, r) in inner.requests.iter().enumerate() {
            let violations = validate_request_invariants(r, &inner.invariants);
            assert!(
                violations.is_empty(),
                "upstream request {i} breaks invariants: {violations:#?}"
            );
        }
        inner.requests.clone()
    }

    /// How many requests arrived (no invariant check).
    pub fn count(&self) -> usize {
        self.lock().requests.len()
    }

    /// The one request received; fails the test unless there was exactly one.
    pub fn single_request(&self) -> CapturedRequest {
        let mut reqs = self.requests();
        assert_eq!(
            reqs.len(),
            1,
            "expected exactly one upstream request, got {}",
            reqs.len()
        );
        reqs.remove(0)
    }

    /// The last request received.
    pub fn last_request(&self) -> CapturedRequest {
        self.requests().pop().expect("no upstream request arrived")
    }

    /// Waits (up to 5 s) until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) {
        for _ in 0..500 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("waited 5 s for {n} upstream requests, got {}", self.count());
    }

    fn record(&self, r: &Request) {
        self.lock().requests.push(CapturedRequest::from_wiremock(r));
    }
}

/// An SSE answer: 200, `content-type: text/event-stream`.
pub fn sse_response(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_raw(body.into().into_bytes(), "text/event-stream")
}

/// Any status with headers and a body (JSON bodies get `content-type: application/json`).
pub fn status_response(status: u16, headers: &[(&str, &str)], body: &str) -> ResponseTemplate {
    let mime = if body.trim_start().starts_with('{') {
        "application/json"
    } else {
        "text/html"
    };
    let mut t = ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), mime);
    for (k, v) in headers {
        t = t.insert_header(*k, *v);
    }
    t
}

struct Recording {
    mock: UpstreamMock,
    answers: Vec<ResponseTemplate>,
    /// Repeat the last answer once the list is used up.
    repeat_last: bool,
}

impl Respond for Recording {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = {
            self.mock.record(request);
            self.mock.count() - 1
        };
        match self.answers.get(n) {
            Some(t) => t.clone(),
            None if self.repeat_last => self
                .answers
                .last()
                .cloned()
                .unwrap_or_else(|| ResponseTemplate::new(500)),
            None => status_response(
                500,
                &[],
                r#"{"error":{"message":"test upstream: no more answers mounted"}}"#,
            ),
        }
    }
}

async fn mount(
    server: &MockServer,
    answers: Vec<ResponseTemplate>,
    repeat_last: bool,
    limit: Option<u64>,
) -> UpstreamMock {
    let mock = UpstreamMock::default();
    let m = Mock::given(method("POST"))
        .and(path_regex("/responses$"))
        .respond_with(Recording {
            mock: mock.clone(),
            answers,
            repeat_last,
        });
    let m = match limit {
        Some(n) => m.up_to_n_times(n),
        None => m,
    };
    m.mount(server).await;
    mock
}

/// Answers the next `POST …/responses` once with this SSE body.
pub async fn mount_sse_once(server: &MockServer, body: String) -> UpstreamMock {
    mount(server, vec![sse_response(body)], false, Some(1)).await
}

/// Answers every `POST …/responses` with this SSE body.
pub async fn mount_sse(server: &MockServer, body: String) -> UpstreamMock {
    mount(server, vec![sse_response(body)], true, None).await
}

struct Computed<F> {
    mock: UpstreamMock,
    answer: F,
}

impl<F> Respond for Computed<F>
where
    F: Fn(&CapturedRequest, usize) -> ResponseTemplate + Send + Sync + 'static,
{
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let captured = CapturedRequest::from_wiremock(request);
        let n = {
            let mut inner = self.mock.lock();
            inner.requests.push(captured.clone());
            inner.requests.len() - 1
        };
        (self.answer)(&captured, n)
    }
}

/// Answers every `POST …/responses` with what `answer` computes from the request and its
/// 0-based arrival index: for a stateful fake upstream (stored responses, a prompt cache).
pub async fn mount_fn<F>(server: &MockServer, answer: F) -> UpstreamMock
where
    F: Fn(&CapturedRequest, usize) -> ResponseTemplate + Send + Sync + 'static,
{
    let mock = UpstreamMock::default();
    Mock::given(method("POST"))
        .and(path_regex("/responses$"))
        .respond_with(Computed {
            mock: mock.clone(),
            answer,
        })
        .mount(server)
        .await;
    mock
}

/// Answers successive requests with these templates in order; requests beyond the list get
/// a 500.
pub async fn mount_sequence(server: &MockServer, answers: Vec<ResponseTemplate>) -> UpstreamMock {
    mount(server, answers, false, None).await
}

/// Answers every `POST …/responses` with `status`, `headers` and `body`.
pub async fn mount_status(
    server: &MockServer,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> UpstreamMock {
    mount(
        server,
        vec![status_response(status, headers, body)],
        true,
        None,
    )
    .await
}
