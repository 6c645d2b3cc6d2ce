//! The turn log of a finished request ([`ferry_session::Sessions::record_turn`]): written
//! after the response, on a task of its own, so neither its store round trip nor the
//! comparison with the previous turn delays the client. A miss whose reason needs the
//! previous turn ([`ferry_session::MissReason::needs_history`]) is counted in
//! `ferry_cache_miss_total` there, with the explained reason; the others are counted in
//! `finish` as before.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_apicompat::anthropic;
use ferry_session::{MissReason, PrefixFingerprint, TurnFacts};

use super::finish::SessionBinding;
use super::plan::Built;
use super::prepare::Ctx;
use super::usage::UsageRecord;
use crate::state::AppState;

/// What an attempt adds to its [`SessionBinding`] for the turn log.
pub(crate) struct TurnContext {
    fingerprint: Option<Arc<PrefixFingerprint>>,
    /// The request carried `previous_response_id`.
    continued: bool,
}

impl TurnContext {
    pub(crate) fn new(ctx: &Ctx, built: &Built) -> Self {
        Self {
            fingerprint: ctx.fingerprint.clone(),
            continued: built.continued,
        }
    }
}

/// The outcome of a turn, taken from its usage record before it is written.
pub(crate) struct Finished {
    model: String,
    prompt_tokens: u64,
    cached_tokens: u64,
    /// The [`ferry_session::classify_miss`] reason, when the turn missed.
    miss: Option<MissReason>,
    at_ms: u64,
}

impl Finished {
    pub(crate) fn new(
        record: &UsageRecord,
        usage: anthropic::Usage,
        miss: Option<MissReason>,
    ) -> Self {
        Self {
            model: record.upstream_model.clone(),
            prompt_tokens: usage.input_tokens
                + usage.cache_read_input_tokens
                + usage.cache_creation_input_tokens,
            cached_tokens: usage.cache_read_input_tokens,
            miss,
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// Records the turn on a task of its own (the response does not wait for it).
pub(crate) fn spawn_record(
    state: Arc<AppState>,
    binding: SessionBinding,
    account: String,
    response_id: Option<String>,
    turn: Finished,
) {
    if tokio::runtime::Handle::try_current().is_err() {
        count_unexplained(&state, &turn);
        return;
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "runs after the response on purpose: the turn log's store round trip must not delay the client; it ends after one read and two writes"
    )]
    drop(tokio::spawn(async move {
        record(&state, &binding, &account, response_id.as_deref(), &turn).await;
    }));
}

async fn record(
    state: &AppState,
    b: &SessionBinding,
    account: &str,
    response_id: Option<&str>,
    turn: &Finished,
) {
    let Some(fingerprint) = &b.turn.fingerprint else {
        count_unexplained(state, turn);
        return;
    };
    let explained = state
        .sessions
        .record_turn(&TurnFacts {
            client_key_id: &b.client_id,
            resolved: &b.resolved,
            agent: &b.agent_id,
            account,
            model: &turn.model,
            fingerprint,
            at_ms: turn.at_ms,
            prompt_tokens: turn.prompt_tokens,
            cached_tokens: turn.cached_tokens,
            continued: b.turn.continued,
            response_id: response_id.filter(|_| b.continuation),
            miss: turn.miss,
        })
        .await;
    let Some(e) = explained else { return };
    if turn.miss.is_some_and(MissReason::needs_history) {
        state.metrics.cache_miss_total.inc([e.reason.as_str()]);
    }
    tracing::info!(
        target: "ferry::cache",
        reason = e.reason.as_str(),
        session = %ferry_session::session_id(&b.client_id, &b.resolved.key),
        account,
        idle_secs = e.idle_secs,
        detail = %e.detail,
        "cache miss"
    );
}

/// Counts a deferred miss with the reason `classify_miss` gave, when it cannot be
/// explained (no runtime, no fingerprint).
fn count_unexplained(state: &AppState, turn: &Finished) {
    if let Some(reason) = turn.miss.filter(|r| r.needs_history()) {
        state.metrics.cache_miss_total.inc([reason.as_str()]);
    }
}
