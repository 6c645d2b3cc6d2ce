//! The gateway's typed, validated configuration.
//!
//! Two layers (ripgrep's low/high args, linkerd's `env.rs`):
//! - [`RawConfig`] mirrors the TOML file exactly (`deny_unknown_fields`, every key optional).
//!   `bins/ferry` builds it from the embedded defaults, the file and `FERRY_*` overrides,
//!   after `${NAME}` expansion.
//! - [`Config::from_raw`] checks everything and returns **all** problems at once as
//!   [`ConfigProblem`]s, or the typed [`Config`] the server runs on.
//!
//! Tests build a [`Config`] directly ([`Config::for_tests`]) and may use sub-second
//! durations that the file format does not allow.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// A credential: prints as `***` in `Debug` and `Display` (the account pool's type).
pub use ferry_accounts::Secret;

/// The whole gateway configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[gateway]`
    pub gateway: GatewayConfig,
    /// `[session]`
    pub session: SessionConfig,
    /// `[rate_limit]`
    pub rate_limit: RateLimitConfig,
    /// `[[client_keys]]`; empty means an open gateway (warned at start-up).
    pub client_keys: Vec<ClientKey>,
    /// `[[accounts]]`, in file order (validated).
    pub accounts: Vec<AccountConfig>,
    /// The built-in prices with the `[prices]` rows applied.
    pub prices: crate::cost::PriceTable,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Larger request bodies get 413 `request_too_large`.
    pub max_body_bytes: u64,
    /// How long in-flight requests may take to finish after shutdown was asked for.
    pub shutdown_grace: Duration,
    /// How long a client may take to send its whole request body.
    pub body_read_timeout: Duration,
    /// Client connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

/// `[gateway]`
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Anthropic `ping` after this much upstream silence; `None` = off.
    pub stream_keepalive_interval: Option<Duration>,
    /// Upstream silent this long is a failure; `None` = off.
    pub stream_data_interval_timeout: Option<Duration>,
    /// Longest upstream SSE line accepted.
    pub max_line_bytes: usize,
    /// Failover attempts per request.
    pub max_account_switches: u32,
    /// TCP/TLS connect timeout to the upstream.
    pub upstream_connect_timeout: Duration,
    /// Time from sending the upstream request to its response headers.
    pub upstream_header_timeout: Duration,
    /// A non-streaming client's answer, asked of the upstream as one JSON body: longest
    /// time from sending the request to the end of that body.
    pub upstream_json_timeout: Duration,
    /// Where refreshed OAuth credentials are kept across restarts (`None`: memory only).
    pub oauth_state_dir: Option<std::path::PathBuf>,
    /// OAuth accounts: template for the upstream `instructions` (gateway.md §4b).
    pub forced_codex_instructions_template: Option<String>,
    /// OAuth accounts: always present the Codex CLI user-agent.
    pub force_codex_cli: bool,
    /// Longest time a shared (Redis) concurrency slot is held before it frees itself, so a
    /// crashed replica cannot keep an account's slot forever.
    pub concurrency_slot_ttl: Duration,
}

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

/// `[rate_limit]`: how long accounts are benched.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Longest cooldown, whatever an upstream's `retry-after`, reset header or body asks for.
    pub max_cooldown: Duration,
    /// First bench of an API-key account after a 401; doubles per 401 in a row, to 10 min.
    pub unauthorized_backoff: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            max_cooldown: ferry_accounts::DEFAULT_MAX_COOLDOWN,
            unauthorized_backoff: ferry_accounts::DEFAULT_UNAUTHORIZED_BACKOFF,
        }
    }
}

/// Default `[session] redis_timeout_ms`.
const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a degraded Redis store is probed.
const DEFAULT_REDIS_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Default `[session] max_entries`: room for about 20,000 live sessions.
const DEFAULT_SESSION_MAX_ENTRIES: usize = 100_000;
/// Default `[session] max_thread_bytes` (8 MiB).
const DEFAULT_MAX_THREAD_BYTES: usize = 8 << 20;
/// Default `[session] max_bytes` (256 MiB).
const DEFAULT_SESSION_MAX_BYTES: usize = 256 << 20;

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

