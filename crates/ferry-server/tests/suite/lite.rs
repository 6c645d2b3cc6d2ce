//! The Codex backend's current rules through the gateway: a fake backend (wiremock, which
//! records what ferry sends) and the simulated upstream (`ferry-sim` on a
//! `/backend-api/codex` path) both refuse what the real one refuses — an old client
//! version, the plain request shape for a Responses Lite model, a Lite request that still
//! carries top-level tools or instructions, hosted tools under Lite — and the shapes ferry
//! sends them.

use ferry_accounts::{AccountConfig, ModelOverride, ModelOverrides, Secret};
use ferry_testkit::upstream::{CapturedRequest, mount_fn, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn refuse(message: &str) -> wiremock::ResponseTemplate {
    let body = json!({"error": {"type": "invalid_request_error", "message": message}});
    status_response(400, &[], &body.to_string())
}

/// The backend's rules (the simulator's copy of them, `ferry_sim::codex_refusal`); `None`
/// when the request passes.
fn backend_refusal(r: &CapturedRequest) -> Option<String> {
    ferry_sim::codex_refusal(|name| r.header(name).map(str::to_owned), &r.body)
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

/// The simulated upstream, started on loopback with its Codex backend path.
async fn sim_backend() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}/backend-api/codex",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    #[expect(
        clippy::disallowed_methods,
        reason = "the simulator serves for the test's length"
    )]
    tokio::spawn(ferry_sim::run_sim_upstream(
        listener,
        ferry_sim::SimOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (base, stop)
}

/// Against the simulated Codex backend: a Lite model completes a two-turn tool
/// conversation in the Lite shape (the simulator finds the tools in `additional_tools`
/// and calls one), a plain model in the plain shape; with Lite switched off for a Lite
/// model, or an old client version presented, the simulator refuses and the client gets
/// an Anthropic 400 with the backend's words.
#[tokio::test]
async fn the_simulated_codex_backend_serves_each_shape_and_refuses_the_wrong_one() {
    let (base, _stop) = sim_backend().await;
    let tool_turn = |prompt: &str| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": true,
            "system": "You are a coding agent.",
            "tools": [{"name": "Bash", "description": "Run a command",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                "required": ["command"]}}],
            "messages": [{"role": "user", "content": prompt}]})
    };
    for model in ["gpt-5.6-sol", "gpt-6-astra", "gpt-5.5"] {
        let server = server_for(oauth(&base, model), &base).await;
        let resp = server.messages(&tool_turn("[[tool:Bash:ls]]")).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{model}: {text}");
        assert!(text.contains(r#""name":"Bash""#), "{model}: {text}");
        assert!(
            text.contains(r#""stop_reason":"tool_use""#),
            "{model}: {text}"
        );
        let id = text
            .split(r#""type":"tool_use","id":""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a tool_use id in {text}"))
            .to_owned();
        let mut turn2 = tool_turn("[[tool:Bash:ls]]");
        turn2["messages"] = json!([
            {"role": "user", "content": "[[tool:Bash:ls]]"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "Bash",
                "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                "content": "Cargo.toml"}]}
        ]);
        let resp = server.messages(&turn2).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "{model} turn 2: {text}");
        let said = streamed_text(&parse_sse(&text));
        assert!(
            said.contains("The tool returned: Cargo.toml"),
            "{model} turn 2: {said}"
        );
    }

    let mut plain = oauth(&base, "gpt-5.6-terra");
    plain.models = ModelOverrides::from_entries([(
        "gpt-5.6-*",
        ModelOverride {
            responses_lite: Some(false),
            ..ModelOverride::default()
        },
    )]);
    let server = server_for(plain, &base).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 400);
    let body = json_body(resp).await;
    assert_eq!(
        body["error"]["type"],
        json!("invalid_request_error"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("all_turns"),
        "{body}"
    );

    // An old Codex client calling through ferry is presented as the current version, so
    // the backend does not refuse it.
    let server = server_for(oauth(&base, "gpt-5.6-sol"), &base).await;
    let resp = server
        .client
        .post(server.url("/v1/messages"))
        .header("x-api-key", TEST_CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .header("user-agent", "codex_cli_rs/0.144.0 (Linux; x86_64)")
        .body(request("hi", false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
