//! The pool as `/ready` and the metrics see it: each account's status, readiness, capped
//! cooldowns and Codex usage.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{AccountState, Pool, UsageSnapshot};

/// One account's status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountStatus {
    /// The account's name.
    pub name: String,
    /// Its health.
    pub state: AccountState,
    /// Requests currently in flight.
    pub in_flight: u32,
    /// Its concurrency limit.
    pub concurrency: u32,
}

impl AccountStatus {
    /// True when the account can take traffic (`ferry_account_available` = 1).
    pub fn available(&self) -> bool {
        self.state == AccountState::Ready
    }
}

impl Pool {
    /// Every account's status, in config order.
    pub fn statuses(&self) -> Vec<AccountStatus> {
        let now = Instant::now();
        self.inner
            .accounts
            .iter()
            .map(|a| AccountStatus {
                name: a.config.name.clone(),
                state: a.health().state(now),
                in_flight: a.in_flight.load(Ordering::Acquire),
                concurrency: a.config.concurrency,
            })
            .collect()
    }

    /// Whether the named account can take traffic now (`None` for an unknown name).
    pub fn available(&self, name: &str) -> Option<bool> {
        let now = Instant::now();
        self.account(name)
            .map(|a| a.health().state(now) == AccountState::Ready)
    }

    /// True when at least one account can take traffic (`GET /ready`).
    pub fn is_ready(&self) -> bool {
        let now = Instant::now();
        self.accounts()
            .any(|a| a.health().state(now) == AccountState::Ready)
    }

    /// How many cooldowns were cut to
    /// [`PoolOptions::max_cooldown`](super::PoolOptions::max_cooldown) since start.
    pub fn cooldowns_capped(&self) -> u64 {
        self.inner.capped.load(Ordering::Relaxed)
    }

    /// The longest cooldown applied
    /// ([`PoolOptions::max_cooldown`](super::PoolOptions::max_cooldown)).
    pub fn max_cooldown(&self) -> Duration {
        self.inner.opts.max_cooldown
    }

    /// The last Codex usage snapshot of each OAuth account that has one.
    pub fn codex_usage(&self) -> Vec<(String, UsageSnapshot)> {
        self.accounts()
            .filter_map(|a| a.health().usage.map(|u| (a.name().to_owned(), u)))
            .collect()
    }
}
