//! Messages → input items: system prompt, user and assistant turns, tool results and
//! replayed reasoning.

use super::{Cx, SystemView, is_openai_signature};
use crate::anthropic::{
    self, ContentBlock, MessageContent, Role, TextBlock, ToolResultBlock, ToolResultContent,
};
use crate::responses::{
    FunctionCall, FunctionCallOutput, InputContent, InputItem, MessageRole, ReasoningInput,
};

/// Prefix of the billing header Claude Code puts in the first system block.
const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header:";

/// Output of a tool result with no text.
const EMPTY_TOOL_OUTPUT: &str = "(empty)";

impl Cx {
    /// A developer message from the system prompt or a `system` message.
    pub(super) fn developer_message(
        &mut self,
        path: &str,
        content: SystemView<'_>,
    ) -> Option<InputItem> {
        let mut parts = Vec::new();
        match content {
            SystemView::Text(text) => self.developer_text(path, text, &mut parts),
            SystemView::Blocks(blocks) => {
                for (j, block) in blocks.iter().enumerate() {
                    let path = format!("{path}[{j}]");
                    match block {
                        ContentBlock::Text(t) => {
                            self.cache_hint(&path, t.cache_control.is_some());
                            self.developer_text(&path, &t.text, &mut parts);
                        }
                        ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                        _ => self.misplaced(&path, block, "system"),
                    }
                }
            }
        }
        (!parts.is_empty()).then(|| InputItem::message(MessageRole::Developer, parts))
    }

