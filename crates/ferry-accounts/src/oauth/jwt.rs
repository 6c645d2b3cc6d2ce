//! The claims ferry reads from an access token (JWT): expiry and the ChatGPT account id.

use base64::Engine as _;
use serde_json::Value;

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
