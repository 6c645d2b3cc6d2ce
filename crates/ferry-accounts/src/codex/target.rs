//! The request shape each kind of upstream takes: the OpenAI API (the request as converted),
//! the ChatGPT Codex backend (the Codex transform) and its Responses Lite shape, each with
//! the account's service-tier policy; and the one way a shaped request is serialised.

use ferry_apicompat::responses;

use super::transform::{CodexTransformOptions, apply_codex_transform};
use crate::config::{AccountConfig, AccountKind, ServiceTierPolicy};
use crate::error::AccountsError;
use crate::tier::{adapt_service_tier_for_codex, apply_service_tier_policy};

/// The request shape an account's upstream takes for one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The OpenAI Responses API (API-key accounts): the request as converted.
    Api,
    /// The ChatGPT Codex backend (OAuth accounts): [`apply_codex_transform`].
    Codex,
    /// The Codex backend's Responses Lite shape for the models that need it:
    /// [`apply_codex_transform`] then [`apply_responses_lite`](super::apply_responses_lite).
    CodexLite,
}

/// What [`Target::shape`] needs besides the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetOptions<'a> {
    /// The account's `service_tier_policy`.
    pub service_tier_policy: ServiceTierPolicy,
    /// `gateway.forced_codex_instructions_template` (Codex targets only).
    pub forced_instructions_template: Option<&'a str>,
    /// The model as the client sent it (template field `OriginalModel`).
    pub original_model: &'a str,
    /// The suffix-stripped model (template field `NormalizedModel`).
    pub normalized_model: &'a str,
    /// The mapped model (template field `BillingModel`).
    pub billing_model: &'a str,
}

/// What [`Target::shape`] reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shaped {
    /// The model now in the request: the one the request had (API), or the Codex-normalised one.
    pub upstream_model: String,
    /// Codex targets: the request's `prompt_cache_key` (trimmed, non-empty), removed from the
    /// request since OAuth carries the key in headers only. `None` for the API.
    pub prompt_cache_key: Option<String>,
}

impl Target {
    /// The target of `account` for `upstream_model`: OAuth accounts get the Codex shape, in
    /// its Lite form when [`AccountConfig::responses_lite`] says so; other accounts the API.
    pub fn for_account(account: &AccountConfig, upstream_model: &str) -> Self {
        if account.kind != AccountKind::Oauth {
            Self::Api
        } else if account.responses_lite(upstream_model) {
            Self::CodexLite
        } else {
            Self::Codex
        }
    }

    /// True for the Codex backend's shapes.
    pub fn is_codex(self) -> bool {
        matches!(self, Self::Codex | Self::CodexLite)
    }

    /// Shapes a converted request for this target: the Codex transform (and Lite shape) for
    /// the Codex targets, then the service-tier policy, which the Codex backend further
    /// narrows to the tiers it takes ([`adapt_service_tier_for_codex`]).
    ///
    /// # Errors
    ///
    /// [`AccountsError::Template`] for a forced-instructions template that does not render,
    /// [`AccountsError::LiteUnsupportedTool`] for a tool the Lite shape cannot carry, and
    /// [`AccountsError::ServiceTierBlocked`] when the policy refuses the tier.
    pub fn shape(
        self,
        req: &mut responses::Request,
        opts: &TargetOptions<'_>,
    ) -> Result<Shaped, AccountsError> {
        let shaped = if self.is_codex() {
            let outcome = apply_codex_transform(
                req,
                &CodexTransformOptions {
                    forced_instructions_template: opts.forced_instructions_template,
                    original_model: opts.original_model,
                    normalized_model: opts.normalized_model,
                    billing_model: opts.billing_model,
                    responses_lite: self == Self::CodexLite,
                },
            )?;
            Shaped {
                upstream_model: outcome.upstream_model,
                prompt_cache_key: outcome.prompt_cache_key,
            }
        } else {
            Shaped {
                upstream_model: req.model.clone(),
                prompt_cache_key: None,
            }
        };
        apply_service_tier_policy(
            opts.service_tier_policy,
            &mut req.service_tier,
            &shaped.upstream_model,
        )?;
        if self.is_codex() {
            adapt_service_tier_for_codex(&mut req.service_tier);
        }
        Ok(shaped)
    }

    /// The request body as sent: the request serialised once. The API gets the fields in
    /// [`responses::Request`]'s order; the Codex backend has always got them (at every
    /// level) in sorted order, which is kept so that its bytes do not change.
    ///
    /// # Errors
    ///
    /// When the request does not serialise (it always does: its fields are strings,
    /// numbers, bools and JSON).
    pub fn encode(self, req: &responses::Request) -> Result<Vec<u8>, serde_json::Error> {
        if self.is_codex() {
            serde_json::to_vec(&serde_json::to_value(req)?)
        } else {
            serde_json::to_vec(req)
        }
    }
}
