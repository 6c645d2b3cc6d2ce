//! The one usage record per request: a structured `tracing` event (target `ferry::usage`)
//! and the request metrics.

use std::sync::Arc;

use ferry_apicompat::anthropic;
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use crate::state::AppState;

/// How a request ended, for the usage record (`outcome` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The response completed (a `message_stop` or a 200 JSON message).
    Ok,
    /// The client went away mid-stream; usage was drained from the upstream.
    ClientDisconnected,
    /// Ended with an error of this `server::Error::kind()` (or a stream failure label).
    Error(&'static str),
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientDisconnected => "client_disconnected",
            Self::Error(kind) => kind,
        }
    }
}

/// What is known about a request, filled in as the pipeline goes; [`UsageRecord::finish`]
/// writes it exactly once.
#[derive(Debug, Clone)]
pub(crate) struct UsageRecord {
    pub(crate) request_id: String,
    pub(crate) client: String,
    pub(crate) stream: bool,
    pub(crate) original_model: String,
    pub(crate) billing_model: String,
    pub(crate) upstream_model: String,
    pub(crate) account: String,
    pub(crate) service_tier: Option<String>,
    pub(crate) reasoning_effort: Option<String>,
    pub(crate) prompt_cache_key_source: Option<&'static str>,
    /// The answer came from a request that carried `previous_response_id`.
    pub(crate) continued: bool,
    /// [`session_tag`] of the upstream `session_id` header: comparable across replicas
    /// without logging the id itself.
    pub(crate) session: Option<String>,
    pub(crate) response_id: Option<String>,
    pub(crate) failovers: u32,
    pub(crate) started: Instant,
    pub(crate) first_token: Option<Instant>,
    pub(crate) usage: anthropic::Usage,
}

impl UsageRecord {
    pub(crate) fn new(request_id: &str, client: &str, stream: bool, original_model: &str) -> Self {
        Self {
            request_id: request_id.to_owned(),
            client: client.to_owned(),
            stream,
            original_model: original_model.to_owned(),
            billing_model: String::new(),
            upstream_model: String::new(),
            account: String::new(),
            service_tier: None,
            reasoning_effort: None,
            prompt_cache_key_source: None,
            continued: false,
            session: None,
            response_id: None,
            failovers: 0,
            started: Instant::now(),
            first_token: None,
            usage: anthropic::Usage::default(),
        }
    }

    /// Writes the record and the metrics. `status` is the HTTP status the client got.
    pub(crate) fn finish(self, state: &Arc<AppState>, status: u16, outcome: &Outcome) {
        let m = &state.metrics;
        let duration = self.started.elapsed();
        let first_token_ms = self
            .first_token
            .map(|t| t.duration_since(self.started).as_millis());
        let stream = if self.stream { "true" } else { "false" };
        m.requests_total.inc([&status.to_string(), stream]);
        m.request_duration.observe(duration.as_secs_f64());
        if let Some(t) = self.first_token {
            m.first_token
                .observe(t.duration_since(self.started).as_secs_f64());
        }
        let u = &self.usage;
        // Anthropic's `input_tokens` excludes cache reads; the total prompt is their sum.
        let prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
        if prompt > 0 || u.output_tokens > 0 {
            m.tokens_total.inc_by(["input"], u.input_tokens);
            m.tokens_total.inc_by(["output"], u.output_tokens);
            m.tokens_total
                .inc_by(["cache_read"], u.cache_read_input_tokens);
        }
        if prompt > 0 {
            #[expect(
                clippy::cast_precision_loss,
                reason = "token counts are far below 2^52"
            )]
            m.prompt_cache_hit_ratio
                .observe(u.cache_read_input_tokens as f64 / prompt as f64);
        }
        tracing::info!(
            target: "ferry::usage",
            request_id = %self.request_id,
            client = %self.client,
            account = %self.account,
            model = %self.original_model,
            billing_model = %self.billing_model,
            upstream_model = %self.upstream_model,
            stream = self.stream,
            status,
            outcome = outcome.as_str(),
            input_tokens = u.input_tokens,
            output_tokens = u.output_tokens,
            cache_read_tokens = u.cache_read_input_tokens,
            cache_creation_tokens = u.cache_creation_input_tokens,
            first_token_ms = first_token_ms.map(|v| u64::try_from(v).unwrap_or(u64::MAX)),
            duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            service_tier = self.service_tier.as_deref(),
            reasoning_effort = self.reasoning_effort.as_deref(),
            prompt_cache_key_source = self.prompt_cache_key_source,
            continued = self.continued,
            session = self.session.as_deref(),
            response_id = self.response_id.as_deref(),
            failovers = self.failovers,
            "usage"
        );
    }
}

/// The first 8 hex digits of `sha256(session_id)`: enough to tell sessions apart in the
/// logs of several replicas, without writing the upstream session id itself.
pub(crate) fn session_tag(session_id: &str) -> String {
    Sha256::digest(session_id.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}
