//! Malformed requests through the real server on 127.0.0.1, one test per row of the
//! bad-input table in `docs/RELIABILITY.md`: each asserts the status, the Anthropic error
//! envelope (`{"type":"error","error":{"type":T,"message":M}}`), the `request-id` header and
//! how many requests reached the (wiremock) upstream.

use ferry_testkit::upstream::{UpstreamMock, mount_sse, mount_status, start};
use ferry_testkit::*;
use http::Method;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::*;

/// One malformed (or surprising) request.
struct Case {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// `server.max_body_bytes` (the test config's default is 1 MiB).
    max_body: Option<u64>,
    /// The upstream answers this status and body instead of a text stream.
    upstream_error: Option<(u16, &'static str)>,
}

impl Case {
    fn raw(body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: Method::POST,
            path: "/v1/messages",
            content_type: Some("application/json"),
            body: body.into(),
            max_body: None,
            upstream_error: None,
        }
    }

    fn json(v: &Value) -> Self {
        Self::raw(serde_json::to_vec(v).unwrap())
    }

    /// A valid request with `f` applied to it.
    fn with(f: impl FnOnce(&mut Value)) -> Self {
        let mut v = request("hi", false);
        f(&mut v);
        Self::json(&v)
    }

    fn max_body(mut self, n: u64) -> Self {
        self.max_body = Some(n);
        self
    }

    fn method(mut self, m: Method) -> Self {
        self.method = m;
        self
    }

    fn path(mut self, p: &'static str) -> Self {
        self.path = p;
        self
    }

    fn content_type(mut self, ct: Option<&'static str>) -> Self {
        self.content_type = ct;
        self
    }

    fn upstream_error(mut self, status: u16, body: &'static str) -> Self {
        self.upstream_error = Some((status, body));
        self
    }
}

/// What the client got, and what reached the upstream.
struct Outcome {
    status: u16,
    body: Value,
    upstream: UpstreamMock,
}

async fn send(case: Case) -> Outcome {
    let upstream = start().await;
    let mock = match case.upstream_error {
        Some((status, body)) => mount_status(&upstream, status, &[], body).await,
        None => {
            mount_sse(
                &upstream,
                sse(text_events("resp_bad", &["ok"], Usage::new(1, 1))),
            )
            .await
        }
    };
    let mut cfg = config(&upstream.uri());
    if let Some(n) = case.max_body {
        cfg.server.max_body_bytes = n;
    }
    let server = TestServer::start(cfg).await;
    let mut b = server
        .client
        .request(case.method.clone(), server.url(case.path))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", TEST_CLIENT_KEY)
        .body(case.body);
    if let Some(ct) = case.content_type {
        b = b.header("content-type", ct);
    }
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), b.send())
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(resp.headers().contains_key("request-id"), "no request-id");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    };
    Outcome {
        status,
        body,
        upstream: mock,
    }
}

/// Asserts a rejection: `status`, the Anthropic envelope with `kind`, a non-empty message,
/// and no upstream call. Returns the message.
async fn rejected(case: Case, status: u16, kind: &str) -> String {
    let out = send(case).await;
    let message = out.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        (out.status, &out.body),
        (
            status,
            &json!({"type": "error", "error": {"type": kind, "message": message}})
        )
    );
    assert!(!message.is_empty(), "empty error message");
    assert_eq!(
        out.upstream.count(),
        0,
        "a rejected request reached the upstream"
    );
    message
}

/// Asserts the request was forwarded once and answered with a message. Returns the body
/// the upstream received.
async fn accepted(case: Case) -> Value {
    let out = send(case).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        (&out.body["type"], &out.body["content"]),
        (&json!("message"), &json!([{"type": "text", "text": "ok"}]))
    );
    assert_eq!(out.upstream.count(), 1);
    out.upstream.requests().remove(0).body
}

