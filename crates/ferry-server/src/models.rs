//! The body of `GET /v1/models`: the client-side model names the config maps, in the shape
//! of Anthropic's model list, each with the upstream model it goes to and that model's
//! context window.
//!
//! [`models_body`] lists, over the accounts in priority order (the first account to map a
//! name wins):
//! - every exact key of `model_mapping`;
//! - for a glob key (`claude-haiku-*`), the [`KNOWN_CLIENT_MODELS`] it matches;
//! - with a `default_model`, every other known Claude model (they would go there).
//!
//! The upstream model of each is what the account's own routing gives
//! (`AccountConfig::route_model`), so the list never disagrees with the pipeline.
//!
//! Each entry is Anthropic's model object (`type`, `id`, `display_name`, `created_at`,
//! `max_input_tokens`, `max_tokens`, `capabilities.effort`) from the account's catalog entry
//! for the upstream model (`AccountConfig::model_spec`: the built-in table with the account's
//! overrides, the Codex backend's window on OAuth accounts), plus `upstream_model`,
//! `context_window`, `max_output_tokens`, `efforts`, `backend`, `responses_lite` and
//! `account`; the limits are `null` for a model the catalog does not know. The list is
//! sorted by id and paginated as Anthropic's (`limit` 1–1000, default 20; `after_id`,
//! `before_id`; `has_more`, `first_id`, `last_id`); `GET /v1/models/{id}` answers for every
//! listed id.

use std::collections::BTreeMap;

use ferry_apicompat::{anthropic, responses};
use serde_json::{Value, json};

use ferry_accounts::{Backend, Effort, ModelSpec, glob_match};

use crate::config::Config;
use crate::error::Error;

/// Client-side model ids ferry knows, with their release date (Anthropic's `created_at`).
pub(crate) const KNOWN_CLIENT_MODELS: &[(&str, &str)] = &[
    ("claude-opus-4-8", "2026-03-01T00:00:00Z"),
    ("claude-opus-4-6", "2025-12-01T00:00:00Z"),
    ("claude-opus-4-5", "2025-11-24T00:00:00Z"),
    ("claude-opus-4-5-20251101", "2025-11-24T00:00:00Z"),
    ("claude-opus-4-1", "2025-08-05T00:00:00Z"),
    ("claude-opus-4-1-20250805", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-5", "2025-09-29T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "2025-09-29T00:00:00Z"),
    ("claude-sonnet-4-0", "2025-05-22T00:00:00Z"),
    ("claude-sonnet-4-20250514", "2025-05-22T00:00:00Z"),
    ("claude-haiku-4-5", "2025-10-15T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "2025-10-15T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "2024-10-22T00:00:00Z"),
];

/// `created_at` for a name that is not in [`KNOWN_CLIENT_MODELS`].
const UNKNOWN_CREATED_AT: &str = "1970-01-01T00:00:00Z";

