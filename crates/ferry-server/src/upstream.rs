//! Talking to an upstream: pooled reqwest clients (one per proxy), the simulated upstream
//! in process, and error bodies read with a cap.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt as _};
use http::{HeaderMap, HeaderValue};

use crate::error::Error;

/// The body of an upstream response, as chunks.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// An upstream response whose headers arrived.
pub(crate) struct UpstreamReply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ByteStream,
}

/// Largest upstream error body read; the rest is never read, so an upstream cannot make
/// ferry buffer an error page without bound.
pub(crate) const ERROR_BODY_CAP: usize = 2 * 1024 * 1024;

/// A request to send to `{base_url}/responses`.
pub(crate) struct HttpRequest {
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) proxy: Option<String>,
    /// Overrides the client's header timeout: a non-streamed answer's headers arrive only
    /// once the whole answer is ready.
    pub(crate) header_timeout: Option<Duration>,
}

/// Idle upstream connections kept per host. Each costs ~30 KiB (hyper's read and write
/// buffers, its request channel, the connection task); without a cap, a burst of 10,000
/// streams left 10,000 idle connections, ~300 MiB, for the whole idle timeout.
const MAX_IDLE_PER_HOST: usize = 256;

/// One pooled reqwest client per distinct proxy (none = direct).
pub(crate) struct HttpClients {
    clients: Mutex<HashMap<Option<String>, reqwest::Client>>,
    /// Parsed upstream URLs: there are as many as accounts, and parsing one per request
    /// (with IDNA host handling) was about 3 % of a request's CPU.
    urls: Mutex<HashMap<String, reqwest::Url>>,
    connect_timeout: Duration,
    header_timeout: Duration,
}

impl HttpClients {
    pub(crate) fn new(connect_timeout: Duration, header_timeout: Duration) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            urls: Mutex::new(HashMap::new()),
            connect_timeout,
            header_timeout,
        }
    }

    fn client(&self, proxy: Option<&str>) -> Result<reqwest::Client, Error> {
        let key = proxy.map(str::to_owned);
        let mut map = self
            .clients
            .lock()
            .map_err(|_| Error::Internal("client pool poisoned".into()))?;
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        // Only the account's `proxy` setting is used: environment proxies would make the
        // gateway's routing depend on the shell it was started from.
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            // A redirect of `POST /responses` is a misconfigured base URL: report it rather
            // than follow it (a 301/302 would turn the POST into a GET anyway).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = proxy {
            // The proxy URL may carry credentials: the error text must not.
            let proxy =
                reqwest::Proxy::all(p).map_err(|_| Error::Internal("invalid proxy URL".into()))?;
            b = b.proxy(proxy);
        }
        let c = b.build().map_err(|e| {
            Error::Internal(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })?;
        map.insert(key, c.clone());
        Ok(c)
    }

    fn url(&self, text: &str) -> Result<reqwest::Url, Error> {
        let mut urls = self
            .urls
            .lock()
            .map_err(|_| Error::Internal("url cache poisoned".into()))?;
        if let Some(u) = urls.get(text) {
            return Ok(u.clone());
        }
        // The base URL may carry credentials: the error text must not.
        let url = reqwest::Url::parse(text)
            .map_err(|e| Error::UpstreamConnect(format!("invalid upstream URL: {e}")))?;
        urls.insert(text.to_owned(), url.clone());
        Ok(url)
    }

    /// Sends the request and waits (at most the header timeout, or the request's own) for
    /// the response headers.
    pub(crate) async fn send(&self, req: HttpRequest) -> Result<UpstreamReply, Error> {
        let client = self.client(req.proxy.as_deref())?;
        let url = self.url(&req.url)?;
        let fut = client.post(url).headers(req.headers).body(req.body).send();
        let wait = req.header_timeout.unwrap_or(self.header_timeout);
        let resp = match tokio::time::timeout(wait, fut).await {
            Err(_) => return Err(Error::UpstreamTimeout("no response headers in time")),
            Ok(Err(e)) => return Err(Error::UpstreamConnect(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let headers = owned_headers(resp.headers());
        let body = resp
            .bytes_stream()
            .map(|r| r.map_err(|e| error_chain(&e)))
            .boxed();
        Ok(UpstreamReply {
            status,
            headers,
            body,
        })
    }
}

/// A copy of `headers` that owns its values. A clone would share hyper's read buffer
/// (header values are slices of it) and keep those 8 KiB alive while hyper reads the
/// body into a new one.
pub(crate) fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            out.append(name.clone(), copy);
        }
    }
    out
}

/// A reqwest error as text without its URL (which could carry credentials in a proxy or
/// base URL): the error's kind and its sources.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else if e.is_request() {
        "request error"
    } else {
        "error"
    };
    let mut out = kind.to_owned();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !text.contains("://") && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// Reads an error body, at most [`ERROR_BODY_CAP`] bytes and at most `timeout` long.
pub(crate) async fn read_error_body(body: &mut ByteStream, timeout: Duration) -> Bytes {
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            let room = ERROR_BODY_CAP.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= ERROR_BODY_CAP {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    buf.freeze()
}

/// The human message of an upstream error body: `error.message`, `message`, `detail`, …;
/// for a non-JSON body (an HTML page from a proxy) a generic text.
pub(crate) fn error_message(
    status: u16,
    reply: &ferry_apicompat::convert::ErrorReply,
) -> (Option<String>, String) {
    let v = reply.json().unwrap_or(&serde_json::Value::Null);
    let s = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_owned)
            .filter(|s| !s.trim().is_empty())
    };
    let err = v.get("error").unwrap_or(&serde_json::Value::Null);
    let code = err
        .get("code")
        .and_then(s)
        .or_else(|| err.get("type").and_then(s))
        .or_else(|| v.get("code").and_then(s));
    let msg = err
        .get("message")
        .and_then(s)
        .or_else(|| s(err))
        .or_else(|| v.get("message").and_then(s))
        .or_else(|| v.get("detail").and_then(s))
        .or_else(|| v.get("detail").and_then(|d| d.get("message")).and_then(s))
        .unwrap_or_else(|| format!("upstream error: {status}"));
    // The sanitiser lives with the upstream failure type in ferry-apicompat.
    let clean = ferry_apicompat::convert::UpstreamFailure::new(
        ferry_apicompat::convert::FailureKind::Failed,
        code.clone(),
        &msg,
    );
    (clean.code, clean.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn owned_headers_keep_every_value_and_its_sensitivity_without_sharing_the_buffer() {
        // Values sliced from one buffer, as hyper parses them.
        let buf = Bytes::from_static(b"req_1text/event-streamsk-secret");
        let value = |r: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(buf.slice(r)).expect("valid header value")
        };
        let mut h = HeaderMap::new();
        h.append("x-request-id", value(0..5));
        h.append("content-type", value(5..22));
        let mut secret = value(22..31);
        secret.set_sensitive(true);
        h.append("authorization", secret);
        h.append("x-request-id", HeaderValue::from_static("req_2"));

        let copy = owned_headers(&h);

        assert_eq!(copy, h);
        assert!(copy["authorization"].is_sensitive());
        assert_eq!(copy.get_all("x-request-id").iter().count(), 2);
        for (name, v) in &copy {
            let original = h.get(name).expect("same names");
            assert_ne!(
                v.as_bytes().as_ptr(),
                original.as_bytes().as_ptr(),
                "{name} shares"
            );
        }
    }
}
