//! A small Prometheus text-format registry.
//!
//! Written here rather than taken from `prometheus` or `metrics-exporter-prometheus`: ferry
//! has a few fixed series with low-cardinality labels, and those crates bring a protobuf
//! stack or their own HTTP server. Counters and histograms are atomics; labelled families
//! are a mutex-guarded ordered map (a handful of label sets, touched once per request).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Latency buckets in seconds (request duration, first token).
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Ratio buckets (prompt cache hit ratio).
const RATIO_BUCKETS: &[f64] = &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0];

/// A value a labelled family holds and renders.
pub(crate) trait Sample: Copy + Default {
    /// The value as Prometheus writes it.
    fn render(self) -> String;
}

impl Sample for u64 {
    fn render(self) -> String {
        self.to_string()
    }
}

impl Sample for i64 {
    fn render(self) -> String {
        self.to_string()
    }
}

impl Sample for f64 {
    fn render(self) -> String {
        fmt_f64(self)
    }
}

/// A family of counters or gauges keyed by label values.
#[derive(Debug)]
pub(crate) struct Family<V, const N: usize> {
    name: &'static str,
    help: &'static str,
    /// `counter` or `gauge`.
    kind: &'static str,
    labels: [&'static str; N],
    values: Mutex<BTreeMap<[String; N], V>>,
}

/// Counters keyed by label values.
pub(crate) type CounterVec<const N: usize> = Family<u64, N>;
/// Integer gauges keyed by label values.
pub(crate) type GaugeVec<const N: usize> = Family<i64, N>;
/// Floating-point gauges keyed by label values (values set from a snapshot).
pub(crate) type FloatGaugeVec<const N: usize> = Family<f64, N>;
/// Floating-point counters (the same family type, rendered as `counter`).
pub(crate) type FloatCounterVec<const N: usize> = Family<f64, N>;

impl<V: Sample, const N: usize> Family<V, N> {
    const fn with_kind(
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: [&'static str; N],
    ) -> Self {
        Self {
            name,
            help,
            kind,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn update(&self, label_values: [&str; N], f: impl FnOnce(&mut V)) {
        let key = label_values.map(str::to_owned);
        if let Ok(mut m) = self.values.lock() {
            f(m.entry(key).or_default());
        }
    }

    /// Every label set written so far and its value, in label order (the admin view).
    pub(crate) fn values(&self) -> Vec<([String; N], V)> {
        self.values
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// True once some label set was written.
    fn has_values(&self) -> bool {
        self.values.lock().is_ok_and(|m| !m.is_empty())
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, self.kind);
        if let Ok(m) = self.values.lock() {
            for (vals, v) in m.iter() {
                let _ = writeln!(
                    out,
                    "{}{} {}",
                    self.name,
                    label_str(&self.labels, vals, None),
                    v.render()
                );
            }
        }
    }
}

impl<const N: usize> Family<u64, N> {
    const fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self::with_kind(name, help, "counter", labels)
    }

    pub(crate) fn inc_by(&self, label_values: [&str; N], by: u64) {
        self.update(label_values, |v| *v += by);
    }

    pub(crate) fn inc(&self, label_values: [&str; N]) {
        self.inc_by(label_values, 1);
    }

    /// Sets a counter that mirrors a count kept elsewhere (it only grows there).
    pub(crate) fn set_total(&self, label_values: [&str; N], total: u64) {
        self.update(label_values, |v| *v = total);
    }
}

impl<const N: usize> Family<i64, N> {
    const fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self::with_kind(name, help, "gauge", labels)
    }

    pub(crate) fn set(&self, label_values: [&str; N], v: i64) {
        self.update(label_values, |slot| *slot = v);
    }
}

impl<const N: usize> Family<f64, N> {
    const fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self::with_kind(name, help, "gauge", labels)
    }

    pub(crate) fn set(&self, label_values: [&str; N], v: f64) {
        self.update(label_values, |slot| *slot = v);
    }

    const fn counter(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self::with_kind(name, help, "counter", labels)
    }

