//! ferry-server's test binary (one per crate): the gateway against wiremock and scripted
//! upstreams on 127.0.0.1.

// `cfg(test)` marks the suite as test code for clippy (allow-unwrap-in-tests and friends).
#[cfg(test)]
mod suite;
