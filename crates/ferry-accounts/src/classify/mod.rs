//! Failover classification of an upstream error response: retry the same account, fail over
//! (with or without a cooldown) or answer the client. What an upstream error code means for
//! the pool is the code table in docs/conversion.md § Failures.
//!
//! [`classify_with`] is a pure function of the response and a small [`ClassifyContext`]
//! describing the account; [`crate::Pool::on_upstream_error`] builds the context, calls it and
//! applies the resulting cooldown. The retry *mechanism* (sleep, switch, budget) is the server's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use ferry_apicompat::convert::{CodeMeaning, ErrorReply, UpstreamFailure};

use crate::config::{AccountKind, PoolRetry};
use crate::ratelimit;

mod info;
use self::info::ErrorInfo;

/// Delay before a pool-mode same-account retry.
pub const SAME_ACCOUNT_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Cooldown after a structured 403 (below the disabling threshold) and after an OAuth 401.
pub const AUTH_COOLDOWN: Duration = Duration::from_secs(10 * 60);
/// Number of structured 403s within [`FORBIDDEN_WINDOW`] that disables an account.
pub const FORBIDDEN_THRESHOLD: u32 = 3;
/// Window over which 403s are counted.
pub const FORBIDDEN_WINDOW: Duration = Duration::from_secs(180 * 60);
/// Cooldown after a 529 without `retry-after`, and the pool-mode soft cooldown after a 5xx.
pub const OVERLOAD_COOLDOWN: Duration = Duration::from_secs(30);
/// Pool-mode soft cooldown for other failovers.
pub const POOL_SOFT_COOLDOWN: Duration = Duration::from_secs(10);
/// First bench of an API-key account after a 401 (`rate_limit.unauthorized_backoff_secs`);
/// it doubles with each 401 in a row, up to [`AUTH_COOLDOWN`].
pub const DEFAULT_UNAUTHORIZED_BACKOFF: Duration = Duration::from_secs(30);

/// What [`classify_with`] needs to know about the account and the request so far.
#[derive(Clone, Debug)]
pub struct ClassifyContext {
    /// The account's kind.
    pub kind: AccountKind,
    /// Whether an OAuth account has a refresh token.
    pub has_refresh_token: bool,
    /// Pool-mode settings (`None` when pool mode is off).
    pub pool: Option<PoolRetry>,
    /// Same-account retries already made for this request on this account.
    pub same_account_retries: u32,
    /// Structured 403s this account got within the last [`FORBIDDEN_WINDOW`] (not counting this one).
    pub recent_forbidden: u32,
    /// Current wall-clock time, Unix seconds (for `resets_at` and HTTP-date `retry-after`).
    pub now_unix: u64,
    /// 429 cooldown when the response carries no reset (clamped to 1–7200 s).
    pub rate_limit_fallback: Duration,
    /// 401s this account got in a row before this one (a success resets it).
    pub unauthorized_streak: u32,
    /// First bench after a 401 on an API-key account; doubles per 401 in a row.
    pub unauthorized_backoff: Duration,
}

impl ClassifyContext {
    /// The bench of an API-key account after its `unauthorized_streak + 1`-th 401 in a row:
    /// `unauthorized_backoff × 2^streak`, at most [`AUTH_COOLDOWN`] (and at least the base).
    pub fn unauthorized_bench(&self) -> Duration {
        let factor = 1u32 << self.unauthorized_streak.min(16);
        self.unauthorized_backoff
            .saturating_mul(factor)
            .min(AUTH_COOLDOWN.max(self.unauthorized_backoff))
    }
}

