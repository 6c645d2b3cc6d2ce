//! The one usage record per request: a structured `tracing` event (target `ferry::usage`)
//! and the request metrics.
//!
//! The metrics are updated when the request ends; the log line is written after the
//! response bytes it describes (see [`UsageLog`]), so formatting it and the `write` to
//! stderr never delay the client.

use std::sync::{Arc, Mutex, PoisonError};

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

/// What is known about a request, filled in as the pipeline goes.
///
/// Exactly one record is written per request, whatever path it takes: the copies of one
/// request's record (the attempt's [`super::Finisher`] holds one) share a [`Guard`]; the
/// first [`UsageRecord::finish`] writes, later ones do nothing, and if every copy is
/// dropped unfinished (the client left before the upstream answered, and no task went on
/// reading it), the last one writes the record with status 499 and outcome
/// `client_disconnected` from its `Drop`.
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
    /// The upstream reported implausible token counts (dropped from `usage`).
    pub(crate) usage_implausible: bool,
    /// Where the log line goes: its connection's queue, or `None` to write it at once.
    pub(crate) log: Option<UsageLog>,
    /// Shared by the copies of one request's record; `None` for a record that is only
    /// data (a line being written).
    guard: Option<Arc<Guard>>,
}

/// What the copies of one request's record share: whether it was written, and the state
/// to write it with from a `Drop`.
pub(crate) struct Guard {
    written: std::sync::atomic::AtomicBool,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// The status written for a request whose client left before any answer (nginx's
/// "client closed request").
pub(crate) const CLIENT_CLOSED_STATUS: u16 = 499;

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
            usage_implausible: false,
            log: None,
            guard: None,
        }
    }

    /// Arms the record: from now on, dropping its last copy unfinished writes it (see the
    /// type's docs).
    pub(crate) fn arm(&mut self, state: &Arc<AppState>) {
        self.guard = Some(Arc::new(Guard {
            written: std::sync::atomic::AtomicBool::new(false),
            state: Arc::clone(state),
        }));
    }

    /// The record's data, leaving `self` empty (and disarmed).
    fn take(&mut self) -> Self {
        Self {
            request_id: std::mem::take(&mut self.request_id),
            client: std::mem::take(&mut self.client),
            stream: self.stream,
            original_model: std::mem::take(&mut self.original_model),
            billing_model: std::mem::take(&mut self.billing_model),
            upstream_model: std::mem::take(&mut self.upstream_model),
            account: std::mem::take(&mut self.account),
            service_tier: self.service_tier.take(),
            reasoning_effort: self.reasoning_effort.take(),
            prompt_cache_key_source: self.prompt_cache_key_source.take(),
            continued: self.continued,
            session: self.session.take(),
            response_id: self.response_id.take(),
            failovers: self.failovers,
            started: self.started,
            first_token: self.first_token,
            usage: self.usage,
            usage_implausible: self.usage_implausible,
            log: self.log.take(),
            guard: None,
        }
    }

    /// Writes the record of a request answered with `error` (its status and kind).
    pub(crate) fn fail(self, state: &Arc<AppState>, error: &crate::error::Error) {
        self.finish(
            state,
            error.status().as_u16(),
            &Outcome::Error(error.kind()),
        );
    }

    /// Updates the metrics and writes the record (through its [`UsageLog`] when it has
    /// one). `status` is the HTTP status the client got.
    /// Only the first `finish` of a request's copies writes.
    pub(crate) fn finish(mut self, state: &Arc<AppState>, status: u16, outcome: &Outcome) {
        if let Some(g) = self.guard.take()
            && g.written.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        self.take().write(state, status, outcome);
    }

    fn write(mut self, state: &AppState, status: u16, outcome: &Outcome) {
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
        let u = self.usage;
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
        let model = if self.billing_model.is_empty() {
            &self.upstream_model
        } else {
            &self.billing_model
        };
        let cost = state.config.prices.cost(model, &u);
        if !model.is_empty() && (prompt > 0 || u.output_tokens > 0) {
            m.cost_usd_total.add([&self.client, model], cost);
            crate::cost::record(state, &self.client, prompt + u.output_tokens, cost);
        }
        crate::admin::usage::record(state, &self.client, status, &u, cost);
        let line = UsageLine {
            cost_usd: cost,
            status,
            outcome: outcome.as_str(),
            first_token_ms: first_token_ms.map(|v| u64::try_from(v).unwrap_or(u64::MAX)),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            log: self.log.take(),
            record: self,
        };
        if line.record.usage_implausible {
            m.usage_implausible_total.inc([]);
        }
        match line.log.clone() {
            Some(log) => log.push(line),
            None => line.write(),
        }
    }
}

