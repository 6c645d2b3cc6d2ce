//! The SSE encoder: exact bytes, and output that reads back as what went in.

use ferry_sse::{Frame, Parser, encode_frame};
use pretty_assertions::assert_eq;

#[expect(
    clippy::unwrap_used,
    reason = "test helper: bad test data must fail the test"
)]
fn text(buf: &[u8]) -> &str {
    std::str::from_utf8(buf).unwrap()
}

#[test]
fn generic_frames_split_multiline_payloads_into_data_lines() {
    let mut buf = Vec::new();
    encode_frame("custom", b"{\"a\":1}", &mut buf);
    encode_frame("multi\r\nline", b"{\n  \"a\": 1\r\n}\r", &mut buf);
    assert_eq!(
        text(&buf),
        "event: custom\ndata: {\"a\":1}\n\nevent: multiline\ndata: {\ndata:   \"a\": 1\ndata: }\ndata: \n\n"
    );
    let mut frames = Vec::new();
    let mut parser = Parser::new(64);
    parser.feed(&buf, &mut frames).unwrap();
    parser.finish(&mut frames).unwrap();
    assert_eq!(
        frames,
        vec![
            Frame::new(Some("custom"), "{\"a\":1}"),
            Frame::new(Some("multiline"), "{\n  \"a\": 1\n}\n"),
        ]
    );
}

#[test]
fn a_payload_written_in_place_is_framed_like_bytes_and_a_failed_write_leaves_nothing() {
    let mut in_place = b"kept".to_vec();
    ferry_sse::encode_frame_with(Some("multi\nline"), &mut in_place, |buf| {
        buf.extend_from_slice(b"{\n  \"a\": 1\r\n}");
        Ok::<(), ()>(())
    })
    .unwrap();
    let mut bytes = b"kept".to_vec();
    encode_frame("multi\nline", b"{\n  \"a\": 1\r\n}", &mut bytes);
    assert_eq!(text(&in_place), text(&bytes));

    let mut data_only = Vec::new();
    ferry_sse::encode_frame_with(None, &mut data_only, |buf| {
        buf.extend_from_slice(b"[DONE]");
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(text(&data_only), "data: [DONE]\n\n");

    let mut failed = b"kept".to_vec();
    let result = ferry_sse::encode_frame_with(Some("ev"), &mut failed, |buf| {
        buf.extend_from_slice(b"{\"partial\":");
        Err("serialiser failed")
    });
    assert_eq!(result, Err("serialiser failed"));
    assert_eq!(text(&failed), "kept");
}
