//! Upstream headers: the credential, the session ids and the Codex client identity (case 28).

use ferry_accounts::{AccountKind, Secret, UpstreamHeaderInput, build_upstream_headers};
use http::HeaderMap;
use pretty_assertions::assert_eq;

use super::support::headers;

/// The headers as sorted `(name, value)` pairs, authorization redacted after checking it.
fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<_> = map
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.sort();
    out
}

const SESSION: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

fn claude_code_client(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut list = vec![
        ("user-agent", "claude-cli/2.1.3 (external, cli)"),
        ("content-type", "application/json"),
        ("anthropic-beta", "fast-mode-2026-02-01"),
        ("x-api-key", "sk-ferry-client"),
        ("accept-language", "en"),
    ];
    list.extend_from_slice(extra);
    headers(&list)
}

#[test]
fn case_28_oauth_without_client_conversation_id() {
    let token = Secret::new("at-123");
    let client = claude_code_client(&[("session_id", "client-session"), ("originator", "claude")]);
    let built = build_upstream_headers(&UpstreamHeaderInput {
        kind: AccountKind::Oauth,
        token: &token,
        client_headers: &client,
        chatgpt_account_id: Some("acct-1"),
        session_id: Some(SESSION),
        turn_state: None,
        force_codex_cli: false,
        codex_client_version: None,
        responses_lite: false,
    })
    .unwrap();
    assert!(built.get("authorization").unwrap().is_sensitive());
    assert_eq!(
        pairs(&built),
        owned(&[
            ("accept", "text/event-stream"),
            ("accept-language", "en"),
            ("authorization", "Bearer at-123"),
            ("chatgpt-account-id", "acct-1"),
            ("content-type", "application/json"),
            ("openai-beta", "responses=experimental"),
            ("originator", "codex_cli_rs"),
            ("session_id", SESSION),
            ("user-agent", "codex_cli_rs/0.171.0"),
            ("version", "0.171.0"),
        ])
    );
}

#[test]
fn oauth_with_client_conversation_id_and_turn_state() {
    let token = Secret::new("at-123");
    let client = claude_code_client(&[("conversation_id", "client-conv")]);
    let built = build_upstream_headers(&UpstreamHeaderInput {
        kind: AccountKind::Oauth,
        token: &token,
        client_headers: &client,
        chatgpt_account_id: None,
        session_id: Some(SESSION),
        turn_state: Some("ts-1"),
        force_codex_cli: false,
        codex_client_version: None,
        responses_lite: false,
    })
    .unwrap();
    assert_eq!(built.get("conversation_id").unwrap(), SESSION);
    assert_eq!(built.get("session_id").unwrap(), SESSION);
    assert_eq!(built.get("x-codex-turn-state").unwrap(), "ts-1");
    assert_eq!(built.get("chatgpt-account-id"), None);
}

#[test]
fn oauth_identity_pairs_codex_clients_and_raises_old_versions() {
    let token = Secret::new("t");
    let cases = [
        // A current first-party Codex client keeps its identity.
        (
            "codex_vscode/0.150.1 (Mac OS 15.5.0; arm64) vscode/1.99",
            (
                "codex_vscode/0.150.1 (Mac OS 15.5.0; arm64) vscode/1.99",
                "codex_vscode",
                "0.150.1",
            ),
        ),
        // An old one is raised to the minimum version (#3901).
        (
            "codex_cli_rs/0.98.0 (Linux; x86_64) xterm",
            (
                "codex_cli_rs/0.171.0 (Linux; x86_64) xterm",
                "codex_cli_rs",
                "0.171.0",
            ),
        ),
        // A third-party client gets the canonical identity.
        (
            "opencode/1.0",
            ("codex_cli_rs/0.171.0", "codex_cli_rs", "0.171.0"),
        ),
        ("", ("codex_cli_rs/0.171.0", "codex_cli_rs", "0.171.0")),
    ];
    for (ua, (want_ua, want_originator, want_version)) in cases {
        let client = if ua.is_empty() {
            headers(&[("originator", "codex_vscode")])
        } else {
            headers(&[("user-agent", ua), ("originator", "mismatch")])
        };
        let built = build_upstream_headers(&UpstreamHeaderInput {
            kind: AccountKind::Oauth,
            token: &token,
            client_headers: &client,
            chatgpt_account_id: None,
            session_id: None,
            turn_state: None,
            force_codex_cli: false,
            codex_client_version: None,
            responses_lite: false,
        })
        .unwrap();
        let get = |n: &str| built.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            (get("user-agent"), get("originator"), get("version")),
            (
                want_ua.to_owned(),
                want_originator.to_owned(),
                want_version.to_owned()
            ),
            "client user-agent {ua:?}"
        );
        assert_eq!(built.get("session_id"), None);
        assert_eq!(built.get("conversation_id"), None);
    }
}

#[test]
fn api_key_session_headers_and_no_codex_identity() {
    let token = Secret::new("sk-upstream");
    let client = claude_code_client(&[
        ("conversation_id", "client-conv"),
        ("x-codex-turn-state", "client-ts"),
    ]);
    let built = build_upstream_headers(&UpstreamHeaderInput {
        kind: AccountKind::ApiKey,
        token: &token,
        client_headers: &client,
        chatgpt_account_id: None,
        session_id: Some(SESSION),
        turn_state: Some("stored-ts"),
        force_codex_cli: false,
        codex_client_version: None,
        responses_lite: false,
    })
    .unwrap();
    assert_eq!(
        pairs(&built),
        owned(&[
            ("accept", "text/event-stream"),
            ("accept-language", "en"),
            ("authorization", "Bearer sk-upstream"),
            ("content-type", "application/json"),
            ("conversation_id", SESSION),
            ("session_id", SESSION),
            ("user-agent", "claude-cli/2.1.3 (external, cli)"),
            ("x-codex-turn-state", "client-ts"),
        ])
    );

    let bare = build_upstream_headers(&UpstreamHeaderInput {
        kind: AccountKind::ApiKey,
        token: &token,
        client_headers: &HeaderMap::new(),
        chatgpt_account_id: None,
        session_id: None,
        turn_state: None,
        force_codex_cli: true,
        codex_client_version: None,
        responses_lite: false,
    })
    .unwrap();
    assert_eq!(
        pairs(&bare),
        owned(&[
            ("accept", "text/event-stream"),
            ("authorization", "Bearer sk-upstream"),
            ("content-type", "application/json"),
            ("user-agent", "codex_cli_rs/0.171.0"),
        ])
    );
}

#[test]
fn header_values_with_control_characters_are_errors() {
    let token = Secret::new("bad\ntoken");
    let err = build_upstream_headers(&UpstreamHeaderInput {
        kind: AccountKind::ApiKey,
        token: &token,
        client_headers: &HeaderMap::new(),
        chatgpt_account_id: None,
        session_id: None,
        turn_state: None,
        force_codex_cli: false,
        codex_client_version: None,
        responses_lite: false,
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid value for header authorization");
}
