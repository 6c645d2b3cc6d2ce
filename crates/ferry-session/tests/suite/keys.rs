//! Key derivation: every rule, table-tested (expected values computed independently).

use ferry_session::keys::{
    self, ClientHeaders, PartKind, cache_control_key, explicit_key, identity_key, metadata_key,
    parse_claude_code_user, session_uuid, should_auto_inject,
};
use ferry_session::{DigestChain, KeySource};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::support::{claude_code, req};

const DEVICE: &str = "a229729e73e37eae4bb0258d8a7417c1580f74d8b5c0641e1554847aaae2a34c";
const SESSION: &str = "584c32ea-42e9-4d5a-a3ff-088cad91588c";
/// `anthropic-metadata-` + hex16(sha256("anthropic-metadata|DEVICE||SESSION")).
const META_KEY: &str = "anthropic-metadata-d2a975e73cb7af63";

fn with_user_id(user_id: &str) -> ferry_apicompat::anthropic::MessagesRequest {
    req(&json!({"model": "m", "metadata": {"user_id": user_id},
        "messages": [{"role": "user", "content": "hi"}]}))
}

#[test]
fn explicit_key_order() {
    let body_key = req(&json!({"model": "m", "prompt_cache_key": " body-key ",
        "messages": [{"role": "user", "content": "hi"}]}));
    let no_body = req(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let h = |s: Option<&'static str>, c: Option<&'static str>| ClientHeaders {
        session_id: s,
        conversation_id: c,
        claude_code_session_id: Some("ignored-here"),
    };
    let cases = [
        (&body_key, h(Some("sess"), Some("conv")), Some("sess")),
        (&body_key, h(Some("  "), Some(" conv ")), Some("conv")),
        (&body_key, h(None, None), Some("body-key")),
        (&body_key, h(Some(""), Some("")), Some("body-key")),
        (&no_body, h(None, None), None),
    ];
    for (i, (request, headers, want)) in cases.into_iter().enumerate() {
        assert_eq!(explicit_key(request, &headers).as_deref(), want, "case {i}");
    }
    let not_a_string = req(&json!({"model": "m", "prompt_cache_key": 5, "messages": []}));
    assert_eq!(explicit_key(&not_a_string, &ClientHeaders::default()), None);
}

#[test]
fn claude_code_user_id_formats() {
    let json_form =
        format!(r#"{{"device_id":"{DEVICE}","account_uuid":"","session_id":"{SESSION}"}}"#);
    let legacy = format!("user_{DEVICE}_account__session_{SESSION}");
    let legacy_acct =
        format!("user_{DEVICE}_account_7d0c1a52-9a43-4a8e-9b6e-5b1f2c3d4e5f_session_{SESSION}");
    let ok = [
        (json_form.as_str(), ""),
        (legacy.as_str(), ""),
        (legacy_acct.as_str(), "7d0c1a52-9a43-4a8e-9b6e-5b1f2c3d4e5f"),
    ];
    for (raw, account) in ok {
        let user = parse_claude_code_user(&format!("  {raw}\n")).unwrap_or_else(|| panic!("{raw}"));
        assert_eq!(
            (
                user.device_id.as_str(),
                user.account_uuid.as_str(),
                user.session_id.as_str()
            ),
            (DEVICE, account, SESSION)
        );
    }
    let bad = [
        String::new(),
        "   ".to_owned(),
        "free text".to_owned(),
        format!(r#"{{"device_id":"","session_id":"{SESSION}"}}"#),
        format!(r#"{{"device_id":"{DEVICE}","session_id":""}}"#),
        format!(r#"{{"device_id":"{DEVICE}","session_id":"#),
        format!("user_{}_account__session_{SESSION}", &DEVICE[..63]),
        format!("user_{}g_account__session_{SESSION}", &DEVICE[..63]),
        format!("user_{DEVICE}_account_zz_session_{SESSION}"),
        format!("user_{DEVICE}_account__session_{}", &SESSION[..35]),
        format!("user_{DEVICE}_account__session_{SESSION}x"),
        format!("user_{DEVICE}_session_{SESSION}"),
    ];
    for raw in &bad {
        assert_eq!(parse_claude_code_user(raw), None, "{raw:?}");
    }
}

#[test]
fn metadata_key_rules() {
    let json_form =
        format!(r#"{{"device_id":"{DEVICE}","account_uuid":"","session_id":"{SESSION}"}}"#);
    let legacy = format!("user_{DEVICE}_account__session_{SESSION}");
    let with_account = format!(
        r#"{{"device_id":"{DEVICE}","account_uuid":"7d0c1a52-9a43-4a8e-9b6e-5b1f2c3d4e5f","session_id":"{SESSION}"}}"#
    );
    let none = ClientHeaders::default();
    let header_only = ClientHeaders {
        claude_code_session_id: Some(SESSION),
        ..ClientHeaders::default()
    };
    let plain = req(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let cases = [
        (with_user_id(&json_form), none, Some(META_KEY)),
        (with_user_id(&legacy), none, Some(META_KEY)),
        (
            with_user_id(&with_account),
            none,
            Some("anthropic-metadata-0e45e34dd1a6b125"),
        ),
        // The header is a fallback only: parsed metadata wins.
        (
            with_user_id(&json_form),
            ClientHeaders {
                claude_code_session_id: Some("other"),
                ..none
            },
            Some(META_KEY),
        ),
        (
            with_user_id("not claude code"),
            header_only,
            Some("anthropic-metadata-8446f35d2dbc301a"),
        ),
        (
            plain.clone(),
            header_only,
            Some("anthropic-metadata-8446f35d2dbc301a"),
        ),
        (plain, none, None),
        (with_user_id("not claude code"), none, None),
    ];
    for (i, (request, headers, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            metadata_key(&request, &headers).as_deref(),
            want,
            "case {i}"
        );
    }
}

#[test]
fn the_recorded_claude_code_turns_share_one_metadata_key() {
    let headers = ClientHeaders::default();
    let turn1 = claude_code("02_bash_turn1");
    let turn2 = claude_code("03_bash_turn2_tool_result");
    assert_eq!(
        identity_key(&turn1, &headers),
        Some((META_KEY.to_owned(), KeySource::Metadata))
    );
    assert_eq!(
        identity_key(&turn2, &headers),
        Some((META_KEY.to_owned(), KeySource::Metadata))
    );
    assert_ne!(
        identity_key(&claude_code("01_say_hi_main"), &headers)
            .unwrap()
            .0,
        META_KEY
    );
}

#[test]
fn cache_control_key_rules() {
    let cc = json!({"type": "ephemeral"});
    let full = req(&json!({"model": "m",
    "system": [
        {"type": "text", "text": "You are terse.", "cache_control": cc},
        {"type": "text", "text": "not marked"},
        {"type": "text", "text": "  ", "cache_control": cc},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Read the repo.", "cache_control": cc}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted.", "cache_control": cc}]},
        {"role": "user", "content": [
            {"type": "text", "text": "second user anchor is ignored", "cache_control": cc},
            {"type": "tool_result", "tool_use_id": "t", "content": "x", "cache_control": cc},
        ]},
        {"role": "assistant", "content": "string content never counts"},
    ]}));
    // system:…, then the first user message's text (marked blocks elsewhere only say
    // that messages are marked).
    assert_eq!(
        cache_control_key(&full).as_deref(),
        Some("anthropic-cache-4d7169090ba4cd6eac07142a2dc96b17")
    );

    let system_only = req(&json!({"model": "m",
        "system": [{"type": "text", "text": "You are terse.", "cache_control": cc}],
        "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(
        cache_control_key(&system_only).as_deref(),
        Some("anthropic-cache-c3374c2addeda975b384ac0283dc2def")
    );

    let none = [
        json!({"model": "m", "system": "You are terse.", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "other kind", "cache_control": {"type": "persistent"}},
        ]}]}),
    ];
    for body in none {
        assert_eq!(cache_control_key(&req(&body)), None, "{body}");
    }
    // A mark on any block of a message (here an image) anchors the first user text.
    let image_marked = req(
        &json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "other kind"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}, "cache_control": cc},
        ]}]}),
    );
    assert_eq!(
        cache_control_key(&image_marked).as_deref(),
        Some("anthropic-cache-5d39aef670f5a616ab257423a523848f")
    );
}

