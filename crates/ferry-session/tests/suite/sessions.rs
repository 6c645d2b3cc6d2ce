//! Session state over both backends, including the numbered session cases (the `case…`
//! tests).

use std::sync::Arc;
use std::time::Duration;

use ferry_apicompat::anthropic;
use ferry_session::keys::{ClientHeaders, session_uuid};
use ferry_session::{
    ChainMatch, ContinuationError, KeySource, ResolvedKey, SessionConfig, SessionRef, Sessions,
    StickyBinding, Store, classify_continuation_error, continuation_enabled,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::support::{claude_code, req};

crate::on_both_backends!(
    case42_digest_key_is_reused_and_the_binding_moves_forward,
    digest_chains_are_per_client_key,
    a_conversation_that_changed_key_is_noticed,
    case10_appended_turns_keep_the_session_id,
    response_binding_lifecycle,
    continuation_requires_the_next_turn_of_the_bound_conversation,
    bindings_are_per_account_and_client_key,
    case15_not_found_forgets_the_id_and_the_retry_has_none,
    two_not_found_answers_disable_continuation,
    case19_unsupported_disables_continuation_for_the_session,
    case14_oauth_turn_state_and_full_input,
    case43_oversize_turn_state_is_not_stored,
    sticky_account_binding,
    bindings_expire_after_the_ttl,
    claude_code_replay_keeps_key_account_and_continuation,
);

fn sessions(store: Arc<dyn Store>) -> Sessions {
    Sessions::new(store, SessionConfig::default())
}

/// A conversation of `turns` user turns, each answered but the last.
fn conversation(turns: usize) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "question 0"})];
    for i in 1..turns {
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        messages.push(json!({"role": "user", "content": format!("question {i}")}));
    }
    json!({"model": "claude-opus-4-8", "max_tokens": 64, "system": "be brief", "messages": messages})
}

fn turn(turns: usize) -> anthropic::MessagesRequest {
    req(&conversation(turns))
}

const NO_HEADERS: ClientHeaders<'static> = ClientHeaders {
    session_id: None,
    conversation_id: None,
    claude_code_session_id: None,
};

async fn resolve(s: &Sessions, request: &anthropic::MessagesRequest, client: &str) -> ResolvedKey {
    s.resolve_cache_key(request, &NO_HEADERS, client)
        .await
        .unwrap()
}

async fn case42_digest_key_is_reused_and_the_binding_moves_forward(store: Arc<dyn Store>) {
    let s = sessions(store);
    let (t1, t2, t3) = (turn(1), turn(2), turn(3));
    let r1 = resolve(&s, &t1, "alice").await;
    assert_eq!((r1.source, &r1.chain_match), (KeySource::Digest, &None));
    assert_eq!(Some(&r1.key), r1.chain.fresh_key().as_ref());
    assert!(s.bind_chain("alice", &r1).await);

    let r2 = resolve(&s, &t2, "alice").await;
    assert_eq!(r2.key, r1.key);
    assert_eq!(
        r2.chain_match,
        Some(ChainMatch {
            key: r1.key.clone(),
            len: r1.chain.len()
        })
    );
    assert!(s.bind_chain("alice", &r2).await);

    // The binding moved: turn 1's chain no longer has an entry, turn 2's has.
    assert_eq!(resolve(&s, &t1, "alice").await.chain_match, None);
    let r3 = resolve(&s, &t3, "alice").await;
    assert_eq!(r3.key, r1.key);
    assert_eq!(r3.chain_match.map(|m| m.len), Some(r2.chain.len()));
}

async fn digest_chains_are_per_client_key(store: Arc<dyn Store>) {
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    s.bind_chain("alice", &r1).await;
    let bob = resolve(&s, &turn(2), "bob").await;
    assert_eq!(bob.chain_match, None);
    assert_ne!(bob.key, r1.key);
    assert_ne!(session_uuid("alice", &r1.key), session_uuid("bob", &r1.key));
}

