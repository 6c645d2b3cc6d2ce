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
//! Each entry is `{type: "model", id, display_name, created_at}` as Anthropic sends it, plus
//! `upstream_model`, `context_window` and `max_output_tokens` (from [`upstream_limits`];
//! `null` for a model not in the table) and `account`. The list is sorted by id; pagination
//! fields are `has_more: false`, `first_id`, `last_id`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use ferry_accounts::glob_match;

use crate::config::Config;

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

/// Context window and output limit (tokens) of an upstream model, from OpenAI's model
/// pages: GPT-5 family (gpt-5, gpt-5.x, their -codex, -mini, -nano variants) 400k/128k;
/// codex-mini-latest 200k/100k; o3/o4-mini/o1 200k/100k; gpt-4.1 family ~1M/32k;
/// gpt-4o family 128k/16k. `None` for anything else.
pub(crate) fn upstream_limits(model: &str) -> Option<(u64, u64)> {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    if m.starts_with("gpt-5") {
        Some((400_000, 128_000))
    } else if m.starts_with("codex-mini")
        || m.starts_with("o3")
        || m.starts_with("o4-mini")
        || m.starts_with("o1")
    {
        Some((200_000, 100_000))
    } else if m.starts_with("gpt-4.1") {
        Some((1_047_576, 32_768))
    } else if m.starts_with("gpt-4o") {
        Some((128_000, 16_384))
    } else {
        None
    }
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

/// The Anthropic-style model list of what `config` maps (see the module docs).
pub(crate) fn models_body(config: &Config) -> Value {
    let mut accounts: Vec<_> = config.accounts.iter().collect();
    accounts.sort_by_key(|a| a.priority); // stable: file order within a priority
    // id → (upstream model, account)
    let mut mapped: BTreeMap<String, (String, String)> = BTreeMap::new();
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
            let route = account.route_model(id);
            mapped
                .entry(id.to_owned())
                .or_insert_with(|| (route.upstream, account.name.clone()));
        }
    }
    let data: Vec<Value> = mapped
        .iter()
        .map(|(id, (upstream, account))| {
            let created_at = KNOWN_CLIENT_MODELS
                .iter()
                .find(|(k, _)| k == id)
                .map_or(UNKNOWN_CREATED_AT, |(_, c)| c);
            let limits = upstream_limits(upstream);
            json!({
                "type": "model",
                "id": id,
                "display_name": display_name(id),
                "created_at": created_at,
                "upstream_model": upstream,
                "context_window": limits.map(|l| l.0),
                "max_output_tokens": limits.map(|l| l.1),
                "account": account,
            })
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": mapped.keys().next(),
        "last_id": mapped.keys().next_back(),
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use ferry_accounts::ModelMapping;

    use crate::config::{Config, simulated_account};

    #[test]
    fn lists_exact_glob_and_default_mappings() {
        let mut config = Config::for_tests();
        let mut primary = simulated_account("primary");
        primary.model_mapping = ModelMapping::from_rules([
            ("claude-opus-4-8", "gpt-5.1-codex"),
            ("claude-haiku-*", "gpt-5.1-codex-mini"),
            ("my-alias", "some-other-model"),
        ]);
        let mut backup = simulated_account("backup");
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
                "context_window": 400_000, "max_output_tokens": 128_000, "account": "primary",
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
        let body = models_body(&Config::for_tests());
        assert_eq!(
            body,
            json!({"data": [], "has_more": false, "first_id": null, "last_id": null})
        );
    }

    #[test]
    fn limits_and_names() {
        assert_eq!(
            upstream_limits("gpt-5.1-codex-mini"),
            Some((400_000, 128_000))
        );
        assert_eq!(upstream_limits("openai/gpt-5.4"), Some((400_000, 128_000)));
        assert_eq!(
            upstream_limits("codex-mini-latest"),
            Some((200_000, 100_000))
        );
        assert_eq!(upstream_limits("gpt-4.1-mini"), Some((1_047_576, 32_768)));
        assert_eq!(upstream_limits("llama"), None);
        assert_eq!(
            display_name("claude-3-5-haiku-20241022"),
            "Claude 3.5 Haiku"
        );
        assert_eq!(display_name("claude-opus-4-1"), "Claude Opus 4.1");
    }
}
