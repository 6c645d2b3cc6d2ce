//! Account configuration: what the server's `[[accounts]]` table deserialises into.
//!
//! Config is strict (`deny_unknown_fields`): a typo in a key is an error at start-up.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::catalog::ModelOverrides;
use crate::error::AccountsError;
use crate::model::ModelMapping;

/// A credential (API key or token). `Debug` and `Display` print `***`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for an empty (or whitespace-only) secret.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
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

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// How an account authenticates upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// An OpenAI API key (`Authorization: Bearer sk-…`), requests to `{base_url}/responses`.
    ApiKey,
    /// A ChatGPT/Codex OAuth login (access + refresh token), requests to the Codex backend.
    Oauth,
}

impl AccountKind {
    /// The config spelling (`api_key`, `oauth`, `simulated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Oauth => "oauth",
        }
    }
}

/// What the account does with a request's `service_tier` (docs/models.md § Fast mode and
/// service tiers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTierPolicy {
    /// Send it (aliases rewritten to the canonical tier).
    #[default]
    Pass,
    /// Remove it from the upstream body.
    Filter,
    /// Refuse the request (the server answers 403 `permission_error`).
    Block,
}

/// An absolute expiry time, as Unix seconds.
///
/// Accepted in config as an integer (Unix seconds), an RFC 3339 string
/// (`"2026-05-01T12:00:00Z"`), or a TOML datetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiresAt(pub u64);

impl<'de> Deserialize<'de> for ExpiresAt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
            TomlDatetime {
                #[serde(rename = "$__toml_private_datetime")]
                value: String,
            },
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Int(secs) => return Ok(Self(secs)),
            Raw::Text(text) | Raw::TomlDatetime { value: text } => text,
        };
        parse_rfc3339(&text).map(Self).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expires_at: expected Unix seconds or an RFC 3339 time, got {text:?}"
            ))
        })
    }
}

/// Parses an RFC 3339 timestamp (`2026-05-01T12:00:00Z`, `…+02:00`, fractional seconds allowed)
/// into Unix seconds. Returns `None` for anything else or for times before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let (sign, hhmm) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let (h, m) = hhmm.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn default_concurrency() -> u32 {
    8
}

/// The Codex CLI version ferry presents to the Codex backend by default: the newest Codex
/// CLI release when this was written (`npm view @openai/codex version`, 2026-12-02). The
/// backend refuses old clients for newer models (0.144.0 for GPT-5.6; below 0.148.0 at
/// times), so ferry presents a current one; accounts set their own with
/// `codex_client_version`.
pub const CODEX_CLI_VERSION: &str = "0.171.0";
/// The oldest calling Codex client whose version ferry follows; an older one is presented
/// as the configured (or default) version.
pub const CODEX_MIN_CLIENT_VERSION: &str = "0.148.0";

/// Pool-mode same-account retry settings of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolRetry {
    /// Statuses retried on the same account (`[]` disables status-based retries).
    pub status_codes: Vec<u16>,
    /// Maximum same-account retries per request.
    pub count: u32,
}

/// One upstream account (`[[accounts]]` in the config file; each field is a key, and an
/// unknown key is an error).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AccountConfig {
    /// Unique name; used in logs, metrics labels and sticky bindings.
    pub name: String,
    /// `api_key` or `oauth` (a config file's `kind = "simulated"` is an `api_key` account on
    /// the built-in simulated upstream).
    pub kind: AccountKind,
    /// Upstream base URL. Requests go to `{base_url}/responses`.
    /// Defaults: `https://api.openai.com/v1` (API key), `https://chatgpt.com/backend-api/codex` (OAuth).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API key (`kind = "api_key"`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Lower is tried first.
    #[serde(default)]
    pub priority: i32,
    /// Maximum in-flight requests on this account.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Optional http(s)/socks5 proxy URL; empty means none.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Pool mode: the upstream is itself a pool; some errors are retried on the same account.
    #[serde(default)]
    pub pool_mode: bool,
    /// Statuses retried on the same account in pool mode (default `[401, 403, 429]`; `[]` disables).
    #[serde(default)]
    pub pool_mode_retry_status_codes: Option<Vec<u16>>,
    /// Same-account retries in pool mode (default 3).
    #[serde(default)]
    pub pool_mode_retry_count: Option<u32>,
    /// Continue sessions with `previous_response_id` (API-key accounts, GPT-5/Codex
    /// models; default off). When on, ferry sends `store: true` so the upstream keeps each
    /// response and the next turn can send only its new items: less bandwidth, and the
    /// reasoning stays at the provider. The price is that the provider stores the
    /// conversation (a privacy choice). Prompt caching works either way
    /// (`prompt_cache_key` with an append-only prompt); off sends `store: false` and the
    /// full history every turn.
    #[serde(default)]
    pub continuation: bool,
    /// `pass`, `filter` or `block` for the request's `service_tier`.
    #[serde(default)]
    pub service_tier_policy: ServiceTierPolicy,
    /// Upstream model for Claude-family models that no `model_mapping` rule matches.
    #[serde(default)]
    pub default_model: Option<String>,
    /// Requested model → upstream model. Keys may contain `*` globs; an exact key wins,
    /// then the most specific glob.
    #[serde(default)]
    pub model_mapping: ModelMapping,
    /// Overrides for upstream models ferry cannot know, keyed by model id or `*` glob
    /// (`[accounts.models."acme-coder-*"]`, see docs/models.md).
    #[serde(default)]
    pub models: ModelOverrides,
    /// OAuth: the current access token.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// OAuth: the refresh token.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// OAuth: when the access token expires (else read from the token's JWT `exp`).
    #[serde(default)]
    pub expires_at: Option<ExpiresAt>,
    /// OAuth: the ChatGPT account id (else read from the access token's JWT claims).
    #[serde(default)]
    pub chatgpt_account_id: Option<String>,
    /// OAuth: the token endpoint (default `https://auth.openai.com/oauth/token`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// OAuth: the client id sent with refresh requests (default: the Codex CLI's).
    #[serde(default)]
    pub client_id: Option<String>,
    /// OAuth: the Codex client version presented to the backend (default
    /// [`CODEX_CLI_VERSION`]); a calling Codex client's own version is followed
    /// when it is at least [`CODEX_MIN_CLIENT_VERSION`].
    #[serde(default)]
    pub codex_client_version: Option<String>,
}

