//! The upstream account pool of ferry: which account serves a request, what to do when it
//! fails, and how a request is shaped for it.
//!
//! This crate decides and remembers; it does not proxy. It never sends a Responses request
//! (the only network traffic it makes is OAuth token refreshes), never sleeps between retries
//! and never maps errors to HTTP statuses: the server drives the retry loop and answers the
//! client. Its decisions are pure functions where possible ([`classify_with`],
//! [`rate_limit_cooldown`], [`apply_codex_transform`], [`build_upstream_headers`],
//! [`AccountConfig::route_model`]), so they are table-tested without a network; time is
//! `tokio::time::Instant` so cooldown tests run under `tokio::time::pause()`.
//!
//! # Brief overview
//!
//! - [`AccountConfig`] — one `[[accounts]]` entry (strict serde), with [`AccountConfig::route_model`]
//!   for `model_mapping`/`default_model` and Codex model normalisation.
//! - [`Pool`] — accounts by priority and load with a sticky preference, concurrency [`Lease`]s,
//!   cooldowns, [`Pool::on_upstream_error`] (classify + apply), `/ready` state and Codex usage.
//! - [`classify_with`] → [`Disposition`] — retry the same account, fail over with a
//!   [`Cooldown`], or answer the client (fatal).
//! - [`OAuthTokens`] — ChatGPT/Codex access tokens refreshed before expiry and after a 401,
//!   single flight, persisted to a state file.
//! - [`Target`] and [`build_upstream_headers`] — the request shape per upstream kind (the
//!   Codex transform for OAuth) and the headers.
//!
//! # Pipeline (what the server calls, in order)
//!
//! 1. `pool.acquire(&Selection { preferred, exclude })` → [`Lease`] (or 429/529 material).
//! 2. `lease.config().route_model(model)` → [`ModelRoute`] (billing and upstream model).
//! 3. [`headers_have_beta_token`] with [`FAST_MODE_BETA`] → `service_tier = "priority"`.
//! 4. [`Target::for_account`], then [`Target::shape`] on the typed request (the Codex
//!    transform for OAuth, then [`apply_service_tier_policy`]) and [`Target::encode`].
//! 5. `lease.credential().await` → [`Credential`]; [`build_upstream_headers`]; [`responses_url`].
//! 6. On an error status: [`Pool::on_upstream_error`] → [`Disposition`]; on success
//!    [`Pool::on_success`]; before the first client byte, a failed stream:
//!    [`Pool::on_stream_failure`].
//!
//! # Example
//!
//! ```
//! use ferry_accounts::{classify, AccountConfig, Cooldown, CooldownKind, Disposition, FailoverReason, Secret};
//! use http::{HeaderMap, StatusCode};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", "20".parse().unwrap());
//! let d = classify(StatusCode::TOO_MANY_REQUESTS, &headers, br#"{"error":{"message":"slow down"}}"#);
//! assert_eq!(d, Disposition::Failover {
//!     cooldown: Cooldown::For { duration: std::time::Duration::from_secs(20), kind: CooldownKind::RateLimited },
//!     reason: FailoverReason::RateLimited,
//! });
//!
//! let account: AccountConfig = serde_json::from_str(r#"{
//!     "name": "primary", "kind": "api_key", "api_key": "sk-test",
//!     "model_mapping": { "claude-haiku-*": "gpt-5.1-codex-mini" }
//! }"#).unwrap();
//! assert_eq!(account.route_model("claude-haiku-4-5").upstream, "gpt-5.1-codex-mini");
//! assert_eq!(format!("{:?}", account.api_key), "Some(***)");
//! ```

#![forbid(unsafe_code)]

mod catalog;
mod classify;
mod codex;
mod config;
mod error;
mod login;
mod model;
mod oauth;
mod pool;
mod ratelimit;
mod route;
mod tier;

pub use crate::{
    catalog::{
        BUILTIN, Backend, CatalogRow, Effort, ModelOverride, ModelOverrides, ModelSpec,
        builtin_row, builtin_spec,
    },
    classify::{
        AUTH_COOLDOWN, ClassifyContext, Cooldown, CooldownKind, DEFAULT_UNAUTHORIZED_BACKOFF,
        Disposition, FORBIDDEN_THRESHOLD, FORBIDDEN_WINDOW, FailoverReason, OVERLOAD_COOLDOWN,
        POOL_SOFT_COOLDOWN, SAME_ACCOUNT_RETRY_DELAY, TransportFailure, classify, classify_failure,
        classify_reply, classify_stream_failure, classify_transport_error, classify_with,
        is_invalid_encrypted_content, is_rejected_reasoning_reply,
    },
    codex::{
        CODEX_BASE_URL, CODEX_CLI_VERSION, CODEX_MIN_CLIENT_VERSION, CODEX_ORIGINATOR,
        CodexTransformOptions, CodexTransformOutcome, OPENAI_BASE_URL, RESPONSES_LITE_HEADER,
        Shaped, Target, TargetOptions, TemplateFields, UpstreamHeaderInput, apply_codex_transform,
        apply_responses_lite, build_upstream_headers, render_instructions_template, responses_url,
    },
    config::{
        AccountConfig, AccountKind, DEFAULT_POOL_RETRY_COUNT, DEFAULT_POOL_RETRY_STATUSES,
        ExpiresAt, PoolRetry, Secret, ServiceTierPolicy, parse_rfc3339, validate_accounts,
    },
    error::{AccountsError, Unavailable},
    login::{
        CallbackServer, DEFAULT_CALLBACK_PORT, DEFAULT_ISSUER, DeviceCode, LOGIN_TIMEOUT,
        LoginEndpoints, LoginTokens, Pkce, authorize_url, exchange_code, new_state,
        parse_codex_auth_json, pkce_challenge, poll_device_code, request_device_code,
    },
    model::{
        DEFAULT_CODEX_MODEL, ModelMapping, ModelRoute, ReasoningSuffix,
        anthropic_effort_for_suffix, glob_match, normalize_codex_model, normalize_requested_model,
        split_reasoning_suffix, strip_client_suffixes, strip_sys_suffix,
    },
    oauth::{
        AccessToken, DEFAULT_CLIENT_ID, DEFAULT_REFRESH_SKEW, DEFAULT_TOKEN_URL, OAuthOptions,
        OAuthTokens, REFRESH_TIMEOUT, state_file, store_login,
    },
    pool::{
        Account, AccountError, AccountSnapshot, AccountState, AccountStatus, Credential,
        DEFAULT_MAX_COOLDOWN, DEFAULT_SLOT_TTL, LAST_ERRORS, Lease, Pool, PoolOptions,
        REFRESH_FAILURE_COOLDOWN, STORM_THRESHOLD, STORM_WINDOW, Selection, SharedSlots,
        UsageSnapshot,
    },
    ratelimit::{
        CodexUsage, CodexWindow, DEFAULT_RATE_LIMIT_FALLBACK, RATE_LIMIT_FALLBACK_BOUNDS,
        parse_go_duration, parse_http_date, rate_limit_cooldown, rate_limit_cooldown_json,
        ratelimit_reset, retry_after, usage_limit_reset, usage_limit_reset_json,
    },
    tier::{
        FAST_MODE_BETA, adapt_service_tier_for_codex, apply_service_tier_policy,
        codex_service_tier, has_beta_token, headers_have_beta_token, normalize_service_tier,
        resolve_service_tier,
    },
};
