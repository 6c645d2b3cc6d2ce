//! `[prices."MODEL"]`: rows that replace or add to the built-in price table.

use serde::Deserialize;

use super::problems::Problems;

/// `[prices."MODEL"]` as written (USD per million tokens).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrice {
    /// uncached input (required)
    pub input: Option<f64>,
    /// cached input (default: `input`)
    pub cached_input: Option<f64>,
    /// output (required)
    pub output: Option<f64>,
    /// prompts above this many tokens use the `long_*` prices
    pub long_context_threshold: Option<u64>,
    /// long-context uncached input
    pub long_input: Option<f64>,
    /// long-context cached input
    pub long_cached_input: Option<f64>,
    /// long-context output
    pub long_output: Option<f64>,
}
pub(super) fn validate_prices(
    raw: std::collections::BTreeMap<String, RawPrice>,
    p: &mut Problems,
) -> crate::prices::PriceTable {
    let mut rows = Vec::new();
    for (model, r) in raw {
        let path = |f: &str| format!("prices.{model:?}.{f}");
        let mut num = |f: &str, v: Option<f64>, required: bool| -> f64 {
            match v {
                Some(v) if v.is_finite() && v >= 0.0 => v,
                Some(v) => {
                    p.push(path(f), format!("must be a USD price >= 0, got {v}"));
                    0.0
                }
                None => {
                    if required {
                        p.push(path(f), "is required (USD per million tokens)");
                    }
                    0.0
                }
            }
        };
        let input = num("input", r.input, true);
        let output = num("output", r.output, true);
        let cached_input = r
            .cached_input
            .map_or(input, |v| num("cached_input", Some(v), false));
        let long_context = match r.long_context_threshold {
            Some(threshold) => {
                let long_input = num("long_input", r.long_input, true);
                let long_output = num("long_output", r.long_output, true);
                let long_cached = r
                    .long_cached_input
                    .map_or(long_input, |v| num("long_cached_input", Some(v), false));
                Some((
                    threshold,
                    crate::prices::LongPrice {
                        input: long_input,
                        cached_input: long_cached,
                        output: long_output,
                    },
                ))
            }
            None => {
                if r.long_input.is_some()
                    || r.long_output.is_some()
                    || r.long_cached_input.is_some()
                {
                    p.push(
                        path("long_context_threshold"),
                        "is required with long_* prices",
                    );
                }
                None
            }
        };
        rows.push((
            model,
            crate::prices::Price {
                input,
                cached_input,
                output,
                long_context,
            },
        ));
    }
    crate::prices::PriceTable::with_overrides(rows)
}
