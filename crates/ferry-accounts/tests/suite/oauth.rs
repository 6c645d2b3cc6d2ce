//! OAuth token refresh against a wiremock token endpoint on 127.0.0.1: before expiry, after a
//! 401, single flight, persistence across a restart.

use std::time::Duration;

use ferry_accounts::{
    AccountConfig, AccountState, AccountsError, DEFAULT_CLIENT_ID, Disposition, ExpiresAt,
    FailoverReason, OAuthOptions, OAuthTokens, Pool, PoolOptions, Secret, Selection,
};
use futures_util::future::join_all;
use http::{HeaderMap, StatusCode};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{TempDir, jwt, mount_token_endpoint, now_unix};

fn account(server: &MockServer, access_expires_in: i64, refresh: &str) -> AccountConfig {
    let mut a = AccountConfig::oauth("chatgpt", Secret::new("at-old"), Some(Secret::new(refresh)));
    a.expires_at = Some(ExpiresAt(
        now_unix().saturating_add_signed(access_expires_in),
    ));
    a.token_url = Some(format!("{}/oauth/token", server.uri()));
    a
}

fn refresh_request(refresh: &str) -> Value {
    json!({
        "client_id": DEFAULT_CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "scope": "openid profile email"
    })
}

fn options(state_dir: Option<&TempDir>) -> OAuthOptions {
    OAuthOptions {
        state_dir: state_dir.map(|d| d.0.clone()),
        ..OAuthOptions::default()
    }
}

#[tokio::test]
async fn refreshes_before_expiry_once() {
    let server = MockServer::start().await;
    let fresh = jwt(now_unix() + 3600, "acct-from-jwt");
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/json"))
        .and(body_json(refresh_request("rt-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": fresh, "refresh_token": "rt-2", "id_token": "idt", "expires_in": 3600
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Expires in 60 s: inside the 5-minute skew, so it is refreshed now.
    let tokens = OAuthTokens::new(&account(&server, 60, "rt-1"), &options(None));
    let first = tokens.access_token().await.unwrap();
    assert_eq!(
        (
            first.token.expose(),
            first.chatgpt_account_id.as_deref(),
            first.generation
        ),
        (fresh.as_str(), Some("acct-from-jwt"), 1)
    );
    let again = tokens.access_token().await.unwrap();
    assert_eq!(
        (again.token.expose(), again.generation),
        (fresh.as_str(), 1)
    );
}

#[tokio::test]
async fn fresh_tokens_are_not_refreshed() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        200,
        json!({"access_token": "x"}),
        Duration::ZERO,
        0,
    )
    .await;
    let mut config = account(&server, 3600, "rt-1");
    config.chatgpt_account_id = Some("acct-config".into());
    let tokens = OAuthTokens::new(&config, &options(None));
    let token = tokens.access_token().await.unwrap();
    assert_eq!(
        (
            token.token.expose(),
            token.chatgpt_account_id.as_deref(),
            token.generation
        ),
        ("at-old", Some("acct-config"), 0)
    );
}

#[tokio::test]
async fn expiry_is_read_from_the_jwt_when_not_configured() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        200,
        json!({"access_token": jwt(now_unix() + 7200, "a"), "expires_in": 7200}),
        Duration::ZERO,
        1,
    )
    .await;
    let mut config = account(&server, 0, "rt-1");
    config.expires_at = None;
    config.access_token = Some(Secret::new(jwt(now_unix() + 30, "acct-jwt")));
    let tokens = OAuthTokens::new(&config, &options(None));
    assert_eq!(tokens.chatgpt_account_id().as_deref(), Some("acct-jwt"));
    // exp is 30 s away: refreshed.
    assert_eq!(tokens.access_token().await.unwrap().generation, 1);
}

#[tokio::test]
async fn twenty_concurrent_callers_cause_exactly_one_refresh() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        200,
        json!({"access_token": "at-new", "refresh_token": "rt-2", "expires_in": 3600}),
        Duration::from_millis(200),
        1,
    )
    .await;
    let tokens = OAuthTokens::new(&account(&server, -10, "rt-1"), &options(None));
    let results = join_all((0..20).map(|_| tokens.access_token())).await;
    let got: Vec<_> = results
        .into_iter()
        .map(|r| {
            let t = r.unwrap();
            (t.token.expose().to_owned(), t.generation)
        })
        .collect();
    assert_eq!(got, vec![("at-new".to_owned(), 1); 20]);
}

#[tokio::test]
async fn twenty_concurrent_401s_cause_exactly_one_refresh() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        200,
        json!({"access_token": "at-new", "expires_in": 3600}),
        Duration::from_millis(100),
        1,
    )
    .await;
    let tokens = OAuthTokens::new(&account(&server, 3600, "rt-1"), &options(None));
    let used = tokens.access_token().await.unwrap();
    assert_eq!(used.generation, 0);
    let results = join_all((0..20).map(|_| async {
        tokens.invalidate(used.generation);
        tokens.access_token().await
    }))
    .await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().token.expose() == "at-new")
    );
    // A late 401 from the old generation does not trigger another refresh.
    tokens.invalidate(used.generation);
    assert_eq!(tokens.access_token().await.unwrap().generation, 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_failed_refresh() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        500,
        json!({"error": "server_error"}),
        Duration::from_millis(200),
        1,
    )
    .await;
    let tokens = OAuthTokens::new(&account(&server, -10, "rt-1"), &options(None));
    let results = join_all((0..20).map(|_| tokens.access_token())).await;
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, AccountsError::TokenRefresh { status: Some(500), permanent: false, reason, .. } if reason == "server_error"),
            "{err:?}"
        );
        assert!(err.is_account_failure());
        assert!(!err.to_string().contains("rt-1"));
    }
}

