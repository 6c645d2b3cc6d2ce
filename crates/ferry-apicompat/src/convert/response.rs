//! Responses response object → Anthropic message (non-streaming clients).

use serde_json::{Map, Value};

use crate::convert::{FailureKind, ToolNames, UpstreamFailure};
use crate::{Converted, Dropped, anthropic, responses};

/// Options of [`convert`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The model the client asked for; the message reports it (not the upstream model).
    pub model: String,
    /// The tool-name mapping of the request, to give tools back their client names.
    pub tool_names: ToolNames,
    /// The request's `stop_sequences`: the text is cut at the first one (emulated; the
    /// Responses API has none).
    pub stop_sequences: Vec<String>,
    /// The message id to report when the upstream response has no id; normally it is made
    /// from the upstream response id (see [`message_id`]).
    pub message_id: Option<String>,
}

impl Options {
    /// Options for a client that asked for `model` with the request's `tool_names`.
    pub fn new(model: impl Into<String>, tool_names: ToolNames) -> Self {
        Self {
            model: model.into(),
            tool_names,
            stop_sequences: Vec::new(),
            message_id: None,
        }
    }

    /// Sets the stop sequences to emulate (empty ones are ignored).
    pub fn with_stop_sequences(mut self, stops: impl IntoIterator<Item = String>) -> Self {
        self.stop_sequences = stops.into_iter().filter(|s| !s.is_empty()).collect();
        self
    }

    /// Sets the fallback message id (see [`Options::message_id`]).
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }
}

/// The Anthropic message id for an upstream response id: Anthropic clients expect `msg_…`
/// ids (some check the prefix), so `resp_abc` becomes `msg_abc`, an id that already starts
/// with `msg_` is kept, any other id is prefixed, and an empty one gives `msg_ferry`.
pub fn message_id(response_id: &str) -> String {
    if response_id.starts_with("msg_") {
        response_id.to_owned()
    } else if response_id.is_empty() {
        "msg_ferry".to_owned()
    } else {
        format!(
            "msg_{}",
            response_id.strip_prefix("resp_").unwrap_or(response_id)
        )
    }
}

