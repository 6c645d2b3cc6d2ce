//! `${NAME}` references in the file's string values, replaced from the passed environment.

use std::collections::BTreeMap;

use ferry_server::config::Problems;
use toml::Value;

/// Expands `${NAME}` in every string under `value` (keys are left alone).
pub(super) fn expand_value(
    value: &mut Value,
    path: &str,
    env: &BTreeMap<String, String>,
    problems: &mut Problems,
) {
    match value {
        Value::String(s) => match expand(s, env) {
            Ok(expanded) => *s = expanded,
            Err(message) => problems.push(path, message),
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
pub(super) fn expand(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
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
