//! The Anthropic SSE encoder.

use ferry_apicompat::anthropic;
use serde::Serialize;

/// The keep-alive frame Anthropic clients expect, byte for byte.
pub const PING_FRAME: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

/// Appends one SSE frame, `event: NAME\ndata: JSON\n\n`, to `buf`.
///
/// `json` is written as is; compact JSON has no line breaks, and if it has some anyway
/// every line becomes its own `data:` line, so the frame still reads back as the same
/// payload. Line breaks in `event_name` are dropped, since they would end the field.
pub fn encode_frame(event_name: &str, json: &[u8], buf: &mut Vec<u8>) {
    buf.reserve(event_name.len() + json.len() + 16);
    buf.extend_from_slice(b"event: ");
    buf.extend(event_name.bytes().filter(|&b| b != b'\n' && b != b'\r'));
    buf.push(b'\n');
    write_data_lines(json, buf);
    buf.extend_from_slice(b"\n\n");
}

/// Writes `data: …` lines for `payload`, one per line of it, without the final line end.
fn write_data_lines(payload: &[u8], buf: &mut Vec<u8>) {
    let mut rest = payload;
    loop {
        buf.extend_from_slice(b"data: ");
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                buf.extend_from_slice(rest);
                return;
            }
            Some(end) => {
                buf.extend_from_slice(&rest[..end]);
                buf.push(b'\n');
                let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
                rest = &rest[end + 1 + usize::from(crlf)..];
            }
        }
    }
}

/// Appends one Anthropic stream event to `buf` as `event: NAME\ndata: JSON\n\n`, with the
/// JSON serialised straight into `buf` (no intermediate string).
///
/// `Ping` encodes to exactly [`PING_FRAME`]. Serialising the wire types cannot fail; if it
/// ever did, the partial frame is removed and an `api_error` event written instead, so the
/// client never sees a broken frame.
pub fn encode_event(event: &anthropic::StreamEvent, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(b"event: ");
    buf.extend(
        event
            .event_name()
            .bytes()
            .filter(|&b| b != b'\n' && b != b'\r'),
    );
    buf.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *buf, event).is_err() {
        buf.truncate(start);
        encode_error("api_error", "failed to encode a stream event", buf);
        return;
    }
    buf.extend_from_slice(b"\n\n");
}

/// Appends an Anthropic `error` event to `buf`:
/// `event: error\ndata: {"type":"error","error":{"type":KIND,"message":MESSAGE}}\n\n`.
///
/// `kind` is an Anthropic error type such as `api_error` or `overloaded_error`. The message
/// is written as given, so it must already be free of secrets.
pub fn encode_error(kind: &str, message: &str, buf: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
    }
    let body = Body {
        kind: "error",
        error: Inner { kind, message },
    };
    buf.extend_from_slice(b"event: error\ndata: ");
    // Serialising `&str` fields into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &body);
    buf.extend_from_slice(b"\n\n");
}
