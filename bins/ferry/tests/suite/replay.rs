//! `ferry replay` on captures the real server wrote (docs/captures.md): identical on an
//! unmodified capture, a diff and exit status 1 on a tampered one, `--send` to a local
//! upstream, exit status 2 on a file that is no capture.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ferry_server::config::CaptureMode;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::cli::ferry;

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ferry-replay-{name}-{}-{nanos}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The gateway on the built-in simulated upstream, with `[capture] mode = "all"`.
struct Gateway {
    base: String,
    client: reqwest::Client,
    captures: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), ferry_server::StartError>>,
}

impl Gateway {
    async fn start(dir: &Path) -> Self {
        Self::start_with(dir, ferry_server::Config::for_tests()).await
    }

    async fn start_with(dir: &Path, mut c: ferry_server::Config) -> Self {
        c.capture.mode = CaptureMode::All;
        c.capture.dir = dir.join("captures");
        let server = ferry_server::bind(c).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the gateway runs for the whole test"
        )]
        let running = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            base,
            client,
            captures: dir.join("captures"),
            stop,
            running,
        }
    }

    /// Sends `body`; returns the request id and the answer's text.
    async fn post(&self, body: &Value) -> (String, String) {
        let resp = self
            .client
            .post(format!("{}/v1/messages", self.base))
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["request-id"].to_str().unwrap().to_owned();
        (id, resp.text().await.unwrap())
    }

    /// The capture file of request `id`, once written.
    async fn capture_of(&self, id: &str) -> PathBuf {
        for _ in 0..200 {
            let found = std::fs::read_dir(&self.captures).ok().and_then(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .find(|p| p.to_string_lossy().ends_with(&format!("-{id}.json")))
            });
            if let Some(p) = found {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no capture of {id}");
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.unwrap().unwrap();
    }
}

/// Sends `requests` through a capturing gateway; returns their capture files, in order.
async fn record(dir: &Path, requests: &[Value]) -> Vec<PathBuf> {
    let gateway = Gateway::start(dir).await;
    let mut files = Vec::new();
    for body in requests {
        let (id, _) = gateway.post(body).await;
        files.push(gateway.capture_of(&id).await);
    }
    gateway.stop().await;
    files
}

fn requests() -> Vec<Value> {
    vec![
        ferry_testkit::claude_code_request("02_bash_turn1"),
        json!({
            "model": "claude-opus-4-8",
            "max_tokens": 256,
            "messages": [{ "role": "user", "content": "hello" }],
        }),
    ]
}

