//! HTTP plumbing shared by the routes and the `/v1/messages` pipeline: reading a request
//! body within its limits, and JSON, text and Anthropic error responses.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use ferry_apicompat::anthropic;

use crate::body::ResponseBody;
use crate::error::Error;

/// Reads the whole request body, refusing more than `limit` bytes (up front from
/// `Content-Length`, and again while reading: chunked bodies have none) and a client that
/// takes longer than `deadline` to send it (a half-sent body must not hold a task forever).
pub(crate) async fn read_body(
    req: Request<Incoming>,
    limit: u64,
    deadline: Duration,
) -> Result<Bytes, Error> {
    tokio::time::timeout(deadline, read_body_unbounded(req, limit))
        .await
        .map_err(|_| Error::BodyTimeout {
            secs: deadline.as_secs(),
        })?
}

async fn read_body_unbounded(req: Request<Incoming>, limit: u64) -> Result<Bytes, Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::BodyTooLarge { limit });
    }
    let mut body = req.into_body();
    let mut buf =
        BytesMut::with_capacity(usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Error::BodyRead)?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                return Err(Error::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    if buf.is_empty() {
        return Err(Error::InvalidRequest("request body is empty".to_owned()));
    }
    Ok(buf.freeze())
}

/// `{"type":"error","error":{"type":…,"message":…}}` with the error's status.
pub(crate) fn error_response(err: &Error) -> Response<ResponseBody> {
    let mut resp = json_bytes_response(err.status(), error_body(err));
    if let Some(after) = err.retry_after() {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    if err.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The Anthropic error body for `err`, fields in the API's order: the one error envelope,
/// `ferry_apicompat::anthropic::ErrorResponse` (the stream's `error` event uses it too).
pub(crate) fn error_body(err: &Error) -> Vec<u8> {
    let mut body = anthropic::ErrorBody::new(
        anthropic::ErrorKind::from(err.anthropic_type()),
        err.client_message(),
    );
    if let Some(details) = err.details() {
        body = body.with_details(details);
    }
    serde_json::to_vec(&anthropic::ErrorResponse {
        error: body,
        request_id: None,
    })
    .unwrap_or_default()
}

/// A JSON response with `value` serialised.
pub(crate) fn json_response(
    status: StatusCode,
    value: &serde_json::Value,
) -> Response<ResponseBody> {
    json_bytes_response(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A JSON response from already serialised bytes (keeps the serialiser's field order).
pub(crate) fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
pub(crate) fn text_response(status: StatusCode, text: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(text.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