/// Converts a final Responses object into an Anthropic message.
///
/// Reasoning becomes a `thinking` block whose `signature` is the encrypted reasoning (or a
/// `redacted_thinking` block when there is ciphertext but no summary text), message text and
/// refusals become `text` blocks, function and custom tool calls become `tool_use` blocks
/// (with the client's tool name), web searches become a `server_tool_use` and
/// `web_search_tool_result` pair. Tool arguments that are not a JSON object become `{}`
/// and are listed in `dropped`, as are output items and parts of unknown types.
///
/// # Errors
///
/// A response that `failed`, was `cancelled`, or is `incomplete` for a reason other than
/// `max_output_tokens` or `content_filter` is an [`UpstreamFailure`].
pub fn convert(
    resp: &responses::Response,
    opts: &Options,
) -> Result<Converted<anthropic::Message>, UpstreamFailure> {
    let fixed_stop = ending(
        resp.status.as_ref(),
        &responses::ResponseStatus::Completed,
        resp,
    )?;

    let mut dropped = Vec::new();
    let mut content = Vec::new();
    let mut tool_use = false;
    let mut refusal = false;
    let mut unexpressed: Vec<&str> = Vec::new();
    let mut searches = 0u32;

    for (i, item) in resp.output.iter().enumerate() {
        match item {
            responses::OutputItem::Message(m) => {
                for (j, part) in m.content.iter().enumerate() {
                    match part {
                        responses::OutputContent::OutputText { text, .. } => {
                            if !text.is_empty() {
                                content.push(anthropic::ContentBlock::text(text.clone()));
                            }
                        }
                        responses::OutputContent::Refusal { refusal: text } => {
                            refusal = true;
                            if !text.is_empty() {
                                content.push(anthropic::ContentBlock::text(text.clone()));
                            }
                        }
                        responses::OutputContent::Unknown(v) => dropped.push(Dropped::new(
                            format!("output[{i}].content[{j}]"),
                            "unknown_content_part",
                            format!("content part of type `{}`", type_of(v)),
                        )),
                    }
                }
            }
            responses::OutputItem::Reasoning(r) => {
                if let Some(block) = reasoning_block(r) {
                    content.push(block);
                }
            }
            responses::OutputItem::FunctionCall(f) => {
                tool_use = true;
                let name = opts.tool_names.to_client(&f.name).into_owned();
                let input = match tool_input(&name, &f.arguments) {
                    Ok((input, repaired)) => {
                        if repaired {
                            dropped.push(Dropped::new(
                                format!("output[{i}].arguments.pages"),
                                "read_empty_pages",
                                "empty `pages` argument of Read removed",
                            ));
                        }
                        input
                    }
                    Err(problem) => {
                        dropped.push(Dropped::new(
                            format!("output[{i}].arguments"),
                            "invalid_tool_arguments",
                            format!("arguments of `{name}` {problem}; replaced by {{}}"),
                        ));
                        Value::Object(Map::new())
                    }
                };
                let id = call_id(&f.call_id, &f.id, i);
                let id = opts.tool_names.call_id_to_client(&id).into_owned();
                let mut block = tool_use_block(id, name, input);
                if let anthropic::ContentBlock::ToolUse(t) = &mut block {
                    // The model's text, so the message keeps its key order; it is used only
                    // while it still means `input` (not after a repair).
                    t.input_json = Some(f.arguments.clone());
                }
                content.push(block);
            }
            responses::OutputItem::CustomToolCall(c) => {
                tool_use = true;
                let name = opts.tool_names.to_client(&c.name).into_owned();
                let mut input = Map::new();
                input.insert("input".to_owned(), Value::String(c.input.clone()));
                let id = call_id(&c.call_id, &c.id, i);
                content.push(tool_use_block(
                    opts.tool_names.call_id_to_client(&id).into_owned(),
                    name,
                    Value::Object(input),
                ));
            }
            // Browsing steps of a search are not searches: nothing to show.
            responses::OutputItem::WebSearchCall(w) if !w.is_search() => {}
            responses::OutputItem::WebSearchCall(w) => {
                searches += 1;
                let [call, result] = web_search_blocks(w, i);
                content.push(call);
                content.push(result);
            }
            responses::OutputItem::Unknown(v) => match unexpressible(v) {
                Some(kind) => {
                    content.push(anthropic::ContentBlock::text(unexpressible_notice(kind)));
                    dropped.push(unexpressible_dropped(i, kind));
                    unexpressed.push(kind);
                }
                None => dropped.push(Dropped::new(
                    format!("output[{i}]"),
                    "unknown_output_item",
                    format!("output item of type `{}`", type_of(v)),
                )),
            },
        }
    }

    // Nothing but notices: the answer is lost, which is an error, never an empty turn.
    if !unexpressed.is_empty() && content.len() == unexpressed.len() && fixed_stop.is_none() {
        return Err(only_unexpressible(&unexpressed));
    }
    // Emulated stop sequences: the text ends before the first one, nothing after it.
    let stop_sequence = super::stop::cut(&mut content, &opts.stop_sequences);
    if content.is_empty() {
        content.push(anthropic::ContentBlock::text(""));
    }

    let fixed_stop = match stop_sequence {
        Some(_) => Some(anthropic::StopReason::StopSequence),
        None => fixed_stop,
    };
    let stop_reason = fixed_stop.unwrap_or(if tool_use {
        anthropic::StopReason::ToolUse
    } else if refusal {
        anthropic::StopReason::Refusal
    } else {
        anthropic::StopReason::EndTurn
    });

    let id = match &opts.message_id {
        Some(fallback) if resp.id.is_empty() => fallback.clone(),
        _ => message_id(&resp.id),
    };
    let mut message = anthropic::Message::new(id, opts.model.clone());
    message.content = content;
    message.stop_reason = Some(stop_reason);
    message.stop_sequence = stop_sequence;
    message.usage = resp.usage.as_ref().map(usage).unwrap_or_default();
    message.usage.server_tool_use = server_tool_use(searches);
    Ok(Converted::new(message, dropped))
}

