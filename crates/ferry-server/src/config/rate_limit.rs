//! `[rate_limit]`: how long accounts are benched.

use std::time::Duration;

use serde::Deserialize;

use super::problems::{Problems, secs_in};

/// `[rate_limit]`: how long accounts are benched.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Longest cooldown, whatever an upstream's `retry-after`, reset header or body asks for.
    pub max_cooldown: Duration,
    /// First bench of an API-key account after a 401; doubles per 401 in a row, to 10 min.
    pub unauthorized_backoff: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            max_cooldown: ferry_accounts::DEFAULT_MAX_COOLDOWN,
            unauthorized_backoff: ferry_accounts::DEFAULT_UNAUTHORIZED_BACKOFF,
        }
    }
}
/// `[rate_limit]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimit {
    /// default 7200; 1..=86400
    pub max_cooldown_secs: Option<u64>,
    /// default 30; 1..=600
    pub unauthorized_backoff_secs: Option<u64>,
}
impl RawRateLimit {
    pub(super) fn validate(self, p: &mut Problems) -> RateLimitConfig {
        let default = RateLimitConfig::default();
        let max_cooldown = secs_in(
            p,
            "rate_limit.max_cooldown_secs",
            self.max_cooldown_secs,
            default.max_cooldown.as_secs(),
            1..=86_400,
            false,
        )
        .unwrap_or(default.max_cooldown);
        let unauthorized_backoff = secs_in(
            p,
            "rate_limit.unauthorized_backoff_secs",
            self.unauthorized_backoff_secs,
            default.unauthorized_backoff.as_secs(),
            1..=600,
            false,
        )
        .unwrap_or(default.unauthorized_backoff);
        RateLimitConfig {
            max_cooldown,
            unauthorized_backoff,
        }
    }
}
