//! Process-wide state shared by every request.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ferry_accounts::{Pool, PoolOptions, SharedSlots};
use ferry_session::{MemoryLimits, SessionConfig, Sessions, StoreConfig, ThreadConfig, Threads};
use tokio::sync::watch;

use crate::config::{Config, SessionStoreKind};
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::upstream::HttpClients;

/// Everything a request handler needs. Built at start-up, and again from a new config on
/// reload ([`Live`]): a request keeps the state it started with, so a reload never changes
/// the rules under an in-flight stream. The metrics, the shutdown signal, the session store
/// and (when its timeouts did not change) the upstream clients are shared across reloads.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: Arc<Shutdown>,
    pub(crate) pool: Pool,
    pub(crate) sessions: Arc<Sessions>,
    /// The session store itself, for its health (`/ready`, metrics).
    pub(crate) store: Arc<dyn ferry_session::Store>,
    /// Message threads, in the same store as the sessions.
    pub(crate) threads: Arc<Threads>,
    pub(crate) http: Arc<HttpClients>,
    /// Cuts every known secret out of upstream text (see [`crate::redact`]).
    pub(crate) redactor: crate::redact::Redactor,
    /// Writes captures (`[capture]`); `None` when capture is off.
    pub(crate) capturer: Option<crate::capture::Capturer>,
}

/// Reads the configuration again, as at start-up (`ferry serve`: the file, `FERRY_*` and
/// the flags): what a reload, on `SIGHUP` or `POST {admin}/api/reload`, takes effect from.
/// Its problems are already worded for the operator (no secret in them).
pub type ConfigSource =
    Arc<dyn Fn() -> Result<Config, Vec<crate::config::ConfigProblem>> + Send + Sync>;

/// What one reload from the [`ConfigSource`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReloadReport {
    /// True when the new config is the running one.
    pub applied: bool,
    /// Changes that take effect only on restart (listen address, session store).
    pub notes: Vec<String>,
    /// Why the config was refused: its problems (the running config is kept).
    pub problems: Vec<crate::config::ConfigProblem>,
    /// Why the config was refused although valid (the accounts cannot be built), or that
    /// there is no source to reload from.
    pub error: Option<String>,
}

/// The current [`AppState`], swapped whole by a reload (`std` `RwLock<Arc<…>>`: readers
/// hold the lock only to clone the `Arc`, once per request).
pub(crate) struct Live {
    current: RwLock<Arc<AppState>>,
    /// The built-in simulated upstream, when an account uses it.
    sim: crate::embedded_sim::SimSlot,
    /// Where a reload reads the config from (set by `ferry serve`).
    source: RwLock<Option<ConfigSource>>,
    /// One reload at a time (`SIGHUP` and the admin API may ask together).
    reloading: std::sync::Mutex<()>,
}

impl Live {
    pub(crate) fn new(state: Arc<AppState>, sim: crate::embedded_sim::SimSlot) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(state),
            sim,
            source: RwLock::new(None),
            reloading: std::sync::Mutex::new(()),
        })
    }

    pub(crate) fn set_source(&self, source: ConfigSource) {
        *self.source.write().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    /// Reads the config from the source and makes it current when it is valid: the one
    /// reload behind `SIGHUP` and `POST {admin}/api/reload`. Logs what it did.
    pub(crate) fn reload_from_source(&self) -> ReloadReport {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let source = self
            .source
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(source) = source else {
            return ReloadReport {
                error: Some(
                    "no config source: this server was not started by `ferry serve`".to_owned(),
                ),
                ..ReloadReport::default()
            };
        };
        match source() {
            Ok(config) => match self.reload(config) {
                Ok(notes) => {
                    let current = self.get();
                    tracing::info!(target: "ferry::server", accounts = current.config.accounts.len(), client_keys = current.config.client_keys.len(), "config reloaded");
                    for note in &notes {
                        tracing::warn!(target: "ferry::server", "{note}");
                    }
                    ReloadReport {
                        applied: true,
                        notes,
                        ..ReloadReport::default()
                    }
                }
                Err(e) => {
                    tracing::error!(target: "ferry::server", error = %e, "config reload refused; keeping the running config");
                    ReloadReport {
                        error: Some(e.to_string()),
                        ..ReloadReport::default()
                    }
                }
            },
            Err(problems) => {
                for p in &problems {
                    tracing::error!(target: "ferry::server", problem = %p, "config problem");
                }
                tracing::error!(target: "ferry::server", problems = problems.len(), "config reload refused; keeping the running config");
                ReloadReport {
                    problems,
                    ..ReloadReport::default()
                }
            }
        }
    }

    /// The state a new request runs with.
    pub(crate) fn get(&self) -> Arc<AppState> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Builds the state for `config` and makes it current. The old state lives on in the
    /// requests that hold it. Returns the changes that only take effect on restart.
    pub(crate) fn reload(&self, mut config: Config) -> Result<Vec<String>, StartError> {
        self.sim.resolve(&mut config)?;
        let (next, notes) = self.get().reloaded(config)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(notes)
    }
}

