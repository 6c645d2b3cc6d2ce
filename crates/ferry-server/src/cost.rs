//! What requests cost, and budgets per client key.
//!
//! **Prices.** [`PriceTable`] holds USD per million tokens (input, cached input, output, and
//! optional long-context prices above a prompt size) for model-name prefixes: the longest
//! prefix of the billed model wins, so `gpt-5.1-codex-mini-2026…` takes the
//! `gpt-5.1-codex-mini` row. Built-in rows ([`DEFAULT_PRICES`]) are OpenAI's list prices of
//! the catalog's models; `[prices."MODEL"]` rows in the config replace or add rows. A model
//! with no row costs 0 (and is counted in tokens only).
//!
//! **Budgets.** A client key's `[client_keys.budget]` caps tokens and/or USD per UTC day and
//! per UTC month. Spending is counted in the session store ([`ferry_session::Store::add`],
//! shared by replicas on Redis) under `budget:{client}:{window}:{period}` in tokens and in
//! micro-USD, when a request's usage is known. A request is refused before it goes upstream
//! when a window is already spent: 429 `rate_limit_error` (the status and type a client
//! already retries on, as for an exhausted quota) with `retry-after` at the window's end. A
//! request under the limit runs to its end even if it crosses it, so a budget can be
//! overshot by the requests in flight when it ran out.

use std::sync::Arc;
use std::time::Duration;

use crate::civil::{civil_from_days, days_from_civil};
use crate::error::Error;
pub use crate::prices::{Budget, DEFAULT_PRICES, LongPrice, Price, PriceTable};
use crate::state::AppState;

/// A budget window: its name, the period it is in, and seconds until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) name: &'static str,
    pub(crate) period: String,
    pub(crate) ends_in: Duration,
}

/// The day and month windows at unix time `now`.
pub(crate) fn windows(now: u64) -> [Window; 2] {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let days = now.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let day_end = (days + 1) * 86_400;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let month_end = days_from_civil(ny, nm, 1) * 86_400;
    let secs = |end: i64| Duration::from_secs(u64::try_from(end - now).unwrap_or(0).max(1));
    [
        Window {
            name: "day",
            period: format!("{y:04}-{m:02}-{d:02}"),
            ends_in: secs(day_end),
        },
        Window {
            name: "month",
            period: format!("{y:04}-{m:02}"),
            ends_in: secs(month_end),
        },
    ]
}

fn key(client: &str, w: &Window, unit: &str) -> String {
    format!("budget:{client}:{}:{}:{unit}", w.name, w.period)
}

/// `unix` as an RFC 3339 UTC timestamp (`2026-12-03T13:00:00Z`).
pub(crate) fn rfc3339(unix: u64) -> String {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a client key spent in a window, and its limits there.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spent {
    pub(crate) window: Window,
    pub(crate) tokens: u64,
    pub(crate) usd: f64,
    pub(crate) token_limit: Option<u64>,
    pub(crate) usd_limit: Option<f64>,
}

/// The spending of `client` in the current day and month (store errors count as 0).
pub(crate) async fn spent(state: &AppState, client: &str, budget: &Budget) -> Vec<Spent> {
    let mut out = Vec::with_capacity(2);
    for w in windows(unix_now()) {
        let tokens = state
            .store
            .counter(&key(client, &w, "tokens"))
            .await
            .unwrap_or(0);
        let micros = state
            .store
            .counter(&key(client, &w, "micro_usd"))
            .await
            .unwrap_or(0);
        let (token_limit, usd_limit) = if w.name == "day" {
            (budget.daily_tokens, budget.daily_usd)
        } else {
            (budget.monthly_tokens, budget.monthly_usd)
        };
        #[expect(
            clippy::cast_precision_loss,
            reason = "micro-USD counts are far below 2^52"
        )]
        let usd = micros as f64 / 1e6;
        out.push(Spent {
            window: w,
            tokens,
            usd,
            token_limit,
            usd_limit,
        });
    }
    out
}

/// Refuses the request when the client key's budget is spent in some window.
pub(crate) async fn check_budget(state: &AppState, client: Option<&str>) -> Result<(), Error> {
    let Some(client) = client else { return Ok(()) };
    let Some(budget) = state.budget(client) else {
        return Ok(());
    };
    for s in spent(state, client, budget).await {
        let over_tokens = s.token_limit.filter(|l| s.tokens >= *l);
        let over_usd = s.usd_limit.filter(|l| s.usd >= *l);
        let what = match (over_tokens, over_usd) {
            (Some(limit), _) => format!("{} of {limit} tokens", s.tokens),
            (None, Some(limit)) => format!("${:.4} of ${limit}", s.usd),
            (None, None) => continue,
        };
        state
            .metrics
            .budget_rejections_total
            .inc([client, s.window.name]);
        return Err(Error::BudgetExceeded {
            message: format!(
                "the {} budget of client key {client:?} is spent ({what}); it resets in {} s",
                if s.window.name == "day" {
                    "daily"
                } else {
                    "monthly"
                },
                s.window.ends_in.as_secs()
            ),
            retry_after: s.window.ends_in,
        });
    }
    Ok(())
}

/// Adds a finished request's tokens and cost to its client key's day and month counters
/// (every configured key, so the admin API shows each key's spending; a budget reads them).
pub(crate) fn record(state: &AppState, client: &str, tokens: u64, usd: f64) {
    let configured = state.config.client_keys.iter().any(|k| k.name == client);
    if !configured || (tokens == 0 && usd <= 0.0) {
        return;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a request's cost in micro-USD is positive and far below 2^64"
    )]
    let micros = (usd * 1e6).round() as u64;
    let store = Arc::clone(&state.store);
    let client = client.to_owned();
    #[expect(
        clippy::disallowed_methods,
        reason = "outlives the request on purpose: the usage is counted after the response went out; two store round trips per window, bounded by the store's timeouts"
    )]
    tokio::spawn(async move {
        for w in windows(unix_now()) {
            // A day's counters live a day past their window so the admin view can show them.
            let ttl = w.ends_in + Duration::from_secs(86_400);
            let a = store.add(&key(&client, &w, "tokens"), tokens, ttl).await;
            let b = store.add(&key(&client, &w, "micro_usd"), micros, ttl).await;
            if a.is_err() || b.is_err() {
                tracing::warn!(client = %client, window = w.name, "cannot count the request in the budget (session store error)");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn windows_end_at_utc_midnight_and_the_first_of_the_month() {
        // 2026-12-31T23:00:00Z
        let now = days_from_civil(2026, 12, 31) as u64 * 86_400 + 23 * 3600;
        let [day, month] = windows(now);
        assert_eq!(
            (day.period.as_str(), day.ends_in.as_secs()),
            ("2026-12-31", 3600)
        );
        assert_eq!(
            (month.period.as_str(), month.ends_in.as_secs()),
            ("2026-12", 3600)
        );
        // 2024-02-10T00:00:00Z: a leap February has 19 more days after the 10th.
        let now = days_from_civil(2024, 2, 10) as u64 * 86_400;
        let [day, month] = windows(now);
        assert_eq!(day.period, "2024-02-10");
        assert_eq!(month.ends_in.as_secs(), 20 * 86_400);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(rfc3339(now + 3723), "2024-02-10T01:02:03Z");
    }
}
