//! `reasoning`, sampling and the other top-level parameters.

use serde_json::Value;

use super::{Cx, MIN_OUTPUT_TOKENS, Options, effort_for_budget, schema};
use crate::anthropic::{Effort, MessagesRequest, Thinking};
use crate::responses::{self, Reasoning, ReasoningEffort};

impl Cx {
    /// `reasoning` and `include`.
    pub(super) fn reasoning(
        &mut self,
        req: &MessagesRequest,
        opts: &Options,
        out: &mut responses::Request,
    ) {
        let requested_effort = req.output_config.as_ref().and_then(|c| c.effort.as_ref());
        if !self.reasoning_model {
            if matches!(
                req.thinking,
                Some(Thinking::Enabled { .. } | Thinking::Adaptive {})
            ) {
                self.drop("thinking", "thinking", "the upstream model does not reason");
            }
            if requested_effort.is_some() {
                self.drop(
                    "output_config.effort",
                    "effort",
                    "the upstream model does not reason",
                );
            }
            return;
        }
        let effort = match (&req.thinking, requested_effort) {
            (Some(Thinking::Disabled {}), _) => ReasoningEffort::None,
            (_, Some(effort)) => match effort {
                Effort::Low => ReasoningEffort::Low,
                Effort::Medium => ReasoningEffort::Medium,
                Effort::High => ReasoningEffort::High,
                Effort::Max => ReasoningEffort::Xhigh,
                Effort::Other(other) => ReasoningEffort::Other(other.clone()),
            },
            (Some(Thinking::Enabled { budget_tokens }), None) => effort_for_budget(*budget_tokens),
            (Some(Thinking::Unknown(v)), None) => {
                let t = v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    "thinking",
                    "thinking",
                    format!("thinking type {t:?} is not supported; medium effort used"),
                );
                ReasoningEffort::Medium
            }
            (Some(Thinking::Adaptive {}) | None, None) => ReasoningEffort::Medium,
        };
        if matches!(req.thinking, Some(Thinking::Disabled {})) && requested_effort.is_some() {
            self.drop(
                "output_config.effort",
                "effort",
                "thinking is disabled: effort none sent",
            );
        }
        // Thinking blocks reach the client only when it asked for thinking: Anthropic never
        // returns them otherwise. Without a request for thinking the model still reasons at
        // the effort above, but no summary is requested and no ciphertext is included, so the
        // answer carries no thinking or redacted_thinking blocks.
        let wants_thinking = matches!(
            req.thinking,
            Some(Thinking::Enabled { .. } | Thinking::Adaptive {} | Thinking::Unknown(_))
        );
        let visible = wants_thinking && effort != ReasoningEffort::None;
        let summary = visible.then(|| opts.reasoning_summary.clone());
        out.reasoning = Some(Reasoning {
            effort: Some(effort),
            summary,
            context: None,
        });
        if visible {
            out.include = vec!["reasoning.encrypted_content".to_owned()];
        }
    }

    /// Sampling and the remaining top-level parameters.
    pub(super) fn parameters(
        &mut self,
        req: &MessagesRequest,
        opts: &Options,
        out: &mut responses::Request,
    ) {
        out.max_output_tokens = req
            .max_tokens
            .or(opts.default_max_output_tokens)
            .filter(|n| *n > 0)
            .map(|n| n.max(MIN_OUTPUT_TOKENS));
        if self.reasoning_model {
            if req.temperature.is_some() {
                self.drop(
                    "temperature",
                    "temperature",
                    "reasoning models take no temperature",
                );
            }
            if req.top_p.is_some() {
                self.drop("top_p", "top_p", "reasoning models take no top_p");
            }
        } else {
            out.temperature = req.temperature;
            out.top_p = req.top_p;
        }
        if req.top_k.is_some() {
            self.drop("top_k", "top_k", "the Responses API has no top_k");
        }
        // `stop_sequences` are not sent (the Responses API has none): the response
        // converters emulate them (`stream::Options::with_stop_sequences`).
        if req.service_tier.as_deref().is_some_and(|t| t != "auto") {
            self.drop(
                "service_tier",
                "service_tier",
                "Anthropic service tiers have no Responses equivalent",
            );
        }
        if req.metadata.is_some() {
            self.drop("metadata", "metadata", "metadata is not forwarded upstream");
        }
        if req.context_management.is_some() {
            self.drop(
                "context_management",
                "context_management",
                "context editing has no Responses equivalent",
            );
        }
        if let Some(config) = &req.output_config {
            if let Some(format) = &config.format {
                match structured_output(format) {
                    Some((format, repairs)) => {
                        out.text = Some(responses::TextConfig {
                            format: Some(format),
                            verbosity: None,
                        });
                        if !repairs.is_empty() {
                            self.drop(
                                "output_config.format.schema",
                                "output_schema",
                                repairs.join("; "),
                            );
                        }
                    }
                    None => self.drop(
                        "output_config.format",
                        "output_config",
                        "output format is not supported",
                    ),
                }
            }
            for key in config.extra.keys() {
                self.drop(
                    format!("output_config.{key}"),
                    "output_config",
                    "not supported",
                );
            }
        }
        for (key, value) in &req.extra {
            // `speed` (`fast` or `standard`) is the caller's to map: fast mode is
            // `Options::service_tier` (`priority`).
            if key == "speed" && matches!(value.as_str(), Some("fast" | "standard")) {
                continue;
            }
            self.drop(key.clone(), "unknown_field", "field is not supported");
        }
    }
}

/// `output_config.format` (`{"type":"json_schema","schema":…}`) → `text.format`.
fn structured_output(format: &Value) -> Option<(Value, Vec<String>)> {
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    let (schema, repairs) = schema::sanitize(format.get("schema"));
    let mut out = serde_json::Map::new();
    out.insert("type".to_owned(), Value::String("json_schema".to_owned()));
    out.insert("name".to_owned(), Value::String("output".to_owned()));
    out.insert("schema".to_owned(), schema);
    out.insert("strict".to_owned(), Value::Bool(false));
    Some((Value::Object(out), repairs))
}
