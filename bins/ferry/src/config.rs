//! Loading the config: layers, `${NAME}` expansion, and one report of every problem.
//!
//! Layers, lowest first (style guide §6):
//! 1. the embedded defaults (`defaults.toml`, compiled in with `include_str!`);
//! 2. the `--config` file, if any; its string values may contain `${NAME}`, replaced with the
//!    environment variable `NAME` (a missing variable is a config problem);
//! 3. `FERRY_*` environment overrides ([`ENV_OVERRIDES`]), taken literally;
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
//! `FERRY_*` overrides: see [`ENV_OVERRIDES`]. `FERRY_LOG_FORMAT` and `RUST_LOG` (logging)
//! are read by `main`, not here.
//!
//! The environment is always passed in as a map, so tests never touch the process
//! environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ferry_server::{Config, ConfigProblem, RawConfig};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::{Table, Value};

/// The embedded default config (layer 1).
pub(crate) const DEFAULTS: &str = include_str!("defaults.toml");

/// `FERRY_*` environment variables and the key each one overrides.
pub(crate) const ENV_OVERRIDES: &[(&str, &str, Kind)] = &[
    ("FERRY_LISTEN", "server.listen", Kind::String),
    (
        "FERRY_MAX_BODY_BYTES",
        "server.max_body_bytes",
        Kind::Integer,
    ),
    (
        "FERRY_SHUTDOWN_GRACE_SECS",
        "server.shutdown_grace_secs",
        Kind::Integer,
    ),
    (
        "FERRY_BODY_READ_TIMEOUT_SECS",
        "server.body_read_timeout_secs",
        Kind::Integer,
    ),
    (
        "FERRY_MAX_CONNECTIONS",
        "server.max_connections",
        Kind::Integer,
    ),
    (
        "FERRY_STREAM_KEEPALIVE_INTERVAL_SECS",
        "gateway.stream_keepalive_interval_secs",
        Kind::Integer,
    ),
    (
        "FERRY_STREAM_DATA_INTERVAL_TIMEOUT_SECS",
        "gateway.stream_data_interval_timeout_secs",
        Kind::Integer,
    ),
    (
        "FERRY_MAX_LINE_BYTES",
        "gateway.max_line_bytes",
        Kind::Integer,
    ),
    (
        "FERRY_MAX_ACCOUNT_SWITCHES",
        "gateway.max_account_switches",
        Kind::Integer,
    ),
    (
        "FERRY_UPSTREAM_CONNECT_TIMEOUT_SECS",
        "gateway.upstream_connect_timeout_secs",
        Kind::Integer,
    ),
    (
        "FERRY_UPSTREAM_HEADER_TIMEOUT_SECS",
        "gateway.upstream_header_timeout_secs",
        Kind::Integer,
    ),
    (
        "FERRY_UPSTREAM_JSON_TIMEOUT_SECS",
        "gateway.upstream_json_timeout_secs",
        Kind::Integer,
    ),
    ("FERRY_SESSION_STORE", "session.store", Kind::String),
    ("FERRY_REDIS_URL", "session.redis_url", Kind::String),
    ("FERRY_SESSION_TTL_SECS", "session.ttl_secs", Kind::Integer),
];

/// The TOML type an environment override is parsed as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    String,
    Integer,
}

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

