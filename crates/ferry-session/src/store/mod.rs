//! The key-value store behind the session state, and its backends.

#[cfg(feature = "redis")]
mod breaker;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

#[cfg(feature = "redis")]
pub use self::breaker::BreakerStore;
pub use self::memory::{MemoryLimits, MemoryStore};
#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
use crate::StoreError;

/// A boxed, sendable future, the return type of every [`Store`] method (so the trait can
/// be used as `Arc<dyn Store>` without `async_trait`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A small key-value store with expiry, shared by every request of a process (memory) or
/// of every process (Redis).
///
/// Values are small opaque byte strings (the session layer writes versioned JSON such as
/// `{"v":1,…}`); every key has a time to live. Keys longer than the backend's key limit
/// (512 bytes by default) are stored under `sha256:<hex of the key>` instead, so a caller
/// never has to bound its keys. A value over the per-value limit (64 KiB by default) is
/// refused with [`StoreError::ValueTooLarge`] and removes what was stored under the key.
///
/// The slot methods implement shared concurrency limits (for example "at most 8 requests
/// in flight on this account, over all replicas"): every holder counts until it releases
/// its slot or until the slot's time to live runs out, so a crashed holder cannot leak a
/// slot for longer than that. Each acquisition gets its own [`SlotToken`], and a release
/// removes exactly the holder with that token: a holder that outlives its time to live
/// and releases late frees nothing that another holder took since.
pub trait Store: Send + Sync + fmt::Debug {
    /// The value stored under `key`, if any and not expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// The values stored under each of `keys`, in order (one round trip on Redis).
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>>;

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    ///
    /// A zero `ttl` deletes the key. A value over the per-value limit deletes the key and
    /// returns [`StoreError::ValueTooLarge`].
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes `key` (no error when it is absent).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes one of the `limit` slots named `key` for at most `ttl`, and returns the new
    /// holder's token (keep it to give the slot back with [`Store::release_slot`]).
    /// Returns `None`, and takes nothing, when all slots are held or `ttl` is zero.
    fn try_acquire_slot<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<SlotToken>, StoreError>>;

    /// Gives back the slot that `token` holds under `key`, and only that one. Does nothing
    /// when that holder is gone already (its time to live ran out, or it was released).
    fn release_slot<'a>(
        &'a self,
        key: &'a str,
        token: &'a SlotToken,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Adds `by` to the counter `key` and returns its new value. A counter that did not
    /// exist starts at zero and lives for `ttl` from this first add (a budget window); later
    /// adds keep that expiry. Atomic on one store, so replicas sharing Redis share counts.
    ///
    /// The default reads and writes the value as decimal text (not atomic); the shipped
    /// stores override it.
    fn add<'a>(
        &'a self,
        key: &'a str,
        by: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let now = self.counter(key).await?.saturating_add(by);
            self.set(key, now.to_string().as_bytes(), ttl).await?;
            Ok(now)
        })
    }

    /// The value of the counter `key` (0 when absent or expired).
    fn counter<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            Ok(self
                .get(key)
                .await?
                .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
                .unwrap_or(0))
        })
    }

    /// The values of the counters `keys`, in order (0 for an absent or expired one): one
    /// round trip on Redis, for a view that reads many counters at once (the admin API's
    /// hourly usage).
    ///
    /// The default reads them one by one; the shipped stores override it.
    fn counters<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.counter(key).await?);
            }
            Ok(out)
        })
    }

    /// The backend's name (`memory` or `redis`), for logs and metrics.
    fn backend(&self) -> &'static str;

    /// True while the store serves on local state because its backend is unreachable
    /// ([`BreakerStore`]). Plain stores are never degraded.
    fn degraded(&self) -> bool {
        false
    }

    /// The circuit breaker's counts, for a store that has one.
    fn breaker_stats(&self) -> Option<BreakerStats> {
        None
    }
}

/// What the breaker saw since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerStats {
    /// True while the breaker is open (operations are served locally).
    pub degraded: bool,
    /// Times the breaker opened (a Redis failure or timeout while it was closed).
    pub trips: u64,
    /// Operations answered locally because the breaker was open.
    pub local_ops: u64,
    /// Writes replayed into Redis when it came back.
    pub reconciled: u64,
}

/// One holder of a concurrency slot: what [`Store::try_acquire_slot`] returns and
/// [`Store::release_slot`] takes back.
///
/// A token is a random (version 4) UUID, unique to one acquisition, so a release can name
/// its own holder and no other. It is not a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotToken(Uuid);

impl SlotToken {
    /// A new, unique token (for a [`Store`] backend taking a slot).
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for SlotToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SlotToken {
    /// The hyphenated UUID (the member name in the Redis backend's sorted set).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Which store to open, and its settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// In-process memory (the default): state is lost on restart and not shared.
    Memory(MemoryLimits),
    /// Redis: state is shared by every replica that uses the same server and prefix.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Memory(MemoryLimits::default())
    }
}

/// Opens the configured store. Redis is put behind a circuit breaker ([`BreakerStore`]):
/// an invalid URL is an error, an unreachable server is not (the store starts degraded and
/// connects when the server comes up).
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Memory(limits) => Ok(Arc::new(MemoryStore::new(limits.clone()))),
        #[cfg(feature = "redis")]
        StoreConfig::Redis(cfg) => Ok(Arc::new(
            BreakerStore::open(cfg.clone(), MemoryLimits::default()).await?,
        )),
    }
}

/// The form a key is stored under: itself, or `sha256:<hex>` when it is longer than
/// `max_key_bytes`.
pub(crate) fn stored_key(key: &str, max_key_bytes: usize) -> Cow<'_, str> {
    if key.len() <= max_key_bytes {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("sha256:{}", hex(&Sha256::digest(key.as_bytes()))))
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
