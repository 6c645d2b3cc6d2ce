//! What the session state stores: one small versioned JSON record per binding, how it is
//! decoded (another version or an undecodable value reads as absent), and its store key.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::store::hex;

/// The version written into every stored value (`"v":1`). A value with another version,
/// or one that does not decode, reads as absent.
pub(super) const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(super) struct ResponseRecord {
    pub(super) v: u32,
    pub(super) id: String,
    pub(super) len: usize,
    pub(super) chain: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TurnRecord {
    pub(super) v: u32,
    pub(super) state: String,
}

#[derive(Serialize, Deserialize, Default)]
pub(super) struct ContinuationRecord {
    pub(super) v: u32,
    #[serde(default)]
    pub(super) disabled: bool,
    #[serde(default)]
    pub(super) not_found: u32,
}

#[derive(Serialize, Deserialize)]
pub(super) struct StickyRecord {
    pub(super) v: u32,
    pub(super) account: String,
    pub(super) len: usize,
    pub(super) chain: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ChainRecord {
    pub(super) v: u32,
    pub(super) key: String,
}

/// A session's turn log (`turns:`): see `turn_log`.
#[derive(Serialize, Deserialize)]
pub(super) struct SessionLogRecord {
    pub(super) v: u32,
    pub(super) client: String,
    pub(super) cache_key: String,
    pub(super) source: String,
    pub(super) started_at_ms: u64,
    /// Turns recorded in the session's lifetime.
    pub(super) count: u64,
    pub(super) turns: Vec<super::turn_log::TurnEntry>,
    /// The latest turn of each agent, newest first.
    pub(super) heads: Vec<TurnHead>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TurnHead {
    pub(super) agent: String,
    pub(super) at_ms: u64,
    pub(super) account: String,
    pub(super) fingerprint: crate::fingerprint::PrefixFingerprint,
}

/// A client key's recent sessions (`recent:`), newest first.
#[derive(Serialize, Deserialize, Default)]
pub(super) struct RecentRecord {
    pub(super) v: u32,
    pub(super) sessions: Vec<RecentEntry>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct RecentEntry {
    pub(super) id: String,
    pub(super) at_ms: u64,
}

pub(super) trait Versioned {
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
    ChainRecord,
    SessionLogRecord,
    RecentRecord
);

pub(super) fn decode<T: DeserializeOwned + Versioned>(bytes: &[u8]) -> Option<T> {
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
pub(super) fn tuple_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex(&h.finalize()[..16])
}

pub(super) fn response_key(id: &str) -> String {
    format!("resp:{id}")
}

pub(super) fn turn_key(id: &str) -> String {
    format!("turn:{id}")
}

pub(super) fn continuation_key(id: &str) -> String {
    format!("cont:{id}")
}

pub(super) fn sticky_key(client_key_id: &str, cache_key: &str) -> String {
    format!("sticky:{}", tuple_id(&[client_key_id, cache_key.trim()]))
}

pub(super) fn chain_key(client_key_id: &str, prefix_id: &str) -> String {
    format!("chain:{}", tuple_id(&[client_key_id, prefix_id]))
}

pub(super) fn turns_key(session_id: &str) -> String {
    format!("turns:{session_id}")
}

pub(super) fn recent_key(client_key_id: &str) -> String {
    format!("recent:{}", tuple_id(&[client_key_id]))
}
