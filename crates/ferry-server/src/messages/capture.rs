//! What a captured request records (docs/captures.md): the client's request, each upstream
//! attempt (the request sent, the upstream's raw answer, teed as ferry reads it) and the
//! client's answer (teed as hyper sends it). Only built when `[capture]` is on: with capture
//! off the pipeline holds `None` and neither copies nor tees anything.
//!
//! The document is handed to the writer ([`crate::capture::Capturer`]) when the client's
//! answer ends or is dropped, on a blocking thread, so the client never waits for it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Response};
use http_body::{Body, Frame};

use crate::SessionFacts;
use crate::body::{LiveBody, ResponseBody};
use crate::capture::{
    CAPTURE_VERSION, CaptureFile, CapturedAttempt, CapturedFacts, CapturedRequest, capped_text,
    headers_map, rfc3339_now, text_of,
};
use crate::config::CaptureMode;
use crate::state::AppState;
use crate::upstream::ByteStream;

/// The outcome of an attempt whose client left while it was under way.
const CLIENT_LEFT: &str = "client_left";

/// The SSE frame that starts an Anthropic `error` event (ferry's encoder writes it so).
const ERROR_EVENT: &[u8] = b"event: error\n";

/// The capture of one request, shared by its attempts and its answer.
pub(crate) struct Recorder {
    state: Arc<AppState>,
    cap: usize,
    /// `None` once handed to the writer: later bytes (a drain after the client left) are
    /// not recorded.
    inner: Mutex<Option<Inner>>,
}

struct Inner {
    file: CaptureFile,
    /// The raw bytes of each attempt's upstream answer, and whether they were cut.
    responses: Vec<(Vec<u8>, bool)>,
    /// The attempt whose outcome is not known yet.
    open: Option<usize>,
    client_body: Vec<u8>,
    client_truncated: bool,
    /// The client's stream carried an `error` event.
    saw_error_event: bool,
}

/// Appends `chunk` to `buf`, at most `cap` bytes in all; sets `cut` when some were left out.
fn append_capped(buf: &mut Vec<u8>, cut: &mut bool, chunk: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    if chunk.len() > room {
        *cut = true;
    }
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
}