impl AppState {
    /// The budget of the client key named `client`, when it has one.
    pub(crate) fn budget(&self, client: &str) -> Option<&crate::prices::Budget> {
        self.config
            .client_keys
            .iter()
            .find(|k| k.name == client)
            .map(|k| &k.budget)
            .filter(|b| !b.is_empty())
    }
}

impl AppState {
    pub(crate) async fn new(config: Config) -> Result<Arc<Self>, StartError> {
        let metrics = Metrics::new();
        for reason in ferry_session::MissReason::ALL
            .into_iter()
            .chain(ferry_session::MissReason::REFINED)
        {
            metrics.cache_miss_total.inc_by([reason.as_str()], 0);
        }
        for result in ["created", "continued", "not_found", "too_large", "stored"] {
            metrics.threads_total.inc_by([result], 0);
        }
        for result in ["sent", "not_found", "unsupported"] {
            metrics.continuations_total.inc_by([result], 0);
        }
        let store_config = match &config.session.store {
            SessionStoreKind::Memory => StoreConfig::Memory(MemoryLimits {
                max_entries: config.session.max_entries,
                max_total_bytes: config.session.max_bytes,
                ..MemoryLimits::default()
            }),
            SessionStoreKind::Redis { url } => StoreConfig::Redis(ferry_session::RedisConfig {
                op_timeout: config.session.redis_timeout,
                response_timeout: config.session.redis_timeout,
                probe_interval: config.session.redis_probe_interval,
                ..ferry_session::RedisConfig::new(url.expose())
            }),
        };
        let store = ferry_session::open(&store_config)
            .await
            .map_err(|e| StartError::Startup(format!("session store: {e}")))?;
        let threads = Arc::new(Threads::new(
            Arc::clone(&store),
            ThreadConfig {
                ttl: config.session.ttl,
                max_thread_bytes: config.session.max_thread_bytes,
                ..ThreadConfig::default()
            },
        ));
        let sessions = Arc::new(Sessions::new(
            Arc::clone(&store),
            SessionConfig {
                ttl: config.session.ttl,
                ..SessionConfig::default()
            },
        ));
        let pool = pool_for(&config, &store)?;
        let http = Arc::new(HttpClients::new(
            config.gateway.upstream_connect_timeout,
            config.gateway.upstream_header_timeout,
        ));
        let redactor = crate::redact::Redactor::from_config(&config);
        let capturer = crate::capture::Capturer::start(&config.capture)?;
        let state = Arc::new(Self {
            config,
            metrics: Arc::new(metrics),
            shutdown: Arc::new(Shutdown::new()),
            pool,
            sessions,
            store,
            threads,
            http,
            redactor,
            capturer,
        });
        state.refresh_account_gauges();
        Ok(state)
    }

    /// The state for a reloaded `config`: new client keys, accounts (a new pool: benches and
    /// in-flight counts start afresh, a rotated key is used at once), model mappings, limits
    /// and timeouts; the session store stays. Also returns what changed that needs a restart.
    fn reloaded(&self, config: Config) -> Result<(Arc<Self>, Vec<String>), StartError> {
        let mut notes = Vec::new();
        if config.server.listen != self.config.server.listen {
            notes.push(format!(
                "server.listen changed: still listening on {} until restart",
                self.config.server.listen
            ));
        }
        let old = &self.config.session;
        let new = &config.session;
        if new.store != old.store
            || new.ttl != old.ttl
            || new.max_entries != old.max_entries
            || new.max_bytes != old.max_bytes
            || new.redis_timeout != old.redis_timeout
            || new.max_thread_bytes != old.max_thread_bytes
        {
            notes.push("[session] changed: the session store is kept until restart".to_owned());
        }
        let pool = pool_for(&config, &self.store)?;
        let timeouts = |c: &Config| {
            (
                c.gateway.upstream_connect_timeout,
                c.gateway.upstream_header_timeout,
            )
        };
        let http = if timeouts(&config) == timeouts(&self.config) {
            Arc::clone(&self.http)
        } else {
            Arc::new(HttpClients::new(
                config.gateway.upstream_connect_timeout,
                config.gateway.upstream_header_timeout,
            ))
        };
        let redactor = crate::redact::Redactor::from_config(&config);
        let capturer = crate::capture::Capturer::start(&config.capture)?;
        let state = Arc::new(Self {
            config,
            metrics: Arc::clone(&self.metrics),
            shutdown: Arc::clone(&self.shutdown),
            pool,
            sessions: Arc::clone(&self.sessions),
            store: Arc::clone(&self.store),
            threads: Arc::clone(&self.threads),
            http,
            redactor,
            capturer,
        });
        // Accounts that were removed stop being reported as available.
        for old in self.pool.statuses() {
            if state.pool.account(&old.name).is_none() {
                state.metrics.account_available.set([old.name.as_str()], 0);
            }
        }
        state.refresh_account_gauges();
        Ok((state, notes))
    }

