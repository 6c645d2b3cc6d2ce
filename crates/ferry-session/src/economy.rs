//! Cache economy: why a request missed the upstream prompt cache.

use crate::explain::MissReason;
use crate::keys::KeySource;
use crate::sessions::{ResolvedKey, StickyBinding};

/// Prompts shorter than this many tokens are never cached upstream (OpenAI caches from
/// 1024 tokens on), so they count neither as a hit nor as a miss.
pub const MIN_CACHEABLE_TOKENS: u64 = 1024;

/// Whether a request counts as a cache miss: its prompt was long enough to be cached
/// ([`MIN_CACHEABLE_TOKENS`]) and less than half of it was read from the cache. (A turn
/// of a warm conversation reads nearly all of its prompt from the cache; a prefix that
/// stopped at the system prompt and tools is a miss worth explaining.)
pub fn is_miss(input_tokens: u64, cached_tokens: u64) -> bool {
    input_tokens >= MIN_CACHEABLE_TOKENS && cached_tokens.saturating_mul(2) < input_tokens
}

/// What the session layer knew about a request, for [`classify_miss`].
#[derive(Debug, Clone, Copy)]
pub struct MissFacts<'a> {
    /// The request's key, chain and chain match ([`crate::Sessions::resolve_cache_key`]).
    pub resolved: &'a ResolvedKey,
    /// The sticky binding read before the request ([`crate::Sessions::sticky_account`]).
    pub sticky: Option<&'a StickyBinding>,
    /// The account that served the request.
    pub account: &'a str,
    /// Whether this attempt was the full-history retry after a continuation error.
    pub continuation_reset: bool,
}

/// The most specific reason for a cache miss, checked in this order: continuation reset,
/// new session (no assistant message yet), key changed (the chain was bound to another
/// key), binding expired (history but no sticky binding), account switched, prefix
/// changed (the request does not extend the bound chain), else upstream evicted.
pub fn classify_miss(facts: &MissFacts<'_>) -> MissReason {
    let resolved = facts.resolved;
    if facts.continuation_reset {
        return MissReason::ContinuationReset;
    }
    if !resolved.chain.has_assistant() {
        return MissReason::NewSession;
    }
    if resolved.source != KeySource::Digest
        && resolved
            .chain_match
            .as_ref()
            .is_some_and(|m| m.key != resolved.key)
    {
        return MissReason::KeyChanged;
    }
    let Some(sticky) = facts.sticky else {
        return MissReason::BindingExpired;
    };
    if sticky.account != facts.account {
        return MissReason::AccountSwitched;
    }
    if !resolved.chain.extends(sticky.chain_len, &sticky.chain_id) {
        return MissReason::PrefixChanged;
    }
    MissReason::UpstreamEvicted
}
