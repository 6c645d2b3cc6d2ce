//! Prices and budgets as data: USD per million tokens per model-name prefix
//! ([`PriceTable`], with OpenAI's list prices built in) and a client key's limits
//! ([`Budget`]). Pure values the config is built from; counting spend against them is
//! [`crate::cost`]'s job. Re-exported as `ferry_server::cost::{Price, PriceTable, …}`.

use std::collections::BTreeMap;

use ferry_apicompat::anthropic;

/// USD per million tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Uncached input (cache writes included: OpenAI bills them as input).
    pub input: f64,
    /// Cached input (Anthropic's `cache_read_input_tokens`).
    pub cached_input: f64,
    /// Output (reasoning included).
    pub output: f64,
    /// Prompts above this many tokens are billed at `long` prices, when set.
    pub long_context: Option<(u64, LongPrice)>,
}

/// The long-context prices of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongPrice {
    /// Uncached input.
    pub input: f64,
    /// Cached input.
    pub cached_input: f64,
    /// Output.
    pub output: f64,
}

const fn p(input: f64, cached_input: f64, output: f64) -> Price {
    Price {
        input,
        cached_input,
        output,
        long_context: None,
    }
}

/// Built-in prices (USD per million tokens; OpenAI list prices, standard tier). Config
/// `[prices."MODEL"]` rows replace these.
pub const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("gpt-5", p(1.25, 0.125, 10.0)),
    ("gpt-5-codex", p(1.25, 0.125, 10.0)),
    ("gpt-5-mini", p(0.25, 0.025, 2.0)),
    ("gpt-5-nano", p(0.05, 0.005, 0.4)),
    ("gpt-5-pro", p(15.0, 15.0, 120.0)),
    ("gpt-5.1", p(1.25, 0.125, 10.0)),
    ("gpt-5.1-codex", p(1.25, 0.125, 10.0)),
    ("gpt-5.1-codex-max", p(1.25, 0.125, 10.0)),
    ("gpt-5.1-codex-mini", p(0.25, 0.025, 2.0)),
    ("gpt-5.2", p(1.75, 0.175, 14.0)),
    ("gpt-5.2-codex", p(1.75, 0.175, 14.0)),
    (
        "gpt-5.4",
        Price {
            input: 2.5,
            cached_input: 0.25,
            output: 15.0,
            // Prompts over 272K tokens: 2x input, 1.5x output for the whole request.
            long_context: Some((
                272_000,
                LongPrice {
                    input: 5.0,
                    cached_input: 0.5,
                    output: 22.5,
                },
            )),
        },
    ),
    ("gpt-4.1", p(2.0, 0.5, 8.0)),
    ("gpt-4.1-mini", p(0.4, 0.1, 1.6)),
    ("gpt-4o", p(2.5, 1.25, 10.0)),
    ("gpt-4o-mini", p(0.15, 0.075, 0.6)),
    ("o3", p(2.0, 0.5, 8.0)),
    ("o4-mini", p(1.1, 0.275, 4.4)),
];

/// Prices by model-name prefix.
#[derive(Debug, Clone)]
pub struct PriceTable {
    rows: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            rows: DEFAULT_PRICES
                .iter()
                .map(|(m, p)| ((*m).to_owned(), *p))
                .collect(),
        }
    }
}

impl PriceTable {
    /// The built-in table with these rows replacing or adding to it.
    pub fn with_overrides(overrides: impl IntoIterator<Item = (String, Price)>) -> Self {
        let mut t = Self::default();
        t.rows.extend(overrides);
        t
    }

    /// The row of the longest prefix of `model` (a model name followed by `-…` or exact).
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.rows
            .iter()
            .filter(|(prefix, _)| {
                model == prefix.as_str()
                    || model
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| p)
    }

    /// USD of one request's usage on `model` (0 without a price).
    pub fn cost(&self, model: &str, usage: &anthropic::Usage) -> f64 {
        let Some(price) = self.price(model) else {
            return 0.0;
        };
        let uncached = usage.input_tokens + usage.cache_creation_input_tokens;
        let cached = usage.cache_read_input_tokens;
        let (input, cached_input, output) = match price.long_context {
            Some((threshold, long)) if uncached + cached > threshold => {
                (long.input, long.cached_input, long.output)
            }
            _ => (price.input, price.cached_input, price.output),
        };
        #[expect(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^52"
        )]
        let usd = (uncached as f64 * input
            + cached as f64 * cached_input
            + usage.output_tokens as f64 * output)
            / 1e6;
        usd
    }
}

/// A client key's limits (all optional).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    /// Tokens (prompt + output) per UTC day.
    pub daily_tokens: Option<u64>,
    /// Tokens per UTC month.
    pub monthly_tokens: Option<u64>,
    /// USD per UTC day.
    pub daily_usd: Option<f64>,
    /// USD per UTC month.
    pub monthly_usd: Option<f64>,
}

impl Budget {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn the_longest_prefix_prices_a_model() {
        let t = PriceTable::default();
        assert_eq!(t.price("gpt-5.1-codex-mini").map(|p| p.input), Some(0.25));
        assert_eq!(t.price("gpt-5.1-2026-01-01").map(|p| p.input), Some(1.25));
        assert_eq!(t.price("gpt-5.1x"), None);
        assert_eq!(t.price("unknown"), None);
    }

    #[test]
    fn cost_counts_uncached_cached_and_output_and_the_long_tier() {
        let t = PriceTable::default();
        let usage = anthropic::Usage {
            input_tokens: 1_000_000,
            cache_read_input_tokens: 2_000_000,
            output_tokens: 100_000,
            ..anthropic::Usage::default()
        };
        // 1M × 1.25 + 2M × 0.125 + 0.1M × 10 = 2.5
        assert!((t.cost("gpt-5.1", &usage) - 2.5).abs() < 1e-9);
        // gpt-5.4 above 272K prompt tokens: 1M × 5 + 2M × 0.5 + 0.1M × 22.5 = 8.25
        assert!((t.cost("gpt-5.4", &usage) - 8.25).abs() < 1e-9);
        let small = anthropic::Usage {
            input_tokens: 1000,
            output_tokens: 1000,
            ..anthropic::Usage::default()
        };
        assert!((t.cost("gpt-5.4", &small) - (0.0025 + 0.015)).abs() < 1e-12);
        let o = PriceTable::with_overrides([("gpt-5.1".to_owned(), p(2.0, 0.0, 0.0))]);
        assert!((o.cost("gpt-5.1", &usage) - 2.0).abs() < 1e-9);
    }
}
