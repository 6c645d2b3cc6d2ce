//! The merged tree into [`RawConfig`], key by key: a key that fails is reported under its
//! dotted path, dropped, and the rest read again, so one typo does not hide the next.

use ferry_server::RawConfig;
use ferry_server::config::Problems;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::problems::one_line;

/// Deserialises the merged tree. The `[[accounts]]` and `[[client_keys]]` entries are read
/// one by one, so a broken entry is reported and left out without hiding the others; inside
/// each part, a key that fails is reported, dropped, and the part read again. Returns the raw
/// config and, for each account kept, its index in the file.
pub(super) fn deserialize(
    mut tree: Table,
    problems: &mut Problems,
    bad_paths: &mut Vec<String>,
) -> (RawConfig, Vec<usize>) {
    let mut accounts = tree.remove("accounts");
    simulated_accounts(&mut accounts, problems);
    let client_keys = tree.remove("client_keys");
    let mut raw: RawConfig =
        lenient(Value::Table(tree), "", problems, bad_paths).unwrap_or_default();
    let (accounts, account_index) = elements(accounts, "accounts", problems, bad_paths);
    raw.accounts = accounts;
    raw.client_keys = elements(client_keys, "client_keys", problems, bad_paths).0;
    (raw, account_index)
}

/// `kind = "simulated"` (the built-in simulated upstream) is written as an API-key account
/// on [`ferry_server::SIMULATED_BASE_URL`] that serves every model
/// ([`ferry_server::simulated_account`]): the server points it at its own simulator. Its
/// `base_url`, `api_key` and `default_model` default to the simulator's; an `api_key` is a
/// problem (the simulator takes none).
fn simulated_accounts(accounts: &mut Option<Value>, problems: &mut Problems) {
    let Some(Value::Array(items)) = accounts else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        let Value::Table(t) = item else { continue };
        if t.get("kind").and_then(Value::as_str) != Some("simulated") {
            continue;
        }
        t.insert("kind".to_owned(), Value::String("api_key".to_owned()));
        if t.remove("api_key").is_some() {
            problems.push(
                format!("accounts[{i}].api_key"),
                "is not used by kind = \"simulated\"".to_owned(),
            );
        }
        let name = t.get("name").and_then(Value::as_str).unwrap_or("simulated");
        let defaults = ferry_server::simulated_account(name);
        t.insert(
            "api_key".to_owned(),
            Value::String(
                defaults
                    .api_key
                    .map(|k| k.expose().to_owned())
                    .unwrap_or_default(),
            ),
        );
        for (key, value) in [
            ("base_url", defaults.base_url),
            ("default_model", defaults.default_model),
        ] {
            if let Some(value) = value {
                t.entry(key.to_owned()).or_insert(Value::String(value));
            }
        }
    }
}

/// The entries of an array of tables that deserialise, with their indexes in the file.
fn elements<T: DeserializeOwned>(
    value: Option<Value>,
    name: &str,
    problems: &mut Problems,
    bad_paths: &mut Vec<String>,
) -> (Vec<T>, Vec<usize>) {
    let items = match value {
        None => return (Vec::new(), Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(
                name,
                format!("must be an array of tables, written [[{name}]]"),
            );
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
    problems: &mut Problems,
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
                problems.push(&path, message);
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
pub(super) fn reindex(path: &str, name: &str, index: &[usize]) -> String {
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
