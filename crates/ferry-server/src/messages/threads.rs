//! Message threads (`message-threads-2026-08-12`, docs/threads.md): a request with
//! `thread` is rebuilt into the whole conversation before anything else looks at it, and
//! its reply is appended to the thread once the client has it.
//!
//! - `{"type": "create"}`: the request is sent as it is; its messages and reply become a
//!   new thread under the reply's id.
//! - `{"type": "continue", "previous_message_id": ID}`: the thread stored under ID for this
//!   client key is loaded, and the request becomes its system, tools and messages followed
//!   by the new messages. The upstream sees the whole conversation (or continues it with
//!   `previous_response_id`, by the usual digest-chain rules, when continuation is on).
//! - An unknown, expired or other key's ID: 404 `thread_not_found`, the error the SDKs
//!   recover from by replaying the whole conversation with `create`. A conversation over
//!   `session.max_thread_bytes`: 400 `thread_unsupported_request` (the tool runner then
//!   goes on without a thread). Never a 200 with lost context.

use std::sync::Arc;

use ferry_apicompat::anthropic::{self, ContentBlock, ContentDelta, StreamEvent};
use ferry_session::{Thread, ThreadError, TurnBase, UpstreamTurn};
use serde_json::Value;

use crate::error::{Error, ThreadErrorCode};
use crate::state::AppState;

/// What a request asked of threads, and what its reply is appended to.
#[derive(Debug, Clone)]
pub(crate) struct ThreadTurn {
    /// The thread this turn continues (`None`: the turn creates one).
    base: Option<Arc<Thread>>,
    /// The create's system prompt and tools (unused on a continue).
    system: Option<anthropic::System>,
    tools: Option<Vec<anthropic::Tool>>,
    /// The messages this turn sent (a create: all of them).
    new_messages: Vec<anthropic::InputMessage>,
}

impl ThreadTurn {
    /// The upstream response of the thread's last turn, when the turn continues one.
    pub(crate) fn upstream(&self) -> Option<&UpstreamTurn> {
        self.base.as_ref().and_then(|b| b.upstream.as_ref())
    }
}

/// Takes `thread` out of the request and, for a continue, rebuilds the whole conversation
/// in `req`. `None` when the request has no `thread`.
pub(crate) async fn apply(
    state: &AppState,
    client_id: &str,
    req: &mut anthropic::MessagesRequest,
) -> Result<Option<ThreadTurn>, Error> {
    let Some(param) = req.extra.remove("thread") else {
        return Ok(None);
    };
    let metric = |result: &str| state.metrics.threads_total.inc([result]);
    let previous = match parse_param(&param) {
        Ok(None) => return Ok(None),
        Ok(Some(p)) => p,
        Err(e) => {
            metric("invalid");
            return Err(e);
        }
    };
    let threads = &state.threads;
    let Some(previous_id) = previous else {
        let turn = ThreadTurn {
            base: None,
            system: req.system.clone(),
            tools: req.tools.clone(),
            new_messages: req.messages.clone(),
        };
        let base = TurnBase::Create {
            system: turn.system.as_ref(),
            tools: turn.tools.as_deref(),
        };
        if let Err(e) = threads.check_size(&base, &turn.new_messages) {
            metric("too_large");
            return Err(thread_error(&e));
        }
        metric("created");
        return Ok(Some(turn));
    };
    let thread = match threads.load(client_id, &previous_id).await {
        Ok(t) => t,
        Err(e) => {
            metric(e.kind());
            tracing::info!(target: "ferry::threads", kind = e.kind(), error = %e, "thread continue refused");
            return Err(thread_error(&e));
        }
    };
    // The thread keeps what it was created with; a request may repeat it, not change it.
    let mut changed = Vec::new();
    if req.system.is_some() && req.system != thread.system {
        changed.push("`system`");
    }
    if req.tools.is_some() && req.tools != thread.tools {
        changed.push("`tools`");
    }
    if !changed.is_empty() {
        metric("fingerprint_mismatch");
        return Err(Error::Thread {
            code: ThreadErrorCode::FingerprintMismatch,
            message: format!(
                "{} differs from the value stored with the thread; send the stored value, or replay the full conversation with `thread: {{\"type\": \"create\"}}` to change it",
                changed.join(" and ")
            ),
        });
    }
    let new_messages = std::mem::take(&mut req.messages);
    if let Err(e) = threads.check_size(&TurnBase::Continue(&thread), &new_messages) {
        metric("too_large");
        return Err(thread_error(&e));
    }
    req.system.clone_from(&thread.system);
    req.tools.clone_from(&thread.tools);
    req.messages = thread
        .messages
        .iter()
        .cloned()
        .chain(new_messages.iter().cloned())
        .collect();
    metric("continued");
    Ok(Some(ThreadTurn {
        base: Some(Arc::new(thread)),
        system: None,
        tools: None,
        new_messages,
    }))
}

