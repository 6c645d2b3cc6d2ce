//! The one integration test binary of ferry-session.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers and behaviour functions shared by several tests fail loudly"
)]

mod suite;
