//! One upstream account of the pool and its health: cooldown, disabling, recent 403s, the
//! 401 streak and the last Codex usage headers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::classify::{CooldownKind, FailoverReason};
use crate::config::AccountConfig;
use crate::oauth::OAuthTokens;
use crate::ratelimit::CodexUsage;

/// An account's health as seen by `/ready` and `ferry_account_available{account}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    /// Can take traffic.
    Ready,
    /// Temporarily unschedulable.
    CoolingDown {
        /// Why.
        kind: CooldownKind,
        /// What caused it.
        reason: FailoverReason,
        /// Time left.
        remaining: Duration,
    },
    /// Unusable until restart.
    Disabled {
        /// What caused it.
        reason: FailoverReason,
    },
}

/// The last Codex usage headers seen on an account.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsageSnapshot {
    /// The parsed windows.
    pub usage: CodexUsage,
    /// When they were received (resets are relative to this).
    pub observed_at: Instant,
}

#[derive(Debug, Default)]
pub(super) struct Health {
    pub(super) cooldown: Option<(Instant, CooldownKind, FailoverReason)>,
    pub(super) disabled: Option<FailoverReason>,
    pub(super) forbidden: VecDeque<Instant>,
    pub(super) usage: Option<UsageSnapshot>,
    /// 401s in a row (reset by a success): the API-key back-off exponent.
    pub(super) unauthorized_streak: u32,
    /// The last [`LAST_ERRORS`](super::LAST_ERRORS) upstream errors, oldest first.
    pub(super) errors: VecDeque<super::AccountError>,
}

impl Health {
    pub(super) fn state(&self, now: Instant) -> AccountState {
        if let Some(reason) = self.disabled {
            return AccountState::Disabled { reason };
        }
        match self.cooldown {
            Some((until, kind, reason)) if until > now => AccountState::CoolingDown {
                kind,
                reason,
                remaining: until - now,
            },
            _ => AccountState::Ready,
        }
    }
}

/// One upstream account of the pool.
#[derive(Debug)]
pub struct Account {
    pub(super) config: AccountConfig,
    pub(super) index: usize,
    pub(super) in_flight: AtomicU32,
    pub(super) health: Mutex<Health>,
    pub(super) oauth: Option<OAuthTokens>,
}

impl Account {
    /// Its config.
    pub fn config(&self) -> &AccountConfig {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its OAuth tokens (OAuth accounts only).
    pub fn oauth(&self) -> Option<&OAuthTokens> {
        self.oauth.as_ref()
    }

    pub(super) fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn try_reserve(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.config.concurrency).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn set_cooldown(&self, until: Instant, kind: CooldownKind, reason: FailoverReason) {
        let mut health = self.health();
        let longer = health
            .cooldown
            .is_none_or(|(current, _, _)| until > current);
        if longer {
            health.cooldown = Some((until, kind, reason));
        }
    }

    pub(super) fn disable(&self, reason: FailoverReason) {
        self.health().disabled = Some(reason);
    }

    /// Remembers an upstream error for the admin view, keeping the last
    /// [`LAST_ERRORS`](super::LAST_ERRORS).
    pub(super) fn note_error(&self, error: super::AccountError) {
        let mut health = self.health();
        if health.errors.len() >= super::LAST_ERRORS {
            health.errors.pop_front();
        }
        health.errors.push_back(error);
    }
}
