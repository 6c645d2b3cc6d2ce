//! The one integration test binary of ferry-accounts.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the calling test loudly"
)]

mod suite;
