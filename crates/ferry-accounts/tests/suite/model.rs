//! Model mapping and normalisation: suffixes, `-sys`, Codex model names (cases 1–4).

use ferry_accounts::{
    AccountConfig, ModelMapping, ModelRoute, ReasoningSuffix, Secret, anthropic_effort_for_suffix,
    glob_match, normalize_codex_model, normalize_requested_model, split_reasoning_suffix,
    strip_sys_suffix,
};
use pretty_assertions::assert_eq;

#[test]
fn globs() {
    let cases = [
        ("claude-*", "claude-opus-4-6", true),
        ("claude-*", "claude-", true),
        ("claude-*", "claud", false),
        ("*-haiku-*", "claude-haiku-4-5", true),
        ("*", "", true),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("*opus*4-6", "claude-opus-4-6", true),
    ];
    let got: Vec<_> = cases.iter().map(|(p, t, _)| glob_match(p, t)).collect();
    let want: Vec<_> = cases.iter().map(|(_, _, m)| *m).collect();
    assert_eq!(got, want);
}

#[test]
fn mapping_prefers_exact_then_most_specific_glob() {
    let mapping = ModelMapping::from_rules([
        ("claude-*", "gpt-5.1"),
        ("claude-haiku-*", "gpt-5.1-codex-mini"),
        ("claude-haiku-4-5", "gpt-5.4-mini"),
        ("*", "gpt-5.4"),
        ("claude-*-4-6", "gpt-5.2"),
        ("claude-opus-*", "gpt-5.5"),
    ]);
    let cases = [
        ("claude-haiku-4-5", Some("gpt-5.4-mini")),
        ("claude-haiku-3", Some("gpt-5.1-codex-mini")),
        ("claude-sonnet-4-6", Some("gpt-5.2")),
        // "claude-opus-*" (12 literal chars) beats "claude-*-4-6" (11).
        ("claude-opus-4-6", Some("gpt-5.5")),
        ("claude-sonnet-5", Some("gpt-5.1")),
        ("o3", Some("gpt-5.4")),
    ];
    let got: Vec<_> = cases.iter().map(|(m, _)| mapping.resolve(m)).collect();
    let want: Vec<_> = cases.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, want);
    assert_eq!(ModelMapping::default().resolve("x"), None);
}

#[test]
fn reasoning_suffixes() {
    let split = |base: &str, effort: Option<&'static str>| {
        Some(ReasoningSuffix {
            base: base.to_owned(),
            effort,
        })
    };
    let cases = [
        ("gpt-5.4-xhigh", split("gpt-5.4", Some("xhigh"))),
        ("gpt-5.4-extrahigh", split("gpt-5.4", Some("xhigh"))),
        ("gpt-5.4-none", split("gpt-5.4", None)),
        ("gpt-5.4-minimal", split("gpt-5.4", None)),
        ("GPT-5.4-High", split("gpt-5.4", Some("high"))),
        ("gpt-5.4 low", split("gpt-5.4", Some("low"))),
        ("gpt-5.4_medium", split("gpt-5.4", Some("medium"))),
        ("gpt-5.4(high)", split("gpt-5.4", Some("high"))),
        (
            "openai/gpt-5.3-codex-high",
            split("gpt-5.3-codex", Some("high")),
        ),
        (
            "gpt-5.3-codex-spark-xhigh",
            split("gpt-5.3-codex-spark", Some("xhigh")),
        ),
        // Unknown to the Codex table: the suffix is cut textually.
        ("gpt-7-turbo-high", split("gpt-7-turbo", Some("high"))),
        ("gpt-5.1-codex-max", None),
        ("gpt-5.4", None),
        ("claude-opus-4-6", None),
        ("claude-high", None),
        ("o3-high", None),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(m, _)| split_reasoning_suffix(m))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(got, want);
}

