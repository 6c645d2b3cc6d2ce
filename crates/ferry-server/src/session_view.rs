//! The admin API's sessions view: the JSON that `GET /admin/api/sessions` and
//! `GET /admin/api/sessions/{id}` serve, from the turn log
//! ([`ferry_session::Sessions::recent_sessions`], [`ferry_session::Sessions::session_turns`]).
//!
//! Each session is a client key and a prompt cache key; it shows the account of its latest
//! turn, the continuation chain (upstream response ids, when continuation is on), the cached
//! ratio of each logged turn, and why each miss missed (docs/cache.md). Nothing in it is a
//! secret: client keys appear by their configured name, cache keys are ferry's own (the
//! isolated `prompt_cache_key` sent upstream is shown next to them).

use serde_json::{Value, json};

use crate::state::AppState;

/// Sessions listed when the caller names no limit.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// Most sessions listed at once.
pub(crate) const MAX_LIMIT: usize = 500;

/// `{"sessions": [summary, …]}`, newest first: the sessions of the client key named
/// `client` (its configured name), or of every configured client key when `None` (the
/// open gateway's when none is configured). `limit` is clamped to 1..=[`MAX_LIMIT`].
pub(crate) async fn sessions_json(state: &AppState, client: Option<&str>, limit: usize) -> Value {
    let clients: Vec<&str> = match client {
        Some(c) => vec![c],
        None if state.config.client_keys.is_empty() => vec![""],
        None => state
            .config
            .client_keys
            .iter()
            .map(|k| k.name.as_str())
            .collect(),
    };
    let sessions = state
        .sessions
        .recent_sessions(&clients, limit.clamp(1, MAX_LIMIT))
        .await;
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|s| with_upstream_key(serde_json::to_value(s).unwrap_or(Value::Null)))
        .collect();
    json!({ "sessions": sessions })
}

/// One session's summary and its logged turns, oldest first (`turn_log`); `None` when no
/// session has this id (unknown, expired, or not an id): the endpoint's 404.
pub(crate) async fn session_json(state: &AppState, id: &str) -> Option<Value> {
    let detail = state.sessions.session_turns(id).await?;
    serde_json::to_value(&detail).ok().map(with_upstream_key)
}

