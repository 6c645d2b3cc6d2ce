//! The SSE encoder: frames as `event: NAME\ndata: PAYLOAD\n\n` bytes.
//!
//! [`encode_frame_with`] is the one place a frame is written; [`encode_frame`] is it for a
//! payload that is already bytes.

use std::convert::Infallible;

/// Appends one SSE frame, `event: NAME\ndata: JSON\n\n`, to `buf`.
///
/// `json` is written as is; compact JSON has no line breaks, and if it has some anyway
/// every line becomes its own `data:` line, so the frame still reads back as the same
/// payload. Line breaks in `event_name` are dropped, since they would end the field.
pub fn encode_frame(event_name: &str, json: &[u8], buf: &mut Vec<u8>) {
    buf.reserve(event_name.len() + json.len() + 16);
    let Ok(()) = encode_frame_with(Some(event_name), buf, |buf| {
        buf.extend_from_slice(json);
        Ok::<(), Infallible>(())
    });
}

/// Appends one SSE frame to `buf` whose payload `write` appends in place (for example
/// `serde_json::to_writer`, so that no intermediate string is built): `event: NAME\n`
/// when `event_name` is given, then `data: PAYLOAD\n\n`.
///
/// Line breaks in `event_name` are dropped, since they would end the field. A payload with
/// line breaks gets one `data:` line per line, so the frame still reads back as the same
/// payload. If `write` fails, `buf` is left as it was and the error is returned.
pub fn encode_frame_with<E>(
    event_name: Option<&str>,
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = buf.len();
    if let Some(name) = event_name {
        buf.extend_from_slice(b"event: ");
        buf.extend(name.bytes().filter(|&b| b != b'\n' && b != b'\r'));
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"data: ");
    let payload_start = buf.len();
    if let Err(e) = write(buf) {
        buf.truncate(start);
        return Err(e);
    }
    // Compact JSON never has a line break, so this scan normally finds nothing.
    if memchr::memchr2(b'\n', b'\r', &buf[payload_start..]).is_some() {
        let payload = buf.split_off(payload_start);
        buf.truncate(payload_start - b"data: ".len());
        write_data_lines(&payload, buf);
    }
    buf.extend_from_slice(b"\n\n");
    Ok(())
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
