//! Message threads over both store backends: create, continue, per-key isolation,
//! expiry, the size bound and chunking.

use std::sync::Arc;
use std::time::Duration;

use ferry_apicompat::anthropic;
use ferry_session::{Store, ThreadConfig, ThreadError, Threads, TurnBase, UpstreamTurn};
use pretty_assertions::assert_eq;
use serde_json::json;

crate::on_both_backends!(
    create_then_continue_rebuilds_the_conversation,
    another_key_does_not_find_the_thread,
    an_unknown_id_is_not_found,
    a_thread_expires_with_the_ttl,
    a_long_thread_is_chunked_and_reads_back_whole,
    a_branch_from_an_earlier_reply_keeps_both_threads,
    a_thread_over_the_bound_is_refused,
);

#[expect(clippy::needless_pass_by_value, reason = "called with json! literals")]
fn msg(role: &str, content: serde_json::Value) -> anthropic::InputMessage {
    serde_json::from_value(json!({"role": role, "content": content})).unwrap()
}

fn tools() -> Vec<anthropic::Tool> {
    serde_json::from_value(json!([{
        "name": "get_weather",
        "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}
    }]))
    .unwrap()
}

fn threads(store: Arc<dyn Store>, config: ThreadConfig) -> Threads {
    Threads::new(store, config)
}

async fn create_then_continue_rebuilds_the_conversation(store: Arc<dyn Store>) {
    let t = threads(store, ThreadConfig::default());
    let system = anthropic::System::Text("be brief".into());
    let tools = tools();
    let turn1 = vec![
        msg("user", json!("weather in Paris?")),
        msg(
            "assistant",
            json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]),
        ),
    ];
    t.save(
        "alice",
        "msg_1",
        &TurnBase::Create {
            system: Some(&system),
            tools: Some(&tools),
        },
        &turn1,
        Some(UpstreamTurn {
            account: "primary".into(),
            response_id: "resp_1".into(),
        }),
    )
    .await
    .unwrap();
    let first = t.load("alice", "msg_1").await.unwrap();
    assert_eq!(first.system, Some(system.clone()));
    assert_eq!(first.tools.as_deref(), Some(&tools[..]));
    assert_eq!(first.messages, turn1);
    assert_eq!(
        first.upstream.as_ref().map(|u| u.response_id.as_str()),
        Some("resp_1")
    );

    let turn2 = vec![
        msg(
            "user",
            json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]),
        ),
        msg(
            "assistant",
            json!([{"type": "text", "text": "It is sunny."}]),
        ),
    ];
    t.save("alice", "msg_2", &TurnBase::Continue(&first), &turn2, None)
        .await
        .unwrap();
    let second = t.load("alice", "msg_2").await.unwrap();
    assert_eq!(second.system, Some(system));
    assert_eq!(second.tools.as_deref(), Some(&tools[..]));
    let mut all = turn1.clone();
    all.extend(turn2);
    assert_eq!(second.messages, all);
    assert_eq!(second.upstream, None);
    // The earlier reply still names its own (shorter) thread.
    assert_eq!(t.load("alice", "msg_1").await.unwrap().messages, turn1);
}

async fn another_key_does_not_find_the_thread(store: Arc<dyn Store>) {
    let t = threads(store, ThreadConfig::default());
    let create = TurnBase::Create {
        system: None,
        tools: None,
    };
    t.save("alice", "msg_a", &create, &[msg("user", json!("hi"))], None)
        .await
        .unwrap();
    assert!(matches!(
        t.load("bob", "msg_a").await,
        Err(ThreadError::NotFound)
    ));
    assert!(matches!(
        t.load("", "msg_a").await,
        Err(ThreadError::NotFound)
    ));
    assert_eq!(t.load("alice", "msg_a").await.unwrap().messages.len(), 1);
}

async fn an_unknown_id_is_not_found(store: Arc<dyn Store>) {
    let t = threads(store, ThreadConfig::default());
    let err = t.load("alice", "msg_never").await.unwrap_err();
    assert_eq!(err.kind(), "not_found");
}

