//! Runs the built `ferry` binary (`CARGO_BIN_EXE_ferry`) as a user would.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::Value;

pub(super) fn ferry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .env_remove("FERRY_LOG_FORMAT")
        .env_remove("FERRY_LISTEN");
    cmd
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = ferry()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn convert_request_turns_a_claude_code_request_into_a_responses_request() {
    let body = std::fs::read(fixtures().join("requests/claude-code/02_bash_turn1.json")).unwrap();
    let out = run_with_stdin(&["convert", "request"], &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted: Value = serde_json::from_slice(&out.stdout).unwrap();
    let original: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(converted["model"], original["model"]);
    assert_eq!(converted["stream"], Value::Bool(true));
    assert_eq!(converted["store"], Value::Bool(false));
    let input = converted["input"].as_array().unwrap();
    assert_eq!(input[0]["role"], "developer");
    assert_eq!(
        converted["tools"].as_array().unwrap().len(),
        original["tools"].as_array().unwrap().len()
    );
    // What the conversion left out is listed on stderr, not mixed into the JSON.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ferry: dropped metadata"), "{stderr}");
}

#[test]
fn convert_request_maps_the_model_when_asked() {
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let out = run_with_stdin(&["convert", "request", "--model", "gpt-5.1"], body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(converted["model"], "gpt-5.1");
    assert_eq!(
        converted["input"],
        serde_json::json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}])
    );
}

#[test]
fn convert_request_for_a_codex_account_prints_the_codex_body() {
    let body = std::fs::read(fixtures().join("requests/claude-code/02_bash_turn1.json")).unwrap();
    let run = |model: &str| {
        let out = run_with_stdin(
            &["convert", "request", "--account", "codex", "--model", model],
            &body,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The exact body: compact JSON, then one newline.
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 1);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let plain = run("gpt-5.5");
    assert_eq!(plain["model"], "gpt-5.5");
    assert_eq!(plain["store"], Value::Bool(false));
    assert_eq!(plain["stream"], Value::Bool(true));
    assert!(plain["instructions"].is_string());
    assert!(plain["tools"].is_array());
    assert_eq!(plain.get("max_output_tokens"), None);
    let lite = run("gpt-5.6-sol");
    assert_eq!(lite.get("tools"), None);
    assert_eq!(lite["input"][0]["type"], "additional_tools");
    assert_eq!(lite["reasoning"]["context"], "all_turns");
}

/// With the session's facts on the command line, `convert request` prints the continued
/// request ferry would send: the cache key, `previous_response_id` with `store: true`, and
/// the input trimmed to the latest turn.
#[test]
fn convert_request_takes_the_session_facts() {
    let body =
        std::fs::read(fixtures().join("requests/claude-code/03_bash_turn2_tool_result.json"))
            .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["convert", "request", "--model", "gpt-5.4"];
        all.extend_from_slice(args);
        let out = run_with_stdin(&all, &body);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let fresh = run(&[]);
    assert_eq!(fresh.get("prompt_cache_key"), None);
    assert_eq!(fresh.get("previous_response_id"), None);
    let continued = run(&[
        "--prompt-cache-key",
        "pck-123",
        "--previous-response-id",
        "resp_prev",
    ]);
    assert_eq!(continued["prompt_cache_key"], "pck-123");
    assert_eq!(continued["previous_response_id"], "resp_prev");
    assert_eq!(continued["store"], Value::Bool(true));
    let (all, latest) = (
        fresh["input"].as_array().unwrap().len(),
        continued["input"].as_array().unwrap().len(),
    );
    assert!(
        latest < all,
        "trimmed to the latest turn: {latest} of {all} items"
    );
}

#[test]
fn convert_request_rejects_a_malformed_block_with_its_path() {
    let body = br#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}"#;
    let out = run_with_stdin(&["convert", "request"], body);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("messages[0].content[0]"), "{stderr}");
}

#[test]
fn convert_stream_ends_in_message_stop() {
    let sse = std::fs::read(fixtures().join("upstream/b11_usage_cached_tokens.sse")).unwrap();
    let out = run_with_stdin(&["convert", "stream", "--model", "claude-opus-4-8"], &sse);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    assert!(text.contains("\"model\":\"claude-opus-4-8\""), "{text}");
}

#[test]
fn convert_stream_without_a_terminal_event_ends_in_an_error_event() {
    let sse = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5.1\",\"status\":\"in_progress\",\"output\":[]}}\n\n";
    let out = run_with_stdin(&["convert", "stream"], sse);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\n"), "{text}");
}

#[test]
fn convert_response_gives_the_message_or_the_error() {
    let body = std::fs::read(fixtures().join("upstream/b01_text.json")).unwrap();
    let out = run_with_stdin(&["convert", "response", "--model", "claude-x"], &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "claude-x");

    let failed = std::fs::read(fixtures().join("upstream/b10_failed.json")).unwrap();
    let out = run_with_stdin(&["convert", "response"], &failed);
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["type"], "error");
}

