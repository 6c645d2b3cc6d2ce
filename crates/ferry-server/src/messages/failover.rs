//! Stage 3, `failover`: the attempt loop. Picks an account, runs one attempt on it, and
//! decides from the attempt's outcome whether to retry the same account, replay without
//! continuation or reasoning, fail over to another account, or answer.

use std::sync::Arc;
use std::time::Duration;

use ferry_accounts::{Disposition, FailoverReason, Lease, Selection};
use http::Response;

use super::plan::Replay;
use super::prepare::Ctx;
use super::send::attempt;
use super::usage::UsageRecord;
use crate::body::ResponseBody;
use crate::error::Error;
use crate::http_util::error_response;

/// What one attempt on one account ended with.
pub(crate) enum Attempt {
    /// The client has its response (or its stream has started).
    Done(Response<ResponseBody>),
    /// Try the same account again after a pause (pool mode; OAuth 401 with a refresh).
    Retry {
        after: Duration,
        lease: Lease,
        reason: FailoverReason,
    },
    /// The upstream rejected `previous_response_id`: replay the full history once. `error`
    /// is what the client gets if the replay was already made.
    ContinuationReset { lease: Lease, error: Error },
    /// The upstream rejected the replayed encrypted reasoning (`invalid_encrypted_content`,
    /// e.g. signed under another account): send the full history once more without it.
    /// `error` is what the client gets if that was already done.
    ReasoningReset { lease: Lease, error: Error },
    /// Try another account.
    Failover {
        error: Error,
        reason: FailoverReason,
    },
    /// This account does not serve the model; try another without counting a switch.
    Skip,
    /// Answer the client with this error.
    Fatal(Error),
}

impl Attempt {
    /// How a capture names the outcome (docs/captures.md).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Done(_) => "answered",
            Self::Retry { .. } => "retry",
            Self::ContinuationReset { .. } => "continuation_reset",
            Self::ReasoningReset { .. } => "reasoning_reset",
            Self::Failover { .. } => "failover",
            Self::Skip => "skip",
            Self::Fatal(_) => "fatal",
        }
    }

    /// The one mapping from the classifier's decision to an attempt's outcome: `error` is
    /// what the client gets when no account is left, or at once when the decision is fatal.
    pub(crate) fn from_disposition(disposition: Disposition, lease: Lease, error: Error) -> Self {
        match disposition {
            Disposition::RetrySameAccount { after, reason } => Self::Retry {
                after,
                lease,
                reason,
            },
            Disposition::Failover { reason, .. } => Self::Failover { error, reason },
            Disposition::Fatal => Self::Fatal(error),
        }
    }
}

/// What the attempt loop does next.
pub(crate) enum Next {
    /// Send again on the same account after `after`; `retry` counts the same-account
    /// retry (with its reason), a replay without continuation or reasoning does not.
    Again {
        lease: Lease,
        after: Duration,
        retry: Option<FailoverReason>,
    },
    /// Leave this account; `failed` says why it failed (its sticky binding is dropped;
    /// `None` when it was only skipped). With `give_up` set the switch budget is spent and
    /// the client gets that error; else the next account is tried.
    Another {
        failed: Option<FailoverReason>,
        give_up: Option<Error>,
    },
    /// The client has its answer.
    Answer(Response<ResponseBody>),
    /// Answer the client with this error.
    Fail(Error),
}

/// The failover state of one request: which accounts were left, how many switches were
/// made, the same-account retries on the current account, and which replays were made.
/// [`Attempts::next`] is the whole retry and failover policy; [`run`] is its mechanism.
pub(crate) struct Attempts {
    /// `gateway.max_account_switches`.
    max_switches: u32,
    /// The session's sticky account, tried first.
    preferred: Option<String>,
    excluded: Vec<String>,
    switches: u32,
    /// The error of the last account left, answered when no account is left.
    last_error: Option<Error>,
    /// Why the last account was left; counted once another account actually takes over.
    pending_failover: Option<FailoverReason>,
    /// Same-account retries on the current account.
    same_account_retries: u32,
    /// The full history is sent (continuation was rejected, or reasoning).
    reset: bool,
    /// Replayed reasoning is left out (at most once per request).
    strip_reasoning: bool,
}

