//! Fixture loading and the one helper that drives the streaming pipeline (parser, decoder,
//! converter), moved here from `ferry-sse` with the tests that use apicompat types.

use std::path::{Path, PathBuf};

use ferry_apicompat::{
    anthropic,
    convert::{
        FailureKind, ToolNames, UpstreamFailure,
        stream::{Options, StreamConverter},
    },
    responses,
};
use ferry_sse::{Frame, ParseError, Parser};

/// Line limit for the recorded upstream streams in `fixtures/upstream`.
pub(crate) const UPSTREAM_MAX: usize = 1 << 20;

pub(crate) fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .canonicalize()
        .unwrap()
}

/// One fixture: its path relative to `fixtures/` and its bytes.
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "sse") {
            out.push(path);
        }
    }
}

/// Every `*.sse` file under `fixtures/sse` and `fixtures/upstream`, in a stable order.
pub(crate) fn all_fixtures() -> Vec<Fixture> {
    let root = fixtures_root();
    let mut paths = Vec::new();
    collect(&root.join("sse"), &mut paths);
    collect(&root.join("upstream"), &mut paths);
    paths.sort();
    assert!(
        paths.len() >= 19,
        "fixtures missing under {}",
        root.display()
    );
    paths
        .into_iter()
        .map(|path| Fixture {
            name: path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            bytes: std::fs::read(&path).unwrap(),
        })
        .collect()
}

/// Upstream stream fixtures only (complete Responses streams).
pub(crate) fn upstream_fixtures() -> Vec<Fixture> {
    let fixtures: Vec<_> = all_fixtures()
        .into_iter()
        .filter(|f| f.name.starts_with("upstream"))
        .collect();
    assert!(!fixtures.is_empty(), "no fixtures/upstream/*.sse");
    fixtures
}

/// The upstream events of a whole stream, as the server would see them: frames decoded,
/// `[DONE]` and blank frames skipped, events that do not parse dropped.
pub(crate) fn events(bytes: &[u8]) -> Vec<responses::StreamEvent> {
    let outcome = parse_chunks(UPSTREAM_MAX, [bytes]);
    outcome
        .frames
        .iter()
        .filter_map(decode_event)
        .filter_map(Result::ok)
        .collect()
}

/// The whole server pipeline for a streaming client, without I/O: chunks → parser →
/// `decode_event` → `StreamConverter`, then `finish`. A known event that does not parse
/// is skipped, unless it is terminal, which fails the stream (style guide §4.7).
pub(crate) fn convert_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<anthropic::StreamEvent> {
    let mut parser = Parser::new(UPSTREAM_MAX);
    let mut converter =
        StreamConverter::new(Options::new("claude-sonnet-4-5", ToolNames::default()));
    let mut frames = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        // A parse error drops only the bad frame; the stream goes on.
        let _ = parser.feed(chunk, &mut frames);
        drive(&mut frames, &mut converter, &mut out);
    }
    let _ = parser.finish(&mut frames);
    drive(&mut frames, &mut converter, &mut out);
    converter.finish(&mut out);
    out
}

fn drive(
    frames: &mut Vec<Frame>,
    converter: &mut StreamConverter,
    out: &mut Vec<anthropic::StreamEvent>,
) {
    for frame in frames.drain(..) {
        match decode_event(&frame) {
            None => {}
            Some(Ok(event)) => converter.on_event(&event, out),
            Some(Err(e)) if e.is_terminal_event() => converter.fail(
                UpstreamFailure::new(FailureKind::InvalidStream, None, &e.to_string()),
                out,
            ),
            Some(Err(_)) => {}
        }
    }
}

/// What a parse produced: the frames, and the errors the calls returned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) frames: Vec<Frame>,
    pub(crate) errors: Vec<ParseError>,
}

/// Feeds `chunks` in order, then finishes ([`Parser::parse_chunks`]).
pub(crate) fn parse_chunks<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let (frames, errors) = Parser::parse_chunks(max, chunks);
    Outcome { frames, errors }
}

/// Splits `bytes` at the given sorted offsets.
pub(crate) fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// A frame decoded as the server decodes it: `responses::decode` on its event name and data.
pub(crate) fn decode_event(
    frame: &Frame,
) -> Option<Result<responses::StreamEvent, responses::DecodeError>> {
    responses::decode(frame.event.as_deref(), &frame.data)
}

/// A frame's payload with its event name as `type` when it has none.
pub(crate) fn payload_with_type(frame: &Frame) -> std::borrow::Cow<'_, str> {
    responses::payload_with_type(frame.event.as_deref(), &frame.data)
}
