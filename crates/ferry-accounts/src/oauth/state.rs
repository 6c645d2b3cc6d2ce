//! Persistence of OAuth credentials: the state file of an account, the seed that binds it to
//! the configured tokens, and its atomic 0600 writes (after a refresh and after a login).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classify::unix_now;
use crate::config::{AccountConfig, Secret};
use crate::error::AccountsError;

/// The tokens a login produced.
#[derive(Clone, Debug)]
pub struct LoginTokens {
    /// The bearer token for the upstream.
    pub access_token: Secret,
    /// The refresh token (the gateway refreshes with it).
    pub refresh_token: Option<Secret>,
    /// Unix seconds the access token expires (its JWT `exp`, or `expires_in`).
    pub expires_at: Option<u64>,
    /// The ChatGPT account id (from the id token or access token claims).
    pub chatgpt_account_id: Option<String>,
}

/// What is written to the state file. Secrets are plain here: the file is mode 0600.
#[derive(Serialize, Deserialize)]
pub(super) struct PersistedTokens {
    pub(super) version: u32,
    pub(super) account: String,
    pub(super) seed: String,
    pub(super) access_token: Option<String>,
    pub(super) refresh_token: Option<String>,
    pub(super) expires_at: Option<u64>,
    pub(super) chatgpt_account_id: Option<String>,
    pub(super) updated_at: u64,
}

fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(format!("ferry-oauth-seed\0{secret}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The state file of an account: `{state_dir}/oauth-{account}.json`.
pub fn state_file(state_dir: &Path, account: &str) -> PathBuf {
    state_dir.join(format!("oauth-{account}.json"))
}

/// The seed a state file must carry to be used with this account's config: a fingerprint of
/// the configured refresh token, else access token, else of nothing (a login-only account).
pub(super) fn config_seed(config: &AccountConfig) -> String {
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
    tokens: &LoginTokens,
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

pub(super) fn load_state(path: &Path) -> Result<Option<PersistedTokens>, AccountsError> {
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
pub(super) fn write_state(path: &Path, tokens: &PersistedTokens) -> Result<(), AccountsError> {
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
