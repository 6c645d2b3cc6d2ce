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
//! # Brief overview
//!
//! - [`Config`]: built from [`RawConfig`] (the TOML file, key for key) with
//!   [`Config::from_raw`], which reports every problem at once as [`ConfigProblem`]s;
//!   [`Config::for_tests`] gives a loopback config with one `simulated` account.
//! - [`bind`] → [`Server`] (`local_addr`, then `run(shutdown)`), or [`serve`] in one call.
//!   Shutdown is graceful: in-flight answers get `server.shutdown_grace`, then open streams
//!   end with an `error` event.
//! - [`Error`]: `status()`, `anthropic_type()` and `kind()` are the only mapping from a
//!   failure to the client's HTTP answer in the workspace.
//! - [`convert_for`] and [`upstream_request`] → [`Upstream`]: the pure plan of the request
//!   sent to one account (conversion for its model route, then the session's
//!   [`SessionFacts`] and the account's request shape), serialised once by
//!   [`Upstream::body`]; `ferry convert request` prints the same bytes.
//! - [`Reloader`]: swaps the running config; [`Reloader::reload_from_source`] reads it again
//!   from the [`ConfigSource`] `ferry serve` sets, the one reload behind `SIGHUP` and the
//!   admin API's `POST {admin.path}/api/reload` ([`ReloadReport`]). The admin API and
//!   dashboard exist only with `[[admin.keys]]` (`docs/admin.md`).
//! - simulated accounts ([`simulated_account`]) are API-key accounts on
//!   [`SIMULATED_BASE_URL`]: `bind` starts the simulated upstream (`ferry-sim`) on a loopback
//!   port and points them at it.
//!
//! # The request path
//!
//! `POST …/v1/messages` → client key check → body (size-limited) → parse → session key
//! (`ferry-session`) → per attempt: account lease and model route (`ferry-accounts`) →
//! convert (`ferry-apicompat`) → continuation, todo guard, `prompt_cache_key` → the
//! account's request shape (the OAuth Codex transform) and service-tier policy, one
//! serialisation → credential and headers → `POST {base_url}/responses`,
//! streamed (SSE frames and events, `ferry-sse`) → the client's stream; for a non-streaming
//! client one JSON response object (or, on OAuth, the accumulated stream) → one JSON
//! message. Failover happens only before the client got a byte; headers go out with the
//! first content. One usage record per request (`tracing` target `ferry::usage`) and the
//! metrics of `GET /metrics`.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let server = ferry_server::bind(ferry_server::Config::for_tests()).await?;
//! let addr = server.local_addr();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = tokio::spawn(server.run(async { let _ = stopped.await; }));
//!
//! // A raw HTTP/1.1 request, so the example needs no client library.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! let body = r#"{"model":"claude-opus-4-8","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
//! let req = format!("POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
//! conn.write_all(req.as_bytes()).await?;
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! assert!(answer.contains("request-id: req_"));
//! assert!(answer.contains(r#""type":"message""#));
//!
//! stop.send(()).unwrap();
//! running.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod admin;
mod auth;
mod body;
mod capture;
mod civil;
pub mod config;
pub mod cost;
mod embedded_sim;
mod error;
mod http_util;
mod messages;
mod metrics;
mod models;
mod prices;
mod redact;
mod routes;
mod server;
mod session_view;
mod state;
mod tokens;
mod upstream;

pub use crate::{
    capture::{
        CAPTURE_VERSION, CaptureFile, CapturedAttempt, CapturedFacts, CapturedRequest,
        CapturedResponse,
    },
    config::{Config, ConfigProblem, RawConfig, SIMULATED_BASE_URL, simulated_account},
    error::{Error, StartError, ThreadErrorCode},
    messages::plan::upstream::{
        Conversion, SessionFacts, Upstream, asks_fast_mode, convert_for, upstream_request,
    },
    messages::replay::replay_answer,
    server::{Reloader, Server, bind, serve},
    state::{ConfigSource, ReloadReport},
};
