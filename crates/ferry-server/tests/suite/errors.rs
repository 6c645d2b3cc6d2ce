//! Upstream errors before and after the first byte: statuses, failed and incomplete
//! responses, cut streams.

use ferry_testkit::upstream::{
    mount_sequence, mount_sse_once, mount_status, sse_response, start, status_response,
};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

async fn answer_for(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
    stream: bool,
) -> (u16, Option<String>, Value, usize) {
    let upstream = start().await;
    let mock = mount_status(&upstream, status, headers, body).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", stream)).await;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(resp.headers().contains_key("request-id"));
    (status, retry_after, json_body(resp).await, mock.count())
}

#[tokio::test]
async fn request_errors_keep_the_upstream_status_and_message() {
    let got = answer_for(
        404,
        &[],
        r#"{"error":{"message":"The model `gpt-x` does not exist"}}"#,
        false,
    )
    .await;
    assert_eq!(
        got,
        (
            404,
            None,
            error_body("not_found_error", "The model `gpt-x` does not exist"),
            1
        )
    );
}

#[tokio::test]
async fn account_errors_map_after_failover_is_exhausted() {
    let got = answer_for(500, &[], r#"{"error":{"message":"boom"}}"#, true).await;
    assert_eq!(
        got,
        (
            502,
            None,
            error_body("api_error", "upstream temporarily unavailable"),
            1
        )
    );
    let got = answer_for(
        429,
        &[("retry-after", "7")],
        r#"{"error":{"message":"Rate limit reached"}}"#,
        false,
    )
    .await;
    assert_eq!(
        got,
        (
            429,
            Some("7".into()),
            error_body("rate_limit_error", "upstream rate limit exceeded"),
            1
        )
    );
    let got = answer_for(529, &[], r#"{"error":{"message":"overloaded"}}"#, false).await;
    assert_eq!(
        got,
        (
            529,
            None,
            error_body("overloaded_error", "upstream overloaded"),
            1
        )
    );
}

#[tokio::test]
async fn a_rate_limited_account_is_not_called_again_until_it_resets() {
    let upstream = start().await;
    let mock = mount_status(
        &upstream,
        429,
        &[("retry-after", "30")],
        r#"{"error":{"message":"slow down"}}"#,
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    assert_eq!(server.messages(&request("hi", true)).await.status(), 429);
    let second = server.messages(&request("hi", true)).await;
    assert_eq!(second.status(), 429);
    let after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&after), "retry-after {after}");
    assert_eq!(
        json_body(second).await,
        error_body(
            "rate_limit_error",
            "every upstream account is rate limited; retry later"
        )
    );
    assert_eq!(mock.count(), 1);
    assert_eq!(
        server
            .metric("ferry_account_available{account=\"primary\"}")
            .await,
        0.0
    );
    let ready = server
        .client
        .get(server.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn upstream_messages_are_sanitised() {
    let body = format!(
        r#"{{"error":{{"message":"Bad value: key {TEST_UPSTREAM_KEY} see https://x.example/v1?token=abc&key=def","code":"invalid_value"}}}}"#
    );
    let (status, _, got, _) = answer_for(400, &[], &body, true).await;
    assert_eq!(status, 400);
    let msg = got["error"]["message"].as_str().unwrap();
    assert!(!msg.contains(TEST_UPSTREAM_KEY), "{msg}");
    assert!(!msg.contains("token=abc"), "{msg}");
    assert!(msg.starts_with("Bad value: key sk-***"), "{msg}");
}

#[tokio::test]
async fn a_failed_response_before_output_is_a_clean_json_error() {
    for (code, status, kind) in [
        ("invalid_prompt", 400, "invalid_request_error"),
        ("server_error", 502, "api_error"),
    ] {
        let upstream = start().await;
        let _m = mount_sse_once(
            &upstream,
            sse(vec![
                ev_created("resp_f"),
                ev_failed("resp_f", code, "it failed"),
            ]),
        )
        .await;
        let server = TestServer::start(config(&upstream.uri())).await;
        let resp = server.messages(&request("hi", true)).await;
        assert_eq!(resp.status().as_u16(), status, "{code}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(
            json_body(resp).await,
            error_body(kind, "it failed"),
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_failure_after_output_ends_the_stream_with_an_error_event() {
    let upstream = start().await;
    let evs = vec![
        ev_created("resp_f"),
        ev_message_added(0, "msg_1"),
        ev_text_delta(0, "msg_1", "partial"),
        ev_failed("resp_f", "server_error", "the model crashed"),
    ];
    let mock = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(streamed_text(&events), "partial");
    let last = events.last().unwrap();
    assert_eq!(last.data, error_body("api_error", "the model crashed"));
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn incomplete_responses_stop_with_max_tokens() {
    let upstream = start().await;
    let evs = vec![
        ev_created("resp_i"),
        ev_message_added(0, "msg_1"),
        ev_text_delta(0, "msg_1", "trunc"),
        ev_incomplete("resp_i", "max_output_tokens", Usage::new(5, 3)),
    ];
    let _m = ferry_testkit::upstream::mount_sse(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let delta = events.iter().find(|e| e.name == "message_delta").unwrap();
    assert_eq!(delta.data["delta"]["stop_reason"], json!("max_tokens"));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    let body = json_body(server.messages(&request("hi", false)).await).await;
    assert_eq!(body["stop_reason"], json!("max_tokens"));
    assert_eq!(body["content"], json!([{"type": "text", "text": "trunc"}]));
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_never_a_bare_close() {
    let upstream = start().await;
    let evs = vec![
        ev_created("resp_c"),
        ev_message_added(0, "msg_1"),
        ev_text_delta(0, "msg_1", "half"),
    ];
    let _m = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "half");
    let last = events.last().unwrap();
    assert_eq!(last.name, "error");
    assert_eq!(last.data["error"]["type"], json!("api_error"));
}

#[tokio::test]
async fn a_stream_cut_before_output_is_a_json_error() {
    let upstream = start().await;
    let mock = mount_sse_once(&upstream, sse(vec![ev_created("resp_c")])).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(
        json_body(resp).await,
        error_body("api_error", "upstream stream ended before a terminal event")
    );
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn events_without_event_lines_are_understood() {
    let upstream = start().await;
    let _m = mount_sse_once(
        &upstream,
        sse_data_only(text_events("resp_d", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "ok");
}

#[tokio::test]
async fn unknown_upstream_events_are_skipped_and_counted() {
    let upstream = start().await;
    let mut evs = text_events("resp_u", &["o", "k"], Usage::new(1, 1));
    evs.insert(2, json!({"type": "response.future_thing", "x": 1}));
    evs.insert(5, json!({"type": "keepalive"}));
    let _m = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let events = parse_sse(
        &server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&events), "ok");
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    assert_eq!(
        server.metric("ferry_upstream_unknown_events_total").await,
        2.0
    );
}

/// A context overflow in every form an upstream or a relay reports it reaches the client as
/// the Anthropic API's own 400 `prompt is too long: N tokens > M maximum` (what Claude Code
/// compacts on), streamed or not, with the upstream's figures when it states them.
#[tokio::test]
async fn a_context_overflow_in_any_form_is_prompt_too_long() {
    let openai = "This model's maximum context length is 400000 tokens. However, your messages resulted in 412345 tokens.";
    let plain = "Your input exceeds the context window of this model. Please adjust your input and try again.";
    // (form, upstream status, upstream body, the figures the client must see when stated)
    type Case = (&'static str, u16, String, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (
            "HTTP 400 body",
            400,
            json!({"error": {"message": plain, "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded"}}).to_string(),
            None,
        ),
        (
            "HTTP 400 body with figures",
            400,
            json!({"error": {"message": openai, "type": "invalid_request_error", "code": "context_length_exceeded"}}).to_string(),
            Some((412_345, 400_000)),
        ),
        (
            "a relay's top-level error at 413",
            413,
            json!({"error": {"message": "context_length_exceeded: input is too long", "type": "upstream_error"}}).to_string(),
            None,
        ),
        (
            "response.failed",
            200,
            sse(vec![ev_created("resp_o"), ev_failed("resp_o", "context_length_exceeded", plain)]),
            None,
        ),
        (
            "an error event",
            200,
            sse(vec![ev_error("context_length_exceeded", openai)]),
            Some((412_345, 400_000)),
        ),
        (
            "an error event with a nested error object",
            200,
            sse(vec![json!({"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded", "message": plain}})]),
            None,
        ),
    ];
    for (form, status, body, figures) in cases {
        for stream in [true, false] {
            let upstream = start().await;
            let headers: &[(&str, &str)] = if status == 200 {
                &[("content-type", "text/event-stream")]
            } else {
                &[]
            };
            let mock = mount_status(&upstream, status, headers, &body).await;
            let server = TestServer::start(config(&upstream.uri())).await;
            let resp = server
                .messages(&request("a long conversation", stream))
                .await;
            assert_eq!(resp.status().as_u16(), 400, "{form}, stream {stream}");
            let got = json_body(resp).await;
            let (prompt, maximum) = prompt_too_long_figures(&got);
            if let Some(expected) = figures {
                assert_eq!((prompt, maximum), expected, "{form}: {got}");
            }
            // A request's fault: no retry, no failover.
            assert_eq!(mock.count(), 1, "{form}, stream {stream}");
        }
    }
}

/// A failed response before any output: a policy refusal is the request's fault (403
/// `permission_error`, one upstream request), an image error a 400 `invalid_request_error`,
/// the subscription-sharing limit an account limit (429 `rate_limit_error`), never `api_error`.
#[tokio::test]
async fn failed_response_codes_keep_their_meaning() {
    for (code, status, kind) in [
        ("cyber_policy", 403, "permission_error"),
        ("bio_policy", 403, "permission_error"),
        ("invalid_base64_image", 400, "invalid_request_error"),
        (
            "subscription_sharing_usage_limit_exceeded",
            429,
            "rate_limit_error",
        ),
    ] {
        let upstream = start().await;
        let mock = mount_sse_once(
            &upstream,
            sse(vec![
                ev_created("resp_c"),
                ev_failed("resp_c", code, "refused"),
            ]),
        )
        .await;
        let server = TestServer::start(config(&upstream.uri())).await;
        let resp = server.messages(&request("hi", true)).await;
        assert_eq!(resp.status().as_u16(), status, "{code}");
        assert_eq!(json_body(resp).await, error_body(kind, "refused"), "{code}");
        if status != 429 {
            assert_eq!(mock.count(), 1, "{code}: no retry");
        }
    }
}

/// A turn that replays thinking signed under another account (after a failover or a key
/// rotation).
fn with_foreign_thinking() -> Value {
    let mut r = request("hi", false);
    r["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "let me think", "signature": "gAAAAB-other-account"},
            {"type": "text", "text": "hello"}
        ]},
        {"role": "user", "content": "and now?"}
    ]);
    r
}

fn encrypted_rejected() -> wiremock::ResponseTemplate {
    status_response(
        400,
        &[],
        r#"{"error":{"message":"The encrypted content gAAA...DQ== could not be verified.","type":"invalid_request_error","param":null,"code":"invalid_encrypted_content"}}"#,
    )
}

fn has_reasoning(input: &[Value]) -> bool {
    input.iter().any(|i| i["type"] == "reasoning")
}

/// Encrypted reasoning the upstream rejects (`invalid_encrypted_content`) is left out and the
/// turn sent once more on the same account: the client gets its answer.
#[tokio::test]
async fn rejected_encrypted_reasoning_is_retried_once_without_it() {
    let upstream = start().await;
    let ok = sse_response(sse(text_events("resp_2", &["ok"], Usage::new(2, 1))));
    let mock = mount_sequence(&upstream, vec![encrypted_rejected(), ok]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&with_foreign_thinking()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("x-ferry-dropped")
            .and_then(|v| v.to_str().ok()),
        Some("rejected_reasoning")
    );
    let got = json_body(resp).await;
    assert_eq!(got["content"][0]["text"], json!("ok"), "{got}");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        has_reasoning(&reqs[0].input()),
        "{:#}",
        reqs[0].body["input"]
    );
    assert!(
        !has_reasoning(&reqs[1].input()),
        "{:#}",
        reqs[1].body["input"]
    );
    // Everything else is replayed as it was.
    assert_eq!(reqs[1].input().len(), reqs[0].input().len() - 1);
    assert_eq!(
        server
            .metric("ferry_dropped_fields_total{kind=\"rejected_reasoning\"}")
            .await,
        1.0
    );
}

/// A second rejection, without reasoning items, is the client's 400: no loop, no failover.
#[tokio::test]
async fn a_second_encrypted_content_rejection_is_a_clear_400() {
    let upstream = start().await;
    let mock = mount_sequence(
        &upstream,
        vec![
            encrypted_rejected(),
            encrypted_rejected(),
            encrypted_rejected(),
        ],
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&with_foreign_thinking()).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        json_body(resp).await,
        error_body(
            "invalid_request_error",
            "The encrypted content gAAA...DQ== could not be verified."
        )
    );
    assert_eq!(mock.count(), 2, "one retry, then the error");
    // A request without reasoning items is not retried at all.
    let upstream = start().await;
    let mock = mount_sequence(&upstream, vec![encrypted_rejected(), encrypted_rejected()]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(mock.count(), 1);
}

/// Every row of the one code table, through the server, in an HTTP 400 body and in a
/// failed stream before any output: the status and type the client gets, and how many
/// upstream requests it took (one: a single account, no retry storm). Written out row by
/// row; a new table row fails here until it has its expected answer.
#[tokio::test]
async fn every_upstream_code_reaches_the_client_as_the_table_says() {
    const LIMIT: (u16, &str) = (429, "rate_limit_error");
    const BUSY: (u16, &str) = (529, "overloaded_error");
    const SERVER: (u16, &str) = (502, "api_error");
    const POLICY: (u16, &str) = (403, "permission_error");
    const BAD: (u16, &str) = (400, "invalid_request_error");
    let expected = [
        ("rate_limit_exceeded", LIMIT),
        ("rate_limit_error", LIMIT),
        ("insufficient_quota", LIMIT),
        ("usage_limit_reached", LIMIT),
        ("usage_not_included", LIMIT),
        ("subscription_sharing_usage_limit_exceeded", LIMIT),
        ("server_is_overloaded", BUSY),
        ("overloaded", BUSY),
        ("overloaded_error", BUSY),
        ("slow_down", BUSY),
        ("server_error", SERVER),
        ("internal_error", SERVER),
        ("internal_server_error", SERVER),
        ("vector_store_timeout", SERVER),
        ("cyber_policy", POLICY),
        ("cyber_policy_violation", POLICY),
        ("bio_policy", POLICY),
        ("data_residency_mismatch", POLICY),
        ("context_length_exceeded", BAD),
        ("context_too_large", BAD),
        ("context_window_exceeded", BAD),
        ("previous_response_not_found", BAD),
        ("invalid_encrypted_content", BAD),
        ("invalid_prompt", BAD),
        ("invalid_request_error", BAD),
        ("invalid_value", BAD),
        ("unsupported_parameter", BAD),
        ("string_above_max_length", BAD),
        ("invalid_image", BAD),
        ("invalid_image_format", BAD),
        ("invalid_base64_image", BAD),
        ("invalid_image_url", BAD),
        ("invalid_image_mode", BAD),
        ("image_too_large", BAD),
        ("image_too_small", BAD),
        ("image_parse_error", BAD),
        ("image_content_policy_violation", BAD),
        ("image_file_too_large", BAD),
        ("image_file_not_found", BAD),
        ("unsupported_image_media_type", BAD),
        ("empty_image_file", BAD),
        ("failed_to_download_image", BAD),
    ];
    let listed: Vec<&str> = ferry_apicompat::convert::UPSTREAM_ERROR_CODES
        .iter()
        .map(|(c, _)| *c)
        .collect();
    let tested: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
    assert_eq!(tested, listed, "every table row is tested, in table order");
    for (code, (status, kind)) in expected {
        let body = json!({"error": {"code": code, "message": "refused"}}).to_string();
        let (got, _, answer, calls) = answer_for(400, &[], &body, false).await;
        assert_eq!(
            (got, answer["error"]["type"].as_str(), calls),
            (status, Some(kind), 1),
            "{code} at HTTP 400: {answer}"
        );

        let upstream = start().await;
        let mock = mount_sse_once(
            &upstream,
            sse(vec![
                ev_created("resp_c"),
                ev_failed("resp_c", code, "refused"),
            ]),
        )
        .await;
        let server = TestServer::start(config(&upstream.uri())).await;
        let resp = server.messages(&request("hi", true)).await;
        let got = resp.status().as_u16();
        let answer = json_body(resp).await;
        assert_eq!(
            (got, answer["error"]["type"].as_str(), mock.count()),
            (status, Some(kind), 1),
            "{code} in a failed stream: {answer}"
        );
    }
}

/// Encrypted reasoning rejected inside the stream (a `response.failed` or an `error` event
/// before any output, as relays and the Codex backend send it) gets the same single retry
/// without the reasoning items as a 400 does: the client gets its answer.
#[tokio::test]
async fn encrypted_reasoning_rejected_in_the_stream_is_retried_once_without_it() {
    for failed in [
        ev_failed(
            "resp_1",
            "invalid_encrypted_content",
            "The encrypted content could not be verified.",
        ),
        ev_error(
            "invalid_request_error",
            "The encrypted content gAAA==. could not be verified.",
        ),
    ] {
        let upstream = start().await;
        let rejected = sse_response(sse(vec![ev_created("resp_1"), failed.clone()]));
        let ok = sse_response(sse(text_events("resp_2", &["ok"], Usage::new(2, 1))));
        let mock = mount_sequence(&upstream, vec![rejected, ok]).await;
        let server = TestServer::start(config(&upstream.uri())).await;
        let mut req = with_foreign_thinking();
        req["stream"] = json!(true);
        let resp = server.messages(&req).await;
        assert_eq!(resp.status().as_u16(), 200, "{failed}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("\"ok\""), "{failed}: {text}");
        let reqs = mock.requests();
        assert_eq!(reqs.len(), 2, "{failed}");
        assert!(has_reasoning(&reqs[0].input()));
        assert!(!has_reasoning(&reqs[1].input()));
    }
    // Without reasoning to leave out, the rejection is the client's 400 after one request.
    let upstream = start().await;
    let mock = mount_sse_once(
        &upstream,
        sse(vec![
            ev_created("resp_1"),
            ev_failed(
                "resp_1",
                "invalid_encrypted_content",
                "could not be verified",
            ),
        ]),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(mock.count(), 1);
}
