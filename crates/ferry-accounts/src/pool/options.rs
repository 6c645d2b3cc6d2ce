//! Pool-wide options, and the concurrency slots shared with other replicas through the
//! session store.

use std::sync::Arc;
use std::time::Duration;

use ferry_session::Store;

use crate::classify::DEFAULT_UNAUTHORIZED_BACKOFF;
use crate::oauth::OAuthOptions;
use crate::ratelimit::DEFAULT_RATE_LIMIT_FALLBACK;

/// Longest cooldown an account is given, whatever an upstream header or body asks for
/// (`rate_limit.max_cooldown_secs`, 2 h, also the upper bound of the 429 fallback; see
/// docs/RELIABILITY.md § Config, accounts and Redis on a bad day).
/// A longer reset is cut to this; the account is tried again then and cools down again if
/// the upstream still refuses it.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(7200);

/// Pool-wide options.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// How long [`Pool::acquire`](super::Pool::acquire) waits for a free concurrency slot
    /// before giving up (30 s).
    pub slot_wait: Duration,
    /// Cooldown after a 429 without a usable reset (5 s; clamped to 1–7200 s).
    pub rate_limit_fallback: Duration,
    /// Longest cooldown applied ([`DEFAULT_MAX_COOLDOWN`]); longer ones are capped and counted
    /// ([`Pool::cooldowns_capped`](super::Pool::cooldowns_capped)).
    pub max_cooldown: Duration,
    /// First bench of an API-key account after a 401, doubled per 401 in a row (30 s).
    pub unauthorized_backoff: Duration,
    /// OAuth token refresh settings (HTTP client, state directory, skew).
    pub oauth: OAuthOptions,
    /// Concurrency slots shared with other replicas through the session store (`None`: local
    /// limits only).
    pub shared_slots: Option<SharedSlots>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            slot_wait: Duration::from_secs(30),
            rate_limit_fallback: DEFAULT_RATE_LIMIT_FALLBACK,
            max_cooldown: DEFAULT_MAX_COOLDOWN,
            unauthorized_backoff: DEFAULT_UNAUTHORIZED_BACKOFF,
            oauth: OAuthOptions::default(),
            shared_slots: None,
        }
    }
}

/// Per-account concurrency limits shared by every replica using the same session store
/// (`[session] store = "redis"`).
///
/// A lease holds a local slot *and* a store slot `accounts:slot:{name}` with the account's
/// `concurrency` as the limit. A store slot expires after `ttl` even if its holder crashed.
/// The lease keeps the store slot's [`SlotToken`](ferry_session::SlotToken) and gives back
/// exactly that slot when it is dropped, so a lease that outlived `ttl` cannot free a slot
/// another request took since.
/// When the store fails, the pool fails open: local limits still apply, a warning is logged.
#[derive(Clone, Debug)]
pub struct SharedSlots {
    /// The session store.
    pub store: Arc<dyn Store>,
    /// How long a slot is held at most (`gateway.concurrency_slot_ttl_minutes`, default 30 min).
    pub ttl: Duration,
    /// How often a waiter re-checks the store (other replicas' releases are not signalled).
    pub poll_interval: Duration,
}

impl SharedSlots {
    /// Shared slots in `store` with the default TTL (30 minutes) and poll interval (250 ms).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            ttl: DEFAULT_SLOT_TTL,
            poll_interval: Duration::from_millis(250),
        }
    }

    pub(super) fn key(account: &str) -> String {
        format!("accounts:slot:{account}")
    }
}

/// Default lifetime of a shared concurrency slot: 30 minutes (`gateway.concurrency_slot_ttl_secs`,
/// crates/ferry-server/README.md § Observability).
pub const DEFAULT_SLOT_TTL: Duration = Duration::from_secs(30 * 60);
