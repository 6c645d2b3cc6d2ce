//! Model mapping (`model_mapping` globs, `default_model`) and model-name normalisation:
//! reasoning-effort suffixes (`gpt-5.4-xhigh`), Claude Code's client suffixes
//! (docs/models.md § Client model suffixes), `-sys`, and Codex model names for OAuth accounts.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `model_mapping`: requested model → upstream model, keys may contain `*` globs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ModelMapping(BTreeMap<String, String>);

impl ModelMapping {
    /// Builds a mapping from `(pattern, target)` pairs.
    pub fn from_rules<I, K, V>(rules: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            rules
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The rules, ordered by pattern.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The target for `model`: an exact key first, then the most specific matching glob
    /// (most literal characters, then fewest `*`, then the smallest pattern). Case-sensitive.
    pub fn resolve(&self, model: &str) -> Option<&str> {
        if let Some(target) = self.0.get(model) {
            return Some(target.trim());
        }
        let mut best: Option<(&str, &str)> = None;
        for (pattern, target) in &self.0 {
            if !pattern.contains('*') || !glob_match(pattern, model) {
                continue;
            }
            let better = match best {
                None => true,
                Some((current, _)) => specificity(pattern) > specificity(current),
            };
            if better {
                best = Some((pattern, target));
            }
        }
        best.map(|(_, target)| target.trim())
    }
}

/// (literal characters, negated `*` count): larger is more specific.
pub(crate) fn specificity(pattern: &str) -> (usize, isize) {
    let stars = pattern.matches('*').count();
    (
        pattern.len() - stars,
        -isize::try_from(stars).unwrap_or(isize::MAX),
    )
}

/// Glob match where `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A reasoning-effort suffix split off a requested model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasoningSuffix {
    /// The model without its suffix (`gpt-5.4-xhigh` → `gpt-5.4`).
    pub base: String,
    /// The OpenAI effort the suffix names: `low`, `medium`, `high` or `xhigh`.
    /// `None` for the valid-but-empty suffixes `none` and `minimal`.
    pub effort: Option<&'static str>,
}

/// Splits a reasoning-effort suffix off a GPT model id (`gpt-5.4-xhigh`, `gpt-5.4 high`,
/// `gpt-5.4(high)`); `None` when there is none or the model is not a `gpt-` model.
///
/// Only the last `/`-segment is looked at. Accepted suffixes: `none`, `minimal` (no effort),
/// `low`, `medium`, `high`, `xhigh`/`extrahigh`. The base is [`normalize_codex_model`] of the
/// full id; for models it does not know, the suffix is cut off textually instead.
pub fn split_reasoning_suffix(model: &str) -> Option<ReasoningSuffix> {
    let trimmed = model.trim();
    let segment = last_segment(trimmed);
    if !segment.to_ascii_lowercase().starts_with("gpt-") {
        return None;
    }
    let (stem, token) = if let Some(open) = segment.strip_suffix(')').and_then(|s| s.rfind('(')) {
        (&segment[..open], &segment[open + 1..segment.len() - 1])
    } else {
        let cut = segment.rfind(['-', '_', ' '])?;
        (&segment[..cut], &segment[cut + 1..])
    };
    let effort = effort_token(token)?;
    let normalized = normalize_codex_model(segment);
    let base = if normalized == segment {
        stem.trim_end_matches(['-', '_', ' ']).to_owned()
    } else {
        normalized
    };
    Some(ReasoningSuffix { base, effort })
}

/// `Some(effort)` for an accepted suffix token (`Some(None)` for `none`/`minimal`).
fn effort_token(token: &str) -> Option<Option<&'static str>> {
    match token.trim().to_ascii_lowercase().as_str() {
        "none" | "minimal" => Some(None),
        "low" => Some(Some("low")),
        "medium" => Some(Some("medium")),
        "high" => Some(Some("high")),
        "xhigh" | "extrahigh" => Some(Some("xhigh")),
        _ => None,
    }
}

/// The Anthropic `output_config.effort` a suffix effort becomes when the client set none:
/// `low`/`medium`/`high` stay, `xhigh` → `max`, anything else → none.
pub fn anthropic_effort_for_suffix(effort: &str) -> Option<&'static str> {
    match effort {
        "low" => Some("low"),
        "medium" => Some("medium"),
        "high" => Some("high"),
        "xhigh" => Some("max"),
        _ => None,
    }
}

/// The routing model for a requested model: the suffix-stripped base, or the trimmed model
/// (`gpt-5.4-none` → `gpt-5.4`; `gpt-5.1-codex-max` and `claude-*` unchanged).
pub fn normalize_requested_model(model: &str) -> String {
    split_reasoning_suffix(model).map_or_else(|| model.trim().to_owned(), |s| s.base)
}

