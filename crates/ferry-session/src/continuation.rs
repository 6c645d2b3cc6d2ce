//! Continuation helpers: trimming to the latest turn, recognising continuation errors,
//! and the Claude Code todo guard. All pure.

use ferry_apicompat::convert::ErrorReply;
use ferry_apicompat::{anthropic, responses};
use serde_json::Value;

use crate::keys::should_auto_inject;

/// Whether a request may be sent as a continuation (`previous_response_id`): only on
/// API-key accounts that allow it, and only for GPT-5/Codex upstream models. OAuth
/// accounts never continue this way; they rely on `session_id` plus the
/// `x-codex-turn-state` header and always send the full history.
///
/// When it holds, the server sends every request of the session with `store: true`: the
/// upstream continues only from responses it stored. (The server's accounts have it off
/// by default, because the provider then keeps the conversation.)
pub fn continuation_enabled(
    api_key_account: bool,
    account_allows: bool,
    upstream_model: &str,
) -> bool {
    api_key_account && account_allows && should_auto_inject(upstream_model)
}

/// Whether an input item is something the model produced (a reply, a tool call, its
/// reasoning): everything up to the last such item is already part of the previous
/// response.
fn is_model_output(item: &responses::InputItem) -> bool {
    match item {
        responses::InputItem::FunctionCall(_) | responses::InputItem::Reasoning(_) => true,
        responses::InputItem::Message(m) => m.role == responses::MessageRole::Assistant,
        responses::InputItem::Unknown(v) => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            kind == "reasoning"
                || kind.ends_with("_call")
                || v.get("role").and_then(Value::as_str) == Some("assistant")
        }
        _ => false,
    }
}

/// Cuts the input down to the latest turn, for a request sent with
/// `previous_response_id` (the upstream already holds everything before it). Returns
/// whether anything was cut.
///
/// The rule: keep what comes after the last item the model produced (its reply, tool
/// calls and reasoning belong to the previous response), that is the tool outputs, the
/// new user message and any developer message of the new turn. The server continues a
/// session only for the exact next turn of the bound response
/// ([`crate::DigestChain::continues`]), so those model items are always in the previous
/// response. The reference's newer rule also re-sends the tool calls the outputs answer;
/// ferry does not, because the calls already are in the previous response and a second
/// copy would put them twice into the conversation the upstream keeps.
/// When the last item is itself a model item (nothing new), it is kept alone.
pub fn trim_to_latest_turn(input: &mut Vec<responses::InputItem>) -> bool {
    if input.is_empty() {
        return false;
    }
    let start = match input.iter().rposition(is_model_output) {
        None => return false,
        Some(i) if i + 1 == input.len() => i,
        Some(i) => i + 1,
    };
    if start == 0 {
        return false;
    }
    input.drain(..start);
    true
}

/// How the upstream rejected a `previous_response_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContinuationError {
    /// The response is unknown (expired, never stored, another project): forget the
    /// binding and retry once with the full history.
    NotFound,
    /// The upstream does not take `previous_response_id` at all: also disable
    /// continuation for the session, then retry once with the full history.
    Unsupported,
}

impl ContinuationError {
    /// A label value: `not_found` or `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unsupported => "unsupported",
        }
    }
}

/// Classifies an upstream error answer to a request that carried `previous_response_id`
/// ("unsupported" is checked first: it is the stronger verdict). `None` means the error
/// has nothing to do with continuation.
pub fn classify_continuation_error(status: u16, body: &[u8]) -> Option<ContinuationError> {
    classify_continuation_reply(status, &ErrorReply::parse(body))
}

/// [`classify_continuation_error`] on a body already read.
pub fn classify_continuation_reply(status: u16, reply: &ErrorReply) -> Option<ContinuationError> {
    let haystacks = haystacks(reply);
    if unsupported(status, &haystacks) {
        Some(ContinuationError::Unsupported)
    } else if not_found(status, &haystacks) {
        Some(ContinuationError::NotFound)
    } else {
        None
    }
}

/// Whether an upstream error says the previous response does not exist: status 400 or
/// 404, and the body (raw, or its `error.code` / `error.message` / `message` / `code` /
/// `detail`), compared case-insensitively, contains `previous_response_not_found`, or
/// both "previous response" and "not found", or both "unsupported parameter" and
/// `previous_response_id`; or, at status 400 only,
/// "previous_response_id is not available for this user". The same text at 403, or for
/// "this project", or "the model is not available" do not match.
pub fn is_previous_response_not_found(status: u16, body: &[u8]) -> bool {
    not_found(status, &haystacks(&ErrorReply::parse(body)))
}