/// Adds `prompt_cache_key`: the key as sent upstream ([`ferry_session::keys::upstream_cache_key`]),
/// to match the session with the upstream's own logs.
fn with_upstream_key(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        let client = obj.get("client").and_then(Value::as_str).unwrap_or("");
        let key = obj.get("cache_key").and_then(Value::as_str).unwrap_or("");
        let upstream = ferry_session::keys::upstream_cache_key(client, key);
        obj.insert("prompt_cache_key".to_owned(), Value::String(upstream));
    }
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ferry_testkit::upstream::{mount_fn, sse_response, start, status_response};
    use ferry_testkit::{TEST_CLIENT_KEY, TEST_UPSTREAM_KEY, Usage, sse, text_events};
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{ClientKey, Secret};

    /// A gateway on 127.0.0.1:0 with one client key (`alice`) and the accounts given, and
    /// the state it serves with.
    struct Gateway {
        base: String,
        state: Arc<AppState>,
        client: reqwest::Client,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    fn account(name: &str, base_url: &str) -> ferry_accounts::AccountConfig {
        let mut a = ferry_accounts::AccountConfig::api_key(
            name,
            base_url,
            ferry_accounts::Secret::new(TEST_UPSTREAM_KEY),
        );
        a.default_model = Some("gpt-5.1".to_owned());
        a
    }

    async fn gateway(accounts: Vec<ferry_accounts::AccountConfig>) -> Gateway {
        let mut config = crate::Config::for_tests();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.accounts = accounts;
        config.client_keys = vec![ClientKey {
            name: "alice".to_owned(),
            key: Secret::new(TEST_CLIENT_KEY),
            budget: Default::default(),
        }];
        let server = crate::bind(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let state = server.current_state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the server runs for the whole test"
        )]
        drop(tokio::spawn(server.run(async {
            let _ = stopped.await;
        })));
        Gateway {
            base,
            state,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            _stop: stop,
        }
    }

    impl Gateway {
        async fn send(&self, body: &Value) {
            let resp = self
                .client
                .post(format!("{}/v1/messages", self.base))
                .header("x-api-key", TEST_CLIENT_KEY)
                .header("anthropic-version", "2023-06-01")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let _ = resp.bytes().await.unwrap();
        }

        /// The only session's detail once it has `turns` turns (they are logged after the
        /// response).
        async fn session_with(&self, turns: u64) -> Value {
            for _ in 0..200 {
                let list = sessions_json(&self.state, Some("alice"), DEFAULT_LIMIT).await;
                if let Some(id) = list["sessions"][0]["id"].as_str()
                    && let Some(detail) = session_json(&self.state, id).await
                    && detail["turns"] == json!(turns)
                {
                    return detail;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("no session with {turns} turns");
        }
    }

    fn turn(n: usize, system: &str) -> Value {
        let mut messages = vec![json!({"role": "user", "content": "question 0"})];
        for i in 1..n {
            messages
                .push(json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}));
            messages.push(json!({"role": "user", "content": format!("question {i}")}));
        }
        json!({
            "model": "claude-opus-4-8", "max_tokens": 1024, "system": system,
            "metadata": {"user_id": format!("user_{}_account__session_{}", "d".repeat(64),
                "0b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b")},
            "messages": messages,
        })
    }

    /// An upstream whose turns read `cached[n]` of 4,000 prompt tokens from the cache.
    async fn upstream(cached: &'static [u64]) -> wiremock::MockServer {
        let upstream = start().await;
        mount_fn(&upstream, move |_, n| {
            let mut usage = Usage::new(4000, 5);
            usage.cached = cached.get(n).copied().unwrap_or(0);
            sse_response(sse(text_events(&format!("resp_{n}"), &["ok"], usage)))
        })
        .await;
        upstream
    }

    #[tokio::test]
    async fn the_session_shows_each_turn_and_why_it_missed() {
        let up = upstream(&[0, 3900, 0]).await;
        let gw = gateway(vec![account("primary", &up.uri())]).await;
        gw.send(&turn(1, "be brief")).await;
        gw.send(&turn(2, "be brief")).await;
        gw.send(&turn(3, "be brief, today is Thursday")).await;
        let detail = gw.session_with(3).await;

        let id = detail["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        let key = detail["cache_key"].as_str().unwrap();
        assert!(key.starts_with("anthropic-metadata-"), "{key}");
        assert_eq!(
            detail["prompt_cache_key"],
            json!(ferry_session::keys::upstream_cache_key("alice", key))
        );
        let summary = json!({
            "client": detail["client"], "key_source": detail["key_source"],
            "turns": detail["turns"], "misses": detail["misses"],
            "last_account": detail["last_account"], "cached_ratios": detail["cached_ratios"],
            "continuation_chain": detail["continuation_chain"],
        });
        assert_eq!(
            summary,
            json!({
                "client": "alice", "key_source": "metadata", "turns": 3, "misses": 2,
                "last_account": "primary", "cached_ratios": [0.0, 0.975, 0.0],
                "continuation_chain": [],
            })
        );
        let turns = detail["turn_log"].as_array().unwrap();
        let reasons: Vec<&Value> = turns.iter().map(|t| &t["miss"]["reason"]).collect();
        assert_eq!(
            reasons,
            [
                &json!("new_session"),
                &Value::Null,
                &json!("system_changed")
            ]
        );
        let third = &turns[2];
        assert_eq!(
            (
                &third["account"],
                &third["model"],
                &third["input_tokens"],
                &third["cached_tokens"],
                &third["continued"]
            ),
            (
                &json!("primary"),
                &json!("gpt-5.1"),
                &json!(4000),
                &json!(0),
                &json!(false)
            )
        );
        assert!(third["idle_secs"].is_u64(), "{third}");
        assert!(
            third["miss"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("the system prompt differs"),
            "{third}"
        );
        // The metric counts the explained reason.
        let text = gw.state.metrics.render();
        assert!(
            text.contains("ferry_cache_miss_total{reason=\"system_changed\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ferry_cache_miss_total{reason=\"prefix_changed\"} 0\n"),
            "{text}"
        );

        // The list shows the same summary; unknown ids and other clients show nothing.
        let list = sessions_json(&gw.state, None, DEFAULT_LIMIT).await;
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(list["sessions"][0]["id"], json!(id));
        assert_eq!(list["sessions"][0].get("turn_log"), None);
        assert_eq!(
            sessions_json(&gw.state, Some("bob"), DEFAULT_LIMIT).await,
            json!({"sessions": []})
        );
        assert_eq!(session_json(&gw.state, &"f".repeat(32)).await, None);
        assert_eq!(session_json(&gw.state, "not-an-id").await, None);
    }

    #[tokio::test]
    async fn an_account_switch_names_both_accounts() {
        let primary = start().await;
        mount_fn(&primary, |_, n| {
            if n == 0 {
                sse_response(sse(text_events("resp_p", &["ok"], Usage::new(4000, 5))))
            } else {
                status_response(429, &[], r#"{"error":{"message":"slow down"}}"#)
            }
        })
        .await;
        let backup = upstream(&[]).await;
        let gw = gateway(vec![
            account("primary", &primary.uri()),
            account("backup", &backup.uri()),
        ])
        .await;
        gw.send(&turn(1, "be brief")).await;
        gw.send(&turn(2, "be brief")).await;
        let detail = gw.session_with(2).await;
        let miss = &detail["turn_log"][1]["miss"];
        assert_eq!(
            (
                &miss["reason"],
                &miss["previous_account"],
                &detail["last_account"]
            ),
            (
                &json!("account_switched"),
                &json!("primary"),
                &json!("backup")
            )
        );
        assert!(
            miss["detail"]
                .as_str()
                .unwrap()
                .contains("account backup after primary"),
            "{miss}"
        );
    }

    #[tokio::test]
    async fn the_limit_is_clamped() {
        let up = upstream(&[]).await;
        let gw = gateway(vec![account("primary", &up.uri())]).await;
        gw.send(&turn(1, "be brief")).await;
        let _ = gw.session_with(1).await;
        let none = sessions_json(&gw.state, Some("alice"), 0).await;
        assert_eq!(none["sessions"].as_array().unwrap().len(), 1);
        let many = sessions_json(&gw.state, Some("alice"), usize::MAX).await;
        assert_eq!(many["sessions"].as_array().unwrap().len(), 1);
    }
}
