//! ChatGPT/Codex OAuth access tokens: refresh before expiry and after a 401, single flight,
//! refreshed credentials persisted to a state file.
//!
//! **Persistence.** When a `state_dir` is configured, every successful refresh writes
//! `{state_dir}/oauth-{account}.json` atomically (temporary file + rename, mode 0600). The file
//! records a fingerprint of the *configured* refresh token it descends from; at start-up it is
//! used only when that fingerprint matches, so editing the config with a fresh login wins over a
//! stale file, while a restart keeps a rotated refresh token. Without a `state_dir`, refreshed
//! tokens live in memory only (a warning is logged at start-up for accounts with a refresh
//! token).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::classify::unix_now;
use crate::config::{AccountConfig, Secret};
use crate::error::AccountsError;

/// The OpenAI OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The Codex CLI's OAuth client id, sent with refresh requests.
pub const DEFAULT_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Refresh this long before the access token expires.
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(5 * 60);
/// Timeout of one refresh request.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Options shared by the OAuth accounts of a pool.
#[derive(Clone, Debug)]
pub struct OAuthOptions {
    /// Client for token refreshes.
    pub http: reqwest::Client,
    /// Where refreshed credentials are persisted (`None`: memory only).
    pub state_dir: Option<PathBuf>,
    /// Refresh this long before expiry.
    pub refresh_skew: Duration,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        Self {
            http: reqwest::Client::new(),
            state_dir: None,
            refresh_skew: DEFAULT_REFRESH_SKEW,
        }
    }
}

/// An access token handed to one request.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// The ChatGPT account id (config, else the token's JWT claim).
    pub chatgpt_account_id: Option<String>,
    /// Which refresh generation this token belongs to (for [`OAuthTokens::invalidate`]).
    pub generation: u64,
    /// The refresh token current with it (it rotates on refresh), so a caller can redact
    /// it from upstream text by value.
    pub refresh_token: Option<Secret>,
}

#[derive(Clone, Debug)]
struct RefreshFailure {
    status: Option<u16>,
    reason: String,
    permanent: bool,
}

#[derive(Debug)]
struct TokenState {
    access: Option<Secret>,
    refresh: Option<Secret>,
    expires_at: Option<u64>,
    account_id: Option<String>,
    generation: u64,
    invalidated: bool,
    /// Counts refresh attempts, so callers that waited on one share its outcome.
    attempts: u64,
    last_failure: Option<RefreshFailure>,
}

impl TokenState {
    fn usable(&self, now: u64, skew: Duration) -> Option<AccessToken> {
        let token = self.access.as_ref().filter(|t| !t.is_blank())?;
        if self.invalidated {
            return None;
        }
        if let Some(exp) = self.expires_at
            && now.saturating_add(skew.as_secs()) >= exp
        {
            return None;
        }
        Some(self.handout(token))
    }

    /// The current token if it has not actually expired yet (used when a refresh inside the
    /// skew window fails).
    fn still_valid(&self, now: u64) -> Option<AccessToken> {
        let token = self.access.as_ref().filter(|t| !t.is_blank())?;
        if self.invalidated || self.expires_at.is_some_and(|exp| now >= exp) {
            return None;
        }
        Some(self.handout(token))
    }

    fn handout(&self, token: &Secret) -> AccessToken {
        AccessToken {
            token: token.clone(),
            chatgpt_account_id: self.account_id.clone(),
            generation: self.generation,
            refresh_token: self.refresh.clone(),
        }
    }
}

