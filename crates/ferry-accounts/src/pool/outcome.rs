//! What an attempt's outcome does to its account: an upstream error or a failed stream is
//! classified and applied (cooldown, disabling, 403 counting, OAuth token invalidation), a
//! success resets the 401 streak; Codex usage headers are recorded and OAuth 429s feed the
//! storm detector.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use super::{Account, AccountError, Lease, Pool, UsageSnapshot};
use crate::classify::{
    ClassifyContext, Cooldown, Disposition, FORBIDDEN_WINDOW, TransportFailure,
    classify_stream_failure, unix_now,
};
use crate::config::AccountKind;
use crate::oauth::OAuthTokens;
use crate::ratelimit::CodexUsage;

/// Window and threshold of the OAuth 429 storm detector: 20 answers of 429 to OAuth
/// accounts within 10 s are a storm.
pub const STORM_WINDOW: Duration = Duration::from_secs(10);
/// See [`STORM_WINDOW`].
pub const STORM_THRESHOLD: usize = 20;

impl Pool {
    /// Classifies an upstream error response on `lease`'s account and applies the outcome:
    /// cooldown or disabling, 403 counting, OAuth token invalidation after a 401, and the Codex
    /// usage snapshot. `same_account_retries` is how many times this request already retried on
    /// this account. See [`crate::classify_with`] for the rules.
    pub fn on_upstream_error(
        &self,
        lease: &Lease,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        same_account_retries: u32,
    ) -> Disposition {
        let reply = ferry_apicompat::convert::ErrorReply::parse(body);
        self.on_upstream_reply(lease, status, headers, &reply, same_account_retries)
    }

    /// [`Pool::on_upstream_error`] with the error body already read (the gateway parses an
    /// upstream error once).
    pub fn on_upstream_reply(
        &self,
        lease: &Lease,
        status: StatusCode,
        headers: &HeaderMap,
        reply: &ferry_apicompat::convert::ErrorReply,
        same_account_retries: u32,
    ) -> Disposition {
        let account = &lease.account;
        let now = Instant::now();
        self.record_usage(account, headers, now);
        let ctx = self.context(lease, same_account_retries, now);
        let disposition = crate::classify::classify_reply(&ctx, status, headers, reply);
        if status == StatusCode::UNAUTHORIZED
            && let Some(oauth) = &account.oauth
        {
            oauth.invalidate(lease.generation.load(Ordering::Acquire));
        }
        if status == StatusCode::FORBIDDEN
            && ctx.pool.is_none()
            && let Disposition::Failover {
                cooldown: Cooldown::For { .. } | Cooldown::Disabled,
                ..
            } = disposition
        {
            account.health().forbidden.push_back(now);
        }
        if status == StatusCode::TOO_MANY_REQUESTS && account.config.kind == AccountKind::Oauth {
            let mut storm = self.storm();
            storm.push_back(now);
            prune(&mut storm, now, STORM_WINDOW);
        }
        if status == StatusCode::UNAUTHORIZED {
            let mut health = account.health();
            health.unauthorized_streak = health.unauthorized_streak.saturating_add(1);
        }
        self.apply(lease, &disposition, Some(status));
        disposition
    }

    /// Applies a typed failure before any client output (a failed response, an `error`
    /// event) to the lease's account: [`crate::classify_failure`], then its cooldown.
    pub fn on_failure(
        &self,
        lease: &Lease,
        failure: &ferry_apicompat::convert::UpstreamFailure,
        same_account_retries: u32,
    ) -> Disposition {
        let ctx = self.context(lease, same_account_retries, Instant::now());
        let disposition = crate::classify::classify_failure(&ctx, failure);
        self.apply(lease, &disposition, None);
        disposition
    }

    /// Classifies a stream that failed before any client output (`response.failed` / `error`
    /// event; `error` is its JSON) and applies the outcome, as [`Self::on_upstream_error`].
    pub fn on_stream_failure(
        &self,
        lease: &Lease,
        error: &[u8],
        same_account_retries: u32,
    ) -> Disposition {
        let ctx = self.context(lease, same_account_retries, Instant::now());
        let disposition = classify_stream_failure(&ctx, error);
        self.apply(lease, &disposition, None);
        disposition
    }

