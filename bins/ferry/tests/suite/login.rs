//! `ferry login` (browser and device-code flows) and `ferry import-codex-auth` against a fake
//! authorization server (wiremock on 127.0.0.1), then the gateway using the stored tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ferry_testkit::upstream::mount_sse;
use ferry_testkit::{Usage, sse, text_events};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::cli::{Running, ferry};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-login-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An unsigned JWT with these claims (ferry reads `exp` and the ChatGPT account id).
fn jwt(claims: &Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    format!("{}.{}.sig", b64(&json!({"alg": "none"})), b64(claims))
}

fn access_token(tag: &str) -> String {
    jwt(&json!({
        "exp": 4_102_444_800u64, // 2100-01-01
        "tag": tag,
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct-123"},
    }))
}

fn write_config(dir: &Path, upstream: &str) -> PathBuf {
    let config = dir.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\noauth_state_dir = {state:?}\n\n[[accounts]]\nname = \"chatgpt\"\nkind = \"oauth\"\nbase_url = {upstream:?}\n",
            state = dir.join("state").display().to_string(),
        ),
    )
    .unwrap();
    config
}

fn state_file(dir: &Path) -> Value {
    let file = dir.join("state/oauth-chatgpt.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

fn query(url: &reqwest::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// The form fields of a token request.
fn form(req: &Request) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(&req.body)))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts the gateway on the config and checks the upstream gets the stored access token.
async fn gateway_uses_token(config: &Path, upstream: &MockServer, token: &str) {
    let mock = mount_sse(
        upstream,
        sse(text_events("resp_1", &["signed in"], Usage::new(5, 2))),
    )
    .await;
    let mut server = Running::start(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        "ferry listening on http://",
    );
    let body =
        r#"{"model":"gpt-5.1","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}"#;
    let reply = server.request(&format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("signed in"), "{reply}");
    let req = mock.single_request();
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(req.header("chatgpt-account-id"), Some("acct-123"));
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_login_stores_the_tokens_and_the_gateway_uses_them() {
    let dir = temp_dir("browser");
    let issuer = MockServer::start().await;
    let upstream = MockServer::start().await;
    let config = write_config(&dir, &upstream.uri());
    let mut child = ferry()
        .args([
            "login",
            "chatgpt",
            "--config",
            config.to_str().unwrap(),
            "--no-browser",
            "--port",
            "0",
            "--issuer",
            &issuer.uri(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let authorize = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if line.starts_with(&issuer.uri()) {
            break reqwest::Url::parse(&line).unwrap();
        }
    };
    assert_eq!(authorize.path(), "/oauth/authorize");
    assert_eq!(
        query(&authorize, "client_id"),
        ferry_accounts::DEFAULT_CLIENT_ID
    );
    assert_eq!(query(&authorize, "response_type"), "code");
    assert_eq!(query(&authorize, "code_challenge_method"), "S256");
    assert_eq!(
        query(&authorize, "scope"),
        "openid profile email offline_access"
    );
    let challenge = query(&authorize, "code_challenge");
    let redirect = query(&authorize, "redirect_uri");
    let state = query(&authorize, "state");
    assert!(
        redirect.starts_with("http://localhost:") && redirect.ends_with("/auth/callback"),
        "{redirect}"
    );

    // The token endpoint answers only a code exchange whose verifier matches the challenge.
    let token = access_token("browser");
    let expected_redirect = redirect.clone();
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(move |req: &Request| {
            let f = form(req);
            let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let verifier = get("code_verifier").unwrap_or_default();
            let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            get("grant_type").as_deref() == Some("authorization_code")
                && get("code").as_deref() == Some("code-abc")
                && get("redirect_uri").as_deref() == Some(expected_redirect.as_str())
                && get("client_id").as_deref() == Some(ferry_accounts::DEFAULT_CLIENT_ID)
                && s256 == challenge
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id_token": jwt(&json!({"email": "dev@example.com"})),
            "access_token": token,
            "refresh_token": "rt-browser",
            "expires_in": 3600,
        })))
        .expect(1)
        .mount(&issuer)
        .await;

    // The browser: a wrong path is ignored, then the issuer's redirect with code and state.
    let http = reqwest::Client::new();
    let port = reqwest::Url::parse(&redirect).unwrap().port().unwrap();
    let stray = http
        .get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);
    let callback = http
        .get(format!(
            "http://127.0.0.1:{port}/auth/callback?code=code-abc&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 200);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let lines: Vec<String> = rx.iter().collect();
    assert!(status.success(), "{lines:?}");
    assert!(!lines.join("\n").contains(&token), "{lines:?}");

    let saved = state_file(&dir);
    assert_eq!(
        (
            &saved["account"],
            &saved["access_token"],
            &saved["refresh_token"],
            &saved["chatgpt_account_id"],
        ),
        (
            &json!("chatgpt"),
            &json!(token),
            &json!("rt-browser"),
            &json!("acct-123")
        )
    );
    gateway_uses_token(&config, &upstream, &token).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_with_the_wrong_state_fails_the_login() {
    let dir = temp_dir("state");
    let issuer = MockServer::start().await;
    let config = write_config(&dir, "http://127.0.0.1:9");
    let mut child = ferry()
        .args(["login", "chatgpt", "--config", config.to_str().unwrap()])
        .args(["--no-browser", "--port", "0", "--issuer", &issuer.uri()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let authorize = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if line.starts_with(&issuer.uri()) {
            break reqwest::Url::parse(&line).unwrap();
        }
    };
    let port = reqwest::Url::parse(&query(&authorize, "redirect_uri"))
        .unwrap()
        .port()
        .unwrap();
    let callback = reqwest::get(format!(
        "http://127.0.0.1:{port}/auth/callback?code=x&state=forged"
    ))
    .await
    .unwrap();
    assert_eq!(callback.status(), 400);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let lines: Vec<String> = rx.iter().collect();
    assert!(!status.success());
    assert!(
        lines.iter().any(|l| l.contains("state does not match")),
        "{lines:?}"
    );
    assert!(!dir.join("state/oauth-chatgpt.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_login_polls_until_the_code_is_entered() {
    let dir = temp_dir("device");
    let issuer = MockServer::start().await;
    let upstream = MockServer::start().await;
    let config = write_config(&dir, &upstream.uri());
    Mock::given(method("POST"))
        .and(path("/api/accounts/deviceauth/usercode"))
        .and(body_string_contains(ferry_accounts::DEFAULT_CLIENT_ID))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_auth_id": "dev-auth-1", "user_code": "ABCD-1234", "interval": "0"
        })))
        .expect(1)
        .mount(&issuer)
        .await;
    // Not entered yet twice (403), then the grant.
    Mock::given(method("POST"))
        .and(path("/api/accounts/deviceauth/token"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": "pending"})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&issuer)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/accounts/deviceauth/token"))
        .and(body_string_contains("\"device_auth_id\":\"dev-auth-1\""))
        .and(body_string_contains("\"user_code\":\"ABCD-1234\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authorization_code": "dev-code", "code_verifier": "issuer-verifier",
            "code_challenge": "ignored"
        })))
        .expect(1)
        .mount(&issuer)
        .await;
    let token = access_token("device");
    let device_redirect = format!("{}/deviceauth/callback", issuer.uri());
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(move |req: &Request| {
            let f = form(req);
            let has = |k: &str, v: &str| f.iter().any(|(n, x)| n == k && x == v);
            has("code", "dev-code")
                && has("code_verifier", "issuer-verifier")
                && has("redirect_uri", &device_redirect)
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "refresh_token": "rt-device"
        })))
        .expect(1)
        .mount(&issuer)
        .await;
    let out = ferry()
        .args(["login", "chatgpt", "--config", config.to_str().unwrap()])
        .args(["--device-code", "--issuer", &issuer.uri()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/codex/device", issuer.uri())) && stderr.contains("ABCD-1234"),
        "{stderr}"
    );
    let saved = state_file(&dir);
    assert_eq!(
        (&saved["access_token"], &saved["refresh_token"]),
        (&json!(token), &json!("rt-device"))
    );
    gateway_uses_token(&config, &upstream, &token).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn import_codex_auth_stores_an_existing_login() {
    let dir = temp_dir("import");
    let upstream = MockServer::start().await;
    let config = write_config(&dir, &upstream.uri());
    let token = access_token("imported");
    let auth = dir.join("auth.json");
    std::fs::write(
        &auth,
        json!({
            "OPENAI_API_KEY": null,
            "tokens": {
                "id_token": jwt(&json!({"email": "dev@example.com"})),
                "access_token": token,
                "refresh_token": "rt-imported",
                "account_id": "acct-123"
            },
            "last_refresh": "2026-12-01T10:00:00Z"
        })
        .to_string(),
    )
    .unwrap();
    let out = ferry()
        .args(["import-codex-auth", auth.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = state_file(&dir);
    assert_eq!(
        (
            &saved["access_token"],
            &saved["refresh_token"],
            &saved["chatgpt_account_id"]
        ),
        (&json!(token), &json!("rt-imported"), &json!("acct-123"))
    );
    gateway_uses_token(&config, &upstream, &token).await;

    // An API-key login has no ChatGPT tokens: a clear error, nothing written.
    std::fs::write(&auth, r#"{"OPENAI_API_KEY":"sk-secret-in-auth-json"}"#).unwrap();
    let out = ferry()
        .args(["import-codex-auth", auth.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap(), "--state-dir"])
        .arg(dir.join("other"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("holds no ChatGPT tokens"), "{stderr}");
    assert!(!stderr.contains("sk-secret-in-auth-json"), "{stderr}");
    assert!(!dir.join("other").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
