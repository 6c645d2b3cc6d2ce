//! The model catalog: what ferry knows of each upstream model (context window, output
//! limit, reasoning efforts, the Codex backend's smaller window and request shape), and the
//! per-account overrides (`[accounts.models."<model or glob>"]`) for what it cannot know.
//!
//! One table, [`BUILTIN`], keyed by `*` globs over the model's canonical id (provider
//! prefix, date and effort suffix removed; see [`ModelFamily`]); the most specific match
//! wins. A GPT generation newer than every row takes the newest row's figures (the
//! family continues), so `gpt-6-*` is served with GPT-5.6 limits until the table or an
//! override says otherwise. docs/models.md lists the table.

use std::collections::BTreeMap;

use ferry_session::ModelFamily;
use serde::{Deserialize, Serialize};

use crate::model::{glob_match, specificity};

/// A reasoning effort an upstream model accepts (`reasoning.effort`), in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    /// No reasoning.
    None,
    /// Minimal.
    Minimal,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Extra high.
    Xhigh,
    /// The native maximum of the newest models (GPT-5.6).
    Max,
}

impl Effort {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Xhigh => "xhigh",
            Self::Max => "max",
        }
    }

    /// Parses a wire spelling (case-insensitive); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "minimal" => Self::Minimal,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "xhigh" => Self::Xhigh,
            "max" => Self::Max,
            _ => return None,
        })
    }
}

/// Which upstream serves a request: the OpenAI API (API-key accounts) or the ChatGPT
/// Codex backend (OAuth accounts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `api.openai.com/v1` or a compatible API.
    Api,
    /// `chatgpt.com/backend-api/codex`.
    Codex,
}

/// What ferry knows of one upstream model on one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelSpec {
    /// The context window (input plus output) in tokens on this backend.
    pub context_window: u64,
    /// The largest `max_output_tokens`.
    pub max_output_tokens: u64,
    /// The reasoning efforts the model accepts, in increasing order; empty for a model
    /// that does not reason (its effort is left alone).
    pub efforts: Vec<Effort>,
    /// The Codex backend serves it only in the Responses Lite request shape.
    pub responses_lite: bool,
}

impl ModelSpec {
    /// The effort to send for `requested`: itself when the model accepts it, else the
    /// highest accepted effort below it, else the lowest accepted one. A model without an
    /// effort list takes the request as it is.
    pub fn clamp_effort(&self, requested: Effort) -> Effort {
        if self.efforts.is_empty() || self.efforts.contains(&requested) {
            return requested;
        }
        self.efforts
            .iter()
            .rev()
            .find(|e| **e < requested)
            .or_else(|| self.efforts.first())
            .copied()
            .unwrap_or(requested)
    }
}

/// One row of the built-in catalog.
#[derive(Clone, Copy, Debug)]
pub struct CatalogRow {
    /// `*` glob over the canonical model id.
    pub pattern: &'static str,
    /// Context window on the OpenAI API.
    pub api_context_window: u64,
    /// Context window on the Codex backend.
    pub codex_context_window: u64,
    /// Largest output.
    pub max_output_tokens: u64,
    /// Accepted efforts.
    pub efforts: &'static [Effort],
    /// The Codex backend wants the Responses Lite shape.
    pub responses_lite: bool,
}

use Effort::{High, Low, Max, Medium, Minimal, None as NoEffort, Xhigh};

const GPT5_EFFORTS: &[Effort] = &[Minimal, Low, Medium, High];
const GPT51_EFFORTS: &[Effort] = &[NoEffort, Low, Medium, High];
const CODEX_MAX_EFFORTS: &[Effort] = &[Low, Medium, High, Xhigh];
const XHIGH_EFFORTS: &[Effort] = &[NoEffort, Low, Medium, High, Xhigh];
const CODEX_EFFORTS: &[Effort] = &[Low, Medium, High, Xhigh];
const GPT56_EFFORTS: &[Effort] = &[Low, Medium, High, Xhigh, Max];
const O_EFFORTS: &[Effort] = &[Low, Medium, High];

const fn row(
    pattern: &'static str,
    api_context_window: u64,
    codex_context_window: u64,
    max_output_tokens: u64,
    efforts: &'static [Effort],
    responses_lite: bool,
) -> CatalogRow {
    CatalogRow {
        pattern,
        api_context_window,
        codex_context_window,
        max_output_tokens,
        efforts,
        responses_lite,
    }
}

