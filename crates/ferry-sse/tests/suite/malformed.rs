//! Malformed input gives typed errors or skips, never a panic, and the parser recovers.

use ferry_sse::{Frame, ParseError, Parser};
use pretty_assertions::assert_eq;

use super::support::{Outcome, parse_chunks};

fn frame(data: &str) -> Frame {
    Frame::new(None, data)
}

#[test]
fn invalid_utf8_drops_only_its_frame() {
    let got = parse_chunks(
        64,
        [&b"data: ok1\n\ndata: bad \xff\ndata: more\n\ndata: ok2\n\n"[..]],
    );
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("ok1"), frame("ok2")],
            errors: vec![ParseError::InvalidUtf8 { offset: 11 }],
        }
    );
}

#[test]
fn invalid_utf8_in_an_event_name_or_id_drops_the_frame_too() {
    let got = parse_chunks(
        64,
        [&b"event: \xc3\ndata: x\n\nid: \xff\ndata: y\n\ndata: z\n\n"[..]],
    );
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("z")],
            errors: vec![ParseError::InvalidUtf8 { offset: 0 }],
        }
    );
    // Comments and unknown fields are not decoded, so bad bytes there are harmless.
    let got = parse_chunks(64, [&b": \xff\nx\xff: \xfe\ndata: ok\n\n"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("ok")],
            errors: vec![]
        }
    );
}

#[test]
fn utf8_cut_at_end_of_stream_is_an_error_not_a_panic() {
    let got = parse_chunks(64, [&b"data: ok\n\ndata: \xe4\xb8"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("ok")],
            errors: vec![ParseError::InvalidUtf8 { offset: 10 }],
        }
    );
}

#[test]
fn an_over_long_line_is_not_buffered_and_the_frame_is_dropped() {
    let mut parser = Parser::new(16);
    let mut frames = Vec::new();
    parser
        .feed(b"data: ok\n\nevent: big\ndata: ", &mut frames)
        .unwrap();
    // Megabytes of one line arrive: the first chunk that crosses the limit errors, the
    // rest is skipped without an error per chunk.
    let block = vec![b'a'; 1 << 20];
    assert_eq!(
        parser.feed(&block, &mut frames),
        Err(ParseError::LineTooLong {
            limit: 16,
            offset: 21
        })
    );
    for _ in 0..8 {
        parser.feed(&block, &mut frames).unwrap();
    }
    // The remaining lines of the broken frame are ignored too.
    parser
        .feed(b"\ndata: rest\n\ndata: next\n\n", &mut frames)
        .unwrap();
    parser.finish(&mut frames).unwrap();
    assert_eq!(frames, vec![frame("ok"), frame("next")]);
}

#[test]
fn an_over_long_line_inside_one_chunk_is_the_same_error() {
    let got = parse_chunks(16, [&b"data: 0123456789abcdefXYZ\n\ndata: next\n\n"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("next")],
            errors: vec![ParseError::LineTooLong {
                limit: 16,
                offset: 0
            }],
        }
    );
}

#[test]
fn a_line_of_exactly_the_limit_is_accepted() {
    let got = parse_chunks(16, [&b"data: 0123456789\n\n"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("0123456789")],
            errors: vec![]
        }
    );
}

#[test]
fn frame_data_is_bounded_too() {
    let got = parse_chunks(
        16,
        [&b"data: 0123456789\ndata: 0123456789\ndata: x\n\ndata: next\n\n"[..]],
    );
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("next")],
            errors: vec![ParseError::FrameTooLong {
                limit: 16,
                offset: 17
            }],
        }
    );
}

#[test]
fn garbage_between_frames_is_skipped() {
    let got = parse_chunks(
        64,
        [&b"data: one\n\n\x00\x01 junk \xff\n}{][\n\ndata: two\n\n"[..]],
    );
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("one"), frame("two")],
            errors: vec![]
        }
    );
}

#[test]
fn a_missing_final_blank_line_still_gives_the_frame() {
    let got = parse_chunks(64, [&b"data: one\n\ndata: two"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![frame("one"), frame("two")],
            errors: vec![]
        }
    );
}

#[test]
fn a_zero_limit_accepts_only_empty_lines() {
    let got = parse_chunks(0, [&b"\n\ndata\n\n"[..]]);
    assert_eq!(
        got,
        Outcome {
            frames: vec![],
            errors: vec![ParseError::LineTooLong {
                limit: 0,
                offset: 2
            }]
        }
    );
}