impl Default for ClassifyContext {
    /// A plain API-key account, first attempt, current time.
    fn default() -> Self {
        Self {
            kind: AccountKind::ApiKey,
            has_refresh_token: false,
            pool: None,
            same_account_retries: 0,
            recent_forbidden: 0,
            now_unix: unix_now(),
            rate_limit_fallback: ratelimit::DEFAULT_RATE_LIMIT_FALLBACK,
            unauthorized_streak: 0,
            unauthorized_backoff: DEFAULT_UNAUTHORIZED_BACKOFF,
        }
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What kind of unavailability a cooldown is (decides 429 vs 529 when every account is down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CooldownKind {
    /// Rate limited or out of quota (429).
    RateLimited,
    /// Overloaded (529, overload texts, pool-mode 5xx).
    Overloaded,
    /// Any other temporary problem (403/401 cooldowns, token refresh failures).
    Error,
}

/// What happens to the account after a failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cooldown {
    /// No penalty: the account is only skipped for the rest of this request.
    None,
    /// Unschedulable for `duration`.
    For {
        /// How long.
        duration: Duration,
        /// Why (for the all-unavailable answer).
        kind: CooldownKind,
    },
    /// Permanently unusable until restart (revoked token, payment, repeated 403).
    Disabled,
}

/// Why a request failed over (the `reason` label of `ferry_failovers_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailoverReason {
    /// 429.
    RateLimited,
    /// 529 or an overload message (`server_is_overloaded`, "servers are overloaded", …).
    Overloaded,
    /// 401.
    Unauthorized,
    /// 402.
    PaymentRequired,
    /// 403.
    Forbidden,
    /// 408.
    Timeout,
    /// 5xx other than 529.
    ServerError,
    /// Model not available on this account.
    ModelUnsupported,
    /// The account is disabled, deactivated or needs verification.
    AccountState,
    /// The request body is too large for this upstream.
    RequestTooLarge,
    /// A transient processing error at 400 ("an error occurred while processing your request").
    Transient,
    /// Another failover status (405).
    Other,
    /// The connection failed or the upstream sent no response headers.
    Transport,
    /// The stream failed or ended before a terminal event, before any client output.
    Stream,
    /// Refreshing the OAuth token failed.
    TokenRefresh,
}

impl FailoverReason {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Unauthorized => "unauthorized",
            Self::PaymentRequired => "payment_required",
            Self::Forbidden => "forbidden",
            Self::Timeout => "timeout",
            Self::ServerError => "server_error",
            Self::ModelUnsupported => "model_unsupported",
            Self::AccountState => "account_state",
            Self::RequestTooLarge => "request_too_large",
            Self::Transient => "transient",
            Self::Other => "other",
            Self::Transport => "transport",
            Self::Stream => "stream",
            Self::TokenRefresh => "token_refresh",
        }
    }
}

/// The decision for one upstream error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Retry on the same account after `after` (pool mode; or once after an OAuth 401, with a
    /// refreshed token).
    RetrySameAccount {
        /// Wait this long first.
        after: Duration,
        /// Why (for metrics).
        reason: FailoverReason,
    },
    /// Try another account; `cooldown` is applied to this one.
    Failover {
        /// The penalty for this account.
        cooldown: Cooldown,
        /// Why (for metrics).
        reason: FailoverReason,
    },
    /// Answer the client with this error: no failover, no account penalty.
    Fatal,
}

impl Disposition {
    /// The metrics reason, when this is not [`Disposition::Fatal`].
    pub fn reason(&self) -> Option<FailoverReason> {
        match self {
            Self::RetrySameAccount { reason, .. } | Self::Failover { reason, .. } => Some(*reason),
            Self::Fatal => None,
        }
    }
}

/// Whether an upstream error rejects replayed encrypted reasoning (OpenAI: HTTP 400,
/// `invalid_request_error`, code `invalid_encrypted_content`, "The encrypted content … could
/// not be verified"): reasoning signed under another account or key. The request's own
/// fault ([`classify_with`] never fails over on it); the gateway retries once without the
/// reasoning items.
pub fn is_invalid_encrypted_content(status: u16, body: &[u8]) -> bool {
    is_rejected_reasoning_reply(status, &ErrorReply::parse(body))
}

/// [`is_invalid_encrypted_content`] on a body already read.
pub fn is_rejected_reasoning_reply(status: u16, reply: &ErrorReply) -> bool {
    if status != 400 {
        return false;
    }
    let info = ErrorInfo::of_reply(reply);
    info.has_meaning(CodeMeaning::RejectedReasoning)
        || ferry_apicompat::convert::is_rejected_reasoning(None, &info.text)
}

/// Classifies an error response for a plain API-key account on its first attempt, at the
/// current time. See [`classify_with`] for the rules.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Disposition {
    classify_with(&ClassifyContext::default(), status, headers, body)
}

