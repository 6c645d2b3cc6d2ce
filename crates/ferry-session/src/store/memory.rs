//! The in-process store: a bounded map with expiry.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::time::Instant;

use super::{BoxFuture, SlotToken, Store, stored_key};
use crate::StoreError;

/// Number of independently locked parts of the expiry index.
const INDEX_SHARDS: usize = 16;

/// Bounds of a [`MemoryStore`]. The defaults are the reference gateway's
/// (4096 entries, 32 MiB, 64 KiB per value, 512-byte keys, 16 expired entries pruned per
/// write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Most entries kept; a write beyond it evicts the entries that expire first.
    pub max_entries: usize,
    /// Most bytes kept (keys plus values); a write beyond it evicts the entries that
    /// expire first.
    pub max_total_bytes: usize,
    /// Largest value accepted; a larger one is refused.
    pub max_value_bytes: usize,
    /// Longest key stored as is; a longer one is stored as `sha256:<hex>`.
    pub max_key_bytes: usize,
    /// How many expired entries each write removes, at most.
    pub prune_per_write: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            max_entries: 4096,
            max_total_bytes: 32 << 20,
            max_value_bytes: 64 << 10,
            max_key_bytes: 512,
            prune_per_write: 16,
        }
    }
}

/// The in-process [`Store`]: a concurrent map with a time to live on every entry,
/// bounded by entry count and total bytes.
///
/// No operation takes a lock over the whole store. Entries live in a [`DashMap`]; an
/// index ordered by expiry is split into 16 parts, each behind its own mutex. A write
/// removes up to [`MemoryLimits::prune_per_write`] expired entries (from one index part,
/// in turn), and when the store is over a bound it evicts the entries that expire first.
/// A read that finds an expired entry removes it. Time is [`tokio::time::Instant`], so
/// tests can pause and advance it.
pub struct MemoryStore {
    limits: MemoryLimits,
    map: DashMap<Arc<str>, Entry>,
    index: Box<[Mutex<BTreeSet<IndexRecord>>]>,
    seq: AtomicU64,
    entries: AtomicUsize,
    bytes: AtomicUsize,
    prune_cursor: AtomicUsize,
    /// Holders of each slot key, with the time each one stops counting.
    slots: DashMap<Arc<str>, Vec<(SlotToken, Instant)>>,
    /// Counters ([`Store::add`]): value and expiry. Few (a budget window per client key),
    /// so they are kept apart from the size-limited bindings.
    counters: DashMap<Arc<str>, (u64, Instant)>,
}

struct Entry {
    value: Arc<[u8]>,
    expires_at: Instant,
    seq: u64,
}

/// One entry's place in the expiry order. `seq` tells a record from the record of a
/// later value stored under the same key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IndexRecord {
    expires_at: Instant,
    seq: u64,
    key: Arc<str>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("limits", &self.limits)
            .field("entries", &self.len())
            .field("bytes", &self.total_bytes())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryLimits::default())
    }
}

impl MemoryStore {
    /// An empty store with these bounds.
    pub fn new(limits: MemoryLimits) -> Self {
        Self {
            limits,
            map: DashMap::new(),
            index: (0..INDEX_SHARDS)
                .map(|_| Mutex::new(BTreeSet::new()))
                .collect(),
            seq: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            prune_cursor: AtomicUsize::new(0),
            slots: DashMap::new(),
            counters: DashMap::new(),
        }
    }

    /// Entries held, including expired ones not removed yet.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (keys plus values), including expired entries not removed yet.
    pub fn total_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The bounds this store was made with.
    pub fn limits(&self) -> &MemoryLimits {
        &self.limits
    }

