//! The account pool: selection, concurrency slots, cooldowns, availability.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferry_session::{SlotToken, Store};
use http::{HeaderMap, StatusCode};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::classify::{
    ClassifyContext, Cooldown, CooldownKind, DEFAULT_UNAUTHORIZED_BACKOFF, Disposition,
    FORBIDDEN_WINDOW, FailoverReason, classify_stream_failure, classify_with, unix_now,
};
use crate::config::{AccountConfig, AccountKind, Secret, validate_accounts};
use crate::error::{AccountsError, Unavailable};
use crate::oauth::{OAuthOptions, OAuthTokens};
use crate::ratelimit::{CodexUsage, DEFAULT_RATE_LIMIT_FALLBACK};

/// How long a transient token-refresh failure keeps an OAuth account out of rotation.
pub const REFRESH_FAILURE_COOLDOWN: Duration = Duration::from_secs(30);
/// Window and threshold of the OAuth 429 storm detector (gateway.md §3c: 20 in 10 s).
pub const STORM_WINDOW: Duration = Duration::from_secs(10);
/// See [`STORM_WINDOW`].
pub const STORM_THRESHOLD: usize = 20;

/// Longest cooldown an account is given, whatever an upstream header or body asks for
/// (`rate_limit.max_cooldown_secs`, 2 h: the upper bound of the 429 fallback, gateway.md §6).
/// A longer reset is cut to this; the account is tried again then and cools down again if
/// the upstream still refuses it.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(7200);

/// Pool-wide options.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// How long [`Pool::acquire`] waits for a free concurrency slot before giving up (30 s).
    pub slot_wait: Duration,
    /// Cooldown after a 429 without a usable reset (5 s; clamped to 1–7200 s).
    pub rate_limit_fallback: Duration,
    /// Longest cooldown applied ([`DEFAULT_MAX_COOLDOWN`]); longer ones are capped and counted
    /// ([`Pool::cooldowns_capped`]).
    pub max_cooldown: Duration,
    /// First bench of an API-key account after a 401, doubled per 401 in a row (30 s).
    pub unauthorized_backoff: Duration,
    /// OAuth token refresh settings (HTTP client, state directory, skew).
    pub oauth: OAuthOptions,
    /// Concurrency slots shared with other replicas through the session store (`None`: local
    /// limits only).
    pub shared_slots: Option<SharedSlots>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            slot_wait: Duration::from_secs(30),
            rate_limit_fallback: DEFAULT_RATE_LIMIT_FALLBACK,
            max_cooldown: DEFAULT_MAX_COOLDOWN,
            unauthorized_backoff: DEFAULT_UNAUTHORIZED_BACKOFF,
            oauth: OAuthOptions::default(),
            shared_slots: None,
        }
    }
}

/// Per-account concurrency limits shared by every replica using the same session store
/// (`[session] store = "redis"`).
///
/// A lease holds a local slot *and* a store slot `accounts:slot:{name}` with the account's
/// `concurrency` as the limit. A store slot expires after `ttl` even if its holder crashed.
/// The lease keeps the store slot's [`SlotToken`] and gives back exactly that slot when it is
/// dropped, so a lease that outlived `ttl` cannot free a slot another request took since.
/// When the store fails, the pool fails open: local limits still apply, a warning is logged.
#[derive(Clone, Debug)]
pub struct SharedSlots {
    /// The session store.
    pub store: Arc<dyn Store>,
    /// How long a slot is held at most (`gateway.concurrency_slot_ttl_minutes`, default 30 min).
    pub ttl: Duration,
    /// How often a waiter re-checks the store (other replicas' releases are not signalled).
    pub poll_interval: Duration,
}

impl SharedSlots {
    /// Shared slots in `store` with the default TTL (30 minutes) and poll interval (250 ms).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            ttl: DEFAULT_SLOT_TTL,
            poll_interval: Duration::from_millis(250),
        }
    }

    fn key(account: &str) -> String {
        format!("accounts:slot:{account}")
    }
}

/// Default lifetime of a shared concurrency slot (gateway.md §6: 30 minutes).
pub const DEFAULT_SLOT_TTL: Duration = Duration::from_secs(30 * 60);

