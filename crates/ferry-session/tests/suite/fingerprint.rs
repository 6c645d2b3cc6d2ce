//! The prefix fingerprint and the miss explanations built on it: each change found, in
//! prompt order, and each reason refined.

use ferry_session::keys::KeySource;
use ferry_session::{
    DigestChain, IDLE_EVICTION_SECS, MissReason, PrefixChange, PrefixFingerprint, PreviousTurn,
    compare, explain_miss,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::support::req;

fn tool(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description,
        "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}})
}

/// A two-turn conversation (the second question unanswered) with three tools.
fn base() -> Value {
    json!({
        "model": "claude-opus-4-8",
        "system": [{"type": "text", "text": "You are a coding agent."},
                   {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tools": [tool("Bash", "run"), tool("Read", "read"), tool("Edit", "edit")],
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question",
                "cache_control": {"type": "ephemeral"}}]}
        ]
    })
}

fn fp(v: &Value) -> PrefixFingerprint {
    let r = req(v);
    PrefixFingerprint::of(&r, &DigestChain::from_request(&r))
}

/// `base()` answered and extended by one more question: the next turn.
fn next_turn() -> Value {
    let mut v = base();
    let msgs = v["messages"].as_array_mut().unwrap();
    msgs[2]["content"][0]
        .as_object_mut()
        .unwrap()
        .remove("cache_control");
    msgs.push(json!({"role": "assistant", "content": "second answer"}));
    msgs.push(
        json!({"role": "user", "content": [{"type": "text", "text": "third",
        "cache_control": {"type": "ephemeral"}}]}),
    );
    v
}

#[test]
fn the_next_turn_extends_the_previous_one() {
    let (prev, cur) = (fp(&base()), fp(&next_turn()));
    assert_eq!(compare(&prev, &cur), None);
    assert_eq!(prev.message_count(), 3);
    assert_eq!(cur.message_count(), 5);
    assert_eq!(cur.tool_count(), 3);
    assert!(cur.has_system());
    // The marker moved to the newest message, as Claude Code does every turn: no change
    // to the prefix (ferry sends no marker upstream), but the marks say so.
    assert_eq!(prev.cache_control_marks(), ["system.1", "messages.2.0"]);
    assert_eq!(cur.cache_control_marks(), ["system.1", "messages.4.0"]);
    assert_eq!(cur.common_messages(&prev), 3);
}

#[test]
fn each_part_of_the_prefix_is_told_apart() {
    let prev = fp(&base());
    let mut system = next_turn();
    system["system"][0]["text"] = json!("You are a coding agent. Today is Tuesday.");
    let mut tools = next_turn();
    tools["tools"][1] = tool("Read", "read a file");
    let mut added = next_turn();
    added["tools"]
        .as_array_mut()
        .unwrap()
        .push(tool("Grep", "search"));
    let mut edited = next_turn();
    edited["messages"][1]["content"][0]["text"] = json!("first answer, edited");
    let mut role = next_turn();
    role["messages"][0]["role"] = json!("assistant");
    let mut rewound = base();
    rewound["messages"] = json!([{"role": "user", "content": "another first question"}]);
    let mut both = next_turn();
    both["system"] = json!("other");
    both["tools"] = json!([]);
    let cases = [
        (system, Some(PrefixChange::System)),
        (
            tools,
            Some(PrefixChange::Tools {
                index: 1,
                name: Some("Read".to_owned()),
                before: 3,
                after: 3,
            }),
        ),
        (
            added,
            Some(PrefixChange::Tools {
                index: 3,
                name: Some("Grep".to_owned()),
                before: 3,
                after: 4,
            }),
        ),
        (
            edited,
            Some(PrefixChange::Message {
                index: 1,
                before: 3,
                after: 5,
            }),
        ),
        (
            role,
            Some(PrefixChange::Message {
                index: 0,
                before: 3,
                after: 5,
            }),
        ),
        (
            rewound,
            Some(PrefixChange::Message {
                index: 0,
                before: 3,
                after: 1,
            }),
        ),
        // Tools come first in the prompt: the earliest change is the one named.
        (
            both,
            Some(PrefixChange::Tools {
                index: 0,
                name: Some("Bash".to_owned()),
                before: 3,
                after: 0,
            }),
        ),
    ];
    for (cur, want) in cases {
        assert_eq!(compare(&prev, &fp(&cur)), want, "{cur}");
    }
}

