//! `[session]`: where session bindings live, how long, and the memory store's bounds.

use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use super::problems::{MIB, Problems, int_in, secs_in};

/// `[session]`
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where session bindings live.
    pub store: SessionStoreKind,
    /// Time to live of every binding.
    pub ttl: Duration,
    /// Memory store: most bindings kept (a session holds about five); beyond it the
    /// bindings that expire first are evicted.
    pub max_entries: usize,
    /// Memory store: most bytes of keys and values kept (Codex turn states can be several
    /// KiB each); beyond it the bindings that expire first are evicted.
    pub max_bytes: usize,
    /// Redis store: longest wait for one operation before the circuit breaker opens and
    /// local state serves (`redis_timeout_ms`, 250 ms).
    pub redis_timeout: Duration,
    /// Redis store: how often Redis is probed while the breaker is open (1 s).
    pub redis_probe_interval: Duration,
    /// Largest conversation one message thread may hold (docs/threads.md).
    pub max_thread_bytes: usize,
}
/// Default `[session] redis_timeout_ms`.
pub(super) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a degraded Redis store is probed.
pub(super) const DEFAULT_REDIS_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Default `[session] max_entries`: room for about 20,000 live sessions.
pub(super) const DEFAULT_SESSION_MAX_ENTRIES: usize = 100_000;
/// Default `[session] max_thread_bytes` (8 MiB).
pub(super) const DEFAULT_MAX_THREAD_BYTES: usize = 8 << 20;
/// Default `[session] max_bytes` (256 MiB).
pub(super) const DEFAULT_SESSION_MAX_BYTES: usize = 256 << 20;

/// Session store backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStoreKind {
    /// In-process memory (default).
    Memory,
    /// A Redis server, shared between replicas.
    Redis {
        /// `redis://` or `rediss://` URL (may carry a password: never logged).
        url: Secret,
    },
}
/// `[session]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    /// `memory` (default) or `redis`
    pub store: Option<String>,
    /// required when `store = "redis"`
    pub redis_url: Option<String>,
    /// default 3600
    pub ttl_secs: Option<u64>,
    /// default 100000; 1000..=100000000 (memory store)
    pub max_entries: Option<u64>,
    /// default 268435456 (256 MiB); 1 MiB..=64 GiB (memory store)
    pub max_bytes: Option<u64>,
    /// default 250; 10..=10000 (redis store: longest wait per operation before the
    /// circuit breaker opens)
    pub redis_timeout_ms: Option<u64>,
    /// default 8388608 (8 MiB); 64 KiB..=1 GiB (one message thread)
    pub max_thread_bytes: Option<u64>,
}

impl RawSession {
    pub(super) fn validate(self, p: &mut Problems) -> SessionConfig {
        let store = match self.store.as_deref().map(str::trim).unwrap_or("memory") {
            "memory" => SessionStoreKind::Memory,
            "redis" => match self.redis_url.as_deref().map(str::trim) {
                Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                    SessionStoreKind::Redis {
                        url: Secret::new(url),
                    }
                }
                Some(_) => {
                    p.push("session.redis_url", "must start with redis:// or rediss://");
                    SessionStoreKind::Memory
                }
                None => {
                    p.push(
                        "session.redis_url",
                        "required when session.store = \"redis\"",
                    );
                    SessionStoreKind::Memory
                }
            },
            other => {
                p.push(
                    "session.store",
                    format!("must be \"memory\" or \"redis\", got {other:?}"),
                );
                SessionStoreKind::Memory
            }
        };
        let ttl = secs_in(
            p,
            "session.ttl_secs",
            self.ttl_secs,
            3600,
            1..=30 * 24 * 3600,
            false,
        )
        .unwrap_or_default();
        let max_entries = int_in(
            p,
            "session.max_entries",
            self.max_entries,
            DEFAULT_SESSION_MAX_ENTRIES,
            1000..=100_000_000,
        );
        let max_bytes = int_in(
            p,
            "session.max_bytes",
            self.max_bytes,
            DEFAULT_SESSION_MAX_BYTES,
            MIB..=64 * 1024 * MIB,
        );
        let redis_timeout_ms = int_in(
            p,
            "session.redis_timeout_ms",
            self.redis_timeout_ms,
            250,
            10..=10_000,
        );
        let max_thread_bytes = int_in(
            p,
            "session.max_thread_bytes",
            self.max_thread_bytes,
            DEFAULT_MAX_THREAD_BYTES,
            64 * 1024..=1024 * MIB,
        );
        SessionConfig {
            store,
            ttl,
            max_entries,
            max_bytes,
            redis_timeout: Duration::from_millis(u64::try_from(redis_timeout_ms).unwrap_or(250)),
            redis_probe_interval: DEFAULT_REDIS_PROBE_INTERVAL,
            max_thread_bytes,
        }
    }
}