    pub(crate) fn add(&self, label_values: [&str; N], by: f64) {
        self.update(label_values, |slot| *slot += by);
    }
}

/// A single gauge.
#[derive(Debug)]
pub(crate) struct Gauge {
    name: &'static str,
    help: &'static str,
    value: AtomicI64,
}

impl Gauge {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            value: AtomicI64::new(0),
        }
    }

    pub(crate) fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dec(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        let _ = writeln!(out, "{} {}", self.name, self.get());
    }
}

/// A histogram with fixed buckets.
#[derive(Debug)]
pub(crate) struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    counts: Vec<AtomicU64>,
    /// Sum in micro-units so it fits an atomic integer.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Self {
            name,
            help,
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        let v = if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let idx = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(idx) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "v is finite and non-negative; micro-units of seconds fit u64"
        )]
        let micros = (v * 1e6).round() as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The sum of the observed values (to a millionth).
    pub(crate) fn sum(&self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a sum in micro-units stays far below 2^52 for ratios and seconds"
        )]
        let micros = self.sum_micros.load(Ordering::Relaxed) as f64;
        micros / 1e6
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let mut cum = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| fmt_f64(*b));
            let _ = writeln!(out, "{}_bucket{{le=\"{le}\"}} {cum}", self.name);
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "sums of seconds; float precision is fine"
        )]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{}_sum {}", self.name, fmt_f64(sum));
        let _ = writeln!(out, "{}_count {}", self.name, self.count());
    }
}

