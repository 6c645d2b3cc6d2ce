//! Message threads (`message-threads-2026-08-12`): the conversation ferry holds for a
//! client between turns, so a turn can send only its new messages.
//!
//! A thread is the conversation up to one assistant reply: the system prompt, the tools
//! and every message so far, reply included. It is stored under the id of that reply (the
//! `previous_message_id` the client continues from), namespaced by the client key, so a
//! thread is only ever found by the key that created it.
//!
//! # Layout in the store
//!
//! The conversation is one byte string of JSON lines: a header `{"system":…,"tools":…}`,
//! then one [`anthropic::InputMessage`] per line. It is cut into chunks of at most
//! [`ThreadConfig::chunk_bytes`] (below the store's per-value limit). A head record under
//! the reply id lists the chunk keys, the byte length and the upstream response.
//!
//! A turn that continues a thread appends its lines: the full chunks of the previous head
//! are reused (rewritten with the same bytes, which renews their time to live), the
//! partial last chunk and the new ones are written under keys of the new reply. A chunk is
//! never changed once written, so two turns that continue the same reply (a retry, a fork)
//! each get a correct thread of their own. A thread lives [`ThreadConfig::ttl`] after its
//! last turn and is bounded by [`ThreadConfig::max_thread_bytes`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferry_apicompat::anthropic;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::StoreError;
use crate::store::{Store, hex};

/// The version written into every head record.
const VERSION: u32 = 1;

/// Settings of [`Threads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadConfig {
    /// How long a thread lives after its last turn (the session TTL).
    pub ttl: Duration,
    /// Largest conversation (system, tools and messages, as stored JSON) a thread may
    /// hold (default 8 MiB).
    pub max_thread_bytes: usize,
    /// Largest chunk written to the store (default 48 KiB, under the stores' 64 KiB
    /// per-value limit).
    pub chunk_bytes: usize,
}

impl Default for ThreadConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_thread_bytes: 8 << 20,
            chunk_bytes: 48 << 10,
        }
    }
}

/// Why a thread could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThreadError {
    /// No thread is stored under this reply id for this client key (never created,
    /// expired, evicted, or created by another key).
    #[error("no thread is stored for this previous_message_id")]
    NotFound,
    /// The conversation would be larger than [`ThreadConfig::max_thread_bytes`].
    #[error("the thread would hold {size} bytes, more than the {limit} bytes a thread may hold")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ThreadError {
    /// A short, low-cardinality name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::TooLarge { .. } => "too_large",
            Self::Store(_) => "store_error",
        }
    }
}

/// The upstream response of a thread's last turn: continuing it with
/// `previous_response_id` only makes sense on the same account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTurn {
    /// The account (its configured name).
    pub account: String,
    /// The upstream response id.
    pub response_id: String,
}

/// A stored thread, as read for a turn that continues it.
#[derive(Clone, PartialEq)]
pub struct Thread {
    /// The system prompt it was created with.
    pub system: Option<anthropic::System>,
    /// The tools it was created with.
    pub tools: Option<Vec<anthropic::Tool>>,
    /// Every message so far, the last reply included.
    pub messages: Vec<anthropic::InputMessage>,
    /// The upstream response of the last turn, if continuation was on.
    pub upstream: Option<UpstreamTurn>,
    /// The stored bytes and the chunk keys they came from.
    raw: Vec<u8>,
    chunks: Vec<String>,
    chunk: usize,
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("messages", &self.messages.len())
            .field("tools", &self.tools.as_ref().map(Vec::len))
            .field("bytes", &self.raw.len())
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Thread {
    /// The stored size in bytes.
    pub fn bytes(&self) -> usize {
        self.raw.len()
    }
}

/// What a turn adds to a thread.
#[derive(Debug)]
pub enum TurnBase<'a> {
    /// A new thread with this system prompt and these tools.
    Create {
        /// The system prompt.
        system: Option<&'a anthropic::System>,
        /// The tools.
        tools: Option<&'a [anthropic::Tool]>,
    },
    /// A turn after this stored thread.
    Continue(&'a Thread),
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = ""))]
struct Header<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<std::borrow::Cow<'a, anthropic::System>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tools: Option<std::borrow::Cow<'a, [anthropic::Tool]>>,
}

#[derive(Serialize, Deserialize)]
struct Head {
    v: u32,
    /// Byte length of the conversation.
    len: usize,
    /// Chunk keys, in order.
    chunks: Vec<String>,
    /// The size of each chunk but the last.
    chunk: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<UpstreamTurn>,
}

/// The threads of every client, over a [`Store`].
pub struct Threads {
    store: Arc<dyn Store>,
    config: ThreadConfig,
}

