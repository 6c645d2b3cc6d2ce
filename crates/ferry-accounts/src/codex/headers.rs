//! The upstream request headers: the bearer credential, the
//! copied client headers, session ids, and for OAuth accounts the Codex client identity
//! (originator, user-agent and version) ferry presents.

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{AccountKind, Secret, version_at_least};
use crate::error::AccountsError;

pub use crate::config::{CODEX_CLI_VERSION, CODEX_MIN_CLIENT_VERSION};
/// The header that asks the Codex backend for the Responses Lite request shape.
pub const RESPONSES_LITE_HEADER: &str = "x-openai-internal-codex-responses-lite";
/// The canonical Codex CLI originator.
pub const CODEX_ORIGINATOR: &str = "codex_cli_rs";
/// Originators of first-party Codex clients, kept when the client's user-agent names one.
const CODEX_ORIGINATORS: &[&str] = &["codex_cli_rs", "codex_vscode", "codex_exec", "codex_sdk_ts"];

/// Inputs of [`build_upstream_headers`].
#[derive(Clone, Copy, Debug)]
pub struct UpstreamHeaderInput<'a> {
    /// The account's kind (OAuth gets the Codex identity).
    pub kind: AccountKind,
    /// The bearer credential (API key or OAuth access token).
    pub token: &'a Secret,
    /// The client's request headers (a whitelist is copied).
    pub client_headers: &'a HeaderMap,
    /// OAuth: the ChatGPT account id.
    pub chatgpt_account_id: Option<&'a str>,
    /// The session id derived from the prompt cache key and the client key (so two keys never
    /// share one);
    /// `None` when there is no key.
    pub session_id: Option<&'a str>,
    /// A stored `x-codex-turn-state` to send when the client sent none (the Codex backend's
    /// sticky routing for the next turn).
    pub turn_state: Option<&'a str>,
    /// `gateway.force_codex_cli`: present the Codex CLI user-agent.
    pub force_codex_cli: bool,
    /// OAuth: the Codex client version to present (the account's `codex_client_version`);
    /// `None` for [`CODEX_CLI_VERSION`].
    pub codex_client_version: Option<&'a str>,
    /// OAuth: ask for the Responses Lite shape ([`RESPONSES_LITE_HEADER`]`: true`).
    pub responses_lite: bool,
}

/// Client headers copied to the upstream request.
const COPIED_CLIENT_HEADERS: &[&str] = &[
    "accept-language",
    "content-type",
    "conversation_id",
    "user-agent",
    "originator",
    "session_id",
    "x-codex-turn-state",
    "x-codex-turn-metadata",
];

fn value(name: &'static str, text: &str) -> Result<HeaderValue, AccountsError> {
    HeaderValue::from_str(text).map_err(|_| AccountsError::InvalidHeader { name })
}