/// Classifies an upstream error response.
///
/// Never a failover (request-scoped, [`Disposition::Fatal`]): policy refusals (cyber, bio, data residency),
/// continuation-state errors (`previous_response_not_found`, `invalid_encrypted_content`),
/// context-window errors, and any other 4xx not listed below.
///
/// Failover: 401, 402, 403, 405, 408, 429, 529, every 5xx, an account-limit code at any
/// other status (treated as a 429), an overload or server-error code at any status,
/// model-not-supported and account-state messages,
/// request-too-large, and transient processing errors (overload codes, "servers are
/// overloaded" texts, and at 400 only "an error occurred while processing your request" /
/// "selected model is at capacity"). What a code means comes from the one code table,
/// [`ferry_apicompat::convert::UPSTREAM_ERROR_CODES`].
///
/// Cooldowns (not in pool mode): 429 → until the reset ([`ratelimit::rate_limit_cooldown`]);
/// 529 → `retry-after` or 30 s; 401 on an API-key account → benched with back-off
/// ([`ClassifyContext::unauthorized_bench`]: a 401 can be transient, and a rotated key must bring
/// the account back), disabled on an OAuth account without a refresh token; an OAuth account
/// with one gets one same-account retry (the pool refreshes the token first), then a
/// revoked/invalidated token disables it and anything else cools it down for 10 minutes; 402 → disabled; 403 with an HTML body → no penalty,
/// otherwise the 3rd within 180 minutes disables and earlier ones cool down 10 minutes;
/// "organization has been disabled" / "identity verification is required" → disabled;
/// everything else → no penalty (skipped for this request only).
///
/// Pool mode: no account state is written; a status in the pool retry list or a transient error
/// retries the same account after 500 ms up to the retry count; then a soft cooldown applies
/// (401/403 → 10 min, 5xx → 30 s, 429 → the reset, others → 10 s).
pub fn classify_with(
    ctx: &ClassifyContext,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Disposition {
    classify_reply(ctx, status, headers, &ErrorReply::parse(body))
}

/// [`classify_with`] on an error body already read ([`ErrorReply`]): the gateway parses an
/// upstream error once and every rule reads that.
pub fn classify_reply(
    ctx: &ClassifyContext,
    status: StatusCode,
    headers: &HeaderMap,
    reply: &ErrorReply,
) -> Disposition {
    classify_info(
        ctx,
        status,
        headers,
        &ErrorInfo::of_reply(reply),
        reply.json(),
    )
}

/// [`classify_with`] on an error already read: `body` (its JSON) only feeds the rate-limit
/// reset.
fn classify_info(
    ctx: &ClassifyContext,
    status: StatusCode,
    headers: &HeaderMap,
    info: &ErrorInfo,
    body: Option<&Value>,
) -> Disposition {
    let code = status.as_u16();
    if code < 400 {
        return Disposition::Fatal;
    }
    if info.is_cyber_policy()
        || info.is_continuation_state_error()
        || info.is_context_window_error()
    {
        return Disposition::Fatal;
    }
    let transient = info.is_transient_processing_error(code);
    let reason = match code {
        429 => FailoverReason::RateLimited,
        529 => FailoverReason::Overloaded,
        401 => FailoverReason::Unauthorized,
        402 => FailoverReason::PaymentRequired,
        403 => FailoverReason::Forbidden,
        405 => FailoverReason::Other,
        408 => FailoverReason::Timeout,
        // A limit code is a limit whatever status it came with (relays send 400 or 5xx).
        _ if info.has_meaning(CodeMeaning::AccountLimit) => FailoverReason::RateLimited,
        _ if info.is_account_state_error() => FailoverReason::AccountState,
        _ if info.is_model_unsupported() => FailoverReason::ModelUnsupported,
        _ if info.is_request_too_large() || code == 413 => FailoverReason::RequestTooLarge,
        _ if transient && info.is_overload() => FailoverReason::Overloaded,
        _ if info.has_meaning(CodeMeaning::ServerError) => FailoverReason::ServerError,
        500..=599 => FailoverReason::ServerError,
        _ if transient => FailoverReason::Transient,
        _ => return Disposition::Fatal,
    };

    if let Some(pool) = &ctx.pool {
        let retryable = pool.status_codes.contains(&code) || transient;
        if retryable && ctx.same_account_retries < pool.count {
            return Disposition::RetrySameAccount {
                after: SAME_ACCOUNT_RETRY_DELAY,
                reason,
            };
        }
        let cooldown = match code {
            401 | 403 => temporary(AUTH_COOLDOWN, CooldownKind::Error),
            _ if reason == FailoverReason::RateLimited => rate_limited(ctx, headers, body),
            500..=599 => temporary(OVERLOAD_COOLDOWN, CooldownKind::Overloaded),
            _ => temporary(POOL_SOFT_COOLDOWN, CooldownKind::Error),
        };
        return Disposition::Failover { cooldown, reason };
    }

    let cooldown = match code {
        _ if reason == FailoverReason::RateLimited => rate_limited(ctx, headers, body),
        529 => temporary(
            ratelimit::retry_after(headers, ctx.now_unix)
                .filter(|d| !d.is_zero())
                .unwrap_or(OVERLOAD_COOLDOWN),
            CooldownKind::Overloaded,
        ),
        401 => match ctx.kind {
            AccountKind::Oauth if ctx.has_refresh_token => {
                if ctx.same_account_retries == 0 {
                    return Disposition::RetrySameAccount {
                        after: Duration::ZERO,
                        reason,
                    };
                }
                if info.has_code(&["token_revoked", "token_invalidated"]) {
                    Cooldown::Disabled
                } else {
                    temporary(AUTH_COOLDOWN, CooldownKind::Error)
                }
            }
            AccountKind::Oauth => Cooldown::Disabled,
            AccountKind::ApiKey => temporary(ctx.unauthorized_bench(), CooldownKind::Error),
        },
        402 => Cooldown::Disabled,
        403 if info.is_html(headers) => Cooldown::None,
        403 if ctx.recent_forbidden + 1 >= FORBIDDEN_THRESHOLD => Cooldown::Disabled,
        403 => temporary(AUTH_COOLDOWN, CooldownKind::Error),
        _ if info.is_account_state_error() => Cooldown::Disabled,
        _ => Cooldown::None,
    };
    Disposition::Failover { cooldown, reason }
}

/// Classifies a stream that failed (`response.failed` / `error` event) before any client output.
///
/// `error` is the event's error object (`{"code":…,"message":…}`) or the whole event JSON. The
/// code decides: rate-limit and quota codes act like a 429, overload codes like a 503 with an
/// overload message (failover without penalty), `server_error`-like codes like a 500;
/// request-scoped errors and anything else are fatal.
pub fn classify_stream_failure(ctx: &ClassifyContext, error: &[u8]) -> Disposition {
    let reply = ErrorReply::parse(error);
    classify_failed_stream(ctx, &ErrorInfo::of_reply(&reply), reply.json())
}

/// Classifies a typed failure before any client output (a failed response, an `error`
/// event): the rules of [`classify_stream_failure`], read from the failure's code and
/// message without a JSON round trip.
pub fn classify_failure(ctx: &ClassifyContext, failure: &UpstreamFailure) -> Disposition {
    classify_failed_stream(ctx, &ErrorInfo::of_failure(failure), None)
}

fn classify_failed_stream(
    ctx: &ClassifyContext,
    info: &ErrorInfo,
    body: Option<&Value>,
) -> Disposition {
    let status = if info.has_meaning(CodeMeaning::AccountLimit) {
        StatusCode::TOO_MANY_REQUESTS
    } else if info.is_overload() {
        StatusCode::SERVICE_UNAVAILABLE
    } else if info.has_meaning(CodeMeaning::ServerError) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        return Disposition::Fatal;
    };
    classify_info(ctx, status, &HeaderMap::new(), info, body)
}

