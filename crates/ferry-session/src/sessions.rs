//! Session state over a [`Store`]: which key, which account, which upstream response.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_apicompat::anthropic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::StoreError;
use crate::keys::{self, ClientHeaders, DigestChain, KeySource};
use crate::store::{Store, hex};

/// The version written into every stored value (`"v":1`). A value with another version,
/// or one that does not decode, reads as absent.
const VERSION: u32 = 1;

/// How many "previous response not found" answers within one session's lifetime turn
/// continuation off for it.
const NOT_FOUND_STRIKES: u32 = 2;

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

/// The prompt cache key of a request, with what ferry needs to keep it stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKey {
    /// The key: sent as `prompt_cache_key`, and the seed of the upstream session id
    /// ([`keys::session_uuid`]).
    pub key: String,
    /// Where it came from.
    pub source: KeySource,
    /// The request's digest chain (bound to the key after a success).
    pub chain: DigestChain,
    /// The earlier conversation this one extends, if a binding was found.
    pub chain_match: Option<ChainMatch>,
}

impl ResolvedKey {
    /// Whether the key goes upstream for this (mapped) upstream model: an explicit key
    /// always does, a derived one only for models where [`keys::should_auto_inject`]
    /// holds.
    pub fn applies_to(&self, upstream_model: &str) -> bool {
        self.source == KeySource::Explicit || keys::should_auto_inject(upstream_model)
    }
}

/// The longest prefix of a request's digest chain that has a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMatch {
    /// The key that conversation ran under.
    pub key: String,
    /// Parts in the matched prefix.
    pub len: usize,
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

/// The account a session is bound to, and where its conversation stood then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyBinding {
    /// The account (its configured name).
    pub account: String,
    /// Length of the digest chain of the last request served.
    pub chain_len: usize,
    /// [`DigestChain::prefix_id`] of that chain.
    pub chain_id: String,
}

/// The upstream response a session can continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBinding {
    /// The upstream response id.
    pub response_id: String,
    /// Length of the digest chain of the request that got the response.
    pub chain_len: usize,
    /// [`DigestChain::prefix_id`] of that chain.
    pub chain_id: String,
}

#[derive(Serialize, Deserialize)]
struct ResponseRecord {
    v: u32,
    id: String,
    len: usize,
    chain: String,
}

#[derive(Serialize, Deserialize)]
struct TurnRecord {
    v: u32,
    state: String,
}

#[derive(Serialize, Deserialize, Default)]
struct ContinuationRecord {
    v: u32,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    not_found: u32,
}

#[derive(Serialize, Deserialize)]
struct StickyRecord {
    v: u32,
    account: String,
    len: usize,
    chain: String,
}

#[derive(Serialize, Deserialize)]
struct ChainRecord {
    v: u32,
    key: String,
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

    // ---- prompt cache key -------------------------------------------------------------

    /// The prompt cache key of a request, in the reference order: an explicit client key,
    /// the Claude Code session, the `cache_control` anchors ([`keys::identity_key`]), and
    /// last the digest chain: the key of the longest earlier conversation (of this client
    /// key) that this one extends, or a fresh key.
    ///
    /// The chain lookup runs for every source (one `MGET` on Redis), so that a
    /// conversation that moves to another key is seen ([`ResolvedKey::chain_match`]).
    /// Does not look at the model: see [`ResolvedKey::applies_to`]. `None` only for a
    /// request with neither an identity nor any content.
    pub async fn resolve_cache_key(
        &self,
        req: &anthropic::MessagesRequest,
        headers: &ClientHeaders<'_>,
        client_key_id: &str,
    ) -> Option<ResolvedKey> {
        let chain = DigestChain::from_request(req);
        let chain_match = self.lookup_chain(client_key_id, &chain).await;
        let (key, source) = match keys::identity_key(req, headers) {
            Some(found) => found,
            None => match &chain_match {
                Some(m) => (m.key.clone(), KeySource::Digest),
                None => (chain.fresh_key()?, KeySource::Digest),
            },
        };
        Some(ResolvedKey {
            key,
            source,
            chain,
            chain_match,
        })
    }

