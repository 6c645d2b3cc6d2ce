//! Shared test helpers for ferry's crates (a dev-dependency only).
//!
//! - [`fixture`] / [`fixture_json`] / [`claude_code_request`]: the workspace `fixtures/`
//!   directory;
//! - [`sse`] and the `ev_*` builders: OpenAI Responses SSE streams;
//! - [`upstream`]: a wiremock upstream that records every request and checks
//!   [`upstream::validate_request_invariants`] on each one;
//! - [`scripted`]: a raw HTTP upstream for what wiremock cannot do (pauses between chunks,
//!   a connection cut mid-body, an upstream that never finishes);
//! - [`redis`]: a real `redis-server` on a free port, for replicas sharing one session store.
//!
//! It may depend on `ferry-apicompat` and `ferry-sse` only (the tidy test checks this);
//! the server's `TestServer` lives in `ferry-server`'s own tests.
#![forbid(unsafe_code)]
#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test helpers fail the calling test loudly"
)]

mod fixtures;
pub mod redis;
pub mod scripted;
mod sse_builders;
pub mod upstream;

pub use crate::fixtures::{
    claude_code_request, fixture, fixture_json, fixtures_dir, workspace_root,
};
pub use crate::sse_builders::*;

/// A client key tests configure on the gateway; it must never reach the upstream or a log.
pub const TEST_CLIENT_KEY: &str = "sk-ferry-test-client-7f3a9c2e51b84d06";
/// An upstream API key tests configure on accounts; it may appear only in the upstream
/// `Authorization` header, never in a body, a log or a client-visible error.
pub const TEST_UPSTREAM_KEY: &str = "sk-proj-test-upstream-2b6d8e4f90a1c375";