/// The documented multi-turn pattern: the breakpoint moves to the newest message every
/// turn (a text, then a tool result); the key stays the same.
#[test]
fn a_moving_breakpoint_keeps_the_cache_control_key() {
    let cc = json!({"type": "ephemeral"});
    let turns = [
        json!([{"role": "user", "content": [{"type": "text", "text": "Read the repo.", "cache_control": cc}]}]),
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Read the repo."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Noted.", "cache_control": cc}]},
            {"role": "user", "content": [{"type": "text", "text": "Now list it.", "cache_control": cc}]},
        ]),
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Read the repo."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
            {"role": "user", "content": [{"type": "text", "text": "Now list it."}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a b", "cache_control": cc}]},
        ]),
    ];
    let got: Vec<Option<String>> = turns
        .iter()
        .map(|m| cache_control_key(&req(&json!({"model": "m", "messages": m}))))
        .collect();
    let first = Some("anthropic-cache-b5bc0c837b8bab62cfbabbe248570831".to_owned());
    assert_eq!(got, vec![first.clone(), first.clone(), first]);
}

#[test]
fn upstream_cache_keys_are_isolated_per_client_key() {
    use ferry_session::keys::upstream_cache_key;
    assert_eq!(
        upstream_cache_key("alice", "conv-1"),
        "ferry-d03e2475ceaa9a93367288caa806839f"
    );
    assert_eq!(
        upstream_cache_key("bob", " conv-1 "),
        "ferry-1bd2cd1e136ecd9e0bcabd04a83a3b8e"
    );
    assert_eq!(
        upstream_cache_key("alice", "anthropic-cache-c3374c2addeda975b384ac0283dc2def"),
        "anthropic-cache-947cd96d120c6f2627672f94a36de904"
    );
}

