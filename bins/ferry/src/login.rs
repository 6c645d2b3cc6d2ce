//! `ferry login ACCOUNT` and `ferry import-codex-auth PATH`: put a ChatGPT/Codex account's
//! tokens in the OAuth state directory (`gateway.oauth_state_dir`), where the gateway reads
//! them at start-up and keeps them refreshed. The flows are in `ferry_accounts::login`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_accounts::{AccountConfig, LoginEndpoints, LoginTokens};

use crate::config;

/// Options shared by both commands.
pub(crate) struct Target<'a> {
    pub(crate) config: &'a Path,
    pub(crate) account: Option<&'a str>,
    pub(crate) state_dir: Option<&'a Path>,
}

/// How `ferry login` signs in.
pub(crate) struct LoginOptions {
    pub(crate) device_code: bool,
    pub(crate) open_browser: bool,
    pub(crate) port: u16,
    pub(crate) issuer: Option<String>,
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The OAuth account to log in and the state directory to write to.
fn resolve(
    target: &Target<'_>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<(AccountConfig, PathBuf)> {
    let loaded = config::load_file(Some(target.config), None, env)
        .map_err(|problems| anyhow::anyhow!("{problems}"))?;
    let oauth: Vec<&AccountConfig> = loaded
        .config
        .accounts
        .iter()
        .filter(|a| a.is_oauth())
        .collect();
    let account = match target.account {
        Some(name) => oauth
            .iter()
            .find(|a| a.name == name)
            .copied()
            .with_context(|| {
                format!(
                    "{}: no account named {name:?} with kind = \"oauth\"",
                    target.config.display()
                )
            })?,
        None => match oauth.as_slice() {
            [one] => *one,
            [] => anyhow::bail!(
                "{}: no account with kind = \"oauth\"",
                target.config.display()
            ),
            _ => anyhow::bail!("several oauth accounts in the config: name one with --account"),
        },
    };
    let dir = target
        .state_dir
        .map(Path::to_path_buf)
        .or_else(|| loaded.config.gateway.oauth_state_dir.clone())
        .context("no OAuth state directory: set gateway.oauth_state_dir in the config, or pass --state-dir")?;
    Ok((account.clone(), dir))
}

fn store(account: &AccountConfig, dir: &Path, tokens: &LoginTokens) -> anyhow::Result<()> {
    let path = ferry_accounts::store_login(dir, account, tokens)
        .with_context(|| format!("cannot store the tokens of account {:?}", account.name))?;
    let id = tokens
        .chatgpt_account_id
        .as_deref()
        .map_or_else(String::new, |id| format!(", ChatGPT account {id}"));
    say(&format!(
        "ferry: account {:?} signed in{id}; tokens written to {} (mode 0600). Restart ferry to use them.",
        account.name,
        path.display()
    ));
    Ok(())
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client")
}

/// `ferry login`.
pub(crate) fn login(
    target: &Target<'_>,
    opts: &LoginOptions,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let (account, dir) = resolve(target, env)?;
    let endpoints = LoginEndpoints {
        issuer: opts
            .issuer
            .clone()
            .unwrap_or_else(|| ferry_accounts::DEFAULT_ISSUER.to_owned()),
        client_id: account
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| ferry_accounts::DEFAULT_CLIENT_ID.to_owned()),
    };
    let http = http()?;
    let tokens = crate::runtime()?.block_on(async {
        if opts.device_code {
            let code = ferry_accounts::request_device_code(&http, &endpoints).await?;
            say(&format!(
                "To sign in account {:?}, open {} on any device and enter the code {} (it expires in 15 minutes).",
                account.name, code.verification_url, code.user_code
            ));
            ferry_accounts::poll_device_code(&http, &endpoints, &code, ferry_accounts::LOGIN_TIMEOUT)
                .await
        } else {
            let callback = ferry_accounts::CallbackServer::bind(opts.port).await?;
            let redirect = callback.redirect_uri();
            let pkce = ferry_accounts::Pkce::generate();
            let state = ferry_accounts::new_state();
            let url = ferry_accounts::authorize_url(&endpoints, &redirect, &pkce, &state)?;
            say(&format!(
                "To sign in account {:?}, open this URL in a browser on this machine:\n{url}\n(on a host without a browser, use --device-code)",
                account.name
            ));
            if opts.open_browser {
                open_browser(&url);
            }
            let code = tokio::time::timeout(
                ferry_accounts::LOGIN_TIMEOUT,
                callback.wait_for_code(&state),
            )
            .await
            .map_err(|_| ferry_accounts::AccountsError::Login {
                reason: "no browser callback within 15 minutes".into(),
            })??;
            ferry_accounts::exchange_code(&http, &endpoints, &code, &redirect, &pkce.verifier).await
        }
    })?;
    store(&account, &dir, &tokens)
}

/// `ferry import-codex-auth`.
pub(crate) fn import_codex_auth(
    path: &Path,
    target: &Target<'_>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let (account, dir) = resolve(target, env)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tokens = ferry_accounts::parse_codex_auth_json(&bytes)
        .with_context(|| path.display().to_string())?;
    store(&account, &dir, &tokens)
}

/// Best effort: the login URL is printed either way.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
