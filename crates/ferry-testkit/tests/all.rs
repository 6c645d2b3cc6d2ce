//! ferry-testkit's test binary (one per crate).

// `cfg(test)` marks the suite as test code for clippy (allow-unwrap-in-tests and friends).
#[cfg(test)]
mod suite;