#[test]
fn a_string_system_prompt_and_its_block_form_are_the_same_prefix() {
    let mut text = base();
    text["system"] = json!("Be brief.");
    let mut blocks = base();
    blocks["system"] = json!([{"type": "text", "text": "Be brief.",
        "cache_control": {"type": "ephemeral"}}]);
    assert_eq!(compare(&fp(&text), &fp(&blocks)), None);
}

#[test]
fn the_fingerprint_round_trips_through_json_compactly() {
    let f = fp(&next_turn());
    let json = serde_json::to_value(&f).unwrap();
    // 4-byte digests packed as 8 hex digits each.
    assert_eq!(json["m"].as_str().unwrap().len(), 5 * 8);
    assert_eq!(json["t"].as_str().unwrap().len(), 3 * 8);
    let back: PrefixFingerprint = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
}

fn previous<'a>(f: &'a PrefixFingerprint, account: &'a str, idle_secs: u64) -> PreviousTurn<'a> {
    PreviousTurn {
        fingerprint: f,
        account,
        idle_secs,
    }
}

#[test]
fn explanations_refine_the_classified_reason() {
    let prev = fp(&base());
    let same = fp(&next_turn());
    let mut v = next_turn();
    v["system"] = json!("changed");
    let system = fp(&v);
    let mut v = next_turn();
    v["tools"].as_array_mut().unwrap().pop();
    let tools = fp(&v);
    let mut v = next_turn();
    v["messages"][0]["content"] = json!("compacted summary");
    let edited = fp(&v);
    let mut v = next_turn();
    v["system"][1]
        .as_object_mut()
        .unwrap()
        .remove("cache_control");
    let unmarked = fp(&v);
    let p = |idle| Some(previous(&prev, "primary", idle));
    let cases: Vec<(MissReason, KeySource, &PrefixFingerprint, _, MissReason)> = vec![
        (
            MissReason::PrefixChanged,
            KeySource::Metadata,
            &system,
            p(5),
            MissReason::SystemChanged,
        ),
        (
            MissReason::PrefixChanged,
            KeySource::Metadata,
            &edited,
            p(5),
            MissReason::MessageEdited,
        ),
        // A changed tool list leaves the digest chain as it was: classify_miss alone calls
        // it upstream_evicted.
        (
            MissReason::UpstreamEvicted,
            KeySource::Metadata,
            &tools,
            p(5),
            MissReason::ToolsChanged,
        ),
        (
            MissReason::UpstreamEvicted,
            KeySource::Metadata,
            &same,
            p(5),
            MissReason::UpstreamEvicted,
        ),
        (
            MissReason::UpstreamEvicted,
            KeySource::Metadata,
            &same,
            None,
            MissReason::UpstreamEvicted,
        ),
        (
            MissReason::PrefixChanged,
            KeySource::Metadata,
            &same,
            None,
            MissReason::PrefixChanged,
        ),
        (
            MissReason::KeyChanged,
            KeySource::CacheControl,
            &unmarked,
            p(5),
            MissReason::CacheControlMoved,
        ),
        // Markers that move under a session key change nothing: the key stays.
        (
            MissReason::KeyChanged,
            KeySource::Metadata,
            &unmarked,
            p(5),
            MissReason::KeyChanged,
        ),
        (
            MissReason::KeyChanged,
            KeySource::CacheControl,
            &unmarked,
            None,
            MissReason::KeyChanged,
        ),
        // Final reasons stay as they are, whatever changed too.
        (
            MissReason::AccountSwitched,
            KeySource::Metadata,
            &system,
            p(5),
            MissReason::AccountSwitched,
        ),
        (
            MissReason::NewSession,
            KeySource::Digest,
            &same,
            None,
            MissReason::NewSession,
        ),
        (
            MissReason::BindingExpired,
            KeySource::Digest,
            &same,
            None,
            MissReason::BindingExpired,
        ),
        (
            MissReason::ContinuationReset,
            KeySource::Digest,
            &same,
            p(5),
            MissReason::ContinuationReset,
        ),
    ];
    for (base_reason, source, cur, prev_turn, want) in cases {
        let got = explain_miss(base_reason, source, "primary", cur, prev_turn);
        assert_eq!(got.reason, want, "{base_reason:?} {source:?}: {got:?}");
        assert!(!got.detail.is_empty());
        assert_eq!(
            got.reason.needs_history(),
            matches!(
                want,
                MissReason::PrefixChanged | MissReason::UpstreamEvicted | MissReason::KeyChanged
            )
        );
    }
}

