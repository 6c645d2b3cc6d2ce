//! Fixture loading and the one helper that drives the parser.

use std::path::{Path, PathBuf};

use ferry_sse::{Frame, ParseError, Parser};

/// Line limit for the parser-only fixtures in `fixtures/sse` (small, so the malformed ones
/// can go over it).
pub(crate) const SSE_FIXTURE_MAX: usize = 256;
/// Line limit for the recorded upstream streams in `fixtures/upstream`.
pub(crate) const UPSTREAM_MAX: usize = 1 << 20;

pub(crate) fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .canonicalize()
        .unwrap()
}

/// One fixture: its path relative to `fixtures/`, its bytes and the limit to parse it with.
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) max: usize,
}

pub(crate) fn max_for(path: &Path) -> usize {
    if path.starts_with(fixtures_root().join("sse")) {
        SSE_FIXTURE_MAX
    } else {
        UPSTREAM_MAX
    }
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
            max: max_for(&path),
        })
        .collect()
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

/// Asserts that a chunked parse gives what the unsplit parse gives.
///
/// Frames must be equal. Each call reports only its first error, so the chunked errors
/// must be a subsequence of the complete list (a byte-at-a-time parse, where each call can
/// meet at most one error), and there must be some exactly when there are some.
pub(crate) fn assert_same_as_reference(
    name: &str,
    whole: &Outcome,
    all_errors: &[ParseError],
    got: &Outcome,
    detail: &dyn std::fmt::Debug,
) {
    pretty_assertions::assert_eq!(
        got.frames,
        whole.frames,
        "{name}: frames differ for {detail:?}"
    );
    assert_eq!(
        got.errors.is_empty(),
        all_errors.is_empty(),
        "{name}: errors {:?} vs {all_errors:?} for {detail:?}",
        got.errors
    );
    let mut remaining = all_errors.iter();
    for e in &got.errors {
        assert!(
            remaining.any(|r| r == e),
            "{name}: unexpected error {e:?} (all: {all_errors:?}) for {detail:?}"
        );
    }
}

/// Renders frames and errors as readable text for snapshots.
pub(crate) fn render(outcome: &Outcome) -> String {
    let mut text = String::new();
    for frame in &outcome.frames {
        text.push_str(&format!(
            "frame event={:?} id={:?} retry={:?}\n",
            frame.event, frame.id, frame.retry
        ));
        for line in frame.data.split('\n') {
            text.push_str(&format!("  | {line}\n"));
        }
    }
    for error in &outcome.errors {
        text.push_str(&format!("error {error:?}: {error}\n"));
    }
    text
}
