//! The admin API and dashboard (`[admin]`), through the real server: who gets in, the
//! accounts after a failover, the client keys' usage, cost and budget, reload, and the
//! dashboard page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_server::config::{AdminConfig, AdminKey, ClientKey, ConfigProblem, Secret};
use ferry_server::{Config, RawConfig};
use ferry_testkit::upstream::{mount_sse, mount_status, start};
use ferry_testkit::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

const ADMIN_KEY: &str = "admin-key-test-5d1c0e9b7a3f";

fn with_admin(mut c: Config) -> Config {
    c.admin = AdminConfig {
        keys: vec![AdminKey {
            name: "ops".to_owned(),
            key: Secret::new(ADMIN_KEY),
        }],
        ..AdminConfig::default()
    };
    c
}

fn admin_get(server: &TestServer, path: &str) -> reqwest::RequestBuilder {
    server.client.get(server.url(path)).bearer_auth(ADMIN_KEY)
}

/// The client keys view once `n` requests of `key` were counted (the counters are
/// written just after each response).
async fn keys_after(server: &TestServer, key: &str, n: u64) -> Value {
    // A request's counters are several increments written after its response: wait until
    // all `n` are counted and two reads in a row agree.
    let mut last: Option<Value> = None;
    for _ in 0..200 {
        let body = json_body(
            admin_get(server, "/admin/api/client_keys")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let entry = body["client_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == json!(key))
            .cloned()
            .unwrap();
        if entry["last_24h"]["requests"] == json!(n) && entry["windows"][0]["tokens"] != json!(0) {
            if last.as_ref() == Some(&entry) {
                return entry;
            }
            last = Some(entry);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} requests of {key} were never counted");
}

fn error_type(body: &Value) -> (&str, &str) {
    (
        body["type"].as_str().unwrap(),
        body["error"]["type"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn without_admin_keys_the_admin_paths_do_not_exist() {
    let server = TestServer::start(Config::for_tests()).await;
    for path in ["/admin", "/admin/", "/admin/api/accounts"] {
        let resp = server
            .client
            .get(server.url(path))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(
            error_type(&json_body(resp).await),
            ("error", "not_found_error")
        );
    }
}

#[tokio::test]
async fn only_an_admin_key_opens_the_admin_api() {
    let up = start().await;
    mount_sse(&up, sse(text_events("resp_1", &["ok"], Usage::new(3, 2)))).await;
    let server = TestServer::start(with_admin(config(&up.uri()))).await;
    let url = server.url("/admin/api/accounts");
    let get = || server.client.get(&url);
    let cases = [
        ("no key", get(), 401, "authentication_error"),
        (
            "client key",
            get().header("x-api-key", TEST_CLIENT_KEY),
            403,
            "permission_error",
        ),
        (
            "client key as bearer",
            get().bearer_auth(TEST_CLIENT_KEY),
            403,
            "permission_error",
        ),
        (
            "wrong key",
            get().bearer_auth("admin-key-test-5d1c0e9b7a3e"),
            401,
            "authentication_error",
        ),
        (
            "wrong cookie",
            get().header("cookie", "ferry_admin=v1.1.00"),
            401,
            "authentication_error",
        ),
    ];
    for (what, req, status, kind) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{what}");
        let body = json_body(resp).await;
        assert_eq!(error_type(&body), ("error", kind), "{what}");
        assert!(!body.to_string().contains(ADMIN_KEY), "{what}");
    }
    for req in [
        get().bearer_auth(ADMIN_KEY),
        get().header("x-api-key", ADMIN_KEY),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            json_body(resp).await["accounts"][0]["name"],
            json!("primary")
        );
    }
    // The admin key is no client key.
    let resp = server
        .client
        .post(server.url("/v1/messages"))
        .header("x-api-key", ADMIN_KEY)
        .header("content-type", "application/json")
        .body(request("hi", false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        error_type(&json_body(resp).await),
        ("error", "authentication_error")
    );
    // Unknown admin paths and wrong methods answer like the rest of the gateway.
    let resp = admin_get(&server, "/admin/api/nope").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = admin_get(&server, "/admin/api/reload")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[test]
fn an_admin_key_that_is_a_client_key_is_a_config_problem() {
    let raw: RawConfig = serde_json::from_value(json!({
        "client_keys": [{"name": "alice", "key": "shared-key-0123456789abcdef"}],
        "admin": {"path": "/ops/", "keys": [
            {"name": "ops", "key": "shared-key-0123456789abcdef"},
            {"name": "short", "key": "tiny"},
        ]},
    }))
    .unwrap();
    let problems = Config::from_raw(raw).unwrap_err();
    assert_eq!(
        problems,
        [
            ConfigProblem {
                path: "admin.keys[0].key".into(),
                message:
                    "is also the key of client key \"alice\": an admin key must not be a client key"
                        .into(),
            },
            ConfigProblem {
                path: "admin.keys[1].key".into(),
                message: "must be at least 16 characters (it guards the admin API)".into(),
            },
        ]
    );
    let raw: RawConfig = serde_json::from_value(json!({"admin": {"path": "/v1"}})).unwrap();
    assert_eq!(Config::from_raw(raw).unwrap_err()[0].path, "admin.path");
    let raw: RawConfig = serde_json::from_value(json!({"admin": {"path": "/ops/"}})).unwrap();
    assert_eq!(Config::from_raw(raw).unwrap().admin.path, "/ops");
}

#[tokio::test]
async fn accounts_show_the_cooldown_and_last_error_after_a_failover() {
    let (ua, ub) = (start().await, start().await);
    mount_status(
        &ua,
        429,
        &[("retry-after", "30")],
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
    )
    .await;
    mount_sse(
        &ub,
        sse(text_events("resp_b", &["from b"], Usage::new(2, 2))),
    )
    .await;
    let mut c = config(&ua.uri());
    c.accounts[0].name = "a".to_owned();
    let mut b = account("b", &ub.uri());
    b.priority = 1;
    b.concurrency = 4;
    c.accounts.push(b);
    let server = TestServer::start(with_admin(c)).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    let body = json_body(
        admin_get(&server, "/admin/api/accounts")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let a = &body["accounts"][0];
    assert_eq!(
        (&a["name"], &a["state"], &a["available"], &a["in_flight"]),
        (
            &json!("a"),
            &json!("cooling_down"),
            &json!(false),
            &json!(0)
        )
    );
    let cd = &a["cooldown"];
    assert_eq!(
        (&cd["kind"], &cd["reason"]),
        (&json!("rate_limited"), &json!("rate_limited"))
    );
    let remaining = cd["remaining_secs"].as_u64().unwrap();
    assert!((29..=30).contains(&remaining), "{cd}");
    assert!(cd["until"].as_str().unwrap().ends_with('Z'), "{cd}");
    let err = &a["last_errors"][0];
    assert_eq!(
        (
            &err["status"],
            &err["outcome"],
            &err["reason"],
            &err["cooldown"]
        ),
        (
            &json!(429),
            &json!("failover"),
            &json!("rate_limited"),
            &json!("30s")
        )
    );
    let b = &body["accounts"][1];
    assert_eq!(
        (
            &b["state"],
            &b["cooldown"],
            &b["concurrency"],
            &b["kind"],
            &b["last_errors"]
        ),
        (
            &json!("ready"),
            &Value::Null,
            &json!(4),
            &json!("api_key"),
            &json!([])
        )
    );
    assert_eq!(body["open_streams"], json!(0));
    assert!(!body.to_string().contains(TEST_UPSTREAM_KEY));
}

#[tokio::test]
async fn client_keys_show_usage_cost_and_what_the_budget_leaves() {
    let up = start().await;
    // 1000 prompt tokens of which 400 cached, 100 output, on gpt-5.1 ($1.25 / $0.125 / $10
    // per million): 600 × 1.25 + 400 × 0.125 + 100 × 10 = 1800 micro-USD a request.
    mount_sse(
        &up,
        sse(text_events(
            "resp_1",
            &["ok"],
            Usage::new(1000, 100).cached(400),
        )),
    )
    .await;
    let mut c = config(&up.uri());
    c.client_keys[0].budget.daily_usd = Some(1.0);
    c.client_keys[0].budget.monthly_tokens = Some(100_000);
    c.client_keys.push(ClientKey {
        name: "bob".to_owned(),
        key: Secret::new("sk-ferry-test-bob-0000000000"),
        budget: Default::default(),
    });
    let server = TestServer::start(with_admin(c)).await;
    for i in 0..3 {
        let resp = server
            .messages(&request(&format!("hi {i}"), i % 2 == 0))
            .await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let alice = keys_after(&server, "alice", 3).await;
    assert_eq!(
        alice["last_24h"],
        json!({
            "requests": 3, "errors": 0, "input_tokens": 1800, "cached_tokens": 1200,
            "output_tokens": 300, "cost_usd": 0.0054, "cache_hit_ratio": 0.4,
        })
    );
    let hours = alice["hourly"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["requests"], json!(3));
    assert!(hours[..23].iter().all(|h| h["requests"] == json!(0)));
    let [day, month] = [&alice["windows"][0], &alice["windows"][1]];
    assert_eq!(
        (
            &day["window"],
            &day["tokens"],
            &day["usd_limit"],
            &day["tokens_left"]
        ),
        (&json!("day"), &json!(3300), &json!(1.0), &Value::Null)
    );
    assert!(
        (day["usd_left"].as_f64().unwrap() - 0.9946).abs() < 1e-9,
        "{day}"
    );
    assert_eq!(
        (
            &month["window"],
            &month["token_limit"],
            &month["tokens_left"],
            &month["usd_left"]
        ),
        (
            &json!("month"),
            &json!(100_000),
            &json!(96_700),
            &Value::Null
        )
    );
    assert_eq!(alice["budget"]["daily_usd"], json!(1.0));
    let body = json_body(
        admin_get(&server, "/admin/api/client_keys")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bob = &body["client_keys"][1];
    assert_eq!(
        (&bob["name"], &bob["last_24h"]["requests"]),
        (&json!("bob"), &json!(0))
    );
    assert_eq!(
        bob["budget"],
        json!({"daily_tokens": null, "monthly_tokens": null, "daily_usd": null, "monthly_usd": null})
    );
    assert!(!body.to_string().contains(TEST_CLIENT_KEY));

    // The cache view counts the same requests.
    let cache = json_body(admin_get(&server, "/admin/api/cache").send().await.unwrap()).await;
    assert_eq!(cache["requests"], json!(3));
    assert!(
        (cache["mean_hit_ratio"].as_f64().unwrap() - 0.4).abs() < 1e-6,
        "{cache}"
    );
    assert!(
        cache["misses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["reason"] == json!("new_session")),
        "{cache}"
    );
}

#[tokio::test]
async fn reload_through_the_api_applies_or_reports_problems() {
    let up = start().await;
    mount_sse(&up, sse(text_events("resp_1", &["ok"], Usage::new(3, 2)))).await;
    let base = with_admin(config(&up.uri()));
    let server = TestServer::start(base.clone()).await;
    let reload = || {
        server
            .client
            .post(server.url("/admin/api/reload"))
            .bearer_auth(ADMIN_KEY)
    };

    // Started without `ferry serve`: nothing to read a config from.
    let resp = reload().send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = json_body(resp).await;
    assert_eq!(error_type(&body), ("error", "api_error"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no config source"),
        "{body}"
    );

    let next: Arc<Mutex<Result<Config, Vec<ConfigProblem>>>> =
        Arc::new(Mutex::new(Ok(base.clone())));
    let source = Arc::clone(&next);
    server
        .reloader
        .set_config_source(Arc::new(move || source.lock().unwrap().clone()));
    let mut with_bob = base.clone();
    with_bob.client_keys.push(ClientKey {
        name: "bob".to_owned(),
        key: Secret::new("sk-ferry-test-bob-1111111111"),
        budget: Default::default(),
    });
    with_bob.server.listen = "127.0.0.1:1".parse().unwrap();
    *next.lock().unwrap() = Ok(with_bob);
    let bob = || {
        server
            .client
            .post(server.url("/v1/messages"))
            .header("x-api-key", "sk-ferry-test-bob-1111111111")
            .header("content-type", "application/json")
            .body(request("hi", false).to_string())
    };
    assert_eq!(bob().send().await.unwrap().status(), 401);
    let resp = reload().send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    assert_eq!(body["applied"], json!(true));
    assert!(
        body["notes"][0]
            .as_str()
            .unwrap()
            .contains("server.listen changed"),
        "{body}"
    );
    assert_eq!(bob().send().await.unwrap().status(), 200);

    *next.lock().unwrap() = Err(vec![ConfigProblem {
        path: "server.lisen".into(),
        message: "unknown key".into(),
    }]);
    let resp = reload().send().await.unwrap();
    assert_eq!(resp.status(), 422);
    assert_eq!(
        json_body(resp).await,
        json!({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": "config reload refused: 1 config problem; the running config is kept",
            "details": {"problems": [{"path": "server.lisen", "message": "unknown key"}]},
        }})
    );
    assert_eq!(bob().send().await.unwrap().status(), 200);
    // A client key cannot reload.
    let resp = server
        .client
        .post(server.url("/admin/api/reload"))
        .header("x-api-key", TEST_CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn the_dashboard_signs_in_shows_the_figures_and_escapes_names() {
    let up = start().await;
    mount_sse(
        &up,
        sse(text_events("resp_1", &["ok"], Usage::new(500, 50))),
    )
    .await;
    let hostile = r#"<script>alert("k")</script>&'"#;
    let mut c = config(&up.uri());
    c.client_keys[0].name = hostile.to_owned();
    let server = TestServer::start(with_admin(c)).await;
    for i in 0..2 {
        let resp = server.messages(&request(&format!("hi {i}"), false)).await;
        assert_eq!(resp.status(), 200);
    }
    keys_after(&server, hostile, 2).await;

    // No session: the sign-in form; a client key: refused.
    let resp = server
        .client
        .get(server.url("/admin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let form = resp.text().await.unwrap();
    assert!(
        form.contains(r#"<form method="post" action="/admin/login">"#),
        "{form}"
    );
    let resp = server
        .client
        .get(server.url("/admin/"))
        .header("x-api-key", TEST_CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // A wrong key: the form again. The right one: a session cookie that is not the key.
    let login = |key: &str| {
        server
            .client
            .post(server.url("/admin/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={key}"))
            .send()
    };
    let resp = login("nope").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    let resp = login(TEST_CLIENT_KEY).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("A client key is not an admin key.")
    );
    let resp = login(ADMIN_KEY).await.unwrap();
    assert_eq!(resp.status(), 200);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("ferry_admin=v1."), "{set_cookie}");
    assert!(
        set_cookie.ends_with("; Path=/admin; Max-Age=43200; HttpOnly; SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(ADMIN_KEY));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    for req in [
        server
            .client
            .get(server.url("/admin/"))
            .header("cookie", &cookie),
        server
            .client
            .get(server.url("/admin"))
            .bearer_auth(ADMIN_KEY),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        let html = resp.text().await.unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(ADMIN_KEY) && !html.contains(TEST_CLIENT_KEY));
        let name = "&lt;script&gt;alert(&quot;k&quot;)&lt;/script&gt;&amp;&#39;";
        let row = format!(
            r#"<tr data-key="{name}"><td>{name}</td><td class="n" data-figure="requests">2</td>"#
        );
        assert!(html.contains(&row), "{html}");
        assert!(
            html.contains(r#"<td class="n" data-figure="input_tokens">1000</td>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<td class="n" data-figure="output_tokens">100</td>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-figure="cost_usd">$0.002250</td>"#),
            "{html}"
        );
        assert!(html.contains(r#"<tr data-account="primary">"#), "{html}");
        assert!(html.contains(r#"<tr data-reason="new_session">"#), "{html}");
        assert!(
            html.contains(r#"<strong id="open-streams">0</strong>"#),
            "{html}"
        );
    }

    // Signing out clears the cookie.
    let resp = server
        .client
        .post(server.url("/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("ferry_admin=; Path=/admin; Max-Age=0")
    );
}

/// With sessions in Redis the hourly counters are shared: two replicas' requests show up
/// summed in either replica's admin API.
#[tokio::test]
async fn replicas_on_redis_share_the_hourly_usage() {
    let redis = ferry_testkit::redis::RedisServer::start();
    let up = start().await;
    mount_sse(&up, sse(text_events("resp_1", &["ok"], Usage::new(10, 5)))).await;
    let replica = || {
        let mut c = with_admin(config(&up.uri()));
        c.session.store = ferry_server::config::SessionStoreKind::Redis {
            url: Secret::new(redis.url()),
        };
        TestServer::start(c)
    };
    let (a, b) = (replica().await, replica().await);
    for (i, server) in [&a, &b, &b].into_iter().enumerate() {
        let resp = server.messages(&request(&format!("hi {i}"), false)).await;
        assert_eq!(resp.status(), 200);
    }
    let seen = keys_after(&a, "alice", 3).await;
    assert_eq!(
        (
            &seen["last_24h"]["input_tokens"],
            &seen["last_24h"]["output_tokens"],
            &seen["windows"][0]["tokens"]
        ),
        (&json!(30), &json!(15), &json!(45))
    );
    assert_eq!(
        keys_after(&b, "alice", 3).await["last_24h"],
        seen["last_24h"]
    );
}

#[tokio::test]
async fn sessions_show_each_turn_and_why_it_missed() {
    // Two turns of one Claude Code session against an upstream that reads nothing from its
    // cache; the second changes the system prompt.
    let up = start().await;
    ferry_testkit::upstream::mount_fn(&up, |_, n| {
        ferry_testkit::upstream::sse_response(sse(text_events(
            &format!("resp_{n}"),
            &["ok"],
            Usage::new(4000, 5),
        )))
    })
    .await;
    let server = TestServer::start(with_admin(config(&up.uri()))).await;
    let session = "7a1c2b9e-0d3a-4c7b-8e21-9a6f4d3c2b11";
    let turn = |system: &str, second: bool| {
        let mut messages = vec![json!({"role": "user", "content": "question 0"})];
        if second {
            messages
                .push(json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}));
            messages.push(json!({"role": "user", "content": "question 1"}));
        }
        json!({
            "model": "claude-opus-4-8", "max_tokens": 1024, "system": system,
            "metadata": {"user_id": format!("user_{}_account__session_{session}", "d".repeat(64))},
            "messages": messages,
        })
    };
    for body in [
        turn("You are a coding agent.", false),
        turn("You are a coding agent. Today is 2026-12-03.", true),
    ] {
        let resp = server.messages(&body).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    // The turn log is written just after each response.
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = json_body(
            admin_get(&server, "/admin/api/sessions?client=alice&limit=5")
                .send()
                .await
                .unwrap(),
        )
        .await;
        if listed["sessions"][0]["turns"] == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    let summary = &sessions[0];
    assert_eq!(
        (
            &summary["client"],
            &summary["turns"],
            &summary["misses"],
            &summary["last_account"]
        ),
        (&json!("alice"), &json!(2), &json!(2), &json!("primary")),
        "{summary}"
    );
    let id = summary["id"].as_str().unwrap();
    let detail = json_body(
        admin_get(&server, &format!("/admin/api/sessions/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let log = detail["turn_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{detail}");
    assert_eq!(
        log[1]["miss"]["reason"],
        json!("system_changed"),
        "{detail}"
    );
    // Unknown ids are 404; a client key may not look.
    let resp = admin_get(
        &server,
        "/admin/api/sessions/0123456789abcdef0123456789abcdef",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = server
        .client
        .get(server.url("/admin/api/sessions"))
        .header("x-api-key", TEST_CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