    fn shard(&self, seq: u64) -> MutexGuard<'_, BTreeSet<IndexRecord>> {
        // The modulo keeps the value below INDEX_SHARDS, so the cast is lossless.
        let i = (seq % INDEX_SHARDS as u64) as usize;
        lock(&self.index[i])
    }

    fn get_now(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let key = stored_key(key, self.limits.max_key_bytes);
        let found = self.map.get(key.as_ref()).map(|e| {
            if e.expires_at > now {
                Some(e.value.to_vec())
            } else {
                None
            }
        });
        match found {
            Some(Some(value)) => Some(value),
            Some(None) => {
                if let Some((k, old)) = self.map.remove_if(key.as_ref(), |_, e| e.expires_at <= now)
                {
                    self.forget(&k, &old);
                }
                None
            }
            None => None,
        }
    }

    fn set_now(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        now: Instant,
    ) -> Result<(), StoreError> {
        if value.len() > self.limits.max_value_bytes {
            self.delete_now(key);
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                limit: self.limits.max_value_bytes,
            });
        }
        if ttl.is_zero() {
            self.delete_now(key);
            return Ok(());
        }
        let key: Arc<str> = Arc::from(stored_key(key, self.limits.max_key_bytes).as_ref());
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let expires_at = now + ttl;
        let size = key.len() + value.len();
        let record = IndexRecord {
            expires_at,
            seq,
            key: Arc::clone(&key),
        };
        let entry = Entry {
            value: Arc::from(value),
            expires_at,
            seq,
        };
        // Lock order: a map shard (held by the entry guard), then an index part. Nothing
        // takes them the other way round.
        match self.map.entry(Arc::clone(&key)) {
            MapEntry::Occupied(mut occupied) => {
                let old = occupied.insert(entry);
                self.shard(old.seq).remove(&IndexRecord {
                    expires_at: old.expires_at,
                    seq: old.seq,
                    key: Arc::clone(&key),
                });
                self.shard(seq).insert(record);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                self.bytes
                    .fetch_sub(key.len() + old.value.len(), Ordering::Relaxed);
            }
            MapEntry::Vacant(vacant) => {
                // Keep the entry locked until the index and the counters know about it,
                // so a concurrent delete of the same key cannot count it out first.
                let _held = vacant.insert(entry);
                self.shard(seq).insert(record);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.prune_expired(now);
        while self.len() > self.limits.max_entries
            || self.total_bytes() > self.limits.max_total_bytes
        {
            if !self.evict_earliest() {
                break;
            }
        }
        Ok(())
    }

    fn delete_now(&self, key: &str) {
        let key = stored_key(key, self.limits.max_key_bytes);
        if let Some((k, old)) = self.map.remove(key.as_ref()) {
            self.forget(&k, &old);
        }
    }

    /// Updates the index and the counters for an entry that has left the map.
    fn forget(&self, key: &Arc<str>, old: &Entry) {
        self.shard(old.seq).remove(&IndexRecord {
            expires_at: old.expires_at,
            seq: old.seq,
            key: Arc::clone(key),
        });
        self.entries.fetch_sub(1, Ordering::Relaxed);
        self.bytes
            .fetch_sub(key.len() + old.value.len(), Ordering::Relaxed);
    }

    /// Removes the entry `record` points at, if it is still that entry.
    fn remove_indexed(&self, record: &IndexRecord) -> bool {
        match self.map.remove_if(&record.key, |_, e| e.seq == record.seq) {
            Some((key, old)) => {
                self.entries.fetch_sub(1, Ordering::Relaxed);
                self.bytes
                    .fetch_sub(key.len() + old.value.len(), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Removes up to `prune_per_write` expired entries from the next index part.
    fn prune_expired(&self, now: Instant) {
        let part = self.prune_cursor.fetch_add(1, Ordering::Relaxed) % INDEX_SHARDS;
        let mut expired = Vec::new();
        {
            let mut shard = lock(&self.index[part]);
            while expired.len() < self.limits.prune_per_write {
                match shard.first() {
                    Some(first) if first.expires_at <= now => {
                        if let Some(record) = shard.pop_first() {
                            expired.push(record);
                        }
                    }
                    _ => break,
                }
            }
        }
        for record in &expired {
            self.remove_indexed(record);
        }
    }

    /// Evicts the entry that expires first. Returns `false` when there is none.
    fn evict_earliest(&self) -> bool {
        loop {
            let mut best: Option<(usize, IndexRecord)> = None;
            for (i, part) in self.index.iter().enumerate() {
                let shard = lock(part);
                if let Some(first) = shard.first()
                    && best.as_ref().is_none_or(|(_, b)| first < b)
                {
                    best = Some((i, first.clone()));
                }
            }
            let Some((i, record)) = best else {
                return false;
            };
            if !lock(&self.index[i]).remove(&record) {
                // Someone else removed it first: look again.
                continue;
            }
            if self.remove_indexed(&record) {
                return true;
            }
        }
    }

    fn acquire_now(&self, key: &str, limit: u32, ttl: Duration, now: Instant) -> Option<SlotToken> {
        let key = stored_key(key, self.limits.max_key_bytes);
        let token = {
            let mut holders = self.slots.entry(Arc::from(key.as_ref())).or_default();
            holders.retain(|(_, exp)| *exp > now);
            let held = holders.len();
            if held >= usize::try_from(limit).unwrap_or(usize::MAX) || ttl.is_zero() {
                None
            } else {
                let token = SlotToken::new();
                holders.push((token, now + ttl));
                Some(token)
            }
        };
        if token.is_none() {
            // A refused acquire with every holder expired must not leave an empty entry.
            self.slots
                .remove_if(key.as_ref(), |_, holders| holders.is_empty());
        }
        token
    }

    fn release_now(&self, key: &str, token: &SlotToken, now: Instant) {
        let key = stored_key(key, self.limits.max_key_bytes);
        if let Some(mut holders) = self.slots.get_mut(key.as_ref()) {
            holders.retain(|(held, exp)| held != token && *exp > now);
        }
        self.slots
            .remove_if(key.as_ref(), |_, holders| holders.is_empty());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the index inconsistent in a way that
    // matters more than losing it: keep going with the data as it is.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { Ok(self.get_now(key, Instant::now())) })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            Ok(keys.iter().map(|k| self.get_now(k, now)).collect())
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { self.set_now(key, value, ttl, Instant::now()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.delete_now(key);
            Ok(())
        })
    }

    fn try_acquire_slot<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<SlotToken>, StoreError>> {
        Box::pin(async move { Ok(self.acquire_now(key, limit, ttl, Instant::now())) })
    }

    fn release_slot<'a>(
        &'a self,
        key: &'a str,
        token: &'a SlotToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.release_now(key, token, Instant::now());
            Ok(())
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        by: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let key = stored_key(key, self.limits.max_key_bytes);
            if self.counters.len() > 10_000 {
                self.counters.retain(|_, (_, exp)| *exp > now);
            }
            let mut slot = self
                .counters
                .entry(Arc::from(key.as_ref()))
                .or_insert((0, now + ttl));
            if slot.1 <= now {
                *slot = (0, now + ttl);
            }
            slot.0 = slot.0.saturating_add(by);
            Ok(slot.0)
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let key = stored_key(key, self.limits.max_key_bytes);
            let now = Instant::now();
            Ok(self
                .counters
                .get(key.as_ref())
                .filter(|c| c.1 > now)
                .map_or(0, |c| c.0))
        })
    }

    fn counters<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            Ok(keys
                .iter()
                .map(|key| {
                    let key = stored_key(key, self.limits.max_key_bytes);
                    self.counters
                        .get(key.as_ref())
                        .filter(|c| c.1 > now)
                        .map_or(0, |c| c.0)
                })
                .collect())
        })
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