impl fmt::Debug for Threads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Threads")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl Threads {
    /// Threads in `store`.
    pub fn new(store: Arc<dyn Store>, config: ThreadConfig) -> Self {
        Self { store, config }
    }

    /// The settings.
    pub fn config(&self) -> &ThreadConfig {
        &self.config
    }

    /// The thread whose last reply is `message_id`, as the client key `client_id` stored
    /// it. [`ThreadError::NotFound`] when there is none for this key, or when a part of it
    /// expired.
    pub async fn load(&self, client_id: &str, message_id: &str) -> Result<Thread, ThreadError> {
        let head_key = head_key(client_id, message_id);
        let Some(bytes) = self.store.get(&head_key).await? else {
            return Err(ThreadError::NotFound);
        };
        let head: Head = match serde_json::from_slice(&bytes) {
            Ok(h) => h,
            Err(_) => return Err(ThreadError::NotFound),
        };
        if head.v != VERSION {
            return Err(ThreadError::NotFound);
        }
        let parts = self.store.get_many(&head.chunks).await?;
        let mut raw = Vec::with_capacity(head.len);
        for part in parts {
            let Some(part) = part else {
                return Err(ThreadError::NotFound);
            };
            raw.extend_from_slice(&part);
        }
        if raw.len() != head.len {
            return Err(ThreadError::NotFound);
        }
        let mut thread = decode(&raw).ok_or(ThreadError::NotFound)?;
        thread.upstream = head.upstream;
        thread.raw = raw;
        thread.chunks = head.chunks;
        thread.chunk = head.chunk;
        Ok(thread)
    }

    /// The size in bytes of the thread `base` plus `messages`, or
    /// [`ThreadError::TooLarge`] when that exceeds [`ThreadConfig::max_thread_bytes`].
    pub fn check_size(
        &self,
        base: &TurnBase<'_>,
        messages: &[anthropic::InputMessage],
    ) -> Result<usize, ThreadError> {
        let size = base_len(base) + messages.iter().map(line_len).sum::<usize>();
        if size > self.config.max_thread_bytes {
            return Err(ThreadError::TooLarge {
                size,
                limit: self.config.max_thread_bytes,
            });
        }
        Ok(size)
    }

    /// Stores the thread `base` followed by `messages` (the turn's new messages and its
    /// reply) under the reply id `message_id`, for the client key `client_id`.
    pub async fn save(
        &self,
        client_id: &str,
        message_id: &str,
        base: &TurnBase<'_>,
        messages: &[anthropic::InputMessage],
        upstream: Option<UpstreamTurn>,
    ) -> Result<(), ThreadError> {
        self.check_size(base, messages)?;
        let chunk = self.config.chunk_bytes.max(1);
        let (mut raw, reused): (Vec<u8>, &[String]) = match base {
            TurnBase::Create { system, tools } => {
                let header = Header {
                    system: system.map(std::borrow::Cow::Borrowed),
                    tools: tools.map(std::borrow::Cow::Borrowed),
                };
                let mut raw = serde_json::to_vec(&header).map_err(|_| ThreadError::NotFound)?;
                raw.push(b'\n');
                (raw, &[])
            }
            TurnBase::Continue(t) => {
                // Full chunks are reused only when cut at the same size.
                let full = if t.chunk == chunk {
                    (t.raw.len() / chunk).min(t.chunks.len())
                } else {
                    0
                };
                (t.raw.clone(), &t.chunks[..full])
            }
        };
        for m in messages {
            serde_json::to_writer(&mut raw, m).map_err(|_| ThreadError::NotFound)?;
            raw.push(b'\n');
        }
        let prefix = client_hash(client_id);
        let mut keys = Vec::with_capacity(raw.len().div_ceil(chunk));
        let ttl = self.config.ttl;
        for (i, part) in raw.chunks(chunk).enumerate() {
            // A reused key holds these very bytes: rewriting renews its time to live.
            let key = match reused.get(i) {
                Some(k) => k.clone(),
                None => format!("thread-chunk:{prefix}:{}:{i}", id_hash(message_id)),
            };
            self.store.set(&key, part, ttl).await?;
            keys.push(key);
        }
        let head = Head {
            v: VERSION,
            len: raw.len(),
            chunks: keys,
            chunk,
            upstream,
        };
        let head_bytes = serde_json::to_vec(&head).map_err(|_| ThreadError::NotFound)?;
        self.store
            .set(&head_key(client_id, message_id), &head_bytes, ttl)
            .await?;
        Ok(())
    }
}

fn base_len(base: &TurnBase<'_>) -> usize {
    match base {
        TurnBase::Create { system, tools } => {
            let header = Header {
                system: system.map(std::borrow::Cow::Borrowed),
                tools: tools.map(std::borrow::Cow::Borrowed),
            };
            serde_json::to_vec(&header).map_or(0, |v| v.len() + 1)
        }
        TurnBase::Continue(t) => t.raw.len(),
    }
}

fn line_len(m: &anthropic::InputMessage) -> usize {
    serde_json::to_vec(m).map_or(0, |v| v.len() + 1)
}

fn decode(raw: &[u8]) -> Option<Thread> {
    let mut lines = raw.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header: Header<'_> = serde_json::from_slice(lines.next()?).ok()?;
    let mut messages = Vec::new();
    for line in lines {
        messages.push(serde_json::from_slice(line).ok()?);
    }
    Some(Thread {
        system: header.system.map(std::borrow::Cow::into_owned),
        tools: header.tools.map(std::borrow::Cow::into_owned),
        messages,
        upstream: None,
        raw: Vec::new(),
        chunks: Vec::new(),
        chunk: 0,
    })
}

/// The namespace of one client key (its name hashed, so no name is a key's prefix).
fn client_hash(client_id: &str) -> String {
    hex(&Sha256::digest(client_id.as_bytes())[..12])
}

fn id_hash(message_id: &str) -> String {
    hex(&Sha256::digest(message_id.as_bytes())[..16])
}

fn head_key(client_id: &str, message_id: &str) -> String {
    format!("thread:{}:{}", client_hash(client_id), id_hash(message_id))
}
