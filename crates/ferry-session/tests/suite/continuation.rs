//! Trimming, continuation-error recognition and the todo guard (cases 11, 12, 15, 17, 18;
//! crates/ferry-session/README.md § Decisions).

use ferry_apicompat::responses::{
    FunctionCall, FunctionCallOutput, InputContent, InputItem, MessageRole,
};
use ferry_session::{
    ContinuationError, TODO_GUARD_MARKER, TODO_GUARD_TEXT, classify_continuation_error,
    continuation_enabled, insert_todo_guard, is_previous_response_not_found,
    is_previous_response_unsupported, trim_to_latest_turn, wants_todo_guard,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::support::claude_code;

fn user(text: &str) -> InputItem {
    InputItem::message(MessageRole::User, vec![InputContent::input_text(text)])
}

fn assistant(text: &str) -> InputItem {
    InputItem::message(
        MessageRole::Assistant,
        vec![InputContent::output_text(text)],
    )
}

fn developer(text: &str) -> InputItem {
    InputItem::message(MessageRole::Developer, vec![InputContent::input_text(text)])
}

fn call(id: &str) -> InputItem {
    InputItem::FunctionCall(FunctionCall::new(id, "Bash", "{}"))
}

fn output(id: &str) -> InputItem {
    InputItem::FunctionCallOutput(FunctionCallOutput::text(id, "ok"))
}

fn reasoning() -> InputItem {
    serde_json::from_value(json!({"type": "reasoning", "summary": [], "encrypted_content": "enc"}))
        .unwrap()
}

fn unknown(v: serde_json::Value) -> InputItem {
    InputItem::Unknown(v)
}

#[test]
fn trimming_to_the_latest_turn() {
    let cases: Vec<(&str, Vec<InputItem>, Vec<InputItem>)> = vec![
        ("empty", vec![], vec![]),
        ("a lone user message", vec![user("q")], vec![user("q")]),
        (
            "a new question keeps only itself",
            vec![developer("sys"), user("q1"), assistant("a1"), user("q2")],
            vec![user("q2")],
        ),
        (
            "tool outputs go without their calls (the calls are in the previous response)",
            vec![
                developer("sys"),
                user("q1"),
                reasoning(),
                call("c1"),
                call("c2"),
                output("c1"),
                output("c2"),
            ],
            vec![output("c1"), output("c2")],
        ),
        (
            "a question after tool outputs keeps the outputs and the question (case 12)",
            vec![
                user("q1"),
                assistant("let me look"),
                call("c1"),
                output("c1"),
                user("and then?"),
            ],
            vec![output("c1"), user("and then?")],
        ),
        (
            "only what follows the last model item is kept",
            vec![
                user("q1"),
                call("c1"),
                assistant("and"),
                call("c2"),
                output("c2"),
                output("c1"),
            ],
            vec![output("c2"), output("c1")],
        ),
        (
            "calls missing from the input are in the previous response",
            vec![user("q1"), assistant("a1"), output("c9"), user("q2")],
            vec![output("c9"), user("q2")],
        ),
        (
            "only the run right before the last item counts",
            vec![
                user("q1"),
                call("c1"),
                output("c1"),
                assistant("a"),
                user("q2"),
            ],
            vec![user("q2")],
        ),
        (
            "a developer message of the new turn is kept",
            vec![user("q1"), assistant("a1"), developer("note")],
            vec![developer("note")],
        ),
        (
            "a model item last is kept alone",
            vec![user("q1"), assistant("a1")],
            vec![assistant("a1")],
        ),
        (
            "custom tool calls count like function calls",
            vec![
                user("q1"),
                unknown(
                    json!({"type": "custom_tool_call", "call_id": "x1", "name": "apply_patch", "input": "…"}),
                ),
                unknown(
                    json!({"type": "custom_tool_call_output", "call_id": "x1", "output": "done"}),
                ),
            ],
            vec![unknown(
                json!({"type": "custom_tool_call_output", "call_id": "x1", "output": "done"}),
            )],
        ),
    ];
    for (name, mut input, want) in cases {
        let before = input.len();
        let cut = trim_to_latest_turn(&mut input);
        assert_eq!(cut, input.len() != before, "{name}");
        assert_eq!(input, want, "{name}");
    }
}

#[test]
fn not_found_recogniser() {
    let cases: &[(u16, &str, bool)] = &[
        (
            400,
            r#"{"error":{"code":"previous_response_not_found","message":"x"}}"#,
            true,
        ),
        (
            404,
            r#"{"error":{"message":"Previous response with id 'resp_1' not found."}}"#,
            true,
        ),
        (
            400,
            r#"{"error":{"message":"Unsupported parameter: 'previous_response_id'"}}"#,
            true,
        ),
        (
            400,
            r#"{"error":{"message":"previous_response_id is not available for this user"}}"#,
            true,
        ),
        (400, "Previous Response resp_1 Not Found", true),
        // \u0020 escapes hide the phrase from the raw text; the parsed message has it.
        (
            400,
            r#"{"error":{"message":"previous\u0020response resp_1 not\u0020found"}}"#,
            true,
        ),
        // Near misses (case 17, 18).
        (
            403,
            r#"{"error":{"message":"previous_response_id is not available for this user"}}"#,
            false,
        ),
        (
            404,
            r#"{"error":{"message":"previous_response_id is not available for this user"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"previous_response_id is not available for this project"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"The model is not available for this user"}}"#,
            false,
        ),
        (
            500,
            r#"{"error":{"code":"previous_response_not_found"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"context_length_exceeded"}}"#,
            false,
        ),
        (400, "", false),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            is_previous_response_not_found(*status, body.as_bytes()),
            *want,
            "{status} {body}"
        );
    }
}

