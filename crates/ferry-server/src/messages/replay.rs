//! `ferry replay`'s half of the pipeline: what ferry answers a client for a recorded
//! upstream answer, with the converters and options the server uses
//! ([`super::respond::stream_options`], [`super::respond::response_options`]), but no I/O:
//! the bytes come from a capture (docs/captures.md).

use ferry_apicompat::convert::{self, Accumulator, ToolNames, stream::StreamConverter};
use ferry_apicompat::{anthropic, responses};

use super::respond::{response_options, stream_options};
use crate::error::Error;

/// The client's answer, as ferry writes it, for the upstream answer `raw` to request `req`
/// (request id `request_id`): Anthropic SSE text for a streaming client (from the upstream's
/// SSE), else the JSON message (from the upstream's JSON body when `upstream_json`, else
/// its stream accumulated). Keep-alive pings, which depend on timing, are never written.
///
/// # Errors
///
/// An answer the server would not have sent as a 200: a failed or unreadable upstream
/// answer (the server retried, failed over or answered an error status then).
pub fn replay_answer(
    req: &anthropic::MessagesRequest,
    request_id: &str,
    upstream_json: bool,
    raw: &[u8],
    max_line_bytes: usize,
) -> Result<Vec<u8>, Error> {
    let tool_names = ToolNames::from_request(req);
    let client_stream = req.stream.unwrap_or(false);
    if upstream_json && !client_stream {
        let resp = serde_json::from_slice::<responses::Response>(raw).map_err(|e| {
            Error::UpstreamProtocol(format!("the answer is not a response object: {e}"))
        })?;
        return message_json(&resp, req, &tool_names, request_id);
    }
    let events = decode_events(raw, max_line_bytes)?;
    if client_stream {
        let mut conv = StreamConverter::new(stream_options(req, &tool_names, request_id));
        let mut evs = Vec::new();
        for ev in &events {
            conv.on_event(ev, &mut evs);
            if conv.is_finished() {
                break;
            }
        }
        if !conv.is_finished() {
            conv.finish(&mut evs);
        }
        let mut out = Vec::new();
        for ev in &evs {
            anthropic::encode_event(ev, &mut out);
        }
        return Ok(out);
    }
    let mut acc = Accumulator::new();
    for ev in events {
        acc.on_event(&ev);
        if ev.is_terminal() {
            return match ev {
                responses::StreamEvent::Error(e) => Err(Error::UpstreamProtocol(format!(
                    "the upstream answered an error event: {}",
                    e.body().message
                ))),
                other => match other.into_response() {
                    Some(resp) => message_json(&acc.supplement(resp), req, &tool_names, request_id),
                    None => Err(Error::UpstreamProtocol(
                        "terminal event without a response".to_owned(),
                    )),
                },
            };
        }
    }
    Err(Error::UpstreamProtocol(
        "upstream stream ended without a terminal response event".to_owned(),
    ))
}

/// The upstream's SSE bytes as events, decoded as the server decodes them (`[DONE]` ends
/// the stream; unknown kinds come through as `Unknown`, malformed non-terminal ones are
/// skipped).
fn decode_events(raw: &[u8], max_line_bytes: usize) -> Result<Vec<responses::StreamEvent>, Error> {
    let mut parser = ferry_sse::Parser::new(max_line_bytes);
    let mut frames = Vec::new();
    let invalid = |e: ferry_sse::ParseError| {
        Error::UpstreamProtocol(format!("upstream sent an invalid stream: {e}"))
    };
    parser.feed(raw, &mut frames).map_err(invalid)?;
    parser.finish(&mut frames).map_err(invalid)?;
    let mut events = Vec::with_capacity(frames.len());
    for frame in &frames {
        if frame.is_done() {
            break;
        }
        match responses::decode(frame.event.as_deref(), &frame.data) {
            None => {}
            Some(Ok(ev)) => events.push(ev),
            Some(Err(e)) if e.is_terminal_event() => {
                return Err(Error::UpstreamProtocol(format!(
                    "upstream sent an invalid terminal event: {e}"
                )));
            }
            Some(Err(_)) => {}
        }
    }
    Ok(events)
}

fn message_json(
    resp: &responses::Response,
    req: &anthropic::MessagesRequest,
    tool_names: &ToolNames,
    request_id: &str,
) -> Result<Vec<u8>, Error> {
    let opts = response_options(req, tool_names, request_id);
    let message = convert::response::convert(resp, &opts).map_err(|f| Error::UpstreamFailed {
        kind: f.error_kind(),
        message: f.message.clone(),
    })?;
    serde_json::to_vec(&message.value)
        .map_err(|e| Error::Internal(format!("cannot encode the message: {e}")))
}
