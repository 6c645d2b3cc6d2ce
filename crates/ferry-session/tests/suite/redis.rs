//! What only the Redis backend does: prefixes, TTLs on every key, versioned values,
//! sharing between replicas, and secrets kept out of errors.

use std::sync::Arc;
use std::time::Duration;

use ferry_session::{
    RedisConfig, RedisStore, SessionConfig, SessionRef, Sessions, Store, StoreConfig, StoreError,
    keys::ClientHeaders, open,
};
use pretty_assertions::assert_eq;
use redis::AsyncCommands as _;
use serde_json::{Value, json};

use super::support::{RedisServer, RedisServerExt as _, claude_code, req};

async fn all_keys(con: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = con.keys("*").await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn every_key_has_a_ttl_and_a_versioned_value() {
    let server = RedisServer::start();
    let sessions = Sessions::new(server.store().await, SessionConfig::default());
    let turn1 = claude_code("02_bash_turn1");
    let turn2 = claude_code("03_bash_turn2_tool_result");
    for turn in [&turn1, &turn2] {
        let resolved = sessions
            .resolve_cache_key(turn, &ClientHeaders::default(), "alice")
            .await
            .unwrap();
        let session = SessionRef::new("primary", "alice", &resolved.key);
        assert!(
            sessions
                .bind_response_id(&session, "resp_1", &resolved.chain)
                .await
        );
        assert!(sessions.bind_turn_state(&session, "ts").await);
        assert!(sessions.bind_chain("alice", &resolved).await);
        assert!(
            sessions
                .bind_sticky_account("alice", &resolved.key, "primary", &resolved.chain)
                .await
        );
        sessions.forget_response_id(&session).await;
    }
    assert!(
        sessions
            .store()
            .try_acquire_slot("slot:primary", 8, Duration::from_secs(1800))
            .await
            .unwrap()
            .is_some()
    );

    let mut con = server.raw().await;
    let keys = all_keys(&mut con).await;
    let kinds: Vec<&str> = keys.iter().map(|k| k.split(':').nth(1).unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["chain", "cont", "slot", "sticky", "turn"],
        "{keys:?}"
    );
    for key in &keys {
        assert!(key.starts_with("ferry:"), "{key}");
        let ttl: i64 = con.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= 3_600_000, "{key} has TTL {ttl}");
        if !key.starts_with("ferry:slot:") {
            let raw: Vec<u8> = con.get(key).await.unwrap();
            let doc: Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(doc["v"], json!(1), "{key}: {doc}");
        }
    }
}

#[tokio::test]
async fn the_key_prefix_is_configurable_and_long_keys_are_hashed() {
    let server = RedisServer::start();
    let config = RedisConfig {
        key_prefix: "test:".to_owned(),
        ..RedisConfig::new(server.url())
    };
    let store = RedisStore::connect(config).await.unwrap();
    store
        .set("short", b"v", Duration::from_secs(60))
        .await
        .unwrap();
    let long = "k".repeat(600);
    store
        .set(&long, b"w", Duration::from_secs(60))
        .await
        .unwrap();
    let mut con = server.raw().await;
    let keys = all_keys(&mut con).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1], "test:short");
    assert!(
        keys[0].starts_with("test:sha256:") && keys[0].len() == "test:sha256:".len() + 64,
        "{keys:?}"
    );
    assert_eq!(store.backend(), "redis");
}

#[tokio::test]
async fn two_replicas_share_one_session() {
    // Two gateway processes pointing at the same Redis: a conversation started on one
    // continues on the other with the same key, account and response id.
    let server = RedisServer::start();
    let config = StoreConfig::Redis(RedisConfig::new(server.url()));
    let one = Sessions::new(open(&config).await.unwrap(), SessionConfig::default());
    let two = Sessions::new(open(&config).await.unwrap(), SessionConfig::default());
    let turn1 = req(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let turn2 = req(&json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    ]}));
    let headers = ClientHeaders::default();

    let r1 = one
        .resolve_cache_key(&turn1, &headers, "alice")
        .await
        .unwrap();
    let s1 = SessionRef::new("primary", "alice", &r1.key);
    one.bind_response_id(&s1, "resp_1", &r1.chain).await;
    one.bind_chain("alice", &r1).await;
    one.bind_sticky_account("alice", &r1.key, "primary", &r1.chain)
        .await;

    let r2 = two
        .resolve_cache_key(&turn2, &headers, "alice")
        .await
        .unwrap();
    assert_eq!(r2.key, r1.key);
    assert_eq!(
        two.sticky_account("alice", &r2.key)
            .await
            .map(|s| s.account),
        Some("primary".to_owned())
    );
    let s2 = SessionRef::new("primary", "alice", &r2.key);
    assert_eq!(
        two.previous_response_id(&s2, &r2.chain).await,
        Some("resp_1".to_owned())
    );
}