#[test]
fn check_config_lists_every_problem_and_fails() {
    let dir = std::env::temp_dir().join(format!("ferry-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisen = \"x\"\n[[client_keys]]\nname = \"a\"\nkey = \"${FERRY_TEST_SURELY_UNSET}\"\n",
    )
    .unwrap();
    let out = ferry()
        .args(["check-config", "--config"])
        .arg(&bad)
        .env_remove("FERRY_TEST_SURELY_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 config problems"), "{stderr}");
    assert!(stderr.contains("server.lisen: unknown field"), "{stderr}");
    assert!(
        stderr.contains(
            "client_keys[0].key: environment variable FERRY_TEST_SURELY_UNSET is not set"
        ),
        "{stderr}"
    );

    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[[accounts]]\nname = \"sim\"\nkind = \"simulated\"\n",
    )
    .unwrap();
    let out = ferry()
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 account"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 15 item 4: a config error names the key and the problem, never a secret's value,
/// whether the file does not parse (the line of an unterminated `api_key = "…`), a secret
/// sits under a key of the wrong type, or a Redis URL with a password is refused.
#[test]
fn config_errors_never_quote_a_secret() {
    let dir = std::env::temp_dir().join(format!("ferry-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "sk-live-Zq7c0nf1gS3cr3tV4lue";
    let cases = [
        (
            "unterminated.toml",
            format!("[[accounts]]\nname = \"a\"\nkind = \"api_key\"\napi_key = \"{secret}\n"),
            "line 4",
        ),
        (
            "wrong-type.toml",
            format!(
                "[[accounts]]\nname = \"a\"\nkind = \"api_key\"\napi_key = \"x\"\nconcurrency = \"{secret}\"\n"
            ),
            "accounts[0].concurrency",
        ),
        (
            "redis.toml",
            format!(
                "[session]\nstore = \"redis\"\nredis_url = \"http://user:{secret}@127.0.0.1:1\"\n"
            ),
            "session.redis_url",
        ),
        (
            "client-key.toml",
            format!("[[client_keys]]\nname = \"a\"\nkey = \" {secret}\"\n"),
            "client_keys[0].key",
        ),
    ];
    for (name, text, names) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &text).unwrap();
        for command in ["check-config", "serve"] {
            let out = ferry()
                .args([command, "--config"])
                .arg(&path)
                .args(if command == "serve" {
                    &["--listen", "127.0.0.1:0"][..]
                } else {
                    &[][..]
                })
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command} {name}: {stderr}");
            assert!(stderr.contains(names), "{command} {name}: {stderr}");
            assert!(!stderr.contains(secret), "{command} {name}: {stderr}");
            assert!(!stderr.contains("Zq7c0"), "{command} {name}: {stderr}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A running ferry process that announced its address on stderr.
pub(super) struct Running {
    child: Child,
    pub(super) addr: String,
    pub(super) stderr: mpsc::Receiver<String>,
}

impl Running {
    pub(super) fn start(args: &[&str], ready: &'static str) -> Self {
        let mut child = ferry()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // From here on, Drop kills the process if the test fails.
        let mut running = Self {
            child,
            addr: String::new(),
            stderr: rx,
        };
        loop {
            let line = running
                .stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("ferry did not announce its address");
            if let Some(addr) = line.strip_prefix(ready) {
                running.addr = addr.to_owned();
                return running;
            }
        }
    }

    pub(super) fn request(&self, raw: &str) -> String {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// SIGTERM, then the exit status and every stderr line.
    pub(super) fn stop(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        (status, self.stderr.try_iter().collect())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn serve_announces_itself_answers_and_stops_on_sigterm() {
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--log-format", "json"],
        "ferry listening on http://",
    );
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let health = server.request("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"hello"}]}"#;
    let reply = server.request(&format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Simulated reply to"), "{reply}");
    let (status, lines) = server.stop();
    assert!(status.success(), "{status:?} {lines:?}");
    // JSON logs: every other stderr line is one JSON object.
    assert!(!lines.is_empty());
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn sim_upstream_serves_responses_streams() {
    let mut sim = Running::start(
        &["sim-upstream", "--listen", "127.0.0.1:0", "--deltas", "5"],
        "ferry sim-upstream listening on http://",
    );
    let body = r#"{"model":"gpt-5.1","stream":true,"input":[{"role":"user","content":"hi"}]}"#;
    let reply = sim.request(&format!(
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(
        reply.matches("event: response.output_text.delta\n").count(),
        5
    );
    assert!(reply.contains("event: response.completed\n"), "{reply}");
    let (status, _) = sim.stop();
    assert!(status.success());
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = ferry().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    // Without git (a source tarball) the build falls back to `unknown`.
    let commit = git.unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        text.trim(),
        format!("ferry {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// `POST /v1/messages` with `key`, `connection: close`; the whole raw response.
fn post_messages(addr: &str, key: &str, stream: bool) -> String {
    let body = format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":50,"stream":{stream},"messages":[{{"role":"user","content":"hello"}}]}}"#
    );
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(
        format!(
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

/// Polls (every 50 ms, up to 10 s) until `key` gets `status` from the gateway.
fn wait_for_status(addr: &str, key: &str, status: &str) {
    for _ in 0..200 {
        if post_messages(addr, key, false).starts_with(&format!("HTTP/1.1 {status}")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{key} did not get {status} within 10 s");
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Issue 15 item 12: SIGHUP killed ferry at once, cutting every stream. It reloads the
/// config instead: a new client key works and the removed one is refused, while a stream
/// that started before the reload runs to its end; a broken file is refused, its problems
/// logged, and the running config kept.
#[test]
fn sighup_reloads_the_config_without_dropping_streams() {
    // A paced upstream: 40 deltas 50 ms apart, a stream of about 2 s.
    let sim = Running::start(
        &[
            "sim-upstream",
            "--listen",
            "127.0.0.1:0",
            "--deltas",
            "40",
            "--ttft-ms",
            "0",
            "--event-interval-ms",
            "50",
        ],
        "ferry sim-upstream listening on http://",
    );
    let dir = std::env::temp_dir().join(format!("ferry-cli-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferry.toml");
    let config = |client: &str, key: &str| {
        format!(
            "[[client_keys]]\nname = \"{client}\"\nkey = \"{key}\"\n\n[[accounts]]\nname = \"up\"\nkind = \"api_key\"\nbase_url = \"http://{}/v1\"\napi_key = \"sk-upstream-test\"\ndefault_model = \"gpt-5.1\"\n",
            sim.addr
        )
    };
    std::fs::write(&path, config("alice", "key-alice-1")).unwrap();
    let mut gateway = Running::start(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        "ferry listening on http://",
    );
    let addr = gateway.addr.clone();
    assert!(post_messages(&addr, "key-alice-1", false).starts_with("HTTP/1.1 200"));

    let stream = {
        let addr = addr.clone();
        std::thread::spawn(move || post_messages(&addr, "key-alice-1", true))
    };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&path, config("bob", "key-bob-2")).unwrap();
    hangup(&gateway.child);
    wait_for_status(&addr, "key-bob-2", "200");
    assert!(post_messages(&addr, "key-alice-1", false).starts_with("HTTP/1.1 401"));
    let streamed = stream.join().unwrap();
    assert!(streamed.starts_with("HTTP/1.1 200"), "{streamed}");
    assert_eq!(
        streamed.matches("event: content_block_delta").count(),
        40,
        "{streamed}"
    );
    assert!(streamed.contains("event: message_stop"), "{streamed}");

    // A broken file: refused, the problems logged, bob still served.
    std::fs::write(&path, "[server]\nlisen = 1\n[[accounts]]\nname = \"x\"\n").unwrap();
    hangup(&gateway.child);
    let mut refused = false;
    let mut logged = Vec::new();
    for _ in 0..100 {
        match gateway.stderr.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                refused |= line.contains("config reload refused");
                logged.push(line);
                if refused {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    assert!(refused, "{logged:#?}");
    let all = logged.join("\n");
    assert!(all.contains("server.lisen"), "{all}");
    assert!(matches!(gateway.child.try_wait(), Ok(None)), "ferry exited");
    assert!(post_messages(&addr, "key-bob-2", false).starts_with("HTTP/1.1 200"));

    let (status, _) = gateway.stop();
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `model` carrying a newline, a forged `ferry::usage` line and ANSI escapes: in the
/// pretty format it stays on its own line with the newline and escapes written out (before:
/// the forged line stood on its own, and ESC reached the terminal); in JSON every line
/// still parses.
#[test]
fn client_text_cannot_forge_log_lines_or_send_escapes() {
    let forged = "2026-01-01T00:00:00.000000Z  INFO ferry::usage: usage request_id=req_forged";
    let model = format!("claude-sonnet-4-5\n{forged}\u{1b}[2J\u{1b}[31m");
    let body = serde_json::json!({
        "model": model, "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string();
    for format in ["pretty", "json"] {
        let mut server = Running::start(
            &["serve", "--listen", "127.0.0.1:0", "--log-format", format],
            "ferry listening on http://",
        );
        let reply = server.request(&format!(
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ));
        assert!(reply.starts_with("HTTP/1.1 "), "{reply}");
        let (status, lines) = server.stop();
        assert!(status.success(), "{status:?} {lines:?}");
        let usage: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("ferry::usage"))
            .collect();
        assert_eq!(usage.len(), 1, "{format}: {lines:#?}");
        assert!(usage[0].contains("req_forged"), "{format}: {lines:#?}");
        for line in &lines {
            assert!(
                !line.starts_with("2026-01-01"),
                "{format}: forged line {line:?}"
            );
            assert!(!line.contains('\u{1b}'), "{format}: ESC in {line:?}");
            if format == "json" {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert!(v.get("level").is_some(), "{line}");
            }
        }
    }
}
