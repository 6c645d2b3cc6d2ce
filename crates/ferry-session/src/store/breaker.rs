//! A circuit breaker in front of the Redis store: no request waits on a dead Redis.
//!
//! [`BreakerStore`] sends every operation to Redis with a short deadline
//! ([`RedisConfig::op_timeout`]). The first failure or timeout *opens* the breaker: from then
//! on every operation is answered at once from a local [`MemoryStore`] (the process keeps
//! serving on its own state, as a single replica would), and a background probe tries Redis
//! every [`RedisConfig::probe_interval`]. When Redis answers again, the writes made while it was
//! away (bindings set or deleted, slots given back) are replayed into it — the *reconcile* —
//! and the breaker closes.
//!
//! Writes always go to the local store as well, so the state a process had just before an
//! outage is still there during it. Opening the store never fails because Redis is down: it
//! starts with the breaker open (degraded) and connects when Redis comes up.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    BoxFuture, BreakerStats, MemoryLimits, MemoryStore, RedisConfig, RedisStore, SlotToken, Store,
};
use crate::StoreError;

/// Most writes remembered for the reconcile; beyond it the oldest are not replayed (they
/// expire in Redis, or were never there).
const JOURNAL_LIMIT: usize = 100_000;

/// A write made while Redis was away, replayed when it is back.
#[derive(Debug, Clone)]
enum Pending {
    /// Set to the local value until `until` (deleted if the local value is gone).
    Set {
        until: Instant,
    },
    Delete,
}

#[derive(Debug, Default)]
struct Journal {
    writes: HashMap<String, Pending>,
    releases: Vec<(String, SlotToken)>,
}

struct Shared {
    config: RedisConfig,
    redis: RwLock<Option<RedisStore>>,
    local: MemoryStore,
    open: AtomicBool,
    journal: Mutex<Journal>,
    trips: AtomicU64,
    local_ops: AtomicU64,
    reconciled: AtomicU64,
}