/// Which account to pick for one attempt.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    /// The session's sticky account: used first while it is healthy and has a free slot.
    pub preferred: Option<&'a str>,
    /// Accounts already tried (failed) for this request.
    pub exclude: &'a [String],
}

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

/// The last Codex usage headers seen on an account.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsageSnapshot {
    /// The parsed windows.
    pub usage: CodexUsage,
    /// When they were received (resets are relative to this).
    pub observed_at: Instant,
}

#[derive(Debug, Default)]
struct Health {
    cooldown: Option<(Instant, CooldownKind, FailoverReason)>,
    disabled: Option<FailoverReason>,
    forbidden: VecDeque<Instant>,
    usage: Option<UsageSnapshot>,
    /// 401s in a row (reset by a success): the API-key back-off exponent.
    unauthorized_streak: u32,
}

impl Health {
    fn state(&self, now: Instant) -> AccountState {
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
    config: AccountConfig,
    index: usize,
    in_flight: AtomicU32,
    health: Mutex<Health>,
    oauth: Option<OAuthTokens>,
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

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_reserve(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.config.concurrency).then_some(n + 1)
            })
            .is_ok()
    }

    fn set_cooldown(&self, until: Instant, kind: CooldownKind, reason: FailoverReason) {
        let mut health = self.health();
        let longer = health
            .cooldown
            .is_none_or(|(current, _, _)| until > current);
        if longer {
            health.cooldown = Some((until, kind, reason));
        }
    }

    fn disable(&self, reason: FailoverReason) {
        self.health().disabled = Some(reason);
    }
}

#[derive(Debug)]
struct Inner {
    accounts: Vec<Arc<Account>>,
    released: Notify,
    opts: PoolOptions,
    storm: Mutex<VecDeque<Instant>>,
    /// Cooldowns cut to [`PoolOptions::max_cooldown`].
    capped: AtomicU64,
}

/// The pool of upstream accounts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// A reserved concurrency slot on one account, released on drop.
#[derive(Debug)]
pub struct Lease {
    pool: Arc<Inner>,
    account: Arc<Account>,
    generation: AtomicU64,
    /// The store slot this lease holds, if shared slots are on and the store answered.
    shared: Option<SlotToken>,
}

/// The credential for one upstream request.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The bearer token (API key or OAuth access token).
    pub token: Secret,
    /// OAuth: the ChatGPT account id for the `chatgpt-account-id` header.
    pub chatgpt_account_id: Option<String>,
    /// OAuth: the current refresh token. It is never sent upstream with a request; it is
    /// here so the caller can redact it (it rotates on refresh) from upstream text.
    pub refresh_token: Option<Secret>,
}

enum Pick {
    /// Healthy accounts in preference order.
    Candidates(Vec<Arc<Account>>, Option<Instant>),
    Unavailable(Unavailable, Option<Duration>),
}

