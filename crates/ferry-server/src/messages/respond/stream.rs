//! The client's SSE body: an `http_body::Body` that hyper polls, which pulls upstream
//! events, converts them and encodes Anthropic SSE.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ferry_apicompat::anthropic;
use ferry_apicompat::convert::stream::StreamConverter;
use http_body::{Body, Frame};

use super::{Responder, pre_output_failure, pre_output_fault};
use crate::body::ResponseBody;
use crate::error::Error;
use crate::messages::Bookkeeping;
use crate::messages::events::{EventSource, Fault, Pulled};
use crate::messages::failover::Attempt;
use crate::messages::finish::Finisher;
use crate::messages::usage::Outcome;
use crate::state::AppState;
use ferry_apicompat::convert::{self, FailureKind};
use http::{HeaderName, HeaderValue, Response, header};

/// Bound on how long a drain after a client disconnect may run (also when the data-interval
/// timeout is longer or off).
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// Bound on how many upstream events a drain reads before it gives up on the usage.
const DRAIN_MAX_EVENTS: u64 = 100_000;

/// Appends the SSE encoding of `events` to `buf`.
pub(crate) fn encode_events(events: &mut Vec<anthropic::StreamEvent>, buf: &mut Vec<u8>) {
    for ev in events.drain(..) {
        ferry_apicompat::anthropic::encode_event(&ev, buf);
    }
}

/// Cuts known secrets out of the messages of `error` events (the upstream's text).
pub(crate) fn redact_errors(state: &AppState, evs: &mut [anthropic::StreamEvent]) {
    for ev in evs {
        if let anthropic::StreamEvent::Error { error } = ev {
            error.message = state.redactor.redact(&error.message);
        }
    }
}

/// Everything a live stream owns; moved into a drain task if the client leaves early.
pub(crate) struct Live {
    pub(crate) state: Arc<AppState>,
    pub(crate) source: EventSource,
    pub(crate) conv: StreamConverter,
    pub(crate) finisher: Finisher,
}

impl Live {
    /// Handles one pulled step; returns the outcome when the stream is over.
    fn step(
        &mut self,
        pulled: Pulled,
        evs: &mut Vec<anthropic::StreamEvent>,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let outcome = self.convert_step(pulled, evs, out);
        self.finisher.observe(evs);
        outcome
    }

    fn convert_step(
        &mut self,
        pulled: Pulled,
        evs: &mut Vec<anthropic::StreamEvent>,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        match pulled {
            Pulled::Event(ev) => {
                self.conv.on_event(&ev, evs);
                redact_errors(&self.state, evs);
                if self.conv.is_finished() {
                    return Some(self.conv_outcome());
                }
            }
            Pulled::KeepAlive => out.extend_from_slice(ferry_apicompat::anthropic::PING_FRAME),
            Pulled::Eof => {
                self.conv.finish(evs);
                return Some(self.conv_outcome());
            }
            Pulled::Failed(fault) => {
                self.fail(&fault, evs);
                return Some(Outcome::Error(fault.kind()));
            }
        }
        None
    }

    fn fail(&mut self, fault: &Fault, evs: &mut Vec<anthropic::StreamEvent>) {
        if !self.conv.is_finished() {
            let kind = match fault {
                Fault::ShuttingDown => anthropic::ErrorKind::OverloadedError,
                _ => anthropic::ErrorKind::ApiError,
            };
            evs.push(anthropic::StreamEvent::Error {
                error: anthropic::ErrorBody::new(kind, fault.message()),
            });
            // Mark the converter done so nothing else is emitted.
            let mut sink = Vec::new();
            self.conv.fail(
                ferry_apicompat::convert::UpstreamFailure::new(
                    ferry_apicompat::convert::FailureKind::InvalidStream,
                    None,
                    &fault.message(),
                ),
                &mut sink,
            );
        }
    }