/// The largest token count believed: no model reads or writes 100 million tokens in one
/// response, so a larger number (`1e30`, saturated to `u64::MAX`) is not a count.
pub const MAX_PLAUSIBLE_TOKENS: u64 = 100_000_000;

/// The `server_tool_use` usage of an answer with `searches` web searches (none without).
pub(crate) fn server_tool_use(searches: u32) -> Option<anthropic::ServerToolUsage> {
    (searches > 0).then_some(anthropic::ServerToolUsage {
        web_search_requests: searches,
    })
}

/// Converts Responses usage into Anthropic usage.
///
/// `cache_read_input_tokens` is the resolved cache-read count, `cache_creation_input_tokens`
/// the resolved cache-write count (0 unless the upstream reports one), `input_tokens` the
/// input net of both (never below 0), `output_tokens` passed through (reasoning included).
/// Implausible numbers are dropped (see [`checked_usage`]).
pub fn usage(u: &responses::Usage) -> anthropic::Usage {
    checked_usage(u).0
}

/// [`usage`], and whether the upstream's numbers were implausible: a counter above
/// [`MAX_PLAUSIBLE_TOKENS`] is read as 0 (negative numbers are already read as 0 when
/// parsed).
pub fn checked_usage(u: &responses::Usage) -> (anthropic::Usage, bool) {
    let mut implausible = false;
    let mut plausible = |n: u64| {
        if n > MAX_PLAUSIBLE_TOKENS {
            implausible = true;
            0
        } else {
            n
        }
    };
    let input = plausible(u.resolved_input_tokens());
    let output = plausible(u.resolved_output_tokens());
    let read = plausible(u.cache_read_tokens());
    let creation = plausible(u.cache_creation_tokens());
    let usage = anthropic::Usage {
        input_tokens: input.saturating_sub(read).saturating_sub(creation),
        output_tokens: output,
        cache_creation_input_tokens: creation,
        cache_read_input_tokens: read,
        server_tool_use: None,
    };
    (usage, implausible)
}

/// How a response ended: `Ok(Some(reason))` for an incomplete response that is a normal
/// end (`max_tokens`, `refusal`), `Ok(None)` for a completed one (the caller picks
/// `tool_use`, `refusal` or `end_turn`), `Err` for a failure.
///
/// `status` is the response's status; when it is absent or not final, `fallback` (the
/// status implied by the terminal event) decides, except that an `error` object on the
/// response means it failed.
pub(crate) fn ending(
    status: Option<&responses::ResponseStatus>,
    fallback: &responses::ResponseStatus,
    resp: &responses::Response,
) -> Result<Option<anthropic::StopReason>, UpstreamFailure> {
    use responses::ResponseStatus as S;
    let status = match status {
        Some(s @ (S::Completed | S::Incomplete | S::Failed | S::Cancelled)) => s,
        _ if resp.error.is_some() && *fallback == S::Completed => &S::Failed,
        _ => fallback,
    };
    match status {
        S::Incomplete => {
            let reason = resp
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_ref());
            match reason {
                Some(responses::IncompleteReason::MaxOutputTokens) => {
                    Ok(Some(anthropic::StopReason::MaxTokens))
                }
                Some(responses::IncompleteReason::ContentFilter) => {
                    Ok(Some(anthropic::StopReason::Refusal))
                }
                Some(other) => Err(UpstreamFailure::new(
                    FailureKind::Incomplete,
                    Some(other.as_str().to_owned()),
                    &format!("upstream response incomplete: {}", other.as_str()),
                )),
                None => Err(UpstreamFailure::new(
                    FailureKind::Incomplete,
                    None,
                    "upstream response incomplete",
                )),
            }
        }
        S::Failed => Err(UpstreamFailure::from_error(
            FailureKind::Failed,
            &resp.error.clone().unwrap_or_default(),
        )),
        S::Cancelled => Err(UpstreamFailure::new(
            FailureKind::Cancelled,
            None,
            "upstream response was cancelled",
        )),
        _ => Ok(None),
    }
}

