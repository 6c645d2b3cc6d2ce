//! Per-account model overrides (`[accounts.models."<model or glob>"]`): what ferry should
//! assume about an upstream model it cannot know.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{glob_match, specificity};

/// One override entry. Every field is optional; an absent field keeps ferry's own rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverride {
    /// Treat the model as this one for every per-family decision (derived prompt cache
    /// key, continuation, todo guard): `family = "gpt-5"` makes a fine-tune named
    /// `acme-coder` behave like a GPT-5 model.
    #[serde(default)]
    pub family: Option<String>,
}

/// The `models` table of an account: upstream model id (or `*` glob) → [`ModelOverride`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ModelOverrides(BTreeMap<String, ModelOverride>);

impl ModelOverrides {
    /// Builds the table from `(pattern, override)` pairs.
    pub fn from_entries<I, K>(entries: I) -> Self
    where
        I: IntoIterator<Item = (K, ModelOverride)>,
        K: Into<String>,
    {
        Self(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The entries, ordered by pattern.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ModelOverride)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The entry for `model`: an exact key first (case-insensitive, trimmed), then the most
    /// specific matching glob, as in `model_mapping`.
    pub fn resolve(&self, model: &str) -> Option<&ModelOverride> {
        let model = model.trim().to_ascii_lowercase();
        let mut best: Option<(&str, &ModelOverride)> = None;
        for (pattern, entry) in &self.0 {
            let p = pattern.trim().to_ascii_lowercase();
            if p == model {
                return Some(entry);
            }
            if !p.contains('*') || !glob_match(&p, &model) {
                continue;
            }
            if best.is_none_or(|(current, _)| specificity(pattern) > specificity(current)) {
                best = Some((pattern, entry));
            }
        }
        best.map(|(_, e)| e)
    }

    /// The model whose family rules apply to `model`: the override's `family`, else `model`.
    pub fn family_model(&self, model: &str) -> String {
        self.resolve(model)
            .and_then(|o| o.family.as_deref())
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or(model)
            .trim()
            .to_owned()
    }
}
