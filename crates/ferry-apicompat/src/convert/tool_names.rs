//! Reversible tool-name shortening.
//!
//! The Responses API accepts function names of 1 to 64 characters from `[A-Za-z0-9_-]`;
//! Anthropic clients (MCP tools especially) use longer names and other characters. A name
//! that is already valid is sent unchanged. Any other name is rewritten deterministically:
//! characters outside the set become `_`, a name longer than 53 characters keeps its first
//! 20 and last 32 characters joined by `_`, and `_` plus the first 10 hex digits of the
//! SHA-256 of the original name is appended. The same name always gives the same upstream
//! name, on every turn and in every process, so conversation history stays consistent.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::anthropic::{self, ContentBlock, MessageContent};

/// Longest function name the Responses API accepts.
pub(crate) const MAX_NAME_LEN: usize = 64;
/// Hex digits of the hash suffix, unless a collision forces more.
const HASH_LEN: usize = 10;
/// Characters kept from the start of an over-long name (the rest of the budget keeps its end).
const HEAD_LEN: usize = 20;

/// Maps client tool names to names the upstream accepts, and back.
///
/// Build it from the request with [`ToolNames::from_request`], use
/// [`to_upstream`](ToolNames::to_upstream) on the way up (tools, `tool_use` history,
/// `tool_choice`) and [`to_client`](ToolNames::to_client) on the way down (function calls
/// in the response), so the client always sees its own names.
///
/// It maps call ids the same way: a `tool_use` id (and the `tool_use_id` of its result)
/// that the Responses API would reject as a `call_id` is sent as a short deterministic id
/// ([`call_id_to_upstream`](ToolNames::call_id_to_upstream)), and an upstream call id
/// that stands for one of the request's ids is given back as the client's id
/// ([`call_id_to_client`](ToolNames::call_id_to_client)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames {
    upstream: BTreeMap<String, String>,
    client: BTreeMap<String, String>,
    /// Upstream call id → the client's id, for the request's rewritten ids.
    client_call_ids: BTreeMap<String, String>,
}

impl ToolNames {
    /// Collects every tool name of a request: tool definitions, `tool_use` blocks in the
    /// history and the `tool_choice` name.
    pub fn from_request(req: &anthropic::MessagesRequest) -> Self {
        let mut names: Vec<&str> = Vec::new();
        for tool in req.tools.iter().flatten() {
            names.push(&tool.name);
        }
        for message in &req.messages {
            if let MessageContent::Blocks(blocks) = &message.content {
                for block in blocks {
                    if let ContentBlock::ToolUse(tool_use) = block {
                        names.push(&tool_use.name);
                    }
                }
            }
        }
        if let Some(anthropic::ToolChoice::Tool { name, .. }) = &req.tool_choice {
            names.push(name);
        }
        let mut out = Self::from_names(names);
        for message in &req.messages {
            if let MessageContent::Blocks(blocks) = &message.content {
                for block in blocks {
                    let id = match block {
                        ContentBlock::ToolUse(tool_use) => &tool_use.id,
                        ContentBlock::ToolResult(result) => &result.tool_use_id,
                        _ => continue,
                    };
                    if !is_valid_call_id(id) {
                        out.client_call_ids.insert(shorten_call_id(id), id.clone());
                    }
                }
            }
        }
        out
    }