impl Attempts {
    /// The state before the first attempt.
    pub(crate) fn new(max_switches: u32, preferred: Option<String>) -> Self {
        Self {
            max_switches,
            preferred,
            excluded: Vec::new(),
            switches: 0,
            last_error: None,
            pending_failover: None,
            same_account_retries: 0,
            reset: false,
            strip_reasoning: false,
        }
    }

    /// Which accounts the pool may pick next.
    pub(crate) fn selection(&self) -> Selection<'_> {
        Selection {
            preferred: self.preferred.as_deref(),
            exclude: &self.excluded,
        }
    }

    /// An account was picked: its retries start at zero. Returns the reason the previous
    /// account was left, now that another one takes over (counted as a failover).
    pub(crate) fn on_acquired(&mut self) -> Option<FailoverReason> {
        self.same_account_retries = 0;
        self.pending_failover.take()
    }

    /// The pool has no account to offer: the last account's error, else the pool's.
    pub(crate) fn exhausted(&mut self, e: &ferry_accounts::AccountsError) -> Error {
        self.last_error.take().unwrap_or_else(|| accounts_error(e))
    }

    /// How the next attempt rebuilds the request.
    pub(crate) fn replay(&self) -> Replay {
        Replay {
            reset: self.reset,
            strip_reasoning: self.strip_reasoning,
        }
    }

    /// Same-account retries made on the current account.
    pub(crate) fn same_account_retries(&self) -> u32 {
        self.same_account_retries
    }

    /// The decision after an attempt on `account` ended with `outcome`. `storm`: the pool
    /// is in an OAuth rate-limit storm (a rate-limited account then switches at most once).
    pub(crate) fn next(&mut self, outcome: Attempt, account: &str, storm: bool) -> Next {
        match outcome {
            Attempt::Done(resp) => Next::Answer(resp),
            Attempt::Fatal(e) => Next::Fail(e),
            Attempt::Retry {
                after,
                lease,
                reason,
            } => {
                self.same_account_retries += 1;
                Next::Again {
                    lease,
                    after,
                    retry: Some(reason),
                }
            }
            Attempt::ContinuationReset { lease, error } => {
                if self.reset {
                    return Next::Fail(error);
                }
                self.reset = true;
                Next::Again {
                    lease,
                    after: Duration::ZERO,
                    retry: None,
                }
            }
            Attempt::ReasoningReset { lease, error } => {
                if self.strip_reasoning {
                    return Next::Fail(error);
                }
                // The stored chain may hold the rejected reasoning too: no continuation.
                self.reset = true;
                self.strip_reasoning = true;
                Next::Again {
                    lease,
                    after: Duration::ZERO,
                    retry: None,
                }
            }
            Attempt::Skip => {
                self.excluded.push(account.to_owned());
                Next::Another {
                    failed: None,
                    give_up: None,
                }
            }
            Attempt::Failover { error, reason } => {
                self.pending_failover = Some(reason);
                self.excluded.push(account.to_owned());
                self.last_error = Some(error);
                self.switches += 1;
                let budget = if reason == FailoverReason::RateLimited && storm {
                    self.max_switches.min(1)
                } else {
                    self.max_switches
                };
                Next::Another {
                    failed: Some(reason),
                    give_up: if self.switches > budget {
                        self.last_error.take()
                    } else {
                        None
                    },
                }
            }
        }
    }

    /// The error the last failover left, for its log line.
    pub(crate) fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }
}

