//! ChatGPT/Codex OAuth accounts through the gateway: Codex body and headers, turn state,
//! and a token refresh after a 401.

use ferry_accounts::{AccountConfig, AccountKind, Secret};
use ferry_testkit::upstream::{mount_sequence, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::common::*;

fn oauth_account(
    base_url: &str,
    refresh: Option<&str>,
    token_url: Option<String>,
) -> AccountConfig {
    let mut a = AccountConfig::oauth(
        "codex",
        Secret::new(TEST_UPSTREAM_KEY),
        refresh.map(Secret::new),
    );
    a.base_url = Some(base_url.to_owned());
    a.chatgpt_account_id = Some("acct_123".to_owned());
    a.default_model = Some("gpt-5.1-codex".to_owned());
    a.token_url = token_url;
    a
}

#[tokio::test]
async fn oauth_requests_have_the_codex_shape_and_keep_the_turn_state() {
    let upstream = start().await;
    let first = sse_response(sse(text_events("resp_o1", &["one"], Usage::new(5, 1))))
        .insert_header("x-codex-turn-state", "ts-abc");
    let second = sse_response(sse(text_events("resp_o2", &["two"], Usage::new(6, 1))));
    let mock = mount_sequence(&upstream, vec![first, second]).await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![oauth_account(&upstream.uri(), None, None)];
    let server = TestServer::start(c).await;
    for case in ["02_bash_turn1", "03_bash_turn2_tool_result"] {
        let resp = server.messages(&claude_code_request(case)).await;
        assert_eq!(resp.status(), 200, "{case}");
        let _ = resp.bytes().await.unwrap();
    }
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(r.path, "/responses");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TEST_UPSTREAM_KEY}").as_str())
    );
    assert_eq!(r.header("chatgpt-account-id"), Some("acct_123"));
    assert_eq!(r.header("openai-beta"), Some("responses=experimental"));
    assert_eq!(r.header("originator"), Some("codex_cli_rs"));
    assert!(r.header("session_id").is_some());
    assert_eq!(r.header("session_id"), reqs[1].header("session_id"));
    let b = &r.body;
    assert_eq!(
        (&b["store"], &b["stream"], &b["model"]),
        (&json!(false), &json!(true), &json!("gpt-5.1-codex"))
    );
    for absent in [
        "prompt_cache_key",
        "max_output_tokens",
        "temperature",
        "previous_response_id",
    ] {
        assert_eq!(b.get(absent), None, "{absent}");
    }
    assert!(b["instructions"].is_string());
    // The second turn carries the stored turn state and the full history.
    assert_eq!(reqs[1].header("x-codex-turn-state"), Some("ts-abc"));
    assert_eq!(reqs[1].body.get("previous_response_id"), None);
    assert!(reqs[1].input().len() > r.input().len());
    let _ = AccountKind::Oauth;
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_retries_once() {
    let upstream = start().await;
    let new_token = "oauth-access-after-refresh-5e6f";
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                json!({"access_token": new_token, "refresh_token": "rt-2", "expires_in": 3600})
                    .to_string(),
                "application/json",
            ),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let mock = mount_sequence(
        &upstream,
        vec![
            status_response(
                401,
                &[],
                r#"{"error":{"message":"token expired","code":"token_expired"}}"#,
            ),
            sse_response(sse(text_events("resp_r", &["refreshed"], Usage::new(1, 1)))),
        ],
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![oauth_account(
        &upstream.uri(),
        Some("rt-1"),
        Some(format!("{}/oauth/token", upstream.uri())),
    )];
    let server = TestServer::start(c).await;
    let body = json_body(server.messages(&request("hi", false)).await).await;
    assert_eq!(
        body["content"].as_array().unwrap().last().unwrap()["text"],
        json!("refreshed")
    );
    let auth: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| json!(r.header("authorization")))
        .collect();
    assert_eq!(
        auth,
        vec![
            json!(format!("Bearer {TEST_UPSTREAM_KEY}")),
            json!(format!("Bearer {new_token}"))
        ]
    );
}

/// A refresh that rotates the refresh token, then an upstream 400 that echoes both new
/// tokens: the client and the logs see neither. The rotated refresh token was never in the
/// config, so only redaction by value of the token the pool now holds can catch it.
#[tokio::test]
async fn a_rotated_refresh_token_echoed_by_the_upstream_is_redacted() {
    let (logs, _guard) = capture_logs();
    let upstream = start().await;
    let new_access = "oauth-access-rotated-77aa";
    let new_refresh = "rt-rotated-never-configured-3c4d";
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                json!({"access_token": new_access, "refresh_token": new_refresh, "expires_in": 3600})
                    .to_string(),
                "application/json",
            ),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let echo = format!("bad grant refresh={new_refresh} token:{new_access}");
    mount_sequence(
        &upstream,
        vec![
            status_response(
                401,
                &[],
                r#"{"error":{"message":"token expired","code":"token_expired"}}"#,
            ),
            status_response(
                400,
                &[],
                &json!({"error": {"message": echo, "type": "invalid_request_error"}}).to_string(),
            ),
        ],
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts = vec![oauth_account(
        &upstream.uri(),
        Some("rt-configured-0001"),
        Some(format!("{}/oauth/token", upstream.uri())),
    )];
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("bad grant refresh=[redacted] token:[redacted]"),
        "{text}"
    );
    logs.wait_for("ferry::usage", 1).await;
    let log = logs.text();
    assert!(
        !log.contains(new_refresh) && !log.contains(new_access),
        "{log}"
    );
}
