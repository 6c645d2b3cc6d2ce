//! The whole upstream half of a streamed request, as the gateway runs it:
//! `ferry_sse::Parser` → `responses::StreamEvent::from_json` → `StreamConverter`, always
//! ending with `finish()`.
//!
//! Properties: nothing panics, and the converter's output satisfies the stream invariant
//! whatever the upstream sent: it is a lone `error`, or it starts with `message_start` and
//! ends with `message_stop` or `error`; nothing follows the terminal event; content blocks
//! have dense indexes, one open at a time, deltas and stops only for the open block, none
//! left open at `message_stop`, which follows exactly one `message_delta`; every event
//! serialises to JSON.
//!
//! Input layout: byte 0 picks the chunk size (1..=256 bytes), the rest is the upstream
//! body. A frame whose payload does not parse is skipped unless it is a terminal kind, which
//! fails the stream (as the server does); a `[DONE]` frame ends the stream.
#![no_main]

use ferry_apicompat::anthropic::StreamEvent as Out;
use ferry_apicompat::convert::stream::{Options, StreamConverter};
use ferry_apicompat::convert::{FailureKind, ToolNames, UpstreamFailure};
use ferry_apicompat::responses;
use ferry_sse::Parser;
use libfuzzer_sys::fuzz_target;

const MODEL: &str = "claude-opus-4-8";

fuzz_target!(|data: &[u8]| {
    let [a, body @ ..] = data else {
        return;
    };
    let chunk = 1 + usize::from(*a);
    let mut parser = Parser::new(64 * 1024);
    let mut conv = StreamConverter::new(Options::new(MODEL, ToolNames::default()));
    let mut frames = Vec::new();
    let mut out = Vec::new();
    let mut done = false;
    let mut pieces = body.chunks(chunk);
    'read: loop {
        let last = match pieces.next() {
            Some(piece) => {
                let _ = parser.feed(piece, &mut frames);
                false
            }
            None => {
                let _ = parser.finish(&mut frames);
                true
            }
        };
        for frame in frames.drain(..) {
            if frame.is_done() {
                done = true;
                break;
            }
            let payload =
                ferry_apicompat::responses::payload_with_type(frame.event.as_deref(), &frame.data);
            if payload.trim().is_empty() {
                continue;
            }
            match responses::StreamEvent::from_json(&payload) {
                Ok(ev) => conv.on_event(&ev, &mut out),
                Err(e) => {
                    let kind = event_type(&payload)
                        .or(frame.event.clone())
                        .unwrap_or_default();
                    if responses::StreamEvent::is_terminal_kind(&kind) {
                        conv.fail(
                            UpstreamFailure::new(FailureKind::InvalidStream, None, &e.to_string()),
                            &mut out,
                        );
                        done = true;
                        break;
                    }
                }
            }
            if conv.is_finished() {
                done = true;
                break;
            }
        }
        if done || last {
            break 'read;
        }
    }
    conv.finish(&mut out);
    assert!(conv.is_finished(), "not finished after finish()");
    if let Err(e) = check(&out) {
        panic!("stream invariant broken: {e}\n{out:#?}");
    }
    for ev in &out {
        serde_json::to_vec(ev).expect("every event serialises");
    }
});

fn event_type(payload: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    v.get("type")?.as_str().map(str::to_owned)
}

fn check(events: &[Out]) -> Result<(), String> {
    let Some(first) = events.first() else {
        return Err("no event at all".into());
    };
    match first {
        Out::Error { .. } if events.len() == 1 => return Ok(()),
        Out::MessageStart { .. } => {}
        other => return Err(format!("first event is {}", other.event_name())),
    }
    let mut next_index = 0u32;
    let mut open: Option<u32> = None;
    let mut message_deltas = 0;
    for (n, ev) in events.iter().enumerate().skip(1) {
        let last = n + 1 == events.len();
        match ev {
            Out::MessageStart { .. } => return Err(format!("#{n}: second message_start")),
            Out::ContentBlockStart { index, .. } => {
                if message_deltas > 0 {
                    return Err(format!("#{n}: block after message_delta"));
                }
                if let Some(i) = open {
                    return Err(format!("#{n}: start {index} while {i} is open"));
                }
                if *index != next_index {
                    return Err(format!("#{n}: start {index}, expected {next_index}"));
                }
                open = Some(*index);
                next_index += 1;
            }
            Out::ContentBlockDelta { index, .. } => {
                if open != Some(*index) {
                    return Err(format!("#{n}: delta for {index}, open {open:?}"));
                }
            }
            Out::ContentBlockStop { index } => {
                if open != Some(*index) {
                    return Err(format!("#{n}: stop for {index}, open {open:?}"));
                }
                open = None;
            }
            Out::MessageDelta { .. } => {
                if open.is_some() {
                    return Err(format!("#{n}: message_delta with block {open:?} open"));
                }
                message_deltas += 1;
            }
            Out::MessageStop => {
                if !last {
                    return Err(format!("#{n}: events after message_stop"));
                }
                if message_deltas != 1 {
                    return Err(format!(
                        "#{n}: {message_deltas} message_delta before message_stop"
                    ));
                }
            }
            Out::Error { .. } => {
                if !last {
                    return Err(format!("#{n}: events after error"));
                }
            }
            Out::Ping => {}
            other => return Err(format!("#{n}: unexpected {}", other.event_name())),
        }
    }
    match events.last() {
        Some(Out::MessageStop | Out::Error { .. }) => Ok(()),
        Some(other) => Err(format!("last event is {}", other.event_name())),
        None => Err("no event at all".into()),
    }
}
