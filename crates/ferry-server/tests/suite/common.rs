//! The test harness: a gateway on 127.0.0.1:0, a client, SSE parsing, log capture.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_server::config::{ClientKey, Secret};
use ferry_server::{Config, StartError};
use ferry_testkit::{TEST_CLIENT_KEY, TEST_UPSTREAM_KEY};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running gateway.
pub(crate) struct TestServer {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
    /// The client key to send (`None` on an open gateway).
    pub(crate) key: Option<String>,
    /// Reloads the running server's config (what `ferry serve` does on SIGHUP).
    pub(crate) reloader: ferry_server::Reloader,
}

impl TestServer {
    /// Boots the gateway with `config` (its listen address is forced to 127.0.0.1:0).
    pub(crate) async fn start(mut config: Config) -> Self {
        init_logging();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        let key = config
            .client_keys
            .first()
            .map(|k| k.key.expose().to_owned());
        let server = ferry_server::bind(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let reloader = server.reloader();
        let (tx, rx) = oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the server runs for the whole test"
        )]
        let handle = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            base,
            client,
            shutdown: Some(tx),
            handle: Some(handle),
            key,
            reloader,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A POST with the configured client key as `x-api-key`.
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let b = self
            .client
            .post(self.url(path))
            .header("anthropic-version", "2023-06-01");
        match &self.key {
            Some(k) => b.header("x-api-key", k),
            None => b,
        }
    }

    /// POST /v1/messages with `body`.
    pub(crate) async fn messages(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/messages")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub(crate) async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }

    /// Asks the server to shut down and waits for `run` to return.
    pub(crate) async fn shutdown(mut self) -> Result<(), StartError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let h = self.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("shutdown in time")
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The body as JSON.
pub(crate) async fn json_body(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

pub(crate) fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// A test config: one API-key account on `base_url` mapping every Claude model to
/// `gpt-5.1`, one client key, short stream timeouts.
pub(crate) fn config(base_url: &str) -> Config {
    let mut c = Config::for_tests();
    let mut account = ferry_accounts::AccountConfig::api_key(
        "primary",
        base_url,
        ferry_accounts::Secret::new(TEST_UPSTREAM_KEY),
    );
    account.default_model = Some("gpt-5.1".to_owned());
    c.accounts = vec![account];
    c.client_keys = vec![ClientKey {
        name: "alice".to_owned(),
        key: Secret::new(TEST_CLIENT_KEY),
        budget: Default::default(),
    }];
    c.gateway.stream_keepalive_interval = Some(Duration::from_secs(5));
    c.gateway.stream_data_interval_timeout = Some(Duration::from_secs(5));
    c
}

/// A second API-key account named `name` on `base_url`.
pub(crate) fn account(name: &str, base_url: &str) -> ferry_accounts::AccountConfig {
    let mut a = ferry_accounts::AccountConfig::api_key(
        name,
        base_url,
        ferry_accounts::Secret::new(TEST_UPSTREAM_KEY),
    );
    a.default_model = Some("gpt-5.1".to_owned());
    a
}

/// A minimal Messages request.
pub(crate) fn request(text: &str, stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{ "role": "user", "content": text }],
    })
}

/// A request that declares one tool.
pub(crate) fn request_with_tools(text: &str, stream: bool) -> Value {
    let mut r = request(text, stream);
    r["tools"] = json!([
        { "name": "Bash", "description": "run a command", "input_schema": {
            "type": "object", "properties": { "command": { "type": "string" } }, "required": ["command"] } },
        { "name": "Read", "description": "read a file", "input_schema": {
            "type": "object", "properties": { "file_path": { "type": "string" } }, "required": ["file_path"] } }
    ]);
    r
}

/// One client SSE event: its `event:` name and parsed `data:`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) data: Value,
}

/// Parses an Anthropic SSE body; panics on frames without `event:` or with invalid JSON
/// (what the SDKs reject).
pub(crate) fn parse_sse(text: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut parser = ferry_sse::Parser::new(1 << 24);
    let mut frames = Vec::new();
    parser.feed(text.as_bytes(), &mut frames).unwrap();
    parser.finish(&mut frames).unwrap();
    for f in frames {
        let name = f
            .event
            .clone()
            .unwrap_or_else(|| panic!("frame without event: line: {f:?}"));
        let data: Value = serde_json::from_str(&f.data)
            .unwrap_or_else(|e| panic!("invalid JSON {e}: {}", f.data));
        assert_eq!(
            data["type"].as_str(),
            Some(name.as_str()),
            "event name and data type differ"
        );
        out.push(Event { name, data });
    }
    out
}

pub(crate) fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

/// The concatenated `text_delta`s of a stream.
pub(crate) fn streamed_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.name == "content_block_delta" && e.data["delta"]["type"] == "text_delta")
        .map(|e| e.data["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Collected log output (JSON lines) of a tracing subscriber installed for one test.
#[derive(Clone, Default)]
pub(crate) struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The `fields` of every event with this target.
    pub(crate) fn events(&self, target: &str) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == target)
            .map(|v| v["fields"].clone())
            .collect()
    }

    /// Waits (up to 5 s) until `n` events with `target` were logged.
    pub(crate) async fn wait_for(&self, target: &str, n: usize) -> Vec<Value> {
        for _ in 0..500 {
            let evs = self.events(target);
            if evs.len() >= n {
                return evs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("waited for {n} {target} events; log:\n{}", self.text());
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    static CURRENT_LOG: std::cell::RefCell<Option<LogBuffer>> = const { std::cell::RefCell::new(None) };
}

/// Writes a log line into the buffer of the test running on this thread, if it captures.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT_LOG.with(|c| {
            if let Some(b) = c.borrow_mut().as_mut() {
                let _ = b.write(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One global JSON subscriber for the whole test binary, routing each line to the test
/// whose thread emitted it. (Per-test `set_default` subscribers miss events when tests
/// run in parallel: tracing caches callsite interest globally.) Each `#[tokio::test]` runs
/// on its own current-thread runtime, so the server's tasks log on the test's thread.
pub(crate) fn init_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("ferry=trace,debug"))
            .with_writer(|| ThreadWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Stops capturing when dropped.
pub(crate) struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CURRENT_LOG.with(|c| *c.borrow_mut() = None);
    }
}

/// Captures the log lines of this test (JSON; `ferry*` at TRACE, the rest at DEBUG).
pub(crate) fn capture_logs() -> (LogBuffer, CaptureGuard) {
    init_logging();
    let buf = LogBuffer::default();
    CURRENT_LOG.with(|c| *c.borrow_mut() = Some(buf.clone()));
    (buf, CaptureGuard)
}

/// The figures of an Anthropic "prompt is too long" error body
/// (`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: N tokens > M maximum"}}`),
/// checked to have exactly that shape and N > M.
pub(crate) fn prompt_too_long_figures(body: &Value) -> (u64, u64) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let figures = message
        .strip_prefix("prompt is too long: ")
        .and_then(|rest| rest.strip_suffix(" maximum"))
        .and_then(|rest| rest.split_once(" tokens > "))
        .and_then(|(n, m)| Some((n.parse::<u64>().ok()?, m.parse::<u64>().ok()?)));
    let Some((prompt, maximum)) = figures else {
        panic!("not the Anthropic prompt-too-long message: {body}")
    };
    assert!(prompt > maximum, "{body}");
    (prompt, maximum)
}
