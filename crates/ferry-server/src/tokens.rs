//! Local token counting for `POST /v1/messages/count_tokens`: never a call upstream.
//!
//! [`count_tokens`] encodes the request with OpenAI's `o200k_base` BPE (the tokenizer of
//! the GPT-4o/GPT-5 families, through `tiktoken-rs`; loaded once, on first use) and adds a
//! small fixed overhead per message, like OpenAI's own chat-format accounting. What counts:
//! - the system prompt (its text blocks);
//! - every message: text, `tool_use` (name and input JSON), `tool_result` content (text and
//!   nested blocks), text documents, server-tool blocks as JSON, unknown blocks as JSON;
//! - tool definitions: name, description and input-schema JSON (versioned Anthropic tools:
//!   their type and name).
//!
//! Fixed estimates, since the bytes are not decoded here:
//! - an image is [`IMAGE_TOKENS`] (OpenAI's cost of a 1024×1024 image at high detail);
//! - a base64 or URL document (PDF) is [`DOCUMENT_TOKENS`].
//!
//! Thinking blocks of earlier turns are not counted (Anthropic's `count_tokens` ignores them
//! too; upstream they travel as opaque encrypted reasoning). Each message adds
//! [`PER_MESSAGE_TOKENS`] and the request [`REPLY_PRIMING_TOKENS`]. If the BPE cannot be
//! loaded, the count falls back to one token per four bytes (and says so once, at `warn`).

use std::sync::OnceLock;

use ferry_apicompat::anthropic::{
    ContentBlock, DocumentSource, MessageContent, MessagesRequest, System, ToolResultContent,
};
use tiktoken_rs::CoreBPE;

/// Tokens charged for one image.
pub(crate) const IMAGE_TOKENS: u64 = 765;
/// Tokens charged for one base64 or URL document.
pub(crate) const DOCUMENT_TOKENS: u64 = 1_500;
/// Role and separator tokens of one message.
pub(crate) const PER_MESSAGE_TOKENS: u64 = 3;
/// Tokens that prime the reply.
pub(crate) const REPLY_PRIMING_TOKENS: u64 = 3;

fn bpe() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| match tiktoken_rs::o200k_base() {
        Ok(bpe) => Some(bpe),
        Err(e) => {
            tracing::warn!(target: "ferry::tokens", error = %e, "cannot load the o200k_base tokenizer; counting 4 bytes per token");
            None
        }
    })
    .as_ref()
}

/// Longest run without whitespace (a "word") encoded as one piece. BPE merging is quadratic
/// in a piece's length (a 96 KB word took seconds); longer runs are cut into pieces of this
/// size at character boundaries, which costs at most a token or two per cut.
pub(crate) const MAX_WORD_BYTES: usize = 128;
/// Text is encoded in segments of about this size, cut before whitespace (where the BPE's
/// own pre-tokenizer would cut too) or at a [`MAX_WORD_BYTES`] cut.
const SEGMENT_BYTES: usize = 8 * 1024;

/// Counts text with the BPE (or the byte estimate). Linear in the text's length: see
/// [`MAX_WORD_BYTES`].
fn text_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    match bpe() {
        Some(bpe) => segments(text)
            .map(|s| bpe.encode_ordinary(s).len() as u64)
            .sum(),
        None => (text.len() as u64).div_ceil(4),
    }
}

/// Cuts `text` into segments of at most about [`SEGMENT_BYTES`], none holding a run of more
/// than [`MAX_WORD_BYTES`] without whitespace or of whitespace.
fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut run = 0usize;
        let mut prev_space: Option<bool> = None;
        let mut cut = rest.len();
        for (i, c) in rest.char_indices() {
            let space = c.is_whitespace();
            if prev_space != Some(space) {
                run = 0;
                // Just before whitespace, where the pre-tokenizer cuts too: a good place
                // to end a full segment.
                if space && i >= SEGMENT_BYTES {
                    cut = i;
                    break;
                }
            }
            if run >= MAX_WORD_BYTES {
                cut = i;
                break;
            }
            run += c.len_utf8();
            prev_space = Some(space);
        }
        let (seg, tail) = rest.split_at(cut);
        rest = tail;
        Some(seg)
    })
}

/// Counts running at once: one per core but one (at least one), so counts never take every core from the
/// async workers (and `/health`); further requests wait their turn without a thread.
fn counting_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1))
    })
}

/// [`count_tokens`] on a blocking thread, a bounded number at once
/// (see [`counting_slots`]): counting a large body takes CPU time that must not stall the
/// async workers serving every other request.
pub(crate) async fn count_tokens_off_runtime(
    req: MessagesRequest,
) -> Result<u64, crate::error::Error> {
    let _slot = counting_slots()
        .acquire()
        .await
        .map_err(|_| crate::error::Error::Internal("token counting closed".to_owned()))?;
    tokio::task::spawn_blocking(move || count_tokens(&req))
        .await
        .map_err(|_| crate::error::Error::Internal("token counting failed".to_owned()))
}

