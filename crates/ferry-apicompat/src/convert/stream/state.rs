//! What the stream converter knows about each upstream item and each Anthropic block.

use crate::anthropic::ContentBlock;
use crate::convert::ItemRef;
use crate::responses;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    Message,
    Reasoning,
    FunctionCall,
    CustomToolCall,
    WebSearch,
    /// An item type ferry does not convert (see [`unexpressible`]).
    Other,
}

impl ItemKind {
    pub(super) fn is_tool(self) -> bool {
        matches!(self, Self::FunctionCall | Self::CustomToolCall)
    }

    pub(super) fn of(item: &responses::OutputItem) -> Self {
        use responses::OutputItem as O;
        match item {
            O::Message(_) => Self::Message,
            O::Reasoning(_) => Self::Reasoning,
            O::FunctionCall(_) => Self::FunctionCall,
            O::CustomToolCall(_) => Self::CustomToolCall,
            O::WebSearchCall(_) => Self::WebSearch,
            O::Unknown(_) => Self::Other,
        }
    }

    /// The Responses item type (`None` for [`ItemKind::Other`], whose type varies).
    pub(super) fn type_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Message => "message",
            Self::Reasoning => "reasoning",
            Self::FunctionCall => "function_call",
            Self::CustomToolCall => "custom_tool_call",
            Self::WebSearch => "web_search_call",
            Self::Other => return None,
        })
    }
}

/// What is known about one upstream output item.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) kind: ItemKind,
    pub(super) id: Option<String>,
    pub(super) output_index: Option<u32>,
    pub(super) call_id: String,
    /// Tool name as the client knows it.
    pub(super) name: String,
    /// Latest block of this item.
    pub(super) block: Option<usize>,
    /// What reached (or is buffered for) the client, per part.
    pub(super) parts: Vec<(PartKey, Emitted)>,
    pub(super) encrypted: Option<String>,
    /// Read tool: arguments held back until they are complete.
    pub(super) held: String,
    /// Arguments of an `arguments.done` that came before the tool's name.
    pub(super) pending_arguments: Option<String>,
    /// Custom tool: the `{"input":"` prefix was emitted.
    pub(super) json_opened: bool,
    pub(super) done: bool,
    pub(super) status: Option<responses::ItemStatus>,
    pub(super) query: Option<String>,
}

impl Item {
    pub(super) fn new(kind: ItemKind, at: ItemRef<'_>) -> Self {
        Self {
            kind,
            id: at.id.map(str::to_owned),
            output_index: at.output_index,
            call_id: at.call_id.unwrap_or_default().to_owned(),
            name: String::new(),
            block: None,
            parts: Vec::new(),
            encrypted: None,
            held: String::new(),
            pending_arguments: None,
            json_opened: false,
            done: false,
            status: None,
            query: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PartKey {
    Text(u32),
    Refusal(u32),
    Summary(u32),
    ReasoningText(u32),
    Arguments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlockKind {
    Text,
    Thinking,
    ToolUse,
    ServerToolUse,
    Fixed,
}

/// One Anthropic content block, queued, open or closed.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) item: usize,
    pub(super) kind: BlockKind,
    pub(super) started: bool,
    pub(super) closed: bool,
    /// May be closed once it is the head.
    pub(super) done: bool,
    pub(super) index: u32,
    /// Content waiting for the block to become the head.
    pub(super) buffer: String,
    /// Text held back because it may be the start of a stop sequence.
    pub(super) held: String,
    pub(super) signature: Option<String>,
    /// The complete start payload of a [`BlockKind::Fixed`] or server-tool block.
    pub(super) payload: Option<ContentBlock>,
}

/// Length and FNV-1a hash of the text emitted for a part, so that a full text arriving
/// later can be checked to extend it without keeping the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Emitted {
    pub(super) len: usize,
    pub(super) hash: u64,
}

pub(super) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub(super) const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub(super) fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Emitted {
    pub(super) const EMPTY: Self = Self {
        len: 0,
        hash: FNV_OFFSET,
    };

    pub(super) fn push(&mut self, s: &str) {
        self.len += s.len();
        self.hash = fnv(self.hash, s.as_bytes());
    }

    /// The part of `full` not emitted yet, if what was emitted is a prefix of it.
    pub(super) fn missing<'a>(&self, full: &'a str) -> Option<&'a str> {
        let head = full.get(..self.len)?;
        (fnv(FNV_OFFSET, head.as_bytes()) == self.hash).then(|| &full[self.len..])
    }
}
