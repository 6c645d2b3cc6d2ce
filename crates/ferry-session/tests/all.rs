//! The one integration test binary of ferry-session.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers and behaviour functions shared by several tests fail loudly"
)]

mod suite;
