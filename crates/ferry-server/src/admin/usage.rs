//! Requests, tokens and cost per client key per hour, in the session store (shared by the
//! replicas on Redis), for the admin API and the dashboard.
//!
//! Each finished request adds to `usage:{hour}:{unit}:{client}`, where `hour` is the unix
//! hour (`unix_secs / 3600`) and `unit` one of [`UNITS`]; the client key's name is last, so
//! no name can run into another key. A counter lives [`RETENTION`] from its hour's first
//! request; the admin view reads the last 24 hours, all of them in one round trip
//! ([`ferry_session::Store::counters`]).

use std::sync::Arc;
use std::time::Duration;

use ferry_apicompat::anthropic;

use crate::state::AppState;

/// How long an hour's counters are kept (3 days: the last 24 hours are always there, and
/// a replica's clock a little off does not lose any).
pub(crate) const RETENTION: Duration = Duration::from_secs(3 * 86_400);

/// How many hours the admin view shows.
pub(crate) const HOURS: u64 = 24;

/// The counters kept per client key and hour.
pub(crate) const UNITS: [&str; 6] = [
    "requests",
    "errors",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "micro_usd",
];

/// One client key's figures for one hour (or summed over several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Hour {
    /// The hour's start (unix seconds); 0 for a sum.
    pub(crate) start_unix: u64,
    pub(crate) requests: u64,
    /// Requests answered with a status of 400 or more (a client that left counts as one).
    pub(crate) errors: u64,
    /// Prompt tokens not read from the cache (cache writes included).
    pub(crate) input_tokens: u64,
    /// Prompt tokens read from the upstream's cache.
    pub(crate) cached_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) micro_usd: u64,
}

impl Hour {
    fn from_units(start_unix: u64, v: &[u64]) -> Self {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Self {
            start_unix,
            requests: at(0),
            errors: at(1),
            input_tokens: at(2),
            cached_tokens: at(3),
            output_tokens: at(4),
            micro_usd: at(5),
        }
    }

    /// This and `other` summed (keeps `self`'s start).
    pub(crate) fn plus(self, o: &Self) -> Self {
        Self {
            start_unix: self.start_unix,
            requests: self.requests + o.requests,
            errors: self.errors + o.errors,
            input_tokens: self.input_tokens + o.input_tokens,
            cached_tokens: self.cached_tokens + o.cached_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
            micro_usd: self.micro_usd + o.micro_usd,
        }
    }

    /// Cached share of the prompt tokens, when there were any.
    pub(crate) fn cache_hit_ratio(&self) -> Option<f64> {
        let prompt = self.input_tokens + self.cached_tokens;
        #[expect(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^52"
        )]
        (prompt > 0).then(|| self.cached_tokens as f64 / prompt as f64)
    }

    /// The cost in USD.
    pub(crate) fn usd(&self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "micro-USD counts are far below 2^52"
        )]
        let micros = self.micro_usd as f64;
        micros / 1e6
    }
}

fn key(hour: u64, unit: &str, client: &str) -> String {
    format!("usage:{hour}:{unit}:{client}")
}

/// Counts one finished request of `client` (its label: `-` on an open gateway) in the
/// current hour. Written after the response, off the request's path.
pub(crate) fn record(
    state: &AppState,
    client: &str,
    status: u16,
    usage: &anthropic::Usage,
    cost_usd: f64,
) {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a request's cost in micro-USD is positive and far below 2^64"
    )]
    let micro_usd = (cost_usd.max(0.0) * 1e6).round() as u64;
    let values = [
        1,
        u64::from(status >= 400),
        usage.input_tokens + usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
        usage.output_tokens,
        micro_usd,
    ];
    let hour = crate::cost::unix_now() / 3600;
    let store = Arc::clone(&state.store);
    let client = client.to_owned();
    #[expect(
        clippy::disallowed_methods,
        reason = "outlives the request on purpose: counted after the response went out; at most six store operations, each bounded by the store's timeouts"
    )]
    tokio::spawn(async move {
        for (unit, by) in UNITS.iter().zip(values) {
            if by == 0 {
                continue;
            }
            if store
                .add(&key(hour, unit, &client), by, RETENTION)
                .await
                .is_err()
            {
                tracing::warn!(client = %client, "cannot count the request in the hourly usage (session store error)");
                return;
            }
        }
    });
}

/// The last [`HOURS`] hours of each of `clients`, oldest hour first, in one store round
/// trip (hours the store cannot answer for count as empty).
pub(crate) async fn last_hours(state: &AppState, clients: &[String]) -> Vec<Vec<Hour>> {
    let now_hour = crate::cost::unix_now() / 3600;
    let hours: Vec<u64> = (now_hour + 1 - HOURS..=now_hour).collect();
    let mut keys = Vec::with_capacity(clients.len() * hours.len() * UNITS.len());
    for client in clients {
        for h in &hours {
            for unit in UNITS {
                keys.push(key(*h, unit, client));
            }
        }
    }
    let values = state.store.counters(&keys).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the hourly usage (session store error)");
        vec![0; keys.len()]
    });
    values
        .chunks(hours.len() * UNITS.len())
        .map(|per_client| {
            per_client
                .chunks(UNITS.len())
                .zip(&hours)
                .map(|(v, h)| Hour::from_units(h * 3600, v))
                .collect()
        })
        .collect()
}