/// `[[[…]]]` nested `depth` deep.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `{"a":{"a":…{}}}` nested `depth` deep.
fn nested_objects(depth: usize) -> String {
    format!("{}{{}}{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

/// A request whose one tool has `schema` (raw JSON text) as its input schema.
fn with_tool_schema(schema: &str) -> Case {
    Case::raw(format!(
        r#"{{"model":"claude-opus-4-8","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}],"tools":[{{"name":"deep","input_schema":{{"type":"object","properties":{{"x":{schema}}}}}}}]}}"#
    ))
}

// ---------------------------------------------------------------------------------------
// Body framing and encoding

#[tokio::test]
async fn empty_body() {
    let m = rejected(Case::raw(""), 400, "invalid_request_error").await;
    assert_eq!(m, "request body is empty");
}

#[tokio::test]
async fn not_json() {
    let m = rejected(Case::raw("{not json"), 400, "invalid_request_error").await;
    assert!(m.contains("key must be a string"), "{m}");
}

#[tokio::test]
async fn truncated_json() {
    rejected(
        Case::raw(r#"{"model":"claude-opus-4-8","messages":[{"role":"us"#),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn invalid_utf8_in_a_string() {
    let mut body =
        br#"{"model":"claude-opus-4-8","max_tokens":16,"messages":[{"role":"user","content":"a"#
            .to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#""}]}"#);
    let m = rejected(Case::raw(body), 400, "invalid_request_error").await;
    assert!(m.contains("invalid unicode code point"), "{m}");
}

#[tokio::test]
async fn utf16_body() {
    let text = serde_json::to_string(&request("hi", false)).unwrap();
    let body: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    rejected(Case::raw(body), 400, "invalid_request_error").await;
}

#[tokio::test]
async fn lone_surrogate_escape() {
    let m = rejected(
        Case::raw(
            r#"{"model":"claude-opus-4-8","max_tokens":16,"messages":[{"role":"user","content":"\ud800"}]}"#,
        ),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("escape"), "{m}");
}

#[tokio::test]
async fn nul_characters_are_forwarded() {
    let sent = accepted(Case::with(|r| {
        r["messages"][0]["content"] = json!("a\u{0}b");
    }))
    .await;
    assert!(sent.to_string().contains("a\\u0000b"), "{sent}");
}

#[tokio::test]
async fn trailing_garbage_after_the_object() {
    let mut body = serde_json::to_vec(&request("hi", false)).unwrap();
    body.extend_from_slice(b" {} garbage");
    let message = rejected(Case::raw(body), 400, "invalid_request_error").await;
    assert!(message.contains("trailing characters"), "{message}");
}

#[tokio::test]
async fn body_is_an_array() {
    rejected(Case::raw("[]"), 400, "invalid_request_error").await;
}

#[tokio::test]
async fn body_is_null() {
    rejected(Case::raw("null"), 400, "invalid_request_error").await;
}

#[tokio::test]
async fn body_is_a_string() {
    rejected(Case::raw(r#""hello""#), 400, "invalid_request_error").await;
}

#[tokio::test]
async fn duplicate_keys() {
    let m = rejected(
        Case::raw(
            r#"{"model":"claude-opus-4-8","model":"x","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("duplicate field"), "{m}");
}

#[tokio::test]
async fn text_plain_content_type_is_still_parsed() {
    // ferry reads the body as JSON whatever the content type says (as the Anthropic API).
    accepted(Case::json(&request("hi", false)).content_type(Some("text/plain"))).await;
}

#[tokio::test]
async fn missing_content_type_is_still_parsed() {
    accepted(Case::json(&request("hi", false)).content_type(None)).await;
}

#[tokio::test]
async fn form_encoded_body() {
    rejected(
        Case::raw("model=claude&max_tokens=1")
            .content_type(Some("application/x-www-form-urlencoded")),
        400,
        "invalid_request_error",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Methods and paths

#[tokio::test]
async fn get_on_messages() {
    let out = send(Case::raw("").method(Method::GET)).await;
    assert_eq!(out.status, 405);
    assert_eq!(out.body["type"], json!("error"));
    assert_eq!(out.body["error"]["type"], json!("invalid_request_error"));
    assert_eq!(out.upstream.count(), 0);
}

#[tokio::test]
async fn put_on_messages() {
    rejected(
        Case::json(&request("hi", false)).method(Method::PUT),
        405,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn delete_on_messages() {
    rejected(
        Case::raw("").method(Method::DELETE),
        405,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn unknown_path() {
    rejected(
        Case::json(&request("hi", false)).path("/v1/complete"),
        404,
        "not_found_error",
    )
    .await;
}

#[tokio::test]
async fn path_traversal_lookalike() {
    rejected(
        Case::json(&request("hi", false)).path("/v1/messages/../../etc/passwd"),
        404,
        "not_found_error",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Missing fields and wrong types

#[tokio::test]
async fn model_missing() {
    let m = rejected(
        Case::with(|r| {
            r.as_object_mut().unwrap().remove("model");
        }),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("model"), "{m}");
}

#[tokio::test]
async fn model_empty() {
    let m = rejected(
        Case::with(|r| r["model"] = json!("")),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(m, "model: is required");
}

#[tokio::test]
async fn model_number() {
    let m = rejected(
        Case::with(|r| r["model"] = json!(5)),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.starts_with("model"), "{m}");
}

#[tokio::test]
async fn model_unknown() {
    // A model name the mapping does not know goes upstream as it is (OpenAI model names
    // pass); the account's default model applies to `claude-*` names only.
    let sent = accepted(Case::with(|r| r["model"] = json!("no-such-model"))).await;
    assert_eq!(sent["model"], json!("no-such-model"));
}

#[tokio::test]
async fn messages_missing() {
    let m = rejected(
        Case::with(|r| {
            r.as_object_mut().unwrap().remove("messages");
        }),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("messages"), "{m}");
}

#[tokio::test]
async fn messages_empty() {
    let m = rejected(
        Case::with(|r| r["messages"] = json!([])),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("messages"), "{m}");
}

#[tokio::test]
async fn messages_not_an_array() {
    rejected(
        Case::with(|r| r["messages"] = json!("hi")),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn message_role_unknown_is_sent_as_user() {
    // ferry-apicompat keeps unknown roles (`Role::Other`) and sends them as user turns.
    let sent = accepted(Case::with(|r| r["messages"][0]["role"] = json!("robot"))).await;
    assert_eq!(
        sent["input"],
        json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}])
    );
}

#[tokio::test]
async fn message_content_number() {
    let m = rejected(
        Case::with(|r| r["messages"][0]["content"] = json!(42)),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("messages[0].content"), "{m}");
}

#[tokio::test]
async fn text_block_text_number() {
    let m = rejected(
        Case::with(|r| r["messages"][0]["content"] = json!([{"type": "text", "text": 5}])),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("messages[0].content[0]"), "{m}");
}

#[tokio::test]
async fn unknown_block_type_is_dropped() {
    let sent = accepted(Case::with(|r| {
        r["messages"][0]["content"] = json!([
            {"type": "hologram", "data": 1},
            {"type": "text", "text": "hi"}
        ]);
    }))
    .await;
    assert!(!sent.to_string().contains("hologram"), "{sent}");
}

#[tokio::test]
async fn max_tokens_missing() {
    // Lenient: the Anthropic API requires it, ferry forwards without a limit.
    accepted(Case::with(|r| {
        r.as_object_mut().unwrap().remove("max_tokens");
    }))
    .await;
}

#[tokio::test]
async fn max_tokens_string() {
    let m = rejected(
        Case::with(|r| r["max_tokens"] = json!("1024")),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("max_tokens"), "{m}");
}

#[tokio::test]
async fn max_tokens_negative() {
    rejected(
        Case::with(|r| r["max_tokens"] = json!(-1)),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn max_tokens_overflows_u64() {
    rejected(
        Case::raw(
            r#"{"model":"claude-opus-4-8","max_tokens":99999999999999999999999,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn stream_string() {
    let m = rejected(
        Case::with(|r| r["stream"] = json!("yes")),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("stream"), "{m}");
}

#[tokio::test]
async fn temperature_string() {
    rejected(
        Case::with(|r| r["temperature"] = json!("hot")),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn system_number() {
    rejected(
        Case::with(|r| r["system"] = json!(7)),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn tools_not_an_array() {
    rejected(
        Case::with(|r| r["tools"] = json!({"name": "x"})),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn tool_without_name() {
    rejected(
        Case::with(|r| r["tools"] = json!([{"input_schema": {"type": "object"}}])),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn tool_choice_unknown_shape() {
    rejected(
        Case::with(|r| r["tool_choice"] = json!("auto")),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn tool_use_without_id() {
    rejected(
        Case::with(|r| {
            r["messages"] = json!([
                {"role": "user", "content": "run it"},
                {"role": "assistant", "content": [{"type": "tool_use", "name": "Bash", "input": {}}]}
            ]);
        }),
        400,
        "invalid_request_error",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Size and depth

#[tokio::test]
async fn huge_string_over_the_body_limit() {
    let m = rejected(
        Case::json(&request(&"x".repeat(5 << 20), false)),
        413,
        "request_too_large",
    )
    .await;
    assert_eq!(m, "request body is larger than 1048576 bytes");
}

#[tokio::test]
async fn huge_string_within_the_body_limit() {
    let sent = accepted(Case::json(&request(&"x".repeat(5 << 20), false)).max_body(32 << 20)).await;
    assert!(sent.to_string().len() > 5 << 20);
}

#[tokio::test]
async fn ten_thousand_tools() {
    let tools: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "d", "input_schema": {"type": "object"}}))
        .collect();
    let sent = accepted(Case::with(|r| r["tools"] = json!(tools)).max_body(32 << 20)).await;
    assert_eq!(sent["tools"].as_array().map(Vec::len), Some(10_000));
}

#[tokio::test]
async fn ten_thousand_messages() {
    let messages: Vec<Value> = (0..10_000)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": format!("turn {i}")})
        })
        .collect();
    let sent = accepted(Case::with(|r| r["messages"] = json!(messages)).max_body(32 << 20)).await;
    assert_eq!(sent["input"].as_array().map(Vec::len), Some(10_000));
}

#[tokio::test]
async fn deep_arrays_in_a_tool_schema() {
    // serde_json's recursion limit (128) turns 10,000 levels into a 400, not a stack overflow.
    let m = rejected(
        with_tool_schema(&nested_arrays(10_000)),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("recursion limit exceeded"), "{m}");
}

#[tokio::test]
async fn deep_objects_in_a_tool_schema() {
    let m = rejected(
        with_tool_schema(&nested_objects(10_000)),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("recursion limit exceeded"), "{m}");
}

#[tokio::test]
async fn deep_arrays_as_the_whole_body() {
    // Refused at the first `[`: the body must be an object.
    let m = rejected(
        Case::raw(nested_arrays(100_000)),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.starts_with("body: invalid type: sequence"), "{m}");
}

#[tokio::test]
async fn deep_objects_in_an_unknown_field() {
    // Unknown fields are skipped, but skipping still counts depth.
    let body = format!(
        r#"{{"model":"claude-opus-4-8","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}],"x_extra":{}}}"#,
        nested_objects(100_000)
    );
    let m = rejected(Case::raw(body), 400, "invalid_request_error").await;
    assert!(m.contains("recursion limit exceeded"), "{m}");
}

#[tokio::test]
async fn deep_tool_input_in_history() {
    let body = format!(
        r#"{{"model":"claude-opus-4-8","max_tokens":16,"messages":[{{"role":"user","content":"go"}},{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"Bash","input":{{"x":{}}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"ok"}}]}}]}}"#,
        nested_objects(10_000)
    );
    let m = rejected(Case::raw(body), 400, "invalid_request_error").await;
    assert!(m.contains("recursion limit exceeded"), "{m}");
}

#[tokio::test]
async fn nesting_below_the_limit_is_forwarded() {
    // A schema 50 objects deep (about 110 levels in the document) stays under serde_json's
    // 128 and reaches the upstream whole.
    let schema = format!(
        "{}{{\"type\":\"string\"}}{}",
        r#"{"type":"object","properties":{"a":"#.repeat(50),
        "}}".repeat(50)
    );
    let sent = accepted(with_tool_schema(&schema)).await;
    let mut depth = 0;
    let mut v = &sent["tools"][0]["parameters"]["properties"]["x"];
    while let Some(inner) = v.get("properties").and_then(|p| p.get("a")) {
        depth += 1;
        v = inner;
    }
    assert_eq!((depth, v), (50, &json!({"type": "string"})));
}

#[tokio::test]
async fn count_tokens_with_deep_nesting() {
    let mut case = with_tool_schema(&nested_arrays(10_000));
    case.path = "/v1/messages/count_tokens";
    rejected(case, 400, "invalid_request_error").await;
}

// ---------------------------------------------------------------------------------------
// Images

fn image_case(data: &str, media_type: &str) -> Case {
    let data = data.to_owned();
    let media_type = media_type.to_owned();
    Case::with(move |r| {
        r["messages"][0]["content"] = json!([
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
            {"type": "text", "text": "what is this?"}
        ]);
    })
}

#[tokio::test]
async fn invalid_base64_image_is_forwarded() {
    // ferry does not decode images: the data goes upstream as a data URL, verbatim, and the
    // upstream judges it (see the next test for its 400).
    let sent = accepted(image_case("%%% not base64 %%%", "image/png")).await;
    assert!(
        sent.to_string()
            .contains("data:image/png;base64,%%% not base64 %%%"),
        "{sent}"
    );
}

#[tokio::test]
async fn invalid_base64_image_rejected_upstream() {
    let out = send(image_case("%%% not base64 %%%", "image/png").upstream_error(
        400,
        r#"{"error":{"message":"Invalid base64 image_url.","type":"invalid_request_error","code":"invalid_image_url"}}"#,
    ))
    .await;
    assert_eq!(
        (out.status, out.body),
        (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Invalid base64 image_url."}})
        )
    );
    assert_eq!(out.upstream.count(), 1);
}

#[tokio::test]
async fn image_without_data() {
    rejected(
        Case::with(|r| {
            r["messages"][0]["content"] =
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]);
        }),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn image_data_number() {
    rejected(image_case_number(), 400, "invalid_request_error").await;
}

fn image_case_number() -> Case {
    Case::with(|r| {
        r["messages"][0]["content"] = json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": 12}}
        ]);
    })
}

#[tokio::test]
async fn image_source_unknown_type() {
    rejected(
        Case::with(|r| {
            r["messages"][0]["content"] =
                json!([{"type": "image", "source": {"type": "ftp", "path": "/x.png"}}]);
        }),
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn max_tokens_zero() {
    let m = rejected(
        Case::with(|r| r["max_tokens"] = json!(0)),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(m, "max_tokens: must be greater than or equal to 1");
}

#[tokio::test]
async fn tool_use_input_not_an_object() {
    for input in [json!("{\"a\":1}"), json!([1]), json!(7)] {
        let m = rejected(
            Case::with(|r| {
                r["messages"] = json!([
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "get", "input": input}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
                    ]}
                ]);
            }),
            400,
            "invalid_request_error",
        )
        .await;
        assert!(m.starts_with("messages[1].content[0].input: "), "{m}");
    }
}

#[tokio::test]
async fn tool_input_schema_not_an_object() {
    let m = rejected(
        Case::with(|r| {
            r["tools"] = json!([{"name": "get", "input_schema": "{\"type\":\"object\"}"}]);
        }),
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(
        m,
        "tools[0].input_schema: expected a JSON Schema object, got a string"
    );
}

#[tokio::test]
async fn final_user_turn_with_nothing_to_send() {
    // Sending the rest would make the model answer the previous question again.
    let m = rejected(
        Case::with(|r| {
            r["messages"] = json!([
                {"role": "user", "content": "what is 2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "file", "file_id": "file_011"}}
                ]}
            ]);
        }),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(
        m.starts_with("messages[2].content: the final user message has nothing that can be sent"),
        "{m}"
    );
}
