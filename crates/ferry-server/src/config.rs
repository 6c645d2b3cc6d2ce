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

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// A credential: prints as `***` in `Debug` and `Display`, so it can't leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself; only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The whole gateway configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[gateway]`
    pub gateway: GatewayConfig,
    /// `[session]`
    pub session: SessionConfig,
    /// `[[client_keys]]`; empty means an open gateway (warned at start-up).
    pub client_keys: Vec<ClientKey>,
    /// `[[accounts]]`, in file order.
    pub accounts: Vec<AccountConfig>,
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
}

/// `[session]`
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where session bindings live.
    pub store: SessionStoreKind,
    /// Time to live of every binding.
    pub ttl: Duration,
}

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
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// Unique name, used in logs and metrics labels.
    pub name: String,
    /// Kind and credentials.
    pub kind: AccountKind,
    /// Lower is tried first.
    pub priority: i32,
    /// In-flight requests on this account.
    pub concurrency: u32,
    /// Optional http(s)/socks5 proxy URL.
    pub proxy: Option<Secret>,
    /// Pool-mode account (same-account retries).
    pub pool_mode: bool,
    /// Send `previous_response_id` when a binding exists.
    pub continuation: bool,
    /// What to do with a requested `service_tier`.
    pub service_tier_policy: ServiceTierPolicy,
    /// Model used when no mapping rule matches a Claude-family model.
    pub default_model: Option<String>,
    /// Client model (exact or with `*` globs) → upstream model, in file order.
    pub model_mapping: Vec<(String, String)>,
}

/// Account kind and its credentials.
#[derive(Debug, Clone)]
pub enum AccountKind {
    /// An OpenAI API key.
    ApiKey {
        /// Requests go to `{base_url}/responses`.
        base_url: String,
        /// The key.
        api_key: Secret,
    },
    /// A ChatGPT/Codex OAuth login.
    OAuth {
        /// Requests go to `{base_url}/responses`.
        base_url: String,
        /// Current access token, if any.
        access_token: Option<Secret>,
        /// Refresh token.
        refresh_token: Option<Secret>,
        /// Access-token expiry, unix seconds.
        expires_at: Option<i64>,
        /// `chatgpt-account-id` header.
        chatgpt_account_id: String,
        /// Token endpoint override.
        token_url: Option<String>,
    },
    /// The built-in simulated upstream, answered in process.
    Simulated,
}

impl AccountKind {
    /// `api_key`, `oauth` or `simulated`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApiKey { .. } => "api_key",
            Self::OAuth { .. } => "oauth",
            Self::Simulated => "simulated",
        }
    }
}

/// Per-account `service_tier` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceTierPolicy {
    /// Forward the tier (aliases canonicalised).
    #[default]
    Pass,
    /// Remove the tier.
    Filter,
    /// Refuse the request with 403.
    Block,
}

/// Default OpenAI API base URL.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default ChatGPT/Codex base URL for OAuth accounts.
pub const DEFAULT_CODEX_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";

impl Config {
    /// A loopback-only config for tests: listens on `127.0.0.1:0`, no client keys (open),
    /// one `simulated` account, in-memory sessions, short timeouts.
    pub fn for_tests() -> Self {
        Self {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_body_bytes: 1024 * 1024,
                shutdown_grace: Duration::from_secs(2),
            },
            gateway: GatewayConfig {
                stream_keepalive_interval: Some(Duration::from_secs(10)),
                stream_data_interval_timeout: Some(Duration::from_secs(10)),
                max_line_bytes: 1024 * 1024,
                max_account_switches: 3,
                upstream_connect_timeout: Duration::from_secs(2),
                upstream_header_timeout: Duration::from_secs(10),
            },
            session: SessionConfig {
                store: SessionStoreKind::Memory,
                ttl: Duration::from_secs(3600),
            },
            client_keys: Vec::new(),
            accounts: vec![AccountConfig::simulated("simulated")],
        }
    }

    /// Validates a raw config. Returns every problem found, not just the first.
    pub fn from_raw(raw: RawConfig) -> Result<Self, Vec<ConfigProblem>> {
        let mut p = Problems::default();
        let server = raw.server.validate(&mut p);
        let gateway = raw.gateway.validate(&mut p);
        let session = raw.session.validate(&mut p);
        let client_keys = validate_client_keys(raw.client_keys, &mut p);
        let accounts = validate_accounts(raw.accounts, &mut p);
        if p.0.is_empty() {
            Ok(Self {
                server,
                gateway,
                session,
                client_keys,
                accounts,
            })
        } else {
            Err(p.0)
        }
    }
}

