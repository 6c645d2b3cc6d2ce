//! Stage 3, `failover`: the attempt loop. Picks an account, runs one attempt on it, and
//! decides from the attempt's outcome whether to retry the same account, replay without
//! continuation or reasoning, fail over to another account, or answer.

use std::sync::Arc;
use std::time::Duration;

use ferry_accounts::{Lease, Selection};
use http::Response;

use super::plan::Replay;
use super::prepare::Ctx;
use super::send::attempt;
use super::usage::{Outcome, UsageRecord};
use crate::body::ResponseBody;
use crate::error::Error;
use crate::routes::error_response;

/// What one attempt on one account ended with.
pub(crate) enum Attempt {
    /// The client has its response (or its stream has started).
    Done(Response<ResponseBody>),
    /// Try the same account again after a pause (pool mode; OAuth 401 with a refresh).
    Retry {
        after: Duration,
        lease: Lease,
        reason: &'static str,
    },
    /// The upstream rejected `previous_response_id`: replay the full history once.
    ContinuationReset(Lease),
    /// The upstream rejected the replayed encrypted reasoning (`invalid_encrypted_content`,
    /// e.g. signed under another account): send the full history once more without it.
    ReasoningReset(Lease),
    /// Try another account.
    Failover { error: Error, reason: &'static str },
    /// This account does not serve the model; try another without counting a switch.
    Skip,
    /// Answer the client with this error.
    Fatal(Error),
}

/// The attempt loop: account selection, same-account retries and failover, bounded by
/// `gateway.max_account_switches` (one switch during an OAuth 429 storm).
pub(crate) async fn run(ctx: &Arc<Ctx>, mut record: UsageRecord) -> Response<ResponseBody> {
    let state = &ctx.state;
    let pool = &state.pool;
    let max_switches = state.config.gateway.max_account_switches;
    let preferred = ctx.sticky.as_ref().map(|s| s.account.clone());
    let mut excluded: Vec<String> = Vec::new();
    let mut switches = 0u32;
    let mut last_error: Option<Error> = None;
    // Why the last account was left; counted once another account actually takes over.
    let mut pending_failover: Option<&'static str> = None;
    let mut reset = false;
    // Set after an `invalid_encrypted_content` rejection: at most once per request.
    let mut strip_reasoning = false;
    let error = loop {
        let selection = Selection {
            preferred: preferred.as_deref(),
            exclude: &excluded,
        };
        let lease = match pool.acquire(&selection).await {
            Ok(lease) => lease,
            Err(e) => break last_error.take().unwrap_or_else(|| accounts_error(&e)),
        };
        if let Some(reason) = pending_failover.take() {
            state.metrics.failovers_total.inc([reason]);
            record.failovers += 1;
        }
        let account = lease.name().to_owned();
        let mut lease = Some(lease);
        let mut same_account_retries = 0u32;
        let ended = loop {
            let Some(l) = lease.take() else {
                break Attempt::Fatal(Error::Internal("account lease lost".to_owned()));
            };
            record.account.clone_from(&account);
            let replay = Replay {
                reset,
                strip_reasoning,
            };
            match attempt(ctx, l, &mut record, replay, same_account_retries).await {
                Attempt::Retry {
                    after,
                    lease: l,
                    reason,
                } => {
                    state.metrics.failovers_total.inc([reason]);
                    same_account_retries += 1;
                    tokio::time::sleep(after).await;
                    lease = Some(l);
                }
                Attempt::ContinuationReset(l) if !reset => {
                    reset = true;
                    lease = Some(l);
                }
                Attempt::ReasoningReset(l) if !strip_reasoning => {
                    // The stored chain may hold the rejected reasoning too: no continuation.
                    reset = true;
                    strip_reasoning = true;
                    lease = Some(l);
                }
                other => break other,
            }
        };
        match ended {
            Attempt::Done(resp) => return resp,
            Attempt::Fatal(e) => break e,
            Attempt::Skip => excluded.push(account),
            Attempt::Failover { error, reason } => {
                pending_failover = Some(reason);
                tracing::info!(target: "ferry::failover", request_id = %ctx.request_id, account = %account, reason, error = %error, "failing over");
                if let Some(r) = &ctx.resolved {
                    state
                        .sessions
                        .clear_sticky_account_if(ctx.client_id(), &r.key, &account)
                        .await;
                }
                excluded.push(account);
                last_error = Some(error);
                switches += 1;
                let budget = if reason == "rate_limited" && pool.in_rate_limit_storm() {
                    max_switches.min(1)
                } else {
                    max_switches
                };
                if switches > budget {
                    break last_error
                        .take()
                        .unwrap_or_else(|| Error::Internal("no error".into()));
                }
            }
            Attempt::Retry { .. } | Attempt::ContinuationReset(_) | Attempt::ReasoningReset(_) => {
                break Error::Internal("unexpected retry state".to_owned());
            }
        }
    };
    record.finish(
        state,
        error.status().as_u16(),
        &Outcome::Error(error.kind()),
    );
    error_response(&error)
}

/// The error for a pool that has no account to offer.
pub(crate) fn accounts_error(e: &ferry_accounts::AccountsError) -> Error {
    match e {
        ferry_accounts::AccountsError::AllUnavailable { kind, retry_after } => Error::NoAccount {
            rate_limited: *kind == ferry_accounts::Unavailable::RateLimited,
            retry_after: *retry_after,
            message: match kind {
                ferry_accounts::Unavailable::RateLimited => {
                    "every upstream account is rate limited; retry later".to_owned()
                }
                ferry_accounts::Unavailable::Overloaded => {
                    "every upstream account is busy or cooling down; retry later".to_owned()
                }
                _ => "no upstream account is available".to_owned(),
            },
        },
        ferry_accounts::AccountsError::NoAccounts => Error::NoAccount {
            rate_limited: false,
            retry_after: None,
            message: "no upstream accounts are configured".to_owned(),
        },
        other => Error::Internal(other.to_string()),
    }
}
