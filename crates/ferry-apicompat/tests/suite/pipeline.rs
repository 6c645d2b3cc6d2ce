//! Parser + decoder + `StreamConverter` over random chunkings of the upstream fixtures.

use ferry_apicompat::anthropic;
use proptest::prelude::*;

use super::props::{cases, cuts, place, runner};
use super::support::{convert_chunks, split_at, upstream_fixtures};

fn ends_in_terminal(events: &[anthropic::StreamEvent]) -> bool {
    events
        .last()
        .is_some_and(anthropic::StreamEvent::is_terminal)
        && events.iter().filter(|e| e.is_terminal()).count() == 1
}

#[test]
fn every_upstream_fixture_ends_in_message_stop_or_error() {
    for fixture in upstream_fixtures() {
        let events = convert_chunks([&fixture.bytes[..]]);
        assert!(ends_in_terminal(&events), "{}: {events:?}", fixture.name);
    }
}

/// Any chunking of any fixture gives the events of the unsplit stream, ending in exactly
/// one `message_stop` or `error`. Cases: `FERRY_SSE_FIXTURE_PIPELINE_CASES`, default 2,000
/// (each case converts a whole recorded stream).
#[test]
fn random_chunkings_convert_like_the_whole_stream() {
    let fixtures = upstream_fixtures();
    let expected: Vec<_> = fixtures
        .iter()
        .map(|f| convert_chunks([&f.bytes[..]]))
        .collect();
    let strategy = (0..fixtures.len(), cuts());
    runner(cases("FERRY_SSE_FIXTURE_PIPELINE_CASES", 2_000))
        .run(&strategy, |(i, cuts)| {
            let cuts = place(&cuts, fixtures[i].bytes.len());
            let got = convert_chunks(split_at(&fixtures[i].bytes, &cuts));
            prop_assert!(ends_in_terminal(&got), "{}", fixtures[i].name);
            prop_assert_eq!(&got, &expected[i], "{} cut at {:?}", fixtures[i].name, cuts);
            Ok(())
        })
        .unwrap();
}

/// Every frame of every upstream fixture, as SSE text ending in its blank line.
fn frame_pool() -> Vec<Vec<u8>> {
    let mut pool = Vec::new();
    for fixture in upstream_fixtures() {
        let mut frame = Vec::new();
        for line in fixture.bytes.split_inclusive(|&b| b == b'\n') {
            frame.extend_from_slice(line);
            if line == b"\n" {
                let done = std::mem::take(&mut frame);
                if done.iter().any(|b| !b.is_ascii_whitespace()) {
                    pool.push(done);
                }
            }
        }
        if frame.iter().any(|b| !b.is_ascii_whitespace()) {
            pool.push(frame);
        }
    }
    pool
}

/// One piece of a random upstream stream: a frame from the pool, possibly damaged.
#[derive(Debug, Clone)]
enum Piece {
    Frame(usize),
    /// The frame cut after `at` bytes (a truncated line or a missing blank line).
    Truncated(usize, usize),
    /// The frame with byte `at` replaced by `byte`.
    Flipped(usize, usize, u8),
}

fn piece(pool_len: usize) -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (0..pool_len).prop_map(Piece::Frame),
        1 => (0..pool_len, any::<usize>()).prop_map(|(i, at)| Piece::Truncated(i, at)),
        1 => (0..pool_len, any::<usize>(), any::<u8>()).prop_map(|(i, at, b)| Piece::Flipped(i, at, b)),
    ]
}

fn assemble(pool: &[Vec<u8>], pieces: &[Piece]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for piece in pieces {
        match *piece {
            Piece::Frame(i) => bytes.extend_from_slice(&pool[i]),
            Piece::Truncated(i, at) => bytes.extend_from_slice(&pool[i][..at % pool[i].len()]),
            Piece::Flipped(i, at, byte) => {
                let mut frame = pool[i].clone();
                let at = at % frame.len();
                frame[at] = byte;
                bytes.extend_from_slice(&frame);
            }
        }
    }
    bytes
}

/// Random upstream streams: frames of all fixtures in any order, duplicated, cut short or
/// with a byte changed, fed in random chunks. The pipeline never panics and always ends in
/// exactly one `message_stop` or `error`. (That chunking does not change the frames is the
/// parser properties' job; converting each case once keeps 100,000 cases near 10 s in a
/// debug build.) Cases: `FERRY_SSE_PIPELINE_CASES`, default 100,000.
#[test]
fn random_upstream_streams_always_end_in_one_terminal_event() {
    let pool = frame_pool();
    let strategy = (prop::collection::vec(piece(pool.len()), 0..10), cuts());
    runner(cases("FERRY_SSE_PIPELINE_CASES", 100_000))
        .run(&strategy, |(pieces, cuts)| {
            let bytes = assemble(&pool, &pieces);
            let got = convert_chunks(split_at(&bytes, &place(&cuts, bytes.len())));
            prop_assert!(ends_in_terminal(&got), "{got:?}");
            Ok(())
        })
        .unwrap();
}
