//! Request direction: Anthropic Messages request → Responses request.
//!
//! Data-driven: every `fixtures/requests/**/*.json` is converted and snapshotted together
//! with what was dropped; every `fixtures/invalid/*.json` must fail, and its error is
//! snapshotted. A request may carry options in a sibling `<case>.toml` (`key = value`
//! lines: `model`, `reasoning_summary`, `service_tier`, `default_max_output_tokens`,
//! `reasoning_model`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_apicompat::convert::request::{self, Options};
use ferry_apicompat::{Converted, anthropic, responses};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Reads the options of a case from its sibling `.toml`, if any.
fn options_for(path: &Path) -> Options {
    let mut opts = Options::new();
    let Ok(text) = std::fs::read_to_string(path.with_extension("toml")) else {
        return opts;
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        let value = value.trim().trim_matches('"');
        opts = match key.trim() {
            "model" => opts.with_model(value),
            "reasoning_summary" => opts.with_reasoning_summary(
                serde_json::from_value(json!(value)).expect("summary mode"),
            ),
            "service_tier" => opts.with_service_tier(value),
            "default_max_output_tokens" => {
                opts.with_default_max_output_tokens(value.parse().expect("number"))
            }
            "reasoning_model" => opts.with_reasoning_model(value.parse().expect("bool")),
            other => panic!("unknown option {other}"),
        };
    }
    opts
}

fn convert_file(path: &Path) -> Converted<responses::Request> {
    let body = std::fs::read(path).unwrap();
    let req = anthropic::parse_request(&body)
        .unwrap_or_else(|e| panic!("{}: parse: {e}", path.display()));
    request::convert(&req, &options_for(path))
        .unwrap_or_else(|e| panic!("{}: convert: {e}", path.display()))
}

/// The one caller of the API for valid inputs: the converted request and its losses.
fn check(path: &Path) -> Value {
    let converted = convert_file(path);
    let dropped: Vec<Value> = converted
        .dropped
        .iter()
        .map(|d| json!({"path": d.path, "kind": d.kind, "detail": d.detail}))
        .collect();
    json!({"request": converted.value, "dropped": dropped})
}