impl Drop for UsageRecord {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        // Only the last copy of the record writes, and only if no copy finished.
        let Some(guard) = Arc::into_inner(guard) else {
            return;
        };
        if guard.written.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        self.take().write(
            &guard.state,
            CLIENT_CLOSED_STATUS,
            &Outcome::ClientDisconnected,
        );
    }
}

/// A finished record waiting to be written.
pub(crate) struct UsageLine {
    record: UsageRecord,
    status: u16,
    outcome: &'static str,
    first_token_ms: Option<u64>,
    duration_ms: u64,
    /// The price table's cost of the usage.
    cost_usd: f64,
    /// Taken out of `record`, so a queued line holds no reference to its queue.
    log: Option<UsageLog>,
}

impl UsageLine {
    fn write(&self) {
        let r = &self.record;
        let u = &r.usage;
        tracing::info!(
            target: "ferry::usage",
            request_id = %r.request_id,
            client = %r.client,
            account = %r.account,
            model = %r.original_model,
            billing_model = %r.billing_model,
            upstream_model = %r.upstream_model,
            stream = r.stream,
            status = self.status,
            outcome = self.outcome,
            input_tokens = u.input_tokens,
            output_tokens = u.output_tokens,
            cache_read_tokens = u.cache_read_input_tokens,
            cache_creation_tokens = u.cache_creation_input_tokens,
            cost_usd = self.cost_usd,
            first_token_ms = self.first_token_ms,
            duration_ms = self.duration_ms,
            service_tier = r.service_tier.as_deref(),
            reasoning_effort = r.reasoning_effort.as_deref(),
            prompt_cache_key_source = r.prompt_cache_key_source,
            continued = r.continued,
            session = r.session.as_deref(),
            response_id = r.response_id.as_deref(),
            failovers = r.failovers,
            usage_implausible = r.usage_implausible,
            "usage"
        );
    }
}

/// The usage lines of one client connection, written once the connection has sent what
/// it had to send: the server polls the connection, then calls [`UsageLog::flush`].
///
/// At concurrency 1 the line's formatting and its `write` to stderr took about 10 µs
/// (20 µs at p99) between the upstream's answer and the client's response; now they
/// overlap with the client reading it. A line finished after its connection closed
/// (the upstream drained after the client left) is written at once.
#[derive(Clone, Debug)]
pub(crate) struct UsageLog(Arc<Mutex<Option<Vec<UsageLine>>>>);

impl std::fmt::Debug for UsageLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageLine")
            .field("request_id", &self.record.request_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl UsageLog {
    /// An open log for a new connection.
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Some(Vec::new()))))
    }

    fn push(&self, line: UsageLine) {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match q.as_mut() {
            Some(lines) => lines.push(line),
            None => {
                drop(q);
                line.write();
            }
        }
    }

    /// Writes the queued lines.
    pub(crate) fn flush(&self) {
        let lines = {
            let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match q.as_mut() {
                Some(lines) if !lines.is_empty() => std::mem::take(lines),
                _ => return,
            }
        };
        for line in &lines {
            line.write();
        }
    }

    /// Writes the queued lines; later lines are written as they finish.
    pub(crate) fn close(&self) {
        let lines = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        for line in &lines {
            line.write();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer, for one test's subscriber.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn line(request_id: &str) -> UsageLine {
        UsageLine {
            record: UsageRecord::new(request_id, "alice", false, "claude-opus-4-8"),
            status: 200,
            outcome: "ok",
            first_token_ms: None,
            duration_ms: 3,
            cost_usd: 0.0,
            log: None,
        }
    }

    #[test]
    fn queued_lines_wait_for_the_flush_and_lines_after_the_close_are_written_at_once() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let log = UsageLog::new();
            log.push(line("req_a"));
            log.push(line("req_b"));
            assert!(buf.lines().is_empty(), "written before the flush");
            log.flush();
            let lines = buf.lines();
            assert_eq!(lines.len(), 2);
            assert!(lines[0].contains("request_id=req_a") && lines[0].contains("status=200"));
            assert!(lines[1].contains("request_id=req_b"));
            log.flush();
            assert_eq!(buf.lines().len(), 2, "a flush writes each line once");

            log.push(line("req_c"));
            log.close();
            assert_eq!(buf.lines().len(), 3, "the close writes what is queued");
            log.push(line("req_d"));
            let lines = buf.lines();
            assert_eq!(lines.len(), 4, "a closed log writes at once");
            assert!(lines[3].contains("request_id=req_d"));
        });
    }
}
