//! Logging a ChatGPT/Codex account in: the OAuth flows the Codex CLI uses, and its `auth.json`.
//!
//! Two flows against the issuer (`https://auth.openai.com` by default, with the Codex CLI's
//! client id):
//! - **browser** (authorization code + PKCE S256): [`authorize_url`] is opened in a browser,
//!   the issuer redirects to a loopback [`CallbackServer`] (`http://localhost:1455/auth/callback`
//!   is the redirect the client id is registered for), and [`exchange_code`] trades the code for
//!   tokens at `{issuer}/oauth/token` (form-encoded, with the PKCE verifier);
//! - **device code** (headless hosts): [`request_device_code`] asks
//!   `{issuer}/api/accounts/deviceauth/usercode` for a one-time code the user types at
//!   `{issuer}/codex/device` on any device; [`poll_device_code`] polls
//!   `{issuer}/api/accounts/deviceauth/token` (403/404 = not yet) until the issuer hands back an
//!   authorization code and the PKCE pair it made, which [`exchange_code`] trades with the
//!   redirect `{issuer}/deviceauth/callback`.
//!
//! [`parse_codex_auth_json`] reads the Codex CLI's `~/.codex/auth.json` instead.
//! [`crate::oauth::store_login`] writes the result where the gateway's OAuth state is kept.
//! Errors never carry a token: only statuses and OAuth error codes.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::classify::unix_now;
use crate::config::Secret;
use crate::error::AccountsError;
pub use crate::oauth::LoginTokens;
use crate::oauth::{DEFAULT_CLIENT_ID, jwt_claims};

/// The Codex CLI's OAuth issuer.
pub const DEFAULT_ISSUER: &str = "https://auth.openai.com";
/// The loopback port the Codex CLI's client id may redirect to.
pub const DEFAULT_CALLBACK_PORT: u16 = 1455;
/// How long a login waits for the user (the device code's lifetime is 15 minutes).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const SCOPE: &str = "openid profile email offline_access";

/// Where a login goes.
#[derive(Clone, Debug)]
pub struct LoginEndpoints {
    /// The issuer base URL, without a trailing slash.
    pub issuer: String,
    /// The OAuth client id.
    pub client_id: String,
}

impl Default for LoginEndpoints {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
        }
    }
}

impl LoginEndpoints {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}

/// A PKCE verifier and its S256 challenge.
#[derive(Clone, Debug)]
pub struct Pkce {
    /// Sent with the code exchange.
    pub verifier: String,
    /// Sent with the authorization request.
    pub challenge: String,
}