#[tokio::test]
async fn slot_holders_are_their_tokens_and_the_set_outlives_the_longest() {
    let server = RedisServer::start();
    let store = server.store().await;
    let long = store
        .try_acquire_slot("slot:acct", 4, Duration::from_secs(1800))
        .await
        .unwrap()
        .unwrap();
    let short = store
        .try_acquire_slot("slot:acct", 4, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let mut con = server.raw().await;
    let mut members: Vec<String> = con.zrange("ferry:slot:acct", 0, -1).await.unwrap();
    members.sort();
    let mut want = vec![long.to_string(), short.to_string()];
    want.sort();
    assert_eq!(members, want);
    // The later, shorter holder does not cut the set's life below the first holder's.
    let ttl: i64 = con.pttl("ferry:slot:acct").await.unwrap();
    assert!(ttl > 1_700_000, "set TTL {ttl} ms");

    store.release_slot("slot:acct", &long).await.unwrap();
    let members: Vec<String> = con.zrange("ferry:slot:acct", 0, -1).await.unwrap();
    assert_eq!(members, vec![short.to_string()]);
    store.release_slot("slot:acct", &short).await.unwrap();
    assert_eq!(all_keys(&mut con).await, Vec::<String>::new());
}

#[tokio::test]
async fn errors_never_show_the_password() {
    // Nothing listens on this port (the server was stopped).
    let port = {
        let server = RedisServer::start();
        server.port()
    };
    let url = format!("redis://:s3cr3t-pw@127.0.0.1:{port}/0");
    let config = RedisConfig {
        connect_timeout: Duration::from_millis(300),
        ..RedisConfig::new(url.clone())
    };
    assert!(!format!("{config:?}").contains("s3cr3t-pw"));
    assert_eq!(
        config.redacted_url(),
        format!("redis://:***@127.0.0.1:{port}/0")
    );
    let err = RedisStore::connect(config).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cr3t-pw"), "{text}");
    assert!(text.contains("***"), "{text}");

    let bad = RedisStore::connect(RedisConfig::new("redis://:s3cr3t-pw@[::bad"))
        .await
        .unwrap_err();
    assert!(!format!("{bad} {bad:?}").contains("s3cr3t-pw"), "{bad:?}");
}

#[tokio::test]
async fn a_store_outage_costs_state_not_requests() {
    let server = RedisServer::start();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(RedisConfig {
            response_timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
            ..RedisConfig::new(server.url())
        })
        .await
        .unwrap(),
    );
    let sessions = Sessions::new(Arc::clone(&store), SessionConfig::default());
    drop(server);
    let turn = req(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let resolved = sessions
        .resolve_cache_key(&turn, &ClientHeaders::default(), "alice")
        .await
        .unwrap();
    assert_eq!(resolved.key, resolved.chain.fresh_key().unwrap());
    let session = SessionRef::new("primary", "alice", &resolved.key);
    assert_eq!(
        sessions
            .previous_response_id(&session, &resolved.chain)
            .await,
        None
    );
    assert!(
        !sessions
            .bind_response_id(&session, "resp_1", &resolved.chain)
            .await
    );
    assert!(sessions.store_errors() >= 2);
    assert!(store.get("k").await.is_err());
}

#[tokio::test]
async fn redacted_urls() {
    let cases = [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        (
            "redis://:hunter2@127.0.0.1:6379/0",
            "redis://:***@127.0.0.1:6379/0",
        ),
        (
            "rediss://user:p%40ss@host:6380",
            "rediss://user:***@host:6380",
        ),
        ("redis://user@host:6379", "redis://user@host:6379"),
    ];
    let got: Vec<String> = cases
        .iter()
        .map(|(url, _)| RedisConfig::new(*url).redacted_url())
        .collect();
    let want: Vec<&str> = cases.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
}
