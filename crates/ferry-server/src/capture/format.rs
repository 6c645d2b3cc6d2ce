//! The capture file: one JSON document per captured request (docs/captures.md). Written by
//! the server, read back by `ferry replay`; every text in it has had every known secret cut
//! out by value, and the credential headers are left out entirely.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the capture format this ferry writes and reads.
pub const CAPTURE_VERSION: u32 = 1;

/// One captured request: what the client sent, each upstream attempt, what ferry answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaptureFile {
    /// [`CAPTURE_VERSION`].
    pub version: u32,
    /// When the request arrived (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The request id (`request-id` header, usage record).
    pub request_id: String,
    /// The client key's name (never the key); `None` on an open gateway.
    pub client_key: Option<String>,
    /// The account of the last attempt.
    pub account: Option<String>,
    /// `ok`, or `error` when the outcome was not OK (a retry or failover, an error status,
    /// an `error` event in the client's stream).
    pub outcome: String,
    /// The client's request.
    pub client_request: CapturedRequest,
    /// Each upstream attempt, in order.
    pub attempts: Vec<CapturedAttempt>,
    /// What ferry answered the client.
    pub client_response: CapturedResponse,
}

/// The client's request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CapturedRequest {
    /// `POST`.
    pub method: String,
    /// The path and query string.
    pub path: String,
    /// The headers, credentials left out (see docs/captures.md).
    pub headers: BTreeMap<String, String>,
    /// The body as the client sent it.
    pub body: String,
    /// `body` was cut at `capture.max_body_bytes`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_truncated: bool,
    /// A message-thread turn: the whole request ferry rebuilt from the thread, which is
    /// what it converted (the client sent only the new turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<serde_json::Value>,
}

/// One attempt on one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CapturedAttempt {
    /// The account's name.
    pub account: String,
    /// `api_key` or `oauth`.
    pub account_kind: String,
    /// The model sent upstream.
    pub upstream_model: String,
    /// What the session knew when the request was planned.
    pub facts: CapturedFacts,
    /// `{base_url}/responses`.
    pub url: String,
    /// The headers sent, credentials left out.
    pub headers: BTreeMap<String, String>,
    /// The body sent.
    pub body: String,
    /// `body` was cut at `capture.max_body_bytes`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_truncated: bool,
    /// The upstream's status (`None`: no response, see `error`).
    pub status: Option<u16>,
    /// The upstream's response headers.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// The upstream's response body as it arrived (SSE text or JSON), as far as ferry read
    /// it.
    #[serde(default)]
    pub response: String,
    /// `response` was cut at `capture.max_body_bytes`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub response_truncated: bool,
    /// The transport error, when the request failed without a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The read error that cut the response body short (the connection broke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_error: Option<String>,
    /// What ferry did with the attempt: `answered`, `retry`, `failover`,
    /// `continuation_reset`, `reasoning_reset`, `fatal`, or `client_left` (the client left
    /// while it was under way).
    pub outcome: String,
}

/// The session's facts an attempt was planned with ([`crate::SessionFacts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CapturedFacts {
    /// The client asked for a stream.
    pub client_stream: bool,
    /// Continuation was allowed on the account and model.
    pub continuation: bool,
    /// The stored response the turn continued from.
    pub previous_response_id: Option<String>,
    /// The todo guard was to be added.
    pub todo_guard: bool,
    /// The session's upstream prompt cache key.
    pub prompt_cache_key: Option<String>,
    /// Replayed reasoning was left out.
    pub strip_reasoning: bool,
}

/// What ferry answered the client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CapturedResponse {
    /// The status; 0 when the client left before ferry answered.
    pub status: u16,
    /// The headers.
    pub headers: BTreeMap<String, String>,
    /// The body: Anthropic SSE text or JSON.
    pub body: String,
    /// `body` was cut at `capture.max_body_bytes`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_truncated: bool,
    /// The client read the whole answer (false: it left first).
    pub complete: bool,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl CaptureFile {
    /// Applies `f` to every text that came from the client or an upstream (bodies, header
    /// values, paths, errors).
    pub(crate) fn map_texts(&mut self, f: &dyn Fn(&str) -> String) {
        let headers = |h: &mut BTreeMap<String, String>| {
            for v in h.values_mut() {
                *v = f(v);
            }
        };
        let r = &mut self.client_request;
        r.path = f(&r.path);
        r.body = f(&r.body);
        headers(&mut r.headers);
        if let Some(p) = r.planned.take() {
            r.planned = serde_json::to_string(&p)
                .ok()
                .and_then(|t| serde_json::from_str(&f(&t)).ok());
        }
        for a in &mut self.attempts {
            a.url = f(&a.url);
            a.body = f(&a.body);
            a.response = f(&a.response);
            a.error = a.error.as_deref().map(f);
            a.response_error = a.response_error.as_deref().map(f);
            headers(&mut a.headers);
            headers(&mut a.response_headers);
        }
        let c = &mut self.client_response;
        c.body = f(&c.body);
        headers(&mut c.headers);
    }
}