    /// Accounts that can take traffic now.
    pub(crate) fn available_accounts(&self) -> usize {
        self.pool
            .statuses()
            .iter()
            .filter(|s| s.available())
            .count()
    }

    /// Sets `ferry_account_available{account}` and the Codex usage gauges from the pool.
    pub(crate) fn refresh_account_gauges(&self) {
        if let Some(b) = self.store.breaker_stats() {
            let m = &self.metrics;
            m.session_store_degraded.set([], i64::from(b.degraded));
            m.session_store_trips_total.set_total([], b.trips);
            m.session_store_local_ops_total.set_total([], b.local_ops);
            m.session_store_reconciled_total.set_total([], b.reconciled);
        }
        self.metrics
            .cooldown_cap_seconds
            .set([], self.pool.max_cooldown().as_secs_f64());
        self.metrics
            .cooldowns_capped_total
            .set_total([], self.pool.cooldowns_capped());
        for s in self.pool.statuses() {
            self.metrics
                .account_available
                .set([s.name.as_str()], i64::from(s.available()));
        }
        let now = tokio::time::Instant::now();
        for (account, snapshot) in self.pool.codex_usage() {
            let elapsed = now.saturating_duration_since(snapshot.observed_at);
            let windows = [
                ("5h", snapshot.usage.five_hour),
                ("7d", snapshot.usage.seven_day),
            ];
            for (window, w) in windows {
                let Some(w) = w else { continue };
                let labels = [account.as_str(), window];
                if let Some(percent) = w.used_percent {
                    self.metrics.codex_usage_percent.set(labels, percent);
                }
                if let Some(reset) = w.reset_after_seconds {
                    let left = Duration::from_secs(reset).saturating_sub(elapsed);
                    self.metrics
                        .codex_usage_reset_seconds
                        .set(labels, left.as_secs_f64());
                }
            }
        }
    }

    /// Whether some account can serve `model`: a simulated account serves everything; a
    /// real one needs the model to map to a non-Claude upstream model.
    pub(crate) fn serves_model(&self, model: &str) -> bool {
        self.config
            .accounts
            .iter()
            .any(|a| !crate::models::is_unmapped(&a.route_model(model).upstream))
    }
}

/// The account pool for `config` on `store`.
fn pool_for(config: &Config, store: &Arc<dyn ferry_session::Store>) -> Result<Pool, StartError> {
    // With a Redis store, every replica counts an account's in-flight requests in one
    // place, so `concurrency` is a limit for the whole deployment, not per process.
    let shared_slots =
        matches!(config.session.store, SessionStoreKind::Redis { .. }).then(|| SharedSlots {
            ttl: config.gateway.concurrency_slot_ttl,
            ..SharedSlots::new(Arc::clone(store))
        });
    let mut pool_opts = PoolOptions {
        shared_slots,
        max_cooldown: config.rate_limit.max_cooldown,
        unauthorized_backoff: config.rate_limit.unauthorized_backoff,
        ..PoolOptions::default()
    };
    pool_opts
        .oauth
        .state_dir
        .clone_from(&config.gateway.oauth_state_dir);
    Pool::new(config.accounts.clone(), pool_opts)
        .map_err(|e| StartError::Startup(format!("accounts: {e}")))
}

/// Tells open streams that the shutdown grace period is over.
pub(crate) struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    pub(crate) fn force_close(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once [`Shutdown::force_close`] was called.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }
}
