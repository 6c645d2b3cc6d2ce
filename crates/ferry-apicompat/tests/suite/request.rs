//! Request direction: parsing Anthropic requests.

use std::path::Path;

use ferry_apicompat::anthropic;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

#[test]
fn recorded_claude_code_requests_parse() {
    let dir = fixtures().join("requests/claude-code");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read(&path).unwrap();
        let req =
            anthropic::parse_request(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!req.messages.is_empty());
        assert!(req.metadata.unwrap().session_id().is_some());
        n += 1;
    }
    assert_eq!(n, 7);
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
        pretty_assertions::assert_eq!(err.to_string(), *want);
    }
}
