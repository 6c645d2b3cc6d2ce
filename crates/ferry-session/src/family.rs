//! Model families by rule: a GPT model id is read as provider prefix, generation number and
//! variants, so a model newer than any table (`gpt-6.1-codex-terra`) is recognised without a
//! release of ferry.
//!
//! The grammar, on the trimmed, lowercased id: an optional provider prefix (everything up
//! to the last `/`: `openai/`, `azure/openai/`), then `gpt-`, a generation `MAJOR` or
//! `MAJOR.MINOR`, then `-`-separated variants (`codex`, `mini`, `nano`, `max`, `spark`,
//! named ones such as `sol`, `terra`, `luna`, `astra`). A `-YYYY-MM-DD` date is kept apart,
//! and reasoning-effort suffixes (`-high`, `(high)`) are not variants. Non-GPT Codex ids
//! (`codex-mini-latest`) form their own family.
//!
//! Every per-family decision of ferry asks [`ModelFamily::of`]: whether a derived
//! `prompt_cache_key` is sent ([`crate::keys::should_auto_inject`]), whether continuation
//! and the todo guard apply, and the catalog lookups of the accounts crate.

use std::fmt;

/// A parsed `gpt-N[.M][-variant…]` model id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptModel {
    /// The provider prefix without its trailing `/` (`openai`), if any.
    pub provider: Option<String>,
    /// The generation's major number (`5` of `gpt-5.4`).
    pub major: u32,
    /// The generation's minor number (`4` of `gpt-5.4`); `None` for `gpt-5`.
    pub minor: Option<u32>,
    /// The variants in order (`["codex", "mini"]` of `gpt-5.1-codex-mini`).
    pub variants: Vec<String>,
    /// A `YYYY-MM-DD` snapshot date, if the id carries one.
    pub date: Option<String>,
}

impl GptModel {
    /// The generation as written (`5.4`, `6`).
    pub fn generation(&self) -> String {
        match self.minor {
            Some(minor) => format!("{}.{minor}", self.major),
            None => self.major.to_string(),
        }
    }

    /// `gpt-<generation>` (no variants, provider or date).
    pub fn base(&self) -> String {
        format!("gpt-{}", self.generation())
    }

    /// `gpt-<generation>[-variant…]`: the id without provider, date or effort suffix.
    pub fn canonical(&self) -> String {
        let mut id = self.base();
        for v in &self.variants {
            id.push('-');
            id.push_str(v);
        }
        id
    }

    /// True when `variant` is one of the variants.
    pub fn has_variant(&self, variant: &str) -> bool {
        self.variants.iter().any(|v| v == variant)
    }

    /// `(major, minor)` with a missing minor read as 0, for ordering generations.
    pub fn version(&self) -> (u32, u32) {
        (self.major, self.minor.unwrap_or(0))
    }
}

impl fmt::Display for GptModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The family a model id belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelFamily {
    /// A `gpt-N…` model.
    Gpt(GptModel),
    /// A Codex model outside the `gpt-` names (`codex-mini-latest`).
    Codex,
    /// Anything else (`o3`, `claude-*`, a local model).
    Other,
}

/// Reasoning-effort tokens that end an id but are not variants.
const EFFORT_TOKENS: &[&str] = &[
    "none",
    "minimal",
    "low",
    "medium",
    "high",
    "xhigh",
    "extrahigh",
];

impl ModelFamily {
    /// Reads the family of `model` (see the module docs for the grammar).
    pub fn of(model: &str) -> Self {
        let lower = model.trim().to_ascii_lowercase();
        let (provider, id) = match lower.rsplit_once('/') {
            Some((p, id)) => (Some(p.trim().to_owned()).filter(|p| !p.is_empty()), id),
            None => (None, lower.as_str()),
        };
        // `gpt-5.4(high)`: the parenthesised effort is not part of the id.
        let id = match id.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
            Some((stem, _)) => stem,
            None => id,
        };
        let id: String = id
            .trim()
            .chars()
            .map(|c| if c == '_' || c == ' ' { '-' } else { c })
            .collect();
        match parse_gpt(&id, provider) {
            Some(gpt) => Self::Gpt(gpt),
            None if id.contains("codex") => Self::Codex,
            None => Self::Other,
        }
    }

    /// The parsed GPT model, if this is one.
    pub fn gpt(&self) -> Option<&GptModel> {
        match self {
            Self::Gpt(g) => Some(g),
            _ => None,
        }
    }

    /// The Responses-era reasoning families: GPT generation 5 and later, and every Codex
    /// model. These get a derived prompt cache key, continuation and the todo guard.
    pub fn is_reasoning_gpt(&self) -> bool {
        match self {
            Self::Gpt(g) => g.major >= 5 || g.has_variant("codex"),
            Self::Codex => true,
            Self::Other => false,
        }
    }
}