#[test]
fn unsupported_recogniser() {
    let cases: &[(u16, &str, bool)] = &[
        (
            400,
            r#"{"error":{"message":"previous_response_id requires an OpenAI API-key account for HTTP requests"}}"#,
            true,
        ),
        (
            400,
            r#"{"error":{"message":"previous_response_id is only supported on Responses WebSocket connections"}}"#,
            true,
        ),
        (
            400,
            r#"{"error":{"message":"Unsupported parameter: previous_response_id"}}"#,
            true,
        ),
        (
            400,
            r#"{"detail":"previous_response_id is not supported by this endpoint"}"#,
            true,
        ),
        // Near misses (case 18).
        (
            401,
            r#"{"error":{"message":"previous_response_id is only supported on Responses WebSocket connections"}}"#,
            false,
        ),
        (
            404,
            r#"{"error":{"message":"Unsupported parameter: previous_response_id"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"The model is not available for this user"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"previous_response_id is not available for this user"}}"#,
            false,
        ),
        (
            400,
            r#"{"error":{"message":"Unsupported parameter: temperature"}}"#,
            false,
        ),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            is_previous_response_unsupported(*status, body.as_bytes()),
            *want,
            "{status} {body}"
        );
    }
}

#[test]
fn classification_prefers_unsupported() {
    let both = br#"{"error":{"message":"Unsupported parameter: previous_response_id"}}"#;
    assert_eq!(
        classify_continuation_error(400, both),
        Some(ContinuationError::Unsupported)
    );
    assert_eq!(
        classify_continuation_error(404, both),
        Some(ContinuationError::NotFound)
    );
    assert_eq!(
        classify_continuation_error(400, br#"{"error":{"message":"bad"}}"#),
        None
    );
    assert_eq!(
        [
            ContinuationError::NotFound.as_str(),
            ContinuationError::Unsupported.as_str()
        ],
        ["not_found", "unsupported"]
    );
}

#[test]
fn continuation_is_for_api_key_accounts_on_gpt5_models() {
    let cases = [
        (true, true, "gpt-5.5", true),
        (true, false, "gpt-5.5", false), // case 11: an account with continuation off replays
        (false, true, "gpt-5.1-codex", false), // OAuth: turn state instead (case 14)
        (true, true, "gpt-4o", false),
    ];
    for (api_key, allows, model, want) in cases {
        assert_eq!(
            continuation_enabled(api_key, allows, model),
            want,
            "{api_key} {allows} {model}"
        );
    }
}

#[test]
fn todo_guard_goes_after_the_leading_instructions() {
    let guard = developer(TODO_GUARD_TEXT);
    let system = InputItem::message(MessageRole::System, vec![InputContent::input_text("s")]);
    let cases: Vec<(Vec<InputItem>, Vec<InputItem>)> = vec![
        // Case 15's retry input: guard, user text, call, output, user text.
        (
            vec![
                user("find it"),
                call("call_1"),
                output("call_1"),
                user("thanks"),
            ],
            vec![
                guard.clone(),
                user("find it"),
                call("call_1"),
                output("call_1"),
                user("thanks"),
            ],
        ),
        (
            vec![developer("d1"), system.clone(), user("q")],
            vec![developer("d1"), system.clone(), guard.clone(), user("q")],
        ),
        (
            vec![developer("only")],
            vec![developer("only"), guard.clone()],
        ),
    ];
    for (mut input, want) in cases {
        assert!(insert_todo_guard(&mut input));
        assert_eq!(input, want);
        assert!(!insert_todo_guard(&mut input), "idempotent");
    }
    let mut empty = Vec::new();
    assert!(!insert_todo_guard(&mut empty));
    assert_eq!(empty, Vec::<InputItem>::new());
    let mut marked = vec![
        user("q"),
        output("c"),
        user(&format!("quoted {TODO_GUARD_MARKER}")),
    ];
    assert!(!insert_todo_guard(&mut marked));
    assert!(
        TODO_GUARD_TEXT.starts_with(TODO_GUARD_MARKER)
            && TODO_GUARD_TEXT.ends_with("</ferry-todo-guard>")
    );
}

#[test]
fn todo_guard_is_for_requests_with_task_tools() {
    assert!(wants_todo_guard(&claude_code("03_bash_turn2_tool_result")));
    assert!(!wants_todo_guard(&claude_code("07_bare_mode")));
    let old_style = super::support::req(&json!({"model": "m", "messages": [],
        "tools": [{"name": "TodoWrite", "input_schema": {"type": "object"}}]}));
    assert!(wants_todo_guard(&old_style));
    let none = super::support::req(&json!({"model": "m", "messages": []}));
    assert!(!wants_todo_guard(&none));
}