/// Page size when the client gives no `limit` (Anthropic's default).
const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` (Anthropic's bound; Claude Code asks for 1000).
const MAX_LIMIT: usize = 1000;

/// Sets `reasoning.effort` to what the upstream model accepts ([`ModelSpec::clamp_effort`]).
///
/// The converter maps Anthropic's `max` to `xhigh`; a model that takes `max` natively
/// (GPT-5.6) gets `max`, and a model without `xhigh` gets its highest effort. Efforts ferry
/// does not know, and models without an effort list, are left alone.
pub(crate) fn clamp_effort(
    body: &mut responses::Request,
    req: &anthropic::MessagesRequest,
    spec: Option<&ModelSpec>,
) {
    let Some(spec) = spec else { return };
    let Some(reasoning) = body.reasoning.as_mut() else {
        return;
    };
    let Some(current) = reasoning.effort.as_ref() else {
        return;
    };
    let asked_max = req
        .output_config
        .as_ref()
        .is_some_and(|o| o.effort == Some(anthropic::Effort::Max));
    let requested = if asked_max {
        Some(Effort::Max)
    } else {
        serde_json::to_value(current)
            .ok()
            .as_ref()
            .and_then(Value::as_str)
            .and_then(Effort::parse)
    };
    let Some(requested) = requested else { return };
    let effort = spec.clamp_effort(requested);
    if let Ok(e) = serde_json::from_value(Value::String(effort.as_str().to_owned())) {
        reasoning.effort = Some(e);
    }
}

/// One listed model: its id and the account and upstream model it goes to.
struct Listed {
    id: String,
    upstream: String,
    account: String,
    spec: Option<ModelSpec>,
    backend: Backend,
}

/// What `config` maps, sorted by id, the first account (by priority) to map a name winning.
fn listed(config: &Config) -> Vec<Listed> {
    let mut accounts: Vec<_> = config.accounts.iter().collect();
    accounts.sort_by_key(|a| a.priority); // stable: file order within a priority
    let mut mapped: BTreeMap<String, Listed> = BTreeMap::new();
    for account in &accounts {
        let mut ids: Vec<&str> = Vec::new();
        for (from, _) in account.model_mapping.rules() {
            if from.contains('*') {
                ids.extend(
                    KNOWN_CLIENT_MODELS
                        .iter()
                        .map(|(known, _)| *known)
                        .filter(|known| glob_match(from, known)),
                );
            } else {
                ids.push(from);
            }
        }
        if account.default_model.is_some() {
            ids.extend(KNOWN_CLIENT_MODELS.iter().map(|(known, _)| *known));
        }
        for id in ids {
            if mapped.contains_key(id) {
                continue;
            }
            let route = account.route_model(id);
            mapped.insert(
                id.to_owned(),
                Listed {
                    id: id.to_owned(),
                    spec: account.model_spec(&route.upstream),
                    upstream: route.upstream,
                    account: account.name.clone(),
                    backend: account.backend(),
                },
            );
        }
    }
    mapped.into_values().collect()
}

/// Anthropic's `capabilities.effort` for an upstream effort list: `low`, `medium` and
/// `high` as themselves, `max` when the model takes `xhigh` or `max`.
fn effort_capability(efforts: &[Effort]) -> Value {
    let has = |e: Effort| efforts.contains(&e);
    json!({
        "supported": !efforts.is_empty(),
        "low": {"supported": has(Effort::Low)},
        "medium": {"supported": has(Effort::Medium)},
        "high": {"supported": has(Effort::High)},
        "max": {"supported": has(Effort::Xhigh) || has(Effort::Max)},
    })
}

fn entry(m: &Listed) -> Value {
    let created_at = KNOWN_CLIENT_MODELS
        .iter()
        .find(|(k, _)| *k == m.id)
        .map_or(UNKNOWN_CREATED_AT, |(_, c)| c);
    let spec = m.spec.as_ref();
    let mut v = json!({
        "type": "model",
        "id": m.id,
        "display_name": display_name(&m.id),
        "created_at": created_at,
        "max_input_tokens": spec.map(|s| s.context_window),
        "max_tokens": spec.map(|s| s.max_output_tokens),
        "upstream_model": m.upstream,
        "context_window": spec.map(|s| s.context_window),
        "max_output_tokens": spec.map(|s| s.max_output_tokens),
        "efforts": spec.map(|s| s.efforts.clone()),
        "backend": m.backend,
        "responses_lite": spec.map(|s| s.responses_lite && m.backend == Backend::Codex),
        "account": m.account,
    });
    if let Some(s) = spec {
        v["capabilities"] = json!({ "effort": effort_capability(&s.efforts) });
    }
    v
}

/// The query of `GET /v1/models`: `limit`, `after_id`, `before_id`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    after_id: Option<String>,
    before_id: Option<String>,
}

impl ListQuery {
    /// Reads the query string (unknown parameters are ignored).
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut q = Self::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "limit" => q.limit = Some(v),
                "after_id" => q.after_id = Some(v),
                "before_id" => q.before_id = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// Decodes `%XX` escapes and `+` (a malformed escape is kept as it is).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One page of the Anthropic-style model list of what `config` maps (see the module docs).
///
/// # Errors
///
/// [`Error::InvalidRequest`] for a `limit` outside 1–1000, both cursors at once, or a
/// cursor that is not a listed id.
pub(crate) fn models_page(config: &Config, query: &ListQuery) -> Result<Value, Error> {
    let all = listed(config);
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(Error::InvalidRequest(format!(
                    "limit: must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
                )));
            }
        },
    };
    let position = |cursor: &str, name: &str| {
        all.iter().position(|m| m.id == cursor).ok_or_else(|| {
            Error::InvalidRequest(format!("{name}: {cursor:?} is not a listed model id"))
        })
    };
    let (start, end, has_more) = match (&query.after_id, &query.before_id) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest(
                "after_id and before_id cannot be used together".into(),
            ));
        }
        (Some(after), None) => {
            let start = position(after, "after_id")? + 1;
            let end = (start + limit).min(all.len());
            (start, end, end < all.len())
        }
        (None, Some(before)) => {
            let end = position(before, "before_id")?;
            let start = end.saturating_sub(limit);
            (start, end, start > 0)
        }
        (None, None) => {
            let end = limit.min(all.len());
            (0, end, end < all.len())
        }
    };
    let page = &all[start..end];
    Ok(json!({
        "data": page.iter().map(entry).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|m| m.id.as_str()),
        "last_id": page.last().map(|m| m.id.as_str()),
    }))
}

/// `GET /v1/models/{id}`: the listed entry for `id`; a client suffix (`[1m]`, `-fast`)
/// answers as its base name.
///
/// # Errors
///
/// [`Error::UnknownModel`] when nothing maps `id`.
pub(crate) fn model_by_id(config: &Config, id: &str) -> Result<Value, Error> {
    let all = listed(config);
    let (base, _) = ferry_accounts::strip_client_suffixes(id);
    all.iter()
        .find(|m| m.id == id)
        .or_else(|| all.iter().find(|m| m.id == base))
        .map(entry)
        .ok_or_else(|| Error::UnknownModel {
            model: id.to_owned(),
        })
}

/// The whole list (every page), as [`models_page`] with the largest limit.
/// A model that reached the upstream side still named as a Claude model: no mapping rule
/// and no `default_model` applied to it, so the OpenAI upstream cannot serve it.
pub(crate) fn is_unmapped(upstream_model: &str) -> bool {
    upstream_model
        .trim()
        .to_ascii_lowercase()
        .starts_with("claude")
}

#[cfg(test)]
pub(crate) fn models_body(config: &Config) -> Value {
    let query = ListQuery {
        limit: Some(MAX_LIMIT.to_string()),
        ..ListQuery::default()
    };
    models_page(config, &query).unwrap_or_default()
}

/// `claude-haiku-4-5-20251001` → `Claude Haiku 4.5`; other ids are shown as they are.
fn display_name(id: &str) -> String {
    let mut parts = id.split('-');
    if parts.next() != Some("claude") {
        return id.to_owned();
    }
    let mut words = vec!["Claude".to_owned()];
    let mut version: Vec<&str> = Vec::new();
    for part in parts {
        let numeric = part.chars().all(|c| c.is_ascii_digit());
        if numeric && part.len() == 8 {
            continue; // a date suffix
        }
        if numeric {
            version.push(part);
        } else {
            if !version.is_empty() {
                words.push(version.join("."));
                version.clear();
            }
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                words.push(first.to_uppercase().chain(chars).collect());
            }
        }
    }
    if !version.is_empty() {
        words.push(version.join("."));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use ferry_accounts::ModelMapping;

    use crate::config::Config;

    /// An API-key account with no mapping (what the listing tests start from).
    fn plain_account(name: &str) -> ferry_accounts::AccountConfig {
        ferry_accounts::AccountConfig::api_key(
            name,
            "http://127.0.0.1:1/v1",
            ferry_accounts::Secret::new("sk-test"),
        )
    }

    #[test]
    fn lists_exact_glob_and_default_mappings() {
        let mut config = Config::for_tests();
        let mut primary = plain_account("primary");
        primary.model_mapping = ModelMapping::from_rules([
            ("claude-opus-4-8", "gpt-5.1-codex"),
            ("claude-haiku-*", "gpt-5.1-codex-mini"),
            ("my-alias", "some-other-model"),
        ]);
        let mut backup = plain_account("backup");
        backup.priority = 1;
        backup.default_model = Some("gpt-5.1".to_owned());
        backup.model_mapping = ModelMapping::from_rules([("claude-opus-4-8", "gpt-4o")]);
        config.accounts = vec![backup, primary];

        let body = models_body(&config);
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"claude-haiku-4-5-20251001"), "{ids:?}");
        assert!(ids.contains(&"claude-sonnet-4-5"), "{ids:?}");
        assert!(ids.contains(&"my-alias"), "{ids:?}");
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted);
        assert_eq!(body["has_more"], json!(false));
        assert_eq!(body["first_id"], json!(ids[0]));
        assert_eq!(body["last_id"], json!(ids[ids.len() - 1]));

        let entry = |id: &str| {
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == json!(id))
                .unwrap()
                .clone()
        };
        // The higher-priority (lower number) account wins.
        assert_eq!(
            entry("claude-opus-4-8"),
            json!({
                "type": "model", "id": "claude-opus-4-8", "display_name": "Claude Opus 4.8",
                "created_at": "2026-03-01T00:00:00Z", "upstream_model": "gpt-5.1-codex",
                "max_input_tokens": 400_000, "max_tokens": 128_000,
                "context_window": 400_000, "max_output_tokens": 128_000,
                "efforts": ["low", "medium", "high", "xhigh"], "backend": "api",
                "responses_lite": false, "account": "primary",
                "capabilities": {"effort": {
                    "supported": true, "low": {"supported": true},
                    "medium": {"supported": true}, "high": {"supported": true},
                    "max": {"supported": true},
                }},
            })
        );
        assert_eq!(
            entry("claude-haiku-4-5-20251001")["display_name"],
            json!("Claude Haiku 4.5")
        );
        assert_eq!(
            entry("claude-sonnet-4-5")["upstream_model"],
            json!("gpt-5.1")
        );
        assert_eq!(entry("claude-sonnet-4-5")["account"], json!("backup"));
        assert_eq!(entry("my-alias")["context_window"], json!(null));
        assert_eq!(entry("my-alias")["display_name"], json!("my-alias"));
    }

    #[test]
    fn nothing_mapped_is_an_empty_list() {
        // The test config's simulated account serves every model (a default mapping), so
        // "nothing mapped" is an account with no mapping at all.
        let mut config = Config::for_tests();
        config.accounts = vec![plain_account("plain")];
        let body = models_body(&config);
        assert_eq!(
            body,
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
    }

    #[test]
    fn names_and_percent_decoding() {
        assert_eq!(
            display_name("claude-3-5-haiku-20241022"),
            "Claude 3.5 Haiku"
        );
        assert_eq!(display_name("claude-opus-4-1"), "Claude Opus 4.1");
        assert_eq!(
            percent_decode("claude-opus-4-8%5B1m%5D"),
            "claude-opus-4-8[1m]"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%zz+b"), "a%zz b");
    }

    #[test]
    fn pages_follow_the_cursors() {
        let mut config = Config::for_tests();
        let mut a = plain_account("primary");
        a.model_mapping = ModelMapping::from_rules([
            ("m1", "gpt-5.5"),
            ("m2", "gpt-5.5"),
            ("m3", "gpt-5.5"),
            ("m4", "gpt-5.5"),
            ("m5", "gpt-5.5"),
        ]);
        config.accounts = vec![a];
        let page = |q: &str| models_page(&config, &ListQuery::parse(Some(q)));
        let ids = |v: &Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = page("limit=2").unwrap();
        assert_eq!(ids(&first), ["m1", "m2"]);
        assert_eq!(
            (&first["has_more"], &first["first_id"], &first["last_id"]),
            (&json!(true), &json!("m1"), &json!("m2"))
        );
        let next = page("limit=2&after_id=m2").unwrap();
        assert_eq!(ids(&next), ["m3", "m4"]);
        let last = page("limit=2&after_id=m4").unwrap();
        assert_eq!(
            (ids(&last), &last["has_more"]),
            (vec!["m5".to_owned()], &json!(false))
        );
        let back = page("limit=2&before_id=m5").unwrap();
        assert_eq!(
            (ids(&back), &back["has_more"]),
            (vec!["m3".to_owned(), "m4".to_owned()], &json!(true))
        );
        let back = page("limit=2&before_id=m3").unwrap();
        assert_eq!(
            (ids(&back), &back["has_more"]),
            (vec!["m1".to_owned(), "m2".to_owned()], &json!(false))
        );
        assert_eq!(ids(&page("").unwrap()).len(), 5);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "after_id=nope",
            "after_id=m1&before_id=m3",
        ] {
            assert!(matches!(page(bad), Err(Error::InvalidRequest(_))), "{bad}");
        }
    }

    #[test]
    fn effort_follows_the_catalog() {
        let clamp = |model: &str, effort: &str| {
            let req: anthropic::MessagesRequest = serde_json::from_value(json!({
                "model": "claude-opus-4-8", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "output_config": {"effort": effort},
            }))
            .unwrap();
            let opts = ferry_apicompat::convert::request::Options::new().with_model(model);
            let mut body = ferry_apicompat::convert::request::convert(&req, &opts)
                .unwrap()
                .value;
            let spec = ferry_accounts::builtin_spec(model, Backend::Api);
            clamp_effort(&mut body, &req, spec.as_ref());
            serde_json::to_value(&body).unwrap()["reasoning"]["effort"].clone()
        };
        assert_eq!(clamp("gpt-5.6-sol", "max"), json!("max"));
        assert_eq!(clamp("gpt-6-terra", "max"), json!("max"));
        assert_eq!(clamp("gpt-5.5", "max"), json!("xhigh"));
        assert_eq!(clamp("gpt-5", "max"), json!("high"));
        assert_eq!(clamp("gpt-5.6-luna", "low"), json!("low"));
        assert_eq!(clamp("my-local", "max"), json!("xhigh"));
    }
}
