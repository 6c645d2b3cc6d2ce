//! The Codex backend's current rules through the gateway: a fake backend (wiremock) that
//! refuses what the real one refuses — an old client version, the plain request shape for
//! a Responses Lite model, a Lite request that still carries top-level tools or
//! instructions, hosted tools under Lite — and the shapes ferry sends it.

use ferry_accounts::{AccountConfig, ModelOverride, ModelOverrides, Secret};
use ferry_testkit::upstream::{CapturedRequest, mount_fn, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

const LITE_MODELS: &[&str] = &["gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna"];

fn refuse(message: &str) -> wiremock::ResponseTemplate {
    let body = json!({"error": {"type": "invalid_request_error", "message": message}});
    status_response(400, &[], &body.to_string())
}

fn version_at_least(v: &str, min: &[u64]) -> bool {
    let parts: Vec<u64> = v.split('.').filter_map(|p| p.parse().ok()).collect();
    parts.as_slice() >= min
}

/// The backend's rules; `None` when the request passes.
fn backend_refusal(r: &CapturedRequest) -> Option<String> {
    let version = r.header("version").unwrap_or("");
    let ua_version = r
        .header("user-agent")
        .and_then(|ua| ua.split(' ').next())
        .and_then(|first| first.split_once('/'))
        .map_or("", |(_, v)| v);
    if version != ua_version || !version_at_least(version, &[0, 148, 0]) {
        return Some(format!(
            "This model requires a newer version of Codex (got {version:?}). Please upgrade."
        ));
    }
    let b = &r.body;
    if let Some(tier) = b.get("service_tier").and_then(Value::as_str)
        && !matches!(tier, "priority" | "default")
    {
        return Some(format!("Unsupported service_tier: {tier}"));
    }
    let model = b["model"].as_str().unwrap_or("");
    let lite_header = r.header("x-openai-internal-codex-responses-lite") == Some("true");
    let lite_model = LITE_MODELS.contains(&model) || model.starts_with("gpt-6");
    if lite_model && !lite_header {
        return Some("reasoning.context must be 'all_turns' for this model".into());
    }
    if !lite_header {
        return None;
    }
    if b.get("tools").is_some() || b.get("instructions").is_some() {
        return Some("Responses Lite takes no top-level tools or instructions".into());
    }
    if b["parallel_tool_calls"] != json!(false) || b["reasoning"]["context"] != json!("all_turns") {
        return Some("Responses Lite needs parallel_tool_calls false and all_turns".into());
    }
    if b.get("previous_response_id").is_some() {
        return Some("previous_response_id is not supported".into());
    }
    for item in b["input"].as_array().into_iter().flatten() {
        if item["type"] == json!("additional_tools") {
            let only_client = item["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|t| matches!(t["type"].as_str(), Some("function" | "custom")));
            if !only_client {
                return Some("X-OpenAI-Internal-Codex-Responses-Lite only supports function tools, custom tools, and client-executed tool search.".into());
            }
        }
        for part in item["content"].as_array().into_iter().flatten() {
            if part.get("detail").is_some() {
                return Some("image detail is not supported".into());
            }
        }
    }
    None
}

async fn codex_backend() -> (wiremock::MockServer, ferry_testkit::upstream::UpstreamMock) {
    let upstream = start().await;
    let mock = mount_fn(&upstream, |r, n| match backend_refusal(r) {
        Some(message) => refuse(&message),
        None => sse_response(sse(text_events(
            &format!("resp_{n}"),
            &["ok"],
            Usage::new(5, 1),
        ))),
    })
    .await;
    (upstream, mock)
}

fn oauth(base_url: &str, model: &str) -> AccountConfig {
    let mut a = AccountConfig::oauth("codex", Secret::new(TEST_UPSTREAM_KEY), None);
    a.base_url = Some(base_url.to_owned());
    a.chatgpt_account_id = Some("acct_123".to_owned());
    a.default_model = Some(model.to_owned());
    a
}

async fn server_for(account: AccountConfig, base_url: &str) -> TestServer {
    let mut c = config(base_url);
    c.accounts = vec![account];
    TestServer::start(c).await
}

#[tokio::test]
async fn lite_models_get_the_lite_shape_and_the_backend_accepts_it() {
    for model in ["gpt-5.6-sol", "gpt-5.6-luna", "gpt-6-astra"] {
        let (upstream, mock) = codex_backend().await;
        let server = server_for(oauth(&upstream.uri(), model), &upstream.uri()).await;
        for case in ["02_bash_turn1", "03_bash_turn2_tool_result"] {
            let resp = server.messages(&claude_code_request(case)).await;
            let status = resp.status();
            let text = resp.text().await.unwrap();
            assert_eq!(status, 200, "{model} {case}: {text}");
            assert!(text.contains("message_stop"), "{model} {case}: {text}");
        }
        let reqs = mock.requests();
        let r = &reqs[0];
        assert_eq!(
            r.header("x-openai-internal-codex-responses-lite"),
            Some("true")
        );
        let b = &r.body;
        assert_eq!(b["model"], json!(model));
        for absent in ["tools", "instructions", "previous_response_id"] {
            assert_eq!(b.get(absent), None, "{model}: {absent}");
        }
        assert_eq!(b["parallel_tool_calls"], json!(false));
        assert_eq!(b["reasoning"]["context"], json!("all_turns"));
        let input = b["input"].as_array().unwrap();
        assert_eq!(
            (&input[0]["type"], &input[0]["role"]),
            (&json!("additional_tools"), &json!("developer"))
        );
        let tools = input[0]["tools"].as_array().unwrap();
        assert!(
            tools.iter().any(|t| t["name"] == json!("Bash")),
            "{tools:?}"
        );
        // The system prompt travels as the developer message after the tools.
        assert_eq!(input[1]["role"], json!("developer"));
        let text = input[1]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("You are a Claude agent"), "{text}");
        // The second turn's history follows unchanged (a tool call and its output).
        assert!(reqs[1].input().len() > input.len());
    }
}

#[tokio::test]
async fn plain_models_keep_the_plain_shape() {
    let (upstream, mock) = codex_backend().await;
    let server = server_for(oauth(&upstream.uri(), "gpt-5.5"), &upstream.uri()).await;
    let resp = server.messages(&claude_code_request("02_bash_turn1")).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
    let r = &mock.requests()[0];
    assert_eq!(r.header("x-openai-internal-codex-responses-lite"), None);
    assert!(r.body["tools"].is_array());
    assert!(r.body["instructions"].is_string());
    assert_eq!(r.header("version"), Some(ferry_accounts::CODEX_CLI_VERSION));
}

#[tokio::test]
async fn the_fake_backend_refuses_the_plain_shape_for_a_lite_model() {
    // An account that switches Lite off for a Lite model: the backend refuses, and the
    // client gets the refusal as an Anthropic error (not a hang, not a 200).
    let (upstream, mock) = codex_backend().await;
    let mut account = oauth(&upstream.uri(), "gpt-5.6-terra");
    account.models = ModelOverrides::from_entries([(
        "gpt-5.6-*",
        ModelOverride {
            responses_lite: Some(false),
            ..ModelOverride::default()
        },
    )]);
    let server = server_for(account, &upstream.uri()).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(body["type"], json!("error"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("all_turns"),
        "{body}"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn codex_client_versions_follow_the_caller_or_the_configured_default() {
    let cases = [
        // A current Codex client is followed.
        (
            Some("codex_cli_rs/0.160.2 (Linux; x86_64)"),
            None,
            "0.160.2",
        ),
        // An old one (the backend refuses below 0.148.0) is presented as the default.
        (
            Some("codex_cli_rs/0.144.0 (Linux; x86_64)"),
            None,
            ferry_accounts::CODEX_CLI_VERSION,
        ),
        // Claude Code gets the configured version.
        (
            Some("claude-cli/2.1.332 (external, cli)"),
            Some("0.175.1"),
            "0.175.1",
        ),
        (None, None, ferry_accounts::CODEX_CLI_VERSION),
    ];
    for (ua, configured, want) in cases {
        let (upstream, mock) = codex_backend().await;
        let mut account = oauth(&upstream.uri(), "gpt-5.6-sol");
        account.codex_client_version = configured.map(str::to_owned);
        let server = server_for(account, &upstream.uri()).await;
        let mut req = server
            .client
            .post(server.url("/v1/messages"))
            .header("x-api-key", TEST_CLIENT_KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(request("hi", false).to_string());
        if let Some(ua) = ua {
            req = req.header("user-agent", ua);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(status, 200, "{ua:?}: {body}");
        assert_eq!(mock.requests()[0].header("version"), Some(want), "{ua:?}");
    }
}

#[test]
fn a_configured_version_the_backend_refuses_is_a_config_error() {
    let mut account = oauth("https://chatgpt.com/backend-api/codex", "gpt-5.6-sol");
    account.access_token = Some(Secret::new("t"));
    account.codex_client_version = Some("0.144.0".into());
    let problems = account.validate();
    assert!(
        problems.iter().any(|p| p.to_string().contains("0.148.0")),
        "{problems:?}"
    );
    account.codex_client_version = Some("latest".into());
    assert!(!account.validate().is_empty());
    account.codex_client_version = Some("0.171.0".into());
    assert!(account.validate().is_empty());
}

#[tokio::test]
async fn web_search_under_lite_is_a_clear_error_before_the_backend() {
    let (upstream, mock) = codex_backend().await;
    let server = server_for(oauth(&upstream.uri(), "gpt-5.6-sol"), &upstream.uri()).await;
    let mut r = request("search the web for ferry", false);
    r["tools"] = json!([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]);
    let resp = server.messages(&r).await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(
        body["error"]["type"],
        json!("invalid_request_error"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("web_search") && message.contains("gpt-5.6-sol"),
        "{message}"
    );
    assert_eq!(mock.requests().len(), 0);
    // The same request on a plain model reaches the backend with its hosted tool.
    let (upstream, mock) = codex_backend().await;
    let server = server_for(oauth(&upstream.uri(), "gpt-5.5"), &upstream.uri()).await;
    let resp = server.messages(&r).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].body["tools"][0]["type"],
        json!("web_search")
    );
}

#[tokio::test]
async fn fast_mode_on_the_codex_backend_is_priority_within_the_account_policy() {
    let mut got = Vec::new();
    for policy in [
        ferry_accounts::ServiceTierPolicy::Pass,
        ferry_accounts::ServiceTierPolicy::Filter,
        ferry_accounts::ServiceTierPolicy::Block,
    ] {
        for (model, speed) in [("claude-opus-4-8", true), ("claude-opus-4-8-fast", false)] {
            let (upstream, mock) = codex_backend().await;
            let mut account = oauth(&upstream.uri(), "gpt-5.5");
            account.service_tier_policy = policy;
            let server = server_for(account, &upstream.uri()).await;
            let mut body = request("hi", false);
            body["model"] = json!(model);
            if speed {
                body["speed"] = json!("fast");
            }
            let req = server
                .post("/v1/messages")
                .header("content-type", "application/json")
                .header("anthropic-beta", "fast-mode-2026-02-01");
            let resp = req
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let _ = resp.bytes().await.unwrap();
            let sent = mock
                .requests()
                .first()
                .map(|r| r.body.get("service_tier").cloned());
            got.push((status, sent));
        }
    }
    let priority = Some(Some(json!("priority")));
    assert_eq!(
        got,
        vec![
            // pass: the backend's name for fast mode, accepted (never `fast`).
            (200, priority.clone()),
            (200, priority),
            // filter: the field is removed, the request runs on the standard tier.
            (200, Some(None)),
            (200, Some(None)),
            // block: refused before the backend.
            (403, None),
            (403, None),
        ]
    );
}
