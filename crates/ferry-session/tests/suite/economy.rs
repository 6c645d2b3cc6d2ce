//! Cache-miss classification.

use ferry_session::keys::{ClientHeaders, KeySource};
use ferry_session::{
    ChainMatch, DigestChain, MissFacts, MissReason, ResolvedKey, StickyBinding, classify_miss,
    is_miss,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::support::req;

fn chain(turns: usize) -> DigestChain {
    let mut messages = vec![json!({"role": "user", "content": "q0"})];
    for i in 1..turns {
        messages.push(json!({"role": "assistant", "content": format!("a{i}")}));
        messages.push(json!({"role": "user", "content": format!("q{i}")}));
    }
    DigestChain::from_request(&req(
        &json!({"model": "m", "system": "s", "messages": messages}),
    ))
}

fn resolved(turns: usize, source: KeySource, matched: Option<&str>) -> ResolvedKey {
    let chain = chain(turns);
    ResolvedKey {
        key: "key".to_owned(),
        source,
        chain_match: matched.map(|k| ChainMatch {
            key: k.to_owned(),
            len: 1,
        }),
        chain,
    }
}

fn sticky(account: &str, turns: usize) -> StickyBinding {
    let c = chain(turns);
    StickyBinding {
        account: account.to_owned(),
        chain_len: c.len(),
        chain_id: c.id().unwrap(),
    }
}

#[test]
fn miss_reasons() {
    let primary_at_2 = sticky("primary", 2);
    let other_conversation = StickyBinding {
        chain_id: "0".repeat(32),
        ..sticky("primary", 2)
    };
    let backup = sticky("backup", 2);
    let cases = [
        (
            resolved(3, KeySource::Metadata, None),
            Some(&primary_at_2),
            true,
            MissReason::ContinuationReset,
        ),
        (
            resolved(1, KeySource::Metadata, None),
            Some(&primary_at_2),
            false,
            MissReason::NewSession,
        ),
        (
            resolved(1, KeySource::Digest, None),
            None,
            false,
            MissReason::NewSession,
        ),
        (
            resolved(3, KeySource::Metadata, Some("old-key")),
            Some(&primary_at_2),
            false,
            MissReason::KeyChanged,
        ),
        (
            resolved(3, KeySource::Digest, Some("key")),
            None,
            false,
            MissReason::BindingExpired,
        ),
        (
            resolved(3, KeySource::Metadata, Some("key")),
            None,
            false,
            MissReason::BindingExpired,
        ),
        (
            resolved(3, KeySource::Metadata, None),
            Some(&backup),
            false,
            MissReason::AccountSwitched,
        ),
        (
            resolved(3, KeySource::Metadata, None),
            Some(&other_conversation),
            false,
            MissReason::PrefixChanged,
        ),
        (
            resolved(3, KeySource::Explicit, Some("key")),
            Some(&primary_at_2),
            false,
            MissReason::UpstreamEvicted,
        ),
    ];
    for (i, (resolved, sticky, reset, want)) in cases.iter().enumerate() {
        let facts = MissFacts {
            resolved,
            sticky: *sticky,
            account: "primary",
            continuation_reset: *reset,
        };
        assert_eq!(classify_miss(&facts), *want, "case {i}");
    }
    let _ = ClientHeaders::default();
}

#[test]
fn labels_and_thresholds() {
    let labels: Vec<&str> = MissReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "new_session",
            "prefix_changed",
            "key_changed",
            "account_switched",
            "binding_expired",
            "continuation_reset",
            "upstream_evicted"
        ]
    );
    let cases = [
        (1023, 0, false),
        (1024, 0, true),
        (10_000, 4_999, true),
        (10_000, 5_000, false),
        (10_000, 9_800, false),
        (0, 0, false),
    ];
    for (input, cached, want) in cases {
        assert_eq!(is_miss(input, cached), want, "{input}/{cached}");
    }
}