/// The tokens of one OAuth account.
#[derive(Debug)]
pub struct OAuthTokens {
    account: String,
    token_url: String,
    client_id: String,
    http: reqwest::Client,
    skew: Duration,
    state_file: Option<PathBuf>,
    seed: String,
    state: Mutex<TokenState>,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// What is written to the state file. Secrets are plain here: the file is mode 0600.
#[derive(Serialize, Deserialize)]
struct PersistedTokens {
    version: u32,
    account: String,
    seed: String,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<u64>,
    chatgpt_account_id: Option<String>,
    updated_at: u64,
}

impl OAuthTokens {
    /// Sets up the tokens of an OAuth account, loading persisted credentials when the state file
    /// descends from the configured refresh token.
    pub fn new(config: &AccountConfig, opts: &OAuthOptions) -> Self {
        let non_blank = |s: &Option<Secret>| s.clone().filter(|s| !s.is_blank());
        let configured_refresh = non_blank(&config.refresh_token);
        let configured_access = non_blank(&config.access_token);
        let seed = config_seed(config);
        let state_file = opts
            .state_dir
            .as_ref()
            .map(|dir| state_file(dir, &config.name));
        let mut state = TokenState {
            expires_at: config.expires_at.map(|e| e.0).or_else(|| {
                configured_access
                    .as_ref()
                    .and_then(|t| jwt_claims(t.expose())?.exp)
            }),
            account_id: config
                .chatgpt_account_id
                .clone()
                .filter(|a| !a.trim().is_empty())
                .or_else(|| {
                    configured_access
                        .as_ref()
                        .and_then(|t| jwt_claims(t.expose())?.account_id)
                }),
            access: configured_access,
            refresh: configured_refresh,
            generation: 0,
            invalidated: false,
            attempts: 0,
            last_failure: None,
        };
        if let Some(path) = &state_file {
            match load_state(path) {
                Ok(Some(saved)) if saved.seed == seed && saved.account == config.name => {
                    tracing::info!(account = %config.name, "loaded refreshed oauth credentials from the state file");
                    state.access = saved.access_token.map(Secret::new).or(state.access);
                    state.refresh = saved.refresh_token.map(Secret::new).or(state.refresh);
                    state.expires_at = saved.expires_at;
                    if config.chatgpt_account_id.is_none() {
                        state.account_id = saved.chatgpt_account_id.or(state.account_id);
                    }
                }
                Ok(Some(_)) => {
                    tracing::info!(account = %config.name, "ignoring oauth state file from a different login");
                }
                Ok(None) if state.access.is_none() && state.refresh.is_none() => {
                    tracing::warn!(account = %config.name, "oauth account has no tokens yet: run `ferry login {}`", config.name);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(account = %config.name, error = %err, "cannot read oauth state file; using configured tokens");
                }
            }
        } else if state.refresh.is_some() {
            tracing::warn!(account = %config.name, "no state_dir: refreshed oauth tokens are kept in memory only and lost on restart");
        }
        Self {
            account: config.name.clone(),
            token_url: config
                .token_url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned()),
            client_id: config
                .client_id
                .clone()
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
            http: opts.http.clone(),
            skew: opts.refresh_skew,
            state_file,
            seed,
            state: Mutex::new(state),
            refresh_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// True when a refresh token is available.
    pub fn has_refresh_token(&self) -> bool {
        self.lock().refresh.is_some()
    }

    /// The ChatGPT account id, if known.
    pub fn chatgpt_account_id(&self) -> Option<String> {
        self.lock().account_id.clone()
    }

    /// The refresh generation (bumped by each successful refresh).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the token of `generation` as rejected (after an upstream 401): the next
    /// [`Self::access_token`] refreshes. A stale generation (already refreshed) is ignored, so
    /// many concurrent 401s cause one refresh.
    pub fn invalidate(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.invalidated = true;
        }
    }

    /// A usable access token, refreshing first when it expires within the skew or was
    /// invalidated. Concurrent callers share one refresh request (single flight), including its
    /// failure.
    pub async fn access_token(&self) -> Result<AccessToken, AccountsError> {
        let seen_attempts = {
            let state = self.lock();
            if let Some(token) = state.usable(unix_now(), self.skew) {
                return Ok(token);
            }
            state.attempts
        };
        let _flight = self.refresh_lock.lock().await;
        let refresh = {
            let state = self.lock();
            if let Some(token) = state.usable(unix_now(), self.skew) {
                return Ok(token);
            }
            if state.attempts != seen_attempts
                && let Some(failure) = &state.last_failure
            {
                return state
                    .still_valid(unix_now())
                    .ok_or_else(|| self.error(failure));
            }
            match &state.refresh {
                Some(refresh) => refresh.clone(),
                None => {
                    return state.still_valid(unix_now()).ok_or_else(|| {
                        AccountsError::MissingCredential {
                            account: self.account.clone(),
                        }
                    });
                }
            }
        };
        let outcome = self.request_refresh(&refresh).await;
        let (token, persisted) = self.record_refresh(outcome)?;
        if let (Some(path), Some(persisted)) = (self.state_file.clone(), persisted) {
            self.persist(path, persisted).await;
        }
        Ok(token)
    }