async fn a_conversation_that_changed_key_is_noticed(store: Arc<dyn Store>) {
    let s = sessions(store);
    let first = resolve(&s, &turn(1), "alice").await;
    s.bind_chain("alice", &first).await;
    // The client now names a session explicitly (for example after a resume).
    let headers = ClientHeaders {
        session_id: Some("explicit-1"),
        ..NO_HEADERS
    };
    let next = s
        .resolve_cache_key(&turn(2), &headers, "alice")
        .await
        .unwrap();
    assert_eq!(
        (next.key.as_str(), next.source),
        ("explicit-1", KeySource::Explicit)
    );
    assert_eq!(next.chain_match.map(|m| m.key), Some(first.key));
}

async fn case10_appended_turns_keep_the_session_id(store: Arc<dyn Store>) {
    // Case 10: two requests where the second appends turns to the first,
    // no client key: the same upstream session id both times.
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    s.bind_chain("alice", &r1).await;
    let r2 = resolve(&s, &turn(3), "alice").await;
    assert_eq!(
        session_uuid("alice", &r2.key),
        session_uuid("alice", &r1.key)
    );
    assert!(r2.applies_to("gpt-5.1-codex"));
    assert!(!r2.applies_to("gpt-4o"));
}

async fn response_binding_lifecycle(store: Arc<dyn Store>) {
    let s = sessions(store);
    let (t1, t2) = (turn(1), turn(2));
    let r1 = resolve(&s, &t1, "alice").await;
    let r2 = resolve(&s, &t2, "alice").await;
    let session = SessionRef::new("primary", "alice", &r1.key);

    assert_eq!(s.previous_response_id(&session, &r2.chain).await, None);
    assert!(s.bind_response_id(&session, " resp_1 ", &r1.chain).await);
    assert_eq!(
        s.previous_response_id(&session, &r2.chain).await.as_deref(),
        Some("resp_1")
    );
    let binding = s.response_binding(&session).await.unwrap();
    assert_eq!(
        (binding.response_id.as_str(), binding.chain_len),
        ("resp_1", r1.chain.len())
    );

    // A blank id removes the binding.
    assert!(!s.bind_response_id(&session, "  ", &r1.chain).await);
    assert_eq!(s.response_binding(&session).await, None);

    // Disabled: nothing is returned, nothing can be bound, the flag is visible.
    s.bind_response_id(&session, "resp_2", &r1.chain).await;
    assert!(!s.is_continuation_disabled(&session).await);
    s.disable_continuation(&session).await;
    assert!(s.is_continuation_disabled(&session).await);
    assert_eq!(s.previous_response_id(&session, &r2.chain).await, None);
    assert!(!s.bind_response_id(&session, "resp_3", &r1.chain).await);
    assert_eq!(s.response_binding(&session).await, None);
}

async fn continuation_requires_the_next_turn_of_the_bound_conversation(store: Arc<dyn Store>) {
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let session = SessionRef::new("primary", "alice", "shared-key");
    s.bind_response_id(&session, "resp_1", &r1.chain).await;
    // The same request again, a skipped turn, and another conversation under the same key.
    let other = req(&json!({"model": "m", "system": "be brief", "messages": [
        {"role": "user", "content": "a sub-agent's task"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "go on"},
    ]}));
    for request in [turn(1), turn(3), other] {
        let chain = resolve(&s, &request, "alice").await.chain;
        assert_eq!(
            s.previous_response_id(&session, &chain).await,
            None,
            "{chain}"
        );
    }
    let next = resolve(&s, &turn(2), "alice").await.chain;
    assert_eq!(
        s.previous_response_id(&session, &next).await.as_deref(),
        Some("resp_1")
    );
}

async fn bindings_are_per_account_and_client_key(store: Arc<dyn Store>) {
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let next = resolve(&s, &turn(2), "alice").await.chain;
    s.bind_response_id(
        &SessionRef::new("primary", "alice", "k"),
        "resp_1",
        &r1.chain,
    )
    .await;
    s.bind_turn_state(&SessionRef::new("primary", "alice", "k"), "ts")
        .await;
    for other in [
        SessionRef::new("backup", "alice", "k"),
        SessionRef::new("primary", "bob", "k"),
        SessionRef::new("primary", "alice", "k2"),
    ] {
        assert_eq!(
            s.previous_response_id(&other, &next).await,
            None,
            "{other:?}"
        );
        assert_eq!(s.turn_state(&other).await, None, "{other:?}");
    }
    // Key whitespace does not matter.
    assert_eq!(
        s.turn_state(&SessionRef::new("primary", "alice", " k "))
            .await
            .as_deref(),
        Some("ts")
    );
}

