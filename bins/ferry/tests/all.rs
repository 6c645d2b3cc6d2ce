//! The `ferry` binary's tests: one test binary (style guide §7), suites in `suite/`.

// `cfg(test)` marks the suite as test code for clippy (allow-unwrap-in-tests and friends).
#[cfg(test)]
mod suite;
