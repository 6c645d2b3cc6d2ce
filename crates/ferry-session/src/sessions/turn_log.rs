//! The turn log: each session's recent turns (account, tokens, cached ratio, and why a
//! miss missed), and each client key's recent sessions, for the admin API and the
//! `ferry_cache_miss_total` reasons that need the previous turn.
//!
//! Two records per session and client key, both living the session TTL:
//!
//! - `turns:<session id>`: the last [`MAX_TURNS`] turns, and the prefix fingerprint of the
//!   latest turn of each agent (at most [`MAX_HEADS`]; Claude Code's sub-agents share the
//!   session but run their own conversations, so each turn is compared with its own agent's
//!   previous turn);
//! - `recent:<client id>`: the client key's [`MAX_RECENT`] most recently used sessions.
//!
//! Both are read, changed and written back after the response (one `MGET`, two `SET`s), off
//! the request's path. Two turns of one session finishing at the same instant may lose one
//! entry of the log (last writer wins); the miss counters are unaffected.

use serde::{Deserialize, Serialize};

use super::ResolvedKey;
use super::Sessions;
use super::records::{
    RecentEntry, RecentRecord, SessionLogRecord, TurnHead, VERSION, decode, recent_key, tuple_id,
    turns_key,
};
use crate::explain::{MissExplanation, MissReason, PreviousTurn, explain_miss};
use crate::fingerprint::PrefixFingerprint;

/// Turns kept per session.
pub const MAX_TURNS: usize = 20;
/// Sessions kept per client key in its recent-sessions index.
pub const MAX_RECENT: usize = 50;
/// Agents per session whose latest fingerprint is kept.
const MAX_HEADS: usize = 3;
/// A session log larger than this drops the fingerprints of other agents (the store refuses
/// values over 64 KiB by default).
const MAX_LOG_BYTES: usize = 56 << 10;

/// What the server knows about a finished turn, for [`Sessions::record_turn`].
#[derive(Debug, Clone, Copy)]
pub struct TurnFacts<'a> {
    /// The client key (its configured name; empty for an open gateway).
    pub client_key_id: &'a str,
    /// The request's cache key and digest chain.
    pub resolved: &'a ResolvedKey,
    /// Claude Code's agent id (empty: the main agent).
    pub agent: &'a str,
    /// The account that served the turn.
    pub account: &'a str,
    /// The upstream model.
    pub model: &'a str,
    /// The request's prefix fingerprint ([`PrefixFingerprint::of`]).
    pub fingerprint: &'a PrefixFingerprint,
    /// When the turn finished, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The whole prompt in tokens (uncached input plus cache reads and writes).
    pub prompt_tokens: u64,
    /// Prompt tokens read from the cache.
    pub cached_tokens: u64,
    /// Whether the request continued an upstream response (`previous_response_id`).
    pub continued: bool,
    /// The upstream response id, when continuation is on for the session.
    pub response_id: Option<&'a str>,
    /// The [`crate::classify_miss`] reason when the turn was a miss ([`crate::is_miss`]).
    pub miss: Option<MissReason>,
}

/// One turn of a session, as the turn log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TurnEntry {
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The account that served it.
    pub account: String,
    /// Claude Code's agent id (empty: the main agent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// The upstream model.
    #[serde(default)]
    pub model: String,
    /// Whether it continued an upstream response (`previous_response_id` was sent).
    pub continued: bool,
    /// The upstream response id (only when continuation is on for the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// The whole prompt in tokens.
    pub input_tokens: u64,
    /// Prompt tokens read from the cache.
    pub cached_tokens: u64,
    /// `cached_tokens / input_tokens` (0 for an empty prompt).
    pub cached_ratio: f64,
    /// Seconds since the previous turn of the same agent, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
    /// Why the turn missed the cache, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miss: Option<MissExplanation>,
}

/// One session in the recent-sessions list ([`Sessions::recent_sessions`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionSummary {
    /// The session id (32 hex digits; [`Sessions::session_turns`] takes it).
    pub id: String,
    /// The client key (its configured name; empty for an open gateway).
    pub client: String,
    /// The prompt cache key (as ferry resolved it, before the per-client isolation of
    /// [`crate::keys::upstream_cache_key`]).
    pub cache_key: String,
    /// Where the key came from (`explicit`, `metadata`, `cache_control`, `digest`).
    pub key_source: String,
    /// When the session's first turn finished (ms since the Unix epoch), also once it has
    /// left the log.
    pub started_at_ms: u64,
    /// When the latest turn finished.
    pub last_at_ms: u64,
    /// Turns served in the session's lifetime (the log keeps the last [`MAX_TURNS`]).
    pub turns: u64,
    /// Misses among the logged turns.
    pub misses: usize,
    /// The account of the latest turn.
    pub last_account: String,
    /// The cached ratio of each logged turn, oldest first.
    pub cached_ratios: Vec<f64>,
    /// The upstream response ids of the latest continuation chain, oldest first: the
    /// latest turn's response and those it continued from, turn by turn (empty when
    /// continuation is off).
    pub continuation_chain: Vec<String>,
}