/// The built-in catalog (docs/models.md). Windows from OpenAI's model pages and the Codex
/// backend's model list: the Codex backend caps GPT-5.x at 272,000 tokens where the API
/// gives GPT-5.4 and later 1,050,000.
pub const BUILTIN: &[CatalogRow] = &[
    row("gpt-5", 400_000, 272_000, 128_000, GPT5_EFFORTS, false),
    row("gpt-5-*", 400_000, 272_000, 128_000, GPT5_EFFORTS, false),
    row("gpt-5.1*", 400_000, 272_000, 128_000, GPT51_EFFORTS, false),
    row(
        "gpt-5.1-codex*",
        400_000,
        272_000,
        128_000,
        CODEX_EFFORTS,
        false,
    ),
    row(
        "gpt-5.1-codex-max*",
        400_000,
        272_000,
        128_000,
        CODEX_MAX_EFFORTS,
        false,
    ),
    row("gpt-5.2*", 400_000, 272_000, 128_000, XHIGH_EFFORTS, false),
    row(
        "gpt-5.2-codex*",
        400_000,
        272_000,
        128_000,
        CODEX_EFFORTS,
        false,
    ),
    row("gpt-5.3*", 400_000, 272_000, 128_000, CODEX_EFFORTS, false),
    row(
        "gpt-5.4*",
        1_050_000,
        272_000,
        128_000,
        XHIGH_EFFORTS,
        false,
    ),
    row(
        "gpt-5.4-mini*",
        400_000,
        272_000,
        128_000,
        XHIGH_EFFORTS,
        false,
    ),
    row(
        "gpt-5.4-nano*",
        400_000,
        272_000,
        128_000,
        XHIGH_EFFORTS,
        false,
    ),
    row(
        "gpt-5.5*",
        1_050_000,
        272_000,
        128_000,
        XHIGH_EFFORTS,
        false,
    ),
    row("gpt-5.6*", 1_050_000, 272_000, 128_000, GPT56_EFFORTS, true),
    row("codex-mini*", 200_000, 200_000, 100_000, O_EFFORTS, false),
    row("o1*", 200_000, 200_000, 100_000, O_EFFORTS, false),
    row("o3*", 200_000, 200_000, 100_000, O_EFFORTS, false),
    row("o4-mini*", 200_000, 200_000, 100_000, O_EFFORTS, false),
    row("gpt-4.1*", 1_047_576, 1_047_576, 32_768, &[], false),
    row("gpt-4o*", 128_000, 128_000, 16_384, &[], false),
];

/// The newest GPT generation in [`BUILTIN`]; newer ones take its row.
const NEWEST_GENERATION: (u32, u32) = (5, 6);
const NEWEST_PATTERN: &str = "gpt-5.6*";

/// The catalog key of a model: the canonical GPT id, or the lowercased last segment.
fn catalog_key(model: &str) -> (String, ModelFamily) {
    let family = ModelFamily::of(model);
    let key = match &family {
        ModelFamily::Gpt(g) => g.canonical(),
        _ => {
            let lower = model.trim().to_ascii_lowercase();
            lower.rsplit('/').next().unwrap_or(&lower).trim().to_owned()
        }
    };
    (key, family)
}

/// The built-in row for `model`, if any (see the module docs).
pub fn builtin_row(model: &str) -> Option<&'static CatalogRow> {
    let (key, family) = catalog_key(model);
    let mut best: Option<&'static CatalogRow> = None;
    for r in BUILTIN {
        let hit = if r.pattern.contains('*') {
            glob_match(r.pattern, &key)
        } else {
            r.pattern == key
        };
        if hit && best.is_none_or(|b| specificity(r.pattern) > specificity(b.pattern)) {
            best = Some(r);
        }
    }
    if best.is_none()
        && let Some(g) = family.gpt()
        && g.version() > NEWEST_GENERATION
    {
        best = BUILTIN.iter().find(|r| r.pattern == NEWEST_PATTERN);
    }
    best
}

/// The catalog entry for `model` on `backend`, without account overrides.
pub fn builtin_spec(model: &str, backend: Backend) -> Option<ModelSpec> {
    builtin_row(model).map(|r| ModelSpec {
        context_window: match backend {
            Backend::Api => r.api_context_window,
            Backend::Codex => r.codex_context_window,
        },
        max_output_tokens: r.max_output_tokens,
        efforts: r.efforts.to_vec(),
        responses_lite: r.responses_lite,
    })
}