impl Recorder {
    /// The recorder of a request whose client and body are known; `None` when capture is
    /// off.
    pub(crate) fn new(
        state: &Arc<AppState>,
        request_id: &str,
        client_key: Option<&str>,
        target: (String, String),
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Arc<Self>> {
        let capturer = state.capturer.as_ref()?;
        let cap = capturer.max_body_bytes();
        let (method, path) = target;
        let (text, body_truncated) = capped_text(body, cap);
        let file = CaptureFile {
            version: CAPTURE_VERSION,
            time: rfc3339_now(),
            request_id: request_id.to_owned(),
            client_key: client_key.map(str::to_owned),
            client_request: CapturedRequest {
                method,
                path,
                headers: headers_map(headers),
                body: text,
                body_truncated,
                planned: None,
            },
            ..CaptureFile::default()
        };
        Some(Arc::new(Self {
            state: Arc::clone(state),
            cap,
            inner: Mutex::new(Some(Inner {
                file,
                responses: Vec::new(),
                open: None,
                client_body: Vec::new(),
                client_truncated: false,
                saw_error_event: false,
            })),
        }))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_mut().map(f)
    }

    /// A message-thread turn: the whole request ferry rebuilt, which it converts.
    pub(crate) fn set_planned(&self, req: &ferry_apicompat::anthropic::MessagesRequest) {
        let planned = serde_json::to_value(req).ok();
        self.with(|i| i.file.client_request.planned = planned);
    }

    /// An attempt starts: the request about to be sent on `account`.
    pub(crate) fn begin_attempt(&self, sent: &SentRequest<'_>) {
        let (body, body_truncated) = capped_text(sent.body, self.cap);
        let f = sent.facts;
        let attempt = CapturedAttempt {
            account: sent.account.to_owned(),
            account_kind: sent.kind.as_str().to_owned(),
            upstream_model: sent.upstream_model.to_owned(),
            facts: CapturedFacts {
                client_stream: f.client_stream,
                continuation: f.continuation,
                previous_response_id: f.previous_response_id.clone(),
                todo_guard: f.todo_guard,
                prompt_cache_key: f.prompt_cache_key.clone(),
                strip_reasoning: f.strip_reasoning,
            },
            url: sent.url.to_owned(),
            headers: headers_map(sent.headers),
            body,
            body_truncated,
            ..CapturedAttempt::default()
        };
        self.with(|i| {
            i.file.account = Some(attempt.account.clone());
            i.file.attempts.push(attempt);
            i.responses.push((Vec::new(), false));
            i.open = Some(i.file.attempts.len() - 1);
        });
    }

    fn with_open(&self, f: impl FnOnce(&mut CapturedAttempt, &mut (Vec<u8>, bool))) {
        self.with(|i| {
            if let Some(n) = i.open
                && let (Some(a), Some(r)) = (i.file.attempts.get_mut(n), i.responses.get_mut(n))
            {
                f(a, r);
            }
        });
    }

    /// The open attempt got no response.
    pub(crate) fn attempt_error(&self, error: &str) {
        self.with_open(|a, _| a.error = Some(error.to_owned()));
    }

    /// The open attempt's response status and headers.
    pub(crate) fn attempt_reply(&self, status: u16, headers: &HeaderMap) {
        self.with_open(|a, _| {
            a.status = Some(status);
            a.response_headers = headers_map(headers);
        });
    }

    /// Bytes of the open attempt's response body (an error body read whole).
    pub(crate) fn attempt_body(&self, bytes: &[u8]) {
        let cap = self.cap;
        self.with_open(|_, (buf, cut)| append_capped(buf, cut, bytes, cap));
    }

    /// The open attempt's body, recorded as ferry reads it.
    pub(crate) fn tee(self: &Arc<Self>, body: ByteStream) -> ByteStream {
        let Some(Some(index)) = self.with(|i| i.open) else {
            return body;
        };
        let rec = Arc::clone(self);
        body.inspect(move |chunk| {
            let cap = rec.cap;
            rec.with(|i| match chunk {
                Ok(chunk) => {
                    if let Some((buf, cut)) = i.responses.get_mut(index) {
                        append_capped(buf, cut, chunk, cap);
                    }
                }
                Err(e) => {
                    if let Some(a) = i.file.attempts.get_mut(index) {
                        a.response_error = Some(e.clone());
                    }
                }
            });
        })
        .boxed()
    }

    /// The open attempt ended with `outcome` ([`super::failover::Attempt::label`]).
    pub(crate) fn end_attempt(&self, outcome: &str) {
        self.with(|i| {
            if let Some(n) = i.open.take()
                && let Some(a) = i.file.attempts.get_mut(n)
            {
                a.outcome = outcome.to_owned();
            }
        });
    }

    /// The client's answer, recorded as hyper sends it; the capture is written when it
    /// ends.
    pub(crate) fn tee_response(
        self: &Arc<Self>,
        resp: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        let status = resp.status().as_u16();
        let headers = headers_map(resp.headers());
        self.with(|i| {
            i.file.client_response.status = status;
            i.file.client_response.headers = headers;
        });
        let (parts, body) = resp.into_parts();
        let body = match body {
            ResponseBody::Full(bytes) => {
                self.client_bytes(bytes.as_deref().unwrap_or_default());
                self.finish(true);
                ResponseBody::Full(bytes)
            }
            ResponseBody::Stream(inner) => ResponseBody::Stream(Box::pin(TeeBody {
                inner,
                rec: Arc::clone(self),
            })),
        };
        Response::from_parts(parts, body)
    }

    fn client_bytes(&self, bytes: &[u8]) {
        let cap = self.cap;
        self.with(|i| {
            if !i.saw_error_event && bytes.windows(ERROR_EVENT.len()).any(|w| w == ERROR_EVENT) {
                i.saw_error_event = true;
            }
            append_capped(&mut i.client_body, &mut i.client_truncated, bytes, cap);
        });
    }

    /// Completes the document and hands it to the writer (once; later calls do nothing).
    fn finish(&self, complete: bool) {
        let Some(inner) = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(target: "ferry::capture", "no runtime to write a capture");
            return;
        };
        let state = Arc::clone(&self.state);
        // A blocking thread: assembling the document, redaction, serialisation and the file
        // system stay off the runtime's workers and off the client's answer. It ends when
        // the file is written (or, in `errors` mode, when the request turns out OK).
        drop(runtime.spawn_blocking(move || {
            let Some(capturer) = state.capturer.as_ref() else {
                return;
            };
            let file = inner.into_file(complete);
            if capturer.mode() == CaptureMode::Errors && file.outcome == "ok" {
                return;
            }
            let request_id = file.request_id.clone();
            match capturer.write(file, &state.redactor) {
                Ok(path) => {
                    tracing::debug!(target: "ferry::capture", request_id = %request_id, path = %path.display(), "capture written");
                }
                Err(e) => {
                    tracing::warn!(target: "ferry::capture", request_id = %request_id, error = %e, "cannot write a capture");
                }
            }
        }));
    }
}

