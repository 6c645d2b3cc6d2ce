//! Session state for ferry: prompt-cache keys, upstream session ids, continuation
//! (`previous_response_id`), Codex turn states and sticky accounts, behind a small
//! key-value store that lives in memory or in Redis.
//!
//! Upstream prompt caches only pay off when every turn of a conversation reaches the same
//! account with the same `prompt_cache_key` and an append-only prompt. This crate decides
//! the key of each request, remembers what each conversation ran under, and tells the
//! server when a request may be sent as a short continuation. It deliberately does not
//! speak HTTP, pick accounts or record metrics: it gives the server the facts (a key and
//! its [`KeySource`], a [`MissReason`]) and the server acts. A failing store never fails
//! a request; it only costs cache hits ([`Sessions`]).
//!
//! # Brief overview
//!
//! - [`Store`] — the key-value store trait (`Arc<dyn Store>`): small values with a time
//!   to live, plus shared concurrency slots for the account pool (each holder named by
//!   its [`SlotToken`]). Backends:
//!   [`MemoryStore`] (default; bounded by entries and bytes) and `RedisStore` (feature
//!   `redis`), opened with [`open`].
//! - [`Sessions`] — the facade the server calls: [`Sessions::resolve_cache_key`], the
//!   sticky-account, response-id, turn-state and digest-chain bindings.
//! - [`keys`] — pure key derivation: [`keys::identity_key`] (explicit → Claude Code
//!   session → `cache_control` anchors), [`DigestChain`], [`keys::session_uuid`],
//!   [`keys::should_auto_inject`].
//! - [`family`] — model families by rule ([`ModelFamily::of`]: GPT generation, variants,
//!   provider prefix), behind every per-family decision.
//! - Continuation helpers — [`trim_to_latest_turn`], [`classify_continuation_error`],
//!   [`insert_todo_guard`].
//! - Cache economy — [`classify_miss`] gives the [`MissReason`] of a cache miss;
//!   [`PrefixFingerprint`] digests a request's prefix (tools, system prompt, messages,
//!   `cache_control` markers) and [`explain_miss`] compares it with the session's previous
//!   turn, which [`Sessions::record_turn`] keeps in a bounded turn log
//!   ([`Sessions::recent_sessions`], [`Sessions::session_turns`]; docs/cache.md).
//! - [`Threads`] — message threads (`message-threads-2026-08-12`): the conversation held
//!   between turns under the id of its last reply, per client key, chunked, bounded by
//!   [`ThreadConfig::max_thread_bytes`], living the session TTL.
//!
//! # Decisions
//!
//! - **Full replay, no 12-message window.** Without a continuation, the whole history
//!   goes upstream (the reference's newest behaviour). A sliding window moves the start of
//!   the prompt every turn, so the cached prefix stops at the system prompt and tools,
//!   and it cuts tool results and follow-up questions out of the conversation. Full
//!   replay costs input tokens that are, turn after turn, read from the cache.
//! - **Continuation is guarded by the digest chain.** A bound response id is used only
//!   when the request is exactly the next turn of the conversation that got it
//!   ([`DigestChain::continues`]); Claude Code's sub-agents share one session id, and
//!   continuing the wrong conversation would splice turns together.
//! - **Continuation is opt-in and stores responses.** The upstream continues only from a
//!   response it stored, so a request that may be continued later is sent with
//!   `store: true` ([`continuation_enabled`]); without continuation ferry sends
//!   `store: false` and the full history. Continuation saves bandwidth and keeps the
//!   reasoning at the provider, but the provider then keeps the conversation: a privacy
//!   choice, so the server's accounts enable it explicitly (`continuation = true`).
//!   Prompt caching does not need it: `prompt_cache_key` and an append-only prompt keep
//!   the cache warm either way.
//! - **Keys do not depend on the account.** The digest chain is namespaced by the client
//!   key only, so the key is known before an account is picked (sticky routing uses it).
//!   Response ids and turn states are per account ([`SessionRef`]).
//! - **SHA-256 everywhere** (in place of the reference's xxHash64 in the session-id
//!   isolation step), so no extra hashing crate is needed.
//! - **The todo guard is on by default** ([`SessionConfig::todo_guard`]) but only for
//!   requests that declare Claude Code's task tools ([`wants_todo_guard`]).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use ferry_apicompat::anthropic;
//! use ferry_session::{keys, KeySource, MemoryStore, SessionConfig, Sessions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sessions = Sessions::new(Arc::new(MemoryStore::default()), SessionConfig::default());
//! let turn1 = anthropic::parse_request(br#"{"model":"claude-opus-4-8","max_tokens":64,
//!     "messages":[{"role":"user","content":"hi"}]}"#).unwrap();
//! let headers = keys::ClientHeaders::default();
//!
//! // No client key, no Claude Code session, no cache_control: the digest chain decides.
//! let first = sessions.resolve_cache_key(&turn1, &headers, "alice").await.unwrap();
//! assert_eq!(first.source, KeySource::Digest);
//! assert!(first.applies_to("gpt-5.1-codex"));
//! sessions.bind_chain("alice", &first).await; // after the upstream answered
//!
//! // The next turn extends the conversation and gets the same key.
//! let turn2 = anthropic::parse_request(br#"{"model":"claude-opus-4-8","max_tokens":64,
//!     "messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},
//!     {"role":"user","content":"how are you?"}]}"#).unwrap();
//! let second = sessions.resolve_cache_key(&turn2, &headers, "alice").await.unwrap();
//! assert_eq!(second.key, first.key);
//! // Isolated per client key: another key never shares the upstream session.
//! assert_ne!(keys::session_uuid("alice", &first.key), keys::session_uuid("bob", &first.key));
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | yes | `RedisStore` and `StoreConfig::Redis` (the `redis` crate, async, with a connection manager) |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod continuation;
mod economy;
mod error;
mod explain;
pub mod family;
mod fingerprint;
pub mod keys;
mod sessions;
mod store;
mod threads;

#[cfg(feature = "redis")]
pub use crate::store::{BreakerStore, RedisConfig, RedisStore};
pub use crate::{
    continuation::{
        ContinuationError, TODO_GUARD_MARKER, TODO_GUARD_TEXT, classify_continuation_error,
        classify_continuation_reply, continuation_enabled, insert_todo_guard,
        is_previous_response_not_found, is_previous_response_unsupported, trim_to_latest_turn,
        wants_todo_guard,
    },
    economy::{MIN_CACHEABLE_TOKENS, MissFacts, classify_miss, is_miss},
    error::StoreError,
    explain::{IDLE_EVICTION_SECS, MissExplanation, MissReason, PreviousTurn, explain_miss},
    family::{GptModel, ModelFamily},
    fingerprint::{MAX_FINGERPRINT_MESSAGES, PrefixChange, PrefixFingerprint, compare},
    keys::{DigestChain, KeySource},
    sessions::{
        ChainMatch, MAX_RECENT, MAX_TURNS, ResolvedKey, ResponseBinding, SessionConfig,
        SessionDetail, SessionRef, SessionSummary, Sessions, StickyBinding, TurnEntry, TurnFacts,
        session_id,
    },
    store::{
        BoxFuture, BreakerStats, MemoryLimits, MemoryStore, SlotToken, Store, StoreConfig, open,
    },
    threads::{Thread, ThreadConfig, ThreadError, Threads, TurnBase, UpstreamTurn},
};
