//! Prompt-cache keys and upstream session ids: pure functions of the request.

use std::fmt;

use ferry_apicompat::anthropic;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::family::ModelFamily;
use crate::store::hex;

/// Header a client may set to name its session explicitly (Codex-style clients).
pub const SESSION_ID_HEADER: &str = "session_id";
/// Header a client may set to name its conversation explicitly.
pub const CONVERSATION_ID_HEADER: &str = "conversation_id";
/// Header Claude Code sets to its session id (the same id as in `metadata.user_id`).
pub const CLAUDE_CODE_SESSION_HEADER: &str = "x-claude-code-session-id";

/// Prefix of keys derived from the Claude Code session.
const METADATA_PREFIX: &str = "anthropic-metadata-";
/// Prefix of keys derived from `cache_control` anchors.
const CACHE_PREFIX: &str = "anthropic-cache-";
/// Prefix of keys derived from the digest chain.
const DIGEST_PREFIX: &str = "anthropic-digest-";
/// Prefix of the upstream form of a key the client named ([`upstream_cache_key`]).
const EXPLICIT_PREFIX: &str = "ferry-";

/// The session-related request headers, as the server read them (values not trimmed
/// yet; blank values count as absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientHeaders<'a> {
    /// [`SESSION_ID_HEADER`].
    pub session_id: Option<&'a str>,
    /// [`CONVERSATION_ID_HEADER`].
    pub conversation_id: Option<&'a str>,
    /// [`CLAUDE_CODE_SESSION_HEADER`].
    pub claude_code_session_id: Option<&'a str>,
}

/// Where a prompt cache key came from (the `source` label of metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySource {
    /// The client named it: the `session_id` or `conversation_id` header, or a
    /// `prompt_cache_key` in the body. Used as is.
    Explicit,
    /// The Claude Code session (`metadata.user_id`, or the `x-claude-code-session-id`
    /// header when the metadata carries none).
    Metadata,
    /// The text of the blocks marked with `cache_control`.
    CacheControl,
    /// The digest chain of the conversation: the key of the longest earlier conversation
    /// this one extends, or a new key.
    Digest,
}

impl KeySource {
    /// The label value: `explicit`, `metadata`, `cache_control` or `digest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::Metadata => "metadata",
            Self::CacheControl => "cache_control",
            Self::Digest => "digest",
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether ferry derives a prompt cache key for requests to this upstream model (an
/// explicit client key is always honoured).
///
/// True for the families where [`ModelFamily::is_reasoning_gpt`] holds: every GPT
/// generation from 5 on, by rule (`gpt-5`, `gpt-5.x`, `gpt-6-*`, `openai/gpt-7.1-codex`), and
/// every Codex model. So `gpt-4o`, `o3` and `claude-*` get no derived key.
pub fn should_auto_inject(model: &str) -> bool {
    ModelFamily::of(model).is_reasoning_gpt()
}

/// The upstream `session_id` (and `conversation_id`) for a cache key, isolated per client
/// key: two client keys sending the same cache key never share an upstream session.
///
/// `None` for a blank key. The derivation follows the reference with SHA-256 in place of
/// xxHash64 for the first step: `isolated = hex(sha256("k<client_key_id>:" + key))[..16]`,
/// then the first 16 bytes of `sha256(isolated)` with the version nibble set to 4 and the
/// RFC 4122 variant bits, so the result is a well-formed UUIDv4.
pub fn session_uuid(client_key_id: &str, cache_key: &str) -> Option<Uuid> {
    let key = cache_key.trim();
    if key.is_empty() {
        return None;
    }
    let isolated = hash16(&format!("k{client_key_id}:{key}"));
    let digest = Sha256::digest(isolated.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Some(Uuid::from_bytes(bytes))
}

/// The parts of a Claude Code `metadata.user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaudeCodeUser {
    /// The device id (64 hex characters in both known formats).
    pub device_id: String,
    /// The account UUID; may be empty.
    pub account_uuid: String,
    /// The session UUID.
    pub session_id: String,
}

/// Parses a Claude Code `metadata.user_id`: the JSON document
/// `{"device_id":…,"account_uuid":…,"session_id":…}` (Claude Code 2.1.78 and later; both
/// `device_id` and `session_id` must be non-empty) or the older
/// `user_<64 hex>_account_<uuid or empty>_session_<36 chars of hex and dashes>` string.
pub fn parse_claude_code_user(user_id: &str) -> Option<ClaudeCodeUser> {
    let raw = user_id.trim();
    if raw.starts_with('{') {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(default)]
            device_id: String,
            #[serde(default)]
            account_uuid: String,
            #[serde(default)]
            session_id: String,
        }
        let doc: Doc = serde_json::from_str(raw).ok()?;
        if doc.device_id.is_empty() || doc.session_id.is_empty() {
            return None;
        }
        return Some(ClaudeCodeUser {
            device_id: doc.device_id,
            account_uuid: doc.account_uuid,
            session_id: doc.session_id,
        });
    }
    let rest = raw.strip_prefix("user_")?;
    let device_id = rest.get(..64)?;
    let rest = rest.get(64..)?.strip_prefix("_account_")?;
    let (account_uuid, session_id) = rest.split_once("_session_")?;
    let hex_or_dash = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !device_id.bytes().all(|b| b.is_ascii_hexdigit())
        || !hex_or_dash(account_uuid)
        || session_id.len() != 36
        || !hex_or_dash(session_id)
    {
        return None;
    }
    Some(ClaudeCodeUser {
        device_id: device_id.to_owned(),
        account_uuid: account_uuid.to_owned(),
        session_id: session_id.to_owned(),
    })
}