/// One session with its logged turns ([`Sessions::session_turns`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// The logged turns, oldest first.
    pub turn_log: Vec<TurnEntry>,
}

impl Sessions {
    /// Records a finished turn in its session's log and the client's recent sessions, and
    /// explains its miss ([`explain_miss`], comparing with the previous turn of the same
    /// agent; for `key_changed`, with the conversation's last turn under its old key).
    ///
    /// Returns the explanation (`None` when the turn was no miss), also when the store
    /// failed: the caller counts it in `ferry_cache_miss_total`. Call it after the response
    /// (it reads and writes the store).
    pub async fn record_turn(&self, t: &TurnFacts<'_>) -> Option<MissExplanation> {
        let key = t.resolved.key.trim();
        let id = session_id(t.client_key_id, key);
        let old_key = t
            .resolved
            .chain_match
            .as_ref()
            .map(|m| m.key.trim())
            .filter(|k| *k != key);
        let mut keys = vec![turns_key(&id), recent_key(t.client_key_id)];
        if let Some(old) = old_key {
            keys.push(turns_key(&session_id(t.client_key_id, old)));
        }
        let values = match self.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("record_turn", &e);
                Vec::new()
            }
        };
        let read = |i: usize| values.get(i).and_then(|v| v.as_deref());
        let mut log: SessionLogRecord = read(0).and_then(decode).unwrap_or_else(|| {
            SessionLogRecord::new(t.client_key_id, key, t.resolved.source.as_str(), t.at_ms)
        });
        let old_log: Option<SessionLogRecord> = read(2).and_then(decode);
        let own = log.heads.iter().find(|h| h.agent == t.agent);
        let previous = match t.miss {
            Some(MissReason::KeyChanged) => old_log
                .as_ref()
                .and_then(|l| l.heads.iter().find(|h| h.agent == t.agent))
                .or(own),
            _ => own,
        };
        let idle_secs = own.map(|h| t.at_ms.saturating_sub(h.at_ms) / 1000);
        let miss = t.miss.map(|base| {
            explain_miss(
                base,
                t.resolved.source,
                t.account,
                t.fingerprint,
                previous.map(|h| PreviousTurn {
                    fingerprint: &h.fingerprint,
                    account: &h.account,
                    idle_secs: t.at_ms.saturating_sub(h.at_ms) / 1000,
                }),
            )
        });
        let cached_ratio = if t.prompt_tokens == 0 {
            0.0
        } else {
            t.cached_tokens as f64 / t.prompt_tokens as f64
        };
        log.push(
            TurnEntry {
                at_ms: t.at_ms,
                account: t.account.to_owned(),
                agent: t.agent.to_owned(),
                model: t.model.to_owned(),
                continued: t.continued,
                response_id: t.response_id.map(str::to_owned),
                input_tokens: t.prompt_tokens,
                cached_tokens: t.cached_tokens,
                cached_ratio,
                idle_secs,
                miss: miss.clone(),
            },
            TurnHead {
                agent: t.agent.to_owned(),
                at_ms: t.at_ms,
                account: t.account.to_owned(),
                fingerprint: t.fingerprint.clone(),
            },
        );
        let mut recent: RecentRecord = read(1).and_then(decode).unwrap_or_default();
        recent.touch(&id, t.at_ms);
        self.write_log(&keys[0], &mut log).await;
        self.write("record_turn", &keys[1], &recent).await;
        miss
    }

    async fn write_log(&self, key: &str, log: &mut SessionLogRecord) {
        let Ok(mut bytes) = serde_json::to_vec(&*log) else {
            return;
        };
        while bytes.len() > MAX_LOG_BYTES && log.heads.len() > 1 {
            log.heads.truncate(log.heads.len() - 1);
            let Ok(b) = serde_json::to_vec(&*log) else {
                return;
            };
            bytes = b;
        }
        if let Err(e) = self.store.set(key, &bytes, self.config.ttl).await {
            self.failed("record_turn", &e);
        }
    }

    /// The most recently used sessions of these client keys (their configured names; `""`
    /// for an open gateway), newest first, at most `limit`. Sessions whose log expired are
    /// left out.
    pub async fn recent_sessions(
        &self,
        client_key_ids: &[&str],
        limit: usize,
    ) -> Vec<SessionSummary> {
        let keys: Vec<String> = client_key_ids.iter().map(|c| recent_key(c)).collect();
        let indexes = match self.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("recent_sessions", &e);
                return Vec::new();
            }
        };
        let mut entries: Vec<RecentEntry> = indexes
            .iter()
            .filter_map(|v| decode::<RecentRecord>(v.as_deref()?))
            .flat_map(|r| r.sessions)
            .collect();
        entries.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.id.cmp(&b.id)));
        entries.dedup_by(|a, b| a.id == b.id);
        entries.truncate(limit);
        let keys: Vec<String> = entries.iter().map(|e| turns_key(&e.id)).collect();
        let logs = match self.store.get_many(&keys).await {
            Ok(v) => v,
            Err(e) => {
                self.failed("recent_sessions", &e);
                return Vec::new();
            }
        };
        entries
            .iter()
            .zip(logs)
            .filter_map(|(e, v)| {
                let log: SessionLogRecord = decode(v.as_deref()?)?;
                Some(log.summary(&e.id))
            })
            .collect()
    }

    /// One session's summary and logged turns, by its id ([`SessionSummary::id`]); `None`
    /// for an unknown or expired session, or an id that is not 32 lowercase hex digits.
    pub async fn session_turns(&self, id: &str) -> Option<SessionDetail> {
        if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let log: SessionLogRecord = self.read("session_turns", &turns_key(id)).await?;
        Some(SessionDetail {
            summary: log.summary(id),
            turn_log: log.turns,
        })
    }
}

