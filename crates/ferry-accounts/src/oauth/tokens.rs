//! The tokens of one OAuth account: what is held (access and refresh token, expiry, account
//! id, refresh generation), when a token is usable, and the single-flight refresh that
//! replaces it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::jwt::jwt_claims;
use super::refresh::{
    DEFAULT_CLIENT_ID, DEFAULT_TOKEN_URL, RefreshFailure, TokenResponse, request_refresh,
};
use super::state::{PersistedTokens, config_seed, load_state, state_file, write_state};
use crate::classify::unix_now;
use crate::config::{AccountConfig, Secret};
use crate::error::AccountsError;

/// Refresh this long before the access token expires.
pub const DEFAULT_REFRESH_SKEW: Duration = Duration::from_secs(5 * 60);

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
        let outcome = request_refresh(&self.http, &self.token_url, &self.client_id, &refresh).await;
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
}