/// The key a client named: the `session_id` header, then the `conversation_id` header,
/// then a string `prompt_cache_key` in the request body (trimmed; blank means absent).
pub fn explicit_key(
    req: &anthropic::MessagesRequest,
    headers: &ClientHeaders<'_>,
) -> Option<String> {
    let body_key = req.extra.get("prompt_cache_key").and_then(Value::as_str);
    [headers.session_id, headers.conversation_id, body_key]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The key of the Claude Code session: `anthropic-metadata-` + the first 16 hex digits of
/// `sha256("anthropic-metadata|<device>|<account>|<session>")`.
///
/// The session comes from `metadata.user_id`; when that carries none, from the
/// `x-claude-code-session-id` header with an empty device and account.
pub fn metadata_key(
    req: &anthropic::MessagesRequest,
    headers: &ClientHeaders<'_>,
) -> Option<String> {
    let user = req
        .metadata
        .as_ref()
        .and_then(|m| m.user_id.as_deref())
        .and_then(parse_claude_code_user);
    let (device, account, session) = match &user {
        Some(u) => (
            u.device_id.trim(),
            u.account_uuid.trim(),
            u.session_id.trim(),
        ),
        None => (
            "",
            "",
            headers.claude_code_session_id.map(str::trim).unwrap_or(""),
        ),
    };
    if session.is_empty() {
        return None;
    }
    let seed = format!("anthropic-metadata|{device}|{account}|{session}");
    Some(format!("{METADATA_PREFIX}{}", hash16(&seed)))
}

/// The key of a conversation that uses `cache_control` (`ephemeral`): `anthropic-cache-`
/// + 32 hex digits of `sha256("anthropic-cache:" + parts joined by "\n")`.
///
/// The parts, in order: each marked system text block as `system:<text>`; then, when any
/// block of any message is marked, the first user message's first non-blank text as
/// `first_user:<text>`. Only what stays put over a conversation counts: the documented
/// multi-turn pattern (pydantic-ai's `anthropic_cache_messages`, Claude Code) moves the
/// message breakpoint to the newest message every turn, so the marked message text
/// itself changes each turn while the first user message does not. Blank texts never
/// count. `None` when nothing is marked.
pub fn cache_control_key(req: &anthropic::MessagesRequest) -> Option<String> {
    fn ephemeral(c: Option<&anthropic::CacheControl>) -> bool {
        c.is_some_and(|c| c.kind == "ephemeral")
    }
    fn block_marked(block: &anthropic::ContentBlock) -> bool {
        ephemeral(block_cache_control(block))
    }
    let mut parts = Vec::new();
    if let Some(anthropic::System::Blocks(blocks)) = &req.system {
        parts.extend(blocks.iter().filter_map(|b| match b {
            anthropic::ContentBlock::Text(t)
                if ephemeral(t.cache_control.as_ref()) && !t.text.trim().is_empty() =>
            {
                Some(format!("system:{}", t.text))
            }
            _ => None,
        }));
    }
    let messages_marked = req.messages.iter().any(|m| match &m.content {
        anthropic::MessageContent::Blocks(blocks) => blocks.iter().any(block_marked),
        anthropic::MessageContent::Text(_) => false,
    });
    if messages_marked {
        let first_text = req
            .messages
            .iter()
            .find(|m| m.role == anthropic::Role::User)
            .and_then(|m| match &m.content {
                anthropic::MessageContent::Text(t) => Some(t.as_str()),
                anthropic::MessageContent::Blocks(blocks) => blocks.iter().find_map(|b| match b {
                    anthropic::ContentBlock::Text(t) => Some(t.text.as_str()),
                    _ => None,
                }),
            })
            .filter(|t| !t.trim().is_empty());
        parts.extend(first_text.map(|t| format!("first_user:{t}")));
    }
    if parts.is_empty() {
        return None;
    }
    let digest = Sha256::digest(format!("anthropic-cache:{}", parts.join("\n")).as_bytes());
    Some(format!("{CACHE_PREFIX}{}", hex(&digest[..16])))
}

/// The `cache_control` of a content block, for the blocks that can carry one.
pub(crate) fn block_cache_control(
    block: &anthropic::ContentBlock,
) -> Option<&anthropic::CacheControl> {
    use anthropic::ContentBlock as B;
    match block {
        B::Text(b) => b.cache_control.as_ref(),
        B::Image(b) => b.cache_control.as_ref(),
        B::Document(b) => b.cache_control.as_ref(),
        B::ToolUse(b) => b.cache_control.as_ref(),
        B::ToolResult(b) => b.cache_control.as_ref(),
        _ => None,
    }
}

/// The `prompt_cache_key` sent upstream for a session's cache key, isolated per client key
/// as [`session_uuid`] is: two client keys sending the same conversation, or the same
/// `session_id` header, never share an upstream prompt cache.
///
/// A derived key keeps its prefix (`anthropic-metadata-`, `anthropic-cache-`,
/// `anthropic-digest-`); an explicit one gets `ferry-`. Then 32 hex digits of
/// `sha256("prompt-cache|k<client_key_id>:" + key)`. Deterministic, so every replica and
/// every turn sends the same value.
pub fn upstream_cache_key(client_key_id: &str, cache_key: &str) -> String {
    let key = cache_key.trim();
    let prefix = [METADATA_PREFIX, CACHE_PREFIX, DIGEST_PREFIX]
        .into_iter()
        .find(|p| key.starts_with(p))
        .unwrap_or(EXPLICIT_PREFIX);
    let digest = Sha256::digest(format!("prompt-cache|k{client_key_id}:{key}").as_bytes());
    format!("{prefix}{}", hex(&digest[..16]))
}

/// The key that names the conversation without looking at stored state, in the reference
/// order: [`explicit_key`], [`metadata_key`], [`cache_control_key`]. `None` means the
/// digest chain decides ([`crate::Sessions::resolve_cache_key`]).
pub fn identity_key(
    req: &anthropic::MessagesRequest,
    headers: &ClientHeaders<'_>,
) -> Option<(String, KeySource)> {
    if let Some(k) = explicit_key(req, headers) {
        return Some((k, KeySource::Explicit));
    }
    if let Some(k) = metadata_key(req, headers) {
        return Some((k, KeySource::Metadata));
    }
    cache_control_key(req).map(|k| (k, KeySource::CacheControl))
}

/// The role of one element of a [`DigestChain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PartKind {
    /// The system prompt (`s:`).
    System,
    /// A user (or mid-conversation system) message (`u:`).
    User,
    /// An assistant message (`a:`).
    Assistant,
}