async fn a_thread_expires_with_the_ttl(store: Arc<dyn Store>) {
    let t = threads(
        store,
        ThreadConfig {
            ttl: Duration::from_millis(150),
            ..ThreadConfig::default()
        },
    );
    let create = TurnBase::Create {
        system: None,
        tools: None,
    };
    t.save("alice", "msg_e", &create, &[msg("user", json!("hi"))], None)
        .await
        .unwrap();
    assert!(t.load("alice", "msg_e").await.is_ok());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        t.load("alice", "msg_e").await,
        Err(ThreadError::NotFound)
    ));
}

async fn a_long_thread_is_chunked_and_reads_back_whole(store: Arc<dyn Store>) {
    // Chunks of 1 KiB: a thread of ~40 KiB over 20 turns spans many chunks, each under the
    // store's per-value limit, and reads back byte for byte.
    let t = threads(
        store,
        ThreadConfig {
            chunk_bytes: 1024,
            ..ThreadConfig::default()
        },
    );
    let system = anthropic::System::Text("s".repeat(3000));
    let mut expected = Vec::new();
    let first = vec![msg("user", json!("start")), msg("assistant", json!("ok"))];
    t.save(
        "alice",
        "msg_0",
        &TurnBase::Create {
            system: Some(&system),
            tools: None,
        },
        &first,
        None,
    )
    .await
    .unwrap();
    expected.extend(first);
    for i in 1..20 {
        let prev = t.load("alice", &format!("msg_{}", i - 1)).await.unwrap();
        assert_eq!(prev.messages, expected);
        let turn = vec![
            msg("user", json!(format!("question {i} {}", "q".repeat(900)))),
            msg(
                "assistant",
                json!(format!("answer {i} {}", "é".repeat(500))),
            ),
        ];
        t.save(
            "alice",
            &format!("msg_{i}"),
            &TurnBase::Continue(&prev),
            &turn,
            None,
        )
        .await
        .unwrap();
        expected.extend(turn);
    }
    let last = t.load("alice", "msg_19").await.unwrap();
    assert_eq!(last.messages, expected);
    assert_eq!(last.system, Some(system));
    assert!(last.bytes() > 40_000, "{} bytes", last.bytes());
}

async fn a_branch_from_an_earlier_reply_keeps_both_threads(store: Arc<dyn Store>) {
    // Two turns continue the same reply (a client retry, or a fork): each gets its own
    // thread, and neither overwrites the other's chunks.
    let t = threads(
        store,
        ThreadConfig {
            chunk_bytes: 64,
            ..ThreadConfig::default()
        },
    );
    let create = TurnBase::Create {
        system: None,
        tools: None,
    };
    t.save(
        "alice",
        "msg_root",
        &create,
        &[msg(
            "user",
            json!("root question that is long enough to fill chunks"),
        )],
        None,
    )
    .await
    .unwrap();
    let root = t.load("alice", "msg_root").await.unwrap();
    let a = [msg("assistant", json!("branch A ".repeat(10)))];
    let b = [msg("assistant", json!("branch B ".repeat(3)))];
    t.save("alice", "msg_a", &TurnBase::Continue(&root), &a, None)
        .await
        .unwrap();
    t.save("alice", "msg_b", &TurnBase::Continue(&root), &b, None)
        .await
        .unwrap();
    let la = t.load("alice", "msg_a").await.unwrap();
    let lb = t.load("alice", "msg_b").await.unwrap();
    assert_eq!(la.messages[1], a[0]);
    assert_eq!(lb.messages[1], b[0]);
    assert_eq!(la.messages[0], lb.messages[0]);
}

async fn a_thread_over_the_bound_is_refused(store: Arc<dyn Store>) {
    let t = threads(
        store,
        ThreadConfig {
            max_thread_bytes: 2000,
            ..ThreadConfig::default()
        },
    );
    let create = TurnBase::Create {
        system: None,
        tools: None,
    };
    let small = [msg("user", json!("hi"))];
    t.save("alice", "msg_s", &create, &small, None)
        .await
        .unwrap();
    let s = t.load("alice", "msg_s").await.unwrap();
    let big = [msg("user", json!("x".repeat(2500)))];
    let base = TurnBase::Continue(&s);
    let err = t.check_size(&base, &big).unwrap_err();
    assert!(
        matches!(err, ThreadError::TooLarge { limit: 2000, size } if size > 2500),
        "{err:?}"
    );
    let err = t
        .save("alice", "msg_big", &base, &big, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "too_large");
    assert!(matches!(
        t.load("alice", "msg_big").await,
        Err(ThreadError::NotFound)
    ));
}