#[test]
fn requested_model_normalisation_case_4() {
    let got: Vec<_> = [
        "gpt-5.4-none",
        "gpt-5.1-codex-max",
        "claude-opus-4-6",
        " gpt-5.4-xhigh ",
    ]
    .iter()
    .map(|m| normalize_requested_model(m))
    .collect();
    assert_eq!(
        got,
        ["gpt-5.4", "gpt-5.1-codex-max", "claude-opus-4-6", "gpt-5.4"]
    );
    let efforts: Vec<_> = ["low", "medium", "high", "xhigh", "minimal"]
        .iter()
        .map(|e| anthropic_effort_for_suffix(e))
        .collect();
    assert_eq!(
        efforts,
        [Some("low"), Some("medium"), Some("high"), Some("max"), None]
    );
}

#[test]
fn codex_model_normalisation_newer_generation() {
    let cases = [
        ("", "gpt-5.4"),
        ("gpt-5.4", "gpt-5.4"),
        ("gpt-5.4-xhigh", "gpt-5.4"),
        ("gpt-5.4(high)", "gpt-5.4"),
        ("GPT 5.4 Mini", "gpt-5.4-mini"),
        ("openai/gpt-5.2-codex-low", "gpt-5.2-codex"),
        ("gpt-5", "gpt-5.1"),
        ("gpt-5-codex", "gpt-5.1-codex"),
        ("codex-mini-latest", "gpt-5.1-codex-mini"),
        ("gpt-5.3", "gpt-5.3-codex"),
        ("gpt-5.3-high", "gpt-5.3-codex"),
        ("gpt-5.1-2025-11-13", "gpt-5.1"),
        ("gpt-5.1-codex-2025-11-13-high", "gpt-5.1-codex"),
        ("gpt-5.4-chat-latest", "gpt-5.4"),
        // Unknown models pass through unchanged (the older generation mapped them to gpt-5.1).
        ("gpt-4o", "gpt-4o"),
        ("claude-opus-4-6", "claude-opus-4-6"),
        ("gpt-image-1", "gpt-image-1"),
        ("gpt-5.6-sol", "gpt-5.6-sol"),
        ("  Custom/Model  ", "Custom/Model"),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(m, _)| normalize_codex_model(m))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, n)| (*n).to_owned()).collect();
    assert_eq!(got, want);
}

#[test]
fn sys_suffix() {
    let got: Vec<_> = ["gpt-5.4-sys", "gpt-5.4-SYS", "gpt-5.4", "sys", " x-sys "]
        .iter()
        .map(|m| strip_sys_suffix(m))
        .collect();
    assert_eq!(got, ["gpt-5.4", "gpt-5.4", "gpt-5.4", "sys", "x"]);
}

fn route(
    original: &str,
    requested: &str,
    effort: Option<&'static str>,
    billing: &str,
    upstream: &str,
) -> ModelRoute {
    ModelRoute {
        original: original.into(),
        requested: requested.into(),
        suffix_effort: effort,
        billing: billing.into(),
        upstream: upstream.into(),
        family: upstream.into(),
        fast: false,
    }
}

#[test]
fn routes_for_api_key_accounts() {
    let mut account = AccountConfig::api_key("k", "https://api.openai.com/v1", Secret::new("sk-x"));
    account.default_model = Some("gpt-5.1".into());
    account.model_mapping = ModelMapping::from_rules([
        ("claude-opus-4-8", "gpt-5.1-codex"),
        ("claude-haiku-*", "gpt-5.1-codex-mini"),
        ("gpt-5.4", "gpt-5.5"),
    ]);
    let got: Vec<_> = [
        "claude-opus-4-8",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6",
        "gpt-5.4-xhigh",
        "gpt-4o",
        "my-model",
    ]
    .iter()
    .map(|m| account.route_model(m))
    .collect();
    assert_eq!(
        got,
        [
            route(
                "claude-opus-4-8",
                "claude-opus-4-8",
                None,
                "gpt-5.1-codex",
                "gpt-5.1-codex"
            ),
            route(
                "claude-haiku-4-5-20251001",
                "claude-haiku-4-5-20251001",
                None,
                "gpt-5.1-codex-mini",
                "gpt-5.1-codex-mini"
            ),
            // No rule: Claude-family models take default_model.
            route(
                "claude-sonnet-4-6",
                "claude-sonnet-4-6",
                None,
                "gpt-5.1",
                "gpt-5.1"
            ),
            // Case 1: the suffix is split off, then the mapping applies to the base.
            route(
                "gpt-5.4-xhigh",
                "gpt-5.4",
                Some("xhigh"),
                "gpt-5.5",
                "gpt-5.5"
            ),
            // default_model is not a fallback for non-Claude models; API-key accounts don't normalise.
            route("gpt-4o", "gpt-4o", None, "gpt-4o", "gpt-4o"),
            route("my-model", "my-model", None, "my-model", "my-model"),
        ]
    );
}

