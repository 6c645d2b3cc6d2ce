//! What the admin API shows of each account: [`AccountSnapshot`] (state, cooldown end and
//! cause, in-flight count, the last Codex usage windows) and the last upstream errors
//! ([`AccountError`]), read in one pass under each account's health lock.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{AccountState, Pool};
use crate::classify::{Disposition, unix_now};
use crate::config::AccountKind;
use crate::ratelimit::CodexUsage;

/// How many upstream errors each account remembers for [`AccountSnapshot::last_errors`].
pub const LAST_ERRORS: usize = 5;

/// One upstream error an account got, as the pool classified it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountError {
    /// When (unix seconds).
    pub at_unix: u64,
    /// The upstream's HTTP status; `None` for a failure without one (a stream that failed,
    /// a transport error, a token refresh).
    pub status: Option<u16>,
    /// What the pool made of it: retry, failover (with the cooldown applied) or fatal.
    pub disposition: Disposition,
}

impl AccountError {
    pub(super) fn now(status: Option<u16>, disposition: Disposition) -> Self {
        Self {
            at_unix: unix_now(),
            status,
            disposition,
        }
    }
}

/// Everything the admin API shows of one account, at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountSnapshot {
    /// The account's name.
    pub name: String,
    /// How it authenticates.
    pub kind: AccountKind,
    /// Lower is tried first.
    pub priority: i32,
    /// Its concurrency limit.
    pub concurrency: u32,
    /// Requests in flight on it in this process.
    pub in_flight: u32,
    /// Its health now (a cooldown carries its cause and the time left).
    pub state: AccountState,
    /// When a cooldown ends (unix seconds), while the account is cooling down.
    pub cooldown_until_unix: Option<u64>,
    /// The last Codex usage windows seen (OAuth accounts), and how long ago they were seen
    /// (their `reset_after_seconds` count from then).
    pub codex_usage: Option<(CodexUsage, Duration)>,
    /// The last [`LAST_ERRORS`] upstream errors, oldest first.
    pub last_errors: Vec<AccountError>,
}

impl Pool {
    /// A snapshot of every account, in config order.
    pub fn snapshot(&self) -> Vec<AccountSnapshot> {
        let now = Instant::now();
        let now_unix = unix_now();
        self.accounts()
            .map(|a| {
                let health = a.health();
                let state = health.state(now);
                let cooldown_until_unix = match state {
                    AccountState::CoolingDown { remaining, .. } => {
                        // Rounded up: the account is not ready before that second.
                        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
                        Some(now_unix.saturating_add(secs))
                    }
                    _ => None,
                };
                AccountSnapshot {
                    name: a.name().to_owned(),
                    kind: a.config.kind,
                    priority: a.config.priority,
                    concurrency: a.config.concurrency,
                    in_flight: a.in_flight.load(Ordering::Acquire),
                    state,
                    cooldown_until_unix,
                    codex_usage: health
                        .usage
                        .map(|u| (u.usage, now.saturating_duration_since(u.observed_at))),
                    last_errors: health.errors.iter().copied().collect(),
                }
            })
            .collect()
    }
}
