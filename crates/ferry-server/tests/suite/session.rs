//! Sessions through the gateway: prompt-cache keys, session ids, continuation and its
//! single full-replay retry, fast mode and the service-tier policy.

use ferry_testkit::upstream::{
    Invariants, mount_sequence, mount_sse, sse_response, start, status_response,
};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn turn2() -> Value {
    let mut r = request("hi", true);
    r["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and now?"}
    ]);
    r
}

fn ok(id: &str) -> wiremock::ResponseTemplate {
    sse_response(sse(text_events(id, &["ok"], Usage::new(2, 1))))
}

/// The test config with continuation switched on for its account.
fn continuing(base_url: &str) -> ferry_server::Config {
    let mut c = config(base_url);
    c.accounts[0].continuation = true;
    c
}

#[tokio::test]
async fn the_next_turn_continues_the_previous_response() {
    let upstream = start().await;
    let mock = mount_sequence(&upstream, vec![ok("resp_1"), ok("resp_2")]).await;
    let server = TestServer::start(continuing(&upstream.uri())).await;
    let _ = server
        .messages(&request("hi", true))
        .await
        .text()
        .await
        .unwrap();
    let _ = server.messages(&turn2()).await.text().await.unwrap();
    mock.set_invariants(Invariants {
        expect_prompt_cache_key: true,
        ..Invariants::default()
    });
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body.get("previous_response_id"), None);
    assert_eq!(reqs[1].body["previous_response_id"], json!("resp_1"));
    // The upstream continues only from stored responses: every turn asks it to store.
    assert_eq!(
        (&reqs[0].body["store"], &reqs[1].body["store"]),
        (&json!(true), &json!(true))
    );
    // Only the new turn travels; the upstream holds the rest.
    assert_eq!(reqs[1].input().len(), 1, "{:#}", reqs[1].body["input"]);
    assert_eq!(
        reqs[0].body["prompt_cache_key"],
        reqs[1].body["prompt_cache_key"]
    );
    let sid = |i: usize| reqs[i].header("session_id").map(str::to_owned);
    assert!(sid(0).is_some());
    assert_eq!(sid(0), sid(1));
}

#[tokio::test]
async fn a_lost_previous_response_is_replayed_once_in_full() {
    let upstream = start().await;
    let not_found = status_response(
        400,
        &[],
        r#"{"error":{"message":"Previous response with id 'resp_1' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}"#,
    );
    let mock = mount_sequence(&upstream, vec![ok("resp_1"), not_found, ok("resp_3")]).await;
    let server = TestServer::start(continuing(&upstream.uri())).await;
    let _ = server
        .messages(&request("hi", true))
        .await
        .text()
        .await
        .unwrap();
    let resp = server.messages(&turn2()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(streamed_text(&parse_sse(&resp.text().await.unwrap())), "ok");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].body["previous_response_id"], json!("resp_1"));
    assert_eq!(reqs[2].body.get("previous_response_id"), None);
    assert_eq!(reqs[2].input().len(), 3, "the full history is replayed");
    assert_eq!(
        reqs[1].body["prompt_cache_key"],
        reqs[2].body["prompt_cache_key"]
    );
    assert_eq!(
        server
            .metric("ferry_failovers_total{reason=\"rate_limited\"}")
            .await,
        0.0
    );
    let mut continuations = Vec::new();
    for result in ["sent", "not_found", "unsupported"] {
        let series = format!("ferry_continuations_total{{result=\"{result}\"}}");
        continuations.push(server.metric(&series).await);
    }
    assert_eq!(continuations, vec![1.0, 1.0, 0.0]);
}

#[tokio::test]
async fn continuation_off_sends_the_full_history() {
    let upstream = start().await;
    let mock = mount_sequence(&upstream, vec![ok("resp_1"), ok("resp_2")]).await;
    // Off is the default: nothing is stored at the provider.
    let server = TestServer::start(config(&upstream.uri())).await;
    let _ = server
        .messages(&request("hi", true))
        .await
        .text()
        .await
        .unwrap();
    let _ = server.messages(&turn2()).await.text().await.unwrap();
    let reqs = mock.requests();
    assert_eq!(reqs[1].body.get("previous_response_id"), None);
    assert_eq!(reqs[1].input().len(), 3);
    assert_eq!(
        (&reqs[0].body["store"], &reqs[1].body["store"]),
        (&json!(false), &json!(false))
    );
}

