//! Where an account's Responses requests go: the default base URLs per account kind and the
//! `{base_url}/responses` URL.

use crate::config::{AccountConfig, AccountKind};

/// Default base URL of API-key accounts.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default base URL of OAuth (ChatGPT/Codex) accounts.
pub const CODEX_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";

/// The upstream Responses URL for an account: `{base_url}/responses`, with the kind's default
/// base URL when none is configured.
pub fn responses_url(account: &AccountConfig) -> String {
    let default = match account.kind {
        AccountKind::Oauth => CODEX_BASE_URL,
        AccountKind::ApiKey => OPENAI_BASE_URL,
    };
    let base = account
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(default);
    format!("{}/responses", base.trim_end_matches('/'))
}