/// One `[[client_keys]]` entry.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// Name used in logs and usage records.
    pub name: String,
    /// The key clients present.
    pub key: Secret,
    /// Limits per day and month (empty: none).
    pub budget: crate::cost::Budget,
}

pub use ferry_accounts::{AccountConfig, AccountKind, ServiceTierPolicy};

impl Config {
    /// A loopback-only config for tests: listens on `127.0.0.1:0`, no client keys (open),
    /// one `simulated` account, in-memory sessions, short timeouts.
    pub fn for_tests() -> Self {
        Self {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_body_bytes: 1024 * 1024,
                shutdown_grace: Duration::from_secs(2),
                body_read_timeout: Duration::from_secs(2),
                max_connections: 4096,
            },
            gateway: GatewayConfig {
                stream_keepalive_interval: Some(Duration::from_secs(10)),
                stream_data_interval_timeout: Some(Duration::from_secs(10)),
                max_line_bytes: 1024 * 1024,
                max_account_switches: 3,
                upstream_connect_timeout: Duration::from_secs(2),
                upstream_header_timeout: Duration::from_secs(10),
                upstream_json_timeout: Duration::from_secs(30),
                oauth_state_dir: None,
                forced_codex_instructions_template: None,
                force_codex_cli: false,
                concurrency_slot_ttl: Duration::from_secs(1800),
            },
            session: SessionConfig {
                store: SessionStoreKind::Memory,
                ttl: Duration::from_secs(3600),
                max_entries: DEFAULT_SESSION_MAX_ENTRIES,
                max_bytes: DEFAULT_SESSION_MAX_BYTES,
                redis_timeout: DEFAULT_REDIS_TIMEOUT,
                redis_probe_interval: DEFAULT_REDIS_PROBE_INTERVAL,
                max_thread_bytes: DEFAULT_MAX_THREAD_BYTES,
            },
            rate_limit: RateLimitConfig::default(),
            client_keys: Vec::new(),
            accounts: vec![simulated_account("simulated")],
            prices: crate::cost::PriceTable::default(),
        }
    }

    /// Validates a raw config. Returns every problem found, not just the first.
    pub fn from_raw(raw: RawConfig) -> Result<Self, Vec<ConfigProblem>> {
        let mut p = Problems::default();
        let server = raw.server.validate(&mut p);
        let gateway = raw.gateway.validate(&mut p);
        let session = raw.session.validate(&mut p);
        let rate_limit = raw.rate_limit.validate(&mut p);
        let client_keys = validate_client_keys(raw.client_keys, &mut p);
        let accounts = validate_accounts(raw.accounts, gateway.oauth_state_dir.is_some(), &mut p);
        let prices = validate_prices(raw.prices, &mut p);
        if p.0.is_empty() {
            Ok(Self {
                server,
                gateway,
                session,
                rate_limit,
                client_keys,
                accounts,
                prices,
            })
        } else {
            Err(p.0)
        }
    }
}

/// A `simulated` account (the built-in upstream, answered in process) with defaults.
pub fn simulated_account(name: &str) -> AccountConfig {
    AccountConfig {
        kind: AccountKind::Simulated,
        base_url: None,
        api_key: None,
        ..AccountConfig::api_key(name, "", ferry_accounts::Secret::new(""))
    }
}

/// One thing wrong with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `accounts[1].base_url`.
    pub path: String,
    /// What is wrong (lowercase, no secret values).
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

// ---------------------------------------------------------------------------------------
// Raw layer: the TOML file, key for key.

