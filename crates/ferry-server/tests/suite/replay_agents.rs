//! The cache economy of newer model families and of Claude Code subagents: a 30-turn
//! Claude Code conversation replayed through the gateway against the stateful fake OpenAI
//! ([`super::fake_openai`]), mapped to a `gpt-6-*` model and to a `gpt-5.x` one, without
//! and with a subagent (5 turns of its own, spawned at turn 10, sharing the parent's
//! session), continuation off and on.
//!
//! The fake caches per `prompt_cache_key` only, so the figures show what ferry sends:
//! before model families were read by rule, a `gpt-6-*` mapping got no key and every turn
//! missed.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;
use super::fake_openai::{CacheMetrics, Conversation, FakeOpenAi, Reply};

const TURNS: usize = 30;
const SUBAGENT_AT: usize = 10;
const SUBAGENT_TURNS: usize = 5;
const SUBAGENT_ID: &str = "a1b2c3d4e5f6";

fn parent_script(i: usize) -> Reply {
    match i % 3 {
        0 => Reply::Calls(vec![(
            "Bash",
            json!({"command": format!("cargo test -p crate{i}"), "description": "run it"}),
        )]),
        1 => Reply::Calls(vec![("Read", json!({"file_path": format!("src/m{i}.rs")}))]),
        _ => Reply::Text(format!(
            "Turn {i}: done. {}",
            "Here is what I found. ".repeat(8)
        )),
    }
}

fn sub_script(i: usize) -> Reply {
    if i + 1 == SUBAGENT_TURNS {
        Reply::Text("Report: the crate layout is as expected.".into())
    } else {
        Reply::Calls(vec![(
            "Read",
            json!({"file_path": format!("crates/c{i}/lib.rs")}),
        )])
    }
}

fn tool_output(input: &Value) -> String {
    let what = input["command"]
        .as_str()
        .or_else(|| input["file_path"].as_str())
        .unwrap_or("?");
    format!("output of {what}\n{}", "line of output text\n".repeat(20))
}

/// How the subagent's requests are keyed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sub {
    /// No subagent.
    None,
    /// Claude Code's subagent: the parent's session (one cache key), its own agent id.
    SharedKey,
    /// The same subagent under a key of its own (a per-agent key, for comparison).
    OwnKey,
}

#[derive(Debug)]
struct Figures {
    token_hit_ratio: f64,
    mean_hit_ratio: f64,
    /// Cached tokens of the subagent's first request / its prompt tokens.
    sub_first_hit: Option<f64>,
    /// Requests that continued (carried a `previous_response_id`).
    continued: usize,
}