/// Default same-account retry statuses in pool mode.
pub const DEFAULT_POOL_RETRY_STATUSES: [u16; 3] = [401, 403, 429];
/// Default same-account retry count in pool mode.
pub const DEFAULT_POOL_RETRY_COUNT: u32 = 3;

impl AccountConfig {
    /// A minimal API-key account, handy for tests and embedders.
    pub fn api_key(name: impl Into<String>, base_url: impl Into<String>, key: Secret) -> Self {
        Self {
            base_url: Some(base_url.into()),
            api_key: Some(key),
            ..Self::empty(name.into(), AccountKind::ApiKey)
        }
    }

    /// A minimal OAuth account, handy for tests and embedders.
    pub fn oauth(
        name: impl Into<String>,
        access_token: Secret,
        refresh_token: Option<Secret>,
    ) -> Self {
        Self {
            access_token: Some(access_token),
            refresh_token,
            ..Self::empty(name.into(), AccountKind::Oauth)
        }
    }

    fn empty(name: String, kind: AccountKind) -> Self {
        Self {
            name,
            kind,
            base_url: None,
            api_key: None,
            priority: 0,
            concurrency: default_concurrency(),
            proxy: None,
            pool_mode: false,
            pool_mode_retry_status_codes: None,
            pool_mode_retry_count: None,
            continuation: false,
            service_tier_policy: ServiceTierPolicy::Pass,
            default_model: None,
            model_mapping: ModelMapping::default(),
            models: ModelOverrides::default(),
            access_token: None,
            refresh_token: None,
            expires_at: None,
            chatgpt_account_id: None,
            token_url: None,
            client_id: None,
            codex_client_version: None,
        }
    }

    /// The backend this account's requests go to.
    pub fn backend(&self) -> crate::catalog::Backend {
        match self.kind {
            AccountKind::Oauth => crate::catalog::Backend::Codex,
            AccountKind::ApiKey => crate::catalog::Backend::Api,
        }
    }

    /// The catalog entry for an upstream model on this account: the built-in table with
    /// the account's `models` overrides applied (`None` for a model neither knows).
    pub fn model_spec(&self, upstream_model: &str) -> Option<crate::catalog::ModelSpec> {
        self.models.spec(upstream_model, self.backend())
    }

    /// Whether requests for this upstream model go out in the Codex Responses Lite shape:
    /// OAuth accounts only, as the catalog (or the account's `models` override) says.
    pub fn responses_lite(&self, upstream_model: &str) -> bool {
        self.kind == AccountKind::Oauth
            && self
                .model_spec(upstream_model)
                .is_some_and(|s| s.responses_lite)
    }

    /// True for OAuth (ChatGPT/Codex) accounts.
    pub fn is_oauth(&self) -> bool {
        self.kind == AccountKind::Oauth
    }

