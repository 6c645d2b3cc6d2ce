//! Rate-limit header parsing and 429 cooldown computation.

use std::time::Duration;

use ferry_accounts::{
    CodexUsage, CodexWindow, parse_go_duration, parse_http_date, parse_rfc3339,
    rate_limit_cooldown, ratelimit_reset, retry_after, usage_limit_reset,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::support::headers;

const NOW: u64 = 1_700_000_000;

fn ms(ms: u64) -> Option<Duration> {
    Some(Duration::from_millis(ms))
}

#[test]
fn go_durations() {
    let cases = [
        ("1s", ms(1000)),
        ("6m0s", ms(360_000)),
        ("20ms", ms(20)),
        ("1h2m3.5s", ms(3_723_500)),
        ("1.5s", ms(1500)),
        ("250us", Some(Duration::from_micros(250))),
        ("3", ms(3000)),
        (" 2m ", ms(120_000)),
        ("", None),
        ("s", None),
        ("5x", None),
        ("-1s", None),
        ("1s2", None),
    ];
    let got: Vec<_> = cases.iter().map(|(s, _)| parse_go_duration(s)).collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}

#[test]
fn retry_after_forms() {
    let date = "Tue, 14 Nov 2023 22:16:40 GMT"; // NOW + 200
    assert_eq!(parse_http_date(date), Some(NOW + 200));
    let cases = [
        (vec![("retry-after", "12")], ms(12_000)),
        (vec![("retry-after", "0.5")], ms(500)),
        (
            vec![("retry-after-ms", "1500"), ("retry-after", "9")],
            ms(1500),
        ),
        (vec![("retry-after", date)], ms(200_000)),
        (
            vec![("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")],
            ms(0),
        ),
        (vec![("retry-after", "soon")], None),
        (vec![], None),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(h, _)| retry_after(&headers(h), NOW))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}

#[test]
fn ratelimit_reset_prefers_exhausted_limits() {
    let cases = [
        (
            vec![
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-remaining-tokens", "5000"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            ms(1000),
        ),
        (
            vec![
                ("x-ratelimit-reset-requests", "20ms"),
                ("x-ratelimit-reset-tokens", "2s"),
            ],
            ms(2000),
        ),
        (vec![("x-ratelimit-reset-tokens", "bogus")], None),
        (vec![], None),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(h, _)| ratelimit_reset(&headers(h)))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}

fn window(used: f64, reset: u64, minutes: Option<u64>) -> CodexWindow {
    CodexWindow {
        used_percent: Some(used),
        reset_after_seconds: Some(reset),
        window_minutes: minutes,
    }
}

#[test]
fn codex_usage_headers_normalise_into_5h_and_7d() {
    let both = headers(&[
        ("x-codex-primary-used-percent", "12.5"),
        ("x-codex-primary-reset-after-seconds", "600"),
        ("x-codex-primary-window-minutes", "10080"),
        ("x-codex-secondary-used-percent", "100"),
        ("x-codex-secondary-reset-after-seconds", "1800"),
        ("x-codex-secondary-window-minutes", "300"),
        ("x-codex-primary-over-secondary-limit-percent", "3.0"),
    ]);
    let primary = window(12.5, 600, Some(10080));
    let secondary = window(100.0, 1800, Some(300));
    assert_eq!(
        CodexUsage::from_headers(&both),
        Some(CodexUsage {
            primary: Some(primary),
            secondary: Some(secondary),
            primary_over_secondary_limit_percent: Some(3.0),
            five_hour: Some(secondary),
            seven_day: Some(primary),
        })
    );
    assert_eq!(
        CodexUsage::from_headers(&both).unwrap().exhausted_reset(),
        Some(Duration::from_secs(1800))
    );

    // Only the primary window length is known and it is short: it is the 5h window.
    let short = headers(&[
        ("x-codex-primary-used-percent", "100"),
        ("x-codex-primary-reset-after-seconds", "60"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-secondary-used-percent", "100"),
        ("x-codex-secondary-reset-after-seconds", "90000"),
    ]);
    let usage = CodexUsage::from_headers(&short).unwrap();
    assert_eq!(usage.five_hour, Some(window(100.0, 60, Some(300))));
    assert_eq!(
        usage.seven_day,
        Some(CodexWindow {
            window_minutes: None,
            ..window(100.0, 90000, None)
        })
    );
    // The 7d window is checked first.
    assert_eq!(usage.exhausted_reset(), Some(Duration::from_secs(90000)));

    // No window length at all: the primary is the 7d window.
    let unknown = headers(&[
        ("x-codex-primary-used-percent", "99.9"),
        ("x-codex-primary-reset-after-seconds", "60"),
    ]);
    let usage = CodexUsage::from_headers(&unknown).unwrap();
    assert_eq!(usage.seven_day, Some(window(99.9, 60, None)));
    assert_eq!(usage.five_hour, None);
    assert_eq!(
        usage.exhausted_reset(),
        None,
        "below 100 % is not exhaustion"
    );

    assert_eq!(CodexUsage::from_headers(&headers(&[])), None);
    assert_eq!(
        CodexUsage::from_headers(&headers(&[("x-codex-primary-used-percent", "lots")])),
        None
    );
}

#[test]
fn usage_limit_bodies() {
    let body = |v: serde_json::Value| v.to_string().into_bytes();
    let cases = [
        (
            body(json!({"error": {"type": "usage_limit_reached", "resets_in_seconds": 42}})),
            ms(42_000),
        ),
        (
            body(json!({"error": {"type": "usage_limit_reached", "resets_at": NOW + 60}})),
            ms(60_000),
        ),
        (
            body(json!({"error": {"code": "usage_limit_reached", "resets_at": NOW - 60}})),
            None,
        ),
        (
            body(json!({"error": {"type": "rate_limit_exceeded", "resets_in_seconds": 42}})),
            None,
        ),
        (b"not json".to_vec(), None),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(b, _)| usage_limit_reset(b, NOW))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}

#[test]
fn rate_limit_cooldown_order_and_fallback_clamp() {
    let fallback = Duration::from_secs(5);
    let usage_body = json!({"error": {"type": "usage_limit_reached", "resets_in_seconds": 77}})
        .to_string()
        .into_bytes();
    let exhausted = [
        ("x-codex-primary-used-percent", "100"),
        ("x-codex-primary-reset-after-seconds", "3600"),
        ("x-codex-primary-window-minutes", "300"),
    ];
    // (headers, body, fallback, expected cooldown)
    type Case = (
        Vec<(&'static str, &'static str)>,
        Vec<u8>,
        Duration,
        Duration,
    );
    let cases: Vec<Case> = vec![
        (
            exhausted.to_vec(),
            usage_body.clone(),
            fallback,
            Duration::from_secs(3600),
        ),
        (
            vec![("retry-after", "9")],
            usage_body.clone(),
            fallback,
            Duration::from_secs(77),
        ),
        (
            vec![("retry-after", "9"), ("x-ratelimit-reset-tokens", "1m")],
            vec![],
            fallback,
            Duration::from_secs(9),
        ),
        (
            vec![("x-ratelimit-reset-tokens", "1m")],
            vec![],
            fallback,
            Duration::from_secs(60),
        ),
        (
            vec![("retry-after", "0")],
            vec![],
            fallback,
            Duration::from_secs(5),
        ),
        (vec![], vec![], Duration::ZERO, Duration::from_secs(1)),
        (
            vec![],
            vec![],
            Duration::from_secs(100_000),
            Duration::from_secs(7200),
        ),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(h, b, f, _)| rate_limit_cooldown(&headers(h), b, NOW, *f))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, _, _, d)| *d).collect();
    assert_eq!(got, want);
}

#[test]
fn rfc3339_timestamps() {
    let cases = [
        ("2023-11-14T22:13:20Z", Some(NOW)),
        ("2023-11-14T23:13:20+01:00", Some(NOW)),
        ("2023-11-14T22:13:20.123456Z", Some(NOW)),
        ("1970-01-01T00:00:00Z", Some(0)),
        ("2023-11-14 22:13:20Z", Some(NOW)),
        ("2023-13-14T22:13:20Z", None),
        ("2023-11-14T22:13:20", None),
        ("yesterday", None),
    ];
    let got: Vec<_> = cases.iter().map(|(s, _)| parse_rfc3339(s)).collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}
