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
    ChainRecord
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
