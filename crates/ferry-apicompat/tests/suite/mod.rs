mod accumulate;
mod decode;
mod encode;
mod event_parse;
mod payload;
mod pipeline;
mod props;
mod recorded;
mod request;
mod response;
mod stop_sequences;
mod stream;
mod stream_props;
#[expect(
    clippy::unwrap_used,
    reason = "test helpers: a missing or unreadable fixture must fail the test"
)]
mod support;
mod upstream;
