//! The account pool: selection, concurrency slots, cooldowns, availability.
//!
//! - this file: [`Pool`] itself (its accounts and shared state) and its construction;
//! - `options`: [`PoolOptions`] and [`SharedSlots`] (slots shared through the session store);
//! - `account`: one [`Account`], its health (cooldown, disabling, 403s, usage) and
//!   [`AccountState`];
//! - `select`: [`Selection`] and [`Pool::acquire`], which account serves an attempt;
//! - `lease`: the [`Lease`] on a concurrency slot and its [`Credential`];
//! - `outcome`: what an upstream error, stream failure or success does to an account
//!   (classification applied, cooldowns, the 429 storm detector);
//! - `status`: [`AccountStatus`] and the `/ready` and metrics views;
//! - `snapshot`: [`AccountSnapshot`], everything the admin API shows of an account
//!   (state, cooldown, in-flight, Codex usage, the last errors).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{AccountConfig, AccountKind, validate_accounts};
use crate::error::AccountsError;
use crate::oauth::OAuthTokens;

mod account;
mod lease;
mod options;
mod outcome;
mod select;
mod snapshot;
mod status;

use self::account::Health;
pub use self::{
    account::{Account, AccountState, UsageSnapshot},
    lease::{Credential, Lease, REFRESH_FAILURE_COOLDOWN},
    options::{DEFAULT_MAX_COOLDOWN, DEFAULT_SLOT_TTL, PoolOptions, SharedSlots},
    outcome::{STORM_THRESHOLD, STORM_WINDOW},
    select::Selection,
    snapshot::{AccountError, AccountSnapshot, LAST_ERRORS},
    status::AccountStatus,
};

#[derive(Debug)]
struct Inner {
    accounts: Vec<Arc<Account>>,
    released: Notify,
    opts: PoolOptions,
    storm: Mutex<VecDeque<Instant>>,
    /// Cooldowns cut to [`PoolOptions::max_cooldown`].
    capped: AtomicU64,
}

/// The pool of upstream accounts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// Builds the pool. Fails on the first invalid account; [`validate_accounts`] lists them all.
    pub fn new(accounts: Vec<AccountConfig>, opts: PoolOptions) -> Result<Self, AccountsError> {
        if let Some(problem) = validate_accounts(&accounts).into_iter().next() {
            return Err(problem);
        }
        let accounts = accounts
            .into_iter()
            .enumerate()
            .map(|(index, config)| {
                let oauth = (config.kind == AccountKind::Oauth)
                    .then(|| OAuthTokens::new(&config, &opts.oauth));
                Arc::new(Account {
                    config,
                    index,
                    in_flight: AtomicU32::new(0),
                    health: Mutex::new(Health::default()),
                    oauth,
                })
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                accounts,
                released: Notify::new(),
                opts,
                storm: Mutex::new(VecDeque::new()),
                capped: AtomicU64::new(0),
            }),
        })
    }

    /// The accounts in config order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.inner.accounts.iter().map(|a| a.as_ref())
    }

    /// The account with this name.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts().find(|a| a.name() == name)
    }
}