async fn case15_not_found_forgets_the_id_and_the_retry_has_none(store: Arc<dyn Store>) {
    // Case 15 at the session level: a stale id draws a 400 "not available
    // for this user"; the binding is forgotten, the retry goes without an id but with the
    // same key; the success binds the new id.
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let r2 = resolve(&s, &turn(2), "alice").await;
    let session = SessionRef::new("primary", "alice", &r2.key);
    s.bind_response_id(&session, "resp_stale", &r1.chain).await;
    assert_eq!(
        s.previous_response_id(&session, &r2.chain).await.as_deref(),
        Some("resp_stale")
    );

    let body = br#"{"error":{"message":"previous_response_id is not available for this user","type":"invalid_request_error"}}"#;
    assert_eq!(
        classify_continuation_error(400, body),
        Some(ContinuationError::NotFound)
    );
    assert!(
        !s.forget_response_id(&session).await,
        "one miss does not disable"
    );

    let retry = resolve(&s, &turn(2), "alice").await;
    assert_eq!(retry.key, r2.key);
    assert_eq!(s.previous_response_id(&session, &retry.chain).await, None);
    assert!(s.bind_response_id(&session, "resp_new", &retry.chain).await);
    let r3 = resolve(&s, &turn(3), "alice").await;
    assert_eq!(
        s.previous_response_id(&session, &r3.chain).await.as_deref(),
        Some("resp_new")
    );
}

async fn two_not_found_answers_disable_continuation(store: Arc<dyn Store>) {
    // An upstream that never keeps responses (store=false) would otherwise cost a failed
    // call on every turn.
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let session = SessionRef::new("primary", "alice", &r1.key);
    s.bind_turn_state(&session, "ts").await;
    assert!(!s.forget_response_id(&session).await);
    s.bind_response_id(&session, "resp_2", &r1.chain).await;
    assert!(s.forget_response_id(&session).await);
    assert!(s.is_continuation_disabled(&session).await);
    assert!(!s.bind_response_id(&session, "resp_3", &r1.chain).await);
    assert_eq!(s.turn_state(&session).await.as_deref(), Some("ts"));
}

async fn case19_unsupported_disables_continuation_for_the_session(store: Arc<dyn Store>) {
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let session = SessionRef::new("primary", "alice", &r1.key);
    s.bind_response_id(&session, "resp_1", &r1.chain).await;
    s.bind_turn_state(&session, "ts").await;
    let body = br#"{"error":{"message":"previous_response_id is only supported on Responses WebSocket connections"}}"#;
    assert_eq!(
        classify_continuation_error(400, body),
        Some(ContinuationError::Unsupported)
    );
    s.disable_continuation(&session).await;
    // Following requests of the session (same key) carry no id, whatever gets bound.
    for n in 2..=3 {
        let r = resolve(&s, &turn(n), "alice").await;
        assert_eq!(s.previous_response_id(&session, &r.chain).await, None);
        assert!(
            !s.bind_response_id(&session, &format!("resp_{n}"), &r.chain)
                .await
        );
    }
    assert_eq!(s.turn_state(&session).await.as_deref(), Some("ts"));
}

async fn case14_oauth_turn_state_and_full_input(store: Arc<dyn Store>) {
    // Case 14: an OAuth account with a stored turn state and response id
    // sends the turn state, and no previous_response_id (continuation is for API keys).
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    let session = SessionRef::new("oauth-1", "alice", &r1.key);
    s.bind_response_id(&session, "resp_1", &r1.chain).await;
    assert!(s.bind_turn_state(&session, "turn-state-abc").await);
    assert_eq!(
        s.turn_state(&session).await.as_deref(),
        Some("turn-state-abc")
    );
    assert!(!continuation_enabled(false, true, "gpt-5.1-codex"));
    // Binding a blank state removes it.
    assert!(!s.bind_turn_state(&session, " ").await);
    assert_eq!(s.turn_state(&session).await, None);
}

