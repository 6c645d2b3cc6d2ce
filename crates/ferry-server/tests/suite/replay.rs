//! A 30-turn Claude Code conversation replayed through the gateway against a stateful fake
//! OpenAI ([`super::fake_openai`]): tool round trips, a parallel tool turn, thinking with
//! an OpenAI signature replayed, text turns. Every turn must keep the prompt cache warm:
//! one `prompt_cache_key`, one upstream `session_id`, one account (of two), and an upstream
//! input that only grows (continuation off) or is the latest turn only (continuation on).

use ferry_testkit::upstream::{CapturedRequest, Invariants, validate_request_invariants};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;
use super::fake_openai::{CacheMetrics, Conversation, FakeOpenAi, Reply};

const TURNS: usize = 30;

/// What the fake model does on turn `i` (0-based). Turn 0 is the recorded fixture's
/// `run [[tool:Bash:echo hello]]`.
fn script(i: usize) -> Reply {
    let bash = |cmd: &str| ("Bash", json!({ "command": cmd, "description": "run it" }));
    let read = |path: &str| ("Read", json!({ "file_path": path }));
    match (i, i % 5) {
        (0, _) => Reply::Calls(vec![bash("echo hello")]),
        (_, 1 | 4) => Reply::Text(format!(
            "Turn {i}: done. {}",
            "Here is what I found and what I changed. ".repeat(6)
        )),
        (_, 2) => Reply::Calls(vec![bash(&format!("cargo test -p crate{i}"))]),
        (_, 3) => Reply::ThinkThenCall(
            format!("Turn {i}: the failure is in the parser; read it first."),
            read(&format!("src/parser{i}.rs")),
        ),
        _ => Reply::Calls(vec![
            bash(&format!("git diff --stat HEAD~{i}")),
            read(&format!("src/lib{i}.rs")),
        ]),
    }
}

/// A tool's output: a few hundred bytes, so the prompt grows realistically.
fn tool_output(input: &Value) -> String {
    let what = input["command"]
        .as_str()
        .or_else(|| input["file_path"].as_str())
        .unwrap_or("?");
    format!("output of {what}\n{}", "line of output text\n".repeat(20))
}

/// What one replay run observed.
struct Run {
    /// The upstream requests of the conversation, in order (the hold request excluded).
    requests: Vec<CapturedRequest>,
    /// Turns whose `prompt_cache_key` is turn 1's.
    same_key: usize,
    /// The fake's response id of each turn.
    response_ids: Vec<String>,
    /// Per turn, whether the streamed answer had a thinking block with a `gAAAA` signature.
    thinking_turns: Vec<usize>,
    cache: CacheMetrics,
}

/// Runs the conversation on a gateway with two accounts, `a` and `b`, both with
/// `continuation`. Turn 1 is sent while another request keeps `a` busy, so it goes to `b`;
/// every later turn finds both idle, where the pool would pick `a`: they reach `b` only
/// through the session's sticky binding.
async fn replay(continuation: bool) -> Run {
    let fake = FakeOpenAi::start().await;
    let mut c = config(&fake.base_url("a"));
    c.accounts = vec![
        account("a", &fake.base_url("a")),
        account("b", &fake.base_url("b")),
    ];
    for a in &mut c.accounts {
        a.continuation = continuation;
    }
    let server = TestServer::start(c).await;

    let hold = server
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&request("[[hold]]", true)).unwrap());
    #[expect(
        clippy::disallowed_methods,
        reason = "keeps account a busy while turn 1 is sent"
    )]
    let mut hold = Some(tokio::spawn(async move {
        hold.send().await.unwrap().text().await.unwrap()
    }));
    fake.mock.wait_for(1).await;

    let mut conv = Conversation::from_fixture("02_bash_turn1");
    let mut thinking_turns = Vec::new();
    for i in 0..TURNS {
        fake.reply_next(script(i));
        let answer = conv.send(&server).await;
        if let Some(hold) = hold.take() {
            let held = hold.await.unwrap();
            assert!(held.contains("message_stop"), "{held}");
        }
        if answer.iter().any(|b| {
            b["type"] == "thinking" && b["signature"].as_str().unwrap().starts_with("gAAAA")
        }) {
            thinking_turns.push(i);
        }
        conv.reply_to(
            &answer,
            &format!("Turn {}: now look at module {i} and fix what fails.", i + 1),
            tool_output,
        );
    }

    let served = fake.served();
    assert_eq!(
        served.len(),
        TURNS,
        "one upstream request per turn, no retry"
    );
    let response_ids: Vec<String> = served
        .iter()
        .map(|s| s.outcome.clone().expect("served"))
        .collect();
    let requests: Vec<CapturedRequest> = fake
        .mock
        .requests()
        .into_iter()
        .filter(|r| !String::from_utf8_lossy(&r.raw_body).contains("[[hold]]"))
        .collect();
    assert_eq!(requests.len(), TURNS);
    // The invariants of every upstream request, with the previous_response_id each turn
    // must carry.
    for (i, r) in requests.iter().enumerate() {
        let previous = (continuation && i > 0).then(|| response_ids[i - 1].clone());
        let inv = Invariants {
            expect_prompt_cache_key: true,
            previous_response_id: Some(previous),
            ..Invariants::default()
        };
        assert_eq!(
            validate_request_invariants(r, &inv),
            Vec::<String>::new(),
            "turn {i}"
        );
        assert_eq!(r.body["store"], json!(continuation), "turn {i}");
    }
    // One account (b: sticky), one key, one upstream session for the whole conversation.
    let accounts: Vec<&str> = served.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(accounts, vec!["b"; TURNS]);
    let keys: Vec<&Value> = requests
        .iter()
        .map(|r| &r.body["prompt_cache_key"])
        .collect();
    assert!(keys[0].as_str().unwrap().starts_with("anthropic-metadata-"));
    let same_key = keys.iter().filter(|k| **k == keys[0]).count();
    assert_eq!(keys, vec![keys[0]; TURNS]);
    let sessions: Vec<Option<&str>> = requests.iter().map(|r| r.header("session_id")).collect();
    assert!(sessions[0].is_some());
    assert_eq!(sessions, vec![sessions[0]; TURNS]);

    let cache = CacheMetrics::read(&server).await;
    Run {
        requests,
        same_key,
        response_ids,
        thinking_turns,
        cache,
    }
}

