//! What the user did not write: the embedded defaults (layer 1) and the account added when
//! the config has none.

use std::collections::BTreeMap;

use ferry_accounts::OPENAI_BASE_URL;
use toml::{Table, Value};

/// The embedded default config (layer 1).
pub(super) const DEFAULTS: &str = include_str!("../defaults.toml");

/// The upstream model Claude models go to on the default account (`default_model`).
const DEFAULT_MODEL: &str = "gpt-5.1";
/// The upstream model Claude Haiku goes to on the default account.
const DEFAULT_SMALL_MODEL: &str = "gpt-5.1-codex-mini";

/// The account used when the config has none, and the note that says so.
///
/// It maps Claude Code's model names the way the README's example does (`claude-haiku-*`
/// to the small model, every other Claude model to [`DEFAULT_MODEL`]), so Claude Code works
/// with nothing but `OPENAI_API_KEY`, and the simulated upstream is asked for the same
/// models a real one would be. With `OPENAI_API_KEY` it goes to [`OPENAI_BASE_URL`].
pub(super) fn default_account(env: &BTreeMap<String, String>) -> (Table, String) {
    let mut account = Table::new();
    account.insert(
        "default_model".to_owned(),
        Value::String(DEFAULT_MODEL.to_owned()),
    );
    let mut mapping = Table::new();
    mapping.insert(
        "claude-haiku-*".to_owned(),
        Value::String(DEFAULT_SMALL_MODEL.to_owned()),
    );
    account.insert("model_mapping".to_owned(), Value::Table(mapping));
    match env.get("OPENAI_API_KEY").filter(|k| !k.trim().is_empty()) {
        Some(key) => {
            account.insert("name".to_owned(), Value::String("openai".to_owned()));
            account.insert("kind".to_owned(), Value::String("api_key".to_owned()));
            account.insert(
                "base_url".to_owned(),
                Value::String(OPENAI_BASE_URL.to_owned()),
            );
            account.insert("api_key".to_owned(), Value::String(key.clone()));
            (
                account,
                format!("no accounts configured: using OPENAI_API_KEY with {OPENAI_BASE_URL}"),
            )
        }
        None => {
            account.insert("name".to_owned(), Value::String("simulated".to_owned()));
            account.insert("kind".to_owned(), Value::String("simulated".to_owned()));
            (
                account,
                "no accounts configured and OPENAI_API_KEY is not set: answering from the built-in simulated upstream"
                    .to_owned(),
            )
        }
    }
}