    fn conv_outcome(&self) -> Outcome {
        match self.conv.failure() {
            None => Outcome::Ok,
            Some(f) => Outcome::Error(match f.kind {
                ferry_apicompat::convert::FailureKind::Truncated => "upstream_truncated",
                _ => "upstream_failed",
            }),
        }
    }

    /// Writes the usage record; returns the session writes still to do.
    fn end(self, outcome: &Outcome) -> Option<Bookkeeping> {
        let Self {
            state,
            source,
            conv,
            finisher,
        } = self;
        state
            .metrics
            .unknown_events_total
            .inc_by([], source.unknown_events);
        for d in conv.dropped() {
            state.metrics.response_dropped_total.inc([d.kind]);
        }
        let first = source.first_event_at;
        drop(source);
        let mut finisher = finisher;
        finisher.record.usage_implausible = conv.usage_implausible();
        finisher.finish(
            &state,
            conv.usage(),
            conv.response_id(),
            first,
            200,
            outcome,
        )
    }
}

/// The SSE body of a streaming response.
pub(crate) struct MessageStream {
    live: Option<Live>,
    /// Session writes of a finished stream; the last bytes wait for them, so the client's
    /// next turn finds its bindings.
    finishing: Option<Bookkeeping>,
    /// Encoded frames waiting to be sent.
    out: Vec<u8>,
    evs: Vec<anthropic::StreamEvent>,
    /// Set until the prelude (the first content) has been handed to hyper; the next poll
    /// then yields once, so hyper writes it before the events read with it are converted.
    yield_after_prelude: bool,
}

impl MessageStream {
    /// A stream that first sends `prelude` (already encoded), then continues from `live`.
    pub(crate) fn new(live: Live, prelude: Vec<u8>) -> Self {
        live.state.metrics.open_streams.inc();
        let mut this = Self {
            live: None,
            finishing: None,
            out: prelude,
            evs: Vec::new(),
            yield_after_prelude: false,
        };
        if live.conv.is_finished() {
            // The whole answer is already in the prelude: end now rather than wait for an
            // upstream that may keep its connection open after the terminal event.
            let outcome = live.conv_outcome();
            live.state.metrics.open_streams.dec();
            this.finishing = live.end(&outcome);
        } else {
            this.live = Some(live);
            this.yield_after_prelude = true;
        }
        this
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.live.is_none() && self.finishing.is_none() && self.out.is_empty()
    }
}

impl Body for MessageStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(f) = this.finishing.as_mut() {
                if f.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.finishing = None;
            }
            if !this.out.is_empty() {
                // Everything converted so far goes out as one chunk.
                let chunk = Bytes::from(std::mem::take(&mut this.out));
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if std::mem::take(&mut this.yield_after_prelude) {
                // hyper keeps polling a body while it has room to buffer, and writes when
                // the body is pending. When the upstream sent a burst (the first content
                // and more in one read), converting the rest first would hold back the
                // first token by that work; one yield lets the prelude go out now.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let Some(live) = this.live.as_mut() else {
                return Poll::Ready(None);
            };
            let pulled = match live.source.poll_pull(cx) {
                Poll::Ready(p) => p,
                Poll::Pending => return Poll::Pending,
            };
            let ended = live.step(pulled, &mut this.evs, &mut this.out);
            encode_events(&mut this.evs, &mut this.out);
            if let Some(outcome) = ended
                && let Some(live) = this.live.take()
            {
                live.state.metrics.open_streams.dec();
                this.finishing = live.end(&outcome);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        MessageStream::is_end_stream(self)
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        if let Some(book) = self.finishing.take() {
            spawn_detached(book);
        }
        let Some(mut live) = self.live.take() else {
            return;
        };
        live.state.metrics.open_streams.dec();
        // The client went away before the end. Its account slot is freed now, so the next
        // client does not wait for a stream nobody reads. The upstream is still read until
        // its terminal event so the usage is known and recorded (billing), bounded by the
        // data-interval timeout (the source's idle timer), the shutdown signal,
        // DRAIN_LIMIT and DRAIN_MAX_EVENTS; then dropped.
        live.finisher.release_slot();
        live.source.disable_keepalive();
        let limit = live
            .state
            .config
            .gateway
            .stream_data_interval_timeout
            .map_or(DRAIN_LIMIT, |d| d.max(Duration::from_secs(1)) * 4)
            .min(DRAIN_LIMIT);
        let drain = async move {
            let mut evs = Vec::new();
            let mut sink = Vec::new();
            let run = async {
                for _ in 0..DRAIN_MAX_EVENTS {
                    let pulled = live.source.pull().await;
                    let ended = live.step(pulled, &mut evs, &mut sink);
                    evs.clear();
                    sink.clear();
                    if ended.is_some() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(limit, run).await;
            if let Some(book) = live.end(&Outcome::ClientDisconnected) {
                book.await;
            }
        };
        spawn_detached(Box::pin(drain));
    }
}

/// Runs work that must finish although the client's response is gone: the drain after a
/// disconnect (usage is recorded at the upstream's terminal event, bounded by the idle
/// timeout and DRAIN_LIMIT) and session writes of a finished stream.
fn spawn_detached(work: Bookkeeping) {
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::warn!(target: "ferry::stream", "no runtime to finish a request's bookkeeping");
        return;
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "outlives the request on purpose: the client left, and the upstream is drained to its terminal event so its usage is recorded (bounded by the idle timeout and DRAIN_LIMIT)"
    )]
    drop(tokio::spawn(work));
}