/// The one caller of the API for invalid inputs: the error, from parsing or converting.
fn check_invalid(path: &Path) -> String {
    let body = std::fs::read(path).unwrap();
    let result =
        anthropic::parse_request(&body).and_then(|req| request::convert(&req, &options_for(path)));
    match result {
        Ok(_) => panic!("{}: converted, but must fail", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn requests() {
    insta::glob!(fixtures(), "requests/**/*.json", |path| {
        insta::with_settings!({snapshot_path => "../snapshots", omit_expression => true, input_file => path}, {
            insta::assert_json_snapshot!(check(path));
        });
    });
}

#[test]
fn invalid_requests() {
    insta::glob!(fixtures(), "invalid/*.json", |path| {
        insta::with_settings!({snapshot_path => "../snapshots", omit_expression => true, input_file => path}, {
            insta::assert_snapshot!(check_invalid(path));
        });
    });
}

/// Converted requests serialise and parse back to the same value.
#[test]
fn converted_requests_round_trip() {
    let mut n = 0;
    for dir in ["requests/claude-code", "requests/cases"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let value = convert_file(&path).value;
                let text = serde_json::to_string(&value).unwrap();
                let back: responses::Request = serde_json::from_str(&text).unwrap();
                assert_eq!(back, value, "{}", path.display());
                n += 1;
            }
        }
    }
    assert!(n > 40, "only {n} fixtures");
}

/// Every recorded Claude Code request converts, losing only what is expected.
#[test]
fn recorded_claude_code_requests_lose_only_expected_parts() {
    let expected: BTreeSet<&str> = [
        "billing_header",
        "cache_control",
        "context_management",
        "metadata",
        "tool_schema",
    ]
    .into();
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures().join("requests/claude-code")).unwrap() {
        let path = entry.unwrap().path();
        let converted = convert_file(&path);
        let kinds: BTreeSet<&str> = converted.dropped.iter().map(|d| d.kind).collect();
        assert!(
            kinds.is_subset(&expected),
            "{}: unexpected losses {:?}",
            path.display(),
            kinds.difference(&expected).collect::<Vec<_>>()
        );
        // Exactly one cache_control entry, however many hints the request carries.
        assert_eq!(
            converted
                .dropped
                .iter()
                .filter(|d| d.kind == "cache_control")
                .count(),
            1,
            "{}",
            path.display()
        );
        // The system prompt and the mid-conversation system message are developer messages.
        let req = &converted.value;
        let developer = req
            .input
            .iter()
            .filter(|item| matches!(item, responses::InputItem::Message(m) if m.role == responses::MessageRole::Developer))
            .count();
        assert!(developer >= 1, "{}", path.display());
        let text = serde_json::to_string(req).unwrap();
        assert!(
            !text.contains("x-anthropic-billing-header"),
            "{}",
            path.display()
        );
        assert!(!text.contains("device_id"), "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 7);
}

#[test]
fn recorded_claude_code_requests_parse_with_session_ids() {
    for entry in std::fs::read_dir(fixtures().join("requests/claude-code")).unwrap() {
        let path = entry.unwrap().path();
        let req = anthropic::parse_request(&std::fs::read(&path).unwrap()).unwrap();
        let session = req.metadata.and_then(|m| m.session_id());
        assert!(session.is_some_and(|s| s.len() == 36), "{}", path.display());
    }
}

#[test]
fn metadata_session_id_forms() {
    let cases = [
        (
            json!({"user_id": "{\"device_id\":\"d\",\"session_id\":\"abc\"}"}),
            Some("abc"),
        ),
        (
            json!({"user_id": "user_x_account_y_session_0f0e"}),
            Some("0f0e"),
        ),
        (json!({"user_id": "{\"session_id\":\"\"}"}), None),
        (json!({"user_id": "plain"}), None),
        (json!({}), None),
    ];
    for (metadata, want) in cases {
        let metadata: anthropic::Metadata = serde_json::from_value(metadata).unwrap();
        assert_eq!(metadata.session_id().as_deref(), want);
    }
}

#[test]
fn effort_table() {
    use responses::ReasoningEffort::{High, Low, Medium};
    for (budget, want) in [
        (0, Low),
        (1024, Low),
        (3_999, Low),
        (4_000, Medium),
        (15_999, Medium),
        (16_000, High),
        (31_999, High),
    ] {
        assert_eq!(request::effort_for_budget(budget), want, "{budget}");
    }
}

#[test]
fn reasoning_model_detection() {
    for (model, want) in [
        ("gpt-5", true),
        ("gpt-5.4-mini", true),
        ("GPT-6-luna", true),
        ("openai/gpt-5.1-codex", true),
        ("o3", true),
        ("o4-mini", true),
        ("claude-opus-4-8", true),
        ("gpt-4.1", false),
        ("gpt-4o-mini", false),
        ("openai/gpt-4o", false),
        ("gpt-3.5-turbo", false),
        ("chatgpt-4o-latest", false),
    ] {
        assert_eq!(request::is_reasoning_model(model), want, "{model}");
    }
}

/// Effort mapping from the Anthropic request (decision 4), on a reasoning model.
#[test]
fn effort_mapping() {
    let cases = [
        (json!(null), json!(null), Some("medium")),
        (
            json!({"type": "enabled", "budget_tokens": 2048}),
            json!(null),
            Some("low"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 10000}),
            json!(null),
            Some("medium"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 31999}),
            json!(null),
            Some("high"),
        ),
        (json!({"type": "adaptive"}), json!(null), Some("medium")),
        (
            json!({"type": "adaptive"}),
            json!({"effort": "high"}),
            Some("high"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 31999}),
            json!({"effort": "low"}),
            Some("low"),
        ),
        (json!(null), json!({"effort": "max"}), Some("xhigh")),
        (json!(null), json!({"effort": "minimal"}), Some("minimal")),
        (json!(null), json!({}), Some("medium")),
        (json!({"type": "disabled"}), json!(null), Some("none")),
        (
            json!({"type": "disabled"}),
            json!({"effort": "high"}),
            Some("none"),
        ),
    ];
    for (thinking, output_config, want) in cases {
        let mut body = json!({
            "model": "m",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": "hi"}],
        });
        if !thinking.is_null() {
            body["thinking"] = thinking.clone();
        }
        if !output_config.is_null() {
            body["output_config"] = output_config.clone();
        }
        let req = anthropic::parse_request(body.to_string().as_bytes()).unwrap();
        let out = request::convert(&req, &Options::new().with_model("gpt-5.4")).unwrap();
        let reasoning = serde_json::to_value(&out.value.reasoning).unwrap();
        // Thinking is visible (a summary and the ciphertext come back) only when the
        // client asked for thinking and the effort is not `none`.
        let visible = matches!(
            thinking.get("type").and_then(|t| t.as_str()),
            Some("enabled" | "adaptive")
        ) && want != Some("none");
        let mut expected = json!({"effort": want});
        if visible {
            expected["summary"] = json!("auto");
        }
        assert_eq!(reasoning, expected, "{thinking} {output_config}");
        let include: Vec<String> = if visible {
            vec!["reasoning.encrypted_content".to_owned()]
        } else {
            Vec::new()
        };
        assert_eq!(out.value.include, include, "{thinking} {output_config}");
    }
}