/// Every problem found, in the order the stages found them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problems(pub(crate) Vec<ConfigProblem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} config problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Reads `path` and loads it with the given environment.
pub(crate) fn load_file(
    path: Option<&Path>,
    listen: Option<&str>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, Problems> {
    let text = match path {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
            Problems(vec![problem(
                &p.display().to_string(),
                format!("cannot read the config file: {e}"),
            )])
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
    let mut problems = Vec::new();
    let mut tree = match toml::from_str::<Table>(DEFAULTS) {
        Ok(t) => t,
        Err(e) => {
            problems.push(problem("<embedded defaults>", one_line(&e.to_string())));
            Table::new()
        }
    };

    if let Some((name, text)) = sources.file {
        match toml::from_str::<Table>(text) {
            Ok(mut file) => {
                for (key, value) in &mut file {
                    expand_value(value, key, env, &mut problems);
                }
                merge(&mut tree, file);
            }
            Err(e) => {
                // Nothing else can be checked in a file that does not parse. The message
                // names the line and column, never the text there: that line may hold a
                // secret (`api_key = "sk-…` without its closing quote).
                return Err(Problems(vec![problem(
                    name,
                    format!("not valid TOML: {}", syntax_error(text, &e)),
                )]));
            }
        }
    }

    for (var, key, kind) in ENV_OVERRIDES {
        let Some(raw) = env.get(*var) else { continue };
        let value = match kind {
            Kind::String => Value::String(raw.clone()),
            Kind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Value::Integer(n),
                Err(_) => {
                    problems.push(problem(var, format!("must be an integer (it sets {key})")));
                    continue;
                }
            },
        };
        set(&mut tree, key, value);
    }
    if let Some(listen) = sources.listen {
        set(&mut tree, "server.listen", Value::String(listen.to_owned()));
    }

    let file_has_accounts = tree
        .get("accounts")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let mut notes = Vec::new();
    if !file_has_accounts {
        let account = default_account(env);
        notes.push(account.1.to_owned());
        set(
            &mut tree,
            "accounts",
            Value::Array(vec![Value::Table(account.0)]),
        );
    }

    let secrets = secret_values(&tree);
    let mut bad_paths = Vec::new();
    let (raw, account_index) = deserialize(tree, &mut problems, &mut bad_paths);

    let result = match Config::from_raw(raw) {
        Ok(config) if problems.is_empty() => return Ok(Loaded { config, notes }),
        Ok(_) => problems,
        Err(more) => {
            // A key already reported (a type error, a missing variable) would come back as
            // "is required" or "unexpanded": say it once.
            let reported: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
            for mut p in more {
                p.path = reindex(&p.path, "accounts", &account_index);
                if !reported.contains(&p.path) && !bad_paths.contains(&p.path) {
                    problems.push(p);
                }
            }
            problems
        }
    };
    Err(Problems(
        result
            .into_iter()
            .map(|mut p| {
                p.message = redact(&p.message, &secrets);
                p
            })
            .collect(),
    ))
}

/// Keys whose values are secrets, wherever they sit in the tree.
const SECRET_KEYS: &[&str] = &[
    "api_key",
    "access_token",
    "refresh_token",
    "key",
    "redis_url",
    "password",
];

/// Every secret value in the merged tree (expanded), longest first, so that a message can be
/// cleaned of them by value. A Redis URL counts whole and by its password.
fn secret_values(tree: &Table) -> Vec<String> {
    fn walk(value: &Value, key: &str, out: &mut Vec<String>) {
        match value {
            Value::String(s) if SECRET_KEYS.contains(&key) && !s.trim().is_empty() => {
                out.push(s.clone());
                if let Some(password) = url_password(s) {
                    out.push(password.to_owned());
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, key, out)),
            Value::Table(t) => t.iter().for_each(|(k, v)| walk(v, k, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in tree {
        walk(v, k, &mut out);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The password of `scheme://user:password@host…`, if there is one.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then_some(password)
}

/// The shortest configured secret removed from messages by value.
const MIN_REDACTED_LEN: usize = 6;

/// `message` without any secret value, and without the string a serde type error quotes
/// (`invalid type: string "…", expected …`): a secret put under the wrong key is still a
/// secret.
fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    if let Some(start) = out.find("string \"") {
        let body = start + "string \"".len();
        if let Some(len) = out[body..].find("\", expected") {
            out.replace_range(start..body + len + 1, "a string");
        }
    }
    // Values shorter than this are not real secrets and would match ordinary words.
    for s in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

/// A TOML syntax error as `line L, column C: what`, without the excerpt of the file that
/// `toml`'s `Display` adds.
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let what = one_line(e.message());
    let Some(span) = e.span() else { return what };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {what}")
}

/// The upstream model Claude models go to on the default account (`default_model`).
const DEFAULT_MODEL: &str = "gpt-5.1";
/// The upstream model Claude Haiku goes to on the default account.
const DEFAULT_SMALL_MODEL: &str = "gpt-5.1-codex-mini";

/// The account used when the config has none, and the note that says so.
///
/// It maps Claude Code's model names the way the README's example does (`claude-haiku-*`
/// to the small model, every other Claude model to [`DEFAULT_MODEL`]), so Claude Code works
/// with nothing but `OPENAI_API_KEY`, and the simulated upstream is asked for the same
/// models a real one would be.
fn default_account(env: &BTreeMap<String, String>) -> (Table, &'static str) {
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
                "no accounts configured: using OPENAI_API_KEY with https://api.openai.com/v1",
            )
        }
        None => {
            account.insert("name".to_owned(), Value::String("simulated".to_owned()));
            account.insert("kind".to_owned(), Value::String("simulated".to_owned()));
            (
                account,
                "no accounts configured and OPENAI_API_KEY is not set: answering from the built-in simulated upstream",
            )
        }
    }
}

/// Where `OPENAI_API_KEY` alone sends requests.
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

fn problem(path: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// TOML errors come with a source excerpt over several lines; keep them on one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deserialises the merged tree. The `[[accounts]]` and `[[client_keys]]` entries are read
/// one by one, so a broken entry is reported and left out without hiding the others; inside
/// each part, a key that fails is reported, dropped, and the part read again. Returns the raw
/// config and, for each account kept, its index in the file.
fn deserialize(
    mut tree: Table,
    problems: &mut Vec<ConfigProblem>,
    bad_paths: &mut Vec<String>,
) -> (RawConfig, Vec<usize>) {
    let accounts = tree.remove("accounts");
    let client_keys = tree.remove("client_keys");
    let mut raw: RawConfig =
        lenient(Value::Table(tree), "", problems, bad_paths).unwrap_or_default();
    let (accounts, account_index) = elements(accounts, "accounts", problems, bad_paths);
    raw.accounts = accounts;
    raw.client_keys = elements(client_keys, "client_keys", problems, bad_paths).0;
    (raw, account_index)
}

/// The entries of an array of tables that deserialise, with their indexes in the file.
fn elements<T: DeserializeOwned>(
    value: Option<Value>,
    name: &str,
    problems: &mut Vec<ConfigProblem>,
    bad_paths: &mut Vec<String>,
) -> (Vec<T>, Vec<usize>) {
    let items = match value {
        None => return (Vec::new(), Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(problem(
                name,
                format!("must be an array of tables, written [[{name}]]"),
            ));
            bad_paths.push(name.to_owned());
            return (Vec::new(), Vec::new());
        }
    };
    let mut kept = Vec::new();
    let mut index = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(v) = lenient(item, &format!("{name}[{i}]"), problems, bad_paths) {
            kept.push(v);
            index.push(i);
        }
    }
    (kept, index)
}

/// Deserialises `value`, reporting each failing key under `prefix`, dropping it and trying
/// again. `None` when the value as a whole cannot be read (for example a missing field).
fn lenient<T: DeserializeOwned>(
    mut value: Value,
    prefix: &str,
    problems: &mut Vec<ConfigProblem>,
    bad_paths: &mut Vec<String>,
) -> Option<T> {
    // Each round removes one key, so this ends; the bound guards against a key that cannot
    // be removed.
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return Some(v),
            Err(e) => {
                let message = one_line(&e.inner().to_string());
                let mut segments: Vec<Segment> = e.path().iter().cloned().collect();
                // Name an unknown key itself, when the path stops at its parent.
                if let Some(field) = unknown_field(&message) {
                    let named =
                        matches!(segments.last(), Some(Segment::Map { key }) if key == field);
                    if !named {
                        segments.push(Segment::Map {
                            key: field.to_owned(),
                        });
                    }
                }
                let path = join_path(prefix, &render_path(&segments));
                problems.push(problem(&path, message));
                bad_paths.push(path);
                if !remove(&mut value, &segments) {
                    return None;
                }
            }
        }
    }
    None
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, true) => "<root>".to_owned(),
        (true, false) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// Rewrites `name[i]` at the start of `path` to the file index `index[i]`.