/// The attempt loop: account selection, same-account retries and failover, bounded by
/// `gateway.max_account_switches` (one switch during an OAuth 429 storm). The decisions
/// are [`Attempts::next`]'s; this runs them (pauses, metrics, logs, sticky bindings).
pub(crate) async fn run(ctx: &Arc<Ctx>, mut record: UsageRecord) -> Response<ResponseBody> {
    let state = &ctx.state;
    let pool = &state.pool;
    let mut attempts = Attempts::new(
        state.config.gateway.max_account_switches,
        ctx.sticky.as_ref().map(|s| s.account.clone()),
    );
    let error = 'accounts: loop {
        let mut lease = match pool.acquire(&attempts.selection()).await {
            Ok(lease) => lease,
            Err(e) => break attempts.exhausted(&e),
        };
        if let Some(reason) = attempts.on_acquired() {
            state.metrics.failovers_total.inc([reason.as_str()]);
            record.failovers += 1;
        }
        let account = lease.name().to_owned();
        loop {
            record.account.clone_from(&account);
            let replay = attempts.replay();
            let retries = attempts.same_account_retries();
            let outcome = attempt(ctx, lease, &mut record, replay, retries).await;
            if let Some(c) = &ctx.capture {
                c.end_attempt(outcome.label());
            }
            match attempts.next(outcome, &account, pool.in_rate_limit_storm()) {
                Next::Again {
                    lease: same,
                    after,
                    retry,
                } => {
                    if let Some(reason) = retry {
                        state.metrics.failovers_total.inc([reason.as_str()]);
                        tokio::time::sleep(after).await;
                    }
                    lease = same;
                }
                Next::Another { failed, give_up } => {
                    if let Some(reason) = failed {
                        let error = give_up
                            .as_ref()
                            .or(attempts.last_error())
                            .map(ToString::to_string);
                        tracing::info!(target: "ferry::failover", request_id = %ctx.request_id, account = %account, reason = reason.as_str(), error = error.as_deref().unwrap_or(""), "failing over");
                        if let Some(r) = &ctx.resolved {
                            state
                                .sessions
                                .clear_sticky_account_if(ctx.client_id(), &r.key, &account)
                                .await;
                        }
                    }
                    if let Some(error) = give_up {
                        break 'accounts error;
                    }
                    continue 'accounts;
                }
                Next::Answer(resp) => return resp,
                Next::Fail(error) => break 'accounts error,
            }
        }
    };
    record.fail(state, &error);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(reason: FailoverReason) -> Attempt {
        Attempt::Failover {
            error: Error::UpstreamConnect(format!("{} failed", reason.as_str())),
            reason,
        }
    }

    /// Every failover counts a switch; the one past the budget gives up with its error,
    /// after the account is left (its sticky binding dropped); a skip counts nothing.
    #[test]
    fn the_switch_budget_bounds_failovers_and_skips_are_free() {
        let mut a = Attempts::new(1, None);
        assert!(matches!(
            a.next(Attempt::Skip, "a", false),
            Next::Another {
                failed: None,
                give_up: None
            }
        ));
        assert!(matches!(
            a.next(failover(FailoverReason::ServerError), "b", false),
            Next::Another {
                failed: Some(FailoverReason::ServerError),
                give_up: None
            }
        ));
        assert_eq!(a.on_acquired(), Some(FailoverReason::ServerError));
        match a.next(failover(FailoverReason::Transport), "c", false) {
            Next::Another {
                failed: Some(FailoverReason::Transport),
                give_up: Some(e),
            } => assert_eq!(
                e.to_string(),
                "upstream connection failed: transport failed"
            ),
            _ => panic!("the second failover is past the budget"),
        }
        assert_eq!(a.selection().exclude, ["a", "b", "c"]);
    }

    /// In an OAuth rate-limit storm a rate-limited account switches at most once, whatever
    /// the budget; other reasons keep the full budget.
    #[test]
    fn a_rate_limit_storm_allows_one_switch() {
        let mut a = Attempts::new(5, None);
        assert!(matches!(
            a.next(failover(FailoverReason::RateLimited), "a", true),
            Next::Another { give_up: None, .. }
        ));
        assert!(matches!(
            a.next(failover(FailoverReason::RateLimited), "b", true),
            Next::Another {
                give_up: Some(_),
                ..
            }
        ));
        let mut a = Attempts::new(5, None);
        for account in ["a", "b", "c"] {
            assert!(matches!(
                a.next(failover(FailoverReason::Overloaded), account, true),
                Next::Another { give_up: None, .. }
            ));
        }
    }

    /// With no account left, the last account's error is the answer, not the pool's.
    #[test]
    fn an_exhausted_pool_answers_the_last_accounts_error() {
        let mut a = Attempts::new(3, Some("sticky".into()));
        assert_eq!(a.selection().preferred, Some("sticky"));
        let _ = a.next(failover(FailoverReason::ServerError), "a", false);
        let e = a.exhausted(&ferry_accounts::AccountsError::NoAccounts);
        assert_eq!(
            e.to_string(),
            "upstream connection failed: server_error failed"
        );
        let e = a.exhausted(&ferry_accounts::AccountsError::NoAccounts);
        assert_eq!(e.kind(), "no_account");
    }
}
