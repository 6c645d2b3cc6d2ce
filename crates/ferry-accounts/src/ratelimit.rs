//! Rate-limit signals: `retry-after`, `x-ratelimit-reset-*`, the Codex usage-window headers
//! (`x-codex-primary-*`, `x-codex-secondary-*`) and the `usage_limit_reached` body; and the
//! 429 cooldown computed from them.
//!
//! Everything here is pure: the current wall-clock time is a parameter (`now_unix`).

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

/// Default cooldown after a 429 that carries no usable reset: 5 s.
pub const DEFAULT_RATE_LIMIT_FALLBACK: Duration = Duration::from_secs(5);
/// Bounds of the configured 429 fallback cooldown (1–7200 s).
pub const RATE_LIMIT_FALLBACK_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(7200));

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Parses a Go-style duration as OpenAI sends in `x-ratelimit-reset-*`: `1s`, `6m0s`, `20ms`,
/// `1h2m3.5s`, `1.5s`, `250us`. A bare number is read as seconds.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return secs_f64(secs);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    secs_f64(total)
}

fn secs_f64(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..1e12).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date).
pub fn retry_after(headers: &HeaderMap, now_unix: u64) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return secs_f64(ms / 1000.0);
    }
    let value = header_str(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return secs_f64(secs);
    }
    let at = parse_http_date(value)?;
    Some(Duration::from_secs(at.saturating_sub(now_unix)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, s): (i64, i64, i64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = crate::config::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(secs).ok()
}

/// The reset from `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens`: the longest reset
/// among the exhausted limits (`x-ratelimit-remaining-* == 0`), or among all when none is
/// reported exhausted.
pub fn ratelimit_reset(headers: &HeaderMap) -> Option<Duration> {
    let limits = ["requests", "tokens"].map(|kind| {
        let reset =
            header_str(headers, &format!("x-ratelimit-reset-{kind}")).and_then(parse_go_duration);
        let exhausted = header_str(headers, &format!("x-ratelimit-remaining-{kind}"))
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|remaining| remaining <= 0.0);
        (reset, exhausted)
    });
    let exhausted = limits
        .iter()
        .filter(|(_, e)| *e)
        .filter_map(|(r, _)| *r)
        .max();
    exhausted.or_else(|| limits.iter().filter_map(|(r, _)| *r).max())
}

/// One Codex usage window from the `x-codex-{primary,secondary}-*` headers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CodexWindow {
    /// `…-used-percent`.
    pub used_percent: Option<f64>,
    /// `…-reset-after-seconds`.
    pub reset_after_seconds: Option<u64>,
    /// `…-window-minutes`.
    pub window_minutes: Option<u64>,
}

impl CodexWindow {
    fn parse(headers: &HeaderMap, which: &str) -> Option<Self> {
        let get = |suffix: &str| header_str(headers, &format!("x-codex-{which}-{suffix}"));
        let window = Self {
            used_percent: get("used-percent")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite()),
            reset_after_seconds: get("reset-after-seconds").and_then(parse_whole_seconds),
            window_minutes: get("window-minutes").and_then(parse_whole_seconds),
        };
        (window != Self::default()).then_some(window)
    }

    /// True when the window is used up (≥ 100 %).
    pub fn is_exhausted(&self) -> bool {
        self.used_percent.is_some_and(|p| p >= 100.0)
    }
}

fn parse_whole_seconds(v: &str) -> Option<u64> {
    v.parse::<u64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// A Codex usage snapshot, from the rate-limit headers of a Codex response.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CodexUsage {
    /// The primary window as sent.
    pub primary: Option<CodexWindow>,
    /// The secondary window as sent.
    pub secondary: Option<CodexWindow>,
    /// `x-codex-primary-over-secondary-limit-percent`.
    pub primary_over_secondary_limit_percent: Option<f64>,
    /// The short (5-hour) window, after normalisation.
    pub five_hour: Option<CodexWindow>,
    /// The long (7-day) window, after normalisation.
    pub seven_day: Option<CodexWindow>,
}