async fn replay(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || ferry().arg("replay").args(args).output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn arg(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmodified_capture_replays_identical() {
    let dir = temp_dir("identical");
    let files = record(&dir, &requests()).await;
    for file in &files {
        let out = replay(vec![arg(file)]).await;
        let report = text(&out);
        assert_eq!(out.status.code(), Some(0), "{report}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "request of attempt 1 (account simulated): identical\nanswer: identical\n",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_capture_shows_a_diff_and_exits_1() {
    let dir = temp_dir("tampered");
    let files = record(&dir, &requests()).await;
    let mut capture: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();

    // The request ferry sent, changed: the replayed plan no longer matches it.
    let mut request = capture.clone();
    let attempt = &mut request["attempts"][0];
    let mut sent: Value = serde_json::from_str(attempt["body"].as_str().unwrap()).unwrap();
    sent["max_output_tokens"] = json!(7);
    attempt["body"] = json!(sent.to_string());
    let tampered = dir.join("request.json");
    std::fs::write(&tampered, serde_json::to_vec(&request).unwrap()).unwrap();
    let out = replay(vec![arg(&tampered)]).await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("request of attempt 1 (account simulated): differs"),
        "{report}"
    );
    assert!(report.contains("--- recorded\n+++ replayed\n"), "{report}");
    assert!(report.contains("-  \"max_output_tokens\": 7,"), "{report}");
    assert!(report.contains("answer: identical"), "{report}");

    // The answer the client got, changed.
    let body = capture["client_response"]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(body.contains("event: content_block_delta"), "{body}");
    let delta = "\"type\":\"thinking_delta\",\"thinking\":\"";
    let changed = body.replacen(delta, &format!("{delta}CHANGED "), 1);
    assert_ne!(changed, body);
    capture["client_response"]["body"] = json!(changed);
    let tampered = dir.join("answer.json");
    std::fs::write(&tampered, serde_json::to_vec(&capture).unwrap()).unwrap();
    let out = replay(vec![arg(&tampered)]).await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("answer: differs"), "{report}");
    assert!(report.contains("CHANGED"), "{report}");

    // Not a capture at all: trouble, exit 2.
    let junk = dir.join("junk.json");
    std::fs::write(&junk, b"{\"hello\": 1}").unwrap();
    let out = replay(vec![arg(&junk)]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is not a ferry capture"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn send_replays_the_request_to_a_configured_upstream() {
    let dir = temp_dir("send");
    let files = record(&dir, &requests()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    #[expect(
        clippy::disallowed_methods,
        reason = "the simulated upstream runs for the whole test"
    )]
    let sim = tokio::spawn(ferry_sim::run_sim_upstream(
        listener,
        ferry_sim::SimOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let config = dir.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[[accounts]]\nname = \"local\"\nkind = \"api_key\"\nbase_url = \"http://{addr}/v1\"\napi_key = \"sk-replay-local-0123456789\"\ndefault_model = \"gpt-5.1\"\n"
        ),
    )
    .unwrap();
    let sent_to = format!("sent to local (http://{addr}/v1/responses): status 200\n");
    // The streamed capture: the answer is the client's SSE.
    let out = replay(vec![
        arg(&files[0]),
        "--config".into(),
        arg(&config),
        "--send".into(),
        "--account".into(),
        "local".into(),
    ])
    .await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&sent_to), "{report}");
    for event in [
        "event: message_start",
        "event: content_block_delta",
        "event: message_stop",
    ] {
        assert!(stdout.contains(event), "{event}: {report}");
    }
    // The non-streamed capture: one JSON message.
    let out = replay(vec![
        arg(&files[1]),
        "--config".into(),
        arg(&config),
        "--send".into(),
        "--account".into(),
        "local".into(),
    ])
    .await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let message: Value = serde_json::from_str(stdout.strip_prefix(&sent_to).unwrap()).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "claude-opus-4-8");
    // --send without a configured account of that name is trouble.
    let out = replay(vec![
        arg(&files[1]),
        "--config".into(),
        arg(&config),
        "--send".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no account named \"simulated\""),
        "{}",
        text(&out)
    );
    let _ = stop.send(());
    sim.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thread_continue_replays_from_the_request_ferry_rebuilt() {
    let dir = temp_dir("thread");
    let gateway = Gateway::start(&dir).await;
    let tools = json!([{
        "name": "Bash",
        "description": "run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }]);
    let create = json!({
        "model": "claude-opus-4-8",
        "max_tokens": 512,
        "system": "be careful",
        "tools": tools,
        "thread": {"type": "create"},
        "messages": [{"role": "user", "content": "run [[tool:Bash:ls]]"}],
    });
    let (_, first) = gateway.post(&create).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    let tool_use = first["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool call: {first}"))["id"]
        .clone();
    let next = json!({
        "model": "claude-opus-4-8",
        "max_tokens": 512,
        "thread": {"type": "continue", "previous_message_id": first["id"]},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use, "content": "a.txt"}
        ]}],
    });
    let (id, _) = gateway.post(&next).await;
    let file = gateway.capture_of(&id).await;
    gateway.stop().await;
    let capture: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(capture["client_request"]["planned"]["tools"].is_array());
    let out = replay(vec![arg(&file)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "request of attempt 1 (account simulated): identical\nanswer: identical\n",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_capture_replays_identical_for_the_codex_backend() {
    use ferry_testkit::upstream::{mount_sequence, sse_response, start};
    let dir = temp_dir("oauth");
    let upstream = start().await;
    let answer = ferry_testkit::sse(ferry_testkit::text_events(
        "resp_o",
        &["from ", "codex"],
        ferry_testkit::Usage::new(9, 2),
    ));
    let _mock = mount_sequence(
        &upstream,
        vec![sse_response(answer.clone()), sse_response(answer)],
    )
    .await;
    let mut c = ferry_server::Config::for_tests();
    let mut account = ferry_accounts::AccountConfig::oauth(
        "codex",
        ferry_accounts::Secret::new("oauth-token-for-replay-0123456789"),
        None,
    );
    account.base_url = Some(upstream.uri());
    account.chatgpt_account_id = Some("acct_1".to_owned());
    account.default_model = Some("gpt-5.1-codex".to_owned());
    c.accounts = vec![account];
    let gateway = Gateway::start_with(&dir, c).await;
    let mut files = Vec::new();
    for stream in [true, false] {
        let (id, _) = gateway
            .post(&json!({
                "model": "claude-opus-4-8",
                "max_tokens": 256,
                "stream": stream,
                "system": "be brief",
                "messages": [{ "role": "user", "content": "hello" }],
            }))
            .await;
        files.push(gateway.capture_of(&id).await);
    }
    gateway.stop().await;
    for file in &files {
        let capture: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(capture["attempts"][0]["account_kind"], "oauth");
        let out = replay(vec![arg(file)]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "request of attempt 1 (account codex): identical\nanswer: identical\n",
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