    /// The proxy URL, if a non-empty one is configured.
    pub fn proxy_url(&self) -> Option<&str> {
        self.proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// Pool-mode same-account retry settings, or `None` when pool mode is off.
    pub fn pool_retry(&self) -> Option<PoolRetry> {
        self.pool_mode.then(|| PoolRetry {
            status_codes: self
                .pool_mode_retry_status_codes
                .clone()
                .unwrap_or_else(|| DEFAULT_POOL_RETRY_STATUSES.to_vec()),
            count: self
                .pool_mode_retry_count
                .unwrap_or(DEFAULT_POOL_RETRY_COUNT),
        })
    }

    /// Every problem with this account's config (empty when it is valid).
    pub fn validate(&self) -> Vec<AccountsError> {
        let mut problems = Vec::new();
        let mut bad = |field: &'static str, problem: String| {
            problems.push(AccountsError::InvalidConfig {
                account: self.name.clone(),
                field,
                problem,
            });
        };
        if !is_valid_name(&self.name) {
            bad(
                "name",
                "must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit"
                    .into(),
            );
        }
        if self.concurrency == 0 {
            bad("concurrency", "must be at least 1".into());
        }
        if let Some(url) = &self.base_url
            && let Some(problem) = http_url_problem(url)
        {
            bad("base_url", problem);
        }
        if let Some(url) = &self.token_url
            && let Some(problem) = http_url_problem(url)
        {
            bad("token_url", problem);
        }
        if let Some(proxy) = self.proxy_url()
            && reqwest::Proxy::all(proxy).is_err()
        {
            bad("proxy", "is not a valid proxy URL".into());
        }
        if let Some(codes) = &self.pool_mode_retry_status_codes
            && let Some(code) = codes.iter().find(|c| !(100..=599).contains(*c))
        {
            bad(
                "pool_mode_retry_status_codes",
                format!("{code} is not an HTTP status"),
            );
        }
        if let Some(model) = &self.default_model
            && model.trim().is_empty()
        {
            bad("default_model", "must not be empty".into());
        }
        for (from, to) in self.model_mapping.rules() {
            if from.trim().is_empty() || to.trim().is_empty() {
                bad("model_mapping", "keys and values must not be empty".into());
                break;
            }
        }
        if let Some(v) = &self.codex_client_version {
            let ok = {
                let core = v.trim();
                !core.is_empty()
                    && core
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            };
            if !ok {
                bad(
                    "codex_client_version",
                    format!("must be a dotted version such as {CODEX_CLI_VERSION}"),
                );
            } else if !version_at_least(v.trim(), CODEX_MIN_CLIENT_VERSION) {
                bad(
                    "codex_client_version",
                    format!(
                        "{} is older than {}, which the Codex backend refuses",
                        v.trim(),
                        CODEX_MIN_CLIENT_VERSION
                    ),
                );
            }
        }
        match self.kind {
            AccountKind::ApiKey => {
                if self.api_key.as_ref().is_none_or(Secret::is_blank) {
                    bad("api_key", "is required for kind = \"api_key\"".into());
                }
            }
            // An OAuth account may name no token: `ferry login` puts them in the OAuth state
            // directory (the server's config check requires that directory then).
            AccountKind::Oauth => {}
        }
        if self.kind != AccountKind::ApiKey && self.api_key.is_some() {
            bad(
                "api_key",
                format!("is not used by kind = \"{}\"", self.kind.as_str()),
            );
        }
        if self.kind != AccountKind::Oauth {
            let oauth_only: [(&'static str, bool); 7] = [
                ("codex_client_version", self.codex_client_version.is_some()),
                ("access_token", self.access_token.is_some()),
                ("refresh_token", self.refresh_token.is_some()),
                ("expires_at", self.expires_at.is_some()),
                ("chatgpt_account_id", self.chatgpt_account_id.is_some()),
                ("token_url", self.token_url.is_some()),
                ("client_id", self.client_id.is_some()),
            ];
            for (field, set) in oauth_only {
                if set {
                    bad(field, "is only used by kind = \"oauth\"".into());
                }
            }
        }
        problems
    }
}

/// Validates a whole account list: each account, plus unique names.
pub fn validate_accounts(accounts: &[AccountConfig]) -> Vec<AccountsError> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for account in accounts {
        problems.extend(account.validate());
        if !seen.insert(account.name.as_str()) {
            problems.push(AccountsError::InvalidConfig {
                account: account.name.clone(),
                field: "name",
                problem: "is used by more than one account".into(),
            });
        }
    }
    problems
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn http_url_problem(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Some("must start with http:// or https://".into()),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => Some("has no host".into()),
        Some(rest) if rest.contains(char::is_whitespace) => {
            Some("must not contain whitespace".into())
        }
        Some(_) => None,
    }
}

/// True when dotted version `v` (pre-release suffix ignored) is ≥ `min`; false if unparsable.
pub(crate) fn version_at_least(v: &str, min: &str) -> bool {
    fn parts(v: &str) -> Option<Vec<u64>> {
        let core = v.split(['-', '+']).next()?;
        core.split('.').map(|p| p.parse().ok()).collect()
    }
    match (parts(v), parts(min)) {
        (Some(a), Some(b)) => {
            let len = a.len().max(b.len());
            let pad = |x: &[u64]| {
                (0..len)
                    .map(|i| x.get(i).copied().unwrap_or(0))
                    .collect::<Vec<_>>()
            };
            pad(&a) >= pad(&b)
        }
        _ => false,
    }
}