    /// The `call_id` to send upstream for a client's `tool_use` id.
    ///
    /// A valid id (1 to 64 characters from `[A-Za-z0-9_-]`) comes back unchanged. Any other
    /// becomes its first 24 characters with the others replaced by `_`, then `_` and the
    /// first 32 hex digits of its SHA-256: a pure function of the id, so every turn (and
    /// every replica) sends the same id with no state kept.
    pub fn call_id_to_upstream<'a>(&self, id: &'a str) -> Cow<'a, str> {
        if is_valid_call_id(id) {
            Cow::Borrowed(id)
        } else {
            Cow::Owned(shorten_call_id(id))
        }
    }

    /// The client's id for an upstream call id; ids that stand for none of the request's
    /// rewritten ids come back unchanged.
    pub fn call_id_to_client<'a>(&self, upstream: &'a str) -> Cow<'a, str> {
        match self.client_call_ids.get(upstream) {
            Some(original) => Cow::Owned(original.clone()),
            None => Cow::Borrowed(upstream),
        }
    }

    /// Builds the mapping for a set of client tool names.
    ///
    /// If a rewritten name would collide with another name of the set, the hash suffix of
    /// the rewritten names is lengthened until no two names collide.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let all: BTreeSet<&str> = names.into_iter().collect();
        let valid: BTreeSet<&str> = all.iter().copied().filter(|n| is_valid(n)).collect();
        let invalid: Vec<&str> = all.iter().copied().filter(|n| !is_valid(n)).collect();
        let mut out = Self::default();
        if invalid.is_empty() {
            return out;
        }
        let mut hash_len = HASH_LEN;
        loop {
            let rewritten: Vec<String> = invalid.iter().map(|n| shorten(n, hash_len)).collect();
            let unique: BTreeSet<&str> = rewritten.iter().map(String::as_str).collect();
            let clash = unique.len() != rewritten.len()
                || rewritten.iter().any(|r| valid.contains(r.as_str()));
            // A SHA-256 has 64 hex digits; past that, clashes are impossible in practice and
            // the loop ends with whatever it has.
            if !clash || hash_len >= 40 {
                for (original, upstream) in invalid.iter().zip(rewritten) {
                    out.client.insert(upstream.clone(), (*original).to_owned());
                    out.upstream.insert((*original).to_owned(), upstream);
                }
                return out;
            }
            hash_len += 6;
        }
    }

    /// The name to send upstream for a client name.
    ///
    /// A valid name comes back unchanged; an invalid one not seen by the constructor is
    /// rewritten with the default scheme.
    pub fn to_upstream<'a>(&self, original: &'a str) -> Cow<'a, str> {
        match self.upstream.get(original) {
            Some(upstream) => Cow::Owned(upstream.clone()),
            None if is_valid(original) => Cow::Borrowed(original),
            None => Cow::Owned(shorten(original, HASH_LEN)),
        }
    }

    /// The client's name for a name the upstream used; unknown names come back unchanged.
    pub fn to_client<'a>(&self, upstream: &'a str) -> Cow<'a, str> {
        match self.client.get(upstream) {
            Some(original) => Cow::Owned(original.clone()),
            None => Cow::Borrowed(upstream),
        }
    }

    /// Whether no name needed rewriting.
    pub fn is_empty(&self) -> bool {
        self.upstream.is_empty()
    }

    /// The rewritten names, as `(client, upstream)` pairs in client-name order.
    pub fn renamed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.upstream.iter().map(|(c, u)| (c.as_str(), u.as_str()))
    }
}

/// Whether the Responses API accepts `name` as a function name.
pub(crate) fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Characters of a rewritten call id kept from the original.
const CALL_ID_HEAD: usize = 24;
/// Hex digits of a rewritten call id's hash.
const CALL_ID_HASH: usize = 32;

/// Whether the Responses API accepts `id` as a `call_id` (the function-name rule: its
/// limit is 64 characters).
fn is_valid_call_id(id: &str) -> bool {
    is_valid(id)
}

/// `id` as a valid call id: see [`ToolNames::call_id_to_upstream`].
fn shorten_call_id(id: &str) -> String {
    let head: String = id
        .chars()
        .take(CALL_ID_HEAD)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = Sha256::digest(id.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(CALL_ID_HASH);
    format!("{head}_{hex}")
}

/// Rewrites `name` into the accepted form with a `hash_len`-digit hash suffix.
fn shorten(name: &str, hash_len: usize) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let budget = MAX_NAME_LEN - 1 - hash_len;
    let body = if clean.len() <= budget {
        clean
    } else {
        let head = HEAD_LEN.min(budget / 2);
        let tail = budget - head - 1;
        // `clean` is ASCII, so byte offsets are character offsets.
        format!("{}_{}", &clean[..head], &clean[clean.len() - tail..])
    };
    let digest = Sha256::digest(name.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(hash_len);
    format!("{body}_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_fill_the_limit() {
        let long = "a".repeat(200);
        assert_eq!(shorten(&long, HASH_LEN).len(), MAX_NAME_LEN);
    }
}