    /// Records a successful response: stores the Codex usage snapshot of OAuth accounts and
    /// ends a run of 401s (the next one benches for the base back-off again).
    pub fn on_success(&self, lease: &Lease, headers: &HeaderMap) {
        lease.account.health().unauthorized_streak = 0;
        self.record_usage(&lease.account, headers, Instant::now());
    }

    fn context(&self, lease: &Lease, same_account_retries: u32, now: Instant) -> ClassifyContext {
        let account = &lease.account;
        let (recent_forbidden, unauthorized_streak) = {
            let mut health = account.health();
            prune(&mut health.forbidden, now, FORBIDDEN_WINDOW);
            (
                u32::try_from(health.forbidden.len()).unwrap_or(u32::MAX),
                health.unauthorized_streak,
            )
        };
        ClassifyContext {
            kind: account.config.kind,
            has_refresh_token: account
                .oauth
                .as_ref()
                .is_some_and(OAuthTokens::has_refresh_token),
            pool: account.config.pool_retry(),
            same_account_retries,
            recent_forbidden,
            now_unix: unix_now(),
            rate_limit_fallback: self.inner.opts.rate_limit_fallback,
            unauthorized_streak,
            unauthorized_backoff: self.inner.opts.unauthorized_backoff,
        }
    }

    /// Records a transport failure (no connection, no response headers) on `lease`'s
    /// account: [`crate::classify_transport_error`], applied as any other outcome (it asks
    /// for no cooldown; the account's last errors show it).
    pub fn on_transport_failure(&self, lease: &Lease, failure: TransportFailure) -> Disposition {
        let disposition = crate::classify::classify_transport_error(failure);
        self.apply(lease, &disposition, None);
        disposition
    }

    fn apply(&self, lease: &Lease, disposition: &Disposition, status: Option<StatusCode>) {
        let account = &lease.account;
        let status = status.map(|s| s.as_u16());
        account.note_error(AccountError::now(status, *disposition));
        let Disposition::Failover { cooldown, reason } = *disposition else {
            return;
        };
        match cooldown {
            Cooldown::None => {
                tracing::info!(account = %account.name(), ?status, reason = reason.as_str(), "failing over without account penalty");
            }
            Cooldown::For { duration, kind } => {
                let max = self.inner.opts.max_cooldown;
                let duration = if duration > max {
                    self.inner.capped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(account = %account.name(), ?status, reason = reason.as_str(), asked_secs = duration.as_secs(), cap_secs = max.as_secs(), "upstream asked for a cooldown longer than rate_limit.max_cooldown_secs; capped");
                    max
                } else {
                    duration
                };
                tracing::warn!(account = %account.name(), ?status, reason = reason.as_str(), cooldown_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX), "account cooling down");
                account.set_cooldown(Instant::now() + duration, kind, reason);
            }
            Cooldown::Disabled => {
                tracing::error!(account = %account.name(), ?status, reason = reason.as_str(), "account disabled until restart");
                account.disable(reason);
            }
        }
    }

    fn record_usage(&self, account: &Account, headers: &HeaderMap, now: Instant) {
        if account.config.kind != AccountKind::Oauth {
            return;
        }
        if let Some(usage) = CodexUsage::from_headers(headers) {
            account.health().usage = Some(UsageSnapshot {
                usage,
                observed_at: now,
            });
        }
    }

    fn storm(&self) -> MutexGuard<'_, VecDeque<Instant>> {
        self.inner
            .storm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// True while OAuth accounts are getting a 429 storm (≥ 20 within 10 s): the server should
    /// then allow only one account switch for a 429, so a burst of 429s does not send every
    /// request through every account.
    pub fn in_rate_limit_storm(&self) -> bool {
        let mut storm = self.storm();
        prune(&mut storm, Instant::now(), STORM_WINDOW);
        storm.len() >= STORM_THRESHOLD
    }
}

fn prune(events: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while events
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        events.pop_front();
    }
}
