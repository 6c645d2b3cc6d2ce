//! Stage 5, `respond`: the upstream answer to the client, as a stream ([`stream`]) or one
//! JSON message ([`json`]); and what a failure before any client output becomes.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::headers;
use std::time::Duration;

use ferry_accounts::Disposition;
use ferry_apicompat::anthropic;
use ferry_apicompat::convert::{self, UpstreamFailure};
use tokio::time::Instant;

use crate::error::Error;
pub(crate) mod json;
pub(crate) mod stream;

use super::events::{EventSource, Fault};
use super::failover::Attempt;
use super::finish::Finisher;
use super::prepare::Ctx;
use crate::upstream;

/// The Anthropic API's message for an upstream context overflow,
/// `prompt is too long: N tokens > M maximum`, with the upstream's figures when it gives
/// them, else ferry's count of the request and the catalog's context window of the model.
pub(crate) fn prompt_too_long(
    ctx: &Ctx,
    account: &ferry_accounts::AccountConfig,
    upstream_model: &str,
    upstream_message: &str,
) -> String {
    let window = account
        .model_spec(upstream_model)
        .map(|spec| spec.context_window);
    convert::prompt_too_long_message(
        upstream_message,
        crate::tokens::count_tokens(&ctx.req),
        window,
    )
}

/// Decides what a failure before any client output means: same-account retry, failover
/// or an error answer.
pub(crate) fn pre_output_failure(
    ctx: &Ctx,
    finisher: Finisher,
    failure: &UpstreamFailure,
    usage: anthropic::Usage,
    same_account_retries: u32,
) -> Attempt {
    let state = &ctx.state;
    let Some(held) = finisher.lease.as_ref() else {
        return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
    };
    // Encrypted reasoning rejected in the stream (`response.failed` or an `error` event)
    // rather than with a 400: the same single retry without it (docs/RELIABILITY.md).
    if finisher.reasoning_retry && failure.is_rejected_reasoning() {
        tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %finisher.account, "encrypted reasoning rejected in the stream; retrying without it");
        let Finisher {
            lease: Some(lease), ..
        } = finisher
        else {
            return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
        };
        let error = Error::UpstreamFailed {
            kind: failure.error_kind(),
            message: state.redactor.redact(&failure.message),
        };
        return Attempt::ReasoningReset { lease, error };
    }
    let disposition = state.pool.on_failure(held, failure, same_account_retries);
    let message = if failure.is_context_overflow() {
        prompt_too_long(
            ctx,
            held.config(),
            &finisher.record.upstream_model,
            &failure.message,
        )
    } else {
        failure.message.clone()
    };
    let error = Error::UpstreamFailed {
        kind: failure.error_kind(),
        message: state.redactor.redact(&message),
    };
    tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %finisher.account, failure = %state.redactor.redact(&failure.to_string()), "upstream failed before any output");
    match disposition {
        // The error answer is final: record the usage the upstream reported.
        Disposition::Fatal => finisher.fail(state, usage, &error),
        _ => {
            let Finisher {
                lease: Some(lease), ..
            } = finisher
            else {
                return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
            };
            Attempt::from_disposition(disposition, lease, error)
        }
    }
}

/// A stream that broke before any output: fail over (no penalty) or answer the fault.
pub(crate) fn pre_output_fault(ctx: &Ctx, finisher: Finisher, fault: &Fault) -> Attempt {
    let error = match fault {
        Fault::Idle => Error::UpstreamTimeout("no data from the upstream in time"),
        Fault::Deadline => Error::UpstreamTimeout("the upstream answer did not arrive in time"),
        Fault::ShuttingDown => Error::NoAccount {
            rate_limited: false,
            retry_after: Some(Duration::from_secs(1)),
            message: fault.message(),
        },
        _ => Error::UpstreamProtocol(fault.message()),
    };
    match fault {
        Fault::Read(_) | Fault::Parse(_) | Fault::BadTerminal(_) => {
            drop(finisher);
            Attempt::Failover {
                error,
                reason: ferry_accounts::FailoverReason::Stream,
            }
        }
        Fault::Idle | Fault::Deadline | Fault::ShuttingDown => {
            let usage = finisher.record.usage;
            finisher.fail(&ctx.state, usage, &error)
        }
    }
}

/// The message id a client sees for request `request_id` (`req_x` → `msg_x`), streamed or
/// not.
pub(crate) fn client_message_id(request_id: &str) -> String {
    format!("msg_{}", request_id.trim_start_matches("req_"))
}

