//! `validate_request_invariants` catches what it promises to catch.

use ferry_testkit::upstream::{CapturedRequest, Invariants, validate_request_invariants};
use ferry_testkit::{TEST_CLIENT_KEY, TEST_UPSTREAM_KEY};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn req(body: Value, headers: &[(&str, &str)]) -> CapturedRequest {
    CapturedRequest {
        method: "POST".into(),
        path: "/v1/responses".into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        raw_body: serde_json::to_vec(&body).unwrap(),
        body,
    }
}

#[test]
fn a_clean_request_passes() {
    let r = req(
        json!({"stream": true, "prompt_cache_key": "k", "input": [
            {"type": "function_call", "call_id": "c1", "name": "Bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}
        ]}),
        &[
            ("authorization", &format!("Bearer {TEST_UPSTREAM_KEY}")),
            ("accept", "text/event-stream"),
        ],
    );
    let inv = Invariants {
        expect_prompt_cache_key: true,
        previous_response_id: Some(None),
        ..Invariants::default()
    };
    assert_eq!(validate_request_invariants(&r, &inv), Vec::<String>::new());
    // A non-streaming client's answer is asked for as JSON.
    let mut json = r.clone();
    json.body["stream"] = json!(false);
    json.headers
        .push(("accept".into(), "application/json".into()));
    json.headers
        .retain(|(k, v)| k != "accept" || v != "text/event-stream");
    assert_eq!(
        validate_request_invariants(&json, &inv),
        Vec::<String>::new()
    );
}

#[test]
fn violations_are_listed() {
    let r = req(
        json!({"stream": false, "input": [
            {"type": "function_call_output", "call_id": "c9", "output": TEST_CLIENT_KEY}
        ]}),
        &[
            ("x-forwarded-key", TEST_UPSTREAM_KEY),
            ("x-api-key", TEST_CLIENT_KEY),
        ],
    );
    let inv = Invariants {
        expect_prompt_cache_key: true,
        previous_response_id: Some(Some("resp_1".into())),
        ..Invariants::default()
    };
    assert_eq!(
        validate_request_invariants(&r, &inv),
        vec![
            "\"stream\": false with accept \"\"".to_owned(),
            "input[0]: output for call_id \"c9\" has no function_call before it".to_owned(),
            "a secret (sk-fer...) appears in the body".to_owned(),
            "the upstream key appears in header x-forwarded-key".to_owned(),
            "the client key appears in header x-api-key".to_owned(),
            "prompt_cache_key is missing".to_owned(),
            "previous_response_id is None, expected Some(\"resp_1\")".to_owned(),
        ]
    );
}
