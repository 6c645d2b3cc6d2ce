//! `[[client_keys]]`: the keys clients present, and their budgets.

use serde::Deserialize;

use super::Secret;
use super::problems::{Problems, check_unexpanded};

/// One `[[client_keys]]` entry.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// Name used in logs and usage records.
    pub name: String,
    /// The key clients present.
    pub key: Secret,
    /// Limits per day and month (empty: none).
    pub budget: crate::prices::Budget,
}
/// `[[client_keys]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClientKey {
    /// Name for logs.
    pub name: Option<String>,
    /// The key.
    pub key: Option<String>,
    /// Optional limits per UTC day and month.
    pub budget: Option<RawBudget>,
}
/// `[client_keys.budget]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBudget {
    /// tokens (prompt + output) per UTC day
    pub daily_tokens: Option<u64>,
    /// tokens per UTC month
    pub monthly_tokens: Option<u64>,
    /// USD per UTC day
    pub daily_usd: Option<f64>,
    /// USD per UTC month
    pub monthly_usd: Option<f64>,
}
fn validate_budget(raw: Option<RawBudget>, i: usize, p: &mut Problems) -> crate::prices::Budget {
    let Some(b) = raw else {
        return crate::prices::Budget::default();
    };
    for (field, v) in [("daily_usd", b.daily_usd), ("monthly_usd", b.monthly_usd)] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            p.push(
                format!("client_keys[{i}].budget.{field}"),
                format!("must be a positive number of USD, got {v}"),
            );
        }
    }
    for (field, v) in [
        ("daily_tokens", b.daily_tokens),
        ("monthly_tokens", b.monthly_tokens),
    ] {
        if v == Some(0) {
            p.push(
                format!("client_keys[{i}].budget.{field}"),
                "must be at least 1 (leave it out for no limit)",
            );
        }
    }
    crate::prices::Budget {
        daily_tokens: b.daily_tokens,
        monthly_tokens: b.monthly_tokens,
        daily_usd: b.daily_usd,
        monthly_usd: b.monthly_usd,
    }
}
pub(super) fn validate_client_keys(raw: Vec<RawClientKey>, p: &mut Problems) -> Vec<ClientKey> {
    let mut out: Vec<ClientKey> = Vec::with_capacity(raw.len());
    for (i, k) in raw.into_iter().enumerate() {
        let name = k.name.unwrap_or_default().trim().to_owned();
        if name.is_empty() {
            p.push(format!("client_keys[{i}].name"), "is required");
        } else if out.iter().any(|o| o.name == name) {
            p.push(
                format!("client_keys[{i}].name"),
                format!("duplicate client key name {name:?}"),
            );
        }
        let key = k.key.unwrap_or_default();
        check_unexpanded(p, &format!("client_keys[{i}].key"), &key);
        if key.trim().is_empty() {
            p.push(
                format!("client_keys[{i}].key"),
                "is required and must not be empty",
            );
        } else if key.trim() != key {
            p.push(
                format!("client_keys[{i}].key"),
                "must not start or end with whitespace",
            );
        } else if out.iter().any(|o| o.key.expose() == key) {
            p.push(
                format!("client_keys[{i}].key"),
                "the same key is configured twice",
            );
        }
        let budget = validate_budget(k.budget, i, p);
        out.push(ClientKey {
            name,
            key: Secret::new(key),
            budget,
        });
    }
    out
}