fn reindex(path: &str, name: &str, index: &[usize]) -> String {
    let Some(rest) = path.strip_prefix(name).and_then(|r| r.strip_prefix('[')) else {
        return path.to_owned();
    };
    let Some((n, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    match n.parse::<usize>().ok().and_then(|n| index.get(n)) {
        Some(original) => format!("{name}[{original}]{tail}"),
        None => path.to_owned(),
    }
}

/// The key named by serde's "unknown field `x`, expected …" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// Removes the value at `segments`; false if there is nothing to remove.
fn remove(value: &mut Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    if let Segment::Seq { .. } = last {
        // A bad element of an array of values: drop the whole array.
        return remove(value, parents);
    }
    let mut at = value;
    for s in parents {
        let next = match (s, at) {
            (Segment::Map { key }, Value::Table(t)) => t.get_mut(key),
            (Segment::Seq { index }, Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    match (last, at) {
        (Segment::Map { key }, Value::Table(t)) => t.remove(key).is_some(),
        _ => false,
    }
}

/// Deep merge: tables merge key by key; anything else (arrays included) is replaced.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets a dotted `section.key`, creating the section.
fn set(tree: &mut Table, dotted: &str, value: Value) {
    let (section, key) = dotted.split_once('.').unwrap_or(("", dotted));
    if section.is_empty() {
        tree.insert(key.to_owned(), value);
        return;
    }
    let entry = tree
        .entry(section.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    if let Value::Table(t) = entry {
        t.insert(key.to_owned(), value);
    }
}

/// Expands `${NAME}` in every string under `value` (keys are left alone).
fn expand_value(
    value: &mut Value,
    path: &str,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<ConfigProblem>,
) {
    match value {
        Value::String(s) => match expand(s, env) {
            Ok(expanded) => *s = expanded,
            Err(message) => problems.push(problem(path, message)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Table(t) => {
            for (key, item) in t.iter_mut() {
                expand_value(item, &format!("{path}.{key}"), env, problems);
            }
        }
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {}
    }
}

/// Replaces each `${NAME}` with the variable's value. `$` not followed by `{` is literal.
/// Every missing variable is named in the one error.
pub(crate) fn expand(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated ${...} reference".to_owned());
        };
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "${{{name}}}: a variable name is letters, digits and '_', not starting with a digit"
            ));
        }
        match env.get(name) {
            Some(v) => out.push_str(v),
            None => missing.push(name),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match missing.as_slice() {
        [] => Ok(out),
        [one] => Err(format!("environment variable {one} is not set")),
        many => Err(format!(
            "environment variables {} are not set",
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_text(text: &str, env: &BTreeMap<String, String>) -> Result<Loaded, Problems> {
        load(
            &Sources {
                file: Some(("ferry.toml", text)),
                listen: None,
            },
            env,
        )
    }

    /// The `path: message` lines of a failed load.
    fn problems(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
        match load_text(text, env) {
            Ok(_) => panic!("expected problems"),
            Err(p) => p.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn paths(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
        match load_text(text, env) {
            Ok(_) => panic!("expected problems"),
            Err(p) => p.0.into_iter().map(|p| p.path).collect(),
        }
    }

    #[test]
    fn no_file_no_key_runs_on_the_simulated_upstream() {
        let loaded = load(&Sources::default(), &env(&[])).unwrap();
        let c = &loaded.config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
        assert_eq!(c.client_keys.len(), 0);
        let accounts: Vec<(&str, &str)> = c
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.kind.as_str()))
            .collect();
        assert_eq!(accounts, vec![("simulated", "simulated")]);
        assert_eq!(loaded.notes.len(), 1);
        assert!(loaded.notes[0].contains("simulated"), "{:?}", loaded.notes);
    }

    #[test]
    fn openai_api_key_alone_gives_an_api_key_account() {
        let loaded = load(
            &Sources::default(),
            &env(&[("OPENAI_API_KEY", "sk-test-123")]),
        )
        .unwrap();
        let a = &loaded.config.accounts;
        assert_eq!(a.len(), 1);
        assert_eq!(
            (
                a[0].name.as_str(),
                a[0].kind.as_str(),
                a[0].base_url.as_deref()
            ),
            ("openai", "api_key", Some("https://api.openai.com/v1"))
        );
        assert_eq!(
            a[0].api_key.as_ref().map(|k| k.expose()),
            Some("sk-test-123")
        );
        assert!(!format!("{:?}", loaded.config).contains("sk-test-123"));
    }

    #[test]
    fn the_default_account_maps_claude_code_models() {
        for env_vars in [vec![], vec![("OPENAI_API_KEY", "sk-test-123")]] {
            let loaded = load(&Sources::default(), &env(&env_vars)).unwrap();
            let account = &loaded.config.accounts[0];
            let upstream = |m: &str| account.route_model(m).upstream;
            assert_eq!(
                (
                    upstream("claude-opus-4-8"),
                    upstream("claude-haiku-4-5-20251001"),
                    upstream("gpt-5.4"),
                ),
                (
                    "gpt-5.1".to_owned(),
                    "gpt-5.1-codex-mini".to_owned(),
                    "gpt-5.4".to_owned()
                ),
                "{env_vars:?}"
            );
        }
    }

    #[test]
    fn embedded_defaults_match_the_server_defaults() {
        let embedded = load(&Sources::default(), &env(&[])).unwrap().config;
        let server = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(
            format!("{:?}", embedded.server),
            format!("{:?}", server.server)
        );
        assert_eq!(
            format!("{:?}", embedded.gateway),
            format!("{:?}", server.gateway)
        );
        assert_eq!(
            format!("{:?}", embedded.session),
            format!("{:?}", server.session)
        );
    }

    #[test]
    fn file_values_override_defaults_and_keep_the_rest() {
        let loaded = load_text(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[gateway]\nmax_account_switches = 5\n",
            &env(&[]),
        )
        .unwrap();
        let c = &loaded.config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
        assert_eq!(c.gateway.max_account_switches, 5);
    }

    #[test]
    fn env_references_are_expanded_from_the_passed_environment() {
        let text = r#"
[[client_keys]]
name = "alice"
key = "${FERRY_KEY_ALICE}"

[[accounts]]
name = "primary"
kind = "api_key"
base_url = "http://${UP_HOST}:${UP_PORT}/v1"
api_key = "${OPENAI_API_KEY}"
"#;
        let e = env(&[
            ("FERRY_KEY_ALICE", "k-alice"),
            ("UP_HOST", "127.0.0.1"),
            ("UP_PORT", "9999"),
            ("OPENAI_API_KEY", "sk-1"),
        ]);
        let c = load_text(text, &e).unwrap().config;
        assert_eq!(c.client_keys[0].key.expose(), "k-alice");
        assert_eq!(
            c.accounts[0].base_url.as_deref(),
            Some("http://127.0.0.1:9999/v1")
        );
        assert_eq!(
            c.accounts[0].api_key.as_ref().map(|k| k.expose()),
            Some("sk-1")
        );
    }

    #[test]
    fn expand_table() {
        let e = env(&[("A", "1"), ("B_2", "two"), ("EMPTY", "")]);
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("${A}", Ok("1")),
            ("x${A}y${B_2}z", Ok("x1ytwoz")),
            ("${EMPTY}", Ok("")),
            ("cost: $5 and $A", Ok("cost: $5 and $A")),
            ("${MISSING}", Err("environment variable MISSING is not set")),
            (
                "${M1}-${A}-${M2}",
                Err("environment variables M1, M2 are not set"),
            ),
            ("${A", Err("unterminated ${...} reference")),
            (
                "${1X}",
                Err("${1X}: a variable name is letters, digits and '_', not starting with a digit"),
            ),
            (
                "${}",
                Err("${}: a variable name is letters, digits and '_', not starting with a digit"),
            ),
        ];
        for (input, expected) in cases {
            let got = expand(input, &e);
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_with_its_path() {
        assert_eq!(
            problems("[server]\nlisen = \"127.0.0.1:1\"\n", &env(&[])),
            vec![
                "server.lisen: unknown field `lisen`, expected one of `listen`, `max_body_bytes`, `shutdown_grace_secs`, `body_read_timeout_secs`, `max_connections` in `server`"
                    .to_owned()
            ]
        );
        assert_eq!(paths("[sever]\n", &env(&[])), vec!["sever".to_owned()]);
        assert_eq!(
            paths(
                "[[accounts]]\nname = \"a\"\nkind = \"simulated\"\nmodel_maping = {}\n",
                &env(&[])
            ),
            vec!["accounts[0].model_maping".to_owned()]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[server]
listen = "not an address"
max_body_bytes = "big"
typo = 1

[gateway]
stream_keepalive_interval_secs = 4

[session]
store = "disk"

[[client_keys]]
name = "alice"
key = "${KEY_ALICE}"

[[accounts]]
name = "broken"
kind = "api_key"
colour = "blue"

[[accounts]]
kind = "simulated"

[[accounts]]
name = "third"
kind = "api_key"
api_key = ""
concurrency = 0
"#;
        assert_eq!(
            paths(text, &env(&[])),
            vec![
                "client_keys[0].key",
                "server.max_body_bytes",
                "server.typo",
                "accounts[0].colour",
                "accounts[1]",
                "server.listen",
                "gateway.stream_keepalive_interval_secs",
                "session.store",
                "accounts[0].api_key",
                "accounts[2].concurrency",
                "accounts[2].api_key",
            ]
        );
    }

    #[test]
    fn env_overrides_and_the_listen_flag() {
        let file = "[server]\nlisten = \"127.0.0.1:1000\"\n";
        let e = env(&[
            ("FERRY_LISTEN", "127.0.0.1:2000"),
            ("FERRY_MAX_ACCOUNT_SWITCHES", "7"),
            ("FERRY_SESSION_TTL_SECS", "60"),
        ]);
        let c = load_text(file, &e).unwrap().config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:2000");
        assert_eq!(c.gateway.max_account_switches, 7);
        assert_eq!(c.session.ttl.as_secs(), 60);

        let flag = load(
            &Sources {
                file: Some(("ferry.toml", file)),
                listen: Some("127.0.0.1:3000"),
            },
            &e,
        )
        .unwrap()
        .config;
        assert_eq!(flag.server.listen.to_string(), "127.0.0.1:3000");

        assert_eq!(
            problems("", &env(&[("FERRY_MAX_LINE_BYTES", "lots")])),
            vec![
                "FERRY_MAX_LINE_BYTES: must be an integer (it sets gateway.max_line_bytes)"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn env_override_values_are_not_expanded() {
        // Overrides are literal: only the file's values are templates.
        let c = load(
            &Sources::default(),
            &env(&[
                ("FERRY_REDIS_URL", "redis://${NOT_EXPANDED}@h"),
                ("FERRY_SESSION_STORE", "memory"),
            ]),
        )
        .unwrap()
        .config;
        assert_eq!(format!("{:?}", c.session.store), "Memory");
    }

    #[test]
    fn a_toml_syntax_error_names_the_file() {
        let got = problems("[server\nlisten = 1\n", &env(&[]));
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("ferry.toml: not valid TOML:"), "{got:?}");
    }

    #[test]
    fn secrets_never_appear_in_problems() {
        let text =
            "[[accounts]]\nname = \"a\"\nkind = \"simulated\"\napi_key = \"sk-secret-value\"\n";
        let all = problems(text, &env(&[])).join("\n");
        assert!(all.contains("accounts[0].api_key"), "{all}");
        assert!(!all.contains("sk-secret-value"), "{all}");
    }

    /// `KEY=value` lines of an env file (`#` comments and blank lines skipped).
    fn env_file(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_contrib_team_config_loads_with_the_contrib_env_file() {
        let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib");
        let vars = env_file(&std::fs::read_to_string(contrib.join("ferry.env")).unwrap());
        let loaded = load_file(Some(&contrib.join("ferry.toml")), None, &vars)
            .unwrap_or_else(|p| panic!("{p}"));
        let c = &loaded.config;
        let keys: Vec<(&str, &str)> = c
            .client_keys
            .iter()
            .map(|k| (k.name.as_str(), k.key.expose()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("alice", vars["FERRY_KEY_ALICE"].as_str()),
                ("bob", vars["FERRY_KEY_BOB"].as_str()),
                ("ci", vars["FERRY_KEY_CI"].as_str()),
            ]
        );
        let accounts: Vec<(&str, &str, i32)> = c
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.kind.as_str(), a.priority))
            .collect();
        assert_eq!(
            accounts,
            vec![
                ("team-api", "api_key", 0),
                ("team-api-backup", "api_key", 1)
            ]
        );
        match &c.session.store {
            ferry_server::config::SessionStoreKind::Redis { url } => {
                assert_eq!(url.expose(), vars["FERRY_REDIS_URL"]);
            }
            ferry_server::config::SessionStoreKind::Memory => panic!("expected the redis store"),
        }
        // A variable missing from the environment is a problem, not a silent empty key.
        let mut partial = vars.clone();
        partial.remove("FERRY_KEY_BOB");
        let problems = load_file(Some(&contrib.join("ferry.toml")), None, &partial).unwrap_err();
        assert!(problems.to_string().contains("FERRY_KEY_BOB"), "{problems}");
    }
}