/// For `count_tokens`: a continue counts the whole conversation it rebuilds (nothing is
/// stored). Unknown threads get the same error as on `/v1/messages`.
pub(crate) async fn apply_for_count(
    state: &AppState,
    client_id: &str,
    req: &mut anthropic::MessagesRequest,
) -> Result<(), Error> {
    apply(state, client_id, req).await.map(|_| ())
}

/// `Some(None)`: create; `Some(Some(id))`: continue from id; `None`: `thread: null`.
fn parse_param(param: &Value) -> Result<Option<Option<String>>, Error> {
    let invalid = |m: &str| Error::InvalidRequest(format!("thread: {m}"));
    match param {
        Value::Null => Ok(None),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("create") => Ok(Some(None)),
            Some("continue") => match o.get("previous_message_id").and_then(Value::as_str) {
                Some(id) if !id.trim().is_empty() => Ok(Some(Some(id.to_owned()))),
                _ => Err(invalid(
                    "previous_message_id: is required when type is \"continue\"",
                )),
            },
            Some(other) => Err(invalid(&format!(
                "type: must be \"create\" or \"continue\", got {other:?}"
            ))),
            None => Err(invalid("type: is required")),
        },
        _ => Err(invalid("must be an object")),
    }
}

fn thread_error(e: &ThreadError) -> Error {
    match e {
        ThreadError::NotFound => Error::Thread {
            code: ThreadErrorCode::NotFound,
            message: "no thread state was found for `previous_message_id` (unknown, expired, or created with another key); replay the full conversation with `thread: {\"type\": \"create\"}`".to_owned(),
        },
        ThreadError::TooLarge { size, limit } => Error::Thread {
            code: ThreadErrorCode::UnsupportedRequest,
            message: format!(
                "this conversation ({size} bytes) is larger than a thread may hold on this gateway ({limit} bytes, session.max_thread_bytes); send the full conversation without `thread`"
            ),
        },
        // The thread may well exist: the store failed. Replaying is the safe way on.
        ThreadError::Store(_) => Error::Thread {
            code: ThreadErrorCode::NotFound,
            message: "the thread state could not be read (session store unavailable); replay the full conversation with `thread: {\"type\": \"create\"}`".to_owned(),
        },
        _ => Error::Internal(e.to_string()),
    }
}

/// The reply as the client received it, rebuilt from the stream's Anthropic events.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    id: Option<String>,
    blocks: Vec<ContentBlock>,
    /// The open tool input's JSON text.
    partial_json: String,
    stopped: bool,
    failed: bool,
}

impl Capture {
    /// Feeds the events about to be sent.
    pub(crate) fn observe(&mut self, events: &[StreamEvent]) {
        for ev in events {
            match ev {
                StreamEvent::MessageStart { message } => self.id = Some(message.id.clone()),
                StreamEvent::ContentBlockStart { content_block, .. } => {
                    self.blocks.push(content_block.clone());
                    self.partial_json.clear();
                }
                StreamEvent::ContentBlockDelta { delta, .. } => self.delta(delta),
                StreamEvent::ContentBlockStop { .. } => self.close_block(),
                StreamEvent::MessageStop => self.stopped = true,
                StreamEvent::Error { .. } => self.failed = true,
                _ => {}
            }
        }
    }

