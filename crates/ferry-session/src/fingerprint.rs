//! The prefix fingerprint of a request: what the upstream's cached prefix is made of
//! (tool list, system prompt, messages), in digests small enough to keep per session, and
//! where the request put its `cache_control` markers.
//!
//! Built once per request from the request and the [`DigestChain`] that was computed for
//! the cache key anyway: the system prompt and the messages reuse the chain's hashes, so
//! only the tool list is hashed here (each tool's JSON written straight into SHA-256, no
//! copy of the request).

use std::fmt::Write as _;
use std::io;

use ferry_apicompat::anthropic;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{self, DigestChain, PartKind};

/// Most messages a fingerprint keeps (a change past them is seen, not located).
pub const MAX_FINGERPRINT_MESSAGES: usize = 2048;
/// Most tools a fingerprint keeps by name.
const MAX_TOOLS: usize = 256;
/// Longest tool name kept (in bytes).
const MAX_TOOL_NAME: usize = 64;
/// Most `cache_control` markers kept (Anthropic allows 4 per request).
const MAX_MARKS: usize = 8;

/// What a request's cached prefix is made of, as short digests: the tools (name and a
/// digest of each, in order), the system prompt, each message, and the positions of the
/// `cache_control` markers. Compare two turns of a session with [`compare`].
///
/// Digests are 4 bytes: they only tell a turn from the turn before it in the same session,
/// where a collision (one in four billion) would at worst hide which part changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixFingerprint {
    /// Digest of the system prompt (`cache_control` left out); 0 when there is none.
    #[serde(rename = "s")]
    system: u32,
    /// Digest of each tool (`cache_control` left out), in order.
    #[serde(rename = "t", with = "packed")]
    tools: Vec<u32>,
    /// Each tool's name (at most [`MAX_TOOL_NAME`] bytes), in order.
    #[serde(rename = "tn", default)]
    tool_names: Vec<String>,
    /// Number of tools in the request (also past [`MAX_TOOLS`]).
    #[serde(rename = "tc", default)]
    tool_count: usize,
    /// Digest of each message, in request order (0 for an empty message), at most
    /// [`MAX_FINGERPRINT_MESSAGES`].
    #[serde(rename = "m", with = "packed")]
    messages: Vec<u32>,
    /// Number of messages in the request (also past the cap).
    #[serde(rename = "mc", default)]
    message_count: usize,
    /// Where the `cache_control` markers are: `system.1`, `tools.23`, `messages.5.0`.
    #[serde(rename = "cc", default)]
    marks: Vec<String>,
}

/// The first part of the prefix where a turn differs from the session's previous turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrefixChange {
    /// The tool list: a tool was added, removed, reordered, or its definition changed.
    Tools {
        /// The first position where the lists differ.
        index: usize,
        /// The tool's name there in this turn (or, when the list got shorter, in the
        /// previous one).
        name: Option<String>,
        /// Tools in the previous turn.
        before: usize,
        /// Tools in this turn.
        after: usize,
    },
    /// The system prompt.
    System,
    /// A message that was sent before: edited, replaced (compaction), or removed.
    Message {
        /// Its index in `messages`.
        index: usize,
        /// Messages in the previous turn.
        before: usize,
        /// Messages in this turn.
        after: usize,
    },
}

