//! What the admin API and the dashboard show, gathered once into plain values: the API
//! serialises them, the dashboard renders them. Nothing here holds a key.

use ferry_accounts::{AccountState, Cooldown, CooldownKind, Disposition};
use serde::Serialize;

use super::usage::{self, Hour};
use crate::cost::rfc3339;
use crate::state::AppState;

/// One account.
#[derive(Debug, Serialize)]
pub(crate) struct AccountView {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) priority: i32,
    pub(crate) concurrency: u32,
    pub(crate) in_flight: u32,
    pub(crate) available: bool,
    /// `ready`, `cooling_down` or `disabled`.
    pub(crate) state: &'static str,
    pub(crate) cooldown: Option<CooldownView>,
    /// Why the account is disabled until restart.
    pub(crate) disabled_reason: Option<&'static str>,
    pub(crate) codex_usage: Option<CodexView>,
    /// The last upstream errors, newest first.
    pub(crate) last_errors: Vec<ErrorView>,
}

/// A running cooldown.
#[derive(Debug, Serialize)]
pub(crate) struct CooldownView {
    pub(crate) kind: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) remaining_secs: u64,
    pub(crate) until_unix: u64,
    pub(crate) until: String,
}

/// The last Codex usage windows of an OAuth account.
#[derive(Debug, Serialize)]
pub(crate) struct CodexView {
    pub(crate) five_hour: Option<WindowView>,
    pub(crate) seven_day: Option<WindowView>,
    pub(crate) observed_secs_ago: u64,
}

/// One Codex usage window.
#[derive(Debug, Serialize)]
pub(crate) struct WindowView {
    pub(crate) used_percent: Option<f64>,
    /// Seconds until it resets, counted from now.
    pub(crate) reset_in_secs: Option<u64>,
    pub(crate) window_minutes: Option<u64>,
}

/// One upstream error of an account.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorView {
    pub(crate) at_unix: u64,
    pub(crate) at: String,
    pub(crate) status: Option<u16>,
    /// `retry`, `failover` or `fatal`.
    pub(crate) outcome: &'static str,
    pub(crate) reason: Option<&'static str>,
    /// The penalty: `none`, `disabled` or a duration like `30s`.
    pub(crate) cooldown: Option<String>,
}

fn cooldown_kind(k: CooldownKind) -> &'static str {
    match k {
        CooldownKind::RateLimited => "rate_limited",
        CooldownKind::Overloaded => "overloaded",
        CooldownKind::Error => "error",
    }
}

fn error_view(e: &ferry_accounts::AccountError) -> ErrorView {
    let (outcome, cooldown) = match e.disposition {
        Disposition::RetrySameAccount { .. } => ("retry", None),
        Disposition::Failover { cooldown, .. } => (
            "failover",
            Some(match cooldown {
                Cooldown::None => "none".to_owned(),
                Cooldown::Disabled => "disabled".to_owned(),
                Cooldown::For { duration, .. } => format!("{}s", duration.as_secs()),
            }),
        ),
        Disposition::Fatal => ("fatal", None),
    };
    ErrorView {
        at_unix: e.at_unix,
        at: rfc3339(e.at_unix),
        status: e.status,
        outcome,
        reason: e.disposition.reason().map(|r| r.as_str()),
        cooldown,
    }
}

/// Every account, in config order.
pub(crate) fn accounts(state: &AppState) -> Vec<AccountView> {
    state
        .pool
        .snapshot()
        .into_iter()
        .map(|a| {
            let (state_name, cooldown, disabled_reason) = match a.state {
                AccountState::Ready => ("ready", None, None),
                AccountState::CoolingDown {
                    kind,
                    reason,
                    remaining,
                } => {
                    let until_unix = a.cooldown_until_unix.unwrap_or_default();
                    let cd = CooldownView {
                        kind: cooldown_kind(kind),
                        reason: reason.as_str(),
                        remaining_secs: remaining.as_secs()
                            + u64::from(remaining.subsec_nanos() > 0),
                        until_unix,
                        until: rfc3339(until_unix),
                    };
                    ("cooling_down", Some(cd), None)
                }
                AccountState::Disabled { reason } => ("disabled", None, Some(reason.as_str())),
            };
            let codex_usage = a.codex_usage.map(|(u, age)| {
                let window = |w: Option<ferry_accounts::CodexWindow>| {
                    w.map(|w| WindowView {
                        used_percent: w.used_percent,
                        reset_in_secs: w
                            .reset_after_seconds
                            .map(|r| r.saturating_sub(age.as_secs())),
                        window_minutes: w.window_minutes,
                    })
                };
                CodexView {
                    five_hour: window(u.five_hour),
                    seven_day: window(u.seven_day),
                    observed_secs_ago: age.as_secs(),
                }
            });
            AccountView {
                available: a.state == AccountState::Ready,
                kind: a.kind.as_str(),
                priority: a.priority,
                concurrency: a.concurrency,
                in_flight: a.in_flight,
                state: state_name,
                cooldown,
                disabled_reason,
                codex_usage,
                last_errors: a.last_errors.iter().rev().map(error_view).collect(),
                name: a.name,
            }
        })
        .collect()
}