fn last_segment(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// Canonical Codex model ids (normalised to themselves).
const CODEX_MODELS: &[&str] = &[
    "gpt-5.1",
    "gpt-5.1-codex",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex-mini",
    "gpt-5.2",
    "gpt-5.2-codex",
    "gpt-5.3-codex",
    "gpt-5.3-codex-spark",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5.5",
];

/// Older or informal names → canonical Codex ids.
const CODEX_ALIASES: &[(&str, &str)] = &[
    ("gpt-5", "gpt-5.1"),
    ("gpt-5-mini", "gpt-5.1"),
    ("gpt-5-nano", "gpt-5.1"),
    ("gpt-5-codex", "gpt-5.1-codex"),
    ("gpt-5-codex-mini", "gpt-5.1-codex-mini"),
    ("codex-mini-latest", "gpt-5.1-codex-mini"),
    ("gpt-5.1-chat-latest", "gpt-5.1"),
    ("gpt-5.3", "gpt-5.3-codex"),
    ("gpt-5.4-chat-latest", "gpt-5.4"),
];

/// Default Codex model for an empty model name.
pub const DEFAULT_CODEX_MODEL: &str = "gpt-5.4";

fn codex_lookup(id: &str) -> Option<&'static str> {
    CODEX_MODELS
        .iter()
        .find(|m| **m == id)
        .copied()
        .or_else(|| {
            CODEX_ALIASES
                .iter()
                .find(|(alias, _)| *alias == id)
                .map(|(_, t)| *t)
        })
}

/// Normalises a model name for the ChatGPT Codex backend (the **newer** generation's rules,
/// crates/ferry-accounts/README.md § Decisions): empty → `gpt-5.4`; known ids and aliases →
/// their canonical id (only the last `/`-segment counts, case-insensitive, spaces/underscores
/// read as `-`); a known id plus an effort suffix (`-high`, `(high)`) or a date suffix
/// (`-2025-08-07`) → that id; anything else, including image models and models newer than this
/// table, is returned unchanged (trimmed).
pub fn normalize_codex_model(model: &str) -> String {
    let trimmed = model.trim();
    if trimmed.is_empty() {
        return DEFAULT_CODEX_MODEL.to_owned();
    }
    let key: String = last_segment(trimmed)
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '_' { '-' } else { c })
        .collect();
    let mut candidate = key.as_str();
    // At most two suffixes (a date and an effort) are stripped.
    for _ in 0..3 {
        if let Some(target) = codex_lookup(candidate) {
            return target.to_owned();
        }
        match strip_known_suffix(candidate) {
            Some(stem) => candidate = stem,
            None => break,
        }
    }
    trimmed.to_owned()
}

fn strip_known_suffix(id: &str) -> Option<&str> {
    if let Some(open) = id.strip_suffix(')').and_then(|s| s.rfind('(')) {
        let token = &id[open + 1..id.len() - 1];
        return effort_token(token).map(|_| id[..open].trim_end_matches('-'));
    }
    // A `-YYYY-MM-DD` date suffix.
    if id.len() > 11 && id.is_char_boundary(id.len() - 11) {
        let (stem, date) = id.split_at(id.len() - 11);
        let b = date.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b[0] == b'-'
            && digits(1..5)
            && b[5] == b'-'
            && digits(6..8)
            && b[8] == b'-'
            && digits(9..11)
        {
            return Some(stem);
        }
    }
    let cut = id.rfind('-')?;
    effort_token(&id[cut + 1..]).map(|_| &id[..cut])
}

/// Strips a case-insensitive `-sys` suffix (an alias some clients use).
pub fn strip_sys_suffix(model: &str) -> &str {
    let trimmed = model.trim();
    let n = trimmed.len();
    if n >= 4 && trimmed.is_char_boundary(n - 4) && trimmed[n - 4..].eq_ignore_ascii_case("-sys") {
        trimmed[..n - 4].trim()
    } else {
        trimmed
    }
}

/// The models a request uses on one account, from the name the client sent to the one sent
/// upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRoute {
    /// As the client sent it (shown back to the client).
    pub original: String,
    /// After reasoning-suffix stripping (the routing model).
    pub requested: String,
    /// The effort named by a reasoning suffix, if any (`low`…`xhigh`).
    pub suffix_effort: Option<&'static str>,
    /// After `model_mapping` / `default_model` (what usage is billed as).
    pub billing: String,
    /// What is sent upstream (OAuth: Codex-normalised).
    pub upstream: String,
    /// The model whose family rules apply (prompt cache key, continuation, todo guard):
    /// the account's `models` override `family` for the upstream model, else `upstream`.
    pub family: String,
    /// The client asked for fast mode with a `-fast` model suffix (Claude Code's fast
    /// variant of a Claude model): the server treats it like the fast-mode beta.
    pub fast: bool,
}

/// Splits Claude Code's client-side suffixes off a requested model: `[1m]` (the 1M-token
/// context variant; any model) and, on Claude models, `-fast` (fast mode). Both route like
/// the base name. Returns the base and whether `-fast` was there.
pub fn strip_client_suffixes(model: &str) -> (&str, bool) {
    let mut base = model.trim();
    let n = base.len();
    if n >= 4 && base.is_char_boundary(n - 4) && base[n - 4..].eq_ignore_ascii_case("[1m]") {
        base = base[..n - 4].trim_end();
    }
    let n = base.len();
    let claude = base.to_ascii_lowercase().starts_with("claude");
    if claude
        && n > 5
        && base.is_char_boundary(n - 5)
        && base[n - 5..].eq_ignore_ascii_case("-fast")
    {
        return (base[..n - 5].trim_end(), true);
    }
    (base, false)
}
