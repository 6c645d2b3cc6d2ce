//! Account selection: which account serves one attempt (sticky preference, priority, load),
//! and the wait for a free concurrency slot, local and shared.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Account, AccountState, Lease, Pool, SharedSlots};
use crate::classify::CooldownKind;
use crate::error::{AccountsError, Unavailable};

/// Which account to pick for one attempt.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    /// The session's sticky account: used first while it is healthy and has a free slot.
    pub preferred: Option<&'a str>,
    /// Accounts already tried (failed) for this request.
    pub exclude: &'a [String],
}

enum Pick {
    /// Healthy accounts in preference order.
    Candidates(Vec<Arc<Account>>, Option<Instant>),
    Unavailable(Unavailable, Option<Duration>),
}

impl Pool {
    /// Reserves a slot on the best account: the preferred (sticky) account if it is healthy and
    /// has a free slot; otherwise the healthy, non-excluded accounts by priority (lower first),
    /// then by load (in-flight / concurrency), then config order. When every healthy account is
    /// busy, waits up to [`PoolOptions::slot_wait`](super::PoolOptions::slot_wait) for a slot.
    ///
    /// Errors: [`AccountsError::NoAccounts`]; [`AccountsError::AllUnavailable`] with
    /// `RateLimited` when every remaining account is cooling down after a 429, `Overloaded` when
    /// some cool down for another reason or all are busy past the wait, `Exhausted` when all are
    /// disabled or excluded; `retry_after` is the earliest cooldown end.
    pub async fn acquire(&self, selection: &Selection<'_>) -> Result<Lease, AccountsError> {
        if self.inner.accounts.is_empty() {
            return Err(AccountsError::NoAccounts);
        }
        let deadline = Instant::now() + self.inner.opts.slot_wait;
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (candidates, next_recovery) = match self.pick(selection) {
                Pick::Candidates(candidates, next_recovery) => (candidates, next_recovery),
                Pick::Unavailable(kind, retry_after) => {
                    return Err(AccountsError::AllUnavailable { kind, retry_after });
                }
            };
            for account in candidates {
                if !account.try_reserve() {
                    continue;
                }
                let mut shared = None;
                if let Some(slots) = &self.inner.opts.shared_slots {
                    let key = SharedSlots::key(account.name());
                    match slots
                        .store
                        .try_acquire_slot(&key, account.config.concurrency, slots.ttl)
                        .await
                    {
                        Ok(Some(token)) => shared = Some(token),
                        Ok(None) => {
                            account.in_flight.fetch_sub(1, Ordering::AcqRel);
                            continue;
                        }
                        Err(err) => {
                            tracing::warn!(account = %account.name(), error = %err, "shared concurrency slot unavailable; using the local limit only");
                        }
                    }
                }
                return Ok(Lease {
                    pool: Arc::clone(&self.inner),
                    account,
                    generation: AtomicU64::new(0),
                    shared,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AccountsError::AllUnavailable {
                    kind: Unavailable::Overloaded,
                    retry_after: Some(Duration::from_secs(1)),
                });
            }
            let mut wake = next_recovery.map_or(deadline, |t| t.min(deadline));
            if let Some(slots) = &self.inner.opts.shared_slots {
                wake = wake.min(now + slots.poll_interval);
            }
            tokio::select! {
                () = &mut released => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn pick(&self, selection: &Selection<'_>) -> Pick {
        let now = Instant::now();
        let mut healthy = Vec::new();
        let mut earliest: Option<Instant> = None;
        let mut cooling = 0usize;
        let mut cooling_rate_limited = 0usize;
        for account in &self.inner.accounts {
            if selection.exclude.iter().any(|e| e == account.name()) {
                continue;
            }
            match account.health().state(now) {
                AccountState::Ready => healthy.push(account),
                AccountState::CoolingDown {
                    kind, remaining, ..
                } => {
                    cooling += 1;
                    if kind == CooldownKind::RateLimited {
                        cooling_rate_limited += 1;
                    }
                    let until = now + remaining;
                    earliest = Some(earliest.map_or(until, |e| e.min(until)));
                }
                AccountState::Disabled { .. } => {}
            }
        }
        if healthy.is_empty() {
            let kind = if cooling == 0 {
                Unavailable::Exhausted
            } else if cooling_rate_limited == cooling {
                Unavailable::RateLimited
            } else {
                Unavailable::Overloaded
            };
            return Pick::Unavailable(kind, earliest.map(|e| e - now));
        }
        healthy.sort_by(|a, b| {
            let load = |x: &Account| {
                (
                    u64::from(x.in_flight.load(Ordering::Acquire)),
                    u64::from(x.config.concurrency.max(1)),
                )
            };
            let ((la, ca), (lb, cb)) = (load(a), load(b));
            a.config
                .priority
                .cmp(&b.config.priority)
                .then((la * cb).cmp(&(lb * ca)))
                .then(la.cmp(&lb))
                .then(a.index.cmp(&b.index))
        });
        if let Some(preferred) = selection.preferred
            && let Some(pos) = healthy.iter().position(|a| a.name() == preferred)
        {
            let sticky = healthy.remove(pos);
            healthy.insert(0, sticky);
        }
        Pick::Candidates(healthy.into_iter().cloned().collect(), earliest)
    }
}
