//! Why a turn missed the prompt cache, for an operator: the reasons (the labels of
//! `ferry_cache_miss_total`) and their explanation from the session's previous turn.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fingerprint::{PrefixChange, PrefixFingerprint, compare};
use crate::keys::KeySource;

/// Why a request missed the prompt cache: the `reason` label of
/// `ferry_cache_miss_total`. Each reason points at something to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissReason {
    /// The first turn of a conversation: nothing could have been cached.
    NewSession,
    /// The conversation was bound, but this request does not extend what was sent last
    /// (the client compacted or edited its history, or another conversation shares the
    /// key).
    PrefixChanged,
    /// The conversation ran under another key before (the client changed its session id,
    /// e.g. on resume).
    KeyChanged,
    /// The session was served by another account last time (failover, or the sticky
    /// account was unavailable); upstream caches are per account.
    AccountSwitched,
    /// The conversation has history but ferry holds no binding for it any more (time to
    /// live ran out, evicted, or the in-memory store restarted).
    BindingExpired,
    /// This is the full-history retry after the upstream rejected
    /// `previous_response_id`.
    ContinuationReset,
    /// Everything on ferry's side was as before: the upstream dropped the cached prefix
    /// (idle for too long, or routed elsewhere).
    UpstreamEvicted,
    /// The system prompt differs from the session's previous turn (a refinement of
    /// `prefix_changed`, found by comparing [`PrefixFingerprint`]s).
    SystemChanged,
    /// The tool list differs from the session's previous turn: a tool added, removed,
    /// reordered or redefined (tool definitions precede the messages in the prompt).
    ToolsChanged,
    /// A message the previous turn sent differs now: edited, compacted or removed.
    MessageEdited,
    /// The cache key is derived from the `cache_control` markers and they moved, so the
    /// conversation got a new key (a refinement of `key_changed`).
    CacheControlMoved,
}

impl MissReason {
    /// The reasons [`crate::classify_miss`] gives (pre-register the metric's label values with
    /// these and [`MissReason::REFINED`]).
    pub const ALL: [Self; 7] = [
        Self::NewSession,
        Self::PrefixChanged,
        Self::KeyChanged,
        Self::AccountSwitched,
        Self::BindingExpired,
        Self::ContinuationReset,
        Self::UpstreamEvicted,
    ];

    /// The more specific reasons [`explain_miss`] turns some of those into, once the
    /// session's previous turn is known.
    pub const REFINED: [Self; 4] = [
        Self::SystemChanged,
        Self::ToolsChanged,
        Self::MessageEdited,
        Self::CacheControlMoved,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewSession => "new_session",
            Self::PrefixChanged => "prefix_changed",
            Self::KeyChanged => "key_changed",
            Self::AccountSwitched => "account_switched",
            Self::BindingExpired => "binding_expired",
            Self::ContinuationReset => "continuation_reset",
            Self::UpstreamEvicted => "upstream_evicted",
            Self::SystemChanged => "system_changed",
            Self::ToolsChanged => "tools_changed",
            Self::MessageEdited => "message_edited",
            Self::CacheControlMoved => "cache_control_moved",
        }
    }

    /// The reason with this label.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::REFINED)
            .find(|r| r.as_str() == label)
    }

    /// Whether the session's previous turn can make this reason more specific
    /// ([`explain_miss`]): `prefix_changed` and `upstream_evicted` (which part of the
    /// prefix changed), `key_changed` (moved `cache_control` markers). The other reasons
    /// are final as [`crate::classify_miss`] gives them.
    pub fn needs_history(self) -> bool {
        matches!(
            self,
            Self::PrefixChanged | Self::UpstreamEvicted | Self::KeyChanged
        )
    }
}

impl Serialize for MissReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MissReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Self::from_label(&label)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown miss reason `{label}`")))
    }
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Idle time after which an upstream prompt cache has most likely dropped a prefix:
/// OpenAI keeps cached prefixes for 5 to 10 minutes without use (up to an hour off-peak;
/// developers.openai.com/api/docs/guides/prompt-caching).
pub const IDLE_EVICTION_SECS: u64 = 300;

/// Why one turn missed the prompt cache, for an operator: the reason (the metric label),
/// the part of the prefix that changed, the idle time since the previous turn, and a
/// sentence saying what to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MissExplanation {
    /// The most specific reason.
    pub reason: MissReason,
    /// The first part of the prefix that differs from the session's previous turn, when
    /// that turn is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<PrefixChange>,
    /// Seconds since the session's previous turn, when it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
    /// The account of the previous turn, when it was another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_account: Option<String>,
    /// Where the `cache_control` markers were in the previous turn, when they moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marks_before: Option<Vec<String>>,
    /// What happened and what to look at, in one or two sentences.
    pub detail: String,
}

/// The session's previous turn, as [`explain_miss`] compares with it.
#[derive(Debug, Clone, Copy)]
pub struct PreviousTurn<'a> {
    /// Its prefix fingerprint.
    pub fingerprint: &'a PrefixFingerprint,
    /// The account that served it.
    pub account: &'a str,
    /// Seconds between it and this turn.
    pub idle_secs: u64,
}

