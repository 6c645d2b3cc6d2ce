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
//!
//! One file per section, each holding the section as written (`Raw…`), as validated, and
//! the check between them: `server`, `gateway`, `session`, `rate_limit`, `capture`, `client_keys`,
//! `prices`, `accounts`, `admin`; `problems` holds the problem report and the checks they share.

mod accounts;
mod admin;
mod capture;
mod client_keys;
mod gateway;
mod prices;
mod problems;
mod rate_limit;
mod server;
mod session;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use self::admin::{AdminConfig, AdminKey, DEFAULT_ADMIN_PATH, RawAdmin, RawAdminKey};
pub use self::capture::{
    CaptureConfig, CaptureMode, DEFAULT_CAPTURE_DIR, DEFAULT_CAPTURE_MAX_BODY_BYTES,
    DEFAULT_CAPTURE_MAX_BYTES, RawCapture,
};
pub use self::client_keys::{ClientKey, RawBudget, RawClientKey};
pub use self::gateway::{GatewayConfig, RawGateway};
pub use self::prices::RawPrice;
pub use self::problems::{ConfigProblem, Problems};
pub use self::rate_limit::{RateLimitConfig, RawRateLimit};
pub use self::server::{RawServer, ServerConfig};
pub use self::session::{RawSession, SessionConfig, SessionStoreKind};
/// A credential: prints as `***` in `Debug` and `Display` (the account pool's type).
pub use ferry_accounts::Secret;
pub use ferry_accounts::{AccountConfig, AccountKind, ServiceTierPolicy};

use self::accounts::validate_accounts;
use self::client_keys::validate_client_keys;
use self::prices::validate_prices;
use self::session::{
    DEFAULT_MAX_THREAD_BYTES, DEFAULT_REDIS_PROBE_INTERVAL, DEFAULT_REDIS_TIMEOUT,
    DEFAULT_SESSION_MAX_BYTES, DEFAULT_SESSION_MAX_ENTRIES,
};

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
    /// `[capture]`
    pub capture: CaptureConfig,
    /// `[[client_keys]]`; empty means an open gateway (warned at start-up).
    pub client_keys: Vec<ClientKey>,
    /// `[[accounts]]`, in file order (validated).
    pub accounts: Vec<AccountConfig>,
    /// The built-in prices with the `[prices]` rows applied.
    pub prices: crate::prices::PriceTable,
    /// `[admin]`: the admin API and dashboard (off without `[[admin.keys]]`).
    pub admin: AdminConfig,
}

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
            capture: CaptureConfig::default(),
            client_keys: Vec::new(),
            accounts: vec![simulated_account("simulated")],
            prices: crate::prices::PriceTable::default(),
            admin: AdminConfig::default(),
        }
    }

    /// Validates a raw config. Returns every problem found, not just the first.
    pub fn from_raw(raw: RawConfig) -> Result<Self, Vec<ConfigProblem>> {
        let mut p = Problems::default();
        let server = raw.server.validate(&mut p);
        let gateway = raw.gateway.validate(&mut p);
        let session = raw.session.validate(&mut p);
        let rate_limit = raw.rate_limit.validate(&mut p);
        let capture = raw.capture.validate(&mut p);
        let client_keys = validate_client_keys(raw.client_keys, &mut p);
        let accounts = validate_accounts(raw.accounts, gateway.oauth_state_dir.is_some(), &mut p);
        let prices = validate_prices(raw.prices, &mut p);
        let admin = raw.admin.validate(&client_keys, &mut p);
        if p.0.is_empty() {
            Ok(Self {
                server,
                gateway,
                session,
                rate_limit,
                capture,
                client_keys,
                accounts,
                prices,
                admin,
            })
        } else {
            Err(p.0)
        }
    }
}

/// A simulated account: an API-key account on the built-in simulated upstream
/// ([`SIMULATED_BASE_URL`], pointed at a loopback `ferry-sim` when the gateway
/// starts) that serves every model name (as `default_model = "simulated"`).
pub fn simulated_account(name: &str) -> AccountConfig {
    let mut account = AccountConfig::api_key(
        name,
        SIMULATED_BASE_URL,
        ferry_accounts::Secret::new(SIMULATED_API_KEY),
    );
    account.default_model = Some(SIMULATED_MODEL.to_owned());
    account
}

/// The `base_url` that names the built-in simulated upstream (`kind = "simulated"` in a
/// config file becomes an API-key account with it). The `.invalid` top-level domain never
/// resolves, so an account with it that somehow skipped resolution fails loudly.
pub const SIMULATED_BASE_URL: &str = "http://ferry-sim.invalid/v1";

/// The API key a simulated account sends (the simulator checks none).
pub const SIMULATED_API_KEY: &str = "sk-ferry-simulated";
/// The upstream model name a simulated account maps every model to.
pub const SIMULATED_MODEL: &str = "simulated";
/// The config file as written (after `${NAME}` expansion). Unknown keys are an error;
/// every key is optional, with the default `bins/ferry/src/defaults.toml` lists (a test of
/// the `ferry` binary keeps the two the same).
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
    /// `[capture]`
    pub capture: RawCapture,
    /// `[[client_keys]]`
    pub client_keys: Vec<RawClientKey>,
    /// `[[accounts]]`
    pub accounts: Vec<AccountConfig>,
    /// `[prices."MODEL"]`: USD per million tokens, replacing or adding to the built-in table
    pub prices: std::collections::BTreeMap<String, RawPrice>,
    /// `[admin]`
    pub admin: RawAdmin,
}