impl Drop for Recorder {
    /// The client left before ferry answered (hyper dropped the request's future): the
    /// capture is written once the last attempt is done with the recorder (a reader task
    /// reads the upstream's answer to its end), with client status 0.
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl Inner {
    fn into_file(self, complete: bool) -> CaptureFile {
        let Self {
            mut file,
            responses,
            client_body,
            client_truncated,
            saw_error_event,
            ..
        } = self;
        for (a, (raw, cut)) in file.attempts.iter_mut().zip(responses) {
            a.response = text_of(&raw);
            a.response_truncated = cut;
            if a.outcome.is_empty() {
                // Still open: the client left and hyper dropped the attempt loop, while a
                // reader task read this attempt's answer on.
                a.outcome = CLIENT_LEFT.to_owned();
            }
        }
        file.client_response.body = text_of(&client_body);
        file.client_response.body_truncated = client_truncated;
        file.client_response.complete = complete;
        let attempt_failed = file.attempts.iter().any(|a| {
            !matches!(a.outcome.as_str(), "answered" | CLIENT_LEFT)
                || a.error.is_some()
                || a.response_error.is_some()
                || !a.status.is_some_and(|s| (200..300).contains(&s))
        });
        // Status 0: the client left before ferry answered, not by itself an error.
        let status_ok = matches!(file.client_response.status, 0 | 200);
        let ok = status_ok && !saw_error_event && !attempt_failed;
        file.outcome = if ok { "ok" } else { "error" }.to_owned();
        file
    }
}

/// What an attempt sends, as [`Recorder::begin_attempt`] records it.
pub(crate) struct SentRequest<'a> {
    pub(crate) account: &'a str,
    pub(crate) kind: ferry_accounts::AccountKind,
    pub(crate) upstream_model: &'a str,
    pub(crate) facts: &'a SessionFacts,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// The client's stream, recorded frame by frame; the capture is written at its end, or
/// when hyper drops it (the client left).
struct TeeBody {
    inner: LiveBody,
    rec: Arc<Recorder>,
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.rec.client_bytes(data);
                }
            }
            Poll::Ready(None) => self.rec.finish(true),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl Drop for TeeBody {
    fn drop(&mut self) {
        // Done already when the stream was polled to its end; else it is complete only if
        // hyper saw `is_end_stream` (the client left before the end otherwise).
        let complete = self.inner.is_end_stream();
        self.rec.finish(complete);
    }
}