impl AccountConfig {
    /// A `simulated` account with default settings.
    pub fn simulated(name: &str) -> Self {
        Self::with_kind(name, AccountKind::Simulated)
    }

    /// An `api_key` account for `base_url` with default settings.
    pub fn api_key(name: &str, base_url: &str, api_key: &str) -> Self {
        Self::with_kind(
            name,
            AccountKind::ApiKey {
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key: Secret::new(api_key),
            },
        )
    }

    fn with_kind(name: &str, kind: AccountKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            priority: 0,
            concurrency: 8,
            proxy: None,
            pool_mode: false,
            continuation: true,
            service_tier_policy: ServiceTierPolicy::Pass,
            default_model: None,
            model_mapping: Vec::new(),
        }
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
    /// `[[client_keys]]`
    pub client_keys: Vec<RawClientKey>,
    /// `[[accounts]]`
    pub accounts: Vec<RawAccount>,
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
}

/// `[[client_keys]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClientKey {
    /// Name for logs.
    pub name: Option<String>,
    /// The key.
    pub key: Option<String>,
}

/// `[[accounts]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccount {
    /// Unique name.
    pub name: Option<String>,
    /// `api_key` | `oauth` | `simulated`
    pub kind: Option<String>,
    /// `{base_url}/responses`
    pub base_url: Option<String>,
    /// api_key accounts.
    pub api_key: Option<String>,
    /// oauth accounts.
    pub access_token: Option<String>,
    /// oauth accounts.
    pub refresh_token: Option<String>,
    /// oauth accounts, unix seconds.
    pub expires_at: Option<i64>,
    /// oauth accounts.
    pub chatgpt_account_id: Option<String>,
    /// oauth accounts.
    pub token_url: Option<String>,
    /// default 0
    pub priority: Option<i32>,
    /// default 8
    pub concurrency: Option<u32>,
    /// empty = none
    pub proxy: Option<String>,
    /// default false
    pub pool_mode: Option<bool>,
    /// default true
    pub continuation: Option<bool>,
    /// `pass` (default) | `filter` | `block`
    pub service_tier_policy: Option<String>,
    /// optional
    pub default_model: Option<String>,
    /// client model → upstream model
    pub model_mapping: Option<BTreeMap<String, String>>,
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
        ServerConfig {
            listen,
            max_body_bytes,
            shutdown_grace,
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
        GatewayConfig {
            stream_keepalive_interval,
            stream_data_interval_timeout,
            max_line_bytes: usize::try_from(max_line).unwrap_or(usize::MAX),
            max_account_switches,
            upstream_connect_timeout,
            upstream_header_timeout,
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
        SessionConfig { store, ttl }
    }
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
        out.push(ClientKey {
            name,
            key: Secret::new(key),
        });
    }
    out
}

fn validate_url(p: &mut Problems, path: &str, url: &str) {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            if url.contains('?') || url.contains('#') {
                p.push(path, "must not contain a query or fragment");
            }
        }
        _ => p.push(
            path,
            format!("must be an http:// or https:// URL, got {url:?}"),
        ),
    }
}

