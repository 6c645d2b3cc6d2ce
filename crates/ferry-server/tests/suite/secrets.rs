//! No secret appears in logs, error bodies or debug output.

use ferry_testkit::upstream::{mount_sequence, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;

use super::common::*;

#[tokio::test]
async fn known_secrets_never_reach_logs_or_error_bodies() {
    let (logs, _guard) = capture_logs();
    let wrong_key = "sk-ant-wrong-client-key-0c1d2e3f4a5b";
    let upstream = start().await;
    // The upstream echoes the key it got, as OpenAI does for a bad key.
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {TEST_UPSTREAM_KEY}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
    );
    let echo_400 = format!(
        r#"{{"error":{{"message":"bad request for key={TEST_UPSTREAM_KEY}","code":"invalid_value"}}}}"#
    );
    let mock = mount_sequence(
        &upstream,
        vec![
            sse_response(sse(text_events("resp_ok", &["fine"], Usage::new(3, 1)))),
            status_response(400, &[], &echo_400),
            status_response(401, &[], &echo),
        ],
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts.push(account("second", &upstream.uri()));
    let config_debug = format!("{c:?}");
    let server = TestServer::start(c).await;

    let mut bodies = Vec::new();
    let ok = server.messages(&request("hello", true)).await;
    assert_eq!(ok.status(), 200);
    bodies.push(ok.text().await.unwrap());
    for _ in 0..2 {
        let resp = server.messages(&request("hello", false)).await;
        assert!(resp.status().is_client_error() || resp.status().is_server_error());
        bodies.push(resp.text().await.unwrap());
    }
    let wrong = server
        .client
        .post(server.url("/v1/messages"))
        .header("authorization", format!("Bearer {wrong_key}"))
        .body(serde_json::to_vec(&request("hello", false)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    bodies.push(wrong.text().await.unwrap());

    let usage = logs.wait_for("ferry::usage", 4).await;
    assert_eq!(usage.len(), 4);
    assert!(mock.count() >= 3);
    let log_text = logs.text();
    assert!(
        log_text.contains("ferry::upstream"),
        "the capture sees the upstream errors:\n{log_text}"
    );
    for secret in [TEST_CLIENT_KEY, TEST_UPSTREAM_KEY, wrong_key] {
        assert!(
            !log_text.contains(secret),
            "a secret leaked into the logs:\n{log_text}"
        );
        for b in &bodies {
            assert!(!b.contains(secret), "a secret leaked into a response: {b}");
        }
        assert!(
            !config_debug.contains(secret),
            "a secret leaked into Debug: {config_debug}"
        );
    }
}