async fn replay(model: &str, sub: Sub, continuation: bool) -> Figures {
    let fake = FakeOpenAi::start().await;
    let mut c = config(&fake.base_url("a"));
    c.accounts = vec![account("a", &fake.base_url("a"))];
    c.accounts[0].default_model = Some(model.to_owned());
    c.accounts[0].continuation = continuation;
    let server = TestServer::start(c).await;

    let mut parent = Conversation::from_fixture("02_bash_turn1");
    // (agent, request index) of every request, in order.
    let mut agents: Vec<&str> = Vec::new();
    let mut sub_first = None;
    for i in 0..TURNS {
        if i == SUBAGENT_AT && sub != Sub::None {
            let mut child = Conversation::from_fixture("02_bash_turn1");
            child.body["messages"] = json!([{"role": "user", "content": [
                {"type": "text", "text": "Explore the crate layout and report what you find.",
                 "cache_control": {"type": "ephemeral"}}]}]);
            if sub == Sub::OwnKey {
                let uid = child.body["metadata"]["user_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                child.body["metadata"]["user_id"] = json!(uid.replace('-', "0"));
                assert_ne!(
                    child.body["metadata"]["user_id"],
                    parent.body["metadata"]["user_id"]
                );
            }
            for j in 0..SUBAGENT_TURNS {
                fake.reply_next(sub_script(j));
                let answer = child
                    .send_with(
                        &server,
                        &[
                            ("x-claude-code-agent-id", SUBAGENT_ID),
                            ("x-claude-code-parent-agent-id", "main"),
                        ],
                    )
                    .await;
                if j == 0 {
                    sub_first = Some(agents.len());
                }
                agents.push("sub");
                child.reply_to(&answer, "continue", tool_output);
            }
        }
        fake.reply_next(parent_script(i));
        let answer = parent.send(&server).await;
        agents.push("main");
        parent.reply_to(
            &answer,
            &format!("Turn {}: next module.", i + 1),
            tool_output,
        );
    }

    let served = fake.served();
    let requests = fake.mock.requests();
    assert_eq!(
        served.len(),
        agents.len(),
        "one upstream request per turn, no retry"
    );
    // With continuation, every agent's turn continues that agent's previous response.
    let mut continued = 0;
    for agent in ["main", "sub"] {
        let idx: Vec<usize> = (0..agents.len()).filter(|&k| agents[k] == agent).collect();
        for (n, &k) in idx.iter().enumerate() {
            let prev = requests[k].body.get("previous_response_id").cloned();
            let want =
                (continuation && n > 0).then(|| json!(served[idx[n - 1]].outcome.clone().unwrap()));
            assert_eq!(prev, want, "{model} {sub:?}: {agent} turn {n}");
            continued += usize::from(prev.is_some());
        }
    }
    // Every request carries a cache key (the family rule), one per session.
    let key = |k: usize| requests[k].body["prompt_cache_key"].clone();
    assert!(key(0).is_string(), "{model}: no prompt_cache_key");
    for (k, agent) in agents.iter().enumerate() {
        let same = key(k) == key(0);
        let expect_same = !(sub == Sub::OwnKey && *agent == "sub");
        assert_eq!(same, expect_same, "{model} {sub:?}: request {k}");
    }
    let cache = CacheMetrics::read(&server).await;
    Figures {
        token_hit_ratio: cache.token_hit_ratio,
        mean_hit_ratio: cache.mean_hit_ratio,
        sub_first_hit: sub_first
            .map(|k| served[k].cached_tokens as f64 / served[k].prompt_tokens.max(1) as f64),
        continued,
    }
}

#[tokio::test]
async fn gpt6_keeps_the_cache_economy_of_gpt5_with_and_without_a_subagent() {
    let mut lines = Vec::new();
    for continuation in [false, true] {
        let mut by_sub: Vec<Figures> = Vec::new();
        for sub in [Sub::None, Sub::SharedKey, Sub::OwnKey] {
            let g5 = replay("gpt-5.4", sub, continuation).await;
            let g6 = replay("gpt-6-terra", sub, continuation).await;
            lines.push(format!(
                "continuation {continuation}, subagent {sub:?}: gpt-5.4 token hit {:.3} mean {:.3} \
                 sub-first {:?} continued {}; gpt-6-terra token hit {:.3} mean {:.3} \
                 sub-first {:?} continued {}",
                g5.token_hit_ratio,
                g5.mean_hit_ratio,
                g5.sub_first_hit,
                g5.continued,
                g6.token_hit_ratio,
                g6.mean_hit_ratio,
                g6.sub_first_hit,
                g6.continued,
            ));
            // The same economy for the newer family, to the digit.
            assert_eq!(
                format!("{:.6} {:.6}", g6.token_hit_ratio, g6.mean_hit_ratio),
                format!("{:.6} {:.6}", g5.token_hit_ratio, g5.mean_hit_ratio),
                "{sub:?} continuation {continuation}"
            );
            assert_eq!(g6.continued, g5.continued);
            assert!(g6.token_hit_ratio > 0.8, "{sub:?} {continuation}: {g6:?}");
            let requests = TURNS + if sub == Sub::None { 0 } else { SUBAGENT_TURNS };
            let agents = if sub == Sub::None { 1 } else { 2 };
            assert_eq!(
                g6.continued,
                if continuation { requests - agents } else { 0 }
            );
            by_sub.push(g6);
        }
        // One key per session does better than a key per agent: the subagent's first
        // request reuses the parent's cached prefix and nothing is lost for the parent.
        let (shared, own) = (&by_sub[1], &by_sub[2]);
        assert!(
            shared.token_hit_ratio > own.token_hit_ratio,
            "{shared:?} {own:?}"
        );
        assert!(
            shared.sub_first_hit > own.sub_first_hit,
            "{shared:?} {own:?}"
        );
    }
    eprintln!("agent replay figures:\n{}", lines.join("\n"));
}
