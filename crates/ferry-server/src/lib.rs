//! The ferry gateway: a hyper 1 server that answers Anthropic Messages clients (Claude
//! Code, the Anthropic SDKs) from OpenAI Responses upstreams.
//!
//! `ferry-server` owns everything that touches HTTP: routing, client authentication, the
//! upstream client (reqwest), streaming with keep-alive pings and timeouts, the one mapping
//! from failures to HTTP statuses ([`Error`]), usage records and metrics. The conversion
//! itself is pure and lives in `ferry-apicompat`; SSE framing in `ferry-sse`; session state
//! in `ferry-session`; the account pool in `ferry-accounts`. It prints nothing: the binary
//! owns stdout/stderr and the tracing subscriber.
//!
//! Brief overview:
//! - [`Config`] (built from [`RawConfig`] with [`Config::from_raw`], which reports every
//!   problem at once as [`ConfigProblem`]s; [`Config::for_tests`] for tests);
//! - [`bind`] → [`Server`] (`local_addr`, `run(shutdown)`), or [`serve`] in one call;
//! - [`Error`], whose `status()`, `anthropic_type()` and `kind()` are the only place that
//!   knows HTTP statuses.
#![forbid(unsafe_code)]

mod auth;
mod body;
pub mod config;
mod error;
mod messages;
mod metrics;
mod models;
mod routes;
mod server;
pub mod sim;
mod state;
mod tokens;

pub use crate::{
    config::{Config, ConfigProblem, RawConfig, simulated_account},
    error::Error,
    server::{Server, bind, serve},
};