/// Streaming client: convert until the first content block (or a keep-alive, or the end),
/// then commit the 200 and hand the rest to [`MessageStream`].
pub(crate) async fn respond_stream(r: Responder, mut source: EventSource) -> Attempt {
    let Responder {
        ctx,
        mut finisher,
        client_headers,
        same_account_retries,
    } = r;
    let ctx = &*ctx;
    let opts = super::stream_options(&ctx.req, &ctx.tool_names, &ctx.request_id);
    let mut conv = convert::stream::StreamConverter::new(opts);
    let mut evs = Vec::new();
    let mut prelude = Vec::new();
    loop {
        match source.pull().await {
            Pulled::Event(ev) => {
                conv.on_event(&ev, &mut evs);
                redact_errors(&ctx.state, &mut evs);
                if conv.is_finished()
                    && !conv.started_output()
                    && let Some(failure) = conv.failure()
                {
                    let failure = failure.clone();
                    if failure.kind != FailureKind::Truncated {
                        return pre_output_failure(
                            ctx,
                            finisher,
                            &failure,
                            conv.usage(),
                            same_account_retries,
                        );
                    }
                }
                finisher.observe(&evs);
                encode_events(&mut evs, &mut prelude);
                if conv.is_finished() || conv.started_output() {
                    break;
                }
            }
            Pulled::KeepAlive => {
                finisher.observe(&evs);
                encode_events(&mut evs, &mut prelude);
                prelude.extend_from_slice(ferry_apicompat::anthropic::PING_FRAME);
                break;
            }
            Pulled::Eof => {
                // Ended before a terminal event and before any output: another account
                // may do better (docs/conversion.md § Stream conversion, `started_output()`).
                drop(finisher);
                return Attempt::Failover {
                    error: Error::UpstreamProtocol(
                        "upstream stream ended before a terminal event".to_owned(),
                    ),
                    reason: ferry_accounts::FailoverReason::Stream,
                };
            }
            Pulled::Failed(fault) => return pre_output_fault(ctx, finisher, &fault),
        }
    }
    let mut resp = Response::new(ResponseBody::Stream(Box::pin(MessageStream::new(
        Live {
            state: ctx.state.clone(),
            source,
            conv,
            finisher,
        },
        prelude,
    ))));
    let h = resp.headers_mut();
    *h = client_headers;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Attempt::Done(resp)
}