#[test]
fn routes_for_oauth_accounts_normalise_for_codex() {
    let mut account = AccountConfig::oauth("o", Secret::new("at"), None);
    account.model_mapping = ModelMapping::from_rules([("claude-*", "gpt-5-codex-sys")]);
    let got: Vec<_> = ["claude-opus-4-6", "gpt-5.4-xhigh", "gpt-5-high", "gpt-4o"]
        .iter()
        .map(|m| account.route_model(m))
        .collect();
    assert_eq!(
        got,
        [
            route(
                "claude-opus-4-6",
                "claude-opus-4-6",
                None,
                "gpt-5-codex-sys",
                "gpt-5.1-codex"
            ),
            // Case 1: model gpt-5.4, effort xhigh.
            route(
                "gpt-5.4-xhigh",
                "gpt-5.4",
                Some("xhigh"),
                "gpt-5.4",
                "gpt-5.4"
            ),
            route("gpt-5-high", "gpt-5.1", Some("high"), "gpt-5.1", "gpt-5.1"),
            route("gpt-4o", "gpt-4o", None, "gpt-4o", "gpt-4o"),
        ]
    );
}

#[test]
fn an_account_override_names_the_family_of_an_unknown_model() {
    let mut account = AccountConfig::api_key("k", "https://api.openai.com/v1", Secret::new("sk-x"));
    account.model_mapping = ModelMapping::from_rules([("claude-*", "acme-coder-2")]);
    let config: AccountConfig = toml::from_str(
        r#"
        name = "k"
        kind = "api_key"
        api_key = "sk-x"
        model_mapping = { "claude-*" = "acme-coder-2" }
        [models."acme-coder-*"]
        family = "gpt-5"
        [models."ACME-CODER-2"]
        family = "gpt-6"
        "#,
    )
    .unwrap();
    // The exact entry (case-insensitive) wins over the glob.
    assert_eq!(config.route_model("claude-opus-4-8").family, "gpt-6");
    assert_eq!(config.route_model("acme-coder-9").family, "gpt-5");
    // Without an override the family is the upstream model itself.
    assert_eq!(
        account.route_model("claude-opus-4-8").family,
        "acme-coder-2"
    );
}

#[test]
fn one_m_and_fast_suffixes_route_like_the_base_name() {
    let mut account = AccountConfig::api_key("k", "https://api.openai.com/v1", Secret::new("sk-x"));
    account.default_model = Some("gpt-5.1".into());
    account.model_mapping = ModelMapping::from_rules([("claude-opus-4-8", "gpt-5.5")]);
    for (model, upstream, fast) in [
        ("claude-opus-4-8[1m]", "gpt-5.5", false),
        ("claude-opus-4-8-fast", "gpt-5.5", true),
        ("claude-opus-4-8-fast[1M]", "gpt-5.5", true),
        ("claude-sonnet-4-5[1m]", "gpt-5.1", false),
        ("gpt-5.4[1m]", "gpt-5.4", false),
        // `-fast` is Claude Code's suffix: other models keep it.
        ("grok-4-fast", "grok-4-fast", false),
    ] {
        let route = account.route_model(model);
        assert_eq!(
            (route.upstream.as_str(), route.fast),
            (upstream, fast),
            "{model}"
        );
        assert_eq!(route.original, model);
    }
}