/// The thinking block of a reasoning item: summary text (parts joined by a blank line,
/// falling back to raw reasoning text) with the encrypted reasoning as signature; a
/// `redacted_thinking` block when there is only ciphertext; nothing when both are empty.
fn reasoning_block(r: &responses::ReasoningItem) -> Option<anthropic::ContentBlock> {
    let mut text = join_texts(r.summary.iter().filter_map(|p| match p {
        responses::SummaryPart::SummaryText { text } => Some(text.as_str()),
        responses::SummaryPart::Unknown(_) => None,
    }));
    if text.is_empty() {
        text = join_texts(r.content.iter().flatten().filter_map(|p| match p {
            responses::ReasoningContent::ReasoningText { text } => Some(text.as_str()),
            responses::ReasoningContent::Unknown(_) => None,
        }));
    }
    let signature = encrypted(r.encrypted_content.as_deref());
    if !text.is_empty() {
        Some(anthropic::ContentBlock::Thinking(
            anthropic::ThinkingBlock {
                thinking: text,
                signature: Some(signature.unwrap_or_default().to_owned()),
            },
        ))
    } else {
        signature.map(|data| {
            anthropic::ContentBlock::RedactedThinking(anthropic::RedactedThinkingBlock {
                data: data.to_owned(),
            })
        })
    }
}

/// Separator between reasoning summary parts.
pub(crate) const SUMMARY_SEPARATOR: &str = "\n\n";

fn join_texts<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts.filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push_str(SUMMARY_SEPARATOR);
        }
        out.push_str(part);
    }
    out
}

/// The encrypted reasoning, trimmed, when non-empty.
pub(crate) fn encrypted(enc: Option<&str>) -> Option<&str> {
    enc.map(str::trim).filter(|e| !e.is_empty())
}

/// The id a tool call is reported with: its call id, else its item id, else one made from
/// its position.
pub(crate) fn call_id(call_id: &str, item_id: &str, position: usize) -> String {
    if !call_id.is_empty() {
        call_id.to_owned()
    } else if !item_id.is_empty() {
        item_id.to_owned()
    } else {
        format!("call_{position}")
    }
}

fn tool_use_block(id: String, name: String, input: Value) -> anthropic::ContentBlock {
    anthropic::ContentBlock::ToolUse(anthropic::ToolUseBlock {
        id,
        name,
        input,
        cache_control: None,
        input_json: None,
    })
}

/// The client tool name whose empty `pages` argument is removed (Claude Code rejects it).
pub(crate) const READ_TOOL: &str = "Read";

/// Parses tool arguments into the tool's input object. For [`READ_TOOL`], an empty-string
/// `pages` is removed (the `bool` says so). Errors say what is wrong.
fn tool_input(name: &str, arguments: &str) -> Result<(Value, bool), &'static str> {
    if arguments.trim().is_empty() {
        return Err("are empty");
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut map)) => {
            let repaired = name == READ_TOOL && remove_empty_pages(&mut map);
            Ok((Value::Object(map), repaired))
        }
        Ok(_) => Err("are not a JSON object"),
        Err(_) => Err("are not valid JSON"),
    }
}

fn remove_empty_pages(map: &mut Map<String, Value>) -> bool {
    if map.get("pages").and_then(Value::as_str) == Some("") {
        map.remove("pages");
        true
    } else {
        false
    }
}

/// The JSON text of a Read call's arguments as the client should see it: `None` unless they
/// are a JSON object; an empty-string `pages` removed.
pub(crate) fn read_arguments(arguments: &str) -> Option<String> {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut map)) => {
            if remove_empty_pages(&mut map) {
                serde_json::to_string(&map).ok()
            } else {
                Some(arguments.to_owned())
            }
        }
        _ => None,
    }
}

/// Whether `arguments` is a JSON object (what a tool input must be).
pub(crate) fn is_json_object(arguments: &str) -> bool {
    matches!(
        serde_json::from_str::<Value>(arguments),
        Ok(Value::Object(_))
    )
}