#[test]
fn identity_key_order() {
    let cc = json!({"type": "ephemeral"});
    let json_form =
        format!(r#"{{"device_id":"{DEVICE}","account_uuid":"","session_id":"{SESSION}"}}"#);
    let everything = req(
        &json!({"model": "m", "metadata": {"user_id": json_form}, "prompt_cache_key": "body",
        "system": [{"type": "text", "text": "You are terse.", "cache_control": cc}],
        "messages": [{"role": "user", "content": "hi"}]}),
    );
    let no_explicit = req(&json!({"model": "m", "metadata": {"user_id": json_form},
        "system": [{"type": "text", "text": "You are terse.", "cache_control": cc}],
        "messages": [{"role": "user", "content": "hi"}]}));
    let anchors_only = req(&json!({"model": "m",
        "system": [{"type": "text", "text": "You are terse.", "cache_control": cc}],
        "messages": [{"role": "user", "content": "hi"}]}));
    let nothing = req(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let h = ClientHeaders::default();
    let got = [
        identity_key(&everything, &h),
        identity_key(&no_explicit, &h),
        identity_key(&anchors_only, &h),
        identity_key(&nothing, &h),
    ];
    assert_eq!(
        got,
        [
            Some(("body".to_owned(), KeySource::Explicit)),
            Some((META_KEY.to_owned(), KeySource::Metadata)),
            Some((
                "anthropic-cache-c3374c2addeda975b384ac0283dc2def".to_owned(),
                KeySource::CacheControl
            )),
            None,
        ]
    );
    let labels: Vec<&str> = [
        KeySource::Explicit,
        KeySource::Metadata,
        KeySource::CacheControl,
        KeySource::Digest,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(labels, ["explicit", "metadata", "cache_control", "digest"]);
}

#[test]
fn auto_inject_models() {
    let cases = [
        ("gpt-5", true),
        ("gpt-5.1", true),
        ("GPT-5.4-xhigh", true),
        (" gpt-5.1-codex-max ", true),
        ("gpt-5.1-codex-mini", true),
        ("codex-mini-latest", true),
        ("openai/gpt-5.1", true),
        ("gpt-4o", false),
        ("gpt-4.1", false),
        ("o3", false),
        ("claude-opus-4-8", false),
        ("", false),
        ("my-gpt-5-proxy", false),
    ];
    for (model, want) in cases {
        assert_eq!(should_auto_inject(model), want, "{model:?}");
    }
}

#[test]
fn session_uuid_isolates_client_keys() {
    // hex16(sha256("kalice:k1")) → sha256 → 16 bytes, version 4, RFC 4122 variant.
    let id = session_uuid("alice", "k1").unwrap();
    assert_eq!(id.to_string(), "ee9eacaf-6a0b-47c4-9df5-0ba03d2f8c20");
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(session_uuid("alice", " k1 "), Some(id));
    assert_ne!(session_uuid("bob", "k1"), Some(id));
    assert_ne!(session_uuid("alice", "k2"), Some(id));
    assert_eq!(session_uuid("alice", "  "), None);
}

fn chain_of(body: &serde_json::Value) -> DigestChain {
    DigestChain::from_request(&req(body))
}

#[test]
fn digest_chain_form() {
    let chain = chain_of(&json!({"model": "m", "system": "be brief", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        {"role": "user", "content": []},
        {"role": "assistant", "content": ""},
    ]}));
    // Each part: the first 8 bytes of sha256 of the key-sorted compact JSON of the blocks.
    assert_eq!(
        chain.to_string(),
        "s:b4c5882cd177b8d4-u:5c9b2c6b02db7f15-a:57e90e6cb7aff127-u:a75b67deb8383fff"
    );
    let kinds: Vec<PartKind> = chain.parts().iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            PartKind::System,
            PartKind::User,
            PartKind::Assistant,
            PartKind::User
        ]
    );
    assert!(chain.has_assistant());
    assert_eq!(
        chain.fresh_key().map(|k| k.len()),
        Some("anthropic-digest-".len() + 16)
    );
    assert_eq!(
        chain_of(&json!({"model": "m", "system": " ", "messages": []})).fresh_key(),
        None
    );
}