/// The Redis [`Store`] behind a circuit breaker, with a local fallback. See the module docs.
#[derive(Clone)]
pub struct BreakerStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for BreakerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerStore")
            .field("config", &self.shared.config)
            .field("degraded", &self.shared.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl BreakerStore {
    /// Connects to Redis (within [`RedisConfig::connect_timeout`]); when it cannot, starts
    /// degraded. Starts the background probe. A URL that does not parse is still an error.
    pub async fn open(config: RedisConfig, local: MemoryLimits) -> Result<Self, StoreError> {
        redis::Client::open(config.url.as_str()).map_err(|e| StoreError::InvalidUrl {
            url: config.redacted_url(),
            reason: e.to_string().replace(
                super::redis::url_password(&config.url).unwrap_or("\u{0}"),
                "***",
            ),
        })?;
        let redis = match connect(&config).await {
            Ok(store) => Some(store),
            Err(err) => {
                tracing::warn!(target: "ferry::session", url = %config.redacted_url(), error = %err, "redis is unreachable: starting degraded on local session state; reconnecting in the background");
                None
            }
        };
        let degraded = redis.is_none();
        let shared = Arc::new(Shared {
            config,
            redis: RwLock::new(redis),
            local: MemoryStore::new(local),
            open: AtomicBool::new(degraded),
            journal: Mutex::new(Journal::default()),
            trips: AtomicU64::new(u64::from(degraded)),
            local_ops: AtomicU64::new(0),
            reconciled: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&shared);
        #[expect(
            clippy::disallowed_methods,
            reason = "the probe lives as long as the store (it holds a Weak and ends when the store is dropped)"
        )]
        tokio::spawn(probe(weak));
        Ok(Self { shared })
    }

    /// What the breaker saw since start.
    pub fn stats(&self) -> BreakerStats {
        let s = &self.shared;
        BreakerStats {
            degraded: s.open.load(Ordering::Acquire),
            trips: s.trips.load(Ordering::Relaxed),
            local_ops: s.local_ops.load(Ordering::Relaxed),
            reconciled: s.reconciled.load(Ordering::Relaxed),
        }
    }

    /// The Redis store while the breaker is closed.
    fn closed(&self) -> Option<RedisStore> {
        if self.shared.open.load(Ordering::Acquire) {
            self.shared.local_ops.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let redis = self.shared.redis();
        if redis.is_none() {
            self.shared.local_ops.fetch_add(1, Ordering::Relaxed);
        }
        redis
    }

    /// Runs `op` on Redis with the deadline. `None` when it failed or timed out (the breaker
    /// is then open); a refusal that is not Redis's fault (a value too large) is passed on.
    async fn remote<T>(
        &self,
        name: &'static str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Option<Result<T, StoreError>> {
        match tokio::time::timeout(self.shared.config.op_timeout, op).await {
            Ok(Ok(v)) => Some(Ok(v)),
            Ok(Err(err @ StoreError::ValueTooLarge { .. })) => Some(Err(err)),
            Ok(Err(err)) => {
                self.shared.trip(name, &err.to_string());
                None
            }
            Err(_) => {
                self.shared.trip(
                    name,
                    &format!(
                        "no answer within {} ms",
                        self.shared.config.op_timeout.as_millis()
                    ),
                );
                None
            }
        }
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.shared.journal()
    }

    fn remember(&self, key: &str, pending: Pending) {
        let mut journal = self.journal();
        if journal.writes.len() < JOURNAL_LIMIT || journal.writes.contains_key(key) {
            journal.writes.insert(key.to_owned(), pending);
        }
    }
}

impl Shared {
    fn redis(&self) -> Option<RedisStore> {
        self.redis
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn trip(&self, op: &'static str, why: &str) {
        if !self.open.swap(true, Ordering::AcqRel) {
            self.trips.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "ferry::session", op, error = why, "redis failed: session store degraded, serving on local state until it answers again");
        }
    }
}

async fn connect(config: &RedisConfig) -> Result<RedisStore, StoreError> {
    match tokio::time::timeout(config.connect_timeout, RedisStore::connect(config.clone())).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Connect {
            url: config.redacted_url(),
            reason: format!(
                "no connection within {} ms",
                config.connect_timeout.as_millis()
            ),
        }),
    }
}

/// While the breaker is open: every `probe_interval`, (re)connect or ask Redis a question;
/// when it answers, replay the journal and close the breaker. Ends when the store is dropped.
async fn probe(shared: Weak<Shared>) {
    loop {
        let Some(interval) = shared.upgrade().map(|s| s.config.probe_interval) else {
            return;
        };
        tokio::time::sleep(interval).await;
        let Some(s) = shared.upgrade() else { return };
        if !s.open.load(Ordering::Acquire) {
            continue;
        }
        let redis = match s.redis() {
            Some(r) => r,
            None => match connect(&s.config).await {
                Ok(r) => {
                    *s.redis.write().unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
                    r
                }
                Err(_) => continue,
            },
        };
        let ping = tokio::time::timeout(s.config.op_timeout, redis.get("ferry:probe")).await;
        if !matches!(ping, Ok(Ok(_))) {
            continue;
        }
        match reconcile(&s, &redis).await {
            Ok(n) => {
                s.open.store(false, Ordering::Release);
                tracing::info!(target: "ferry::session", replayed = n, "redis answers again: session store reconciled and shared again");
            }
            Err(err) => {
                tracing::warn!(target: "ferry::session", error = %err, "redis answered the probe but the reconcile failed; staying degraded");
            }
        }
    }
}