    fn delta(&mut self, delta: &ContentDelta) {
        let Some(block) = self.blocks.last_mut() else {
            return;
        };
        match (block, delta) {
            (ContentBlock::Text(t), ContentDelta::TextDelta { text }) => t.text.push_str(text),
            (ContentBlock::Thinking(t), ContentDelta::ThinkingDelta { thinking }) => {
                t.thinking.push_str(thinking);
            }
            (ContentBlock::Thinking(t), ContentDelta::SignatureDelta { signature }) => {
                t.signature
                    .get_or_insert_with(String::new)
                    .push_str(signature);
            }
            (ContentBlock::Text(t), ContentDelta::CitationsDelta { citation }) => {
                if let Value::Array(list) =
                    t.citations.get_or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(citation.clone());
                }
            }
            (_, ContentDelta::InputJsonDelta { partial_json }) => {
                self.partial_json.push_str(partial_json);
            }
            _ => {}
        }
    }

    fn close_block(&mut self) {
        if self.partial_json.trim().is_empty() {
            return;
        }
        let input: Value = serde_json::from_str(&self.partial_json).unwrap_or(Value::Null);
        match self.blocks.last_mut() {
            // The streamed text, so the replayed call keeps the model's key order.
            Some(ContentBlock::ToolUse(t)) => {
                t.input = input;
                t.input_json = Some(std::mem::take(&mut self.partial_json));
            }
            Some(ContentBlock::ServerToolUse(t)) => t.input = input,
            _ => {}
        }
        self.partial_json.clear();
    }

    /// The reply id and message, when the stream ended with `message_stop`.
    fn reply(self) -> Option<(String, anthropic::InputMessage)> {
        if !self.stopped || self.failed {
            return None;
        }
        let id = self.id?;
        Some((id, assistant(self.blocks)))
    }
}

fn assistant(blocks: Vec<ContentBlock>) -> anthropic::InputMessage {
    anthropic::InputMessage::new(
        anthropic::Role::Assistant,
        anthropic::MessageContent::Blocks(blocks),
    )
}

/// A thread turn waiting for its reply.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) turn: ThreadTurn,
    pub(crate) client_id: String,
    pub(crate) capture: Capture,
    /// The whole reply, for a JSON answer.
    pub(crate) reply: Option<(String, anthropic::InputMessage)>,
    /// Continuation may use the upstream response of this turn.
    pub(crate) continuation: bool,
}

impl Pending {
    /// Records a JSON answer's message.
    pub(crate) fn set_reply(&mut self, msg: &anthropic::Message) {
        self.reply = Some((msg.id.clone(), assistant(msg.content.clone())));
    }

    /// Appends the turn and its reply to the thread. `upstream` is the upstream response,
    /// when continuation may use it.
    pub(crate) async fn save(self, state: &AppState, upstream: Option<UpstreamTurn>) {
        let Self {
            turn,
            client_id,
            capture,
            reply,
            ..
        } = self;
        let Some((id, reply)) = reply.or_else(|| capture.reply()) else {
            return;
        };
        let mut messages = turn.new_messages;
        messages.push(reply);
        let base = match &turn.base {
            Some(t) => TurnBase::Continue(t),
            None => TurnBase::Create {
                system: turn.system.as_ref(),
                tools: turn.tools.as_deref(),
            },
        };
        match state
            .threads
            .save(&client_id, &id, &base, &messages, upstream)
            .await
        {
            Ok(()) => state.metrics.threads_total.inc(["stored"]),
            Err(e) => {
                // The next continue gets `thread_not_found` and the SDK replays.
                state.metrics.threads_total.inc([e.kind()]);
                tracing::warn!(target: "ferry::threads", kind = e.kind(), error = %e, "thread turn not stored");
            }
        }
    }
}