fn not_found(status: u16, haystacks: &[String]) -> bool {
    if status != 400 && status != 404 {
        return false;
    }
    haystacks.iter().any(|h| {
        h.contains("previous_response_not_found")
            || (h.contains("previous response") && h.contains("not found"))
            || (h.contains("unsupported parameter") && h.contains("previous_response_id"))
            || (status == 400 && h.contains("previous_response_id is not available for this user"))
    })
}

/// Whether an upstream error says `previous_response_id` is not supported: status 400
/// only, and the text contains `previous_response_id` with one of "unsupported
/// parameter", "only supported on responses websocket", "not supported", or "requires an
/// openai api-key account for http requests" (case-insensitive).
pub fn is_previous_response_unsupported(status: u16, body: &[u8]) -> bool {
    unsupported(status, &haystacks(&ErrorReply::parse(body)))
}

fn unsupported(status: u16, haystacks: &[String]) -> bool {
    if status != 400 {
        return false;
    }
    haystacks.iter().any(|h| {
        h.contains("previous_response_id")
            && [
                "unsupported parameter",
                "only supported on responses websocket",
                "not supported",
                "requires an openai api-key account for http requests",
            ]
            .iter()
            .any(|phrase| h.contains(phrase))
    })
}

/// The lowercased texts an error body is searched in: the raw body, and the message and
/// code fields of a JSON body (which may hold escaped characters the raw text hides).
fn haystacks(reply: &ErrorReply) -> Vec<String> {
    let mut out = vec![String::from_utf8_lossy(reply.raw()).to_lowercase()];
    if let Some(v) = reply.json() {
        let paths: [&[&str]; 7] = [
            &["error", "message"],
            &["error", "code"],
            &["message"],
            &["code"],
            &["detail"],
            &["response", "error", "message"],
            &["response", "error", "code"],
        ];
        for path in paths {
            let mut cur = v;
            for segment in path {
                match cur.get(segment) {
                    Some(next) => cur = next,
                    None => break,
                }
            }
            if let Some(s) = cur.as_str() {
                out.push(s.to_lowercase());
            }
        }
    }
    out
}

/// The marker that opens ferry's todo guard; its presence anywhere in the input means
/// the guard is already there.
pub const TODO_GUARD_MARKER: &str = "<ferry-todo-guard>";

/// The todo guard: a developer message that keeps GPT models honest about Claude Code's
/// task list.
pub const TODO_GUARD_TEXT: &str = "<ferry-todo-guard>
When you track work with the task or todo tools, keep the list true to what you are doing.
Do not end your turn with a final answer or a summary while an item is still marked in_progress.
Before you finish, ask the user to decide something, or report that you are blocked, update the list first: mark what is done as completed and what you are leaving for later as pending.
Leave an item in_progress only if you keep working on it in this same turn.
</ferry-todo-guard>";

/// Tool names through which Claude Code keeps its task list (older and newer versions).
const TASK_TOOLS: &[&str] = &["TodoWrite", "TaskCreate", "TaskUpdate"];

/// Whether a request uses Claude Code's task list: it declares one of the tools
/// `TodoWrite`, `TaskCreate` or `TaskUpdate`. ferry adds the todo guard only to such
/// requests (the reference adds it to every GPT-5 request).
pub fn wants_todo_guard(req: &anthropic::MessagesRequest) -> bool {
    req.tools
        .as_deref()
        .is_some_and(|tools| tools.iter().any(|t| TASK_TOOLS.contains(&t.name.as_str())))
}

/// Inserts the todo guard as a developer message right after the leading run of
/// developer and system messages (at the front if there is none). Does nothing when the
/// input is empty or already contains [`TODO_GUARD_MARKER`]. Returns whether it inserted.
///
/// The guard's place and text never change, so it does not disturb the cached prefix.
pub fn insert_todo_guard(input: &mut Vec<responses::InputItem>) -> bool {
    if input.is_empty() || input.iter().any(contains_marker) {
        return false;
    }
    let at = input
        .iter()
        .position(|item| {
            !matches!(item, responses::InputItem::Message(m)
                if matches!(m.role, responses::MessageRole::Developer | responses::MessageRole::System))
        })
        .unwrap_or(input.len());
    input.insert(
        at,
        responses::InputItem::message(
            responses::MessageRole::Developer,
            vec![responses::InputContent::input_text(TODO_GUARD_TEXT)],
        ),
    );
    true
}

fn contains_marker(item: &responses::InputItem) -> bool {
    match item {
        responses::InputItem::Message(m) => m.content.iter().any(|c| match c {
            responses::InputContent::InputText { text }
            | responses::InputContent::OutputText { text, .. } => text.contains(TODO_GUARD_MARKER),
            other => serde_json::to_string(other).is_ok_and(|s| s.contains(TODO_GUARD_MARKER)),
        }),
        other => serde_json::to_string(other).is_ok_and(|s| s.contains(TODO_GUARD_MARKER)),
    }
}