/// One override entry. Every field is optional; an absent field keeps ferry's own rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverride {
    /// Treat the model as this one for every per-family decision (derived prompt cache
    /// key, continuation, todo guard): `family = "gpt-5"` makes a fine-tune named
    /// `acme-coder` behave like a GPT-5 model.
    #[serde(default)]
    pub family: Option<String>,
    /// The context window on this account's backend, in tokens.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// The largest output, in tokens.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// The reasoning efforts the model accepts (`["low", "medium", "high", "max"]`); the
    /// requested effort is clamped to them.
    #[serde(default)]
    pub efforts: Option<Vec<Effort>>,
    /// OAuth accounts: send the Responses Lite request shape for this model.
    #[serde(default)]
    pub responses_lite: Option<bool>,
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

    /// The catalog entry for `model` on `backend` with this table's overrides applied: the
    /// built-in row of the model (or of its override `family`), each field replaced by the
    /// override's when set. `None` when neither knows the model's window and output limit.
    pub fn spec(&self, model: &str, backend: Backend) -> Option<ModelSpec> {
        let family = self.family_model(model);
        let over = self.resolve(model);
        let base = builtin_spec(model, backend).or_else(|| builtin_spec(&family, backend));
        let Some(over) = over else {
            return base;
        };
        let context_window = over
            .context_window
            .or(base.as_ref().map(|b| b.context_window))?;
        let max_output_tokens = over
            .max_output_tokens
            .or(base.as_ref().map(|b| b.max_output_tokens))?;
        let mut efforts = over
            .efforts
            .clone()
            .or_else(|| base.as_ref().map(|b| b.efforts.clone()))
            .unwrap_or_default();
        efforts.sort_unstable();
        efforts.dedup();
        Some(ModelSpec {
            context_window,
            max_output_tokens,
            efforts,
            responses_lite: over
                .responses_lite
                .or(base.as_ref().map(|b| b.responses_lite))
                .unwrap_or(false),
        })
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn window(model: &str, backend: Backend) -> Option<u64> {
        builtin_spec(model, backend).map(|s| s.context_window)
    }

    #[test]
    fn windows_per_backend_and_generation() {
        assert_eq!(window("gpt-5.5", Backend::Api), Some(1_050_000));
        assert_eq!(window("gpt-5.5", Backend::Codex), Some(272_000));
        assert_eq!(window("openai/gpt-5.6-sol", Backend::Api), Some(1_050_000));
        assert_eq!(window("gpt-5.4-mini", Backend::Api), Some(400_000));
        assert_eq!(window("gpt-5.1-codex-mini", Backend::Api), Some(400_000));
        assert_eq!(window("gpt-4.1-mini", Backend::Api), Some(1_047_576));
        assert_eq!(window("codex-mini-latest", Backend::Codex), Some(200_000));
        // A newer generation takes the newest row; an older unknown one nothing.
        assert_eq!(window("gpt-6-terra", Backend::Codex), Some(272_000));
        assert!(
            builtin_spec("gpt-6.1-codex", Backend::Codex)
                .unwrap()
                .responses_lite
        );
        assert_eq!(window("llama-3", Backend::Api), None);
        assert!(
            builtin_spec("gpt-5.6-luna", Backend::Codex)
                .unwrap()
                .responses_lite
        );
        assert!(
            !builtin_spec("gpt-5.5", Backend::Codex)
                .unwrap()
                .responses_lite
        );
    }

    #[test]
    fn efforts_are_clamped_to_what_the_model_takes() {
        let sol = builtin_spec("gpt-5.6-sol", Backend::Api).unwrap();
        assert_eq!(sol.clamp_effort(Effort::Max), Effort::Max);
        assert_eq!(sol.clamp_effort(Effort::None), Effort::Low);
        let g55 = builtin_spec("gpt-5.5", Backend::Api).unwrap();
        assert_eq!(g55.clamp_effort(Effort::Max), Effort::Xhigh);
        assert_eq!(g55.clamp_effort(Effort::Minimal), Effort::None);
        let g5 = builtin_spec("gpt-5", Backend::Api).unwrap();
        assert_eq!(g5.clamp_effort(Effort::Xhigh), Effort::High);
        assert_eq!(g5.clamp_effort(Effort::None), Effort::Minimal);
        let g4o = builtin_spec("gpt-4o", Backend::Api).unwrap();
        assert_eq!(g4o.clamp_effort(Effort::High), Effort::High);
    }

    #[test]
    fn overrides_replace_fields_and_name_unknown_models() {
        let table = ModelOverrides::from_entries([
            (
                "gpt-5.5",
                ModelOverride {
                    context_window: Some(400_000),
                    efforts: Some(vec![Effort::Max, Effort::Low]),
                    ..ModelOverride::default()
                },
            ),
            (
                "acme-*",
                ModelOverride {
                    family: Some("gpt-5.4".into()),
                    ..ModelOverride::default()
                },
            ),
            (
                "local-*",
                ModelOverride {
                    context_window: Some(32_000),
                    max_output_tokens: Some(4_096),
                    ..ModelOverride::default()
                },
            ),
        ]);
        let g55 = table.spec("gpt-5.5", Backend::Codex).unwrap();
        assert_eq!(g55.context_window, 400_000);
        assert_eq!(g55.max_output_tokens, 128_000);
        assert_eq!(g55.efforts, vec![Effort::Low, Effort::Max]);
        assert_eq!(
            table
                .spec("acme-coder", Backend::Api)
                .unwrap()
                .context_window,
            1_050_000
        );
        let local = table.spec("local-llm", Backend::Api).unwrap();
        assert_eq!((local.context_window, local.efforts.len()), (32_000, 0));
        assert_eq!(table.spec("other", Backend::Api), None);
    }
}