    async fn lookup_chain(&self, client_key_id: &str, chain: &DigestChain) -> Option<ChainMatch> {
        if chain.is_empty() {
            return None;
        }
        let ids: Vec<String> = (1..=chain.len())
            .rev()
            .filter_map(|len| chain.prefix_id(len))
            .map(|id| chain_key(client_key_id, &id))
            .collect();
        let values = match self.store.get_many(&ids).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("lookup_chain", &e);
                return None;
            }
        };
        values
            .iter()
            .zip((1..=chain.len()).rev())
            .find_map(|(value, len)| {
                let record: ChainRecord = decode(value.as_deref()?)?;
                (!record.key.trim().is_empty()).then_some(ChainMatch {
                    key: record.key,
                    len,
                })
            })
    }

    /// Records that the request's conversation ran under its key, so a later turn that
    /// extends it finds the key again. The binding moves forward: the entry of the
    /// shorter chain this request matched is removed.
    pub async fn bind_chain(&self, client_key_id: &str, resolved: &ResolvedKey) -> bool {
        let Some(id) = resolved.chain.id() else {
            return false;
        };
        let record = ChainRecord {
            v: VERSION,
            key: resolved.key.clone(),
        };
        let stored = self
            .write("bind_chain", &chain_key(client_key_id, &id), &record)
            .await;
        if let Some(m) = &resolved.chain_match
            && m.len != resolved.chain.len()
            && let Some(old) = resolved.chain.prefix_id(m.len)
        {
            self.remove("bind_chain", &chain_key(client_key_id, &old))
                .await;
        }
        stored
    }

    // ---- sticky account ---------------------------------------------------------------

    /// The account the session was last served by, if the binding is alive.
    pub async fn sticky_account(
        &self,
        client_key_id: &str,
        cache_key: &str,
    ) -> Option<StickyBinding> {
        let record: StickyRecord = self
            .read("sticky_account", &sticky_key(client_key_id, cache_key))
            .await?;
        Some(StickyBinding {
            account: record.account,
            chain_len: record.len,
            chain_id: record.chain,
        })
    }

    /// Binds the session to the account that served it (refreshing the time to live),
    /// remembering where the conversation stood.
    pub async fn bind_sticky_account(
        &self,
        client_key_id: &str,
        cache_key: &str,
        account: &str,
        chain: &DigestChain,
    ) -> bool {
        let record = StickyRecord {
            v: VERSION,
            account: account.to_owned(),
            len: chain.len(),
            chain: chain.id().unwrap_or_default(),
        };
        self.write(
            "bind_sticky_account",
            &sticky_key(client_key_id, cache_key),
            &record,
        )
        .await
    }

    /// Removes the session's sticky binding if it points at `account` (after a failover
    /// away from it). Returns whether a binding was removed.
    pub async fn clear_sticky_account_if(
        &self,
        client_key_id: &str,
        cache_key: &str,
        account: &str,
    ) -> bool {
        let key = sticky_key(client_key_id, cache_key);
        match self
            .read::<StickyRecord>("clear_sticky_account", &key)
            .await
        {
            Some(record) if record.account == account => {
                self.remove("clear_sticky_account", &key).await;
                true
            }
            _ => false,
        }
    }

    // ---- continuation (previous_response_id) ------------------------------------------

    /// The upstream response this request may continue from, as `previous_response_id`.
    ///
    /// `None` when continuation is disabled for the session, when no response is bound,
    /// or when the request does not continue the conversation that got the bound
    /// response ([`DigestChain::continues`]): that happens when two conversations share a
    /// key (Claude Code's sub-agents and side requests share its session), after the
    /// client compacted or edited its history, or when another request of the session
    /// ran in between. Sending the id then would splice the new turn onto the wrong
    /// conversation.
    pub async fn previous_response_id(
        &self,
        session: &SessionRef<'_>,
        chain: &DigestChain,
    ) -> Option<String> {
        let id = session.id();
        let keys = [continuation_key(&id), response_key(&id)];
        let values = match self.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("previous_response_id", &e);
                return None;
            }
        };
        let cont: Option<ContinuationRecord> = values.first()?.as_deref().and_then(decode);
        if cont.is_some_and(|c| c.disabled) {
            return None;
        }
        let record: ResponseRecord = values.get(1)?.as_deref().and_then(decode)?;
        if record.id.trim().is_empty() {
            self.remove("previous_response_id", &keys[1]).await;
            return None;
        }
        chain
            .continues(record.len, &record.chain)
            .then_some(record.id)
    }

    /// The stored response binding as it is (no continuation check); for diagnostics.
    pub async fn response_binding(&self, session: &SessionRef<'_>) -> Option<ResponseBinding> {
        let record: ResponseRecord = self
            .read("response_binding", &response_key(&session.id()))
            .await?;
        Some(ResponseBinding {
            response_id: record.id,
            chain_len: record.len,
            chain_id: record.chain,
        })
    }

    /// Binds the upstream response id of a successful turn, with the digest chain of the
    /// request that got it. When continuation is disabled for the session, nothing is
    /// bound (the disabled flag's time to live is refreshed instead). Returns whether an
    /// id was bound.
    pub async fn bind_response_id(
        &self,
        session: &SessionRef<'_>,
        response_id: &str,
        chain: &DigestChain,
    ) -> bool {
        let id = session.id();
        let response_id = response_id.trim();
        let cont_key = continuation_key(&id);
        if let Some(cont) = self
            .read::<ContinuationRecord>("bind_response_id", &cont_key)
            .await
            && cont.disabled
        {
            self.write("bind_response_id", &cont_key, &cont).await;
            self.remove("bind_response_id", &response_key(&id)).await;
            return false;
        }
        if response_id.is_empty() {
            self.remove("bind_response_id", &response_key(&id)).await;
            return false;
        }
        let record = ResponseRecord {
            v: VERSION,
            id: response_id.to_owned(),
            len: chain.len(),
            chain: chain.id().unwrap_or_default(),
        };
        self.write("bind_response_id", &response_key(&id), &record)
            .await
    }

    /// Forgets the bound response id after the upstream said "previous response not
    /// found" (the caller then replays the full history once). A second such answer
    /// within the session's lifetime also disables continuation for it: an upstream that
    /// keeps losing responses (for example one that does not store them) would otherwise
    /// cost two calls per turn. Returns whether continuation is now disabled.
    pub async fn forget_response_id(&self, session: &SessionRef<'_>) -> bool {
        let id = session.id();
        self.remove("forget_response_id", &response_key(&id)).await;
        let cont_key = continuation_key(&id);
        let mut cont = self
            .read::<ContinuationRecord>("forget_response_id", &cont_key)
            .await
            .unwrap_or_default();
        cont.v = VERSION;
        cont.not_found = cont.not_found.saturating_add(1);
        cont.disabled |= cont.not_found >= NOT_FOUND_STRIKES;
        self.write("forget_response_id", &cont_key, &cont).await;
        cont.disabled
    }

    /// Disables continuation for the session (the upstream does not support
    /// `previous_response_id`), and forgets its response id. The turn state is kept.
    pub async fn disable_continuation(&self, session: &SessionRef<'_>) {
        let id = session.id();
        let cont_key = continuation_key(&id);
        let mut cont = self
            .read::<ContinuationRecord>("disable_continuation", &cont_key)
            .await
            .unwrap_or_default();
        cont.v = VERSION;
        cont.disabled = true;
        self.write("disable_continuation", &cont_key, &cont).await;
        self.remove("disable_continuation", &response_key(&id))
            .await;
    }

    /// Whether continuation is disabled for the session (until its flag expires).
    pub async fn is_continuation_disabled(&self, session: &SessionRef<'_>) -> bool {
        self.read::<ContinuationRecord>(
            "is_continuation_disabled",
            &continuation_key(&session.id()),
        )
        .await
        .is_some_and(|c| c.disabled)
    }

    // ---- turn state (x-codex-turn-state) ----------------------------------------------

    /// The `x-codex-turn-state` to send for the session (OAuth accounts), if one is bound.
    pub async fn turn_state(&self, session: &SessionRef<'_>) -> Option<String> {
        let key = turn_key(&session.id());
        let record: TurnRecord = self.read("turn_state", &key).await?;
        if record.state.trim().is_empty() {
            self.remove("turn_state", &key).await;
            return None;
        }
        Some(record.state)
    }

    /// Binds the `x-codex-turn-state` the upstream returned. A blank state removes the
    /// binding; a state over the store's value limit is not stored (and removes the old
    /// one). Returns whether the state was stored.
    pub async fn bind_turn_state(&self, session: &SessionRef<'_>, state: &str) -> bool {
        let key = turn_key(&session.id());
        if state.trim().is_empty() {
            self.remove("bind_turn_state", &key).await;
            return false;
        }
        self.write(
            "bind_turn_state",
            &key,
            &TurnRecord {
                v: VERSION,
                state: state.to_owned(),
            },
        )
        .await
    }
}

trait Versioned {
    fn version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(impl Versioned for $t { fn version(&self) -> u32 { self.v } })*};
}
versioned!(
    ResponseRecord,
    TurnRecord,
    ContinuationRecord,
    StickyRecord,
    ChainRecord
);

fn decode<T: DeserializeOwned + Versioned>(bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) if v.version() == VERSION => Some(v),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable session value ignored");
            None
        }
    }
}

/// A fixed-size id of a tuple of strings (length-prefixed, so no separator is ambiguous).
fn tuple_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize()[..16])
}

fn response_key(id: &str) -> String {
    format!("resp:{id}")
}

fn turn_key(id: &str) -> String {
    format!("turn:{id}")
}

fn continuation_key(id: &str) -> String {
    format!("cont:{id}")
}

fn sticky_key(client_key_id: &str, cache_key: &str) -> String {
    format!("sticky:{}", tuple_id(&[client_key_id, cache_key.trim()]))
}

fn chain_key(client_key_id: &str, prefix_id: &str) -> String {
    format!("chain:{}", tuple_id(&[client_key_id, prefix_id]))
}
