//! Fast mode and the service-tier policy (cases 24–26; docs/models.md § Fast mode and
//! service tiers).

use ferry_accounts::{
    AccountsError, FAST_MODE_BETA, ServiceTierPolicy, apply_service_tier_policy, has_beta_token,
    headers_have_beta_token, normalize_service_tier, resolve_service_tier,
};
use pretty_assertions::assert_eq;

use super::support::headers;

#[test]
fn beta_tokens() {
    let cases = [
        ("fast-mode-2026-02-01", true),
        ("claude-code-20250219, fast-mode-2026-02-01", true),
        (" fast-mode-2026-02-01 ,x", true),
        ("fast-mode-2026-02-01x", false),
        ("FAST-MODE-2026-02-01", false),
        ("", false),
    ];
    let got: Vec<_> = cases
        .iter()
        .map(|(h, _)| has_beta_token(h, FAST_MODE_BETA))
        .collect();
    let want: Vec<_> = cases.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
    assert!(!has_beta_token("a,,b", ""));
    let multi = headers(&[
        ("anthropic-beta", "a"),
        ("anthropic-beta", "b, fast-mode-2026-02-01"),
    ]);
    assert!(headers_have_beta_token(&multi, FAST_MODE_BETA));
    assert!(!headers_have_beta_token(&headers(&[]), FAST_MODE_BETA));
}

#[test]
fn tier_aliases() {
    let got: Vec<_> = [
        "fast", "Priority", "auto", "default", "standard", "flex", "scale", "turbo", "",
    ]
    .iter()
    .map(|t| normalize_service_tier(t))
    .collect();
    assert_eq!(
        got,
        [
            Some("priority"),
            Some("priority"),
            Some("auto"),
            Some("default"),
            Some("default"),
            Some("flex"),
            Some("scale"),
            None,
            None
        ]
    );
}

/// A request's `service_tier` field.
fn body(tier: Option<&str>) -> Option<String> {
    tier.map(str::to_owned)
}

#[test]
fn policies_cases_24_to_26() {
    use ServiceTierPolicy::{Block, Filter, Pass};
    // (policy, requested tier, result, tier left in the body)
    type Case = (
        ServiceTierPolicy,
        Option<&'static str>,
        Result<Option<&'static str>, ()>,
        Option<&'static str>,
    );
    let cases: [Case; 10] = [
        (
            Pass,
            Some("priority"),
            Ok(Some("priority")),
            Some("priority"),
        ),
        (Pass, Some("fast"), Ok(Some("priority")), Some("priority")),
        (Pass, None, Ok(None), None),
        (Pass, Some("turbo"), Ok(Some("turbo")), Some("turbo")),
        (Filter, Some("priority"), Ok(None), None),
        (Filter, Some("auto"), Ok(Some("auto")), Some("auto")),
        (Block, Some("fast"), Err(()), Some("fast")),
        (Block, Some("flex"), Err(()), Some("flex")),
        (Block, Some("default"), Ok(Some("default")), Some("default")),
        (Block, None, Ok(None), None),
    ];
    for (policy, tier, want, left) in cases {
        let mut b = body(tier);
        let got = apply_service_tier_policy(policy, &mut b, "gpt-5.4");
        let got = got.map(|t| t.map(|s| s.to_owned())).map_err(|e| {
            assert!(matches!(e, AccountsError::ServiceTierBlocked { .. }));
        });
        assert_eq!(
            got,
            want.map(|w| w.map(str::to_owned)),
            "{policy:?} {tier:?}"
        );
        assert_eq!(b.as_deref(), left, "{policy:?} {tier:?}");
        // The typed form gives the field the value the map version leaves in the body.
        if let Some(t) = tier {
            let typed = resolve_service_tier(policy, t, "gpt-5.4").map_err(|e| {
                assert!(matches!(e, AccountsError::ServiceTierBlocked { .. }));
            });
            match typed {
                Ok(v) => assert_eq!(v.as_deref(), left, "{policy:?} {tier:?}"),
                Err(()) => assert_eq!(want, Err(()), "{policy:?} {tier:?}"),
            }
        }
    }
    let err = apply_service_tier_policy(Block, &mut body(Some("fast")), "gpt-5.4").unwrap_err();
    assert_eq!(
        err.to_string(),
        "service_tier=priority is not allowed for model gpt-5.4"
    );
}
