//! The turn log on both backends: turns and explanations recorded per session, bounded,
//! listed per client key, and read back by id.

use std::sync::Arc;

use ferry_apicompat::anthropic;
use ferry_session::keys::ClientHeaders;
use ferry_session::{
    MAX_RECENT, MAX_TURNS, MissReason, PrefixChange, PrefixFingerprint, ResolvedKey, SessionConfig,
    Sessions, Store, TurnFacts, session_id,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::support::req;

crate::on_both_backends!(
    turns_are_logged_with_their_explanations,
    each_agent_is_compared_with_its_own_previous_turn,
    a_moved_marker_is_found_under_the_old_key,
    the_log_and_the_index_are_bounded,
    sessions_are_listed_per_client_key_newest_first,
);

fn sessions(store: Arc<dyn Store>) -> Sessions {
    Sessions::new(store, SessionConfig::default())
}

/// A conversation of `turns` questions (the last unanswered), in a Claude Code session.
fn conversation(turns: usize, session: &str) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "question 0"})];
    for i in 1..turns {
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        messages.push(json!({"role": "user", "content": format!("question {i}")}));
    }
    json!({"model": "claude-opus-4-8", "max_tokens": 64, "system": "be brief",
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "metadata": {"user_id": format!("user_{}_account__session_{session}", "a".repeat(64))},
        "messages": messages})
}

const SESSION: &str = "11111111-2222-3333-4444-555555555555";

struct Turn {
    req: anthropic::MessagesRequest,
    resolved: ResolvedKey,
    fp: PrefixFingerprint,
}

async fn turn(s: &Sessions, v: &Value, client: &str) -> Turn {
    let req = req(v);
    let resolved = s
        .resolve_cache_key(&req, &ClientHeaders::default(), client)
        .await
        .unwrap();
    let fp = PrefixFingerprint::of(&req, &resolved.chain);
    Turn { req, resolved, fp }
}

/// Records `t` as served by `account` at second `at`, with `cached` of 10 000 prompt
/// tokens from the cache; `miss` is what classify_miss said.
#[expect(
    clippy::too_many_arguments,
    reason = "a test helper: each case reads as one call"
)]
async fn record(
    s: &Sessions,
    t: &Turn,
    client: &str,
    agent: &str,
    account: &str,
    at: u64,
    cached: u64,
    miss: Option<MissReason>,
) -> Option<ferry_session::MissExplanation> {
    assert!(!t.req.messages.is_empty());
    s.record_turn(&TurnFacts {
        client_key_id: client,
        resolved: &t.resolved,
        agent,
        account,
        model: "gpt-5.1",
        fingerprint: &t.fp,
        at_ms: at * 1000,
        prompt_tokens: 10_000,
        cached_tokens: cached,
        continued: false,
        response_id: None,
        miss,
    })
    .await
}

async fn turns_are_logged_with_their_explanations(store: Arc<dyn Store>) {
    let s = sessions(store);
    let t1 = turn(&s, &conversation(1, SESSION), "alice").await;
    let e1 = record(
        &s,
        &t1,
        "alice",
        "",
        "primary",
        100,
        0,
        Some(MissReason::NewSession),
    )
    .await;
    assert_eq!(e1.map(|e| e.reason), Some(MissReason::NewSession));
    let t2 = turn(&s, &conversation(2, SESSION), "alice").await;
    assert_eq!(
        record(&s, &t2, "alice", "", "primary", 110, 9_000, None).await,
        None
    );
    // Turn 3 edits the first question: prefix_changed becomes message_edited at 0.
    let mut v = conversation(3, SESSION);
    v["messages"][0]["content"] = json!("question 0, edited");
    let t3 = turn(&s, &v, "alice").await;
    let e3 = record(
        &s,
        &t3,
        "alice",
        "",
        "primary",
        130,
        500,
        Some(MissReason::PrefixChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        (e3.reason, e3.change, e3.idle_secs),
        (
            MissReason::MessageEdited,
            Some(PrefixChange::Message {
                index: 0,
                before: 3,
                after: 5
            }),
            Some(20)
        )
    );
    // Turn 4 drops the tool: the chain extends, so classify_miss says upstream_evicted.
    let mut v = conversation(4, SESSION);
    v["messages"][0]["content"] = json!("question 0, edited");
    v["tools"] = json!([]);
    let t4 = turn(&s, &v, "alice").await;
    let e4 = record(
        &s,
        &t4,
        "alice",
        "",
        "primary",
        1000,
        0,
        Some(MissReason::UpstreamEvicted),
    )
    .await
    .unwrap();
    assert_eq!(
        (e4.reason, e4.idle_secs),
        (MissReason::ToolsChanged, Some(870))
    );

    let id = session_id("alice", &t1.resolved.key);
    let detail = s.session_turns(&id).await.unwrap();
    let reasons: Vec<Option<MissReason>> = detail
        .turn_log
        .iter()
        .map(|t| t.miss.as_ref().map(|m| m.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            Some(MissReason::NewSession),
            None,
            Some(MissReason::MessageEdited),
            Some(MissReason::ToolsChanged)
        ]
    );
    let idle: Vec<Option<u64>> = detail.turn_log.iter().map(|t| t.idle_secs).collect();
    assert_eq!(idle, vec![None, Some(10), Some(20), Some(870)]);
    let s1 = &detail.summary;
    assert_eq!(
        (
            s1.client.as_str(),
            s1.cache_key.as_str(),
            s1.key_source.as_str(),
            s1.turns,
            s1.misses,
            s1.last_account.as_str(),
            s1.started_at_ms,
            s1.last_at_ms,
        ),
        (
            "alice",
            t1.resolved.key.as_str(),
            "metadata",
            4,
            3,
            "primary",
            100_000,
            1_000_000
        )
    );
    assert_eq!(s1.cached_ratios, vec![0.0, 0.9, 0.05, 0.0]);
    assert!(s1.continuation_chain.is_empty());
    // The JSON an admin sees.
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["id"], json!(id));
    assert_eq!(
        json["turn_log"][2]["miss"]["reason"],
        json!("message_edited")
    );
    assert_eq!(json["turn_log"][2]["miss"]["change"]["index"], json!(0));
    assert_eq!(json["turn_log"][1].get("miss"), None);
    // Unknown, malformed and other clients' ids.
    assert_eq!(s.session_turns(&"0".repeat(32)).await, None);
    assert_eq!(s.session_turns("../etc").await, None);
    assert_eq!(s.session_turns(&id.to_uppercase()).await, None);
}

