//! The OAuth Codex body transform and the forced-instructions template (cases 8, 28, 29)
//! and upstream URLs.

use ferry_accounts::{
    AccountConfig, AccountsError, CodexTransformOptions, CodexTransformOutcome, Secret,
    TemplateFields, apply_codex_transform, render_instructions_template, responses_url,
};
use ferry_apicompat::responses;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// The typed request a JSON body reads as.
fn request(v: Value) -> responses::Request {
    serde_json::from_value(v).unwrap()
}

/// The request as JSON.
fn json_of(req: &responses::Request) -> Value {
    serde_json::to_value(req).unwrap()
}

fn transform(body: Value, opts: &CodexTransformOptions<'_>) -> (Value, CodexTransformOutcome) {
    let mut body = request(body);
    let outcome = apply_codex_transform(&mut body, opts).unwrap();
    (json_of(&body), outcome)
}

/// A body as the converter produces it for an OAuth account.
fn converted_body() -> Value {
    json!({
        "model": "gpt-5.4",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "client-system"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
        "store": true,
        "stream": false,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 4096,
        "parallel_tool_calls": true,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "high", "summary": "auto"},
        "prompt_cache_key": " session-key-1 ",
        "prompt_cache_retention": "24h",
        "metadata": {"user_id": "u"},
        "user": "u",
        "safety_identifier": "s",
        "stream_options": {"include_obfuscation": false},
        "service_tier": "priority"
    })
}

#[test]
fn case_29_and_28_body_shape() {
    let (body, outcome) = transform(converted_body(), &CodexTransformOptions::default());
    assert_eq!(
        body,
        json!({
            "model": "gpt-5.4",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "client-system"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
            ],
            "store": false,
            "stream": true,
            "parallel_tool_calls": true,
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "high", "summary": "auto"},
            "service_tier": "priority",
            "instructions": ""
        })
    );
    assert_eq!(
        outcome,
        CodexTransformOutcome {
            upstream_model: "gpt-5.4".into(),
            prompt_cache_key: Some("session-key-1".into()),
        }
    );
}

#[test]
fn case_8_forced_instructions_template() {
    let opts = CodexTransformOptions {
        forced_instructions_template: Some("server-prefix\n\n{{ .ExistingInstructions }}"),
        original_model: "gpt-5.4-xhigh",
        normalized_model: "gpt-5.4",
        billing_model: "gpt-5.4",
        responses_lite: false,
    };
    let (body, _) = transform(converted_body(), &opts);
    assert_eq!(
        body["instructions"],
        json!("server-prefix\n\nclient-system")
    );

    // Existing instructions win over the input's developer texts.
    let mut with_instructions = converted_body();
    with_instructions["instructions"] = json!("given");
    let (body, _) = transform(with_instructions, &opts);
    assert_eq!(body["instructions"], json!("server-prefix\n\ngiven"));

    // A template rendering to the existing text or to blank changes nothing.
    let same = CodexTransformOptions {
        forced_instructions_template: Some("  {{.ExistingInstructions}}  "),
        ..opts
    };
    let mut given = converted_body();
    given["instructions"] = json!("given");
    assert_eq!(transform(given, &same).0["instructions"], json!("given"));
    let blank = CodexTransformOptions {
        forced_instructions_template: Some("   "),
        ..opts
    };
    assert_eq!(
        transform(converted_body(), &blank).0["instructions"],
        json!("")
    );

    // A bad template aborts the request.
    let bad = CodexTransformOptions {
        forced_instructions_template: Some("{{ .Nope }}"),
        ..opts
    };
    let err = apply_codex_transform(&mut request(converted_body()), &bad).unwrap_err();
    assert!(matches!(err, AccountsError::Template { .. }), "{err:?}");
}

#[test]
fn template_fields_and_trim_markers() {
    let fields = TemplateFields {
        existing_instructions: "E",
        original_model: "O",
        normalized_model: "N",
        billing_model: "B",
        upstream_model: "U",
    };
    let render = |t: &str| render_instructions_template(t, &fields).map_err(|e| e.to_string());
    assert_eq!(
        render(
            "{{.OriginalModel}}|{{ .NormalizedModel }}|{{ .BillingModel }}|{{ .UpstreamModel }}|{{ .ExistingInstructions }}"
        ),
        Ok("O|N|B|U|E".to_owned())
    );
    assert_eq!(
        render("a  \n {{- .UpstreamModel -}} \n  b"),
        Ok("aUb".to_owned())
    );
    assert_eq!(render("no actions"), Ok("no actions".to_owned()));
    assert_eq!(
        render("{{ if .X }}"),
        Err("forced instructions template: unsupported action {{ if .X }}".to_owned())
    );
    assert_eq!(
        render("oops {{ .BillingModel"),
        Err("forced instructions template: unclosed {{".to_owned())
    );
}

