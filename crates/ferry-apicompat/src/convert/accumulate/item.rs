//! One output item as the stream described it, rebuilt and merged into the terminal
//! response's item.

use std::collections::BTreeMap;

use crate::responses::{
    CustomToolCallItem, FunctionCallItem, ItemStatus, MessageItem, OutputContent, OutputItem,
    ReasoningContent, ReasoningItem, SummaryPart,
};

/// What the stream said about one output item.
#[derive(Debug, Clone, Default)]
pub(super) struct Acc {
    /// The item of `output_item.done`, else of `output_item.added`.
    pub(super) item: Option<OutputItem>,
    pub(super) done: bool,
    pub(super) item_id: Option<String>,
    pub(super) call_id: Option<String>,
    pub(super) name: Option<String>,
    /// Message text per `content_index`.
    pub(super) text: BTreeMap<u32, String>,
    /// Message refusal per `content_index`.
    pub(super) refusal: BTreeMap<u32, String>,
    /// Reasoning summary text per `summary_index`.
    pub(super) summary: BTreeMap<u32, String>,
    /// Raw reasoning text per `content_index`.
    pub(super) reasoning: BTreeMap<u32, String>,
    pub(super) arguments: Option<String>,
    pub(super) input: Option<String>,
}

impl Acc {
    /// The item type, from the item itself or from the kind of content streamed for it.
    pub(super) fn kind(&self) -> Option<&str> {
        if let Some(item) = &self.item {
            return Some(item.type_name());
        }
        if !self.text.is_empty() || !self.refusal.is_empty() {
            Some("message")
        } else if !self.summary.is_empty() || !self.reasoning.is_empty() {
            Some("reasoning")
        } else if self.arguments.is_some() {
            Some("function_call")
        } else if self.input.is_some() {
            Some("custom_tool_call")
        } else {
            None
        }
    }

    /// The complete item: the item event's payload, or one made up from the streamed
    /// content when there was no item event, with the streamed content filled in.
    pub(super) fn build(&self) -> Option<OutputItem> {
        let mut item = match &self.item {
            Some(item) => item.clone(),
            None => self.skeleton()?,
        };
        self.fill_streamed(&mut item);
        Some(item)
    }

    /// An empty item of the streamed content's kind.
    pub(super) fn skeleton(&self) -> Option<OutputItem> {
        let id = self.item_id.clone().unwrap_or_default();
        let status = Some(ItemStatus::Completed);
        Some(match self.kind()? {
            "message" => OutputItem::Message(MessageItem {
                id,
                role: Some("assistant".to_owned()),
                status,
                content: Vec::new(),
            }),
            "reasoning" => OutputItem::Reasoning(ReasoningItem {
                id,
                status,
                ..ReasoningItem::default()
            }),
            "function_call" => OutputItem::FunctionCall(FunctionCallItem {
                id,
                call_id: self.call_id.clone().unwrap_or_default(),
                name: self.name.clone().unwrap_or_default(),
                status,
                ..FunctionCallItem::default()
            }),
            _ => OutputItem::CustomToolCall(CustomToolCallItem {
                id,
                call_id: self.call_id.clone().unwrap_or_default(),
                name: self.name.clone().unwrap_or_default(),
                status,
                ..CustomToolCallItem::default()
            }),
        })
    }

    /// Fills the empty fields of a terminal item from the item events, then from the
    /// streamed content.
    pub(super) fn fill(&self, target: &mut OutputItem) {
        if let Some(item) = &self.item {
            fill_item(target, item);
        }
        self.fill_streamed(target);
    }

