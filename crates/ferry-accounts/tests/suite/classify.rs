//! Table tests for failover classification (cases 30–36; the code table is
//! docs/conversion.md § Failures).

use std::time::Duration;

use ferry_accounts::{
    AccountKind, ClassifyContext, Cooldown, CooldownKind, Disposition, FailoverReason, PoolRetry,
    TransportFailure, classify, classify_stream_failure, classify_transport_error, classify_with,
};
use http::StatusCode;
use pretty_assertions::assert_eq;
use serde_json::json;

use super::support::headers;

const NOW: u64 = 1_700_000_000;

fn ctx() -> ClassifyContext {
    ClassifyContext {
        now_unix: NOW,
        ..ClassifyContext::default()
    }
}

fn oauth(retries: u32) -> ClassifyContext {
    ClassifyContext {
        kind: AccountKind::Oauth,
        has_refresh_token: true,
        same_account_retries: retries,
        ..ctx()
    }
}

fn pool(codes: &[u16], retries: u32) -> ClassifyContext {
    ClassifyContext {
        pool: Some(PoolRetry {
            status_codes: codes.to_vec(),
            count: 3,
        }),
        same_account_retries: retries,
        ..ctx()
    }
}

fn failover(cooldown: Cooldown, reason: FailoverReason) -> Disposition {
    Disposition::Failover { cooldown, reason }
}

fn cool(secs: u64, kind: CooldownKind) -> Cooldown {
    Cooldown::For {
        duration: Duration::from_secs(secs),
        kind,
    }
}

fn rl(secs: u64) -> Cooldown {
    cool(secs, CooldownKind::RateLimited)
}

fn err_body(code: &str, message: &str) -> Vec<u8> {
    json!({"error": {"code": code, "message": message, "type": "invalid_request_error"}})
        .to_string()
        .into_bytes()
}

struct Case {
    name: &'static str,
    ctx: ClassifyContext,
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    want: Disposition,
}

fn case(
    name: &'static str,
    ctx: ClassifyContext,
    status: u16,
    headers: &[(&'static str, &'static str)],
    body: impl Into<Vec<u8>>,
    want: Disposition,
) -> Case {
    Case {
        name,
        ctx,
        status,
        headers: headers.to_vec(),
        body: body.into(),
        want,
    }
}

