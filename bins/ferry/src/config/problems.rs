//! The wording of a problem: TOML and serde errors on one line, a syntax error by line and
//! column without the file's text, and no secret value in any message.

use toml::{Table, Value};

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
pub(super) fn secret_values(tree: &Table) -> Vec<String> {
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
pub(super) fn redact(message: &str, secrets: &[String]) -> String {
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
pub(super) fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let what = one_line(e.message());
    let Some(span) = e.span() else { return what };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {what}")
}

/// TOML errors come with a source excerpt over several lines; keep them on one.
pub(super) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
