//! Token usage of a response, read leniently.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Token usage of a response.
///
/// Lenient on input: counters may be missing, `null` or negative (read as 0), and cache
/// counters may come in several spellings that relays use; [`Usage::cache_read_tokens`] and
/// [`Usage::cache_creation_tokens`] resolve them. Unknown fields are kept in
/// [`Usage::extra`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, cached ones included.
    #[serde(default, deserialize_with = "count")]
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    #[serde(default, deserialize_with = "count")]
    pub output_tokens: u64,
    /// Input plus output.
    #[serde(default, deserialize_with = "count")]
    pub total_tokens: u64,
    /// Breakdown of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Breakdown of the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Cache-write tokens, as some relays report them (not standard OpenAI).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_input_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Breakdown of [`Usage::input_tokens`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Tokens read from the prompt cache. `Some` whenever the key is present (`null` → 0).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_tokens: Option<u64>,
    /// Tokens written to the cache, in one relay spelling.
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write_tokens: Option<u64>,
    /// Tokens written to the cache, in another relay spelling.
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Breakdown of [`Usage::output_tokens`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens (already inside `output_tokens`).
    #[serde(
        default,
        deserialize_with = "present_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning_tokens: Option<u64>,
    /// Every other field, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    /// Input tokens; falls back to a chat-style `prompt_tokens` when `input_tokens` is 0.
    pub fn resolved_input_tokens(&self) -> u64 {
        if self.input_tokens > 0 {
            self.input_tokens
        } else {
            self.extra_count("prompt_tokens").unwrap_or(0)
        }
    }

    /// Output tokens; falls back to a chat-style `completion_tokens` when `output_tokens`
    /// is 0.
    pub fn resolved_output_tokens(&self) -> u64 {
        if self.output_tokens > 0 {
            self.output_tokens
        } else {
            self.extra_count("completion_tokens").unwrap_or(0)
        }
    }

    /// Tokens read from the prompt cache.
    ///
    /// `input_tokens_details.cached_tokens` wins whenever it is present (even 0 or `null`);
    /// then `prompt_tokens_details.cached_tokens`; then the first positive of the top-level
    /// `cache_read_input_tokens`, `cache_read_tokens`, `cached_tokens`; else 0.
    pub fn cache_read_tokens(&self) -> u64 {
        if let Some(n) = self
            .input_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
        {
            return n;
        }
        if let Some(n) = self.prompt_details_count("cached_tokens") {
            return n;
        }
        [
            "cache_read_input_tokens",
            "cache_read_tokens",
            "cached_tokens",
        ]
        .iter()
        .filter_map(|k| self.extra_count(k))
        .find(|&n| n > 0)
        .unwrap_or(0)
    }

    /// Tokens written to the prompt cache.
    ///
    /// The first present of `input_tokens_details.cache_write_tokens`,
    /// `prompt_tokens_details.cache_write_tokens`, `input_tokens_details.cache_creation_tokens`,
    /// `prompt_tokens_details.cache_creation_tokens`; else the first positive of the
    /// top-level `cache_write_tokens`, `cache_creation_input_tokens`,
    /// `cache_write_input_tokens`, `cache_creation_tokens`; else 0.
    pub fn cache_creation_tokens(&self) -> u64 {
        let details = self.input_tokens_details.as_ref();
        let nested = details
            .and_then(|d| d.cache_write_tokens)
            .or_else(|| self.prompt_details_count("cache_write_tokens"))
            .or_else(|| details.and_then(|d| d.cache_creation_tokens))
            .or_else(|| self.prompt_details_count("cache_creation_tokens"));
        if let Some(n) = nested {
            return n;
        }
        [
            self.extra_count("cache_write_tokens"),
            self.cache_creation_input_tokens,
            self.extra_count("cache_write_input_tokens"),
            self.extra_count("cache_creation_tokens"),
        ]
        .into_iter()
        .flatten()
        .find(|&n| n > 0)
        .unwrap_or(0)
    }

    fn extra_count(&self, key: &str) -> Option<u64> {
        self.extra.get(key).map(value_count)
    }

    fn prompt_details_count(&self, key: &str) -> Option<u64> {
        self.extra
            .get("prompt_tokens_details")?
            .as_object()?
            .get(key)
            .map(value_count)
    }
}

/// A JSON value read as a token count: numbers are truncated and clamped at 0, anything
/// else is 0.
fn value_count(v: &Value) -> u64 {
    // `as` saturates: negative and NaN floats become 0, fractions are truncated.
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .unwrap_or(0)
}

/// Deserializes a token count leniently (see [`value_count`]).
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(value_count(&Value::deserialize(d)?))
}

/// Deserializes a token count whose presence matters: present (even `null`) → `Some`.
pub(super) fn present_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Some(value_count(&Value::deserialize(d)?)))
}