impl Pool {
    /// Builds the pool. Fails on the first invalid account; [`validate_accounts`] lists them all.
    pub fn new(accounts: Vec<AccountConfig>, opts: PoolOptions) -> Result<Self, AccountsError> {
        if let Some(problem) = validate_accounts(&accounts).into_iter().next() {
            return Err(problem);
        }
        let accounts = accounts
            .into_iter()
            .enumerate()
            .map(|(index, config)| {
                let oauth = (config.kind == AccountKind::Oauth)
                    .then(|| OAuthTokens::new(&config, &opts.oauth));
                Arc::new(Account {
                    config,
                    index,
                    in_flight: AtomicU32::new(0),
                    health: Mutex::new(Health::default()),
                    oauth,
                })
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                accounts,
                released: Notify::new(),
                opts,
                storm: Mutex::new(VecDeque::new()),
                capped: AtomicU64::new(0),
            }),
        })
    }

    /// The accounts in config order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.inner.accounts.iter().map(|a| a.as_ref())
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts().find(|a| a.name() == name)
    }

    /// Reserves a slot on the best account: the preferred (sticky) account if it is healthy and
    /// has a free slot; otherwise the healthy, non-excluded accounts by priority (lower first),
    /// then by load (in-flight / concurrency), then config order. When every healthy account is
    /// busy, waits up to [`PoolOptions::slot_wait`] for a slot.
    ///
    /// Errors: [`AccountsError::NoAccounts`]; [`AccountsError::AllUnavailable`] with
    /// `RateLimited` when every remaining account is cooling down after a 429, `Overloaded` when
    /// some cool down for another reason or all are busy past the wait, `Exhausted` when all are
    /// disabled or excluded; `retry_after` is the earliest cooldown end.
    pub async fn acquire(&self, selection: &Selection<'_>) -> Result<Lease, AccountsError> {
        if self.inner.accounts.is_empty() {
            return Err(AccountsError::NoAccounts);
        }
        let deadline = Instant::now() + self.inner.opts.slot_wait;
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (candidates, next_recovery) = match self.pick(selection) {
                Pick::Candidates(candidates, next_recovery) => (candidates, next_recovery),
                Pick::Unavailable(kind, retry_after) => {
                    return Err(AccountsError::AllUnavailable { kind, retry_after });
                }
            };
            for account in candidates {
                if !account.try_reserve() {
                    continue;
                }
                let mut shared = None;
                if let Some(slots) = &self.inner.opts.shared_slots {
                    let key = SharedSlots::key(account.name());
                    match slots
                        .store
                        .try_acquire_slot(&key, account.config.concurrency, slots.ttl)
                        .await
                    {
                        Ok(Some(token)) => shared = Some(token),
                        Ok(None) => {
                            account.in_flight.fetch_sub(1, Ordering::AcqRel);
                            continue;
                        }
                        Err(err) => {
                            tracing::warn!(account = %account.name(), error = %err, "shared concurrency slot unavailable; using the local limit only");
                        }
                    }
                }
                return Ok(Lease {
                    pool: Arc::clone(&self.inner),
                    account,
                    generation: AtomicU64::new(0),
                    shared,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AccountsError::AllUnavailable {
                    kind: Unavailable::Overloaded,
                    retry_after: Some(Duration::from_secs(1)),
                });
            }
            let mut wake = next_recovery.map_or(deadline, |t| t.min(deadline));
            if let Some(slots) = &self.inner.opts.shared_slots {
                wake = wake.min(now + slots.poll_interval);
            }
            tokio::select! {
                () = &mut released => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn pick(&self, selection: &Selection<'_>) -> Pick {
        let now = Instant::now();
        let mut healthy = Vec::new();
        let mut earliest: Option<Instant> = None;
        let mut cooling = 0usize;
        let mut cooling_rate_limited = 0usize;
        for account in &self.inner.accounts {
            if selection.exclude.iter().any(|e| e == account.name()) {
                continue;
            }
            match account.health().state(now) {
                AccountState::Ready => healthy.push(account),
                AccountState::CoolingDown {
                    kind, remaining, ..
                } => {
                    cooling += 1;
                    if kind == CooldownKind::RateLimited {
                        cooling_rate_limited += 1;
                    }
                    let until = now + remaining;
                    earliest = Some(earliest.map_or(until, |e| e.min(until)));
                }
                AccountState::Disabled { .. } => {}
            }
        }
        if healthy.is_empty() {
            let kind = if cooling == 0 {
                Unavailable::Exhausted
            } else if cooling_rate_limited == cooling {
                Unavailable::RateLimited
            } else {
                Unavailable::Overloaded
            };
            return Pick::Unavailable(kind, earliest.map(|e| e - now));
        }
        healthy.sort_by(|a, b| {
            let load = |x: &Account| {
                (
                    u64::from(x.in_flight.load(Ordering::Acquire)),
                    u64::from(x.config.concurrency.max(1)),
                )
            };
            let ((la, ca), (lb, cb)) = (load(a), load(b));
            a.config
                .priority
                .cmp(&b.config.priority)
                .then((la * cb).cmp(&(lb * ca)))
                .then(la.cmp(&lb))
                .then(a.index.cmp(&b.index))
        });
        if let Some(preferred) = selection.preferred
            && let Some(pos) = healthy.iter().position(|a| a.name() == preferred)
        {
            let sticky = healthy.remove(pos);
            healthy.insert(0, sticky);
        }
        Pick::Candidates(healthy.into_iter().cloned().collect(), earliest)
    }

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
        let account = &lease.account;
        let now = Instant::now();
        self.record_usage(account, headers, now);
        let ctx = self.context(lease, same_account_retries, now);
        let disposition = classify_with(&ctx, status, headers, body);
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

    fn apply(&self, lease: &Lease, disposition: &Disposition, status: Option<StatusCode>) {
        let account = &lease.account;
        let Disposition::Failover { cooldown, reason } = *disposition else {
            return;
        };
        let status = status.map(|s| s.as_u16());
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
    /// then allow only one account switch for a 429 (gateway.md §3c).
    pub fn in_rate_limit_storm(&self) -> bool {
        let mut storm = self.storm();
        prune(&mut storm, Instant::now(), STORM_WINDOW);
        storm.len() >= STORM_THRESHOLD
    }

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

    /// How many cooldowns were cut to [`PoolOptions::max_cooldown`] since start.
    pub fn cooldowns_capped(&self) -> u64 {
        self.inner.capped.load(Ordering::Relaxed)
    }

    /// The longest cooldown applied ([`PoolOptions::max_cooldown`]).
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

fn prune(events: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while events
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        events.pop_front();
    }
}

impl Lease {
    /// The leased account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The leased account's config.
    pub fn config(&self) -> &AccountConfig {
        &self.account.config
    }

    /// The leased account's name.
    pub fn name(&self) -> &str {
        &self.account.config.name
    }

    /// The credential for the next upstream request on this account. OAuth accounts refresh
    /// their access token when it is about to expire or was rejected (single flight).
    ///
    /// A failed refresh disables the account (invalid refresh token) or cools it down for
    /// [`REFRESH_FAILURE_COOLDOWN`]; the error's [`AccountsError::is_account_failure`] is then
    /// true and the server fails over.
    pub async fn credential(&self) -> Result<Credential, AccountsError> {
        let account = &self.account;
        match account.config.kind {
            AccountKind::ApiKey => account
                .config
                .api_key
                .clone()
                .filter(|k| !k.is_blank())
                .map(|token| Credential {
                    token,
                    chatgpt_account_id: None,
                    refresh_token: None,
                })
                .ok_or_else(|| AccountsError::MissingCredential {
                    account: account.config.name.clone(),
                }),
            AccountKind::Simulated => Ok(Credential {
                token: Secret::new("simulated"),
                chatgpt_account_id: None,
                refresh_token: None,
            }),
            AccountKind::Oauth => {
                let Some(oauth) = &account.oauth else {
                    return Err(AccountsError::MissingCredential {
                        account: account.config.name.clone(),
                    });
                };
                match oauth.access_token().await {
                    Ok(token) => {
                        self.generation.store(token.generation, Ordering::Release);
                        Ok(Credential {
                            token: token.token,
                            chatgpt_account_id: token.chatgpt_account_id,
                            refresh_token: token.refresh_token,
                        })
                    }
                    Err(err) => {
                        match &err {
                            AccountsError::TokenRefresh {
                                permanent: true, ..
                            }
                            | AccountsError::MissingCredential { .. } => {
                                account.disable(FailoverReason::TokenRefresh);
                            }
                            _ => account.set_cooldown(
                                Instant::now() + REFRESH_FAILURE_COOLDOWN,
                                CooldownKind::Error,
                                FailoverReason::TokenRefresh,
                            ),
                        }
                        Err(err)
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.account.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(token) = self.shared.take() {
            self.release_shared(token);
        }
        self.pool.released.notify_waiters();
    }
}

impl Lease {
    fn release_shared(&self, token: SlotToken) {
        let Some(slots) = self.pool.opts.shared_slots.clone() else {
            return;
        };
        let key = SharedSlots::key(self.account.name());
        let account = self.account.name().to_owned();
        match tokio::runtime::Handle::try_current() {
            // Outlives the request on purpose: Drop cannot await, and the store slot must be
            // given back even though the request that held it is gone. It is one short store
            // call; if it fails, the slot's TTL frees it.
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(err) = slots.store.release_slot(&key, &token).await {
                        tracing::warn!(account = %account, error = %err, "cannot release shared concurrency slot; it expires with its ttl");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(account = %account, "no runtime to release the shared concurrency slot; it expires with its ttl");
            }
        }
    }
}

impl AccountsError {
    /// True when the error is about the leased account (its credential could not be obtained):
    /// exclude it and fail over ([`FailoverReason::TokenRefresh`]).
    pub fn is_account_failure(&self) -> bool {
        matches!(
            self,
            Self::TokenRefresh { .. } | Self::MissingCredential { .. }
        )
    }
}
