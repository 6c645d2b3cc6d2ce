//! The fixed-seed proptest runner of the pipeline property tests (the same seed as
//! `ferry-sse`'s `props.rs`, so the same cases run).

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