#[tokio::test]
async fn a_failed_refresh_inside_the_skew_keeps_the_valid_token() {
    let server = MockServer::start().await;
    mount_token_endpoint(&server, 503, json!({}), Duration::ZERO, 1).await;
    let tokens = OAuthTokens::new(&account(&server, 60, "rt-1"), &options(None));
    let token = tokens.access_token().await.unwrap();
    assert_eq!((token.token.expose(), token.generation), ("at-old", 0));
}

#[tokio::test]
async fn the_pool_refreshes_after_a_401_and_retries_the_same_account() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        200,
        json!({"access_token": "at-new", "expires_in": 3600}),
        Duration::ZERO,
        1,
    )
    .await;
    let pool = Pool::new(vec![account(&server, 3600, "rt-1")], PoolOptions::default()).unwrap();
    let lease = pool.acquire(&Selection::default()).await.unwrap();
    assert_eq!(lease.credential().await.unwrap().token.expose(), "at-old");
    let unauthorized = br#"{"detail":"Unauthorized"}"#;
    let d = pool.on_upstream_error(
        &lease,
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        unauthorized,
        0,
    );
    assert_eq!(
        d,
        Disposition::RetrySameAccount {
            after: Duration::ZERO,
            reason: FailoverReason::Unauthorized
        }
    );
    assert_eq!(lease.credential().await.unwrap().token.expose(), "at-new");
    // A second 401 with the new token: fail over and cool down (no second refresh request).
    let d = pool.on_upstream_error(
        &lease,
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        unauthorized,
        1,
    );
    assert_eq!(d.reason(), Some(FailoverReason::Unauthorized));
    assert!(matches!(
        pool.statuses()[0].state,
        AccountState::CoolingDown { .. }
    ));
}

#[tokio::test]
async fn an_invalid_refresh_token_disables_the_account() {
    let server = MockServer::start().await;
    mount_token_endpoint(
        &server,
        400,
        json!({"error": "invalid_grant", "error_description": "Refresh token rt-1 is invalid"}),
        Duration::ZERO,
        1,
    )
    .await;
    let pool = Pool::new(vec![account(&server, -10, "rt-1")], PoolOptions::default()).unwrap();
    let lease = pool.acquire(&Selection::default()).await.unwrap();
    let err = lease.credential().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "token refresh for account \"chatgpt\" failed: invalid_grant"
    );
    assert!(err.is_account_failure());
    assert_eq!(
        pool.statuses()[0].state,
        AccountState::Disabled {
            reason: FailoverReason::TokenRefresh
        }
    );
}

#[tokio::test]
async fn refreshed_credentials_survive_a_restart() {
    let dir = TempDir::new("oauth-restart");
    let first_server = MockServer::start().await;
    mount_token_endpoint(
        &first_server,
        200,
        json!({"access_token": "at-new", "refresh_token": "rt-2", "expires_in": 3600}),
        Duration::ZERO,
        1,
    )
    .await;
    let config = account(&first_server, -10, "rt-1");
    let tokens = OAuthTokens::new(&config, &options(Some(&dir)));
    assert_eq!(
        tokens.access_token().await.unwrap().token.expose(),
        "at-new"
    );
    drop(tokens);

    let file = dir.0.join("oauth-chatgpt.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        (
            &saved["access_token"],
            &saved["refresh_token"],
            &saved["account"]
        ),
        (&json!("at-new"), &json!("rt-2"), &json!("chatgpt"))
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("oauth-chatgpt.json")]);

    // "Restart" with the same config: the persisted tokens are used, no refresh needed…
    let second_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_json(refresh_request("rt-2")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at-3", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&second_server)
        .await;
    let mut restarted_config = config.clone();
    restarted_config.token_url = Some(format!("{}/oauth/token", second_server.uri()));
    let restarted = OAuthTokens::new(&restarted_config, &options(Some(&dir)));
    let token = restarted.access_token().await.unwrap();
    assert_eq!((token.token.expose(), token.generation), ("at-new", 0));
    // …and the next refresh uses the rotated refresh token.
    restarted.invalidate(0);
    assert_eq!(
        restarted.access_token().await.unwrap().token.expose(),
        "at-3"
    );

    // A new login in the config wins over the state file.
    let third_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_json(refresh_request("rt-relogin")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at-relogin", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&third_server)
        .await;
    let relogin = account(&third_server, -10, "rt-relogin");
    let tokens = OAuthTokens::new(&relogin, &options(Some(&dir)));
    assert_eq!(
        tokens.access_token().await.unwrap().token.expose(),
        "at-relogin"
    );
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let server = MockServer::start().await;
    let tokens = OAuthTokens::new(&account(&server, 3600, "rt-SECRET"), &options(None));
    let pool = Pool::new(
        vec![account(&server, 3600, "rt-SECRET")],
        PoolOptions::default(),
    )
    .unwrap();
    let debug = format!("{tokens:?} {pool:?}");
    assert!(
        !debug.contains("SECRET") && !debug.contains("at-old"),
        "{debug}"
    );
}