#[test]
fn classify_table() {
    use CooldownKind::{Error, Overloaded};
    use FailoverReason as R;
    let usage_limit = json!({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 1234}}).to_string();
    let usage_limit_at =
        json!({"error": {"type": "usage_limit_reached", "resets_at": NOW + 100}}).to_string();
    let html = "<!DOCTYPE html><html><body>Access denied</body></html>";
    let forbidden = err_body("", "You are not allowed to sample from this model");
    let full_window = [
        ("x-codex-primary-used-percent", "100"),
        ("x-codex-primary-reset-after-seconds", "3600"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-secondary-used-percent", "40"),
        ("x-codex-secondary-reset-after-seconds", "500000"),
        ("x-codex-secondary-window-minutes", "10080"),
    ];
    let half_window = [
        ("x-codex-primary-used-percent", "50"),
        ("x-codex-primary-reset-after-seconds", "7200"),
        ("x-codex-primary-window-minutes", "300"),
    ];
    let cases = vec![
        // 429 cooldowns
        case(
            "429 no reset → 5 s fallback",
            ctx(),
            429,
            &[],
            "",
            failover(rl(5), R::RateLimited),
        ),
        case(
            "429 retry-after",
            ctx(),
            429,
            &[("retry-after", "20")],
            "",
            failover(rl(20), R::RateLimited),
        ),
        case(
            "429 x-ratelimit exhausted tokens",
            ctx(),
            429,
            &[
                ("x-ratelimit-remaining-requests", "10"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            "",
            failover(rl(360), R::RateLimited),
        ),
        case(
            "430 codex window at 100% blocks until its reset (case 30)",
            oauth(0),
            429,
            &full_window,
            "",
            failover(rl(3600), R::RateLimited),
        ),
        case(
            "429 codex window at 50% → short fallback (case 31)",
            oauth(0),
            429,
            &half_window,
            "",
            failover(rl(5), R::RateLimited),
        ),
        case(
            "429 usage_limit_reached resets_in_seconds",
            oauth(0),
            429,
            &[],
            usage_limit.clone(),
            failover(rl(1234), R::RateLimited),
        ),
        case(
            "429 usage_limit_reached resets_at",
            oauth(0),
            429,
            &[],
            usage_limit_at,
            failover(rl(100), R::RateLimited),
        ),
        case(
            "429 exhausted window beats retry-after",
            oauth(0),
            429,
            &[full_window[0], full_window[1], ("retry-after", "9")],
            "",
            failover(rl(3600), R::RateLimited),
        ),
        // overload and 5xx
        case(
            "529 → 30 s overload",
            ctx(),
            529,
            &[],
            "",
            failover(cool(30, Overloaded), R::Overloaded),
        ),
        case(
            "529 retry-after",
            ctx(),
            529,
            &[("retry-after", "7")],
            "",
            failover(cool(7, Overloaded), R::Overloaded),
        ),
        case(
            "500 → failover without penalty",
            ctx(),
            500,
            &[],
            "",
            failover(Cooldown::None, R::ServerError),
        ),
        case(
            "503 → failover without penalty",
            ctx(),
            503,
            &[],
            "upstream connect error",
            failover(Cooldown::None, R::ServerError),
        ),
        case(
            "503 overload text",
            ctx(),
            503,
            &[],
            err_body("", "Our servers are currently overloaded"),
            failover(Cooldown::None, R::Overloaded),
        ),
        // auth
        case(
            "401 api key → benched 30 s (back-off base), not disabled",
            ctx(),
            401,
            &[],
            err_body("invalid_api_key", "Incorrect API key"),
            failover(cool(30, CooldownKind::Error), R::Unauthorized),
        ),
        case(
            "third 401 in a row on an api key → 120 s",
            ClassifyContext {
                unauthorized_streak: 2,
                ..ctx()
            },
            401,
            &[],
            err_body("invalid_api_key", "Incorrect API key"),
            failover(cool(120, CooldownKind::Error), R::Unauthorized),
        ),
        case(
            "many 401s in a row on an api key → at most 10 min",
            ClassifyContext {
                unauthorized_streak: 40,
                ..ctx()
            },
            401,
            &[],
            err_body("invalid_api_key", "Incorrect API key"),
            failover(cool(600, CooldownKind::Error), R::Unauthorized),
        ),
        case(
            "401 oauth first → refresh and retry",
            oauth(0),
            401,
            &[],
            r#"{"detail":"Unauthorized"}"#,
            Disposition::RetrySameAccount {
                after: Duration::ZERO,
                reason: R::Unauthorized,
            },
        ),
        case(
            "401 oauth again → 10 min",
            oauth(1),
            401,
            &[],
            r#"{"detail":"Unauthorized"}"#,
            failover(cool(600, Error), R::Unauthorized),
        ),
        case(
            "401 oauth revoked → disabled",
            oauth(1),
            401,
            &[],
            err_body("token_revoked", "revoked"),
            failover(Cooldown::Disabled, R::Unauthorized),
        ),
        case(
            "401 oauth without refresh token → disabled",
            ClassifyContext {
                has_refresh_token: false,
                ..oauth(0)
            },
            401,
            &[],
            "",
            failover(Cooldown::Disabled, R::Unauthorized),
        ),
        case(
            "402 → disabled",
            ctx(),
            402,
            &[],
            r#"{"detail":{"code":"deactivated_workspace"}}"#,
            failover(Cooldown::Disabled, R::PaymentRequired),
        ),
        case(
            "403 HTML → no penalty (case 32)",
            ctx(),
            403,
            &[],
            html,
            failover(Cooldown::None, R::Forbidden),
        ),
        case(
            "403 text/html header → no penalty",
            ctx(),
            403,
            &[("content-type", "text/html; charset=utf-8")],
            "denied",
            failover(Cooldown::None, R::Forbidden),
        ),
        case(
            "403 first → 10 min (case 33)",
            ctx(),
            403,
            &[],
            forbidden.clone(),
            failover(cool(600, Error), R::Forbidden),
        ),
        case(
            "403 second → 10 min",
            ClassifyContext {
                recent_forbidden: 1,
                ..ctx()
            },
            403,
            &[],
            forbidden.clone(),
            failover(cool(600, Error), R::Forbidden),
        ),
        case(
            "403 third within 180 min → disabled",
            ClassifyContext {
                recent_forbidden: 2,
                ..ctx()
            },
            403,
            &[],
            forbidden.clone(),
            failover(Cooldown::Disabled, R::Forbidden),
        ),
        case(
            "405 → failover",
            ctx(),
            405,
            &[],
            "",
            failover(Cooldown::None, R::Other),
        ),
        case(
            "408 → failover",
            ctx(),
            408,
            &[],
            "",
            failover(Cooldown::None, R::Timeout),
        ),
        case(
            "413 → failover",
            ctx(),
            413,
            &[],
            "",
            failover(Cooldown::None, R::RequestTooLarge),
        ),
        // request-scoped: never fail over
        case(
            "400 context_length_exceeded (case 34)",
            ctx(),
            400,
            &[],
            err_body(
                "context_length_exceeded",
                "Your input exceeds the context window of this model.",
            ),
            Disposition::Fatal,
        ),
        case(
            "400 maximum context length text",
            ctx(),
            400,
            &[],
            err_body("", "This model's maximum context length is 400000 tokens."),
            Disposition::Fatal,
        ),
        case(
            "429 context window text is still fatal",
            ctx(),
            429,
            &[],
            err_body("", "input exceeds the context window"),
            Disposition::Fatal,
        ),
        case(
            "400 previous_response_not_found",
            ctx(),
            400,
            &[],
            err_body(
                "previous_response_not_found",
                "Previous response with id 'resp_1' not found.",
            ),
            Disposition::Fatal,
        ),
        case(
            "400 invalid_encrypted_content",
            ctx(),
            400,
            &[],
            err_body(
                "invalid_encrypted_content",
                "Encrypted content could not be decrypted",
            ),
            Disposition::Fatal,
        ),
        case(
            "403 cyber_policy",
            ctx(),
            403,
            &[],
            err_body("cyber_policy", "blocked"),
            Disposition::Fatal,
        ),
        case(
            "400 plain invalid request",
            ctx(),
            400,
            &[],
            err_body("invalid_value", "Invalid value for 'input'"),
            Disposition::Fatal,
        ),
        case(
            "404 not found (case 36)",
            ctx(),
            404,
            &[],
            err_body("", "Not found"),
            Disposition::Fatal,
        ),
        case(
            "200 is not an error",
            ctx(),
            200,
            &[],
            "",
            Disposition::Fatal,
        ),
        // transient processing errors
        case(
            "400 server_is_overloaded → failover (case 35)",
            ctx(),
            400,
            &[],
            err_body("server_is_overloaded", "overloaded"),
            failover(Cooldown::None, R::Overloaded),
        ),
        case(
            "400 processing error text",
            ctx(),
            400,
            &[],
            err_body(
                "",
                "An error occurred while processing your request. You can retry your request.",
            ),
            failover(Cooldown::None, R::Transient),
        ),
        case(
            "400 model at capacity",
            ctx(),
            400,
            &[],
            err_body(
                "",
                "Selected model is at capacity. Please try a different model.",
            ),
            failover(Cooldown::None, R::Transient),
        ),
        case(
            "404 processing error text is not transient",
            ctx(),
            404,
            &[],
            err_body("", "An error occurred while processing your request."),
            Disposition::Fatal,
        ),
        case(
            "400 slow_down code",
            ctx(),
            400,
            &[],
            err_body("slow_down", "slow down"),
            failover(Cooldown::None, R::Overloaded),
        ),
        // account state
        case(
            "400 organization disabled → disabled",
            ctx(),
            400,
            &[],
            err_body("", "This organization has been disabled."),
            failover(Cooldown::Disabled, R::AccountState),
        ),
        case(
            "400 identity verification → disabled",
            ctx(),
            400,
            &[],
            err_body("", "Identity verification is required to use this model"),
            failover(Cooldown::Disabled, R::AccountState),
        ),
        case(
            "400 model not supported for this account",
            oauth(0),
            400,
            &[],
            r#"{"detail":"The 'gpt-9' model is not supported when using Codex with a ChatGPT account."}"#,
            failover(Cooldown::None, R::ModelUnsupported),
        ),
        // pool mode
        case(
            "pool 400 overloaded → same account (case 35)",
            pool(&[401, 403, 429], 0),
            400,
            &[],
            err_body("server_is_overloaded", "overloaded"),
            Disposition::RetrySameAccount {
                after: Duration::from_millis(500),
                reason: R::Overloaded,
            },
        ),
        case(
            "pool 429 → same account",
            pool(&[401, 403, 429], 2),
            429,
            &[],
            "",
            Disposition::RetrySameAccount {
                after: Duration::from_millis(500),
                reason: R::RateLimited,
            },
        ),
        case(
            "pool 429 retries used up → reset cooldown",
            pool(&[401, 403, 429], 3),
            429,
            &[("retry-after", "12")],
            "",
            failover(rl(12), R::RateLimited),
        ),
        case(
            "pool 500 not listed → 30 s soft cooldown",
            pool(&[401, 403, 429], 0),
            500,
            &[],
            "",
            failover(cool(30, Overloaded), R::ServerError),
        ),
        case(
            "pool 401 exhausted → 10 min, never disabled",
            pool(&[401], 3),
            401,
            &[],
            "",
            failover(cool(600, Error), R::Unauthorized),
        ),
        case(
            "pool empty list → no status retries",
            pool(&[], 0),
            429,
            &[],
            "",
            failover(rl(5), R::RateLimited),
        ),
        case(
            "pool 408 → 10 s soft cooldown",
            pool(&[], 0),
            408,
            &[],
            "",
            failover(cool(10, Error), R::Timeout),
        ),
        case(
            "pool 403 HTML still only soft",
            pool(&[], 0),
            403,
            &[],
            html,
            failover(cool(600, Error), R::Forbidden),
        ),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let status = StatusCode::from_u16(c.status).unwrap();
        let got = classify_with(&c.ctx, status, &headers(&c.headers), &c.body);
        if got != c.want {
            failures.push(format!("{}: got {got:?}, want {:?}", c.name, c.want));
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    assert!(cases.len() >= 50);
}

#[test]
fn classify_defaults_to_a_plain_api_key_account() {
    let d = classify(StatusCode::UNAUTHORIZED, &headers(&[]), b"");
    assert_eq!(
        d,
        failover(cool(30, CooldownKind::Error), FailoverReason::Unauthorized)
    );
    assert_eq!(d.reason().map(FailoverReason::as_str), Some("unauthorized"));
    assert_eq!(Disposition::Fatal.reason(), None);
}

#[test]
fn stream_failures_are_classified_by_code() {
    use ferry_testkit::{ev_error, ev_failed};
    let cases = [
        (
            ev_failed("r1", "server_is_overloaded", "busy"),
            failover(Cooldown::None, FailoverReason::Overloaded),
        ),
        (
            ev_failed("r1", "rate_limit_exceeded", "slow"),
            failover(rl(5), FailoverReason::RateLimited),
        ),
        (
            ev_failed("r1", "server_error", "oops"),
            failover(Cooldown::None, FailoverReason::ServerError),
        ),
        (
            ev_error("server_error", "oops"),
            failover(Cooldown::None, FailoverReason::ServerError),
        ),
        (
            ev_failed("r1", "context_length_exceeded", "too long"),
            Disposition::Fatal,
        ),
        (
            ev_failed("r1", "cyber_policy", "blocked"),
            Disposition::Fatal,
        ),
        (ev_failed("r1", "invalid_prompt", "bad"), Disposition::Fatal),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(event, _)| classify_stream_failure(&ctx(), event.to_string().as_bytes()))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, d)| *d).collect();
    assert_eq!(got, want);
}

#[test]
fn transport_errors_fail_over_without_penalty() {
    for failure in [TransportFailure::Connect, TransportFailure::HeaderTimeout] {
        assert_eq!(
            classify_transport_error(failure),
            failover(Cooldown::None, FailoverReason::Transport),
            "{failure:?}"
        );
    }
}

#[test]
fn reason_labels_are_stable() {
    use FailoverReason as R;
    let labels: Vec<_> = [
        R::RateLimited,
        R::Overloaded,
        R::Unauthorized,
        R::PaymentRequired,
        R::Forbidden,
        R::Timeout,
        R::ServerError,
        R::ModelUnsupported,
        R::AccountState,
        R::RequestTooLarge,
        R::Transient,
        R::Other,
        R::Transport,
        R::Stream,
        R::TokenRefresh,
    ]
    .iter()
    .map(|r| r.as_str())
    .collect();
    assert_eq!(
        labels,
        [
            "rate_limited",
            "overloaded",
            "unauthorized",
            "payment_required",
            "forbidden",
            "timeout",
            "server_error",
            "model_unsupported",
            "account_state",
            "request_too_large",
            "transient",
            "other",
            "transport",
            "stream",
            "token_refresh"
        ]
    );
}

/// Every row of the one code table (`ferry_apicompat::convert::UPSTREAM_ERROR_CODES`), in an
/// HTTP 400 body and in a failed stream, with its disposition written out: account limits
/// cool the account down as a 429 would and fail over, overload and server errors fail over
/// without a penalty, every request fault is fatal (no failover, no retry storm). A new row
/// fails here until it is given its expected disposition.
#[test]
fn every_table_code_has_its_disposition_at_http_400_and_in_a_stream() {
    use ferry_testkit::ev_failed;
    let limit = failover(rl(5), FailoverReason::RateLimited);
    let busy = failover(Cooldown::None, FailoverReason::Overloaded);
    let server = failover(Cooldown::None, FailoverReason::ServerError);
    let fatal = Disposition::Fatal;
    let expected = [
        ("rate_limit_exceeded", limit),
        ("rate_limit_error", limit),
        ("insufficient_quota", limit),
        ("usage_limit_reached", limit),
        ("usage_not_included", limit),
        ("subscription_sharing_usage_limit_exceeded", limit),
        ("server_is_overloaded", busy),
        ("overloaded", busy),
        ("overloaded_error", busy),
        ("slow_down", busy),
        ("server_error", server),
        ("internal_error", server),
        ("internal_server_error", server),
        ("vector_store_timeout", server),
        ("cyber_policy", fatal),
        ("cyber_policy_violation", fatal),
        ("bio_policy", fatal),
        ("data_residency_mismatch", fatal),
        ("context_length_exceeded", fatal),
        ("context_too_large", fatal),
        ("context_window_exceeded", fatal),
        ("previous_response_not_found", fatal),
        ("invalid_encrypted_content", fatal),
        ("invalid_prompt", fatal),
        ("invalid_request_error", fatal),
        ("invalid_value", fatal),
        ("unsupported_parameter", fatal),
        ("string_above_max_length", fatal),
        ("invalid_image", fatal),
        ("invalid_image_format", fatal),
        ("invalid_base64_image", fatal),
        ("invalid_image_url", fatal),
        ("invalid_image_mode", fatal),
        ("image_too_large", fatal),
        ("image_too_small", fatal),
        ("image_parse_error", fatal),
        ("image_content_policy_violation", fatal),
        ("image_file_too_large", fatal),
        ("image_file_not_found", fatal),
        ("unsupported_image_media_type", fatal),
        ("empty_image_file", fatal),
        ("failed_to_download_image", fatal),
    ];
    let listed: Vec<&str> = ferry_apicompat::convert::UPSTREAM_ERROR_CODES
        .iter()
        .map(|(c, _)| *c)
        .collect();
    let tested: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    assert_eq!(tested, listed, "every table row is tested, in table order");
    for (code, want) in expected {
        // The message says nothing, so the code alone decides.
        let body = json!({"error": {"code": code, "message": "m"}}).to_string();
        let http = classify_with(
            &ctx(),
            StatusCode::BAD_REQUEST,
            &headers(&[]),
            body.as_bytes(),
        );
        assert_eq!(http, want, "{code} at HTTP 400");
        let event = ev_failed("r1", code, "m").to_string();
        let stream = classify_stream_failure(&ctx(), event.as_bytes());
        assert_eq!(stream, want, "{code} in a failed stream");
    }
}

/// A typed failure is classified as the same failure read from its event JSON: every code
/// of the table, and messages that alone decide (overload wording, context overflow).
#[test]
fn a_typed_failure_classifies_like_its_event() {
    use ferry_apicompat::convert::{FailureKind, UpstreamFailure};
    use ferry_testkit::ev_failed;
    let mut cases: Vec<(Option<&str>, &str)> = ferry_apicompat::convert::UPSTREAM_ERROR_CODES
        .iter()
        .map(|(c, _)| (Some(*c), "m"))
        .collect();
    cases.push((None, "The server is overloaded, try again"));
    cases.push((
        Some("weird"),
        "Your input exceeds the context window of this model.",
    ));
    cases.push((Some("server_error"), "cyber_policy refusal"));
    for (code, message) in cases {
        let typed = UpstreamFailure::new(FailureKind::Failed, code.map(str::to_owned), message);
        let event = ev_failed("r1", code.unwrap_or(""), message).to_string();
        assert_eq!(
            ferry_accounts::classify_failure(&ctx(), &typed),
            classify_stream_failure(&ctx(), event.as_bytes()),
            "{code:?} {message}"
        );
    }
}