impl PrefixFingerprint {
    /// The fingerprint of `req`, whose digest chain is `chain` ([`DigestChain::from_request`]
    /// of the same request, as [`crate::ResolvedKey::chain`] holds it).
    pub fn of(req: &anthropic::MessagesRequest, chain: &DigestChain) -> Self {
        let parts = chain.parts();
        let (system, mut rest) = match parts.first() {
            Some(p) if p.kind == PartKind::System => (p.short_hash().max(1), &parts[1..]),
            _ => (0, parts),
        };
        let mut marks = Vec::new();
        let mut mark = |m: std::fmt::Arguments<'_>| {
            if marks.len() < MAX_MARKS {
                let mut s = String::new();
                let _ = s.write_fmt(m);
                marks.push(s);
            }
        };
        if let Some(anthropic::System::Blocks(blocks)) = &req.system {
            for (i, b) in blocks.iter().enumerate() {
                if keys::block_cache_control(b).is_some() {
                    mark(format_args!("system.{i}"));
                }
            }
        }
        let tools = req.tools.as_deref().unwrap_or_default();
        let mut tool_digests = Vec::with_capacity(tools.len().min(MAX_TOOLS));
        let mut tool_names = Vec::with_capacity(tools.len().min(MAX_TOOLS));
        for (i, tool) in tools.iter().enumerate() {
            if tool.cache_control.is_some() {
                mark(format_args!("tools.{i}"));
            }
            if i < MAX_TOOLS {
                tool_digests.push(tool_digest(tool));
                tool_names.push(truncated(&tool.name, MAX_TOOL_NAME).to_owned());
            }
        }
        let mut messages = Vec::with_capacity(req.messages.len().min(MAX_FINGERPRINT_MESSAGES));
        for (i, m) in req.messages.iter().enumerate() {
            if let anthropic::MessageContent::Blocks(blocks) = &m.content {
                for (j, b) in blocks.iter().enumerate() {
                    if keys::block_cache_control(b).is_some() {
                        mark(format_args!("messages.{i}.{j}"));
                    }
                }
            }
            if i >= MAX_FINGERPRINT_MESSAGES {
                continue;
            }
            let digest = if keys::in_chain(&m.content) {
                match rest.split_first() {
                    Some((p, tail)) => {
                        rest = tail;
                        // A role change is an edit too: fold the role into the digest.
                        let role = u32::from(p.kind == PartKind::Assistant);
                        (p.short_hash() ^ role).max(1)
                    }
                    None => 0,
                }
            } else {
                0
            };
            messages.push(digest);
        }
        Self {
            system,
            tools: tool_digests,
            tool_names,
            tool_count: tools.len(),
            messages,
            message_count: req.messages.len(),
            marks,
        }
    }

    /// Number of tools.
    pub fn tool_count(&self) -> usize {
        self.tool_count
    }

    /// Number of messages.
    pub fn message_count(&self) -> usize {
        self.message_count
    }

    /// Whether there is a system prompt.
    pub fn has_system(&self) -> bool {
        self.system != 0
    }

    /// Where the `cache_control` markers are (`system.1`, `tools.23`, `messages.5.0`; at
    /// most 8).
    pub fn cache_control_marks(&self) -> &[String] {
        &self.marks
    }

    /// How many leading messages the two fingerprints share.
    pub fn common_messages(&self, other: &Self) -> usize {
        self.messages
            .iter()
            .zip(&other.messages)
            .take_while(|(a, b)| a == b)
            .count()
    }
}

/// The first part of the prefix where `cur` differs from `prev` (the session's previous
/// turn), in prompt order: tools, system prompt, messages. `None` when `cur` extends `prev`:
/// the same tools and system prompt, and every message of `prev` unchanged at the start of
/// `cur`. Moved `cache_control` markers are not a change here (the Responses API caches
/// prefixes on its own, so ferry sends no marker upstream); compare
/// [`PrefixFingerprint::cache_control_marks`] for those.
pub fn compare(prev: &PrefixFingerprint, cur: &PrefixFingerprint) -> Option<PrefixChange> {
    if prev.tools != cur.tools || prev.tool_count != cur.tool_count {
        let index = prev
            .tools
            .iter()
            .zip(&cur.tools)
            .take_while(|(a, b)| a == b)
            .count();
        let name = cur
            .tool_names
            .get(index)
            .or_else(|| prev.tool_names.get(index))
            .cloned();
        return Some(PrefixChange::Tools {
            index,
            name,
            before: prev.tool_count,
            after: cur.tool_count,
        });
    }
    if prev.system != cur.system {
        return Some(PrefixChange::System);
    }
    let common = prev.common_messages(cur);
    let compared = prev.messages.len().min(cur.messages.len());
    let shortened = cur.message_count < prev.message_count;
    if common < compared || shortened {
        return Some(PrefixChange::Message {
            index: common,
            before: prev.message_count,
            after: cur.message_count,
        });
    }
    None
}

/// SHA-256 of one tool's definition without its `cache_control`, cut to 4 bytes.
fn tool_digest(tool: &anthropic::Tool) -> u32 {
    let mut h = Sha256::new();
    for text in [
        tool.kind.as_deref().unwrap_or(""),
        &tool.name,
        tool.description.as_deref().unwrap_or(""),
    ] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    // Writing into a hasher cannot fail, and JSON values serialise (string keys).
    if let Some(schema) = &tool.input_schema {
        let _ = serde_json::to_writer(HashWriter(&mut h), schema);
    }
    h.update([0]);
    if !tool.extra.is_empty() {
        let _ = serde_json::to_writer(HashWriter(&mut h), &tool.extra);
    }
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]).max(1)
}

/// An `io::Write` that feeds SHA-256, so JSON is hashed without being buffered.
struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A list of 4-byte digests stored as one hex string (8 digits each): a 1,000-message
/// conversation is 8 KB, not an 11 KB JSON array.
mod packed {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(v.len() * 8);
        for d in v {
            let _ = write!(out, "{d:08x}");
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 8 != 0 || !s.is_ascii() {
            return Err(serde::de::Error::custom("packed digests: bad length"));
        }
        (0..s.len())
            .step_by(8)
            .map(|i| u32::from_str_radix(&s[i..i + 8], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}