fn validate_accounts(raw: Vec<RawAccount>, p: &mut Problems) -> Vec<AccountConfig> {
    let mut out: Vec<AccountConfig> = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("accounts[{i}].{key}");
        let name = a.name.unwrap_or_default().trim().to_owned();
        if name.is_empty() {
            p.push(at("name"), "is required");
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            p.push(
                at("name"),
                "may only contain ASCII letters, digits, '-', '_' and '.'",
            );
        } else if out.iter().any(|o| o.name == name) {
            p.push(at("name"), format!("duplicate account name {name:?}"));
        }
        let non_blank =
            |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let base_url = non_blank(a.base_url).map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &base_url {
            validate_url(p, &at("base_url"), u);
        }
        let kind_str = a
            .kind
            .as_deref()
            .map(str::trim)
            .unwrap_or("api_key")
            .to_owned();
        let kind = match kind_str.as_str() {
            "api_key" => {
                let key = non_blank(a.api_key).unwrap_or_default();
                check_unexpanded(p, &at("api_key"), &key);
                if key.is_empty() {
                    p.push(at("api_key"), "is required for kind = \"api_key\"");
                }
                for (k, v) in [
                    ("access_token", &a.access_token),
                    ("refresh_token", &a.refresh_token),
                ] {
                    if v.is_some() {
                        p.push(at(k), "only applies to kind = \"oauth\"");
                    }
                }
                AccountKind::ApiKey {
                    base_url: base_url.unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.to_owned()),
                    api_key: Secret::new(key),
                }
            }
            "oauth" => {
                let access_token = non_blank(a.access_token);
                let refresh_token = non_blank(a.refresh_token);
                for (k, v) in [
                    ("access_token", &access_token),
                    ("refresh_token", &refresh_token),
                ] {
                    if let Some(v) = v {
                        check_unexpanded(p, &at(k), v);
                    }
                }
                if access_token.is_none() && refresh_token.is_none() {
                    p.push(
                        at("access_token"),
                        "an oauth account needs access_token or refresh_token",
                    );
                }
                let chatgpt_account_id = non_blank(a.chatgpt_account_id).unwrap_or_default();
                if chatgpt_account_id.is_empty() {
                    p.push(at("chatgpt_account_id"), "is required for kind = \"oauth\"");
                }
                let token_url = non_blank(a.token_url);
                if let Some(u) = &token_url {
                    validate_url(p, &at("token_url"), u);
                }
                if a.api_key.is_some() {
                    p.push(at("api_key"), "only applies to kind = \"api_key\"");
                }
                AccountKind::OAuth {
                    base_url: base_url.unwrap_or_else(|| DEFAULT_CODEX_BASE_URL.to_owned()),
                    access_token: access_token.map(Secret::new),
                    refresh_token: refresh_token.map(Secret::new),
                    expires_at: a.expires_at,
                    chatgpt_account_id,
                    token_url,
                }
            }
            "simulated" => AccountKind::Simulated,
            other => {
                p.push(
                    at("kind"),
                    format!("must be \"api_key\", \"oauth\" or \"simulated\", got {other:?}"),
                );
                AccountKind::Simulated
            }
        };
        let concurrency = a.concurrency.unwrap_or(8);
        if !(1..=10_000).contains(&concurrency) {
            p.push(
                at("concurrency"),
                format!("must be between 1 and 10000, got {concurrency}"),
            );
        }
        let proxy = non_blank(a.proxy);
        if let Some(px) = &proxy {
            let ok = ["http://", "https://", "socks5://", "socks5h://"]
                .iter()
                .any(|s| px.starts_with(s));
            if !ok {
                p.push(
                    at("proxy"),
                    "must be an http://, https://, socks5:// or socks5h:// URL",
                );
            }
        }
        let service_tier_policy = match a
            .service_tier_policy
            .as_deref()
            .map(str::trim)
            .unwrap_or("pass")
        {
            "pass" => ServiceTierPolicy::Pass,
            "filter" => ServiceTierPolicy::Filter,
            "block" => ServiceTierPolicy::Block,
            other => {
                p.push(
                    at("service_tier_policy"),
                    format!("must be \"pass\", \"filter\" or \"block\", got {other:?}"),
                );
                ServiceTierPolicy::Pass
            }
        };
        let mut model_mapping = Vec::new();
        for (from, to) in a.model_mapping.unwrap_or_default() {
            if from.trim().is_empty() || to.trim().is_empty() {
                p.push(at("model_mapping"), "model names must not be empty");
            }
            if from.matches('*').count() > 1 {
                p.push(
                    at("model_mapping"),
                    format!("{from:?}: at most one '*' per pattern"),
                );
            }
            model_mapping.push((from.trim().to_owned(), to.trim().to_owned()));
        }
        out.push(AccountConfig {
            name,
            kind,
            priority: a.priority.unwrap_or(0),
            concurrency,
            proxy: proxy.map(Secret::new),
            pool_mode: a.pool_mode.unwrap_or(false),
            continuation: a.continuation.unwrap_or(true),
            service_tier_policy,
            default_model: non_blank(a.default_model),
            model_mapping,
        });
    }
    out
}