    pub(super) fn fill_streamed(&self, target: &mut OutputItem) {
        match target {
            OutputItem::Message(m) => {
                let mut parts: BTreeMap<u32, OutputContent> = BTreeMap::new();
                for (&i, text) in &self.text {
                    parts.insert(i, output_text(text.clone()));
                }
                for (&i, refusal) in &self.refusal {
                    parts.entry(i).or_insert_with(|| OutputContent::Refusal {
                        refusal: refusal.clone(),
                    });
                }
                fill_parts(&mut m.content, parts, |part, streamed| {
                    match (part, streamed) {
                        (
                            OutputContent::OutputText { text, .. },
                            OutputContent::OutputText { text: new, .. },
                        )
                        | (
                            OutputContent::Refusal { refusal: text },
                            OutputContent::Refusal { refusal: new },
                        ) => extend_text(text, &new),
                        _ => {}
                    }
                });
            }
            OutputItem::Reasoning(r) => {
                let summary = self
                    .summary
                    .iter()
                    .map(|(&i, t)| (i, SummaryPart::SummaryText { text: t.clone() }))
                    .collect();
                fill_parts(&mut r.summary, summary, |part, streamed| {
                    if let (
                        SummaryPart::SummaryText { text },
                        SummaryPart::SummaryText { text: new },
                    ) = (part, streamed)
                    {
                        extend_text(text, &new);
                    }
                });
                if !self.reasoning.is_empty() {
                    let content = self
                        .reasoning
                        .iter()
                        .map(|(&i, t)| (i, ReasoningContent::ReasoningText { text: t.clone() }))
                        .collect();
                    fill_parts(
                        r.content.get_or_insert_with(Vec::new),
                        content,
                        |part, streamed| {
                            if let (
                                ReasoningContent::ReasoningText { text },
                                ReasoningContent::ReasoningText { text: new },
                            ) = (part, streamed)
                            {
                                extend_text(text, &new);
                            }
                        },
                    );
                }
            }
            OutputItem::FunctionCall(f) => {
                fill_str(&mut f.arguments, self.arguments.as_deref());
                fill_str(&mut f.call_id, self.call_id.as_deref());
                fill_str(&mut f.name, self.name.as_deref());
                fill_str(&mut f.id, self.item_id.as_deref());
            }
            OutputItem::CustomToolCall(c) => {
                fill_str(&mut c.input, self.input.as_deref());
                fill_str(&mut c.call_id, self.call_id.as_deref());
                fill_str(&mut c.name, self.name.as_deref());
                fill_str(&mut c.id, self.item_id.as_deref());
            }
            _ => {}
        }
    }
}

fn output_text(text: String) -> OutputContent {
    OutputContent::OutputText {
        text,
        annotations: Vec::new(),
    }
}

/// Takes `new` for a text that is empty or that `new` continues: a terminal response whose
/// text was cut short loses nothing; texts that disagree keep the terminal's.
fn extend_text(target: &mut String, new: &str) {
    if target.is_empty() || (new.len() > target.len() && new.starts_with(target.as_str())) {
        new.clone_into(target);
    }
}

fn fill_str(target: &mut String, value: Option<&str>) {
    if let Some(value) = value
        && target.is_empty()
    {
        value.clone_into(target);
    }
}

/// Merges streamed parts (by index) into `parts`: an existing part gets `merge`d, a part
/// past the end is appended, in index order.
fn fill_parts<T>(parts: &mut Vec<T>, streamed: BTreeMap<u32, T>, merge: impl Fn(&mut T, T)) {
    for (i, part) in streamed {
        match usize::try_from(i).ok().and_then(|i| parts.get_mut(i)) {
            Some(existing) => merge(existing, part),
            None => parts.push(part),
        }
    }
}

/// Fills the empty fields of `target` from `source`, an item of the same type.
fn fill_item(target: &mut OutputItem, source: &OutputItem) {
    match (target, source) {
        (OutputItem::Message(t), OutputItem::Message(s)) => {
            fill_str(&mut t.id, Some(&s.id));
            if t.role.is_none() {
                t.role.clone_from(&s.role);
            }
            if t.content.is_empty() {
                t.content.clone_from(&s.content);
            } else {
                for (part, from) in t.content.iter_mut().zip(&s.content) {
                    match (part, from) {
                        (
                            OutputContent::OutputText { text, .. },
                            OutputContent::OutputText { text: new, .. },
                        )
                        | (
                            OutputContent::Refusal { refusal: text },
                            OutputContent::Refusal { refusal: new },
                        ) => extend_text(text, new),
                        _ => {}
                    }
                }
                t.content
                    .extend(s.content.iter().skip(t.content.len()).cloned());
            }
        }
        (OutputItem::Reasoning(t), OutputItem::Reasoning(s)) => {
            fill_str(&mut t.id, Some(&s.id));
            if t.summary.is_empty() {
                t.summary.clone_from(&s.summary);
            }
            if t.content.is_none() {
                t.content.clone_from(&s.content);
            }
            if t.encrypted_content.is_none() {
                t.encrypted_content.clone_from(&s.encrypted_content);
            }
        }
        (OutputItem::FunctionCall(t), OutputItem::FunctionCall(s)) => {
            fill_str(&mut t.id, Some(&s.id));
            fill_str(&mut t.call_id, Some(&s.call_id));
            fill_str(&mut t.name, Some(&s.name));
            fill_str(&mut t.arguments, Some(&s.arguments));
        }
        (OutputItem::CustomToolCall(t), OutputItem::CustomToolCall(s)) => {
            fill_str(&mut t.id, Some(&s.id));
            fill_str(&mut t.call_id, Some(&s.call_id));
            fill_str(&mut t.name, Some(&s.name));
            fill_str(&mut t.input, Some(&s.input));
        }
        (OutputItem::WebSearchCall(t), OutputItem::WebSearchCall(s)) => {
            fill_str(&mut t.id, Some(&s.id));
            if t.action.is_none() {
                t.action.clone_from(&s.action);
            }
        }
        _ => {}
    }
}