fn parse_gpt(id: &str, provider: Option<String>) -> Option<GptModel> {
    let rest = id.strip_prefix("gpt-")?;
    let mut parts = rest.split('-').filter(|p| !p.is_empty());
    let generation = parts.next()?;
    let (major, minor) = match generation.split_once('.') {
        Some((a, b)) => (a.parse().ok()?, Some(b.parse().ok()?)),
        None => (generation.parse().ok()?, None),
    };
    let tokens: Vec<&str> = parts.collect();
    let mut variants: Vec<String> = Vec::new();
    let mut date = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        let is_year = t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit());
        if is_year
            && i + 2 < tokens.len()
            && [tokens[i + 1], tokens[i + 2]]
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            date = Some(format!("{t}-{}-{}", tokens[i + 1], tokens[i + 2]));
            i += 3;
            continue;
        }
        variants.push(t.to_owned());
        i += 1;
    }
    // A trailing effort token is a reasoning suffix, not a variant (`gpt-6-high`); `max`
    // stays (`gpt-5.1-codex-max` is a model).
    if variants
        .last()
        .is_some_and(|v| EFFORT_TOKENS.contains(&v.as_str()))
    {
        variants.pop();
    }
    Some(GptModel {
        provider,
        major,
        minor,
        variants,
        date,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn gpt(model: &str) -> GptModel {
        ModelFamily::of(model).gpt().cloned().unwrap()
    }

    #[test]
    fn generations_variants_and_prefixes() {
        let g = gpt("gpt-5.1-codex-mini");
        assert_eq!((g.major, g.minor), (5, Some(1)));
        assert_eq!(g.variants, vec!["codex", "mini"]);
        assert_eq!(g.canonical(), "gpt-5.1-codex-mini");

        let g = gpt("openai/GPT-6-Terra");
        assert_eq!(g.provider.as_deref(), Some("openai"));
        assert_eq!((g.major, g.minor), (6, None));
        assert_eq!(g.variants, vec!["terra"]);

        let g = gpt("gpt-6.2-codex-sol-2026-09-01");
        assert_eq!(g.variants, vec!["codex", "sol"]);
        assert_eq!(g.date.as_deref(), Some("2026-09-01"));
        assert_eq!(g.base(), "gpt-6.2");

        assert_eq!(gpt("gpt-5.4-xhigh").canonical(), "gpt-5.4");
        assert_eq!(gpt("gpt-5.4(high)").canonical(), "gpt-5.4");
        assert_eq!(gpt("gpt-5.1-codex-max").variants, vec!["codex", "max"]);
        assert_eq!(gpt("gpt_5.6 luna").canonical(), "gpt-5.6-luna");
        assert_eq!(gpt("gpt-4o").major, 4);
    }

    #[test]
    fn reasoning_families() {
        for model in [
            "gpt-5",
            "gpt-5.4-nano",
            "gpt-6",
            "gpt-6-mini",
            "gpt-6.1-codex-astra",
            "openai/gpt-7.3",
            "codex-mini-latest",
            "azure/openai/gpt-5.6-sol",
        ] {
            assert!(ModelFamily::of(model).is_reasoning_gpt(), "{model}");
        }
        for model in [
            "gpt-4o",
            "gpt-4.1-mini",
            "o3",
            "claude-opus-4-8",
            "gpt-",
            "gpt-x",
            "llama-3",
            "",
        ] {
            assert!(!ModelFamily::of(model).is_reasoning_gpt(), "{model}");
        }
    }
}
