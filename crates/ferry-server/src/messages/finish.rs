//! Stage 6, `finish`: the [`Finisher`] holds the account lease and the usage record until
//! the response is over, then writes the record, the cache-economy metrics and the session
//! bindings.

use std::sync::Arc;

use ferry_apicompat::anthropic;
use ferry_session::{MissFacts, ResolvedKey, SessionRef, StickyBinding};
use tokio::time::Instant;

use super::Bookkeeping;
use super::failover::Attempt;
use super::plan::{Built, Replay};
use super::prepare::Ctx;
use super::threads;
use super::usage::{Outcome, UsageRecord};
use crate::error::Error;
use crate::http_util::error_response;
use crate::state::AppState;
use ferry_accounts::Lease;

/// Session state to write after a successful response.
pub(crate) struct SessionBinding {
    pub(crate) resolved: ResolvedKey,
    pub(crate) client_id: String,
    /// Claude Code's agent id (empty: the main agent).
    pub(crate) agent_id: String,
    pub(crate) continuation: bool,
    pub(crate) sticky: Option<StickyBinding>,
    pub(crate) reset: bool,
    /// For the turn log ([`super::turn_log`]).
    pub(crate) turn: super::turn_log::TurnContext,
}

/// Holds the account lease and the usage record until the response is over, then writes
/// the record, the cache-economy metrics and the session bindings.
pub(crate) struct Finisher {
    pub(crate) record: UsageRecord,
    /// The lease's account.
    pub(crate) account: String,
    /// The account's slot; `None` once released early (the client left and only the
    /// usage is still being read, see [`Finisher::release_slot`]).
    pub(crate) lease: Option<Lease>,
    pub(crate) binding: Option<SessionBinding>,
    /// The message-thread turn to store once the reply is complete.
    pub(crate) thread: Option<threads::Pending>,
    /// The request replays encrypted reasoning (items, or a continued chain) that a retry
    /// could leave out, and has not been retried without it yet.
    pub(crate) reasoning_retry: bool,
}

impl Finisher {
    /// The finisher of one attempt that got an answer: it takes over the lease and a copy
    /// of the request's usage record.
    pub(crate) fn new(
        ctx: &Ctx,
        lease: Lease,
        built: &Built,
        record: &UsageRecord,
        replay: Replay,
    ) -> Self {
        Self {
            thread: ctx.thread.clone().map(|turn| threads::Pending {
                turn,
                client_id: ctx.client_id().to_owned(),
                capture: threads::Capture::default(),
                reply: None,
                continuation: built.continuation,
            }),
            record: record.clone(),
            account: lease.name().to_owned(),
            lease: Some(lease),
            binding: ctx.resolved.clone().map(|resolved| SessionBinding {
                resolved,
                client_id: ctx.client_id().to_owned(),
                agent_id: ctx.agent_id().to_owned(),
                continuation: built.continuation,
                sticky: ctx.sticky.clone(),
                reset: replay.reset,
                turn: super::turn_log::TurnContext::new(ctx, built),
            }),
            reasoning_retry: !replay.strip_reasoning
                && (built.reasoning_items > 0 || built.continued),
        }
    }

    /// Sees the events about to be sent (a thread turn rebuilds its reply from them).
    pub(crate) fn observe(&mut self, events: &[anthropic::StreamEvent]) {
        if let Some(t) = self.thread.as_mut() {
            t.capture.observe(events);
        }
    }

    /// Frees the account's slot now: the client left, so the upstream is read on only to
    /// learn the usage, and the next client must not wait for that.
    pub(crate) fn release_slot(&mut self) {
        drop(self.lease.take());
    }

    /// Ends the attempt with `error` as the client's answer: frees the account's slot and
    /// writes the usage record with the usage the upstream reported.
    pub(crate) fn fail(
        self,
        state: &Arc<AppState>,
        usage: anthropic::Usage,
        error: &Error,
    ) -> Attempt {
        let Self {
            mut record, lease, ..
        } = self;
        drop(lease);
        record.usage = usage;
        record.fail(state, error);
        Attempt::Done(error_response(error))
    }

    /// Writes the usage record now; returns the session writes to await (on success).
    pub(crate) fn finish(
        self,
        state: &Arc<AppState>,
        usage: anthropic::Usage,
        response_id: Option<&str>,
        first_event_at: Option<Instant>,
        status: u16,
        outcome: &Outcome,
    ) -> Option<Bookkeeping> {
        let Self {
            mut record,
            account,
            lease,
            binding,
            thread,
            reasoning_retry: _,
        } = self;
        // The upstream is done with this request: free the account's slot.
        drop(lease);
        record.usage = usage;
        record.first_token = first_event_at;
        record.response_id = response_id.map(str::to_owned);
        let prompt =
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
        let ok = *outcome == Outcome::Ok || *outcome == Outcome::ClientDisconnected;
        let mut miss = None;
        if let Some(b) = &binding
            && ferry_session::is_miss(prompt, usage.cache_read_input_tokens)
        {
            let reason = ferry_session::classify_miss(&MissFacts {
                resolved: &b.resolved,
                sticky: b.sticky.as_ref(),
                account: &account,
                continuation_reset: b.reset,
            });
            // A reason the previous turn can refine is counted once the turn log has it.
            if !(ok && reason.needs_history()) {
                state.metrics.cache_miss_total.inc([reason.as_str()]);
            }
            miss = Some(reason);
        }
        let turn = super::turn_log::Finished::new(&record, usage, miss);
        record.finish(state, status, outcome);
        let thread = thread.filter(|_| ok).map(|t| {
            let upstream =
                response_id
                    .filter(|_| t.continuation)
                    .map(|id| ferry_session::UpstreamTurn {
                        account: account.clone(),
                        response_id: id.to_owned(),
                    });
            (t, upstream)
        });
        let binding = binding.filter(|_| ok);
        if binding.is_none() && thread.is_none() {
            return None;
        }
        let sessions = state.sessions.clone();
        let state = Arc::clone(state);
        let response_id = response_id.map(str::to_owned);
        Some(Box::pin(async move {
            // Stored before the client's last bytes: its next turn continues from it.
            if let Some((t, upstream)) = thread {
                t.save(&state, upstream).await;
            }
            let Some(b) = binding else {
                return;
            };
            let key = &b.resolved.key;
            sessions.bind_chain(&b.client_id, &b.resolved).await;
            sessions
                .bind_sticky_account(&b.client_id, key, &account, &b.resolved.chain)
                .await;
            if b.continuation
                && let Some(id) = &response_id
            {
                let session = SessionRef::new(&account, &b.client_id, key).with_agent(&b.agent_id);
                sessions
                    .bind_response_id(&session, id, &b.resolved.chain)
                    .await;
            }
            super::turn_log::spawn_record(state, b, account, response_id, turn);
        }))
    }
}