/// The config file as written (after `${NAME}` expansion). Unknown keys are an error;
/// every key is optional and defaults as documented in `interface.md`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `[server]`
    pub server: RawServer,
    /// `[gateway]`
    pub gateway: RawGateway,
    /// `[session]`
    pub session: RawSession,
    /// `[rate_limit]`
    pub rate_limit: RawRateLimit,
    /// `[[client_keys]]`
    pub client_keys: Vec<RawClientKey>,
    /// `[[accounts]]`
    pub accounts: Vec<AccountConfig>,
    /// `[prices."MODEL"]`: USD per million tokens, replacing or adding to the built-in table
    pub prices: std::collections::BTreeMap<String, RawPrice>,
}

/// `[prices."MODEL"]` as written (USD per million tokens).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrice {
    /// uncached input (required)
    pub input: Option<f64>,
    /// cached input (default: `input`)
    pub cached_input: Option<f64>,
    /// output (required)
    pub output: Option<f64>,
    /// prompts above this many tokens use the `long_*` prices
    pub long_context_threshold: Option<u64>,
    /// long-context uncached input
    pub long_input: Option<f64>,
    /// long-context cached input
    pub long_cached_input: Option<f64>,
    /// long-context output
    pub long_output: Option<f64>,
}

/// `[client_keys.budget]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBudget {
    /// tokens (prompt + output) per UTC day
    pub daily_tokens: Option<u64>,
    /// tokens per UTC month
    pub monthly_tokens: Option<u64>,
    /// USD per UTC day
    pub daily_usd: Option<f64>,
    /// USD per UTC month
    pub monthly_usd: Option<f64>,
}

/// `[server]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// default `127.0.0.1:8080`
    pub listen: Option<String>,
    /// default 32 MiB
    pub max_body_bytes: Option<u64>,
    /// default 30
    pub shutdown_grace_secs: Option<u64>,
    /// default 60; 1..=3600
    pub body_read_timeout_secs: Option<u64>,
    /// default 4096; 1..=1000000
    pub max_connections: Option<u64>,
}

/// `[gateway]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    /// default 10; 0 = off; else 5..=300
    pub stream_keepalive_interval_secs: Option<u64>,
    /// default 180; 0 = off; else 30..=3600
    pub stream_data_interval_timeout_secs: Option<u64>,
    /// default 40 MiB; 64 KiB..=1 GiB
    pub max_line_bytes: Option<u64>,
    /// default 3; at most 100
    pub max_account_switches: Option<u32>,
    /// default 10; 1..=300
    pub upstream_connect_timeout_secs: Option<u64>,
    /// default 300; 1..=3600
    pub upstream_header_timeout_secs: Option<u64>,
    /// default 600; 1..=3600
    pub upstream_json_timeout_secs: Option<u64>,
    /// optional directory for refreshed OAuth credentials
    pub oauth_state_dir: Option<String>,
    /// optional OAuth instructions template (`{{ .ExistingInstructions }}` …)
    pub forced_codex_instructions_template: Option<String>,
    /// default false
    pub force_codex_cli: Option<bool>,
    /// default 1800; 60..=86400 (shared concurrency slots, `[session] store = "redis"`)
    pub concurrency_slot_ttl_secs: Option<u64>,
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

/// `[rate_limit]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimit {
    /// default 7200; 1..=86400
    pub max_cooldown_secs: Option<u64>,
    /// default 30; 1..=600
    pub unauthorized_backoff_secs: Option<u64>,
}

impl RawRateLimit {
    fn validate(self, p: &mut Problems) -> RateLimitConfig {
        let default = RateLimitConfig::default();
        let max_cooldown = secs_in(
            p,
            "rate_limit.max_cooldown_secs",
            self.max_cooldown_secs,
            default.max_cooldown.as_secs(),
            1..=86_400,
            false,
        )
        .unwrap_or(default.max_cooldown);
        let unauthorized_backoff = secs_in(
            p,
            "rate_limit.unauthorized_backoff_secs",
            self.unauthorized_backoff_secs,
            default.unauthorized_backoff.as_secs(),
            1..=600,
            false,
        )
        .unwrap_or(default.unauthorized_backoff);
        RateLimitConfig {
            max_cooldown,
            unauthorized_backoff,
        }
    }
}