/// Replays the journal into Redis until it is empty (writes keep landing in it while this
/// runs, since the breaker is still open). Returns how many entries were replayed.
async fn reconcile(s: &Shared, redis: &RedisStore) -> Result<u64, StoreError> {
    let mut replayed = 0u64;
    loop {
        let Journal { writes, releases } = std::mem::take(&mut *s.journal());
        if writes.is_empty() && releases.is_empty() {
            return Ok(replayed);
        }
        let deadline = s.config.op_timeout;
        let step = async {
            for (key, pending) in &writes {
                let now = Instant::now();
                match pending {
                    Pending::Set { until } if *until > now => match s.local.get(key).await? {
                        Some(value) => redis.set(key, &value, *until - now).await?,
                        None => redis.delete(key).await?,
                    },
                    Pending::Set { .. } => {}
                    Pending::Delete => redis.delete(key).await?,
                }
            }
            for (key, token) in &releases {
                redis.release_slot(key, token).await?;
            }
            Ok::<(), StoreError>(())
        };
        let budget = deadline.saturating_mul(
            u32::try_from(writes.len() + releases.len())
                .unwrap_or(u32::MAX)
                .max(1),
        );
        match tokio::time::timeout(budget, step).await {
            Ok(Ok(())) => {
                replayed += u64::try_from(writes.len() + releases.len()).unwrap_or(u64::MAX);
                s.reconciled.fetch_add(
                    u64::try_from(writes.len() + releases.len()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            failed => {
                // Put the entries back (newer ones win) for the next probe.
                let mut journal = s.journal();
                for (key, pending) in writes {
                    journal.writes.entry(key).or_insert(pending);
                }
                journal.releases.extend(releases);
                return Err(match failed {
                    Ok(Err(e)) => e,
                    _ => StoreError::Redis {
                        op: "reconcile",
                        reason: "timed out".to_owned(),
                    },
                });
            }
        }
    }
}

impl Store for BreakerStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("get", redis.get(key)).await
            {
                return result;
            }
            self.shared.local.get(key).await
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("get_many", redis.get_many(keys)).await
            {
                return result;
            }
            self.shared.local.get_many(keys).await
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let local = self.shared.local.set(key, value, ttl).await;
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("set", redis.set(key, value, ttl)).await
            {
                return result;
            }
            self.remember(
                key,
                Pending::Set {
                    until: Instant::now() + ttl,
                },
            );
            local
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let local = self.shared.local.delete(key).await;
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("delete", redis.delete(key)).await
            {
                return result;
            }
            self.remember(key, Pending::Delete);
            local
        })
    }

    fn try_acquire_slot<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<SlotToken>, StoreError>> {
        Box::pin(async move {
            if let Some(redis) = self.closed()
                && let Some(result) = self
                    .remote("acquire_slot", redis.try_acquire_slot(key, limit, ttl))
                    .await
            {
                return result;
            }
            // Degraded: this process's own slots (the limit holds per replica).
            self.shared.local.try_acquire_slot(key, limit, ttl).await
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        by: u64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            // While Redis is down the replica counts alone (its local counter); the shared
            // count misses those adds, which a budget tolerates better than refusing traffic.
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("add", redis.add(key, by, ttl)).await
            {
                return result;
            }
            self.shared.local.add(key, by, ttl).await
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("counter", redis.counter(key)).await
            {
                return result;
            }
            self.shared.local.counter(key).await
        })
    }

    fn counters<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            if let Some(redis) = self.closed()
                && let Some(result) = self.remote("counters", redis.counters(keys)).await
            {
                return result;
            }
            self.shared.local.counters(keys).await
        })
    }

    fn release_slot<'a>(
        &'a self,
        key: &'a str,
        token: &'a SlotToken,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // A token names one holder in one of the two stores; releasing it in the other
            // does nothing.
            let local = self.shared.local.release_slot(key, token).await;
            if let Some(redis) = self.closed()
                && let Some(result) = self
                    .remote("release_slot", redis.release_slot(key, token))
                    .await
            {
                return result;
            }
            let mut journal = self.journal();
            if journal.releases.len() < JOURNAL_LIMIT {
                journal.releases.push((key.to_owned(), *token));
            }
            local
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn degraded(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    fn breaker_stats(&self) -> Option<BreakerStats> {
        Some(self.stats())
    }
}
