//! The refresh request to the OAuth token endpoint, and how its answer is judged: a new
//! token, a transient failure (retry later) or a permanent one (the login is gone).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::Secret;

/// The OpenAI OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The Codex CLI's OAuth client id, sent with refresh requests.
pub const DEFAULT_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// Timeout of one refresh request.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub(super) struct RefreshFailure {
    pub(super) status: Option<u16>,
    pub(super) reason: String,
    pub(super) permanent: bool,
}

/// Asks the token endpoint at `token_url` for a new access token with `refresh`.
pub(super) async fn request_refresh(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    refresh: &Secret,
) -> Result<TokenResponse, RefreshFailure> {
    let body = serde_json::json!({
        "client_id": client_id,
        "grant_type": "refresh_token",
        "refresh_token": refresh.expose(),
        "scope": "openid profile email",
    });
    let transient = |reason: &str| RefreshFailure {
        status: None,
        reason: reason.to_owned(),
        permanent: false,
    };
    let response = http
        .post(token_url)
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
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) access_token: String,
    #[serde(default)]
    pub(super) refresh_token: Option<String>,
    #[serde(default)]
    pub(super) expires_in: Option<u64>,
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