    /// Stores the outcome of a refresh attempt; on success returns the new token and what to
    /// persist.
    fn record_refresh(
        &self,
        outcome: Result<TokenResponse, RefreshFailure>,
    ) -> Result<(AccessToken, Option<PersistedTokens>), AccountsError> {
        let mut state = self.lock();
        state.attempts += 1;
        let fresh = match outcome {
            Ok(fresh) => fresh,
            Err(failure) => {
                tracing::warn!(account = %self.account, status = ?failure.status, reason = %failure.reason, permanent = failure.permanent, "oauth token refresh failed");
                let error = self.error(&failure);
                let fallback = state.still_valid(unix_now()).filter(|_| !failure.permanent);
                state.last_failure = Some(failure);
                return match fallback {
                    Some(token) => Ok((token, None)),
                    None => Err(error),
                };
            }
        };
        let now = unix_now();
        let claims = jwt_claims(&fresh.access_token);
        state.expires_at = fresh
            .expires_in
            .map(|secs| now.saturating_add(secs))
            .or_else(|| claims.as_ref().and_then(|c| c.exp));
        if let Some(id) = claims.and_then(|c| c.account_id) {
            state.account_id.get_or_insert(id);
        }
        state.access = Some(Secret::new(fresh.access_token));
        if let Some(rotated) = fresh.refresh_token.filter(|r| !r.trim().is_empty()) {
            state.refresh = Some(Secret::new(rotated));
        }
        state.generation += 1;
        state.invalidated = false;
        state.last_failure = None;
        let token =
            state
                .usable(now, Duration::ZERO)
                .ok_or_else(|| AccountsError::TokenRefresh {
                    account: self.account.clone(),
                    status: None,
                    reason: "token endpoint returned an already expired token".into(),
                    permanent: false,
                })?;
        tracing::info!(account = %self.account, generation = token.generation, "oauth access token refreshed");
        Ok((token, self.snapshot(&state, now)))
    }

    fn error(&self, failure: &RefreshFailure) -> AccountsError {
        AccountsError::TokenRefresh {
            account: self.account.clone(),
            status: failure.status,
            reason: failure.reason.clone(),
            permanent: failure.permanent,
        }
    }

    fn snapshot(&self, state: &TokenState, now: u64) -> Option<PersistedTokens> {
        self.state_file.as_ref()?;
        Some(PersistedTokens {
            version: 1,
            account: self.account.clone(),
            seed: self.seed.clone(),
            access_token: state.access.as_ref().map(|s| s.expose().to_owned()),
            refresh_token: state.refresh.as_ref().map(|s| s.expose().to_owned()),
            expires_at: state.expires_at,
            chatgpt_account_id: state.account_id.clone(),
            updated_at: now,
        })
    }

    async fn persist(&self, path: PathBuf, tokens: PersistedTokens) {
        let written = tokio::task::spawn_blocking(move || write_state(&path, &tokens)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(account = %self.account, error = %err, "cannot persist refreshed oauth credentials");
            }
            Err(err) => {
                tracing::error!(account = %self.account, error = %err, "oauth state writer failed");
            }
        }
    }