/// The id of the `server_tool_use` block of a web search item.
pub(crate) fn server_tool_id(item_id: &str, position: usize) -> String {
    if item_id.is_empty() {
        format!("srvtoolu_{position}")
    } else {
        format!("srvtoolu_{item_id}")
    }
}

/// The `server_tool_use` and `web_search_tool_result` blocks of a web search item. A failed
/// search gets an error result.
fn web_search_blocks(
    w: &responses::WebSearchCallItem,
    position: usize,
) -> [anthropic::ContentBlock; 2] {
    let id = server_tool_id(&w.id, position);
    let mut input = Map::new();
    input.insert("query".to_owned(), Value::String(w.search_query()));
    [
        anthropic::ContentBlock::ServerToolUse(anthropic::ServerToolUseBlock {
            id: id.clone(),
            name: "web_search".to_owned(),
            input: Value::Object(input),
        }),
        web_search_result(id, w.status.as_ref()),
    ]
}

/// The `web_search_tool_result` block answering `tool_use_id`.
pub(crate) fn web_search_result(
    tool_use_id: String,
    status: Option<&responses::ItemStatus>,
) -> anthropic::ContentBlock {
    let content = if matches!(status, Some(responses::ItemStatus::Failed)) {
        let mut err = Map::new();
        err.insert(
            "type".to_owned(),
            Value::String("web_search_tool_result_error".to_owned()),
        );
        err.insert(
            "error_code".to_owned(),
            Value::String("unavailable".to_owned()),
        );
        Value::Object(err)
    } else {
        Value::Array(Vec::new())
    };
    anthropic::ContentBlock::WebSearchToolResult(anthropic::WebSearchToolResultBlock {
        tool_use_id,
        content,
    })
}

/// The type of an output item ferry cannot express in the Anthropic API and must not drop
/// silently: a call the client would have to execute (a shell, a patch, a computer action,
/// a client tool search) or an answer that only exists as such an item (an MCP approval
/// request, a generated image). Hosted steps whose result the model's own text already
/// carries (`code_interpreter_call`, `file_search_call`, `mcp_call`, `mcp_list_tools`,
/// `compaction`, a server tool search, …) are not listed: they are dropped quietly, as a
/// JSON answer lists them in `dropped`.
pub(crate) fn unexpressible(item: &Value) -> Option<&str> {
    let kind = type_of(item);
    match kind {
        "shell_call"
        | "local_shell_call"
        | "apply_patch_call"
        | "computer_call"
        | "mcp_approval_request"
        | "image_generation_call" => Some(kind),
        "tool_search_call" if item.get("execution").and_then(Value::as_str) == Some("client") => {
            Some(kind)
        }
        _ => None,
    }
}

/// The text block that tells the client an output item was dropped.
pub(crate) fn unexpressible_notice(kind: &str) -> String {
    format!(
        "[ferry: the upstream answered with a `{kind}` item, which the Anthropic Messages API \
         cannot express; it was dropped]"
    )
}

/// The `dropped` record of an unexpressible item.
pub(crate) fn unexpressible_dropped(position: usize, kind: &str) -> Dropped {
    Dropped::new(
        format!("output[{position}]"),
        UNEXPRESSIBLE,
        format!("output item of type `{kind}` cannot be expressed; replaced by a notice"),
    )
}

/// The `dropped` kind of an output item ferry cannot express (a metric label).
pub const UNEXPRESSIBLE: &str = "unexpressible_output_item";

/// The failure of an answer that consisted only of unexpressible items.
pub(crate) fn only_unexpressible(kinds: &[&str]) -> UpstreamFailure {
    UpstreamFailure::new(
        FailureKind::Unexpressible,
        Some(kinds.first().copied().unwrap_or("unknown").to_owned()),
        &format!(
            "the upstream answered only with output the Anthropic Messages API cannot express: {}",
            kinds.join(", ")
        ),
    )
}

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("?")
}
