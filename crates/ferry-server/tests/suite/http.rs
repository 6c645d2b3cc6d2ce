//! The HTTP surface: routes, auth, body limits, request validation, headers.

use ferry_server::Config;
use ferry_testkit::upstream::{mount_sequence, mount_sse, mount_sse_once, sse_response, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

async fn ok_upstream() -> (wiremock::MockServer, ferry_testkit::upstream::UpstreamMock) {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_1", &["ok"], Usage::new(1, 1))),
    )
    .await;
    (upstream, mock)
}

#[tokio::test]
async fn both_auth_styles_work_and_wrong_keys_get_401() {
    let (upstream, mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let body = serde_json::to_vec(&request("hi", false)).unwrap();
    let send = |auth: Option<(&'static str, String)>| {
        let mut b = server
            .client
            .post(server.url("/v1/messages"))
            .body(body.clone());
        if let Some((k, v)) = auth {
            b = b.header(k, v);
        }
        b.send()
    };
    let api_key = send(Some(("x-api-key", TEST_CLIENT_KEY.to_owned())))
        .await
        .unwrap();
    assert_eq!(api_key.status(), 200);
    let bearer = send(Some(("authorization", format!("Bearer {TEST_CLIENT_KEY}"))))
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let wrong = send(Some(("x-api-key", format!("{TEST_CLIENT_KEY}x"))))
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("request-id"));
    assert_eq!(
        json_body(wrong).await,
        error_body("authentication_error", "invalid api key")
    );
    let missing = send(None).await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        json_body(missing).await,
        error_body(
            "authentication_error",
            "missing api key: send x-api-key or authorization: bearer"
        )
    );
    assert_eq!(mock.count(), 2);
}