fn random_urlsafe(bytes: usize) -> String {
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    raw.truncate(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Pkce {
    /// A fresh verifier (64 random bytes, base64url) and its challenge.
    pub fn generate() -> Self {
        let verifier = random_urlsafe(64);
        Self {
            challenge: pkce_challenge(&verifier),
            verifier,
        }
    }
}

/// A fresh `state` value for the authorization request.
pub fn new_state() -> String {
    random_urlsafe(32)
}

/// The URL to open in a browser for the authorization-code flow.
pub fn authorize_url(
    endpoints: &LoginEndpoints,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
) -> Result<String, AccountsError> {
    let params = [
        ("response_type", "code"),
        ("client_id", endpoints.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", crate::codex::CODEX_ORIGINATOR),
    ];
    reqwest::Url::parse_with_params(&endpoints.url("/oauth/authorize"), params)
        .map(String::from)
        .map_err(|e| login_error(format!("bad issuer url: {e}")))
}

fn login_error(reason: impl Into<String>) -> AccountsError {
    AccountsError::Login {
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
struct TokenExchange {
    #[serde(default)]
    id_token: Option<String>,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The OAuth error code of an error body, reduced to safe characters (never a token).
fn error_code(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let code = v
        .get("error")
        .and_then(|e| e.as_str().or_else(|| e.get("code").and_then(Value::as_str)))?;
    let safe: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    (!safe.is_empty()).then_some(safe)
}

/// Trades an authorization code (and its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    endpoints: &LoginEndpoints,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<LoginTokens, AccountsError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", endpoints.client_id.as_str()),
        ("code_verifier", verifier),
    ];
    let response = http
        .post(endpoints.url("/oauth/token"))
        .form(&form)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|_| login_error("cannot reach the token endpoint"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|_| login_error("the token endpoint's answer was cut off"))?;
    if !(200..300).contains(&status) {
        let code = error_code(&bytes).map_or_else(String::new, |c| format!(" ({c})"));
        return Err(login_error(format!(
            "the token endpoint answered {status}{code}"
        )));
    }
    let t: TokenExchange = serde_json::from_slice(&bytes)
        .map_err(|_| login_error("the token endpoint returned no access token"))?;
    Ok(tokens_from(
        &t.access_token,
        t.refresh_token.as_deref(),
        t.id_token.as_deref(),
        t.expires_in.map(|s| unix_now().saturating_add(s)),
        None,
    ))
}

fn tokens_from(
    access: &str,
    refresh: Option<&str>,
    id_token: Option<&str>,
    expires_at: Option<u64>,
    account_id: Option<&str>,
) -> LoginTokens {
    let access_claims = jwt_claims(access);
    let id_claims = id_token.and_then(jwt_claims);
    let chatgpt_account_id = account_id
        .map(str::to_owned)
        .filter(|a| !a.trim().is_empty())
        .or_else(|| id_claims.as_ref().and_then(|c| c.account_id.clone()))
        .or_else(|| access_claims.as_ref().and_then(|c| c.account_id.clone()));
    LoginTokens {
        access_token: Secret::new(access),
        refresh_token: refresh.filter(|r| !r.trim().is_empty()).map(Secret::new),
        expires_at: expires_at.or_else(|| access_claims.and_then(|c| c.exp)),
        chatgpt_account_id,
    }
}

/// A loopback HTTP listener that receives the issuer's redirect.
#[derive(Debug)]
pub struct CallbackServer {
    listener: tokio::net::TcpListener,
    port: u16,
}

impl CallbackServer {
    /// Listens on `127.0.0.1:port` (0 = any free port).
    pub async fn bind(port: u16) -> Result<Self, AccountsError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| login_error(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| login_error(format!("cannot read the callback address: {e}")))?
            .port();
        Ok(Self { listener, port })
    }

    /// The redirect URI to register in the authorization request.
    pub fn redirect_uri(&self) -> String {
        format!("http://localhost:{}/auth/callback", self.port)
    }

    /// Waits for `GET /auth/callback?code=…&state=…` with the expected state and returns the
    /// code. Other paths get 404; a wrong state or an `error=` redirect ends the login.
    pub async fn wait_for_code(self, expected_state: &str) -> Result<String, AccountsError> {
        loop {
            let (mut socket, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| login_error(format!("callback listener failed: {e}")))?;
            let Some(target) = read_request_target(&mut socket).await else {
                continue;
            };
            let Ok(url) = reqwest::Url::parse(&format!("http://localhost{target}")) else {
                respond(&mut socket, 400, "bad request").await;
                continue;
            };
            if url.path() != "/auth/callback" {
                respond(&mut socket, 404, "not found").await;
                continue;
            }
            let get = |name: &str| {
                url.query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            if let Some(error) = get("error") {
                respond(&mut socket, 400, "Login failed; see the terminal.").await;
                let safe: String = error
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect();
                return Err(login_error(format!(
                    "the issuer refused the login ({safe})"
                )));
            }
            if get("state").as_deref() != Some(expected_state) {
                respond(&mut socket, 400, "Login failed: state mismatch.").await;
                return Err(login_error(
                    "the callback's state does not match this login",
                ));
            }
            let Some(code) = get("code").filter(|c| !c.is_empty()) else {
                respond(&mut socket, 400, "Login failed: no code.").await;
                return Err(login_error("the callback carried no code"));
            };
            respond(
                &mut socket,
                200,
                "Signed in. You can close this window and go back to the terminal.",
            )
            .await;
            return Ok(code);
        }
    }
}

/// The request target of an HTTP/1 request line (reads at most 16 KiB of head).
async fn read_request_target(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = std::str::from_utf8(&buf).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET").then(|| target.to_owned())
}

async fn respond(socket: &mut tokio::net::TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ferry login</title></head><body><p>{text}</p></body></html>"
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// A device code to show the user.
#[derive(Clone, Debug)]
pub struct DeviceCode {
    /// Where the user types the code.
    pub verification_url: String,
    /// The one-time code.
    pub user_code: String,
    device_auth_id: String,
    interval: Duration,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[derive(Deserialize)]
struct UserCode {
    device_auth_id: String,
    #[serde(alias = "usercode")]
    user_code: String,
    #[serde(default, deserialize_with = "number_or_string")]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct DeviceGrant {
    authorization_code: String,
    code_verifier: String,
}

/// Asks the issuer for a device code.
pub async fn request_device_code(
    http: &reqwest::Client,
    endpoints: &LoginEndpoints,
) -> Result<DeviceCode, AccountsError> {
    let response = http
        .post(endpoints.url("/api/accounts/deviceauth/usercode"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::json!({ "client_id": endpoints.client_id }).to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|_| login_error("cannot reach the device code endpoint"))?;
    let status = response.status().as_u16();
    if status == 404 {
        return Err(login_error(
            "the issuer has no device code login (404); use the browser login",
        ));
    }
    if !(200..300).contains(&status) {
        return Err(login_error(format!(
            "the device code endpoint answered {status}"
        )));
    }
    let code: UserCode = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| login_error("the device code endpoint's answer is not a device code"))?;
    Ok(DeviceCode {
        verification_url: endpoints.url("/codex/device"),
        user_code: code.user_code,
        device_auth_id: code.device_auth_id,
        interval: Duration::from_secs(code.interval.unwrap_or(5).min(60)),
    })
}

/// Polls until the user entered the code, then exchanges the grant for tokens. Gives up after
/// `max_wait`.
pub async fn poll_device_code(
    http: &reqwest::Client,
    endpoints: &LoginEndpoints,
    code: &DeviceCode,
    max_wait: Duration,
) -> Result<LoginTokens, AccountsError> {
    let deadline = tokio::time::Instant::now() + max_wait;
    let body = serde_json::json!({
        "device_auth_id": code.device_auth_id,
        "user_code": code.user_code,
    })
    .to_string();
    let grant: DeviceGrant = loop {
        let response = http
            .post(endpoints.url("/api/accounts/deviceauth/token"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|_| login_error("cannot reach the device token endpoint"))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            break response
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| login_error("the device token endpoint returned no grant"))?;
        }
        if !matches!(status, 403 | 404) {
            return Err(login_error(format!(
                "the device token endpoint answered {status}"
            )));
        }
        if tokio::time::Instant::now() + code.interval > deadline {
            return Err(login_error(format!(
                "the code was not entered within {} minutes",
                max_wait.as_secs() / 60
            )));
        }
        tokio::time::sleep(code.interval).await;
    };
    exchange_code(
        http,
        endpoints,
        &grant.authorization_code,
        &endpoints.url("/deviceauth/callback"),
        &grant.code_verifier,
    )
    .await
}

#[derive(Deserialize)]
struct CodexAuthJson {
    #[serde(default)]
    tokens: Option<CodexAuthTokens>,
}

#[derive(Deserialize)]
struct CodexAuthTokens {
    #[serde(default)]
    id_token: Option<Value>,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
}

/// Reads the Codex CLI's `auth.json` (`{"tokens": {"id_token", "access_token",
/// "refresh_token", "account_id"}, "last_refresh": …}`).
pub fn parse_codex_auth_json(bytes: &[u8]) -> Result<LoginTokens, AccountsError> {
    let auth: CodexAuthJson = serde_json::from_slice(bytes)
        .map_err(|e| login_error(format!("not a Codex auth.json: {}", e.classify_name())))?;
    let Some(t) = auth.tokens.filter(|t| !t.access_token.trim().is_empty()) else {
        return Err(login_error(
            "the auth.json holds no ChatGPT tokens (an API-key login?)",
        ));
    };
    // Newer Codex versions keep the id token as a string, older ones as parsed claims.
    let id_token = t.id_token.as_ref().and_then(Value::as_str);
    Ok(tokens_from(
        &t.access_token,
        t.refresh_token.as_deref(),
        id_token,
        None,
        t.account_id.as_deref(),
    ))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of a JSON error, without the excerpt serde may quote (it could be a token).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "cannot read it",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "cut off",
        }
    }
}
