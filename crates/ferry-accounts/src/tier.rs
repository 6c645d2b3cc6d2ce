//! Fast mode and the per-account service-tier policy (docs/models.md § Fast mode and service
//! tiers).

use http::HeaderMap;

use crate::config::ServiceTierPolicy;
use crate::error::AccountsError;

/// The `anthropic-beta` token that asks for fast mode (→ `service_tier = "priority"`).
pub const FAST_MODE_BETA: &str = "fast-mode-2026-02-01";

/// True when the comma-separated `header` contains `token` exactly (parts are trimmed,
/// comparison is case-sensitive). An empty header or token never matches.
pub fn has_beta_token(header: &str, token: &str) -> bool {
    !token.is_empty() && header.split(',').any(|part| part.trim() == token)
}

/// [`has_beta_token`] over every `anthropic-beta` header value of a request.
pub fn headers_have_beta_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| has_beta_token(v, token))
}

/// The canonical service tier for a requested one (`fast` → `priority`); `None` when empty or
/// unrecognised. Case-insensitive.
pub fn normalize_service_tier(tier: &str) -> Option<&'static str> {
    match tier.trim().to_ascii_lowercase().as_str() {
        "priority" | "fast" => Some("priority"),
        "auto" => Some("auto"),
        "default" | "standard" => Some("default"),
        "flex" => Some("flex"),
        "scale" => Some("scale"),
        _ => None,
    }
}

/// The `service_tier` the ChatGPT Codex backend takes for a canonical tier, after the
/// account's policy: it knows fast mode only as `priority` (raw `fast` is refused with
/// `Unsupported service_tier: fast`, so [`normalize_service_tier`] already renamed it) and
/// takes `default`; `auto`, `flex` and `scale` are refused, so they are left out (the
/// request runs on the standard tier, as without the field). The OpenAI API takes every
/// canonical tier as it is. `None`: send no `service_tier`.
pub fn codex_service_tier(tier: &str) -> Option<&'static str> {
    match normalize_service_tier(tier)? {
        "priority" => Some("priority"),
        "default" => Some("default"),
        _ => None,
    }
}

/// Rewrites an OAuth (Codex backend) request's `service_tier` with [`codex_service_tier`],
/// after [`apply_service_tier_policy`]; returns the tier left in the field. An unrecognised
/// tier is removed too: the backend refuses anything it does not know.
pub fn adapt_service_tier_for_codex(service_tier: &mut Option<String>) -> Option<String> {
    let requested = service_tier.as_deref()?;
    *service_tier = codex_service_tier(requested).map(str::to_owned);
    service_tier.clone()
}

/// Applies an account's policy to a request's `service_tier` field and returns the tier that
/// will be sent (for the result and billing); on an error the field is left as it was.
///
/// An absent tier stays absent, and an unrecognised one is kept as it is. A recognised tier is
/// rewritten to its canonical name under `pass`. `filter` removes, and `block` refuses, the
/// non-standard tiers (`priority`, `flex`, `scale`); `auto` and `default` always pass, since
/// they ask for nothing beyond what the account does anyway. The rule itself is
/// [`resolve_service_tier`].
pub fn apply_service_tier_policy(
    policy: ServiceTierPolicy,
    service_tier: &mut Option<String>,
    upstream_model: &str,
) -> Result<Option<String>, AccountsError> {
    let Some(requested) = service_tier.as_deref() else {
        return Ok(None);
    };
    *service_tier = resolve_service_tier(policy, requested, upstream_model)?;
    Ok(service_tier.clone())
}

/// The service-tier policy of an account (docs/models.md § Fast mode and service tiers): the value a request's
/// `service_tier` field should have (`None`: remove it).
///
/// An unrecognised tier is returned as it was; a recognised one in its canonical name, or
/// `None` when `filter` removes it.
///
/// # Errors
///
/// [`AccountsError::ServiceTierBlocked`] when `block` refuses the tier.
pub fn resolve_service_tier(
    policy: ServiceTierPolicy,
    requested: &str,
    upstream_model: &str,
) -> Result<Option<String>, AccountsError> {
    let Some(tier) = normalize_service_tier(requested) else {
        return Ok(Some(requested.to_owned()));
    };
    let standard = matches!(tier, "auto" | "default");
    match policy {
        ServiceTierPolicy::Block if !standard => Err(AccountsError::ServiceTierBlocked {
            tier: tier.to_owned(),
            model: upstream_model.to_owned(),
        }),
        ServiceTierPolicy::Filter if !standard => Ok(None),
        _ => Ok(Some(tier.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codex_backend_gets_priority_and_default_only() {
        assert_eq!(codex_service_tier("fast"), Some("priority"));
        assert_eq!(codex_service_tier("Priority"), Some("priority"));
        assert_eq!(codex_service_tier("standard"), Some("default"));
        for dropped in ["auto", "flex", "scale", "turbo", ""] {
            assert_eq!(codex_service_tier(dropped), None, "{dropped}");
        }
        let mut body = Some("flex".to_owned());
        assert_eq!(adapt_service_tier_for_codex(&mut body), None);
        assert!(body.is_none());
        let mut body = Some("fast".to_owned());
        assert_eq!(
            adapt_service_tier_for_codex(&mut body).as_deref(),
            Some("priority")
        );
        assert_eq!(body.as_deref(), Some("priority"));
    }
}
