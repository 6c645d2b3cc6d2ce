//! Upstream bytes → Responses events, with the stream deadlines.
//!
//! [`EventSource`] reads the upstream body only when polled (so the client's pace drives
//! the upstream read), parses SSE frames, and parses each frame into a
//! `responses::StreamEvent` in two steps. It also owns two of the four stream deadlines
//! (style guide §5): the idle timeout between upstream chunks and the keep-alive interval.
//! The other two are the header timeout (in `upstream`) and the shutdown bound.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ferry_apicompat::responses;
use ferry_sse::{Frame, Parser};
use tokio::time::{Instant, Sleep};

use crate::upstream::ByteStream;

/// Why reading the upstream stream stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No upstream bytes for the data-interval timeout.
    Idle,
    /// A non-streamed answer did not arrive whole within `gateway.upstream_json_timeout`.
    Deadline,
    /// The connection broke.
    Read(String),
    /// The bytes are not a valid SSE stream (line too long, invalid UTF-8).
    Parse(String),
    /// A terminal event whose payload does not parse.
    BadTerminal(String),
    /// The server's shutdown grace period is over.
    ShuttingDown,
}

impl Fault {
    /// The message for an SSE `error` event or a JSON error (no secrets: our own texts and
    /// parser/IO error texts without URLs).
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Idle => {
                "stream data interval timeout: the upstream sent nothing for too long".to_owned()
            }
            Self::Deadline => {
                "upstream answer timeout: the whole answer did not arrive in time".to_owned()
            }
            Self::Read(e) => format!("upstream connection broke: {e}"),
            Self::Parse(e) => format!("upstream sent an invalid stream: {e}"),
            Self::BadTerminal(e) => format!("upstream sent an invalid terminal event: {e}"),
            Self::ShuttingDown => "the gateway is shutting down".to_owned(),
        }
    }

    /// Low-cardinality label.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Idle => "upstream_idle_timeout",
            Self::Deadline => "upstream_timeout",
            Self::Read(_) => "upstream_read",
            Self::Parse(_) | Self::BadTerminal(_) => "upstream_protocol",
            Self::ShuttingDown => "shutdown",
        }
    }
}

/// One step of the upstream stream.
#[derive(Debug)]
pub(crate) enum Pulled {
    /// A parsed event (unknown kinds included, as `StreamEvent::Unknown`).
    Event(Box<responses::StreamEvent>),
    /// The keep-alive interval passed without upstream data.
    KeepAlive,
    /// The upstream body ended (or sent `[DONE]`).
    Eof,
    /// Reading stopped early.
    Failed(Fault),
}

/// A timer that can be re-armed.
struct Timer {
    every: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    fn new(every: Duration) -> Self {
        Self {
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }

    fn reset(&mut self) {
        let at = Instant::now() + self.every;
        self.sleep.as_mut().reset(at);
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        self.sleep.as_mut().poll(cx).is_ready()
    }
}

/// The upstream SSE stream as events.
pub(crate) struct EventSource {
    body: ByteStream,
    parser: Parser,
    frames: VecDeque<Frame>,
    scratch: Vec<Frame>,
    eof: bool,
    idle: Option<Timer>,
    keepalive: Option<Timer>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// When the first event was parsed (first-token latency).
    pub(crate) first_event_at: Option<Instant>,
    /// Events of a kind ferry does not know (skipped).
    pub(crate) unknown_events: u64,
    /// Known non-terminal events whose payload did not parse (skipped).
    pub(crate) skipped_events: u64,
    /// Upstream body bytes read so far.
    pub(crate) bytes_read: u64,
}

impl EventSource {
    pub(crate) fn new(
        body: ByteStream,
        max_line_bytes: usize,
        idle: Option<Duration>,
        keepalive: Option<Duration>,
        shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Self {
        Self {
            body,
            parser: Parser::new(max_line_bytes),
            frames: VecDeque::new(),
            scratch: Vec::new(),
            eof: false,
            idle: idle.map(Timer::new),
            keepalive: keepalive.map(Timer::new),
            shutdown,
            first_event_at: None,
            unknown_events: 0,
            skipped_events: 0,
            bytes_read: 0,
        }
    }

    /// An event arrived: re-arm the idle timeout and the keep-alive.
    fn progress(&mut self) {
        if let Some(t) = &mut self.idle {
            t.reset();
        }
        if let Some(t) = &mut self.keepalive {
            t.reset();
        }
    }

    /// Stops keep-alives on an existing source.
    pub(crate) fn disable_keepalive(&mut self) {
        self.keepalive = None;
    }

    /// Waits for the next step.
    pub(crate) async fn pull(&mut self) -> Pulled {
        std::future::poll_fn(|cx| self.poll_pull(cx)).await
    }

    /// Polls for the next step; reads the upstream only when no parsed frame is waiting.
    pub(crate) fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Pulled> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                if frame.is_done() {
                    // `[DONE]` ends the stream; a terminal event must have come before it.
                    self.frames.clear();
                    self.eof = true;
                    return Poll::Ready(Pulled::Eof);
                }
                let Some(decoded) = responses::decode(frame.event.as_deref(), &frame.data) else {
                    continue;
                };
                // Only an event is upstream progress: bytes alone (SSE comments such as
                // `: ping`, empty frames) would keep a dead stream alive forever, and
                // keep the client from its own keep-alive pings.
                self.progress();
                match decoded {
                    Ok(ev) => {
                        if self.first_event_at.is_none() {
                            self.first_event_at = Some(Instant::now());
                        }
                        if matches!(ev, responses::StreamEvent::Unknown { .. }) {
                            self.unknown_events += 1;
                            tracing::debug!(target: "ferry::upstream", kind = ev.kind(), "unknown upstream event skipped");
                        }
                        return Poll::Ready(Pulled::Event(Box::new(ev)));
                    }
                    Err(e) if e.is_terminal_event() => {
                        return Poll::Ready(Pulled::Failed(Fault::BadTerminal(e.to_string())));
                    }
                    Err(e) => {
                        self.skipped_events += 1;
                        tracing::warn!(target: "ferry::upstream", error = %e, "malformed upstream event skipped");
                    }
                }
            }
            if self.eof {
                return Poll::Ready(Pulled::Eof);
            }
            match self.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.bytes_read += chunk.len() as u64;
                    let r = self.parser.feed(&chunk, &mut self.scratch);
                    self.frames.extend(self.scratch.drain(..));
                    if let Err(e) = r {
                        return Poll::Ready(Pulled::Failed(Fault::Parse(e.to_string())));
                    }
                    continue;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Pulled::Failed(Fault::Read(e))),
                Poll::Ready(None) => {
                    self.eof = true;
                    let r = self.parser.finish(&mut self.scratch);
                    self.frames.extend(self.scratch.drain(..));
                    if let Err(e) = r {
                        return Poll::Ready(Pulled::Failed(Fault::Parse(e.to_string())));
                    }
                    continue;
                }
                Poll::Pending => {}
            }
            if self.shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Pulled::Failed(Fault::ShuttingDown));
            }
            if self.idle.as_mut().is_some_and(|t| t.poll_fired(cx)) {
                return Poll::Ready(Pulled::Failed(Fault::Idle));
            }
            if let Some(t) = &mut self.keepalive
                && t.poll_fired(cx)
            {
                t.reset();
                return Poll::Ready(Pulled::KeepAlive);
            }
            return Poll::Pending;
        }
    }
}