/// Explains a miss that [`crate::classify_miss`] classified as `base`: compares this turn's
/// fingerprint with the session's previous turn (when known) to make `prefix_changed`,
/// `upstream_evicted` and `key_changed` specific, and says what to act on.
///
/// - `prefix_changed` / `upstream_evicted` become `tools_changed`, `system_changed` or
///   `message_edited` when the first difference ([`compare`]) is there. (A changed tool list
///   is invisible to the digest chain, so [`crate::classify_miss`] alone calls it
///   `upstream_evicted`.)
/// - `key_changed` becomes `cache_control_moved` when the key comes from the
///   `cache_control` markers ([`KeySource::CacheControl`]) and they moved since the previous
///   turn (which then ran under the old key).
/// - `upstream_evicted` says whether the idle time ([`IDLE_EVICTION_SECS`]) explains it.
pub fn explain_miss(
    base: MissReason,
    source: KeySource,
    account: &str,
    current: &PrefixFingerprint,
    previous: Option<PreviousTurn<'_>>,
) -> MissExplanation {
    let change = previous.and_then(|p| compare(p.fingerprint, current));
    let marks_moved = previous
        .is_some_and(|p| p.fingerprint.cache_control_marks() != current.cache_control_marks());
    let reason = match (base, &change) {
        (MissReason::PrefixChanged | MissReason::UpstreamEvicted, Some(c)) => match c {
            PrefixChange::Tools { .. } => MissReason::ToolsChanged,
            PrefixChange::System => MissReason::SystemChanged,
            PrefixChange::Message { .. } => MissReason::MessageEdited,
        },
        (MissReason::KeyChanged, _) if source == KeySource::CacheControl && marks_moved => {
            MissReason::CacheControlMoved
        }
        _ => base,
    };
    let idle_secs = previous.map(|p| p.idle_secs);
    let previous_account = previous
        .map(|p| p.account)
        .filter(|a| *a != account)
        .map(str::to_owned);
    let marks_before = previous
        .filter(|_| reason == MissReason::CacheControlMoved)
        .map(|p| p.fingerprint.cache_control_marks().to_vec());
    let detail = detail(
        reason,
        change.as_ref(),
        idle_secs,
        account,
        previous,
        current,
    );
    MissExplanation {
        reason,
        change,
        idle_secs,
        previous_account,
        marks_before,
        detail,
    }
}

fn detail(
    reason: MissReason,
    change: Option<&PrefixChange>,
    idle_secs: Option<u64>,
    account: &str,
    previous: Option<PreviousTurn<'_>>,
    current: &PrefixFingerprint,
) -> String {
    match reason {
        MissReason::NewSession => {
            "first turn of the conversation: nothing was cached for it yet".to_owned()
        }
        MissReason::ContinuationReset => "the upstream rejected previous_response_id, so the \
            whole history was sent again without it"
            .to_owned(),
        MissReason::KeyChanged => "the conversation moved to another cache key (the client \
            changed its session id, e.g. on resume); the prefix cached under the old key is \
            not used"
            .to_owned(),
        MissReason::CacheControlMoved => format!(
            "the cache key is derived from the cache_control markers, and they moved ({} \
             before, {} now), so the conversation got a new key: send a session id \
             (x-claude-code-session-id, session_id) or keep marking the same system blocks",
            previous.map_or_else(String::new, |p| p
                .fingerprint
                .cache_control_marks()
                .join(",")),
            current.cache_control_marks().join(","),
        ),
        MissReason::AccountSwitched => format!(
            "served by account {account}{}: upstream prompt caches are per account (a \
             failover, or the sticky account was unavailable)",
            previous
                .filter(|p| p.account != account)
                .map_or_else(String::new, |p| format!(" after {}", p.account)),
        ),
        MissReason::BindingExpired => "the conversation has history but ferry held no binding \
            for it any more (its time to live ran out, it was evicted, or the memory store \
            restarted)"
            .to_owned(),
        MissReason::SystemChanged => "the system prompt differs from the previous turn's, so \
            nothing after the tools could be read from the cache (a date, a path or a counter \
            in the system prompt?)"
            .to_owned(),
        MissReason::ToolsChanged => match change {
            Some(PrefixChange::Tools {
                index,
                name,
                before,
                after,
            }) => format!(
                "the tool list changed at position {index}{} ({before} tools before, {after} \
                 now): tool definitions come before the messages, so the conversation was \
                 not read from the cache",
                name.as_deref()
                    .map_or_else(String::new, |n| format!(" (`{n}`)")),
            ),
            _ => "the tool list changed".to_owned(),
        },
        MissReason::MessageEdited => match change {
            Some(PrefixChange::Message {
                index,
                before,
                after,
            }) => format!(
                "message {index} differs from the previous turn's ({before} messages before, \
                 {after} now): the history was edited, compacted or rewound, and only the \
                 prefix before it could be cached"
            ),
            _ => "an earlier message was edited".to_owned(),
        },
        MissReason::PrefixChanged => "this request does not extend the conversation last \
            served under its key (history edited, or another conversation shares the key)"
            .to_owned(),
        MissReason::UpstreamEvicted => match idle_secs {
            Some(idle) if idle >= IDLE_EVICTION_SECS => format!(
                "nothing changed on ferry's side; idle {idle} s since the previous turn: the \
                 upstream most likely evicted the cached prefix (caches last about 5 to 10 \
                 minutes without use)"
            ),
            Some(idle) => format!(
                "nothing changed on ferry's side and the previous turn was {idle} s ago: the \
                 upstream dropped the prefix or served the request from another cache machine"
            ),
            None => {
                "nothing changed on ferry's side: the upstream dropped the cached prefix".to_owned()
            }
        },
    }
}
