//! Loading the config: layers, `${NAME}` expansion, and one report of every problem.
//!
//! Layers, lowest first (style guide §6):
//! 1. the embedded defaults (`defaults.toml`, compiled in with `include_str!`);
//! 2. the `--config` file, if any; its string values may contain `${NAME}`, replaced with the
//!    environment variable `NAME` (a missing variable is a config problem);
//! 3. `FERRY_*` environment overrides ([`ENV_OVERRIDES`](overrides::ENV_OVERRIDES)),
//!    taken literally;
//! 4. command-line flags (`--listen`).
//!
//! The merged tree is deserialised into [`ferry_server::RawConfig`] (unknown keys are errors)
//! and validated by [`ferry_server::Config::from_raw`]. Problems from every stage are
//! collected and reported together; a key that fails to deserialise is dropped and
//! deserialisation retried, so one typo does not hide the next.
//!
//! With no `[[accounts]]`, one account is added: `api_key` for `https://api.openai.com/v1`
//! when `OPENAI_API_KEY` is set (and not empty), else `simulated`.
//!
//! `FERRY_*` overrides: see [`ENV_OVERRIDES`](overrides::ENV_OVERRIDES). `FERRY_LOG_FORMAT`
//! and `RUST_LOG` (logging) are read by `main`, not here.
//!
//! The environment is always passed in as a map, so tests never touch the process
//! environment.
//!
//! This file runs the stages in order; each stage is its own module: `defaults` (layer 1
//! and the account added when there is none), `expand` (`${NAME}`), `overrides` (layers 3
//! and 4), `tree` (merging and setting keys of the TOML tree), `deserialize` (the tree into
//! `RawConfig`, key by key) and `problems` (the wording of a problem: one line, no secret).

mod defaults;
mod deserialize;
mod expand;
mod overrides;
mod problems;
mod tree;

use std::collections::BTreeMap;
use std::path::Path;

use ferry_server::Config;
use ferry_server::config::{ConfigProblem, Problems};
use toml::{Table, Value};

use self::problems::{one_line, redact, secret_values, syntax_error};

/// Where the config comes from besides the defaults.
#[derive(Debug, Default)]
pub(crate) struct Sources<'a> {
    /// The config file: its name (for messages) and its text.
    pub(crate) file: Option<(&'a str, &'a str)>,
    /// `--listen`, which beats everything else.
    pub(crate) listen: Option<&'a str>,
}

/// A validated config, and what was filled in on the user's behalf.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) config: Config,
    /// Lines worth logging at start-up (for example the account that was added).
    pub(crate) notes: Vec<String>,
}

/// Reads `path` and loads it with the given environment.
pub(crate) fn load_file(
    path: Option<&Path>,
    listen: Option<&str>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, Problems> {
    let text = match path {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
            only(
                &p.display().to_string(),
                format!("cannot read the config file: {e}"),
            )
        })?),
        None => None,
    };
    let name = path.map(|p| p.display().to_string()).unwrap_or_default();
    let sources = Sources {
        file: text.as_deref().map(|t| (name.as_str(), t)),
        listen,
    };
    load(&sources, env)
}

/// Builds the config from the layers; every problem is returned at once.
pub(crate) fn load(
    sources: &Sources<'_>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, Problems> {
    let mut problems = Problems::default();
    let mut tree = match toml::from_str::<Table>(defaults::DEFAULTS) {
        Ok(t) => t,
        Err(e) => {
            problems.push("<embedded defaults>", one_line(&e.to_string()));
            Table::new()
        }
    };

    if let Some((name, text)) = sources.file {
        match toml::from_str::<Table>(text) {
            Ok(mut file) => {
                for (key, value) in &mut file {
                    expand::expand_value(value, key, env, &mut problems);
                }
                tree::merge(&mut tree, file);
            }
            Err(e) => {
                // Nothing else can be checked in a file that does not parse. The message
                // names the line and column, never the text there: that line may hold a
                // secret (`api_key = "sk-…` without its closing quote).
                return Err(only(
                    name,
                    format!("not valid TOML: {}", syntax_error(text, &e)),
                ));
            }
        }
    }

    overrides::apply(&mut tree, env, sources.listen, &mut problems);

    let file_has_accounts = tree
        .get("accounts")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let mut notes = Vec::new();
    if !file_has_accounts {
        let (account, note) = defaults::default_account(env);
        notes.push(note);
        tree::set(
            &mut tree,
            "accounts",
            Value::Array(vec![Value::Table(account)]),
        );
    }

    let secrets = secret_values(&tree);
    let mut bad_paths = Vec::new();
    let (raw, account_index) = deserialize::deserialize(tree, &mut problems, &mut bad_paths);

    let result = match Config::from_raw(raw) {
        Ok(config) if problems.0.is_empty() => return Ok(Loaded { config, notes }),
        Ok(_) => problems,
        Err(more) => {
            // A key already reported (a type error, a missing variable) would come back as
            // "is required" or "unexpanded": say it once.
            let reported: Vec<String> = problems.0.iter().map(|p| p.path.clone()).collect();
            for mut p in more {
                p.path = deserialize::reindex(&p.path, "accounts", &account_index);
                if !reported.contains(&p.path) && !bad_paths.contains(&p.path) {
                    problems.0.push(p);
                }
            }
            problems
        }
    };
    Err(Problems(
        result
            .0
            .into_iter()
            .map(|mut p| {
                p.message = redact(&p.message, &secrets);
                p
            })
            .collect(),
    ))
}

/// A report of one problem, for a stage that cannot go on.
fn only(path: &str, message: String) -> Problems {
    Problems(vec![ConfigProblem {
        path: path.to_owned(),
        message,
    }])
}

#[cfg(test)]
mod tests;