/// Whether an input item is the upstream's own output replayed (not something the client
/// added this turn).
fn is_model_output(item: &Value) -> bool {
    matches!(item["type"].as_str(), Some("reasoning" | "function_call"))
        || (item["type"] == "message" && item["role"] == "assistant")
}

#[tokio::test]
async fn a_30_turn_claude_code_conversation_keeps_one_key_one_account_and_a_growing_prompt() {
    let full = replay(false).await;
    let cont = replay(true).await;

    // Continuation off: every turn's input extends the previous one.
    let inputs: Vec<Vec<Value>> = full.requests.iter().map(CapturedRequest::input).collect();
    for i in 1..TURNS {
        let (prev, cur) = (&inputs[i - 1], &inputs[i]);
        assert!(cur.len() > prev.len(), "turn {i} does not grow");
        assert_eq!(&cur[..prev.len()], &prev[..], "turn {i} is not append-only");
    }
    for r in &full.requests {
        assert_eq!(r.body.get("previous_response_id"), None);
    }
    // The thinking turns' reasoning was replayed as a reasoning item, as sent.
    assert_eq!(full.thinking_turns, vec![3, 8, 13, 18, 23, 28]);
    let replayed: Vec<&Value> = inputs[TURNS - 1]
        .iter()
        .filter(|it| it["type"] == "reasoning")
        .collect();
    assert_eq!(replayed.len(), 6);
    assert!(replayed.iter().all(|r| {
        r["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAA")
    }));

    // Continuation on: the first turn in full; then previous_response_id (checked above)
    // and only the latest turn: a tail of the full input that resends nothing of the
    // previous request and holds everything the client added since.
    let deltas: Vec<Vec<Value>> = cont.requests.iter().map(CapturedRequest::input).collect();
    assert_eq!(deltas[0], inputs[0]);
    let mut continuation_hits = 0;
    for i in 1..TURNS {
        let (full_now, delta) = (&inputs[i], &deltas[i]);
        assert!(!delta.is_empty(), "turn {i}");
        let start = full_now.len() - delta.len();
        assert_eq!(&full_now[start..], &delta[..], "turn {i}: not a tail");
        let prev_len = inputs[i - 1].len();
        let first_new = (prev_len..full_now.len())
            .find(|&j| !is_model_output(&full_now[j]))
            .unwrap();
        assert!(
            (prev_len..=first_new).contains(&start),
            "turn {i}: the delta starts at {start}, expected {prev_len}..={first_new}"
        );
        if cont.requests[i].body["previous_response_id"] == json!(cont.response_ids[i - 1]) {
            continuation_hits += 1;
        }
    }
    assert_eq!(continuation_hits, TURNS - 1);

    // Cache economy: one miss (the new session), then warm turns only.
    for run in [&full, &cont] {
        assert_eq!(
            run.cache.misses,
            CacheMetrics::only_misses("new_session", 1.0)
        );
        assert_eq!(run.cache.observed, TURNS as f64);
    }
    let bytes = |run: &Run| -> usize { run.requests.iter().map(|r| r.raw_body.len()).sum() };
    let input_bytes = |run: &Run| -> usize {
        run.requests
            .iter()
            .map(|r| r.body["input"].to_string().len())
            .sum()
    };
    let items = |ins: &[Vec<Value>]| -> usize { ins.iter().map(Vec::len).sum() };
    eprintln!(
        "replay figures: turns {TURNS}; same prompt_cache_key {}/{TURNS} and {}/{TURNS} \
         (off/on), same session_id and account on every turn\n\
         continuation off: mean hit ratio {:.3}, token hit ratio {:.3}, misses {:?}, \
         input items sent {}, input bytes {}, upstream bytes {}\n\
         continuation on: continuation hits {continuation_hits}/{}, mean hit ratio {:.3}, \
         token hit ratio {:.3}, misses {:?}, input items sent {}, input bytes {}, \
         upstream bytes {}",
        full.same_key,
        cont.same_key,
        full.cache.mean_hit_ratio,
        full.cache.token_hit_ratio,
        full.cache.misses,
        items(&inputs),
        input_bytes(&full),
        bytes(&full),
        TURNS - 1,
        cont.cache.mean_hit_ratio,
        cont.cache.token_hit_ratio,
        cont.cache.misses,
        items(&deltas),
        input_bytes(&cont),
        bytes(&cont),
    );
    for run in [&full, &cont] {
        assert!(run.cache.mean_hit_ratio > 0.9, "{:?}", run.cache);
        assert!(run.cache.token_hit_ratio > 0.9, "{:?}", run.cache);
    }
    // Tools and instructions travel every turn either way; the input shrinks to the deltas.
    assert!(input_bytes(&cont) < input_bytes(&full) / 5);
}