#[test]
fn digest_chain_ignores_cache_control_and_string_form() {
    let cc = json!({"type": "ephemeral"});
    let a = chain_of(
        &json!({"model": "m", "system": [{"type": "text", "text": "sys", "cache_control": cc}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": cc}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"cache_control": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "text", "text": "out", "cache_control": cc}], "cache_control": cc}]},
        ]}),
    );
    let b = chain_of(&json!({"model": "m", "system": "sys",
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"cache_control": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
            "content": [{"type": "text", "text": "out"}]}]},
    ]}));
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.id(), b.id());
    // Tool input is user data: a `cache_control` key inside it does count.
    let c = chain_of(&json!({"model": "m", "system": "sys", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
    ]}));
    assert_ne!(c.prefix_id(3), a.prefix_id(3));
    assert_eq!(c.prefix_id(2), a.prefix_id(2));
}

#[test]
fn extends_and_continues() {
    let turn = |n: usize| {
        let mut messages = vec![json!({"role": "user", "content": "q0"})];
        for i in 1..n {
            messages.push(json!({"role": "assistant", "content": format!("a{i}")}));
            messages.push(json!({"role": "user", "content": format!("q{i}")}));
        }
        chain_of(&json!({"model": "m", "system": "s", "messages": messages}))
    };
    let (t1, t2, t3) = (turn(1), turn(2), turn(3));
    let id1 = t1.id().unwrap();
    let id2 = t2.id().unwrap();
    let cases = [
        // (chain, bound len, bound id, extends, continues)
        (&t2, t1.len(), &id1, true, true),
        (&t3, t2.len(), &id2, true, true),
        (&t3, t1.len(), &id1, true, false), // a turn was skipped: trimming would lose it
        (&t1, t1.len(), &id1, true, false), // the same request again
        (&t1, t2.len(), &id2, false, false),
        (&t2, t1.len(), &id2, false, false), // id of another prefix
        (&t2, 0, &String::new(), false, false),
    ];
    for (i, (chain, len, id, extends, continues)) in cases.into_iter().enumerate() {
        assert_eq!(
            (chain.extends(len, id), chain.continues(len, id)),
            (extends, continues),
            "case {i}"
        );
    }
    // A mid-conversation system message between the answer and the new turn.
    let with_system = chain_of(&json!({"model": "m", "system": "s", "messages": [
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": "note"},
        {"role": "user", "content": "q1"},
    ]}));
    assert!(with_system.extends(t1.len(), &id1));
    assert!(!with_system.continues(t1.len(), &id1));
}

#[test]
fn the_recorded_claude_code_turn2_continues_turn1() {
    // Claude Code moved its cache breakpoint from the first user message to the tool
    // result between the two turns; the chain does not notice.
    let turn1 = DigestChain::from_request(&claude_code("02_bash_turn1"));
    let turn2 = DigestChain::from_request(&claude_code("03_bash_turn2_tool_result"));
    assert_eq!(turn1.len(), 3);
    assert_eq!(turn2.len(), 5);
    assert!(turn2.continues(turn1.len(), &turn1.id().unwrap()));
    assert!(
        !keys::DigestChain::from_request(&claude_code("01_say_hi_main"))
            .extends(turn1.len(), &turn1.id().unwrap())
    );
}
