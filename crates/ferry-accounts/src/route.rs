//! An account's route for a client's model name: the model mapping, suffixes and Codex
//! normalisation of [`crate::model`] applied with the account's settings.

use crate::config::{AccountConfig, AccountKind};
use crate::model::*;

impl AccountConfig {
    /// Resolves the models for a request on this account.
    ///
    /// Mapping: an exact or glob rule for the original model, else for the suffix-stripped model;
    /// otherwise `default_model` for Claude-family models (`claude*`); otherwise the model
    /// passes through. The reasoning effort travels separately (in `reasoning.effort`), so the
    /// mapped target is not re-suffixed. OAuth accounts then strip `-sys` and apply
    /// [`normalize_codex_model`]; API-key accounts only trim.
    pub fn route_model(&self, model: &str) -> ModelRoute {
        let original = model.trim().to_owned();
        let (base, fast) = strip_client_suffixes(&original);
        let split = split_reasoning_suffix(base);
        let requested = split
            .as_ref()
            .map_or_else(|| base.to_owned(), |s| s.base.clone());
        let suffix_effort = split.and_then(|s| s.effort);
        let billing = self
            .model_mapping
            .resolve(&original)
            .or_else(|| self.model_mapping.resolve(&requested))
            .map(str::to_owned)
            .or_else(|| {
                let claude = requested.to_ascii_lowercase().starts_with("claude");
                self.default_model
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| claude && !d.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| requested.clone());
        let upstream = match self.kind {
            AccountKind::Oauth => normalize_codex_model(strip_sys_suffix(&billing)),
            AccountKind::ApiKey => billing.trim().to_owned(),
        };
        let family = self.models.family_model(&upstream);
        ModelRoute {
            original,
            requested,
            suffix_effort,
            billing,
            upstream,
            family,
            fast,
        }
    }
}