/// The stream converter's options for a request: the client's model, its tool names, the
/// message id of `request_id` and its stop sequences (the server and `ferry replay`).
pub(crate) fn stream_options(
    req: &anthropic::MessagesRequest,
    tool_names: &convert::ToolNames,
    request_id: &str,
) -> convert::stream::Options {
    convert::stream::Options::new(req.model.clone(), tool_names.clone())
        .with_message_id(client_message_id(request_id))
        .with_stop_sequences(req.stop_sequences.clone().unwrap_or_default())
}

/// The response converter's options, as [`stream_options`].
pub(crate) fn response_options(
    req: &anthropic::MessagesRequest,
    tool_names: &convert::ToolNames,
    request_id: &str,
) -> convert::response::Options {
    convert::response::Options::new(req.model.clone(), tool_names.clone())
        .with_message_id(client_message_id(request_id))
        .with_stop_sequences(req.stop_sequences.clone().unwrap_or_default())
}

/// How the upstream answer is read.
#[expect(
    clippy::large_enum_variant,
    reason = "one per attempt, moved once into its task"
)]
pub(crate) enum Reader {
    /// An SSE stream of events.
    Sse(EventSource),
    /// One JSON response object (a non-streaming client, asked of the upstream as JSON).
    Json(JsonBody),
}

/// A non-streamed upstream answer whose headers arrived.
pub(crate) struct JsonBody {
    pub(crate) body: upstream::ByteStream,
    pub(crate) headers_at: Instant,
    /// When the whole body must have arrived (`gateway.upstream_json_timeout` after sending).
    pub(crate) deadline: Instant,
}

impl Reader {
    /// How to read the upstream answer: one JSON body when one was asked for and came (an
    /// upstream that streams anyway takes the SSE path), else its event stream.
    pub(crate) fn new(
        ctx: &Ctx,
        upstream_stream: bool,
        reply_headers: &HeaderMap,
        body: upstream::ByteStream,
        sent_at: Instant,
    ) -> Self {
        let state = &ctx.state;
        let gw = &state.config.gateway;
        if !upstream_stream && json::is_json(reply_headers) {
            return Self::Json(JsonBody {
                body,
                headers_at: Instant::now(),
                deadline: sent_at + gw.upstream_json_timeout,
            });
        }
        let keepalive = if ctx.stream {
            gw.stream_keepalive_interval
        } else {
            None
        };
        Self::Sse(EventSource::new(
            body,
            gw.max_line_bytes,
            gw.stream_data_interval_timeout,
            keepalive,
            Box::pin(state.shutdown.closed()),
        ))
    }
}

/// The upstream's response headers a client may see, with `x-ferry-dropped` naming what
/// the conversion left out.
pub(crate) fn client_headers(reply_headers: &HeaderMap, dropped: &[&'static str]) -> HeaderMap {
    let mut client_headers = headers::filter_response_headers(reply_headers);
    if !dropped.is_empty()
        && let Ok(v) = HeaderValue::from_str(&dropped.join(","))
    {
        client_headers.insert(HeaderName::from_static("x-ferry-dropped"), v);
    }
    client_headers
}

/// What every way of answering needs besides the upstream body: the request, the
/// [`Finisher`] (lease and usage record), the headers for the client, and the
/// same-account retries so far (for a failure before any output).
pub(crate) struct Responder {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) finisher: Finisher,
    pub(crate) client_headers: HeaderMap,
    pub(crate) same_account_retries: u32,
}

impl Responder {
    /// Reads the answer and responds: a stream for a streaming client, else one JSON
    /// message.
    ///
    /// The first events (streams) or the whole answer (JSON) are read in their own task:
    /// if the client leaves meanwhile, hyper drops this future, but the upstream is still
    /// read to its terminal event so the usage is recorded. A stream that got going hands
    /// its body back; dropped unread, the body drains the upstream itself.
    pub(crate) async fn answer(self, reader: Reader) -> Attempt {
        #[expect(
            clippy::disallowed_methods,
            reason = "outlives the request if the client leaves: the upstream answer is read to its terminal event so its usage is recorded; bounded by the data-interval timeout"
        )]
        let task = tokio::spawn(async move {
            match reader {
                Reader::Sse(source) if self.ctx.stream => {
                    stream::respond_stream(self, source).await
                }
                // Boxed: the JSON futures are large (about 11 KiB) and every request's task,
                // a streaming one too, would otherwise carry their size.
                Reader::Sse(source) => Box::pin(json::respond_json(self, source)).await,
                Reader::Json(body) => Box::pin(json::respond_json_body(self, body)).await,
            }
        });
        task.await.unwrap_or_else(|e| {
            Attempt::Fatal(Error::Internal(format!(
                "reading the upstream answer failed: {e}"
            )))
        })
    }
}
