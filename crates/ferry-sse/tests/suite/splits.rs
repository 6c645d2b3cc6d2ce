//! Every fixture split at every byte offset parses like the unsplit fixture.

use super::support::{Outcome, all_fixtures, assert_same_as_reference, parse_chunks, split_at};

/// The reference results of a fixture: unsplit, and byte at a time (the complete error list).
fn reference(bytes: &[u8], max: usize) -> (Outcome, Outcome) {
    let whole = parse_chunks(max, [bytes]);
    let bytewise = parse_chunks(max, bytes.chunks(1));
    (whole, bytewise)
}

/// Fixtures longer than this are cut into pieces of whole frames for the split-point test:
/// every byte offset is still a split point of some piece, but the cost stays linear in the
/// piece size instead of the fixture size.
/// Whole fixtures are covered by the random chunkings in `props`.
const PIECE: usize = 16 * 1024;

/// Cuts `bytes` after blank lines (`\n\n`) into pieces of at most `max` bytes where
/// possible (a single longer frame stays whole).
fn pieces(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_boundary = 0;
    for end in memchr_blank_lines(bytes) {
        if end - start > max && last_boundary > start {
            pieces.push(&bytes[start..last_boundary]);
            start = last_boundary;
        }
        last_boundary = end;
    }
    if bytes.len() - start > max && last_boundary > start {
        pieces.push(&bytes[start..last_boundary]);
        start = last_boundary;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Offsets just after each `\n\n`.
fn memchr_blank_lines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .map(|(i, _)| i + 2)
}

#[test]
fn pieces_cover_the_fixture() {
    let bytes = b"data: a\n\ndata: bb\n\ndata: ccc\n\nrest";
    let got = pieces(bytes, 12);
    assert_eq!(
        got,
        vec![
            &b"data: a\n\n"[..],
            b"data: bb\n\n",
            b"data: ccc\n\n",
            b"rest"
        ]
    );
    assert_eq!(got.concat(), bytes.to_vec());
}

#[test]
fn every_single_split_point() {
    for fixture in all_fixtures() {
        let (whole, bytewise) = reference(&fixture.bytes, fixture.max);
        assert_same_as_reference(
            &fixture.name,
            &whole,
            &bytewise.errors,
            &bytewise,
            &"bytewise",
        );
        for piece in pieces(&fixture.bytes, PIECE) {
            let (whole, bytewise) = reference(piece, fixture.max);
            for cut in 0..=piece.len() {
                let got = parse_chunks(fixture.max, split_at(piece, &[cut]));
                assert_same_as_reference(&fixture.name, &whole, &bytewise.errors, &got, &cut);
            }
        }
    }
}

/// Every pair of split points, for the fixtures small enough to make that cheap.
#[test]
fn every_pair_of_split_points_in_small_fixtures() {
    let mut checked = 0;
    for fixture in all_fixtures().into_iter().filter(|f| f.bytes.len() <= 200) {
        let (whole, bytewise) = reference(&fixture.bytes, fixture.max);
        let len = fixture.bytes.len();
        for a in 0..=len {
            for b in a..=len {
                let got = parse_chunks(fixture.max, split_at(&fixture.bytes, &[a, b]));
                assert_same_as_reference(&fixture.name, &whole, &bytewise.errors, &got, &(a, b));
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "only {checked} pairs checked");
}

/// Chunks of every fixed size, as a network with a steady MTU would deliver them.
#[test]
fn fixed_chunk_sizes() {
    for fixture in all_fixtures() {
        let (whole, bytewise) = reference(&fixture.bytes, fixture.max);
        for size in 1..=64.min(fixture.bytes.len().max(1)) {
            let got = parse_chunks(fixture.max, fixture.bytes.chunks(size));
            assert_same_as_reference(&fixture.name, &whole, &bytewise.errors, &got, &size);
        }
    }
}
