mod encode;
mod malformed;
mod parser;
mod props;
mod splits;
#[expect(
    clippy::unwrap_used,
    reason = "test helpers: a missing or unreadable fixture must fail the test"
)]
mod support;
