//! Config validation: every problem at once, with its key path.

use std::time::Duration;

use ferry_server::{Config, ConfigProblem, RawConfig};
use pretty_assertions::assert_eq;
use serde_json::json;

fn raw(v: serde_json::Value) -> RawConfig {
    serde_json::from_value(v).unwrap()
}

fn problems(v: serde_json::Value) -> Vec<String> {
    match Config::from_raw(raw(v)) {
        Ok(_) => Vec::new(),
        Err(ps) => ps.iter().map(ConfigProblem::to_string).collect(),
    }
}

#[test]
fn defaults_are_valid() {
    let c = Config::from_raw(RawConfig::default()).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(
        c.gateway.stream_keepalive_interval,
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        c.gateway.stream_data_interval_timeout,
        Some(Duration::from_secs(180))
    );
    assert_eq!(c.gateway.max_line_bytes, 40 * 1024 * 1024);
    assert_eq!(c.gateway.max_account_switches, 3);
    assert!(c.accounts.is_empty() && c.client_keys.is_empty());
}

#[test]
fn zero_turns_stream_timers_off() {
    let c = Config::from_raw(raw(json!({"gateway": {"stream_keepalive_interval_secs": 0, "stream_data_interval_timeout_secs": 0}}))).unwrap();
    assert_eq!(
        (
            c.gateway.stream_keepalive_interval,
            c.gateway.stream_data_interval_timeout
        ),
        (None, None)
    );
}

#[test]
fn every_problem_is_reported_together() {
    let got = problems(json!({
        "server": {"listen": "localhost", "max_body_bytes": 10},
        "gateway": {"stream_keepalive_interval_secs": 4, "stream_data_interval_timeout_secs": 5, "max_line_bytes": 1024},
        "session": {"store": "redis"},
        "client_keys": [{"name": "alice", "key": "k1"}, {"name": "alice", "key": "${FERRY_KEY_BOB}"}],
        "accounts": [
            {"name": "primary", "kind": "api_key"},
            {"name": "primary", "kind": "api_key", "api_key": "k", "base_url": "ftp://x"},
            {"name": "o", "kind": "oauth"}
        ]
    }));
    assert_eq!(
        got,
        vec![
            "server.listen: not a socket address (host:port): \"localhost\"",
            "server.max_body_bytes: must be between 1024 and 1073741824, got 10",
            "gateway.stream_keepalive_interval_secs: must be 0 (off) or between 5 and 300 seconds, got 4",
            "gateway.stream_data_interval_timeout_secs: must be 0 (off) or between 30 and 3600 seconds, got 5",
            "gateway.max_line_bytes: must be between 65536 and 1073741824, got 1024",
            "session.redis_url: required when session.store = \"redis\"",
            "client_keys[1].name: duplicate client key name \"alice\"",
            "client_keys[1].key: contains an unexpanded ${...} reference (environment variable not set?)",
            "accounts[0].api_key: is required for kind = \"api_key\"",
            "accounts[1].base_url: must start with http:// or https://",
            "accounts[1].name: duplicate account name \"primary\"",
            "accounts[2].access_token: an OAuth account needs an access_token or a refresh_token, or gateway.oauth_state_dir holding a `ferry login`",
        ]
    );
}

#[test]
fn unknown_keys_are_rejected() {
    let err =
        serde_json::from_value::<RawConfig>(json!({"gateway": {"stream_keepalive_interval": 10}}))
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown field `stream_keepalive_interval`"),
        "{err}"
    );
    let err = serde_json::from_value::<RawConfig>(
        json!({"accounts": [{"name": "a", "kind": "api_key", "apikey": "x"}]}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `apikey`"), "{err}");
}

#[test]
fn the_test_config_is_loopback_and_simulated() {
    let c = Config::for_tests();
    assert!(c.server.listen.ip().is_loopback());
    assert_eq!(c.accounts.len(), 1);
    // The simulated account is an API-key account on the built-in simulated upstream.
    assert_eq!(c.accounts[0].kind, ferry_accounts::AccountKind::ApiKey);
    assert_eq!(
        c.accounts[0].base_url.as_deref(),
        Some(ferry_server::SIMULATED_BASE_URL)
    );
}

#[test]
fn the_memory_session_store_is_sized_for_a_team_and_configurable() {
    let d = Config::from_raw(RawConfig::default()).unwrap().session;
    assert_eq!((d.max_entries, d.max_bytes), (100_000, 256 << 20));
    let c = Config::from_raw(raw(
        json!({"session": {"max_entries": 5000, "max_bytes": 8 << 20}}),
    ))
    .unwrap()
    .session;
    assert_eq!((c.max_entries, c.max_bytes), (5000, 8 << 20));
    assert_eq!(
        problems(json!({"session": {"max_entries": 10, "max_bytes": 1024}})),
        vec![
            "session.max_entries: must be between 1000 and 100000000, got 10",
            "session.max_bytes: must be between 1048576 and 68719476736, got 1024",
        ]
    );
}
