//! A raw HTTP/1.1 upstream that plays scripts: chunks, pauses, an abrupt close, or silence.
//!
//! wiremock answers with a whole body at once; stalls, keep-alive pings, cut connections
//! and client-disconnect draining need an upstream that writes over time. Every response
//! is `transfer-encoding: chunked` with `connection: close`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::upstream::CapturedRequest;

/// One step of a scripted response body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes as one chunk.
    Send(String),
    /// Wait.
    Sleep(Duration),
    /// Stop writing but keep the connection open until the client goes away.
    Hang,
    /// Close the connection without the final chunk (a cut stream).
    Cut,
}

/// One scripted response.
#[derive(Debug, Clone)]
pub struct Script {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body steps; after the last one the body ends cleanly.
    pub steps: Vec<Step>,
}

impl Script {
    /// A 200 `text/event-stream` response with these steps.
    pub fn sse(steps: Vec<Step>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            steps,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<CapturedRequest>>,
    /// Responses whose every step was written (the client kept reading to the end).
    completed: AtomicUsize,
}

/// A running scripted upstream on `127.0.0.1`.
#[derive(Debug, Clone)]
pub struct ScriptedUpstream {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl ScriptedUpstream {
    /// Starts serving `scripts`: the n-th request gets the n-th script, later ones the last.
    pub async fn start(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test upstream runs for the whole test"
        )]
        tokio::spawn(async move {
            let mut n = 0usize;
            while let Ok((stream, _)) = listener.accept().await {
                let script = scripts.get(n).or(scripts.last()).cloned();
                n += 1;
                let sh = sh.clone();
                #[expect(clippy::disallowed_methods, reason = "one task per test connection")]
                tokio::spawn(async move {
                    if let Some(script) = script {
                        serve(stream, script, &sh).await;
                    }
                });
            }
        });
        Self { addr, shared }
    }

    /// The base URL to configure as an account's `base_url`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Responses written to their end.
    pub fn completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, script: Script, shared: &Shared) {
    let Some(req) = read_request(&mut stream).await else {
        return;
    };
    if let Ok(mut r) = shared.requests.lock() {
        r.push(req);
    }
    let mut head = format!(
        "HTTP/1.1 {} X\r\ntransfer-encoding: chunked\r\nconnection: close\r\n",
        script.status
    );
    for (k, v) in &script.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for step in script.steps {
        match step {
            Step::Send(s) => {
                let chunk = format!("{:x}\r\n{s}\r\n", s.len());
                if stream.write_all(chunk.as_bytes()).await.is_err()
                    || stream.flush().await.is_err()
                {
                    return;
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Hang => {
                // Until the client closes its side.
                let mut buf = [0u8; 256];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
            Step::Cut => return,
        }
    }
    if stream.write_all(b"0\r\n\r\n").await.is_ok() {
        let _ = stream.flush().await;
        shared.completed.fetch_add(1, Ordering::SeqCst);
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<CapturedRequest> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.split('?').next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(CapturedRequest {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        raw_body: body,
    })
}