#[tokio::test]
async fn claude_code_turns_share_one_cache_key() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_cc", &["ok"], Usage::new(2, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    for case in ["02_bash_turn1", "03_bash_turn2_tool_result"] {
        let _ = server
            .messages(&claude_code_request(case))
            .await
            .text()
            .await
            .unwrap();
    }
    mock.set_invariants(Invariants {
        expect_prompt_cache_key: true,
        ..Invariants::default()
    });
    let reqs = mock.requests();
    let key = |i: usize| {
        reqs[i].body["prompt_cache_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(key(0).starts_with("anthropic-metadata-"), "{}", key(0));
    assert_eq!(key(0), key(1));
}

#[tokio::test]
async fn fast_mode_asks_for_priority_within_the_account_policy() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_f", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let mut policies = Vec::new();
    for policy in [
        ferry_accounts::ServiceTierPolicy::Pass,
        ferry_accounts::ServiceTierPolicy::Filter,
        ferry_accounts::ServiceTierPolicy::Block,
    ] {
        let mut c = config(&upstream.uri());
        c.accounts[0].service_tier_policy = policy;
        let server = TestServer::start(c).await;
        let mut body = request("hi", false);
        body["speed"] = json!("fast");
        let resp = server
            .post("/v1/messages")
            .header(
                "anthropic-beta",
                "claude-code-20250219, fast-mode-2026-02-01",
            )
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let kind = json_body(resp).await["error"]["type"]
            .as_str()
            .map(str::to_owned);
        policies.push((status, kind));
    }
    assert_eq!(
        policies,
        vec![
            (200, None),
            (200, None),
            (403, Some("permission_error".to_owned()))
        ]
    );
    let tiers: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| r.body.get("service_tier").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(tiers, vec![json!("priority"), Value::Null]);
}

/// Two Claude Code turns mapped to `model` on the test account; the upstream requests.
async fn two_claude_code_turns(
    model: &str,
    overrides: ferry_accounts::ModelOverrides,
) -> Vec<ferry_testkit::upstream::CapturedRequest> {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_cc", &["ok"], Usage::new(2, 1))),
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts[0].default_model = Some(model.to_owned());
    c.accounts[0].models = overrides;
    let server = TestServer::start(c).await;
    for case in ["02_bash_turn1", "03_bash_turn2_tool_result"] {
        let _ = server
            .messages(&claude_code_request(case))
            .await
            .text()
            .await
            .unwrap();
    }
    mock.requests()
}

#[tokio::test]
async fn newer_gpt_generations_get_a_cache_key_by_rule() {
    for model in [
        "gpt-6-terra",
        "gpt-6.1-codex-mini",
        "openai/gpt-5.6-sol",
        "gpt-7",
    ] {
        let reqs = two_claude_code_turns(model, Default::default()).await;
        assert_eq!(reqs[0].body["model"], json!(model));
        let key = |i: usize| reqs[i].body["prompt_cache_key"].as_str().map(str::to_owned);
        assert!(
            key(0).is_some_and(|k| k.starts_with("anthropic-metadata-")),
            "{model}: {:?}",
            key(0)
        );
        assert_eq!(key(0), key(1), "{model}");
    }
    // An older family gets no derived key.
    let reqs = two_claude_code_turns("gpt-4o", Default::default()).await;
    assert_eq!(reqs[0].body.get("prompt_cache_key"), None);
}

#[tokio::test]
async fn an_account_override_gives_an_unknown_model_the_gpt_family_rules() {
    let reqs = two_claude_code_turns("acme-coder-2", Default::default()).await;
    assert_eq!(reqs[0].body.get("prompt_cache_key"), None);
    let overrides = ferry_accounts::ModelOverrides::from_entries([(
        "acme-coder-*",
        ferry_accounts::ModelOverride {
            family: Some("gpt-5".to_owned()),
            ..Default::default()
        },
    )]);
    let reqs = two_claude_code_turns("acme-coder-2", overrides).await;
    assert_eq!(reqs[0].body["model"], json!("acme-coder-2"));
    assert!(reqs[0].body["prompt_cache_key"].as_str().is_some());
    assert_eq!(
        reqs[0].body["prompt_cache_key"],
        reqs[1].body["prompt_cache_key"]
    );
}

/// One Claude Code request as agent `agent` (`None`: the main agent, no agent header).
async fn as_agent(server: &TestServer, body: &Value, agent: Option<&str>) {
    let mut req = server
        .post("/v1/messages")
        .header("content-type", "application/json")
        .header("x-claude-code-session-id", "cc-session-1");
    if let Some(agent) = agent {
        req = req
            .header("x-claude-code-agent-id", agent)
            .header("x-claude-code-parent-agent-id", "main");
    }
    let resp = req
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
}

/// A subagent's conversation in the parent's session: its own first task, then `turns`
/// more exchanges.
fn subagent_turn(turns: usize) -> Value {
    let mut r = claude_code_request("02_bash_turn1");
    let mut messages =
        vec![json!({"role": "user", "content": "Explore the crate layout and report."})];
    for i in 0..turns {
        messages.push(json!({"role": "assistant", "content": "ok"}));
        messages.push(json!({"role": "user", "content": format!("and step {i}?")}));
    }
    r["messages"] = Value::Array(messages);
    r
}

