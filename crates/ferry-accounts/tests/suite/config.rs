//! Account config: the `[[accounts]]` keys, strictness, secrets, validation.

use ferry_accounts::{
    AccountConfig, AccountKind, ExpiresAt, ModelMapping, Secret, ServiceTierPolicy,
    validate_accounts,
};
use pretty_assertions::assert_eq;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    accounts: Vec<AccountConfig>,
}

fn parse(text: &str) -> Result<Vec<AccountConfig>, String> {
    toml::from_str::<File>(text)
        .map(|f| f.accounts)
        .map_err(|e| e.to_string())
}

#[test]
fn interface_example_parses() {
    let accounts = parse(
        r#"
[[accounts]]
name = "primary"
kind = "api_key"
base_url = "https://api.openai.com/v1"
api_key = "sk-live-secret"
priority = 0
concurrency = 8
proxy = ""
pool_mode = false
continuation = true
service_tier_policy = "pass"
default_model = "gpt-5.1"
[accounts.model_mapping]
"claude-opus-4-8" = "gpt-5.1-codex"
"claude-haiku-*" = "gpt-5.1-codex-mini"

[[accounts]]
name = "chatgpt"
kind = "oauth"
access_token = "eyJ.access"
refresh_token = "rt-secret"
expires_at = 2026-05-01T12:00:00Z
chatgpt_account_id = "acct-1"
token_url = "http://127.0.0.1:9/oauth/token"
priority = 1
pool_mode = true
pool_mode_retry_status_codes = [429]
pool_mode_retry_count = 2
service_tier_policy = "block"
"#,
    )
    .unwrap();
    let mut primary = AccountConfig::api_key(
        "primary",
        "https://api.openai.com/v1",
        Secret::new("sk-live-secret"),
    );
    primary.proxy = Some(String::new());
    primary.continuation = true;
    primary.default_model = Some("gpt-5.1".into());
    primary.model_mapping = ModelMapping::from_rules([
        ("claude-opus-4-8", "gpt-5.1-codex"),
        ("claude-haiku-*", "gpt-5.1-codex-mini"),
    ]);
    let mut chatgpt = AccountConfig::oauth(
        "chatgpt",
        Secret::new("eyJ.access"),
        Some(Secret::new("rt-secret")),
    );
    chatgpt.expires_at = Some(ExpiresAt(1_777_636_800));
    chatgpt.chatgpt_account_id = Some("acct-1".into());
    chatgpt.token_url = Some("http://127.0.0.1:9/oauth/token".into());
    chatgpt.priority = 1;
    chatgpt.pool_mode = true;
    chatgpt.pool_mode_retry_status_codes = Some(vec![429]);
    chatgpt.pool_mode_retry_count = Some(2);
    chatgpt.service_tier_policy = ServiceTierPolicy::Block;
    assert_eq!(accounts, vec![primary, chatgpt]);
    assert_eq!(validate_accounts(&accounts).len(), 0);
    assert_eq!(accounts[0].proxy_url(), None);
    assert_eq!(
        accounts[1].pool_retry(),
        Some(ferry_accounts::PoolRetry {
            status_codes: vec![429],
            count: 2
        })
    );
}

#[test]
fn defaults() {
    let accounts =
        parse("[[accounts]]\nname = \"s\"\nkind = \"api_key\"\napi_key = \"k\"\n").unwrap();
    let a = &accounts[0];
    assert_eq!(
        (
            a.kind,
            a.priority,
            a.concurrency,
            a.continuation,
            a.service_tier_policy,
            a.pool_retry()
        ),
        (
            AccountKind::ApiKey,
            0,
            8,
            false,
            ServiceTierPolicy::Pass,
            None
        )
    );
    let mut pooled = a.clone();
    pooled.pool_mode = true;
    assert_eq!(
        pooled.pool_retry(),
        Some(ferry_accounts::PoolRetry {
            status_codes: vec![401, 403, 429],
            count: 3
        })
    );
}

#[test]
fn unknown_keys_and_values_are_errors() {
    let typo =
        parse("[[accounts]]\nname = \"a\"\nkind = \"api_key\"\napi_kye = \"x\"\n").unwrap_err();
    assert!(typo.contains("unknown field `api_kye`"), "{typo}");
    let kind = parse("[[accounts]]\nname = \"a\"\nkind = \"apikey\"\n").unwrap_err();
    assert!(kind.contains("unknown variant `apikey`"), "{kind}");
    let exp =
        parse("[[accounts]]\nname = \"a\"\nkind = \"oauth\"\nexpires_at = \"soon\"\n").unwrap_err();
    assert!(
        exp.contains("expected Unix seconds or an RFC 3339 time"),
        "{exp}"
    );
}

#[test]
fn expires_at_forms() {
    let forms = [
        "expires_at = 1777636800",
        "expires_at = \"2026-05-01T12:00:00Z\"",
        "expires_at = \"2026-05-01T14:00:00+02:00\"",
        "expires_at = 2026-05-01T12:00:00Z",
    ];
    for form in forms {
        let accounts = parse(&format!(
            "[[accounts]]\nname = \"o\"\nkind = \"oauth\"\naccess_token = \"t\"\n{form}\n"
        ))
        .unwrap();
        assert_eq!(
            accounts[0].expires_at,
            Some(ExpiresAt(1_777_636_800)),
            "{form}"
        );
    }
}

#[test]
fn secrets_never_print() {
    let accounts = parse(
        "[[accounts]]\nname = \"o\"\nkind = \"oauth\"\naccess_token = \"at-SECRET\"\nrefresh_token = \"rt-SECRET\"\n",
    )
    .unwrap();
    let debug = format!("{accounts:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("access_token: Some(***)"), "{debug}");
    assert_eq!(Secret::new("k").to_string(), "***");
    assert_eq!(Secret::new("k").expose(), "k");
}

#[test]
fn validation_reports_every_problem() {
    let mut bad_key = AccountConfig::api_key("a b", "ftp://x", Secret::new(" "));
    bad_key.concurrency = 0;
    bad_key.proxy = Some("::not a proxy::".into());
    bad_key.pool_mode_retry_status_codes = Some(vec![429, 999]);
    bad_key.refresh_token = Some(Secret::new("rt"));
    bad_key.model_mapping = ModelMapping::from_rules([("claude-*", " ")]);
    let oauth = AccountConfig {
        access_token: None,
        ..AccountConfig::oauth("dup", Secret::new(""), None)
    };
    let dup = AccountConfig::api_key("dup", "https://x", Secret::new("sk"));
    let problems: Vec<String> = validate_accounts(&[bad_key, oauth, dup])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "account \"a b\": name: must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit",
            "account \"a b\": concurrency: must be at least 1",
            "account \"a b\": base_url: must start with http:// or https://",
            "account \"a b\": proxy: is not a valid proxy URL",
            "account \"a b\": pool_mode_retry_status_codes: 999 is not an HTTP status",
            "account \"a b\": model_mapping: keys and values must not be empty",
            "account \"a b\": api_key: is required for kind = \"api_key\"",
            "account \"a b\": refresh_token: is only used by kind = \"oauth\"",
            "account \"dup\": name: is used by more than one account",
        ]
    );
}
