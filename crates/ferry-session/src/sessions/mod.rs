//! Session state over a [`Store`]: which key, which account, which upstream response.
//!
//! - this file: [`Sessions`] (the store, its settings, error counting and the versioned
//!   reads and writes every binding goes through), [`SessionConfig`] and [`SessionRef`];
//! - `records`: the stored values, their version and their store keys;
//! - `cache_key`: the prompt cache key of a request and the digest-chain bindings;
//! - `sticky`: the account a session is bound to;
//! - `previous_response`: the upstream response a session continues from, and when
//!   continuation is off;
//! - `turn_state`: the Codex `x-codex-turn-state` of a session;
//! - `turn_log`: each session's recent turns and miss explanations, and each client key's
//!   recent sessions (the admin API's sessions view).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::records::{Versioned, decode, tuple_id};
use crate::StoreError;
use crate::store::Store;

mod cache_key;
mod previous_response;
mod records;
mod sticky;
mod turn_log;
mod turn_state;

pub use self::{
    cache_key::{ChainMatch, ResolvedKey},
    previous_response::ResponseBinding,
    sticky::StickyBinding,
    turn_log::{
        MAX_RECENT, MAX_TURNS, SessionDetail, SessionSummary, TurnEntry, TurnFacts, session_id,
    },
};

/// Settings of [`Sessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long a binding lives after its last write (default 1 hour): response ids,
    /// turn states, continuation flags, digest chains and sticky accounts.
    pub ttl: Duration,
    /// Whether the server adds the todo guard ([`crate::insert_todo_guard`]) to GPT-5
    /// requests that use Claude Code's task tools (default on). ferry does not read it
    /// itself; it is here so the default is decided in one place.
    pub todo_guard: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            todo_guard: true,
        }
    }
}

/// Names one session's continuation state: the account that served it, the client key,
/// the prompt cache key and the agent. Upstream response ids and turn states only make
/// sense on the account that produced them, so they are never shared between accounts.
///
/// Claude Code's subagents (its `Agent` tool) share the parent's session id and cache key
/// but run their own conversation: each agent (`x-claude-code-agent-id`; empty for the
/// main agent) keeps its own response id and turn state, so a subagent's turn never
/// replaces the parent's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef<'a> {
    /// The account (its configured name).
    pub account: &'a str,
    /// The client key (its configured name; empty for an open gateway).
    pub client_key_id: &'a str,
    /// The prompt cache key.
    pub cache_key: &'a str,
    /// The agent within the session (empty: the main agent).
    pub agent: &'a str,
}

impl<'a> SessionRef<'a> {
    /// A session reference for the main agent.
    pub fn new(account: &'a str, client_key_id: &'a str, cache_key: &'a str) -> Self {
        Self {
            account,
            client_key_id,
            cache_key,
            agent: "",
        }
    }

    /// The same session, for agent `agent` (trimmed; empty is the main agent).
    #[must_use]
    pub fn with_agent(self, agent: &'a str) -> Self {
        Self {
            agent: agent.trim(),
            ..self
        }
    }

    fn id(&self) -> String {
        if self.agent.is_empty() {
            tuple_id(&[self.account, self.client_key_id, self.cache_key.trim()])
        } else {
            tuple_id(&[
                self.account,
                self.client_key_id,
                self.cache_key.trim(),
                self.agent,
            ])
        }
    }
}

/// Session state over a [`Store`]: prompt-cache key resolution with digest-chain reuse,
/// upstream response ids (continuation), Codex turn states, and sticky accounts.
///
/// Every value is a small versioned JSON document with the configured time to live.
/// No method fails: a store error (Redis down, a value too large) is logged, counted in
/// [`Sessions::store_errors`], and the request goes on as if no state were stored, so
/// an outage of the store costs cache hits, never requests.
pub struct Sessions {
    store: Arc<dyn Store>,
    config: SessionConfig,
    errors: AtomicU64,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("store_errors", &self.store_errors())
            .finish()
    }
}

impl Sessions {
    /// Session state in `store`.
    pub fn new(store: Arc<dyn Store>, config: SessionConfig) -> Self {
        Self {
            store,
            config,
            errors: AtomicU64::new(0),
        }
    }

    /// The store (the account pool shares it for concurrency slots).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Store errors seen so far (each was logged and treated as "no state").
    pub fn store_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn failed(&self, op: &'static str, e: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(op, kind = e.kind(), error = %e, backend = self.store.backend(), "session store error");
    }

    async fn read<T: DeserializeOwned + Versioned>(
        &self,
        op: &'static str,
        key: &str,
    ) -> Option<T> {
        match self.store.get(key).await {
            Ok(bytes) => bytes.and_then(|b| decode(&b)),
            Err(e) => {
                self.failed(op, &e);
                None
            }
        }
    }

    async fn write<T: Serialize>(&self, op: &'static str, key: &str, value: &T) -> bool {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return false;
        };
        match self.store.set(key, &bytes, self.config.ttl).await {
            Ok(()) => true,
            Err(e) => {
                self.failed(op, &e);
                false
            }
        }
    }

    async fn remove(&self, op: &'static str, key: &str) {
        if let Err(e) = self.store.delete(key).await {
            self.failed(op, &e);
        }
    }
}
