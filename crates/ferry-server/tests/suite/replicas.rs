//! Two gateway replicas sharing one real `redis-server`: a session started on one
//! continues on the other, with the same account, `prompt_cache_key` and upstream
//! `session_id`, and `previous_response_id` naming the other replica's response.

use ferry_server::config::{Secret, SessionStoreKind};
use ferry_testkit::redis::RedisServer;
use ferry_testkit::upstream::{Invariants, validate_request_invariants};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;
use super::fake_openai::{CacheMetrics, Conversation, FakeOpenAi, Reply};

/// A replica: accounts `names` (in this order, continuation on) on the fake upstream,
/// sessions in `redis`.
async fn replica(fake: &FakeOpenAi, redis: &RedisServer, names: [&str; 2]) -> TestServer {
    let mut c = config(&fake.base_url(names[0]));
    c.accounts = names
        .iter()
        .map(|n| {
            let mut a = account(n, &fake.base_url(n));
            a.continuation = true;
            a
        })
        .collect();
    c.session.store = SessionStoreKind::Redis {
        url: Secret::new(redis.url()),
    };
    TestServer::start(c).await
}

#[tokio::test]
async fn a_session_started_on_one_replica_continues_on_the_other() {
    let redis = RedisServer::start();
    let fake = FakeOpenAi::start().await;
    // The replicas list the accounts in opposite orders: left to itself, each would pick
    // its first account, so only the sticky binding in Redis keeps the session on one.
    let a = replica(&fake, &redis, ["one", "two"]).await;
    let b = replica(&fake, &redis, ["two", "one"]).await;

    let mut conv = Conversation::from_fixture("02_bash_turn1");
    let bash = (
        "Bash",
        json!({ "command": "echo hello", "description": "say hello" }),
    );
    let plan = [
        (&a, Reply::Calls(vec![bash.clone()])),
        (
            &b,
            Reply::ThinkThenCall("Check the file too.".to_owned(), bash),
        ),
        (&a, Reply::Text("Both commands worked.".to_owned())),
    ];
    for (server, reply) in plan {
        fake.reply_next(reply);
        let answer = conv.send(server).await;
        conv.reply_to(&answer, "thanks", |_| "hello".to_owned());
    }

    let served = fake.served();
    let ids: Vec<String> = served.iter().map(|s| s.outcome.clone().unwrap()).collect();
    let reqs = fake.mock.requests();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        let inv = Invariants {
            expect_prompt_cache_key: true,
            previous_response_id: Some((i > 0).then(|| ids[i - 1].clone())),
            ..Invariants::default()
        };
        assert_eq!(
            validate_request_invariants(r, &inv),
            Vec::<String>::new(),
            "turn {i}"
        );
    }
    let field = |name: &str| -> Vec<Value> { reqs.iter().map(|r| r.body[name].clone()).collect() };
    assert_eq!(field("store"), vec![json!(true); 3]);
    let key = reqs[0].body["prompt_cache_key"].clone();
    assert_eq!(field("prompt_cache_key"), vec![key; 3]);
    let session: Vec<Option<&str>> = reqs.iter().map(|r| r.header("session_id")).collect();
    assert!(session[0].is_some());
    assert_eq!(session, vec![session[0]; 3]);
    // Every turn on the account the session started on; each continuation delta is the
    // tool result only (the call is in the previous response).
    let accounts: Vec<&str> = served.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(accounts, vec!["one"; 3]);
    let delta_types = |i: usize| -> Vec<Value> {
        reqs[i]
            .input()
            .iter()
            .map(|it| it["type"].clone())
            .collect()
    };
    assert_eq!(
        (delta_types(1), delta_types(2)),
        (
            vec![json!("function_call_output")],
            vec![json!("function_call_output")]
        )
    );

    // Replica a saw the cold start; replica b's turn read the prompt from the cache.
    let (ma, mb) = (CacheMetrics::read(&a).await, CacheMetrics::read(&b).await);
    assert_eq!(ma.misses, CacheMetrics::only_misses("new_session", 1.0));
    assert_eq!(mb.misses, CacheMetrics::only_misses("", 0.0));
    assert_eq!((ma.observed, mb.observed), (2.0, 1.0));
    assert!(mb.mean_hit_ratio > 0.9, "{mb:?}");
    let sent = "ferry_continuations_total{result=\"sent\"}";
    assert_eq!((a.metric(sent).await, b.metric(sent).await), (1.0, 1.0));
}
