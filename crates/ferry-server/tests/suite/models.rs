//! The model catalog through the gateway: `/v1/models` (Claude Code's discovery,
//! pagination, `/v1/models/{id}`), the effort clamped per upstream model, and Claude Code's
//! `[1m]` / `-fast` model suffixes.

use ferry_testkit::upstream::{mount_sse, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let resp = server
        .client
        .get(server.url(path))
        .header("x-api-key", TEST_CLIENT_KEY)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), json_body(resp).await)
}

fn catalog_config(base_url: &str) -> ferry_server::Config {
    let mut c = config(base_url);
    c.accounts[0].model_mapping = ferry_accounts::ModelMapping::from_rules([
        ("claude-opus-4-8", "gpt-5.6-sol"),
        ("claude-haiku-*", "gpt-5.4-mini"),
        ("claude-sonnet-4-5", "gpt-6-terra"),
    ]);
    c.accounts[0].models = ferry_accounts::ModelOverrides::from_entries([(
        "gpt-6-*",
        ferry_accounts::ModelOverride {
            context_window: Some(2_000_000),
            ..Default::default()
        },
    )]);
    c
}

#[tokio::test]
async fn claude_code_discovery_lists_the_mapped_models_with_their_limits() {
    let upstream = start().await;
    let server = TestServer::start(catalog_config(&upstream.uri())).await;
    let (status, body) = get(&server, "/v1/models?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert!(
        data.iter()
            .all(|m| m["id"].as_str().unwrap().starts_with("claude"))
    );
    let by_id = |id: &str| data.iter().find(|m| m["id"] == json!(id)).unwrap().clone();
    let opus = by_id("claude-opus-4-8");
    assert_eq!(
        (
            &opus["upstream_model"],
            &opus["max_input_tokens"],
            &opus["max_tokens"],
            &opus["efforts"],
        ),
        (
            &json!("gpt-5.6-sol"),
            &json!(1_050_000),
            &json!(128_000),
            &json!(["low", "medium", "high", "xhigh", "max"]),
        )
    );
    assert_eq!(
        opus["capabilities"]["effort"]["max"]["supported"],
        json!(true)
    );
    assert_eq!(by_id("claude-haiku-4-5")["context_window"], json!(400_000));
    // The account's override wins over the table (gpt-6 would otherwise take 5.6's row).
    assert_eq!(
        by_id("claude-sonnet-4-5")["context_window"],
        json!(2_000_000)
    );
    // The default model covers the other known Claude models.
    assert_eq!(by_id("claude-opus-4-6")["upstream_model"], json!("gpt-5.1"));
    assert_eq!(body["has_more"], json!(false));

    // Every listed id answers on its own.
    for m in data {
        let id = m["id"].as_str().unwrap();
        let (status, one) = get(&server, &format!("/v1/models/{id}")).await;
        assert_eq!((status, &one), (200, m), "{id}");
    }
    let (status, one) = get(&server, "/v1/models/claude-opus-4-8%5B1m%5D").await;
    assert_eq!((status, &one["id"]), (200, &json!("claude-opus-4-8")));
    let (status, err) = get(&server, "/v1/models/gpt-nope").await;
    assert_eq!(
        (status, &err["error"]["type"]),
        (404, &json!("not_found_error"))
    );
}

#[tokio::test]
async fn the_model_list_pages_with_limit_and_cursors() {
    let upstream = start().await;
    let server = TestServer::start(catalog_config(&upstream.uri())).await;
    let (_, all) = get(&server, "/v1/models?limit=1000").await;
    let ids: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.len() > 4, "{ids:?}");
    // Walk forward three at a time, then back from the end.
    let mut seen = Vec::new();
    let mut query = "limit=3".to_owned();
    loop {
        let (status, page) = get(&server, &format!("/v1/models?{query}")).await;
        assert_eq!(status, 200, "{page}");
        for m in page["data"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        if page["has_more"] != json!(true) {
            break;
        }
        query = format!("limit=3&after_id={}", page["last_id"].as_str().unwrap());
    }
    assert_eq!(seen, ids);
    let last = ids.last().unwrap();
    let (_, back) = get(&server, &format!("/v1/models?limit=2&before_id={last}")).await;
    assert_eq!(back["first_id"], json!(ids[ids.len() - 3]));
    assert_eq!(back["last_id"], json!(ids[ids.len() - 2]));
    assert_eq!(back["has_more"], json!(true));
    // The default page is 20 long.
    let (_, default) = get(&server, "/v1/models").await;
    assert_eq!(default["data"].as_array().unwrap().len(), ids.len().min(20));
    for bad in ["limit=0", "limit=5000", "after_id=unknown"] {
        let (status, err) = get(&server, &format!("/v1/models?{bad}")).await;
        assert_eq!(
            (status, &err["error"]["type"]),
            (400, &json!("invalid_request_error")),
            "{bad}: {err}"
        );
    }
}

/// One request for `model` with `effort`; the upstream request body.
async fn sent(model: &str, effort: &str, client_model: &str) -> Value {
    let upstream = start().await;
    let mock = mount_sse(
        &upstream,
        sse(text_events("resp_1", &["ok"], Usage::new(2, 1))),
    )
    .await;
    let mut c = config(&upstream.uri());
    c.accounts[0].default_model = Some(model.to_owned());
    let server = TestServer::start(c).await;
    let mut r = request("hi", true);
    r["model"] = json!(client_model);
    r["output_config"] = json!({"effort": effort});
    let _ = server.messages(&r).await.text().await.unwrap();
    mock.requests()[0].body.clone()
}

#[tokio::test]
async fn the_effort_is_clamped_to_what_the_upstream_model_takes() {
    for (model, effort, expected) in [
        ("gpt-5.6-sol", "max", "max"),
        ("gpt-6-luna", "max", "max"),
        ("gpt-5.5", "max", "xhigh"),
        ("gpt-5", "max", "high"),
        ("gpt-5.6-terra", "low", "low"),
    ] {
        let body = sent(model, effort, "claude-opus-4-8").await;
        assert_eq!(
            body["reasoning"]["effort"],
            json!(expected),
            "{model} {effort}"
        );
    }
}

#[tokio::test]
async fn one_m_and_fast_suffixes_route_like_the_base_name() {
    let body = sent("gpt-5.5", "high", "claude-opus-4-8[1m]").await;
    assert_eq!(body["model"], json!("gpt-5.5"));
    assert_eq!(body.get("service_tier"), None);
    // `-fast` is Claude Code's fast mode: the priority tier, like the fast-mode beta.
    let body = sent("gpt-5.5", "high", "claude-opus-4-8-fast").await;
    assert_eq!(body["model"], json!("gpt-5.5"));
    assert_eq!(body["service_tier"], json!("priority"));
}