#[test]
fn errors_name_the_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}"#,
            "messages[0].content[0].text: invalid `text` block: invalid type: integer `5`, expected a string",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":1}}]}]}"#,
            "messages[0].content[0].source.data: invalid `image` block: invalid type: integer `1`, expected a string",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            "messages[0].content: invalid type: integer `5`, expected a string or an array of content blocks at line 1 column 51",
        ),
    ];
    for (body, want) in cases {
        let err = anthropic::parse_request(body.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), *want);
    }
}

/// A request built in code (not parsed) with a malformed known block is rejected by the
/// converter too.
#[test]
fn convert_rejects_malformed_known_blocks_built_in_code() {
    let block: anthropic::ContentBlock =
        serde_json::from_value(json!({"type": "tool_use", "id": "x"})).unwrap();
    assert_eq!(block.unknown_known_type(), Some("tool_use"));
    let req = anthropic::MessagesRequest::new(
        "m",
        vec![anthropic::InputMessage::new(
            anthropic::Role::Assistant,
            anthropic::MessageContent::Blocks(vec![block]),
        )],
    );
    let err = request::convert(&req, &Options::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "messages[0].content[0]: invalid `tool_use` block: missing field `name`"
    );
}

fn is_valid_upstream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tool_name() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        // Valid names, including ones that look like shortened names.
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('Z'), Just('_'), Just('-'), Just('7')],
            1..70
        )
        .prop_map(|c| c.into_iter().collect::<String>()),
        // Anything at all: unicode, dots, slashes, spaces, very long.
        proptest::collection::vec(any::<char>(), 0..150)
            .prop_map(|c| c.into_iter().collect::<String>()),
        // MCP-style long names.
        (1usize..4).prop_map(|n| format!("mcp__{}__tool", "server_name_".repeat(n * 4))),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Every name maps to a valid upstream name and back to itself, whatever else is in
    /// the set, and the mapping does not depend on the order names are seen in.
    #[test]
    fn tool_names_round_trip(names in proptest::collection::vec(tool_name(), 1..6)) {
        use ferry_apicompat::convert::ToolNames;
        let map = ToolNames::from_names(names.iter().map(String::as_str));
        let reversed = ToolNames::from_names(names.iter().rev().map(String::as_str));
        proptest::prop_assert_eq!(&map, &reversed);
        let mut upstream = BTreeSet::new();
        for name in &names {
            let up = map.to_upstream(name);
            proptest::prop_assert!(is_valid_upstream_name(&up), "{:?} -> {:?}", name, up);
            let back = map.to_client(&up).into_owned();
            proptest::prop_assert_eq!(&back, name);
            upstream.insert(up.into_owned());
        }
        let distinct: BTreeSet<&String> = names.iter().collect();
        proptest::prop_assert_eq!(upstream.len(), distinct.len());
    }
}

#[test]
fn tool_names_are_stable_and_keep_valid_names() {
    use ferry_apicompat::convert::ToolNames;
    let long = "mcp__my_extremely_long_server_name_for_testing__and_an_even_longer_tool_name_that_overflows";
    let names = ToolNames::from_names(["Bash", long, "a.b"]);
    assert_eq!(names.to_upstream("Bash"), "Bash");
    assert_eq!(
        names.to_upstream(long),
        "mcp__my_extremely_lo__longer_tool_name_that_overflows_974f526abb"
    );
    assert_eq!(names.to_upstream("a.b"), "a_b_2e7336dc8e");
    assert_eq!(names.to_client("a_b_2e7336dc8e"), "a.b");
    assert_eq!(names.to_client("unknown_tool"), "unknown_tool");
    // A name the map has not seen is rewritten the same way.
    assert_eq!(
        ToolNames::default().to_upstream(long),
        names.to_upstream(long)
    );
    assert_eq!(
        names.renamed().collect::<Vec<_>>(),
        vec![
            ("a.b", "a_b_2e7336dc8e"),
            (
                long,
                "mcp__my_extremely_lo__longer_tool_name_that_overflows_974f526abb"
            ),
        ]
    );
}