async fn case43_oversize_turn_state_is_not_stored(store: Arc<dyn Store>) {
    let s = sessions(store);
    let session = SessionRef::new("oauth-1", "alice", "k");
    assert!(s.bind_turn_state(&session, "small").await);
    let before = s.store_errors();
    assert!(!s.bind_turn_state(&session, &"x".repeat(70 * 1024)).await);
    assert_eq!(s.turn_state(&session).await, None);
    assert_eq!(s.store_errors(), before + 1);
}

async fn sticky_account_binding(store: Arc<dyn Store>) {
    let s = sessions(store);
    let r1 = resolve(&s, &turn(1), "alice").await;
    assert_eq!(s.sticky_account("alice", &r1.key).await, None);
    assert!(
        s.bind_sticky_account("alice", &r1.key, "primary", &r1.chain)
            .await
    );
    let want = StickyBinding {
        account: "primary".to_owned(),
        chain_len: r1.chain.len(),
        chain_id: r1.chain.id().unwrap(),
    };
    assert_eq!(s.sticky_account("alice", &r1.key).await, Some(want.clone()));
    assert_eq!(s.sticky_account("bob", &r1.key).await, None);
    // A failover away from another account leaves it alone; away from this one clears it.
    assert!(!s.clear_sticky_account_if("alice", &r1.key, "backup").await);
    assert_eq!(s.sticky_account("alice", &r1.key).await, Some(want));
    assert!(s.clear_sticky_account_if("alice", &r1.key, "primary").await);
    assert_eq!(s.sticky_account("alice", &r1.key).await, None);
}

async fn bindings_expire_after_the_ttl(store: Arc<dyn Store>) {
    let s = Sessions::new(
        store,
        SessionConfig {
            ttl: Duration::from_millis(150),
            ..SessionConfig::default()
        },
    );
    let r1 = resolve(&s, &turn(1), "alice").await;
    let session = SessionRef::new("primary", "alice", &r1.key);
    s.bind_chain("alice", &r1).await;
    s.bind_response_id(&session, "resp_1", &r1.chain).await;
    s.bind_turn_state(&session, "ts").await;
    s.bind_sticky_account("alice", &r1.key, "primary", &r1.chain)
        .await;
    s.disable_continuation(&session).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r2 = resolve(&s, &turn(2), "alice").await;
    assert_eq!(r2.chain_match, None);
    assert_eq!(s.turn_state(&session).await, None);
    assert_eq!(s.sticky_account("alice", &r1.key).await, None);
    assert!(!s.is_continuation_disabled(&session).await);
}

async fn claude_code_replay_keeps_key_account_and_continuation(store: Arc<dyn Store>) {
    // The two recorded turns of one Claude Code session, through the whole session flow.
    let s = sessions(store);
    let headers = ClientHeaders {
        claude_code_session_id: Some("584c32ea-42e9-4d5a-a3ff-088cad91588c"),
        ..NO_HEADERS
    };
    let t1 = claude_code("02_bash_turn1");
    let r1 = s.resolve_cache_key(&t1, &headers, "alice").await.unwrap();
    assert_eq!(r1.source, KeySource::Metadata);
    let session = SessionRef::new("primary", "alice", &r1.key);
    assert_eq!(s.previous_response_id(&session, &r1.chain).await, None);
    s.bind_response_id(&session, "resp_turn1", &r1.chain).await;
    s.bind_chain("alice", &r1).await;
    s.bind_sticky_account("alice", &r1.key, "primary", &r1.chain)
        .await;

    let t2 = claude_code("03_bash_turn2_tool_result");
    let r2 = s.resolve_cache_key(&t2, &headers, "alice").await.unwrap();
    assert_eq!(r2.key, r1.key);
    assert_eq!(
        r2.chain_match,
        Some(ChainMatch {
            key: r1.key.clone(),
            len: r1.chain.len()
        })
    );
    assert_eq!(
        s.sticky_account("alice", &r2.key)
            .await
            .map(|b| b.account)
            .as_deref(),
        Some("primary")
    );
    assert_eq!(
        s.previous_response_id(&session, &r2.chain).await.as_deref(),
        Some("resp_turn1")
    );
}