/// How an upstream request failed before any response headers arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// No connection or no exchange: refused, reset, DNS, TLS, or a base or proxy URL the
    /// client cannot use.
    Connect,
    /// Connected and sent, but no response headers within the header timeout.
    HeaderTimeout,
}

/// The failover for a request that got no response headers: the next account, with no
/// penalty for this one. Neither failure says the account is bad: a refused or reset
/// connection is as often the upstream restarting or a proxy dropping an idle
/// connection, and a header timeout may be this one request's prompt. A cooldown would
/// make a one-account gateway refuse every request for its duration after one such
/// failure; a really unreachable account fails each request quickly (connect timeout)
/// and the next account serves it.
pub fn classify_transport_error(failure: TransportFailure) -> Disposition {
    match failure {
        TransportFailure::Connect | TransportFailure::HeaderTimeout => Disposition::Failover {
            cooldown: Cooldown::None,
            reason: FailoverReason::Transport,
        },
    }
}

fn temporary(duration: Duration, kind: CooldownKind) -> Cooldown {
    Cooldown::For { duration, kind }
}

fn rate_limited(ctx: &ClassifyContext, headers: &HeaderMap, body: Option<&Value>) -> Cooldown {
    temporary(
        ratelimit::rate_limit_cooldown_json(headers, body, ctx.now_unix, ctx.rate_limit_fallback),
        CooldownKind::RateLimited,
    )
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    /// Policy refusals are the request's own fault at any status: no failover, no retry.
    #[test]
    fn policy_refusals_never_fail_over() {
        for code in ["cyber_policy", "bio_policy", "data_residency_mismatch"] {
            for status in [400u16, 403, 429] {
                let body = format!(r#"{{"error":{{"code":"{code}","message":"refused"}}}}"#);
                let status = StatusCode::from_u16(status).unwrap();
                let d = classify(status, &HeaderMap::new(), body.as_bytes());
                assert!(matches!(d, Disposition::Fatal), "{code} at {status}: {d:?}");
            }
        }
    }
}