#[test]
fn explanations_say_what_to_act_on() {
    let prev = fp(&base());
    let mut v = next_turn();
    v["messages"][1]["content"] = json!("edited");
    let edited = fp(&v);
    let got = explain_miss(
        MissReason::PrefixChanged,
        KeySource::Metadata,
        "primary",
        &edited,
        Some(previous(&prev, "primary", 12)),
    );
    assert_eq!(
        (
            got.reason,
            got.change.clone(),
            got.idle_secs,
            got.previous_account.clone()
        ),
        (
            MissReason::MessageEdited,
            Some(PrefixChange::Message {
                index: 1,
                before: 3,
                after: 5
            }),
            Some(12),
            None
        )
    );
    assert!(
        got.detail.starts_with("message 1 differs"),
        "{}",
        got.detail
    );

    let same = fp(&next_turn());
    let idle = explain_miss(
        MissReason::UpstreamEvicted,
        KeySource::Metadata,
        "primary",
        &same,
        Some(previous(&prev, "primary", IDLE_EVICTION_SECS + 100)),
    );
    assert!(idle.detail.contains("idle 400 s"), "{}", idle.detail);
    assert!(
        idle.detail.contains("most likely evicted"),
        "{}",
        idle.detail
    );
    let warm = explain_miss(
        MissReason::UpstreamEvicted,
        KeySource::Metadata,
        "primary",
        &same,
        Some(previous(&prev, "primary", 20)),
    );
    assert!(
        !warm.detail.contains("most likely evicted"),
        "{}",
        warm.detail
    );

    let switched = explain_miss(
        MissReason::AccountSwitched,
        KeySource::Metadata,
        "backup",
        &same,
        Some(previous(&prev, "primary", 20)),
    );
    assert_eq!(switched.previous_account.as_deref(), Some("primary"));
    assert!(
        switched.detail.contains("backup after primary"),
        "{}",
        switched.detail
    );

    let mut v = next_turn();
    v["system"][1]
        .as_object_mut()
        .unwrap()
        .remove("cache_control");
    let moved = explain_miss(
        MissReason::KeyChanged,
        KeySource::CacheControl,
        "primary",
        &fp(&v),
        Some(previous(&prev, "primary", 20)),
    );
    assert_eq!(
        moved.marks_before,
        Some(vec!["system.1".to_owned(), "messages.2.0".to_owned()])
    );
    // The explanation serialises as the admin API shows it.
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json!({"reason": "message_edited",
               "change": {"part": "message", "index": 1, "before": 3, "after": 5},
               "idle_secs": 12, "detail": got.detail})
    );
}

#[test]
fn every_reason_has_a_label_that_reads_back() {
    for r in MissReason::ALL.into_iter().chain(MissReason::REFINED) {
        assert_eq!(MissReason::from_label(r.as_str()), Some(r));
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(serde_json::from_value::<MissReason>(json).unwrap(), r);
    }
    assert_eq!(MissReason::from_label("nope"), None);
}
