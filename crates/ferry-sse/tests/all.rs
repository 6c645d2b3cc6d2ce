//! The ferry-sse integration tests (one binary; see `suite/`).

mod suite;