impl PartKind {
    fn tag(self) -> &'static str {
        match self {
            Self::System => "s",
            Self::User => "u",
            Self::Assistant => "a",
        }
    }
}

/// One element of a [`DigestChain`]: a role and the hash of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainPart {
    /// Whose content it is.
    pub kind: PartKind,
    hash: [u8; 8],
}

impl ChainPart {
    /// The first 4 bytes of the content hash (for the prefix fingerprint, which only
    /// compares a conversation with its own earlier turns).
    pub(crate) fn short_hash(&self) -> u32 {
        u32::from_be_bytes([self.hash[0], self.hash[1], self.hash[2], self.hash[3]])
    }
}

/// Whether a message is a part of the [`DigestChain`]: empty messages are not.
pub(crate) fn in_chain(content: &anthropic::MessageContent) -> bool {
    match content {
        anthropic::MessageContent::Text(t) => !t.is_empty(),
        anthropic::MessageContent::Blocks(b) => !b.is_empty(),
    }
}

/// The conversation as a chain of content digests: `s:<system>` (when there is a
/// system prompt), then `u:<content>` or `a:<content>` for each non-empty message.
///
/// A later turn of the same conversation has an earlier turn's chain as a prefix, which
/// is how ferry finds the key, the upstream response and the account of the earlier turn.
///
/// Hashing: each part is the first 8 bytes of SHA-256 over the content serialised to JSON
/// with `serde_json`, after two normalisations: a string content is hashed as the one text
/// block it stands for, and `cache_control` is removed from every block (Claude Code moves
/// its cache breakpoints to the newest message every turn; keeping them would change the
/// hash of old messages). Serialising our typed content is canonical: struct fields come
/// out in declaration order, absent optional fields are skipped, and opaque JSON objects
/// are key-sorted (`serde_json::Map` is a `BTreeMap`). So the same content always gives
/// the same hash, on every replica running the same ferry version.
///
/// Each prefix of the chain has an id, a hash over the ids before it
/// (`sha256(id[i-1] ‖ tag ‖ part)`), computed in one pass: stored bindings name a prefix
/// by its length and id, and long conversations cost no more than linear work.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestChain {
    parts: Vec<ChainPart>,
    /// `prefixes[i]` is the id of `parts[..=i]`.
    prefixes: Vec<[u8; 16]>,
}