/// Builds the upstream request headers: credential, copied client headers, session id and
/// turn state, and on OAuth accounts the Codex client identity.
///
/// All accounts: `authorization: Bearer …` (marked sensitive), the whitelisted client headers,
/// `content-type: application/json` when missing, `accept: text/event-stream`; with a session
/// id, `session_id` is set to it and a present `conversation_id` too.
///
/// OAuth: `chatgpt-account-id`; the client's `session_id`/`conversation_id` are replaced by the
/// derived id (`conversation_id` only when the client sent one); `OpenAI-Beta:
/// responses=experimental`; the identity is the client's when its user-agent names a Codex
/// originator and its version is at least [`CODEX_MIN_CLIENT_VERSION`] (an older one is
/// presented as the configured version), otherwise the canonical `codex_cli_rs/<version>`
/// with the configured version (default [`CODEX_CLI_VERSION`]), with `originator` and
/// `version` paired to the user-agent; with `responses_lite`, the Lite header.
///
/// Last, a stored turn state is set when the request has no `x-codex-turn-state` yet.
pub fn build_upstream_headers(input: &UpstreamHeaderInput<'_>) -> Result<HeaderMap, AccountsError> {
    let mut headers = HeaderMap::new();
    for name in COPIED_CLIENT_HEADERS {
        for v in input.client_headers.get_all(*name) {
            headers.append(HeaderName::from_static(name), v.clone());
        }
    }
    let mut auth = value("authorization", &format!("Bearer {}", input.token.expose()))?;
    auth.set_sensitive(true);
    headers.insert(AUTHORIZATION, auth);
    let presented = input
        .codex_client_version
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(CODEX_CLI_VERSION);
    if input.force_codex_cli {
        headers.insert(
            USER_AGENT,
            value("user-agent", &format!("{CODEX_ORIGINATOR}/{presented}"))?,
        );
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));

    let session = HeaderName::from_static("session_id");
    let conversation = HeaderName::from_static("conversation_id");
    match input.kind {
        AccountKind::Oauth => {
            if let Some(account_id) = input.chatgpt_account_id.filter(|a| !a.trim().is_empty()) {
                headers.insert(
                    HeaderName::from_static("chatgpt-account-id"),
                    value("chatgpt-account-id", account_id.trim())?,
                );
            }
            let client_sent_conversation = input.client_headers.contains_key(&conversation);
            headers.remove(&session);
            headers.remove(&conversation);
            if let Some(id) = input.session_id.filter(|s| !s.trim().is_empty()) {
                let id = value("session_id", id.trim())?;
                if client_sent_conversation {
                    headers.insert(conversation.clone(), id.clone());
                }
                headers.insert(session.clone(), id);
            }
            apply_codex_identity(&mut headers, presented)?;
            if input.responses_lite {
                headers.insert(
                    HeaderName::from_static(RESPONSES_LITE_HEADER),
                    HeaderValue::from_static("true"),
                );
            }
        }
        AccountKind::ApiKey => {
            if let Some(id) = input.session_id.filter(|s| !s.trim().is_empty()) {
                let id = value("session_id", id.trim())?;
                if headers.contains_key(&conversation) {
                    headers.insert(conversation.clone(), id.clone());
                }
                headers.insert(session.clone(), id);
            }
        }
    }
    let turn_state = HeaderName::from_static("x-codex-turn-state");
    if let Some(state) = input.turn_state.filter(|s| !s.trim().is_empty())
        && !headers.contains_key(&turn_state)
    {
        headers.insert(turn_state, value("x-codex-turn-state", state.trim())?);
    }
    Ok(headers)
}

/// The Codex client identity, set and kept consistent: OpenAI-Beta set; originator,
/// user-agent and version paired; a Codex client's own version kept when it is at least
/// [`CODEX_MIN_CLIENT_VERSION`], else `presented`.
fn apply_codex_identity(headers: &mut HeaderMap, presented: &str) -> Result<(), AccountsError> {
    headers.insert(
        HeaderName::from_static("openai-beta"),
        HeaderValue::from_static("responses=experimental"),
    );
    let ua = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    let (first, tail) = ua.split_once(' ').unwrap_or((ua.as_str(), ""));
    let (name, version) = first.split_once('/').unwrap_or((first, ""));
    let (originator, user_agent, version) = if CODEX_ORIGINATORS.contains(&name) {
        let version = if version_at_least(version, CODEX_MIN_CLIENT_VERSION) {
            version.to_owned()
        } else {
            presented.to_owned()
        };
        let ua = if tail.is_empty() {
            format!("{name}/{version}")
        } else {
            format!("{name}/{version} {tail}")
        };
        (name.to_owned(), ua, version)
    } else {
        (
            CODEX_ORIGINATOR.to_owned(),
            format!("{CODEX_ORIGINATOR}/{presented}"),
            presented.to_owned(),
        )
    };
    headers.insert(USER_AGENT, value("user-agent", &user_agent)?);
    headers.insert(
        HeaderName::from_static("originator"),
        value("originator", &originator)?,
    );
    headers.insert(
        HeaderName::from_static("version"),
        value("version", &version)?,
    );
    Ok(())
}
