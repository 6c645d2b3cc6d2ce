//! A non-streaming client: the upstream's stream accumulated, or its JSON body read, into
//! one Anthropic message.

use std::sync::Arc;

use ferry_apicompat::convert::{self, FailureKind, UpstreamFailure};
use ferry_apicompat::{anthropic, responses};
use http::{HeaderMap, StatusCode, header};
use tokio::time::Instant;

use super::{JsonBody, Responder, pre_output_failure, pre_output_fault};
use crate::error::Error;
use crate::http_util::json_bytes_response;
use crate::messages::events::{EventSource, Fault, Pulled};
use crate::messages::failover::Attempt;
use crate::messages::prepare::Ctx;
use crate::messages::usage::Outcome;
use crate::upstream;

/// Non-streaming client: read the upstream stream to its terminal event, then answer one
/// JSON message.
pub(crate) async fn respond_json(r: Responder, mut source: EventSource) -> Attempt {
    let ctx = Arc::clone(&r.ctx);
    let ctx = &*ctx;
    let mut acc = ferry_apicompat::convert::Accumulator::new();
    // What the answer may take in memory: as much as one JSON answer may be.
    let cap = ctx.state.config.gateway.max_line_bytes as u64;
    let terminal = loop {
        match source.pull().await {
            Pulled::Event(ev) => {
                if source.bytes_read > cap {
                    let fault = Fault::Parse(format!(
                        "the streamed answer is larger than gateway.max_line_bytes ({cap} bytes), the most a non-streaming answer may buffer"
                    ));
                    return pre_output_fault(ctx, r.finisher, &fault);
                }
                acc.on_event(&ev);
                if ev.is_terminal() {
                    break *ev;
                }
            }
            Pulled::KeepAlive => {}
            Pulled::Eof => {
                drop(r);
                return Attempt::Failover {
                    error: Error::UpstreamProtocol(
                        "upstream stream ended without a terminal response event".to_owned(),
                    ),
                    reason: ferry_accounts::FailoverReason::Stream,
                };
            }
            Pulled::Failed(fault) => return pre_output_fault(ctx, r.finisher, &fault),
        }
    };
    ctx.state
        .metrics
        .unknown_events_total
        .inc_by([], source.unknown_events);
    let first_event_at = source.first_event_at;
    drop(source);
    let answer = match terminal {
        responses::StreamEvent::Error(e) => Err(e.body()),
        other => match other.into_response() {
            Some(resp) => Ok(acc.supplement(resp)),
            None => {
                return Attempt::Fatal(Error::UpstreamProtocol(
                    "terminal event without a response".to_owned(),
                ));
            }
        },
    };
    answer_json(r, answer, first_event_at).await
}

/// Whether a response's `content-type` is JSON (`application/json`, `…+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json")
                || t.get(t.len().saturating_sub(5)..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json"))
        })
}

/// Reads a whole JSON body: at most `gateway.max_line_bytes`, no gap between chunks longer
/// than the data-interval timeout, done by the deadline, cut short by shutdown.
pub(crate) async fn read_json_body(
    ctx: &Ctx,
    mut body: upstream::ByteStream,
    deadline: Instant,
) -> Result<bytes::Bytes, Fault> {
    use futures_util::StreamExt as _;
    let gw = &ctx.state.config.gateway;
    let mut buf = bytes::BytesMut::new();
    let mut shutdown = std::pin::pin!(ctx.state.shutdown.closed());
    loop {
        let idle_at = gw
            .stream_data_interval_timeout
            .map_or(deadline, |idle| deadline.min(Instant::now() + idle));
        let next = tokio::select! {
            next = body.next() => next,
            () = tokio::time::sleep_until(idle_at) => {
                return Err(if idle_at >= deadline { Fault::Deadline } else { Fault::Idle });
            }
            () = &mut shutdown => return Err(Fault::ShuttingDown),
        };
        match next {
            Some(Ok(chunk)) => {
                if buf.len() + chunk.len() > gw.max_line_bytes {
                    return Err(Fault::Parse(format!(
                        "the answer is larger than gateway.max_line_bytes ({} bytes)",
                        gw.max_line_bytes
                    )));
                }
                if buf.is_empty() {
                    // Most answers arrive in one chunk: keep it without a copy.
                    buf = bytes::BytesMut::from(chunk);
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return Err(Fault::Read(e)),
            None => return Ok(buf.freeze()),
        }
    }
}

/// Non-streaming client, upstream asked for JSON: read the response object and answer one
/// JSON message.
pub(crate) async fn respond_json_body(r: Responder, reply: JsonBody) -> Attempt {
    let ctx = Arc::clone(&r.ctx);
    let ctx = &*ctx;
    let JsonBody {
        body,
        headers_at,
        deadline,
    } = reply;
    let bytes = match read_json_body(ctx, body, deadline).await {
        Ok(b) => b,
        Err(fault) => return pre_output_fault(ctx, r.finisher, &fault),
    };
    let resp = match serde_json::from_slice::<responses::Response>(&bytes) {
        Ok(r) => r,
        Err(e) => {
            let fault = Fault::BadTerminal(format!("the answer is not a response object: {e}"));
            return pre_output_fault(ctx, r.finisher, &fault);
        }
    };
    answer_json(r, Ok(resp), Some(headers_at)).await
}

/// Converts the upstream's final answer (or its `error` event) into the client's JSON
/// message, or into a failover / error answer when it failed.
pub(crate) async fn answer_json(
    r: Responder,
    answer: Result<responses::Response, responses::ErrorBody>,
    first_event_at: Option<Instant>,
) -> Attempt {
    let Responder {
        ctx,
        mut finisher,
        client_headers,
        same_account_retries,
    } = r;
    let ctx = &*ctx;
    // The client sees a `msg_…` id (as a stream's `message_start` does); the session binds
    // the upstream's own response id, which continuation needs.
    let upstream_id = answer.as_ref().ok().map(|r| r.id.clone());
    let converted = match answer {
        Err(e) => Err((
            UpstreamFailure::from_error(FailureKind::ErrorEvent, &e),
            anthropic::Usage::default(),
        )),
        Ok(resp) => {
            finisher.record.usage_implausible = resp
                .usage
                .as_ref()
                .is_some_and(|u| convert::response::checked_usage(u).1);
            let opts = super::response_options(&ctx.req, &ctx.tool_names, &ctx.request_id);
            convert::response::convert(&resp, &opts).map_err(|f| {
                let usage = resp
                    .usage
                    .as_ref()
                    .map(convert::response::usage)
                    .unwrap_or_default();
                (f, usage)
            })
        }
    };
    match converted {
        Ok(message) => {
            for d in &message.dropped {
                ctx.state.metrics.response_dropped_total.inc([d.kind]);
            }
            let msg = message.value;
            if let Some(t) = finisher.thread.as_mut() {
                t.set_reply(&msg);
            }
            let usage = msg.usage;
            let response_id = upstream_id.filter(|id| !id.is_empty());
            let body = serde_json::to_vec(&msg).unwrap_or_default();
            let mut resp = json_bytes_response(StatusCode::OK, body);
            let h = resp.headers_mut();
            for (k, v) in &client_headers {
                h.append(k, v.clone());
            }
            let ctx_state = ctx.state.clone();
            if let Some(book) = finisher.finish(
                &ctx_state,
                usage,
                response_id.as_deref(),
                first_event_at,
                200,
                &Outcome::Ok,
            ) {
                book.await;
            }
            Attempt::Done(resp)
        }
        Err((failure, usage)) => {
            pre_output_failure(ctx, finisher, &failure, usage, same_account_retries)
        }
    }
}