/// `[[client_keys]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClientKey {
    /// Name for logs.
    pub name: Option<String>,
    /// The key.
    pub key: Option<String>,
    /// Optional limits per UTC day and month.
    pub budget: Option<RawBudget>,
}

const MIB: u64 = 1024 * 1024;

fn secs_in(
    p: &mut Problems,
    path: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    zero_off: bool,
) -> Option<Duration> {
    let v = value.unwrap_or(default);
    if v == 0 && zero_off {
        return None;
    }
    if !range.contains(&v) {
        let off = if zero_off { "0 (off) or " } else { "" };
        p.push(
            path,
            format!(
                "must be {off}between {} and {} seconds, got {v}",
                range.start(),
                range.end()
            ),
        );
    }
    Some(Duration::from_secs(v))
}

/// A count or size within `range` (else a problem, and the default).
fn int_in(
    p: &mut Problems,
    path: &str,
    value: Option<u64>,
    default: usize,
    range: std::ops::RangeInclusive<u64>,
) -> usize {
    let Some(v) = value else {
        return default;
    };
    match usize::try_from(v) {
        Ok(n) if range.contains(&v) => n,
        _ => {
            p.push(
                path,
                format!(
                    "must be between {} and {}, got {v}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

fn check_unexpanded(p: &mut Problems, path: &str, value: &str) {
    if value.contains("${") {
        p.push(
            path,
            "contains an unexpanded ${...} reference (environment variable not set?)",
        );
    }
}

impl RawServer {
    fn validate(self, p: &mut Problems) -> ServerConfig {
        let listen_raw = self.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = match listen_raw.trim().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.push(
                    "server.listen",
                    format!("not a socket address (host:port): {listen_raw:?}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(32 * MIB);
        if !(1024..=1024 * MIB).contains(&max_body_bytes) {
            p.push(
                "server.max_body_bytes",
                format!(
                    "must be between 1024 and {}, got {max_body_bytes}",
                    1024 * MIB
                ),
            );
        }
        let shutdown_grace = secs_in(
            p,
            "server.shutdown_grace_secs",
            self.shutdown_grace_secs,
            30,
            0..=3600,
            false,
        )
        .unwrap_or_default();
        let body_read_timeout = secs_in(
            p,
            "server.body_read_timeout_secs",
            self.body_read_timeout_secs,
            60,
            1..=3600,
            false,
        )
        .unwrap_or(Duration::from_secs(60));
        let max_connections = self.max_connections.unwrap_or(4096);
        if !(1..=1_000_000).contains(&max_connections) {
            p.push(
                "server.max_connections",
                format!("must be between 1 and 1000000, got {max_connections}"),
            );
        }
        ServerConfig {
            listen,
            max_body_bytes,
            shutdown_grace,
            body_read_timeout,
            max_connections: usize::try_from(max_connections.clamp(1, 1_000_000)).unwrap_or(4096),
        }
    }
}

impl RawGateway {
    fn validate(self, p: &mut Problems) -> GatewayConfig {
        let stream_keepalive_interval = secs_in(
            p,
            "gateway.stream_keepalive_interval_secs",
            self.stream_keepalive_interval_secs,
            10,
            5..=300,
            true,
        );
        let stream_data_interval_timeout = secs_in(
            p,
            "gateway.stream_data_interval_timeout_secs",
            self.stream_data_interval_timeout_secs,
            180,
            30..=3600,
            true,
        );
        let max_line = self.max_line_bytes.unwrap_or(40 * MIB);
        if !(64 * 1024..=1024 * MIB).contains(&max_line) {
            p.push(
                "gateway.max_line_bytes",
                format!("must be between 65536 and {}, got {max_line}", 1024 * MIB),
            );
        }
        let max_account_switches = self.max_account_switches.unwrap_or(3);
        if max_account_switches > 100 {
            p.push(
                "gateway.max_account_switches",
                format!("must be at most 100, got {max_account_switches}"),
            );
        }
        let upstream_connect_timeout = secs_in(
            p,
            "gateway.upstream_connect_timeout_secs",
            self.upstream_connect_timeout_secs,
            10,
            1..=300,
            false,
        )
        .unwrap_or_default();
        let upstream_header_timeout = secs_in(
            p,
            "gateway.upstream_header_timeout_secs",
            self.upstream_header_timeout_secs,
            300,
            1..=3600,
            false,
        )
        .unwrap_or_default();
        let upstream_json_timeout = secs_in(
            p,
            "gateway.upstream_json_timeout_secs",
            self.upstream_json_timeout_secs,
            600,
            1..=3600,
            false,
        )
        .unwrap_or_default();
        let oauth_state_dir = self
            .oauth_state_dir
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if let Some(d) = &oauth_state_dir {
            check_unexpanded(p, "gateway.oauth_state_dir", d);
        }
        let concurrency_slot_ttl = secs_in(
            p,
            "gateway.concurrency_slot_ttl_secs",
            self.concurrency_slot_ttl_secs,
            1800,
            60..=86_400,
            false,
        )
        .unwrap_or_default();
        GatewayConfig {
            stream_keepalive_interval,
            stream_data_interval_timeout,
            max_line_bytes: usize::try_from(max_line).unwrap_or(usize::MAX),
            max_account_switches,
            upstream_connect_timeout,
            upstream_header_timeout,
            upstream_json_timeout,
            oauth_state_dir: oauth_state_dir.map(std::path::PathBuf::from),
            forced_codex_instructions_template: self
                .forced_codex_instructions_template
                .filter(|t| !t.trim().is_empty()),
            force_codex_cli: self.force_codex_cli.unwrap_or(false),
            concurrency_slot_ttl,
        }
    }
}

impl RawSession {
    fn validate(self, p: &mut Problems) -> SessionConfig {
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

fn validate_budget(raw: Option<RawBudget>, i: usize, p: &mut Problems) -> crate::cost::Budget {
    let Some(b) = raw else {
        return crate::cost::Budget::default();
    };
    for (field, v) in [("daily_usd", b.daily_usd), ("monthly_usd", b.monthly_usd)] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            p.push(
                format!("client_keys[{i}].budget.{field}"),
                format!("must be a positive number of USD, got {v}"),
            );
        }
    }
    for (field, v) in [
        ("daily_tokens", b.daily_tokens),
        ("monthly_tokens", b.monthly_tokens),
    ] {
        if v == Some(0) {
            p.push(
                format!("client_keys[{i}].budget.{field}"),
                "must be at least 1 (leave it out for no limit)",
            );
        }
    }
    crate::cost::Budget {
        daily_tokens: b.daily_tokens,
        monthly_tokens: b.monthly_tokens,
        daily_usd: b.daily_usd,
        monthly_usd: b.monthly_usd,
    }
}

fn validate_prices(
    raw: std::collections::BTreeMap<String, RawPrice>,
    p: &mut Problems,
) -> crate::cost::PriceTable {
    let mut rows = Vec::new();
    for (model, r) in raw {
        let path = |f: &str| format!("prices.{model:?}.{f}");
        let mut num = |f: &str, v: Option<f64>, required: bool| -> f64 {
            match v {
                Some(v) if v.is_finite() && v >= 0.0 => v,
                Some(v) => {
                    p.push(path(f), format!("must be a USD price >= 0, got {v}"));
                    0.0
                }
                None => {
                    if required {
                        p.push(path(f), "is required (USD per million tokens)");
                    }
                    0.0
                }
            }
        };
        let input = num("input", r.input, true);
        let output = num("output", r.output, true);
        let cached_input = r
            .cached_input
            .map_or(input, |v| num("cached_input", Some(v), false));
        let long_context = match r.long_context_threshold {
            Some(threshold) => {
                let long_input = num("long_input", r.long_input, true);
                let long_output = num("long_output", r.long_output, true);
                let long_cached = r
                    .long_cached_input
                    .map_or(long_input, |v| num("long_cached_input", Some(v), false));
                Some((
                    threshold,
                    crate::cost::LongPrice {
                        input: long_input,
                        cached_input: long_cached,
                        output: long_output,
                    },
                ))
            }
            None => {
                if r.long_input.is_some()
                    || r.long_output.is_some()
                    || r.long_cached_input.is_some()
                {
                    p.push(
                        path("long_context_threshold"),
                        "is required with long_* prices",
                    );
                }
                None
            }
        };
        rows.push((
            model,
            crate::cost::Price {
                input,
                cached_input,
                output,
                long_context,
            },
        ));
    }
    crate::cost::PriceTable::with_overrides(rows)
}

fn validate_client_keys(raw: Vec<RawClientKey>, p: &mut Problems) -> Vec<ClientKey> {
    let mut out: Vec<ClientKey> = Vec::with_capacity(raw.len());
    for (i, k) in raw.into_iter().enumerate() {
        let name = k.name.unwrap_or_default().trim().to_owned();
        if name.is_empty() {
            p.push(format!("client_keys[{i}].name"), "is required");
        } else if out.iter().any(|o| o.name == name) {
            p.push(
                format!("client_keys[{i}].name"),
                format!("duplicate client key name {name:?}"),
            );
        }
        let key = k.key.unwrap_or_default();
        check_unexpanded(p, &format!("client_keys[{i}].key"), &key);
        if key.trim().is_empty() {
            p.push(
                format!("client_keys[{i}].key"),
                "is required and must not be empty",
            );
        } else if key.trim() != key {
            p.push(
                format!("client_keys[{i}].key"),
                "must not start or end with whitespace",
            );
        } else if out.iter().any(|o| o.key.expose() == key) {
            p.push(
                format!("client_keys[{i}].key"),
                "the same key is configured twice",
            );
        }
        let budget = validate_budget(k.budget, i, p);
        out.push(ClientKey {
            name,
            key: Secret::new(key),
            budget,
        });
    }
    out
}

fn validate_accounts(
    raw: Vec<AccountConfig>,
    has_state_dir: bool,
    p: &mut Problems,
) -> Vec<AccountConfig> {
    for (i, a) in raw.iter().enumerate() {
        let blank = |s: &Option<ferry_accounts::Secret>| {
            s.as_ref().is_none_or(ferry_accounts::Secret::is_blank)
        };
        if a.is_oauth() && blank(&a.access_token) && blank(&a.refresh_token) && !has_state_dir {
            p.push(
                format!("accounts[{i}].access_token"),
                "an OAuth account needs an access_token or a refresh_token, or gateway.oauth_state_dir holding a `ferry login`",
            );
        }
        for problem in a.validate() {
            match problem {
                ferry_accounts::AccountsError::InvalidConfig { field, problem, .. } => {
                    p.push(format!("accounts[{i}].{field}"), problem);
                }
                other => p.push(format!("accounts[{i}]"), other.to_string()),
            }
        }
        if raw[..i].iter().any(|o| o.name == a.name) {
            p.push(
                format!("accounts[{i}].name"),
                format!("duplicate account name {:?}", a.name),
            );
        }
        let secrets = [
            ("api_key", a.api_key.as_ref()),
            ("access_token", a.access_token.as_ref()),
            ("refresh_token", a.refresh_token.as_ref()),
        ];
        for (field, secret) in secrets {
            if let Some(v) = secret {
                check_unexpanded(p, &format!("accounts[{i}].{field}"), v.expose());
            }
        }
        if let Some(url) = &a.base_url {
            check_unexpanded(p, &format!("accounts[{i}].base_url"), url);
        }
    }
    raw
}