    async fn request_refresh(&self, refresh: &Secret) -> Result<TokenResponse, RefreshFailure> {
        let body = serde_json::json!({
            "client_id": self.client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh.expose(),
            "scope": "openid profile email",
        });
        let transient = |reason: &str| RefreshFailure {
            status: None,
            reason: reason.to_owned(),
            permanent: false,
        };
        let response = self
            .http
            .post(&self.token_url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .timeout(REFRESH_TIMEOUT)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                transient(if e.is_timeout() {
                    "token endpoint timed out"
                } else {
                    "cannot reach the token endpoint"
                })
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| transient("token endpoint response was cut off"))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return json
                .and_then(|v| serde_json::from_value::<TokenResponse>(v).ok())
                .filter(|t| !t.access_token.trim().is_empty())
                .ok_or(RefreshFailure {
                    status: Some(status),
                    reason: "token endpoint returned no access token".into(),
                    permanent: false,
                });
        }
        let code = json.as_ref().and_then(oauth_error_code);
        let permanent = matches!(status, 400 | 401 | 403)
            && code.as_deref().is_some_and(|c| {
                matches!(
                    c,
                    "invalid_grant"
                        | "invalid_client"
                        | "unauthorized_client"
                        | "refresh_token_expired"
                        | "refresh_token_reused"
                        | "refresh_token_invalidated"
                        | "token_revoked"
                )
            });
        Err(RefreshFailure {
            status: Some(status),
            reason: code.unwrap_or_else(|| format!("token endpoint answered {status}")),
            permanent,
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The OAuth error code of a token-endpoint error body, restricted to safe characters.
fn oauth_error_code(body: &Value) -> Option<String> {
    let code = body
        .get("error")
        .and_then(|e| e.as_str().or_else(|| e.get("code").and_then(Value::as_str)))
        .or_else(|| body.get("code").and_then(Value::as_str))?;
    let safe: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    (!safe.is_empty()).then_some(safe)
}

fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(format!("ferry-oauth-seed\0{secret}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) struct JwtClaims {
    pub(crate) exp: Option<u64>,
    pub(crate) account_id: Option<String>,
}

/// Reads `exp` and the ChatGPT account id from a JWT's payload (no signature check: these
/// only steer refresh timing and a header; the upstream verifies the token).
pub(crate) fn jwt_claims(token: &str) -> Option<JwtClaims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(JwtClaims {
        exp: claims.get("exp").and_then(Value::as_u64),
        account_id: claims
            .get("https://api.openai.com/auth")
            .and_then(|a| a.get("chatgpt_account_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The state file of an account: `{state_dir}/oauth-{account}.json`.
pub fn state_file(state_dir: &Path, account: &str) -> PathBuf {
    state_dir.join(format!("oauth-{account}.json"))
}

/// The seed a state file must carry to be used with this account's config: a fingerprint of
/// the configured refresh token, else access token, else of nothing (a login-only account).
fn config_seed(config: &AccountConfig) -> String {
    let non_blank = |s: &Option<Secret>| s.clone().filter(|s| !s.is_blank());
    fingerprint(
        non_blank(&config.refresh_token)
            .or_else(|| non_blank(&config.access_token))
            .as_ref()
            .map_or("", Secret::expose),
    )
}

/// Writes the tokens of a login (`ferry login`, `ferry import-codex-auth`) as the account's
/// state file (atomically, mode 0600), so the gateway uses them at its next start. The file is
/// bound to the account's current config tokens like a refreshed one: putting other tokens in
/// the config later makes the config win.
pub fn store_login(
    state_dir: &Path,
    config: &AccountConfig,
    tokens: &crate::login::LoginTokens,
) -> Result<PathBuf, AccountsError> {
    let path = state_file(state_dir, &config.name);
    let persisted = PersistedTokens {
        version: 1,
        account: config.name.clone(),
        seed: config_seed(config),
        access_token: Some(tokens.access_token.expose().to_owned()),
        refresh_token: tokens.refresh_token.as_ref().map(|s| s.expose().to_owned()),
        expires_at: tokens.expires_at,
        chatgpt_account_id: config
            .chatgpt_account_id
            .clone()
            .or_else(|| tokens.chatgpt_account_id.clone()),
        updated_at: unix_now(),
    };
    write_state(&path, &persisted)?;
    Ok(path)
}

fn load_state(path: &Path) -> Result<Option<PersistedTokens>, AccountsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AccountsError::StateFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| AccountsError::StateFile {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, err.to_string()),
        })
}

/// Writes the state file atomically: a 0600 temporary file in the same directory, synced, then
/// renamed over the old one.
fn write_state(path: &Path, tokens: &PersistedTokens) -> Result<(), AccountsError> {
    use std::io::Write as _;
    let fail = |source| AccountsError::StateFile {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let json = serde_json::to_vec_pretty(tokens).map_err(|e| {
        fail(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.to_string(),
        ))
    })?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}
