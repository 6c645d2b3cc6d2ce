//! Field rules of the frame parser and `Frame` helpers (case 41; the rules are listed in
//! crates/ferry-sse/README.md § Brief overview).

use ferry_sse::{Frame, ParseError, Parser};
use pretty_assertions::assert_eq;

use super::support::{Outcome, SSE_FIXTURE_MAX, fixtures_root, max_for, parse_chunks, render};

fn parse(input: &str) -> Outcome {
    parse_chunks(1024, [input.as_bytes()])
}

fn frame(event: Option<&str>, data: &str) -> Frame {
    Frame::new(event, data)
}

/// Case 41, one row per situation.
#[test]
fn case_41_table() {
    let table: &[(&str, Vec<Frame>)] = &[
        (
            "event: x\ndata: a\ndata: b\n\n",
            vec![frame(Some("x"), "a\nb")],
        ),
        ("event: x\n\n", vec![]),
        (": comment\n\n", vec![]),
        (": comment\ndata: c\n\n", vec![frame(None, "c")]),
        (
            "event: x\ndata: pending at eof",
            vec![frame(Some("x"), "pending at eof")],
        ),
        (
            "event: x\ndata: pending\n",
            vec![frame(Some("x"), "pending")],
        ),
        (
            "data: a\n\ndata: b\n\n",
            vec![frame(None, "a"), frame(None, "b")],
        ),
    ];
    for (input, expected) in table {
        let got = parse(input);
        assert_eq!(got.errors, vec![], "{input:?}");
        assert_eq!(&got.frames, expected, "{input:?}");
    }
}

#[test]
fn field_rules_follow_the_sse_specification() {
    let table: &[(&str, Frame)] = &[
        // One optional space after the colon is stripped, not more.
        ("data:x\n\n", frame(None, "x")),
        ("data:  x \n\n", frame(None, " x ")),
        ("data:\tx\n\n", frame(None, "\tx")),
        // A field name without a colon has an empty value.
        ("data\n\n", frame(None, "")),
        ("data\ndata\n\n", frame(None, "\n")),
        // Event names are trimmed; a blank one is the default.
        ("event:  spaced \t\ndata: d\n\n", frame(Some("spaced"), "d")),
        ("event:\ndata: d\n\n", frame(None, "d")),
        ("event: a\nevent: b\ndata: d\n\n", frame(Some("b"), "d")),
        // Unknown fields and lines without a known name are ignored.
        ("foo: bar\ndata: d\nDATA: no\n\n", frame(None, "d")),
        ("data : not data\ndata: d\n\n", frame(None, "d")),
        // A colon inside the value stays.
        ("data: {\"a\":1}\n\n", frame(None, "{\"a\":1}")),
    ];
    for (input, expected) in table {
        let got = parse(input);
        assert_eq!(got.errors, vec![], "{input:?}");
        assert_eq!(&got.frames, &vec![expected.clone()], "{input:?}");
    }
}

#[test]
fn id_and_retry_are_kept_when_valid() {
    let got = parse(
        "id: 42\nretry: 3000\ndata: d\n\nid: a\0b\nretry: 1x\nretry: 99999999999999999999999\ndata: e\n\nid\ndata: f\n\n",
    );
    let expected = vec![
        Frame {
            id: Some("42".into()),
            retry: Some(3000),
            ..frame(None, "d")
        },
        frame(None, "e"),
        Frame {
            id: Some(String::new()),
            ..frame(None, "f")
        },
    ];
    assert_eq!(
        got,
        Outcome {
            frames: expected,
            errors: vec![]
        }
    );
}

#[test]
fn line_ends_can_be_mixed_and_split() {
    let mut parser = Parser::new(64);
    let mut frames = Vec::new();
    // CR at the end of a chunk and LF at the start of the next are one line end, so the
    // frame is not dispatched early by an "empty line" between them.
    for chunk in [&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"] {
        parser.feed(chunk, &mut frames).unwrap();
    }
    assert_eq!(frames, vec![frame(None, "a\nb")]);
    // Lone CRs are line ends too.
    parser.feed(b"data: c\r\rdata: d\r", &mut frames).unwrap();
    parser.feed(b"\r", &mut frames).unwrap();
    assert_eq!(
        frames,
        vec![frame(None, "a\nb"), frame(None, "c"), frame(None, "d")]
    );
}

#[test]
fn a_leading_bom_is_skipped_once_even_when_split() {
    let mut parser = Parser::new(64);
    let mut frames = Vec::new();
    for chunk in [
        &b"\xEF"[..],
        b"\xBB",
        b"\xBFdata: x\n\n\xEF\xBB\xBFdata: y\n\n",
    ] {
        parser.feed(chunk, &mut frames).unwrap();
    }
    parser.finish(&mut frames).unwrap();
    // The second BOM is not at the start of the stream, so it is part of a field name and
    // that line is ignored.
    assert_eq!(frames, vec![frame(None, "x")]);
}

#[test]
fn a_multibyte_character_split_between_chunks_survives() {
    let text = "data: h\u{e9}llo \u{4e16}\u{754c} \u{1F600}\n\n".as_bytes();
    for cut in 0..=text.len() {
        let got = parse_chunks(64, [&text[..cut], &text[cut..]]);
        assert_eq!(got.errors, vec![], "cut {cut}");
        assert_eq!(
            got.frames,
            vec![frame(None, "h\u{e9}llo \u{4e16}\u{754c} \u{1F600}")],
            "cut {cut}"
        );
    }
}

#[test]
fn finish_resets_the_parser_for_a_new_stream() {
    let mut parser = Parser::new(64);
    let mut frames = Vec::new();
    parser.feed(b"\xEF\xBB\xBFdata: one", &mut frames).unwrap();
    parser.finish(&mut frames).unwrap();
    parser
        .feed(b"\xEF\xBB\xBFdata: two\n\n", &mut frames)
        .unwrap();
    parser.finish(&mut frames).unwrap();
    assert_eq!(frames, vec![frame(None, "one"), frame(None, "two")]);
    assert_eq!(parser.max_line_bytes(), 64);
}

#[test]
fn done_sentinel_is_recognised() {
    assert!(frame(None, "[DONE]").is_done());
    assert!(frame(Some("done"), " [DONE]\n").is_done());
    assert!(!frame(None, "[DONE]x").is_done());
    assert!(!frame(None, "{\"type\":\"response.completed\"}").is_done());
}

#[test]
fn errors_name_the_limit_and_the_offset() {
    let got = parse_chunks(8, [&b"data: ok\n\ndata: 123456789\n\n"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame(None, "ok")],
            errors: vec![ParseError::LineTooLong {
                limit: 8,
                offset: 10
            }],
        }
    );
    assert_eq!(
        got.errors[0].to_string(),
        "sse line at byte 10 is longer than 8 bytes"
    );
}

/// Every parser fixture, parsed whole, as readable text.
#[test]
fn fixtures_snapshot() {
    assert!(fixtures_root().join("sse").is_dir());
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sse"),
        "**/*.sse",
        |path| {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(max_for(path), SSE_FIXTURE_MAX);
            let outcome = parse_chunks(SSE_FIXTURE_MAX, [&bytes[..]]);
            insta::with_settings!({ omit_expression => true, input_file => path, snapshot_path => "../snapshots" }, {
                insta::assert_snapshot!(render(&outcome));
            });
        }
    );
}