#[tokio::test]
async fn each_agent_of_a_session_continues_its_own_responses() {
    let upstream = start().await;
    let mock = mount_sequence(
        &upstream,
        vec![ok("resp_p1"), ok("resp_s1"), ok("resp_p2"), ok("resp_s2")],
    )
    .await;
    let server = TestServer::start(continuing(&upstream.uri())).await;
    as_agent(&server, &claude_code_request("02_bash_turn1"), None).await;
    as_agent(&server, &subagent_turn(0), Some("agent-sub-1")).await;
    // The parent's next turn, after a subagent ran in between.
    as_agent(
        &server,
        &claude_code_request("03_bash_turn2_tool_result"),
        None,
    )
    .await;
    as_agent(&server, &subagent_turn(1), Some("agent-sub-1")).await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4);
    let prev = |i: usize| reqs[i].body.get("previous_response_id").cloned();
    assert_eq!(prev(0), None);
    // The subagent's first request is a new conversation, not the parent's next turn.
    assert_eq!(prev(1), None);
    assert_eq!(
        prev(2),
        Some(json!("resp_p1")),
        "the parent continues its own chain"
    );
    assert_eq!(
        prev(3),
        Some(json!("resp_s1")),
        "the subagent continues its own chain"
    );
    // One prompt cache key for the whole session (the subagent reuses the parent's prefix).
    let key = |i: usize| reqs[i].body["prompt_cache_key"].clone();
    assert!(key(0).is_string());
    assert!((1..4).all(|i| key(i) == key(0)));
}

#[tokio::test]
async fn only_speed_fast_in_the_body_selects_the_fast_tier() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_s", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    // (beta header, speed in the body)
    let cases = [
        (true, Some("standard")),
        (true, None),
        (true, Some("fast")),
        (false, Some("fast")),
    ];
    for (beta, speed) in cases {
        let mut body = request("hi", false);
        if let Some(speed) = speed {
            body["speed"] = json!(speed);
        }
        let mut post = server.post("/v1/messages");
        if beta {
            post = post.header("anthropic-beta", "fast-mode-2026-02-01");
        }
        let resp = post
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // `speed` is read, not dropped.
        assert_eq!(resp.headers().get("x-ferry-dropped"), None);
    }
    let tiers: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| r.body.get("service_tier").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        tiers,
        vec![
            Value::Null,
            Value::Null,
            json!("priority"),
            json!("priority")
        ]
    );
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.body.get("speed").is_none())
    );
}

#[tokio::test]
async fn client_keys_never_share_an_upstream_prompt_cache_key() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_i", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let mut c = config(&upstream.uri());
    c.client_keys.push(ferry_server::config::ClientKey {
        name: "bob".to_owned(),
        key: ferry_server::config::Secret::new("sk-ferry-test-bob"),
        budget: Default::default(),
    });
    let server = TestServer::start(c).await;
    // (client key, session_id header): the same conversation each time.
    for (key, session) in [
        (TEST_CLIENT_KEY, Some("conv-1")),
        ("sk-ferry-test-bob", Some("conv-1")),
        (TEST_CLIENT_KEY, Some("conv-1")),
        (TEST_CLIENT_KEY, None),
        ("sk-ferry-test-bob", None),
    ] {
        let mut post = server
            .client
            .post(server.url("/v1/messages"))
            .header("x-api-key", key);
        if let Some(session) = session {
            post = post.header("session_id", session);
        }
        let resp = post
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&request("the same conversation", false)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let reqs = mock.requests();
    let key = |i: usize| {
        reqs[i].body["prompt_cache_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let session = |i: usize| reqs[i].header("session_id").unwrap().to_owned();
    assert_ne!(key(0), key(1), "same session_id header, two client keys");
    assert_eq!(key(0), key(2), "one client key, one key");
    assert_ne!(key(0), "conv-1", "the client's key is not sent as is");
    assert_ne!(key(3), key(4), "same conversation, two client keys");
    assert_ne!(session(0), session(1));
}

/// The documented multi-turn caching pattern (pydantic-ai's `anthropic_cache_messages`):
/// the `cache_control` breakpoint sits on the newest message every turn.
#[tokio::test]
async fn a_moving_cache_breakpoint_keeps_one_prompt_cache_key() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_m", &["ok"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let cc = json!({"type": "ephemeral"});
    let text = |t: &str, marked: bool| {
        let mut b = json!({"type": "text", "text": t});
        if marked {
            b["cache_control"] = cc.clone();
        }
        b
    };
    let mut history: Vec<Value> = Vec::new();
    for (i, question) in ["Read the repo.", "Now list it.", "And the tests?"]
        .iter()
        .enumerate()
    {
        // Earlier marks are gone; the newest user message carries the breakpoint.
        for m in history.iter_mut() {
            for b in m["content"].as_array_mut().unwrap() {
                b.as_object_mut().unwrap().remove("cache_control");
            }
        }
        history.push(json!({"role": "user", "content": [text(question, true)]}));
        let mut body = request("x", false);
        body["system"] = json!([{"type": "text", "text": "You are terse.", "cache_control": cc}]);
        body["messages"] = Value::Array(history.clone());
        assert_eq!(server.messages(&body).await.status(), 200, "turn {i}");
        history.push(json!({"role": "assistant", "content": [text("ok", false)]}));
    }
    let reqs = mock.requests();
    let keys: Vec<&Value> = reqs.iter().map(|r| &r.body["prompt_cache_key"]).collect();
    assert!(
        keys[0].as_str().unwrap().starts_with("anthropic-cache-"),
        "{}",
        keys[0]
    );
    assert_eq!(keys, vec![keys[0]; 3]);
}
