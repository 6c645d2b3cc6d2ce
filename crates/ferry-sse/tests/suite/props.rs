//! Property tests with a fixed seed: random chunkings and random malformed input.

use super::support::{Fixture, all_fixtures, assert_same_as_reference, parse_chunks, split_at};

use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

/// Fixed seed, so CI runs the same cases every time.
const SEED: [u8; 32] = *b"ferry-sse proptest seed 2026-v1!";

/// Case count of a property: the environment variable `var` when set, else `default`.
pub(crate) fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::XorShift, &SEED[..16]),
    )
}

/// Up to 11 random cut points, placed into a buffer with [`place`]. Independent of the
/// buffer, so no per-case strategy has to be built.
pub(crate) fn cuts() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 0..12)
}

/// Sorted offsets into a buffer of `len` bytes.
pub(crate) fn place(cuts: &[u32], len: usize) -> Vec<usize> {
    let mut offsets: Vec<usize> = cuts.iter().map(|&c| c as usize % (len + 1)).collect();
    offsets.sort_unstable();
    offsets
}

/// Pieces malformed and well-formed streams are made of.
const TOKENS: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"event: ",
    b"id:",
    b"retry: ",
    b":",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\xEF\xBB\xBF",
    "\u{e9}\u{4e16}\u{1F600}".as_bytes(),
    b"{\"type\":\"response.output_text.delta\",\"delta\":\"x\"}",
    b"[DONE]",
    b"\xff",
    b"\xe4\xb8",
    b"\0",
    b"abc",
    b"12",
    b" ",
];

/// A random stream: each `u32` picks a token, or (for the values past the token list)
/// stands for one to three raw bytes of itself. Decoding plain integers keeps generation
/// cheap in a debug build.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u32>(), 0..40).prop_map(|words| {
        let mut bytes = Vec::new();
        for word in words {
            let [pick, a, b, c] = word.to_le_bytes();
            match TOKENS.get(usize::from(pick % 32)) {
                Some(token) => bytes.extend_from_slice(token),
                None => bytes.extend_from_slice(&[a, b, c][..usize::from(pick % 3) + 1]),
            }
        }
        bytes
    })
}

/// Random streams (valid, malformed and binary) with a small line limit, parsed in random
/// chunks: never a panic, and always the unsplit result.
#[test]
fn random_streams_in_random_chunks_parse_like_the_whole() {
    let strategy = (stream(), cuts(), 0usize..48);
    runner(cases("FERRY_SSE_PROPTEST_CASES", 100_000))
        .run(&strategy, |(bytes, cuts, max)| {
            let whole = parse_chunks(max, [&bytes[..]]);
            let bytewise = parse_chunks(max, bytes.chunks(1));
            let cuts = place(&cuts, bytes.len());
            let got = parse_chunks(max, split_at(&bytes, &cuts));
            assert_same_as_reference("random", &whole, &bytewise.errors, &got, &cuts);
            Ok(())
        })
        .unwrap();
}

/// Random chunkings of every fixture.
#[test]
fn fixtures_in_random_chunks_parse_like_the_whole() {
    let fixtures = all_fixtures();
    let references: Vec<_> = fixtures
        .iter()
        .map(|f| {
            (
                parse_chunks(f.max, [&f.bytes[..]]),
                parse_chunks(f.max, f.bytes.chunks(1)),
            )
        })
        .collect();
    let strategy = (0..fixtures.len(), cuts());
    runner(cases("FERRY_SSE_PROPTEST_CASES", 20_000))
        .run(&strategy, |(i, cuts)| {
            let Fixture { name, bytes, max } = &fixtures[i];
            let (whole, bytewise) = &references[i];
            let cuts = place(&cuts, bytes.len());
            let got = parse_chunks(*max, split_at(bytes, &cuts));
            assert_same_as_reference(name, whole, &bytewise.errors, &got, &cuts);
            Ok(())
        })
        .unwrap();
}