impl fmt::Debug for DigestChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestChain({self})")
    }
}

/// The reference's textual form: `s:…-u:…-a:…`.
impl fmt::Display for DigestChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{}:{}", p.kind.tag(), hex(&p.hash))?;
        }
        Ok(())
    }
}

impl DigestChain {
    /// The chain of a request (system prompt and messages; tools and settings are not
    /// part of it).
    pub fn from_request(req: &anthropic::MessagesRequest) -> Self {
        let mut chain = Self {
            parts: Vec::new(),
            prefixes: Vec::new(),
        };
        if let Some(system) = &req.system {
            let value = match system {
                anthropic::System::Text(t) if !t.trim().is_empty() => Some(text_blocks(t)),
                anthropic::System::Blocks(b) if !b.is_empty() => Some(blocks_value(b)),
                _ => None,
            };
            if let Some(v) = value {
                chain.push(PartKind::System, &v);
            }
        }
        for message in &req.messages {
            if !in_chain(&message.content) {
                continue;
            }
            let value = match &message.content {
                anthropic::MessageContent::Text(t) => text_blocks(t),
                anthropic::MessageContent::Blocks(b) => blocks_value(b),
            };
            let kind = match message.role {
                anthropic::Role::Assistant => PartKind::Assistant,
                _ => PartKind::User,
            };
            chain.push(kind, &value);
        }
        chain
    }

