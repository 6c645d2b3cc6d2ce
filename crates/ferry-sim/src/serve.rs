//! Serving: a paced SSE body and the hyper accept loop (`POST …/responses`, `GET /health`;
//! on a `…/backend-api/codex/responses` path the Codex backend's rules, [`crate::codex_refusal`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{SimBody, SimOptions, simulate};

/// A response body over SSE frames that waits `ttft` before the first frame and
/// `event_interval` between frames. With both zero, all frames go out as one chunk.
///
/// Frame `k` is due at `first poll + ttft + k × event_interval` (an absolute schedule), so
/// the timer's 1 ms granularity delays each frame by less than a millisecond instead of
/// adding up over the frames: a benchmark can then compare a gateway's first event with
/// the upstream's own to well under a millisecond.
pub struct PacedBody {
    frames: VecDeque<Bytes>,
    ttft: Duration,
    interval: Duration,
    /// When the body was first polled.
    origin: Option<tokio::time::Instant>,
    /// Frames sent so far.
    sent: u32,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PacedBody {
    /// Paces `frames` as `opts` says.
    pub fn new(frames: Vec<Bytes>, opts: &SimOptions) -> Self {
        let (frames, ttft, interval) = if opts.ttft.is_zero() && opts.event_interval.is_zero() {
            let joined: BytesMut = frames.iter().fold(BytesMut::new(), |mut acc, f| {
                acc.extend_from_slice(f);
                acc
            });
            let one = if joined.is_empty() {
                VecDeque::new()
            } else {
                VecDeque::from([joined.freeze()])
            };
            (one, Duration::ZERO, Duration::ZERO)
        } else {
            (frames.into(), opts.ttft, opts.event_interval)
        };
        Self {
            frames,
            ttft,
            interval,
            origin: None,
            sent: 0,
            sleep: None,
        }
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.frames.is_empty() {
            return Poll::Ready(None);
        }
        if !(this.ttft.is_zero() && this.interval.is_zero()) {
            let origin = *this.origin.get_or_insert_with(tokio::time::Instant::now);
            let due = origin + this.ttft + this.interval * this.sent;
            if due > tokio::time::Instant::now() {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            this.sleep = None;
        }
        this.sent = this.sent.saturating_add(1);
        Poll::Ready(this.frames.pop_front().map(|f| Ok(Frame::data(f))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.frames.is_empty() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// Request bodies larger than this get 413.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// A body that is either complete or paced SSE.
enum SimResponseBody {
    Full(Option<Bytes>),
    Paced(PacedBody),
}

impl Body for SimResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Paced(p) => Pin::new(p).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Paced(p) => p.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Paced(p) => p.size_hint(),
        }
    }
}

fn json_response(status: u16, body: &Value) -> hyper::Response<SimResponseBody> {
    let mut resp = hyper::Response::new(SimResponseBody::Full(Some(Bytes::from(body.to_string()))));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn openai_error(status: u16, kind: &str, message: &str) -> hyper::Response<SimResponseBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    opts: &SimOptions,
) -> hyper::Response<SimResponseBody> {
    let path = req.uri().path().trim_end_matches('/');
    if req.method() == http::Method::GET && path == "/health" {
        let mut resp =
            hyper::Response::new(SimResponseBody::Full(Some(Bytes::from_static(b"ok\n"))));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        return resp;
    }
    if !path.ends_with("/responses") {
        return openai_error(
            404,
            "invalid_request_error",
            "Unknown path: the simulated upstream serves POST /v1/responses.",
        );
    }
    if req.method() != http::Method::POST {
        return openai_error(405, "invalid_request_error", "Use POST.");
    }
    let codex = path.ends_with("/backend-api/codex/responses");
    let headers = req.headers().clone();
    let collected = http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return openai_error(
                413,
                "invalid_request_error",
                "Request body too large or unreadable.",
            );
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return openai_error(
                400,
                "invalid_request_error",
                "We could not parse the JSON body of your request.",
            );
        }
    };
    if codex
        && let Some(message) = crate::codex_refusal(
            |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            },
            &body,
        )
    {
        return openai_error(400, "invalid_request_error", &message);
    }
    let reply = simulate(&body, opts);
    let mut resp = match reply.body {
        SimBody::Json(v) => {
            // Paced, a JSON answer takes as long as generating its stream would: the time
            // to the first token and one interval per text delta, then the whole body.
            if reply.status == 200 {
                let generating = opts.ttft + opts.event_interval * deltas_u32(opts.deltas);
                if !generating.is_zero() {
                    tokio::time::sleep(generating).await;
                }
            }
            json_response(reply.status, &v)
        }
        SimBody::Events(frames) => {
            let mut resp =
                hyper::Response::new(SimResponseBody::Paced(PacedBody::new(frames, opts)));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            resp
        }
    };
    for (name, value) in reply.headers {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

fn deltas_u32(deltas: usize) -> u32 {
    u32::try_from(deltas).unwrap_or(u32::MAX)
}

/// Serves the simulated upstream on `listener` until `shutdown` resolves, then lets open
/// connections finish (at most 5 s).
pub async fn run_sim_upstream(
    listener: TcpListener,
    opts: SimOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let opts = std::sync::Arc::new(opts);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(target: "ferry::sim", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let opts = opts.clone();
                let svc = service_fn(move |req| {
                    let opts = opts.clone();
                    async move { Ok::<_, Infallible>(handle(req, &opts).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                #[expect(clippy::disallowed_methods, reason = "a connection task lives as long as the client keeps the connection open; graceful shutdown tracks it")]
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(target: "ferry::sim", error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!(target: "ferry::sim", "connections still open after shutdown; dropping them");
        }
    }
    Ok(())
}