/// The id of a session: a client key and a cache key (32 hex digits).
pub fn session_id(client_key_id: &str, cache_key: &str) -> String {
    tuple_id(&[client_key_id, cache_key.trim()])
}

impl SessionLogRecord {
    fn new(client: &str, cache_key: &str, source: &str, at_ms: u64) -> Self {
        Self {
            v: VERSION,
            client: client.to_owned(),
            cache_key: cache_key.to_owned(),
            source: source.to_owned(),
            started_at_ms: at_ms,
            count: 0,
            turns: Vec::new(),
            heads: Vec::new(),
        }
    }

    fn push(&mut self, turn: TurnEntry, head: TurnHead) {
        self.count += 1;
        self.turns.push(turn);
        if self.turns.len() > MAX_TURNS {
            let extra = self.turns.len() - MAX_TURNS;
            self.turns.drain(..extra);
        }
        self.heads.retain(|h| h.agent != head.agent);
        self.heads.insert(0, head);
        self.heads.truncate(MAX_HEADS);
    }

    fn summary(&self, id: &str) -> SessionSummary {
        let last = self.turns.last();
        SessionSummary {
            id: id.to_owned(),
            client: self.client.clone(),
            cache_key: self.cache_key.clone(),
            key_source: self.source.clone(),
            started_at_ms: self.started_at_ms,
            last_at_ms: last.map_or(self.started_at_ms, |t| t.at_ms),
            turns: self.count,
            misses: self.turns.iter().filter(|t| t.miss.is_some()).count(),
            last_account: last.map(|t| t.account.clone()).unwrap_or_default(),
            cached_ratios: self.turns.iter().map(|t| t.cached_ratio).collect(),
            continuation_chain: continuation_chain(&self.turns),
        }
    }
}

/// The response ids of the latest continuation chain, oldest first: from the latest turn
/// with a response id back through the turns of its agent that it continued from.
fn continuation_chain(turns: &[TurnEntry]) -> Vec<String> {
    let Some(pos) = turns.iter().rposition(|t| t.response_id.is_some()) else {
        return Vec::new();
    };
    let agent = &turns[pos].agent;
    let mut chain = Vec::new();
    let mut continued = true;
    for t in turns[..=pos].iter().rev().filter(|t| &t.agent == agent) {
        if !continued {
            break;
        }
        let Some(id) = &t.response_id else { break };
        chain.push(id.clone());
        continued = t.continued;
    }
    chain.reverse();
    chain
}

impl RecentRecord {
    fn touch(&mut self, id: &str, at_ms: u64) {
        self.v = VERSION;
        self.sessions.retain(|s| s.id != id);
        self.sessions.insert(
            0,
            RecentEntry {
                id: id.to_owned(),
                at_ms,
            },
        );
        self.sessions.truncate(MAX_RECENT);
    }
}