/// One client key.
#[derive(Debug, Serialize)]
pub(crate) struct KeyView {
    /// The key's name (`-` for the requests of an open gateway).
    pub(crate) name: String,
    pub(crate) budget: BudgetView,
    /// Spending in the current UTC day and month, and what the budget leaves.
    pub(crate) windows: Vec<SpendView>,
    /// The last 24 hours summed.
    pub(crate) last_24h: HourView,
    /// The last 24 hours, oldest first.
    pub(crate) hourly: Vec<HourView>,
}

/// A client key's limits (none set: all `null`).
#[derive(Debug, Serialize)]
pub(crate) struct BudgetView {
    pub(crate) daily_tokens: Option<u64>,
    pub(crate) monthly_tokens: Option<u64>,
    pub(crate) daily_usd: Option<f64>,
    pub(crate) monthly_usd: Option<f64>,
}

/// Spending in one budget window.
#[derive(Debug, Serialize)]
pub(crate) struct SpendView {
    /// `day` or `month`.
    pub(crate) window: &'static str,
    /// `2026-12-03` or `2026-12`.
    pub(crate) period: String,
    pub(crate) tokens: u64,
    pub(crate) cost_usd: f64,
    pub(crate) token_limit: Option<u64>,
    pub(crate) usd_limit: Option<f64>,
    pub(crate) tokens_left: Option<u64>,
    pub(crate) usd_left: Option<f64>,
    pub(crate) resets_in_secs: u64,
}

/// One hour's (or a sum's) figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HourView {
    /// The hour's start (RFC 3339); absent on a sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hour: Option<String>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) input_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_usd: f64,
    pub(crate) cache_hit_ratio: Option<f64>,
}

impl HourView {
    fn of(h: &Hour, with_hour: bool) -> Self {
        Self {
            hour: with_hour.then(|| rfc3339(h.start_unix)),
            requests: h.requests,
            errors: h.errors,
            input_tokens: h.input_tokens,
            cached_tokens: h.cached_tokens,
            output_tokens: h.output_tokens,
            cost_usd: h.usd(),
            cache_hit_ratio: h.cache_hit_ratio(),
        }
    }
}

/// Every configured client key (or `-`, the requests of an open gateway), in config order.
pub(crate) async fn client_keys(state: &AppState) -> Vec<KeyView> {
    let keys = &state.config.client_keys;
    let names: Vec<String> = if keys.is_empty() {
        vec!["-".to_owned()]
    } else {
        keys.iter().map(|k| k.name.clone()).collect()
    };
    let hours = usage::last_hours(state, &names).await;
    let mut out = Vec::with_capacity(names.len());
    for (name, hours) in names.into_iter().zip(hours) {
        let budget = keys
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.budget.clone())
            .unwrap_or_default();
        let windows = crate::cost::spent(state, &name, &budget)
            .await
            .into_iter()
            .map(|s| SpendView {
                window: s.window.name,
                period: s.window.period,
                tokens: s.tokens,
                cost_usd: s.usd,
                token_limit: s.token_limit,
                usd_limit: s.usd_limit,
                tokens_left: s.token_limit.map(|l| l.saturating_sub(s.tokens)),
                usd_left: s.usd_limit.map(|l| (l - s.usd).max(0.0)),
                resets_in_secs: s.window.ends_in.as_secs(),
            })
            .collect();
        let sum = hours.iter().fold(Hour::default(), |acc, h| acc.plus(h));
        out.push(KeyView {
            budget: BudgetView {
                daily_tokens: budget.daily_tokens,
                monthly_tokens: budget.monthly_tokens,
                daily_usd: budget.daily_usd,
                monthly_usd: budget.monthly_usd,
            },
            windows,
            last_24h: HourView::of(&sum, false),
            hourly: hours.iter().map(|h| HourView::of(h, true)).collect(),
            name,
        });
    }
    out
}

/// The prompt cache as this process saw it, and the open streams.
#[derive(Debug, Serialize)]
pub(crate) struct CacheView {
    /// Requests whose prompt size was known (`ferry_prompt_cache_hit_ratio`'s count).
    pub(crate) requests: u64,
    /// Their mean cached share of the prompt.
    pub(crate) mean_hit_ratio: Option<f64>,
    /// `ferry_cache_miss_total` by reason (zero counts included).
    pub(crate) misses: Vec<MissView>,
    /// `ferry_open_streams`.
    pub(crate) open_streams: i64,
}

/// One miss reason.
#[derive(Debug, Serialize)]
pub(crate) struct MissView {
    pub(crate) reason: String,
    pub(crate) count: u64,
}

/// The cache figures of this process (the metrics are per process, not shared).
pub(crate) fn cache(state: &AppState) -> CacheView {
    let m = &state.metrics;
    let requests = m.prompt_cache_hit_ratio.count();
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    let mean_hit_ratio = (requests > 0).then(|| m.prompt_cache_hit_ratio.sum() / requests as f64);
    CacheView {
        requests,
        mean_hit_ratio,
        misses: m
            .cache_miss_total
            .values()
            .into_iter()
            .map(|([reason], count)| MissView { reason, count })
            .collect(),
        open_streams: m.open_streams.get(),
    }
}
