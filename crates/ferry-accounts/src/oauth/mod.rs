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
//!
//! - `tokens`: [`OAuthTokens`], the token state of one account and the single-flight refresh
//!   (its result persisted through `state`);
//! - `refresh`: the refresh request to the token endpoint and how its failures are judged;
//! - `state`: the state file ([`state_file`], [`store_login`]) and its atomic writes;
//! - `jwt`: the claims ferry reads from an access token.

mod jwt;
mod refresh;
mod state;
mod tokens;

pub(crate) use self::jwt::jwt_claims;
pub use self::{
    refresh::{DEFAULT_CLIENT_ID, DEFAULT_TOKEN_URL, REFRESH_TIMEOUT},
    state::{LoginTokens, state_file, store_login},
    tokens::{AccessToken, DEFAULT_REFRESH_SKEW, OAuthOptions, OAuthTokens},
};