    fn push(&mut self, kind: PartKind, content: &Value) {
        // Serialising a Value cannot fail (its keys are strings).
        let bytes = serde_json::to_vec(content).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&digest[..8]);
        let mut h = Sha256::new();
        if let Some(prev) = self.prefixes.last() {
            h.update(prev);
        }
        h.update(kind.tag().as_bytes());
        h.update(hash);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize()[..16]);
        self.parts.push(ChainPart { kind, hash });
        self.prefixes.push(id);
    }

    /// Number of parts.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether the chain has no part (no system prompt and no non-empty message).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts, oldest first.
    pub fn parts(&self) -> &[ChainPart] {
        &self.parts
    }

    /// Whether the conversation has an assistant message (so it is not a first turn).
    pub fn has_assistant(&self) -> bool {
        self.parts.iter().any(|p| p.kind == PartKind::Assistant)
    }

    /// The id (32 hex digits) of the prefix made of the first `len` parts; `None` for
    /// `len == 0` or past the end.
    pub fn prefix_id(&self, len: usize) -> Option<String> {
        len.checked_sub(1)
            .and_then(|i| self.prefixes.get(i))
            .map(|id| hex(id))
    }

    /// The id of the whole chain (`None` when empty).
    pub fn id(&self) -> Option<String> {
        self.prefix_id(self.len())
    }

    /// Whether this chain starts with the prefix (`len`, `id`) of an earlier chain.
    pub fn extends(&self, len: usize, id: &str) -> bool {
        self.prefix_id(len).is_some_and(|p| p == id)
    }

    /// Whether this chain is the next turn of the conversation an upstream response
    /// answered: it is the chain (`len`, `id`) of the request that got the response, plus
    /// exactly one assistant message (the response, as the client replays it) and one more
    /// message (the new turn).
    ///
    /// Only then does "the latest turn" ([`crate::trim_to_latest_turn`]) hold everything
    /// the upstream has not seen: with more messages appended (a turn served without a
    /// binding, a mid-conversation system message) trimming would lose some.
    pub fn continues(&self, len: usize, id: &str) -> bool {
        self.len() == len + 2
            && self.extends(len, id)
            && self.parts[len].kind == PartKind::Assistant
            && self.parts[len + 1].kind != PartKind::Assistant
    }

    /// The key a conversation gets when no earlier binding names one:
    /// `anthropic-digest-` + the first 16 hex digits of the chain's id.
    pub fn fresh_key(&self) -> Option<String> {
        self.prefixes
            .last()
            .map(|id| format!("{DIGEST_PREFIX}{}", hex(&id[..8])))
    }
}

/// `text` as the single text block it stands for.
fn text_blocks(text: &str) -> Value {
    serde_json::json!([{ "type": "text", "text": text }])
}

/// The blocks as JSON, without `cache_control` (also inside tool results).
fn blocks_value(blocks: &[anthropic::ContentBlock]) -> Value {
    let mut value = serde_json::to_value(blocks).unwrap_or(Value::Null);
    if let Value::Array(items) = &mut value {
        for item in items {
            strip_cache_control(item);
        }
    }
    value
}

fn strip_cache_control(block: &mut Value) {
    if let Value::Object(fields) = block {
        fields.remove("cache_control");
        let is_tool_result = fields.get("type").and_then(Value::as_str) == Some("tool_result");
        if is_tool_result && let Some(Value::Array(inner)) = fields.get_mut("content") {
            for b in inner {
                strip_cache_control(b);
            }
        }
    }
}

/// The first 8 bytes of SHA-256 of the trimmed input, as 16 lowercase hex digits (the
/// reference's `hashSensitiveValueForLog`); empty for blank input.
pub(crate) fn hash16(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    hex(&Sha256::digest(s.as_bytes())[..8])
}