#[test]
fn tools_tool_choice_and_legacy_functions() {
    let body = json!({
        "model": "gpt-5.1-codex-high",
        "tools": [
            {"type": "function", "name": "Bash", "parameters": {"type": "object"}, "strict": false},
            {"type": "function", "function": {"name": "Read", "description": "read", "parameters": {"type": "object"}, "strict": true}},
            {"type": "function", "function": {"description": "nameless"}},
            {"type": "function"},
            {"type": "web_search"}
        ],
        "tool_choice": {"type": "function", "function": {"name": "Read"}}
    });
    let (_, outcome) = transform(body, &CodexTransformOptions::default());
    assert_eq!(outcome.upstream_model, "gpt-5.1-codex");

    let choices = [
        (
            json!({"type": "function", "name": "Missing"}),
            json!("auto"),
        ),
        (json!({"type": "function"}), json!("auto")),
        (json!({"type": "web_search"}), json!({"type": "web_search"})),
        (json!({"type": "image_generation"}), json!("auto")),
        (json!("required"), json!("required")),
    ];
    for (choice, want) in choices {
        let body =
            json!({"model": "gpt-5.4", "tools": [{"type": "web_search"}], "tool_choice": choice});
        assert_eq!(
            transform(body, &CodexTransformOptions::default()).0["tool_choice"],
            want
        );
    }
}

#[test]
fn spark_models_lose_image_generation_tools() {
    let body = json!({
        "model": "gpt-5.3-codex-spark",
        "tools": [{"type": "image_generation"}, {"type": "web_search"}]
    });
    let (body, _) = transform(body, &CodexTransformOptions::default());
    assert_eq!(body["tools"], json!([{"type": "web_search"}]));
}

#[test]
fn input_item_ids_are_dropped_and_encrypted_reasoning_included() {
    let body = json!({
        "model": "gpt-5.4",
        "reasoning": {"effort": "low"},
        "input": [
            {"type": "message", "id": "msg_1", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "Bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "id": "fco_1", "output": "ok"}
        ]
    });
    let (body, _) = transform(body, &CodexTransformOptions::default());
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["instructions"], json!(""));
    assert_eq!(
        body["input"],
        json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
        ])
    );
    let (body, _) = transform(
        json!({"model": "gpt-5.4", "input": []}),
        &CodexTransformOptions::default(),
    );
    assert_eq!(body.get("include"), None, "no reasoning, no include");
}

#[test]
fn urls() {
    let mut oauth = AccountConfig::oauth("o", Secret::new("t"), None);
    let mut key = AccountConfig::api_key("k", "https://relay.example/v1/", Secret::new("sk"));
    assert_eq!(
        responses_url(&oauth),
        "https://chatgpt.com/backend-api/codex/responses"
    );
    assert_eq!(responses_url(&key), "https://relay.example/v1/responses");
    oauth.base_url = Some("http://127.0.0.1:9/codex".into());
    key.base_url = None;
    assert_eq!(responses_url(&oauth), "http://127.0.0.1:9/codex/responses");
    assert_eq!(responses_url(&key), "https://api.openai.com/v1/responses");
}

#[test]
fn responses_lite_moves_tools_and_instructions_into_the_input() {
    let body = json!({
        "model": "gpt-5.6-sol",
        "instructions": "be brief",
        "tools": [{"type": "function", "name": "Bash", "parameters": {"type": "object"}, "strict": false},
                  {"type": "custom", "name": "apply_patch"}],
        "tool_choice": {"type": "function", "name": "Bash"},
        "parallel_tool_calls": true,
        "previous_response_id": "resp_1",
        "reasoning": {"effort": "max"},
        "input": [{"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "high"}
        ]}]
    });
    let mut m = request(body);
    ferry_accounts::apply_responses_lite(&mut m, "gpt-5.6-sol").unwrap();
    assert_eq!(
        json_of(&m),
        json!({
            "model": "gpt-5.6-sol",
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "max", "context": "all_turns"},
            "input": [
                {"type": "additional_tools", "role": "developer", "tools": [
                    {"type": "function", "name": "Bash", "parameters": {"type": "object"}, "strict": false},
                    {"type": "custom", "name": "apply_patch"}]},
                {"type": "message", "role": "developer", "content": [
                    {"type": "input_text", "text": "be brief"}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"}]}
            ]
        })
    );
    // Nothing to move: no lead items, still the Lite flags.
    let mut bare = request(json!({"model": "m", "instructions": "", "input": []}));
    ferry_accounts::apply_responses_lite(&mut bare, "m").unwrap();
    let bare = json_of(&bare);
    assert_eq!(bare["reasoning"], json!({"context": "all_turns"}));
    // A hosted tool cannot be expressed.
    let mut search = request(json!({"model": "m", "tools": [{"type": "web_search"}], "input": []}));
    let err = ferry_accounts::apply_responses_lite(&mut search, "gpt-5.6-sol").unwrap_err();
    assert!(
        matches!(&err, AccountsError::LiteUnsupportedTool { tool, .. } if tool == "web_search"),
        "{err:?}"
    );
}