async fn each_agent_is_compared_with_its_own_previous_turn(store: Arc<dyn Store>) {
    let s = sessions(store);
    let main1 = turn(&s, &conversation(2, SESSION), "alice").await;
    record(&s, &main1, "alice", "", "primary", 100, 9_000, None).await;
    // A sub-agent of the same session: another system prompt, its own conversation.
    let mut sub = conversation(2, SESSION);
    sub["system"] = json!("you are a sub-agent");
    sub["messages"][0]["content"] = json!("sub task");
    let sub1 = turn(&s, &sub, "alice").await;
    record(&s, &sub1, "alice", "agent-1", "primary", 105, 9_000, None).await;
    // The main agent's next turn only extends its own conversation; it misses because
    // the upstream dropped it, not because of the sub-agent's prompt.
    let main2 = turn(&s, &conversation(3, SESSION), "alice").await;
    let e = record(
        &s,
        &main2,
        "alice",
        "",
        "primary",
        110,
        0,
        Some(MissReason::PrefixChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        (e.reason, e.change, e.idle_secs),
        (MissReason::PrefixChanged, None, Some(10))
    );
    // The sub-agent's next turn changed its system prompt.
    let mut sub = conversation(3, SESSION);
    sub["system"] = json!("you are a sub-agent, v2");
    sub["messages"][0]["content"] = json!("sub task");
    let sub2 = turn(&s, &sub, "alice").await;
    let e = record(
        &s,
        &sub2,
        "alice",
        "agent-1",
        "backup",
        120,
        0,
        Some(MissReason::PrefixChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        (e.reason, e.idle_secs, e.previous_account.as_deref()),
        (MissReason::SystemChanged, Some(15), Some("primary"))
    );
    let detail = s
        .session_turns(&session_id("alice", &main1.resolved.key))
        .await
        .unwrap();
    let agents: Vec<&str> = detail.turn_log.iter().map(|t| t.agent.as_str()).collect();
    assert_eq!(agents, vec!["", "agent-1", "", "agent-1"]);
    assert_eq!(detail.summary.last_account, "backup");
}

async fn a_moved_marker_is_found_under_the_old_key(store: Arc<dyn Store>) {
    let s = sessions(store);
    // No session id: the key comes from the marked system block.
    let marked = |turns: usize, mark_system: bool| {
        let mut v = conversation(turns, SESSION);
        v.as_object_mut().unwrap().remove("metadata");
        let mut block = json!({"type": "text", "text": "be brief"});
        if mark_system {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
        v["system"] = json!([block, {"type": "text", "text": "stable",
            "cache_control": {"type": "ephemeral"}}]);
        v
    };
    let t1 = turn(&s, &marked(2, true), "alice").await;
    record(&s, &t1, "alice", "", "primary", 100, 9_000, None).await;
    s.bind_chain("alice", &t1.resolved).await;
    let t2 = turn(&s, &marked(3, false), "alice").await;
    assert_ne!(t2.resolved.key, t1.resolved.key);
    assert_eq!(
        t2.resolved.chain_match.as_ref().map(|m| m.key.as_str()),
        Some(t1.resolved.key.as_str())
    );
    let e = record(
        &s,
        &t2,
        "alice",
        "",
        "primary",
        130,
        0,
        Some(MissReason::KeyChanged),
    )
    .await
    .unwrap();
    assert_eq!(
        (e.reason, e.marks_before),
        (
            MissReason::CacheControlMoved,
            Some(vec!["system.0".to_owned(), "system.1".to_owned()])
        )
    );
    // The new key is a session of its own, listed first.
    let listed: Vec<String> = s
        .recent_sessions(&["alice"], 10)
        .await
        .into_iter()
        .map(|x| x.cache_key)
        .collect();
    assert_eq!(
        listed,
        vec![t2.resolved.key.clone(), t1.resolved.key.clone()]
    );
}

async fn the_log_and_the_index_are_bounded(store: Arc<dyn Store>) {
    let s = sessions(store);
    let t = turn(&s, &conversation(2, SESSION), "alice").await;
    for i in 0..(MAX_TURNS as u64 + 5) {
        record(&s, &t, "alice", "", "primary", 100 + i, 9_000, None).await;
    }
    let detail = s
        .session_turns(&session_id("alice", &t.resolved.key))
        .await
        .unwrap();
    assert_eq!(detail.turn_log.len(), MAX_TURNS);
    assert_eq!(detail.summary.turns, MAX_TURNS as u64 + 5);
    assert_eq!(detail.turn_log[0].at_ms, 105_000);
    assert_eq!(detail.summary.started_at_ms, 100_000);
    for i in 0..(MAX_RECENT + 3) {
        let v = conversation(2, &format!("11111111-2222-3333-4444-{i:012}"));
        let t = turn(&s, &v, "alice").await;
        record(&s, &t, "alice", "", "primary", 1000 + i as u64, 9_000, None).await;
    }
    let listed = s.recent_sessions(&["alice"], 1000).await;
    assert_eq!(listed.len(), MAX_RECENT);
    assert_eq!(listed[0].last_at_ms, (1000 + MAX_RECENT as u64 + 2) * 1000);
    // A very long conversation still fits the store's value limit.
    let long = turn(&s, &conversation(3000, SESSION), "alice").await;
    for (i, agent) in ["", "a1", "a2", "a3"].into_iter().enumerate() {
        record(
            &s,
            &long,
            "alice",
            agent,
            "primary",
            5000 + i as u64,
            9_000,
            None,
        )
        .await;
    }
    let detail = s
        .session_turns(&session_id("alice", &long.resolved.key))
        .await
        .unwrap();
    assert_eq!(detail.turn_log.last().map(|t| t.agent.as_str()), Some("a3"));
    assert_eq!(s.store_errors(), 0);
}

async fn sessions_are_listed_per_client_key_newest_first(store: Arc<dyn Store>) {
    let s = sessions(store);
    let a = turn(&s, &conversation(2, SESSION), "alice").await;
    let b = turn(&s, &conversation(2, SESSION), "bob").await;
    // The same Claude Code session under two client keys: two sessions, never shared.
    assert_eq!(a.resolved.key, b.resolved.key);
    record(&s, &a, "alice", "", "primary", 100, 9_000, None).await;
    record(&s, &b, "bob", "", "backup", 200, 9_000, None).await;
    let names = |v: Vec<ferry_session::SessionSummary>| -> Vec<(String, String)> {
        v.into_iter().map(|x| (x.client, x.last_account)).collect()
    };
    assert_eq!(
        names(s.recent_sessions(&["alice"], 10).await),
        vec![("alice".to_owned(), "primary".to_owned())]
    );
    assert_eq!(
        names(s.recent_sessions(&["alice", "bob"], 10).await),
        vec![
            ("bob".to_owned(), "backup".to_owned()),
            ("alice".to_owned(), "primary".to_owned())
        ]
    );
    assert_eq!(
        names(s.recent_sessions(&["alice", "bob"], 1).await).len(),
        1
    );
    assert_eq!(names(s.recent_sessions(&["carol"], 10).await), vec![]);
    assert_ne!(
        session_id("alice", &a.resolved.key),
        session_id("bob", &b.resolved.key)
    );
}

#[tokio::test]
async fn the_continuation_chain_follows_the_continued_turns() {
    let s = sessions(super::support::memory());
    let t = turn(&s, &conversation(2, SESSION), "alice").await;
    let facts = |at: u64, continued: bool, id: Option<&'static str>| (at, continued, id);
    for (at, continued, id) in [
        facts(1, false, Some("resp_1")),
        facts(2, false, Some("resp_2")),
        facts(3, true, Some("resp_3")),
        facts(4, true, Some("resp_4")),
    ] {
        s.record_turn(&TurnFacts {
            client_key_id: "alice",
            resolved: &t.resolved,
            agent: "",
            account: "primary",
            model: "gpt-5.1",
            fingerprint: &t.fp,
            at_ms: at * 1000,
            prompt_tokens: 2000,
            cached_tokens: 1900,
            continued,
            response_id: id,
            miss: None,
        })
        .await;
    }
    let summary = s.recent_sessions(&["alice"], 1).await.remove(0);
    // resp_2 was sent in full; resp_3 continued from it, resp_4 from resp_3.
    assert_eq!(
        summary.continuation_chain,
        vec!["resp_2", "resp_3", "resp_4"]
    );
}