impl CodexUsage {
    /// Parses the Codex headers; `None` when none of them is present and parsable.
    ///
    /// Normalisation into 5h/7d: with both window lengths known the smaller is 5h; with one known,
    /// ≤ 360 minutes is 5h; with neither known the primary is 7d.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let primary = CodexWindow::parse(headers, "primary");
        let secondary = CodexWindow::parse(headers, "secondary");
        let over = header_str(headers, "x-codex-primary-over-secondary-limit-percent")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite());
        if primary.is_none() && secondary.is_none() && over.is_none() {
            return None;
        }
        let minutes = |w: &Option<CodexWindow>| w.and_then(|w| w.window_minutes);
        let primary_is_short = match (minutes(&primary), minutes(&secondary)) {
            (Some(p), Some(s)) => p <= s,
            (Some(p), None) => p <= 360,
            (None, Some(s)) => s > 360,
            (None, None) => false,
        };
        let (five_hour, seven_day) = if primary_is_short {
            (primary, secondary)
        } else {
            (secondary, primary)
        };
        Some(Self {
            primary,
            secondary,
            primary_over_secondary_limit_percent: over,
            five_hour,
            seven_day,
        })
    }

    /// How long until an exhausted window resets: the 7d window is checked first, then 5h.
    /// `None` when no window is at ≥ 100 % (a lower usage is not proof of exhaustion).
    pub fn exhausted_reset(&self) -> Option<Duration> {
        [self.seven_day, self.five_hour]
            .into_iter()
            .flatten()
            .find(|w| w.is_exhausted() && w.reset_after_seconds.is_some())
            .and_then(|w| w.reset_after_seconds)
            .map(Duration::from_secs)
    }
}

/// The reset of a Codex `usage_limit_reached` error body (`resets_in_seconds`, else `resets_at`).
pub fn usage_limit_reset(body: &[u8], now_unix: u64) -> Option<Duration> {
    let value: Value = serde_json::from_slice(body).ok()?;
    usage_limit_reset_json(&value, now_unix)
}

/// [`usage_limit_reset`] of a body already parsed.
pub fn usage_limit_reset_json(value: &Value, now_unix: u64) -> Option<Duration> {
    let error = value.get("error").unwrap_or(value);
    let kind_matches = ["type", "code"].iter().any(|k| {
        error
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| v == "usage_limit_reached")
    });
    if !kind_matches {
        return None;
    }
    let number = |k: &str| {
        error
            .get(k)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
    };
    if let Some(secs) = number("resets_in_seconds").filter(|s| *s > 0) {
        return Some(Duration::from_secs(secs));
    }
    number("resets_at")
        .filter(|at| *at > now_unix)
        .map(|at| Duration::from_secs(at - now_unix))
}

/// The cooldown after a 429: an exhausted Codex window's reset, else the body's
/// `usage_limit_reached` reset, else `retry-after(-ms)`, else `x-ratelimit-reset-*`, else the
/// fallback (clamped to 1–7200 s). A zero reset also falls back.
pub fn rate_limit_cooldown(
    headers: &HeaderMap,
    body: &[u8],
    now_unix: u64,
    fallback: Duration,
) -> Duration {
    let value = serde_json::from_slice::<Value>(body).ok();
    rate_limit_cooldown_json(headers, value.as_ref(), now_unix, fallback)
}

/// [`rate_limit_cooldown`] with the error body already parsed (`None`: not JSON).
pub fn rate_limit_cooldown_json(
    headers: &HeaderMap,
    body: Option<&Value>,
    now_unix: u64,
    fallback: Duration,
) -> Duration {
    let fallback = fallback.clamp(RATE_LIMIT_FALLBACK_BOUNDS.0, RATE_LIMIT_FALLBACK_BOUNDS.1);
    CodexUsage::from_headers(headers)
        .and_then(|u| u.exhausted_reset())
        .or_else(|| body.and_then(|v| usage_limit_reset_json(v, now_unix)))
        .or_else(|| retry_after(headers, now_unix))
        .or_else(|| ratelimit_reset(headers))
        .filter(|d| !d.is_zero())
        .unwrap_or(fallback)
}