/// The input tokens of `req` as the upstream model would see them (see the module docs).
pub(crate) fn count_tokens(req: &MessagesRequest) -> u64 {
    let mut counter = Counter::default();
    match &req.system {
        Some(System::Text(text)) => counter.text(text),
        Some(System::Blocks(blocks)) => counter.blocks(blocks),
        None => {}
    }
    if req.system.is_some() {
        counter.fixed += PER_MESSAGE_TOKENS;
    }
    for message in &req.messages {
        counter.fixed += PER_MESSAGE_TOKENS;
        match &message.content {
            MessageContent::Text(text) => counter.text(text),
            MessageContent::Blocks(blocks) => counter.blocks(blocks),
        }
    }
    for tool in req.tools.iter().flatten() {
        if tool.is_custom() {
            counter.text(&tool.name);
            if let Some(description) = &tool.description {
                counter.text(description);
            }
            if let Some(schema) = &tool.input_schema {
                counter.text(&schema.to_string());
            }
        } else {
            counter.text(tool.kind.as_deref().unwrap_or_default());
            counter.text(&tool.name);
        }
    }
    counter.total() + REPLY_PRIMING_TOKENS
}

/// Gathers text to encode in one pass, plus fixed estimates.
#[derive(Default)]
struct Counter {
    text: String,
    fixed: u64,
}

impl Counter {
    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            if !self.text.is_empty() {
                self.text.push('\n');
            }
            self.text.push_str(text);
        }
    }

    fn blocks(&mut self, blocks: &[ContentBlock]) {
        for block in blocks {
            self.block(block);
        }
    }

    fn block(&mut self, block: &ContentBlock) {
        match block {
            ContentBlock::Text(b) => self.text(&b.text),
            ContentBlock::Image(_) => self.fixed += IMAGE_TOKENS,
            ContentBlock::Document(b) => {
                if let Some(title) = &b.title {
                    self.text(title);
                }
                match &b.source {
                    DocumentSource::Text { data, .. } => self.text(data),
                    DocumentSource::Content { content } => match content {
                        serde_json::Value::String(s) => self.text(s),
                        other => self.text(&other.to_string()),
                    },
                    _ => self.fixed += DOCUMENT_TOKENS,
                }
            }
            ContentBlock::ToolUse(b) => {
                self.text(&b.name);
                self.text(&b.input.to_string());
            }
            ContentBlock::ToolResult(b) => match &b.content {
                Some(ToolResultContent::Text(text)) => self.text(text),
                Some(ToolResultContent::Blocks(blocks)) => self.blocks(blocks),
                None => {}
            },
            ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) => {}
            ContentBlock::ServerToolUse(b) => {
                self.text(&b.name);
                self.text(&b.input.to_string());
            }
            ContentBlock::WebSearchToolResult(b) => self.text(&b.content.to_string()),
            ContentBlock::Unknown(v) => self.text(&v.to_string()),
            // A block type added to the crate after this was written: count its JSON.
            other => self.text(&serde_json::to_string(other).unwrap_or_default()),
        }
    }

    fn total(&self) -> u64 {
        text_tokens(&self.text) + self.fixed
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn parse(v: &serde_json::Value) -> MessagesRequest {
        ferry_apicompat::anthropic::parse_request(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn segments_cover_the_text_and_bound_every_run() {
        let long_word = "é".repeat(1000);
        let text = format!("hello {long_word} world{}", " ".repeat(300));
        let segs: Vec<&str> = segments(&text).collect();
        assert_eq!(segs.concat(), text);
        for s in &segs {
            let longest = s
                .split(char::is_whitespace)
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(longest <= MAX_WORD_BYTES, "{longest}");
        }
        let prose = "the quick brown fox jumps over the lazy dog ".repeat(1000);
        // Cut only at word boundaries, the count is the same as in one piece.
        assert_eq!(
            text_tokens(&prose),
            bpe().unwrap().encode_ordinary(&prose).len() as u64
        );
    }

    #[test]
    fn plain_text_is_counted_with_o200k() {
        // "hello world" is two o200k tokens: "hello", " world".
        assert_eq!(text_tokens("hello world"), 2);
        let req = parse(&json!({
            "model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hello world"}],
        }));
        assert_eq!(
            count_tokens(&req),
            2 + PER_MESSAGE_TOKENS + REPLY_PRIMING_TOKENS
        );
    }

    #[test]
    fn string_and_block_content_count_the_same() {
        let a = parse(&json!({
            "model": "m", "messages": [{"role": "user", "content": "the same words"}],
        }));
        let b = parse(&json!({
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "the same words"}]}],
        }));
        assert_eq!(count_tokens(&a), count_tokens(&b));
    }

    #[test]
    fn system_tools_images_and_tool_turns_add_up() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let count = |patch: serde_json::Value| {
            let mut v = base.clone();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            count_tokens(&parse(&v))
        };
        let plain = count(json!({}));
        assert!(count(json!({"system": "You are terse."})) > plain);
        let with_tool = count(json!({"tools": [{
            "name": "get_weather", "description": "Current weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }]}));
        assert!(with_tool > plain + 10, "{with_tool} vs {plain}");
        let with_image = count(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]}]}));
        assert_eq!(with_image, plain + IMAGE_TOKENS);
        let tool_turns = count(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ]}));
        assert!(tool_turns > plain + 2 * PER_MESSAGE_TOKENS, "{tool_turns}");
    }

    #[test]
    fn earlier_thinking_is_not_counted() {
        let with = parse(&json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "a long chain of thought", "signature": "sig"},
                {"type": "text", "text": "hello"},
            ]},
        ]}));
        let without = parse(&json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        ]}));
        assert_eq!(count_tokens(&with), count_tokens(&without));
    }
}