#[tokio::test]
async fn an_open_gateway_needs_no_key() {
    let (upstream, _mock) = ok_upstream().await;
    let mut c = config(&upstream.uri());
    c.client_keys.clear();
    let server = TestServer::start(c).await;
    assert_eq!(server.key, None);
    assert_eq!(server.messages(&request("hi", false)).await.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (upstream, mock) = ok_upstream().await;
    let mut c = config(&upstream.uri());
    c.server.max_body_bytes = 2048;
    let server = TestServer::start(c).await;
    let big = request(&"x".repeat(4096), false);
    let resp = server.messages(&big).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(
        json_body(resp).await,
        error_body(
            "request_too_large",
            "request body is larger than 2048 bytes"
        )
    );
    // A chunked body has no content-length: the limit applies while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"model\":\"".to_vec()),
        Ok(vec![b'a'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let resp = server
        .post("/v1/messages")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn invalid_requests_get_400_with_the_json_path() {
    let (upstream, mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let cases: Vec<(&[u8], &str)> = vec![
        (b"{not json", "invalid_request_error"),
        (br#"{"model":"claude-opus-4-8","max_tokens":10}"#, "invalid_request_error"),
        (br#"{"model":"claude-opus-4-8","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}"#, "invalid_request_error"),
        (b"", "invalid_request_error"),
    ];
    let mut messages = Vec::new();
    for (body, kind) in cases {
        let resp = server
            .post("/v1/messages")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let v = json_body(resp).await;
        assert_eq!(v["error"]["type"], json!(kind));
        messages.push(v["error"]["message"].as_str().unwrap().to_owned());
    }
    assert!(messages[1].contains("messages"), "{messages:?}");
    assert!(
        messages[2].contains("messages[0].content[0]"),
        "{messages:?}"
    );
    assert_eq!(messages[3], "request body is empty");
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn unknown_models_get_404_without_an_upstream_call() {
    let (upstream, mock) = ok_upstream().await;
    let mut c = config(&upstream.uri());
    c.accounts[0].default_model = None;
    c.accounts[0].model_mapping =
        ferry_accounts::ModelMapping::from_rules([("claude-haiku-*", "gpt-5.1-codex-mini")]);
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 404);
    let v = json_body(resp).await;
    assert_eq!(v["error"]["type"], json!("not_found_error"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("model: claude-opus-4-8")
    );
    assert_eq!(mock.count(), 0);
    // A mapped model and an OpenAI model pass.
    let mut haiku = request("hi", false);
    haiku["model"] = json!("claude-haiku-4-5-20251001");
    assert_eq!(server.messages(&haiku).await.status(), 200);
    let mut gpt = request("hi", false);
    gpt["model"] = json!("gpt-5.1");
    assert_eq!(server.messages(&gpt).await.status(), 200);
    let models: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(models, vec![json!("gpt-5.1-codex-mini"), json!("gpt-5.1")]);
}

#[tokio::test]
async fn routes_methods_and_request_ids() {
    let (upstream, _mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let c = &server.client;
    let head = c.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let health = c.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = c.get(server.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let missing = c.get(server.url("/v1/complete")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let id_404 = missing.headers()["request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        json_body(missing).await,
        error_body("not_found_error", "not found: /v1/complete")
    );
    let wrong_method = c.get(server.url("/v1/messages")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    let ok = server.messages(&request("hi", false)).await;
    let id_ok = ok.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(id_ok.starts_with("req_") && id_ok.len() == 36, "{id_ok}");
    assert_ne!(id_ok, id_404);
}

#[tokio::test]
async fn a_path_prefix_and_a_query_string_are_accepted() {
    let (upstream, mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server
        .post("/gw/anthropic/v1/messages?beta=true")
        .body(serde_json::to_vec(&request("hi", true)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(streamed_text(&parse_sse(&resp.text().await.unwrap())), "ok");
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn only_safe_upstream_headers_reach_the_client() {
    let upstream = start().await;
    let template = sse_response(sse(text_events("resp_h", &["ok"], Usage::new(1, 1))))
        .insert_header("set-cookie", "session=upstream")
        .insert_header("openai-organization", "org-secret")
        .insert_header("x-request-id", "req_upstream")
        .insert_header("x-ratelimit-remaining-tokens", "999")
        .insert_header("www-authenticate", "Bearer realm=openai");
    let _mock = mount_sequence(&upstream, vec![template.clone(), template]).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    for stream in [true, false] {
        let resp = server.messages(&request("hi", stream)).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["x-request-id"], "req_upstream");
        assert_eq!(h["x-ratelimit-remaining-tokens"], "999");
        for absent in ["set-cookie", "openai-organization", "www-authenticate"] {
            assert!(!h.contains_key(absent), "{absent} leaked (stream={stream})");
        }
        assert!(h["request-id"].to_str().unwrap().starts_with("req_"));
    }
}

#[tokio::test]
async fn count_tokens_never_calls_upstream() {
    let (upstream, mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server
        .post("/v1/messages/count_tokens")
        .body(serde_json::to_vec(&claude_code_request("02_bash_turn1")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = json_body(resp).await;
    assert!(v["input_tokens"].as_u64().unwrap() > 1000, "{v}");
    assert_eq!(mock.count(), 0);
    let unauth = server
        .client
        .post(server.url("/v1/messages/count_tokens"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
}

#[tokio::test]
async fn models_lists_the_mapped_names() {
    let (upstream, _mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server
        .client
        .get(server.url("/v1/models"))
        .header("x-api-key", TEST_CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = json_body(resp).await;
    assert!(v["data"].is_array(), "{v}");
}

#[tokio::test]
async fn metrics_use_the_documented_names() {
    let (upstream, _mock) = ok_upstream().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    assert_eq!(
        server
            .messages(&request("hi", true))
            .await
            .text()
            .await
            .unwrap()
            .is_empty(),
        false
    );
    let text = server.metrics().await;
    for name in [
        "ferry_requests_total{status=\"200\",stream=\"true\"} 1",
        "ferry_request_duration_seconds_count 1",
        "ferry_first_token_seconds_count 1",
        "ferry_upstream_requests_total{account=\"primary\",status=\"200\"} 1",
        "ferry_failovers_total",
        "ferry_tokens_total{kind=\"input\"} 1",
        "ferry_prompt_cache_hit_ratio_count 1",
        "ferry_cache_miss_total{reason=\"new_session\"} 0",
        "ferry_open_streams 0",
        "ferry_account_available{account=\"primary\"} 1",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
}

#[tokio::test]
async fn the_simulated_account_answers_out_of_the_box() {
    let server = TestServer::start(Config::for_tests()).await;
    let events = parse_sse(
        &server
            .messages(&request("say hello", true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        streamed_text(&events).starts_with("Simulated reply to"),
        "{events:?}"
    );
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    let body = json_body(server.messages(&request("say hello", false)).await).await;
    assert_eq!(body["stop_reason"], json!("end_turn"));
    // A tool directive gives a tool call.
    let body = json_body(
        server
            .messages(&request_with_tools("[[tool:Bash:ls]]", false))
            .await,
    )
    .await;
    let tool = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(
        (&tool["name"], &tool["input"]),
        (&json!("Bash"), &json!({"command": "ls"}))
    );
    assert_eq!(body["stop_reason"], json!("tool_use"));
}

#[tokio::test]
async fn claude_code_fixtures_go_through() {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_cc", &["hi"], Usage::new(1, 1))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    for case in [
        "01_say_hi_main",
        "02_bash_turn1",
        "03_bash_turn2_tool_result",
        "04_bash_denied_tool_result_is_error",
        "05_nonstreaming_fallback",
        "06_model_haiku45",
        "07_bare_mode",
    ] {
        let body = claude_code_request(case);
        let resp = server.messages(&body).await;
        assert_eq!(resp.status(), 200, "{case}");
        let _ = resp.bytes().await.unwrap();
    }
    assert_eq!(mock.requests().len(), 7);
    let _ = mount_sse_once;
}

/// A reload onto a simulated account (from a config without one) starts the built-in
/// simulated upstream on a loopback port and answers from it over HTTP, like any upstream;
/// the `base_url` the client configured stays the simulator's name, never a real host.
#[tokio::test]
async fn a_reload_onto_a_simulated_account_starts_the_simulator() {
    let upstream = ferry_testkit::upstream::start().await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let mut c = Config::for_tests();
    c.client_keys = config(&upstream.uri()).client_keys;
    assert_eq!(
        c.accounts[0].base_url.as_deref(),
        Some(ferry_server::SIMULATED_BASE_URL)
    );
    server.reloader.reload(c).unwrap();
    let body = json_body(server.messages(&request("say hello", false)).await).await;
    let text = body["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.starts_with("Simulated reply to"), "{body}");
    assert_eq!(
        upstream.received_requests().await.unwrap_or_default().len(),
        0
    );
}

/// The bytes the server sends upstream are the public plan's (`convert_for` then
/// `upstream_request`, serialised by `Upstream::body`, what `ferry convert request` prints)
/// given the same session facts: the only thing the server adds is what its session knows,
/// here the prompt cache key it derived (read back from the request it sent).
#[tokio::test]
async fn the_server_sends_exactly_the_public_plan() {
    use ferry_testkit::upstream::{mount_sse_once, start};
    for case in [
        "01_say_hi_main",
        "02_bash_turn1",
        "03_bash_turn2_tool_result",
    ] {
        let upstream = start().await;
        let mock = mount_sse_once(
            &upstream,
            sse(text_events("resp_p", &["ok"], Usage::new(1, 1))),
        )
        .await;
        let c = config(&upstream.uri());
        let account = c.accounts[0].clone();
        let server = TestServer::start(c).await;
        let body = claude_code_request(case);
        let resp = server.messages(&body).await;
        assert_eq!(resp.status(), 200, "{case}");
        let _ = resp.bytes().await.unwrap();
        let sent = &mock.requests()[0];

        let req = ferry_apicompat::anthropic::parse_request(body.to_string().as_bytes()).unwrap();
        let route = account.route_model(&req.model);
        let conversion =
            ferry_server::convert_for(&req, &account, &route, ferry_server::asks_fast_mode(&req))
                .unwrap();
        let mut facts = ferry_server::SessionFacts::without_session(
            &conversion,
            &route,
            req.stream.unwrap_or(false),
        );
        facts.prompt_cache_key = sent.body["prompt_cache_key"].as_str().map(str::to_owned);
        let planned = ferry_server::upstream_request(
            conversion.converted.value,
            &account,
            &route,
            &facts,
            None,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(planned.body().unwrap()).unwrap(),
            String::from_utf8(sent.raw_body.clone()).unwrap(),
            "{case}"
        );
    }
}