/// A tool name in the request (definition, history, tool_choice) maps back through the
/// `ToolNames` built from the same request.
#[test]
fn tool_names_from_request_cover_history_and_choice() {
    use ferry_apicompat::convert::ToolNames;
    let path = fixtures().join("requests/cases/r30_tool_names_long.json");
    let req = anthropic::parse_request(&std::fs::read(&path).unwrap()).unwrap();
    let names = ToolNames::from_request(&req);
    let converted = request::convert(&req, &Options::new()).unwrap().value;
    let mut seen = 0;
    for item in &converted.input {
        if let responses::InputItem::FunctionCall(call) = item {
            assert!(is_valid_upstream_name(&call.name));
            if names.to_client(&call.name) != call.name.as_str() {
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 2, "two of three names need rewriting");
}

/// Call ids the upstream would reject go up short and deterministic, a call and its
/// output keep the same id, and a function call coming back with a short id is given the
/// client's id again.
#[test]
fn long_call_ids_are_shortened_and_mapped_back() {
    use ferry_apicompat::convert::{self, ToolNames};
    let path = fixtures().join("requests/cases/r16_long_call_ids.json");
    let req = anthropic::parse_request(&std::fs::read(&path).unwrap()).unwrap();
    let converted = request::convert(&req, &Options::new()).unwrap().value;
    let again = request::convert(&req, &Options::new()).unwrap().value;
    assert_eq!(converted, again, "deterministic");
    let mut calls = Vec::new();
    let mut outputs = Vec::new();
    for item in &converted.input {
        match item {
            responses::InputItem::FunctionCall(c) => calls.push(c.call_id.clone()),
            responses::InputItem::FunctionCallOutput(o) => outputs.push(o.call_id.clone()),
            _ => {}
        }
    }
    assert_eq!(calls, outputs);
    assert!(
        calls.iter().all(|id| is_valid_upstream_name(id)),
        "{calls:?}"
    );
    assert_eq!(calls[2], "toolu_01ValidIdStaysAsItIs");
    let long = "exec_command:call_9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100";
    assert_ne!(calls[0], long);

    // The upstream answers with a call under a short id (as an upstream echoing history
    // would): the client sees its own id.
    let names = ToolNames::from_request(&req);
    let resp: responses::Response = serde_json::from_value(json!({
        "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.1",
        "output": [{"type": "function_call", "id": "fc_1", "call_id": calls[1],
            "name": "search", "arguments": "{\"q\":\"d\"}", "status": "completed"}],
        "usage": {"input_tokens": 1, "output_tokens": 1}
    }))
    .unwrap();
    let message = convert::response::convert(
        &resp,
        &convert::response::Options::new("claude-sonnet-4-5", names),
    )
    .unwrap()
    .value;
    let block = serde_json::to_value(&message.content[0]).unwrap();
    assert_eq!(block["id"], json!("mcp.github/create issue#1"));
}

/// A re-sent tool call goes up with its arguments in the client's key order (nested objects
/// too), not re-serialised with sorted keys: the bytes the model produced stay the cached
/// prefix.
#[test]
fn tool_use_arguments_keep_the_client_key_order() {
    let body = r#"{"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
            "input": {"b": 1, "a": {"z": 1, "y": [2, {"q": null, "p": 1.5}]}}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": "ok"}]}
    ]}"#;
    let req = anthropic::parse_request(body.as_bytes()).unwrap();
    let converted = request::convert(&req, &Options::new()).unwrap().value;
    let args: Vec<&str> = converted
        .input
        .iter()
        .filter_map(|item| match item {
            responses::InputItem::FunctionCall(c) => Some(c.arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(args, [r#"{"b":1,"a":{"z":1,"y":[2,{"q":null,"p":1.5}]}}"#]);
}

/// A `tool_use` block serializes its input in the order it was received in (a stored thread
/// replays what the client or the model wrote), and sorted once the input is changed.
#[test]
fn tool_use_block_serialises_in_received_key_order_until_changed() {
    let text = r#"{"type":"tool_use","id":"toolu_1","name":"f","input":{"z":1,"a":{"y":2,"b":3}}}"#;
    let block: anthropic::ContentBlock = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&block).unwrap(), text);

    let anthropic::ContentBlock::ToolUse(mut t) = block else {
        panic!("not a tool_use block");
    };
    t.set_input_json(r#"{"q": 1, "c": [true]}"#).unwrap();
    assert_eq!(t.input, json!({"c": [true], "q": 1}));
    assert_eq!(t.arguments(), r#"{"q":1,"c":[true]}"#);
    let v = serde_json::to_string(&anthropic::ContentBlock::ToolUse(t.clone())).unwrap();
    assert!(v.contains(r#""input":{"q":1,"c":[true]}"#), "{v}");

    assert!(t.set_input_json("not json").is_err());
    assert_eq!(
        t.input,
        json!({"c": [true], "q": 1}),
        "a failed set changes nothing"
    );

    t.input = json!({"x": 1, "a": 0});
    assert_eq!(t.arguments(), r#"{"a":0,"x":1}"#, "stale text is not used");
    let v = serde_json::to_string(&anthropic::ContentBlock::ToolUse(t)).unwrap();
    assert!(v.contains(r#""input":{"a":0,"x":1}"#), "{v}");
}

/// The remembered text is used only when it means exactly `input`: a number of another kind,
/// a missing or extra key, or a changed nested value falls back to `input`.
#[test]
fn tool_use_block_text_is_used_only_when_it_means_the_input() {
    let text = r#"{"type":"tool_use","id":"t","name":"f","input":{"n":1,"f":1.5,"m":-2,"l":[{"b":null,"a":"x"}]}}"#;
    let block: anthropic::ContentBlock = serde_json::from_str(text).unwrap();
    let anthropic::ContentBlock::ToolUse(t) = block else {
        panic!("not a tool_use block");
    };
    assert_eq!(
        t.arguments(),
        r#"{"n":1,"f":1.5,"m":-2,"l":[{"b":null,"a":"x"}]}"#
    );
    for changed in [
        json!({"n": 1.0, "f": 1.5, "m": -2, "l": [{"b": null, "a": "x"}]}),
        json!({"n": 1, "f": 1.5, "m": 2, "l": [{"b": null, "a": "x"}]}),
        json!({"n": 1, "f": 1.5, "m": -2, "l": [{"b": null, "a": "y"}]}),
        json!({"n": 1, "f": 1.5, "m": -2, "l": [{"a": "x"}]}),
        json!({"n": 1, "f": 1.5, "m": -2, "l": [{"b": null, "a": "x"}], "k": 0}),
        json!({"n": 1, "f": 1.5, "l": [{"b": null, "a": "x"}]}),
    ] {
        let mut t = t.clone();
        t.input = changed.clone();
        assert_eq!(
            t.arguments(),
            changed.to_string(),
            "stale text used for {changed}"
        );
    }
}

/// A call id the request shortened comes back in a streamed `tool_use` as the client's own
/// long id.
#[test]
fn streamed_tool_use_with_a_shortened_call_id_gets_the_client_id() {
    use ferry_apicompat::convert::{ToolNames, stream};
    let long = "exec_command:call_9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100";
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": long, "name": "exec",
            "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": long,
            "content": "ok"}]}
    ]});
    let req = anthropic::parse_request(body.to_string().as_bytes()).unwrap();
    let converted = request::convert(&req, &Options::new()).unwrap().value;
    let short = converted
        .input
        .iter()
        .find_map(|item| match item {
            responses::InputItem::FunctionCall(c) => Some(c.call_id.clone()),
            _ => None,
        })
        .unwrap();
    assert_ne!(short, long);

    // The upstream streams a call under the short id (as an upstream echoing history would).
    let item = json!({"type": "function_call", "id": "fc_1", "call_id": short, "name": "exec",
        "arguments": "", "status": "in_progress"});
    let mut done = item.clone();
    done["arguments"] = json!("{\"cmd\":\"ls\"}");
    done["status"] = json!("completed");
    let events: Vec<responses::StreamEvent> = [
        json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1",
            "object": "response", "status": "in_progress", "model": "gpt-5.1", "output": []}}),
        json!({"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
            "item": item}),
        json!({"type": "response.function_call_arguments.delta", "sequence_number": 2,
            "output_index": 0, "item_id": "fc_1", "delta": "{\"cmd\":\"ls\"}"}),
        json!({"type": "response.output_item.done", "sequence_number": 3, "output_index": 0,
            "item": done}),
        json!({"type": "response.completed", "sequence_number": 4, "response": {"id": "resp_1",
            "object": "response", "status": "completed", "model": "gpt-5.1", "output": [done],
            "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    ]
    .into_iter()
    .map(|v| responses::StreamEvent::from_json(&v.to_string()).unwrap())
    .collect();
    let mut conv = stream::StreamConverter::new(stream::Options::new(
        "claude-sonnet-4-5",
        ToolNames::from_request(&req),
    ));
    let mut out = Vec::new();
    for ev in &events {
        conv.on_event(ev, &mut out);
    }
    conv.finish(&mut out);
    let starts: Vec<Value> = out
        .iter()
        .map(|ev| serde_json::to_value(ev).unwrap())
        .filter(|ev| ev["type"] == "content_block_start")
        .map(|ev| ev["content_block"].clone())
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["type"], json!("tool_use"));
    assert_eq!(starts[0]["id"], json!(long));
}
