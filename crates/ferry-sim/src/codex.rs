//! The ChatGPT/Codex backend's request rules, as its refusals reported by users of the peer
//! gateways describe them (2026-07 to 2026-09). The simulated upstream applies them to
//! requests on a `…/backend-api/codex/responses` path, so a gateway that sends the backend a
//! shape it refuses fails against the simulator as it would in production.
//!
//! - The client version (`version` header, and the same version in the `user-agent`'s
//!   first product) is at least [`MIN_CLIENT_VERSION`].
//! - `service_tier`, when present, is `priority` or `default`.
//! - The Responses Lite models ([`needs_lite`]) are served only in the Lite shape: header
//!   `x-openai-internal-codex-responses-lite: true`, no top-level `tools` or `instructions`
//!   (tools travel in an `additional_tools` developer input item), `parallel_tool_calls:
//!   false`, `reasoning.context: "all_turns"`, no `previous_response_id`, only function and
//!   custom tools, no image `detail`.

use serde_json::{Value, json};

/// The oldest client version the backend serves.
pub const MIN_CLIENT_VERSION: [u64; 3] = [0, 148, 0];

/// The models the backend serves only in the Responses Lite shape: GPT-5.6 Sol, Terra and
/// Luna, and every GPT-6 model.
pub fn needs_lite(model: &str) -> bool {
    matches!(model, "gpt-5.6-sol" | "gpt-5.6-terra" | "gpt-5.6-luna") || model.starts_with("gpt-6")
}

fn version_at_least(v: &str, min: &[u64]) -> bool {
    let parts: Vec<u64> = v.split('.').filter_map(|p| p.parse().ok()).collect();
    parts.len() == 3 && parts.as_slice() >= min
}

/// Why the Codex backend would refuse this request (its message), or `None` when it
/// passes. `header` looks a request header up by lowercase name.
pub fn codex_refusal(header: impl Fn(&str) -> Option<String>, body: &Value) -> Option<String> {
    let version = header("version").unwrap_or_default();
    let ua_version = header("user-agent")
        .and_then(|ua| {
            ua.split(' ')
                .next()
                .and_then(|first| first.split_once('/'))
                .map(|(_, v)| v.to_owned())
        })
        .unwrap_or_default();
    if version != ua_version || !version_at_least(&version, &MIN_CLIENT_VERSION) {
        return Some(format!(
            "This model requires a newer version of Codex (got {version:?}). Please upgrade."
        ));
    }
    if let Some(tier) = body.get("service_tier").and_then(Value::as_str)
        && !matches!(tier, "priority" | "default")
    {
        return Some(format!("Unsupported service_tier: {tier}"));
    }
    let model = body["model"].as_str().unwrap_or("");
    let lite = header("x-openai-internal-codex-responses-lite").as_deref() == Some("true");
    if needs_lite(model) && !lite {
        return Some("reasoning.context must be 'all_turns' for this model".into());
    }
    if !lite {
        return None;
    }
    if body.get("tools").is_some() || body.get("instructions").is_some() {
        return Some("Responses Lite takes no top-level tools or instructions".into());
    }
    if body["parallel_tool_calls"] != json!(false)
        || body["reasoning"]["context"] != json!("all_turns")
    {
        return Some("Responses Lite needs parallel_tool_calls false and all_turns".into());
    }
    if body.get("previous_response_id").is_some() {
        return Some("previous_response_id is not supported".into());
    }
    for item in body["input"].as_array().into_iter().flatten() {
        if item["type"] == json!("additional_tools") {
            let only_client = item["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|t| matches!(t["type"].as_str(), Some("function" | "custom")));
            if !only_client {
                return Some(
                    "X-OpenAI-Internal-Codex-Responses-Lite only supports function tools, custom tools, and client-executed tool search."
                        .into(),
                );
            }
        }
        for part in item["content"].as_array().into_iter().flatten() {
            if part.get("detail").is_some() {
                return Some("image detail is not supported".into());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules refuse an old version and every break of the Lite shape, and pass the
    /// shape ferry sends (the server's `lite` tests rely on this oracle).
    #[test]
    fn the_simulator_applies_the_codex_backend_rules() {
        let headers = |version: &'static str, lite: bool| {
            move |name: &str| match name {
                "version" => Some(version.to_owned()),
                "user-agent" => Some(format!("codex_cli_rs/{version} (Linux; x86_64)")),
                "x-openai-internal-codex-responses-lite" if lite => Some("true".to_owned()),
                _ => None,
            }
        };
        let lite_body = json!({"model": "gpt-5.6-sol", "parallel_tool_calls": false,
            "reasoning": {"context": "all_turns"}, "input": [
                {"type": "additional_tools", "role": "developer",
                 "tools": [{"type": "function", "name": "f"}]}]});
        assert_eq!(codex_refusal(headers("0.171.0", true), &lite_body), None);
        let cases: Vec<(&str, Option<String>)> = vec![
            (
                "old version",
                codex_refusal(headers("0.144.0", true), &lite_body),
            ),
            (
                "plain shape",
                codex_refusal(headers("0.171.0", false), &lite_body),
            ),
            ("top-level tools", {
                let mut b = lite_body.clone();
                b["tools"] = json!([]);
                codex_refusal(headers("0.171.0", true), &b)
            }),
            ("parallel calls", {
                let mut b = lite_body.clone();
                b["parallel_tool_calls"] = json!(true);
                codex_refusal(headers("0.171.0", true), &b)
            }),
            ("continuation", {
                let mut b = lite_body.clone();
                b["previous_response_id"] = json!("resp_1");
                codex_refusal(headers("0.171.0", true), &b)
            }),
            ("hosted tool", {
                let mut b = lite_body.clone();
                b["input"][0]["tools"] = json!([{"type": "web_search"}]);
                codex_refusal(headers("0.171.0", true), &b)
            }),
            ("service tier", {
                let mut b = lite_body.clone();
                b["service_tier"] = json!("flex");
                codex_refusal(headers("0.171.0", true), &b)
            }),
        ];
        for (case, refusal) in cases {
            assert!(refusal.is_some(), "{case} passed");
        }
    }
}