fn fmt_f64(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_str(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{}\"", escape(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// All of ferry's metrics. Their names are a fixed interface (whatever scrapes them relies on
/// them), listed in crates/ferry-server/README.md § Observability.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// `ferry_requests_total{status,stream}`
    pub(crate) requests_total: CounterVec<2>,
    /// `ferry_request_duration_seconds`
    pub(crate) request_duration: Histogram,
    /// `ferry_first_token_seconds`
    pub(crate) first_token: Histogram,
    /// `ferry_upstream_requests_total{account,status}`
    pub(crate) upstream_requests_total: CounterVec<2>,
    /// `ferry_failovers_total{reason}`
    pub(crate) failovers_total: CounterVec<1>,
    /// `ferry_tokens_total{kind}`
    pub(crate) tokens_total: CounterVec<1>,
    /// `ferry_cost_usd_total{client,model}` (the price table's cost of each request)
    pub(crate) cost_usd_total: FloatCounterVec<2>,
    /// `ferry_budget_rejections_total{client,window}`
    pub(crate) budget_rejections_total: CounterVec<2>,
    /// `ferry_prompt_cache_hit_ratio`
    pub(crate) prompt_cache_hit_ratio: Histogram,
    /// `ferry_cache_miss_total{reason}`
    pub(crate) cache_miss_total: CounterVec<1>,
    /// `ferry_continuations_total{result}`: upstream requests sent with
    /// `previous_response_id` (`sent`), and the ones the upstream rejected (`not_found`,
    /// `unsupported`; each then replayed with the full history).
    pub(crate) continuations_total: CounterVec<1>,
    /// `ferry_threads_total{result}`: message-thread requests (created, continued,
    /// not_found, too_large, fingerprint_mismatch, invalid, store_error) and turns stored.
    pub(crate) threads_total: CounterVec<1>,
    /// `ferry_open_streams`
    pub(crate) open_streams: Gauge,
    /// `ferry_account_available{account}`
    pub(crate) account_available: GaugeVec<1>,
    /// `ferry_codex_usage_percent{account,window}`: the last Codex usage window reading
    /// (`window` = `5h` | `7d`) of an OAuth account.
    pub(crate) codex_usage_percent: FloatGaugeVec<2>,
    /// `ferry_codex_usage_reset_seconds{account,window}`: time left until that window resets.
    pub(crate) codex_usage_reset_seconds: FloatGaugeVec<2>,
    /// `ferry_dropped_fields_total{kind}`: parts of requests the conversion could not carry.
    pub(crate) dropped_total: CounterVec<1>,
    /// `ferry_upstream_unknown_events_total`: upstream event types ferry does not know.
    pub(crate) unknown_events_total: CounterVec<0>,
    /// `ferry_usage_implausible_total`: responses whose usage numbers were not believed.
    pub(crate) usage_implausible_total: CounterVec<0>,
    /// `ferry_connections_refused_total`: connections past `server.max_connections`.
    pub(crate) connections_refused_total: CounterVec<0>,
    /// `ferry_cooldown_cap_seconds`: `rate_limit.max_cooldown_secs`.
    pub(crate) cooldown_cap_seconds: FloatGaugeVec<0>,
    /// `ferry_cooldowns_capped_total`: upstream-asked cooldowns cut to the cap.
    pub(crate) cooldowns_capped_total: CounterVec<0>,
    /// `ferry_session_store_degraded`: 1 while Redis is away and local state serves.
    pub(crate) session_store_degraded: GaugeVec<0>,
    /// `ferry_session_store_trips_total`: times the Redis breaker opened.
    pub(crate) session_store_trips_total: CounterVec<0>,
    /// `ferry_session_store_local_ops_total`: store operations answered locally.
    pub(crate) session_store_local_ops_total: CounterVec<0>,
    /// `ferry_session_store_reconciled_total`: writes replayed into Redis when it came back.
    pub(crate) session_store_reconciled_total: CounterVec<0>,
    /// `ferry_response_dropped_total{kind}`: parts of upstream answers the conversion could
    /// not carry (`unexpressible_output_item`: a shell call, a computer action, … replaced
    /// by a notice; `unknown_output_item`, `invalid_tool_arguments`, …).
    pub(crate) response_dropped_total: CounterVec<1>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests_total: CounterVec::new(
                "ferry_requests_total",
                "Client requests to /v1/messages by HTTP status and stream mode.",
                ["status", "stream"],
            ),
            request_duration: Histogram::new(
                "ferry_request_duration_seconds",
                "Time from request to the end of the response.",
                LATENCY_BUCKETS,
            ),
            first_token: Histogram::new(
                "ferry_first_token_seconds",
                "Time from request to the first upstream event.",
                LATENCY_BUCKETS,
            ),
            upstream_requests_total: CounterVec::new(
                "ferry_upstream_requests_total",
                "Upstream requests by account and status (\"error\" when no status).",
                ["account", "status"],
            ),
            failovers_total: CounterVec::new(
                "ferry_failovers_total",
                "Account switches and same-account retries before the first byte, by reason.",
                ["reason"],
            ),
            tokens_total: CounterVec::new("ferry_tokens_total", "Tokens by kind.", ["kind"]),
            cost_usd_total: FloatCounterVec::counter(
                "ferry_cost_usd_total",
                "USD spent, from the price table, by client key and billed model.",
                ["client", "model"],
            ),
            budget_rejections_total: CounterVec::new(
                "ferry_budget_rejections_total",
                "Requests refused because the client key's budget was spent, by window.",
                ["client", "window"],
            ),
            prompt_cache_hit_ratio: Histogram::new(
                "ferry_prompt_cache_hit_ratio",
                "Per request: cached input tokens / input tokens.",
                RATIO_BUCKETS,
            ),
            cache_miss_total: CounterVec::new(
                "ferry_cache_miss_total",
                "Requests that could not reuse the prompt cache, by reason.",
                ["reason"],
            ),
            continuations_total: CounterVec::new(
                "ferry_continuations_total",
                "Upstream requests sent with previous_response_id (sent), and those rejected (not_found, unsupported).",
                ["result"],
            ),
            threads_total: CounterVec::new(
                "ferry_threads_total",
                "Message-thread requests by result (created, continued, not_found, too_large, fingerprint_mismatch, invalid, store_error), and turns stored.",
                ["result"],
            ),
            open_streams: Gauge::new("ferry_open_streams", "Client SSE streams currently open."),
            account_available: GaugeVec::new(
                "ferry_account_available",
                "1 when the account can take traffic, else 0.",
                ["account"],
            ),
            codex_usage_percent: FloatGaugeVec::new(
                "ferry_codex_usage_percent",
                "Percent used of an OAuth account's Codex usage window (5h or 7d), as last reported by the upstream.",
                ["account", "window"],
            ),
            codex_usage_reset_seconds: FloatGaugeVec::new(
                "ferry_codex_usage_reset_seconds",
                "Seconds until an OAuth account's Codex usage window (5h or 7d) resets, counted from its last report.",
                ["account", "window"],
            ),
            dropped_total: CounterVec::new(
                "ferry_dropped_fields_total",
                "Request parts the conversion dropped, by kind.",
                ["kind"],
            ),
            unknown_events_total: CounterVec::new(
                "ferry_upstream_unknown_events_total",
                "Upstream stream events of a type ferry does not know (skipped).",
                [],
            ),
            connections_refused_total: CounterVec::new(
                "ferry_connections_refused_total",
                "Client connections answered 503 and closed because server.max_connections were open.",
                [],
            ),
            usage_implausible_total: CounterVec::new(
                "ferry_usage_implausible_total",
                "Upstream responses whose token counts were implausible (above 100 million) and were recorded as 0.",
                [],
            ),
            cooldown_cap_seconds: FloatGaugeVec::new(
                "ferry_cooldown_cap_seconds",
                "Longest account cooldown ferry applies (rate_limit.max_cooldown_secs), whatever the upstream asks.",
                [],
            ),
            session_store_degraded: GaugeVec::new(
                "ferry_session_store_degraded",
                "1 while the Redis session store is unreachable and ferry serves on local state (store = \"redis\" only).",
                [],
            ),
            session_store_trips_total: CounterVec::new(
                "ferry_session_store_trips_total",
                "Times the Redis circuit breaker opened (a failure or timeout, or Redis down at start).",
                [],
            ),
            session_store_local_ops_total: CounterVec::new(
                "ferry_session_store_local_ops_total",
                "Session store operations answered from local state because the Redis breaker was open.",
                [],
            ),
            session_store_reconciled_total: CounterVec::new(
                "ferry_session_store_reconciled_total",
                "Writes made while Redis was away and replayed into it when it came back.",
                [],
            ),
            cooldowns_capped_total: CounterVec::new(
                "ferry_cooldowns_capped_total",
                "Account cooldowns asked by an upstream (retry-after, reset headers or body) that were longer than the cap and cut to it.",
                [],
            ),
            response_dropped_total: CounterVec::new(
                "ferry_response_dropped_total",
                "Parts of upstream answers the conversion could not carry, by kind.",
                ["kind"],
            ),
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.requests_total.render(&mut out);
        self.request_duration.render(&mut out);
        self.first_token.render(&mut out);
        self.upstream_requests_total.render(&mut out);
        self.failovers_total.render(&mut out);
        self.tokens_total.render(&mut out);
        self.cost_usd_total.render(&mut out);
        if self.budget_rejections_total.has_values() {
            self.budget_rejections_total.render(&mut out);
        }
        self.prompt_cache_hit_ratio.render(&mut out);
        self.cache_miss_total.render(&mut out);
        self.continuations_total.render(&mut out);
        self.threads_total.render(&mut out);
        self.open_streams.render(&mut out);
        self.account_available.render(&mut out);
        self.codex_usage_percent.render(&mut out);
        self.codex_usage_reset_seconds.render(&mut out);
        self.dropped_total.render(&mut out);
        self.unknown_events_total.render(&mut out);
        self.usage_implausible_total.render(&mut out);
        self.connections_refused_total.render(&mut out);
        self.cooldown_cap_seconds.render(&mut out);
        self.cooldowns_capped_total.render(&mut out);
        if self.session_store_trips_total.has_values() {
            self.session_store_degraded.render(&mut out);
            self.session_store_trips_total.render(&mut out);
            self.session_store_local_ops_total.render(&mut out);
            self.session_store_reconciled_total.render(&mut out);
        }
        self.response_dropped_total.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.requests_total.inc(["200", "true"]);
        m.requests_total.inc(["200", "true"]);
        m.first_token.observe(0.02);
        m.open_streams.inc();
        let text = m.render();
        assert!(
            text.contains("ferry_requests_total{status=\"200\",stream=\"true\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ferry_first_token_seconds_bucket{le=\"0.01\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("ferry_first_token_seconds_bucket{le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ferry_first_token_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ferry_first_token_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("ferry_open_streams 1\n"), "{text}");
        assert!(
            text.contains("# TYPE ferry_prompt_cache_hit_ratio histogram\n"),
            "{text}"
        );
    }
}