    /// The text of a user or assistant text block, or `None` (listed) when it is empty.
    /// Its cache hint and citations are accounted for either way.
    pub(super) fn message_text<'b>(&mut self, path: &str, t: &'b TextBlock) -> Option<&'b str> {
        self.cache_hint(path, t.cache_control.is_some());
        if t.citations.is_some() {
            self.drop(
                format!("{path}.citations"),
                "citations",
                "citations are not sent",
            );
        }
        if t.text.is_empty() {
            self.drop(path, "empty_text", "empty text is not sent");
            None
        } else {
            Some(&t.text)
        }
    }

    pub(super) fn developer_text(&mut self, path: &str, text: &str, parts: &mut Vec<InputContent>) {
        if text.is_empty() {
            self.drop(path, "empty_text", "empty text is not sent");
        } else if text.starts_with(BILLING_HEADER_PREFIX) {
            self.drop(path, "billing_header", "Anthropic billing header removed");
        } else {
            parts.push(InputContent::input_text(text));
        }
    }

    pub(super) fn message(
        &mut self,
        i: usize,
        message: &anthropic::InputMessage,
        out: &mut Vec<InputItem>,
    ) {
        let path = format!("messages[{i}].content");
        match &message.role {
            Role::User => self.user_message(&path, &message.content, out),
            Role::Assistant => self.assistant_message(&path, &message.content, out),
            Role::System => self.system_message(&path, &message.content, out),
            Role::Other(role) if role == "developer" => {
                self.system_message(&path, &message.content, out);
            }
            Role::Other(role) => {
                let role = role.clone();
                self.drop(
                    format!("messages[{i}].role"),
                    "unknown_role",
                    format!("role {role:?} converted as a user message"),
                );
                self.user_message(&path, &message.content, out)
            }
        }
    }

    pub(super) fn system_message(
        &mut self,
        path: &str,
        content: &MessageContent,
        out: &mut Vec<InputItem>,
    ) {
        let view = match content {
            MessageContent::Text(t) => SystemView::Text(t),
            MessageContent::Blocks(b) => SystemView::Blocks(b),
        };
        if let Some(item) = self.developer_message(path, view) {
            out.push(item);
        }
    }

    /// User turn: tool outputs first (in block order), then one user message with the other
    /// parts, then the images and documents taken out of tool results.
    pub(super) fn user_message(
        &mut self,
        path: &str,
        content: &MessageContent,
        out: &mut Vec<InputItem>,
    ) {
        let blocks = match content {
            MessageContent::Text(text) => {
                if text.is_empty() {
                    self.drop(path, "empty_text", "empty text is not sent");
                } else {
                    out.push(InputItem::message(
                        MessageRole::User,
                        vec![InputContent::input_text(text)],
                    ));
                }
                return;
            }
            MessageContent::Blocks(blocks) => blocks,
        };
        let mut parts = Vec::new();
        let mut moved = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("{path}[{j}]");
            match block {
                ContentBlock::Text(t) => {
                    if let Some(text) = self.message_text(&path, t) {
                        parts.push(InputContent::input_text(text));
                    }
                }
                ContentBlock::Image(image) => self.image(&path, image, &mut parts),
                ContentBlock::Document(doc) => self.document(&path, doc, &mut parts),
                ContentBlock::ToolResult(result) => {
                    let output = self.tool_result(&path, result, &mut moved);
                    out.push(InputItem::FunctionCallOutput(output));
                }
                ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                _ => self.misplaced(&path, block, "user"),
            }
        }
        parts.append(&mut moved);
        if !parts.is_empty() {
            out.push(InputItem::message(MessageRole::User, parts));
        }
    }

    pub(super) fn tool_result(
        &mut self,
        path: &str,
        result: &ToolResultBlock,
        moved: &mut Vec<InputContent>,
    ) -> FunctionCallOutput {
        self.cache_hint(path, result.cache_control.is_some());
        let mut texts: Vec<&str> = Vec::new();
        match &result.content {
            None => {}
            Some(ToolResultContent::Text(text)) => texts.push(text),
            Some(ToolResultContent::Blocks(blocks)) => {
                for (k, block) in blocks.iter().enumerate() {
                    let path = format!("{path}.content[{k}]");
                    match block {
                        ContentBlock::Text(t) => {
                            self.cache_hint(&path, t.cache_control.is_some());
                            if !t.text.is_empty() {
                                texts.push(&t.text);
                            }
                        }
                        ContentBlock::Image(image) => self.image(&path, image, moved),
                        ContentBlock::Document(doc) => self.document(&path, doc, moved),
                        ContentBlock::Unknown(_) => {
                            let t = block.type_name().to_owned();
                            self.drop(
                                path,
                                "unknown_block",
                                format!("block type {t:?} is not supported in a tool result"),
                            );
                        }
                        _ => self.misplaced(&path, block, "tool_result"),
                    }
                }
            }
        }
        let mut output = texts
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        if output.is_empty() {
            output = EMPTY_TOOL_OUTPUT.to_owned();
        }
        if result.is_error == Some(true) {
            output.insert_str(0, "Error: ");
        }
        let call_id = self.names.call_id_to_upstream(&result.tool_use_id);
        FunctionCallOutput::text(call_id.as_ref(), output)
    }

    /// Assistant turn: items in block order; consecutive text blocks form one message.
    pub(super) fn assistant_message(
        &mut self,
        path: &str,
        content: &MessageContent,
        out: &mut Vec<InputItem>,
    ) {
        let blocks = match content {
            MessageContent::Text(text) => {
                if text.is_empty() {
                    self.drop(path, "empty_text", "empty text is not sent");
                } else {
                    out.push(InputItem::message(
                        MessageRole::Assistant,
                        vec![InputContent::output_text(text)],
                    ));
                }
                return;
            }
            MessageContent::Blocks(blocks) => blocks,
        };
        let mut text = Vec::new();
        // Reasoning items and where they came from, to drop any that nothing follows.
        let mut reasoning_at: Vec<(usize, String)> = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("{path}[{j}]");
            match block {
                ContentBlock::Text(t) => {
                    if let Some(t) = self.message_text(&path, t) {
                        text.push(InputContent::output_text(t));
                    }
                }
                ContentBlock::ToolUse(call) => {
                    flush_assistant(&mut text, out);
                    self.cache_hint(&path, call.cache_control.is_some());
                    let arguments = call.arguments();
                    let name = self.names.to_upstream(&call.name).into_owned();
                    let call_id = self.names.call_id_to_upstream(&call.id).into_owned();
                    out.push(InputItem::FunctionCall(FunctionCall::new(
                        call_id, name, arguments,
                    )));
                }
                ContentBlock::Thinking(thinking) => {
                    let signature = thinking.signature.as_deref().unwrap_or("").trim();
                    if signature.is_empty() {
                        self.drop(
                            path,
                            "unsigned_thinking",
                            "thinking without a signature cannot be replayed",
                        );
                    } else if let Some(item) = self.replay(&path, signature, &thinking.thinking) {
                        flush_assistant(&mut text, out);
                        reasoning_at.push((out.len(), path));
                        out.push(item);
                    }
                }
                ContentBlock::RedactedThinking(redacted) => {
                    if let Some(item) = self.replay(&path, redacted.data.trim(), "") {
                        flush_assistant(&mut text, out);
                        reasoning_at.push((out.len(), path));
                        out.push(item);
                    }
                }
                ContentBlock::Unknown(_) => self.unknown_block(&path, block),
                ContentBlock::ServerToolUse(_) | ContentBlock::WebSearchToolResult(_) => {
                    let t = block.type_name().to_owned();
                    self.drop(
                        path,
                        "server_tool_history",
                        format!("{t:?} history has no Responses input equivalent"),
                    );
                }
                _ => self.misplaced(&path, block, "assistant"),
            }
        }
        flush_assistant(&mut text, out);
        // A reasoning item must be followed by the output it led to; drop trailing ones.
        for (at, path) in reasoning_at.into_iter().rev() {
            let followed = out[at + 1..]
                .iter()
                .any(|item| !matches!(item, InputItem::Reasoning(_)));
            if !followed {
                out.remove(at);
                self.drop(
                    path,
                    "orphan_reasoning",
                    "reasoning not followed by output in its turn is not replayed",
                );
            }
        }
    }

    /// A reasoning item for a signed thinking block, or why there is none.
    pub(super) fn replay(
        &mut self,
        path: &str,
        signature: &str,
        summary: &str,
    ) -> Option<InputItem> {
        if !is_openai_signature(signature) {
            self.drop(
                path,
                "foreign_signature",
                "thinking signed by another provider cannot be replayed",
            );
            return None;
        }
        if !self.reasoning_model {
            self.drop(
                path,
                "reasoning_unsupported",
                "the upstream model does not take reasoning items",
            );
            return None;
        }
        Some(InputItem::Reasoning(ReasoningInput::encrypted(
            signature, summary,
        )))
    }
}

/// Whether a message is converted as a user turn (`user`, or an unknown role).
pub(super) fn is_user_turn(role: &Role) -> bool {
    match role {
        Role::User => true,
        Role::Other(role) => role != "developer",
        Role::Assistant | Role::System => false,
    }
}

/// Appends a pending assistant message, if any.
pub(super) fn flush_assistant(text: &mut Vec<InputContent>, out: &mut Vec<InputItem>) {
    if !text.is_empty() {
        out.push(InputItem::message(
            MessageRole::Assistant,
            std::mem::take(text),
        ));
    }
}
