//! `[capture]` through the real server (docs/captures.md): which requests are captured,
//! what a capture holds (the raw upstream stream too), that no secret is in the file, and
//! the directory budget.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_accounts::{AccountConfig, Secret};
use ferry_server::CaptureFile;
use ferry_server::config::CaptureMode;
use ferry_testkit::upstream::{mount_sequence, sse_response, start, status_response};
use ferry_testkit::*;
use pretty_assertions::assert_eq;

use super::common::*;

/// A fresh, absent directory for one test's captures.
fn capture_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ferry-captures-{name}-{}-{nanos}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The capture files of `dir`, oldest first, as bytes and parsed.
fn captures(dir: &Path) -> Vec<(String, Vec<u8>, CaptureFile)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            let file = serde_json::from_slice(&bytes).unwrap();
            (n, bytes, file)
        })
        .collect()
}

/// Waits until `dir` holds `n` capture files (the writer runs after the answer).
async fn wait_for_captures(dir: &Path, n: usize) -> Vec<(String, Vec<u8>, CaptureFile)> {
    for _ in 0..200 {
        let found = captures(dir);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{n} captures were not written in time: {:?}",
        captures(dir).len()
    );
}

fn capture_config(base_url: &str, dir: &Path, mode: CaptureMode) -> ferry_server::Config {
    let mut c = config(base_url);
    c.capture.mode = mode;
    c.capture.dir = dir.to_path_buf();
    c
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["request-id"].to_str().unwrap().to_owned()
}

fn ok_stream(id: &str, text: &str) -> wiremock::ResponseTemplate {
    sse_response(sse(text_events(id, &[text], Usage::new(4, 2))))
}

#[tokio::test]
async fn errors_mode_captures_failing_requests_and_not_successful_ones() {
    let dir = capture_dir("errors");
    let upstream = start().await;
    let invalid = r#"{"error":{"message":"bad value for input","type":"invalid_request_error","code":"invalid_value"}}"#;
    let broken = r#"{"error":{"message":"the server had an error","type":"server_error"}}"#;
    let _mock = mount_sequence(
        &upstream,
        vec![
            ok_stream("resp_1", "fine"),
            status_response(400, &[], invalid),
            status_response(500, &[], broken),
            ok_stream("resp_3", "after a failover"),
        ],
    )
    .await;
    let mut c = capture_config(&upstream.uri(), &dir, CaptureMode::Errors);
    c.accounts.push(account("second", &upstream.uri()));
    let server = TestServer::start(c).await;

    let ok = server.messages(&request("hello", true)).await;
    assert_eq!(ok.status(), 200);
    let _ = ok.text().await.unwrap();
    let bad = server.messages(&request("hello", false)).await;
    assert_eq!(bad.status(), 400);
    let bad_id = request_id(&bad);
    let bad_body = bad.text().await.unwrap();
    let failover = server.messages(&request("hello", true)).await;
    assert_eq!(failover.status(), 200);
    let failover_id = request_id(&failover);
    let _ = failover.text().await.unwrap();

    let found = wait_for_captures(&dir, 2).await;
    // The successful request's capture would have been written before these.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let found_again = captures(&dir);
    assert_eq!(
        found_again.len(),
        2,
        "only the two failing requests are captured"
    );
    let mut by_id: Vec<&CaptureFile> = found.iter().map(|(_, _, f)| f).collect();
    by_id.sort_by_key(|f| f.request_id != bad_id);
    let (bad_capture, failover_capture) = (by_id[0], by_id[1]);
    assert_eq!(bad_capture.request_id, bad_id);
    assert_eq!(bad_capture.outcome, "error");
    assert_eq!(bad_capture.client_key.as_deref(), Some("alice"));
    assert_eq!(bad_capture.client_response.status, 400);
    assert_eq!(bad_capture.client_response.body, bad_body);
    let a = &bad_capture.attempts[0];
    assert_eq!(
        (a.status, a.outcome.as_str(), a.response.as_str()),
        (Some(400), "fatal", invalid)
    );
    let sent: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(sent["model"], "gpt-5.1");
    let client_body: serde_json::Value =
        serde_json::from_str(&bad_capture.client_request.body).unwrap();
    assert_eq!(client_body, request("hello", false));
    assert_eq!(bad_capture.client_request.path, "/v1/messages");

    assert_eq!(failover_capture.request_id, failover_id);
    assert_eq!(failover_capture.outcome, "error");
    assert_eq!(failover_capture.client_response.status, 200);
    let outcomes: Vec<(Option<u16>, &str)> = failover_capture
        .attempts
        .iter()
        .map(|a| (a.status, a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0].0, Some(500));
    assert_ne!(outcomes[0].1, "answered");
    assert_eq!(outcomes[1], (Some(200), "answered"));
}

#[tokio::test]
async fn all_mode_captures_the_raw_stream_and_no_secret() {
    let dir = capture_dir("all");
    let upstream = start().await;
    // The upstream echoes its API key in the answer text: the capture must not keep it.
    let echo = format!("your key is {TEST_UPSTREAM_KEY}");
    let _mock = mount_sequence(
        &upstream,
        vec![
            ok_stream("resp_s", &echo),
            ok_stream("resp_j", "a json answer"),
        ],
    )
    .await;
    let server = TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::All)).await;
    let streamed = server.messages(&request("hello", true)).await;
    assert_eq!(streamed.status(), 200);
    let streamed_id = request_id(&streamed);
    let streamed_body = streamed.text().await.unwrap();
    let json = server.messages(&request("hello", false)).await;
    assert_eq!(json.status(), 200);
    let _ = json.text().await.unwrap();

    let found = wait_for_captures(&dir, 2).await;
    for (name, bytes, file) in &found {
        let text = String::from_utf8_lossy(bytes);
        for secret in [TEST_CLIENT_KEY, TEST_UPSTREAM_KEY] {
            assert!(!text.contains(secret), "{name} holds a secret:\n{text}");
        }
        assert_eq!(file.outcome, "ok");
        for h in ["x-api-key", "authorization"] {
            assert!(!file.client_request.headers.contains_key(h), "{h}");
            assert!(!file.attempts[0].headers.contains_key(h), "{h}");
        }
        assert_eq!(
            file.client_request.headers["anthropic-version"],
            "2023-06-01"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let stream_capture = &found
        .iter()
        .find(|(_, _, f)| f.request_id == streamed_id)
        .unwrap()
        .2;
    let a = &stream_capture.attempts[0];
    assert_eq!(
        a.response_headers["content-type"], "text/event-stream",
        "{a:?}"
    );
    // The raw SSE as the upstream sent it, the key cut out by value.
    let raw = sse(text_events("resp_s", &[&echo], Usage::new(4, 2)))
        .replace(TEST_UPSTREAM_KEY, "[redacted]");
    assert_eq!(a.response, raw);
    assert_eq!(
        stream_capture
            .client_response
            .body
            .contains("event: message_start"),
        true
    );
    assert!(stream_capture.client_response.complete);
    // The client got the key (it came from the upstream's text, not from ferry), the
    // capture holds the same stream with the key cut out.
    assert_eq!(
        stream_capture.client_response.body,
        streamed_body.replace(TEST_UPSTREAM_KEY, "[redacted]")
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_oauth_token_never_reaches_a_capture() {
    let dir = capture_dir("oauth");
    let token = "oauth-access-token-5e1f0a9b7c3d2e4f";
    let upstream = start().await;
    let echo = format!("token {token} seen");
    let _mock = mount_sequence(&upstream, vec![ok_stream("resp_o", &echo)]).await;
    let mut c = capture_config(&upstream.uri(), &dir, CaptureMode::All);
    let mut a = AccountConfig::oauth("codex", Secret::new(token), None);
    a.base_url = Some(upstream.uri());
    a.chatgpt_account_id = Some("acct_123".to_owned());
    a.default_model = Some("gpt-5.1-codex".to_owned());
    c.accounts = vec![a];
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hello", false)).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    let found = wait_for_captures(&dir, 1).await;
    let (name, bytes, file) = &found[0];
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains(token), "{name} holds the token:\n{text}");
    assert!(text.contains("token [redacted] seen"), "{text}");
    let attempt = &file.attempts[0];
    assert_eq!(attempt.account_kind, "oauth");
    for h in ["authorization", "chatgpt-account-id"] {
        assert!(!attempt.headers.contains_key(h), "{h}");
    }
    assert!(
        attempt.headers.contains_key("originator"),
        "{:?}",
        attempt.headers
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_oldest_captures_go_when_the_directory_is_over_its_budget() {
    let dir = capture_dir("rotate");
    let upstream = start().await;
    let _mock = mount_sequence(
        &upstream,
        (0..4)
            .map(|i| ok_stream(&format!("resp_{i}"), "same size"))
            .collect(),
    )
    .await;
    let server = TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::All)).await;
    let mut ids = Vec::new();
    let one = server.messages(&request("hello", true)).await;
    ids.push(request_id(&one));
    let _ = one.text().await.unwrap();
    let first = wait_for_captures(&dir, 1).await;
    let size = first[0].1.len() as u64;
    server.shutdown().await.unwrap();

    // Room for two and a half captures of that size: the third written removes the first.
    let mut c = capture_config(&upstream.uri(), &dir, CaptureMode::All);
    c.capture.max_bytes = size * 5 / 2;
    let server = TestServer::start(c).await;
    for n in 2..=3 {
        let resp = server.messages(&request("hello", true)).await;
        ids.push(request_id(&resp));
        let _ = resp.text().await.unwrap();
        // One at a time, so the files' times follow the requests.
        let mut left = captures(&dir);
        for _ in 0..200 {
            if left.iter().any(|(_, _, f)| f.request_id == ids[n - 1]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            left = captures(&dir);
        }
    }
    let left: Vec<String> = captures(&dir)
        .into_iter()
        .map(|(_, _, f)| f.request_id)
        .collect();
    assert_eq!(left, ids[1..].to_vec(), "the oldest capture was deleted");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn capture_off_writes_nothing() {
    let dir = capture_dir("off");
    let upstream = start().await;
    let _mock = mount_sequence(&upstream, vec![ok_stream("resp_x", "x")]).await;
    let c = capture_config(&upstream.uri(), &dir, CaptureMode::Off);
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hello", true)).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!dir.exists());
}

#[tokio::test]
async fn errors_mode_captures_a_stream_that_ends_in_an_error_event() {
    let dir = capture_dir("stream-error");
    let upstream = start().await;
    let events = vec![
        ev_created("resp_f"),
        ev_message_added(0, "msg_1"),
        ev_content_part_added(0, "msg_1"),
        ev_text_delta(0, "msg_1", "partial answer"),
        ev_failed("resp_f", "server_error", "the model broke down"),
    ];
    let _mock = mount_sequence(&upstream, vec![sse_response(sse(events.clone()))]).await;
    let server =
        TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::Errors)).await;
    let resp = server.messages(&request("hello", true)).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("event: error"), "{body}");
    let found = wait_for_captures(&dir, 1).await;
    let file = &found[0].2;
    assert_eq!(file.outcome, "error");
    assert_eq!(file.client_response.status, 200);
    assert_eq!(file.client_response.body, body);
    let a = &file.attempts[0];
    assert_eq!((a.status, a.outcome.as_str()), (Some(200), "answered"));
    assert_eq!(a.response, sse(events));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn long_bodies_are_cut_at_max_body_bytes_and_marked() {
    let dir = capture_dir("truncate");
    let upstream = start().await;
    let long = "word ".repeat(1000);
    let _mock = mount_sequence(&upstream, vec![ok_stream("resp_l", &long)]).await;
    let mut c = capture_config(&upstream.uri(), &dir, CaptureMode::All);
    c.capture.max_body_bytes = 1024;
    let server = TestServer::start(c).await;
    let resp = server.messages(&request("hello", true)).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let found = wait_for_captures(&dir, 1).await;
    let file = &found[0].2;
    let a = &file.attempts[0];
    assert_eq!((a.response.len(), a.response_truncated), (1024, true));
    assert!(!a.body_truncated, "the upstream request is short");
    let client = &file.client_response;
    assert_eq!((client.body.len(), client.body_truncated), (1024, true));
    assert_eq!(client.body, body[..1024]);
    assert!(client.complete);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_recorded_as_the_attempts_response_error() {
    use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
    let dir = capture_dir("cut");
    let sent = sse(vec![
        ev_created("resp_c"),
        ev_message_added(0, "m"),
        ev_text_delta(0, "m", "so far"),
    ]);
    let upstream =
        ScriptedUpstream::start(vec![Script::sse(vec![Step::Send(sent.clone()), Step::Cut])]).await;
    let server =
        TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::Errors)).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains("event: error"), "{body}");
    let found = wait_for_captures(&dir, 1).await;
    let file = &found[0].2;
    assert_eq!(file.outcome, "error");
    let a = &file.attempts[0];
    assert_eq!(a.response, sent);
    assert!(a.response_error.is_some(), "{a:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_thread_continue_records_the_request_ferry_rebuilt() {
    let dir = capture_dir("thread");
    let upstream = start().await;
    let mut evs = vec![ev_created("resp_t1")];
    evs.extend(function_call_events(
        0,
        "fc_1",
        "call_1",
        "Bash",
        &[r#"{"command":"ls"}"#],
    ));
    evs.push(ev_completed_with_output(
        "resp_t1",
        vec![function_call_item(
            "fc_1",
            "call_1",
            "Bash",
            r#"{"command":"ls"}"#,
            "completed",
        )],
        Usage::new(40, 8),
    ));
    let _mock = mount_sequence(
        &upstream,
        vec![sse_response(sse(evs)), ok_stream("resp_t2", "done")],
    )
    .await;
    let server = TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::All)).await;
    let mut create = request_with_tools("list the files", false);
    create["system"] = serde_json::json!("be careful");
    create["thread"] = serde_json::json!({"type": "create"});
    let first = json_body(server.messages(&create).await).await;
    let tool_use = first["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()["id"]
        .clone();
    let next = serde_json::json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "thread": {"type": "continue", "previous_message_id": first["id"]},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use, "content": "a.txt"}
        ]}],
    });
    let resp = server.messages(&next).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    let found = wait_for_captures(&dir, 2).await;
    let (created, continued) = (&found[0].2, &found[1].2);
    // A create is the client's request without its `thread` field.
    let mut without_thread = create.clone();
    without_thread.as_object_mut().unwrap().remove("thread");
    assert_eq!(
        created.client_request.planned.as_ref(),
        Some(&without_thread)
    );
    let planned = continued.client_request.planned.as_ref().unwrap();
    assert_eq!(planned["system"], "be careful");
    assert_eq!(planned["tools"][0]["name"], "Bash");
    assert_eq!(planned["messages"].as_array().unwrap().len(), 3);
    let sent: serde_json::Value = serde_json::from_str(&continued.client_request.body).unwrap();
    assert_eq!(sent, next);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_still_gets_a_capture() {
    use ferry_testkit::scripted::{Script, ScriptedUpstream, Step};
    let dir = capture_dir("left");
    let answer = sse(text_events("resp_late", &["late"], Usage::new(4, 1)));
    let upstream = ScriptedUpstream::start(vec![Script::sse(vec![
        Step::Sleep(Duration::from_millis(400)),
        Step::Send(answer.clone()),
    ])])
    .await;
    let server = TestServer::start(capture_config(&upstream.uri(), &dir, CaptureMode::All)).await;
    let gone = server
        .post("/v1/messages")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&request("hello", false)).unwrap())
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up first");
    let found = wait_for_captures(&dir, 1).await;
    let file = &found[0].2;
    assert_eq!(file.client_response.status, 0);
    assert!(!file.client_response.complete);
    assert_eq!(
        file.outcome, "ok",
        "a client that left is no error by itself"
    );
    let a = &file.attempts[0];
    assert_eq!((a.status, a.outcome.as_str()), (Some(200), "client_left"));
    assert_eq!(a.response, answer);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_capture_dir_ferry_cannot_create_keeps_it_from_starting() {
    let dir = capture_dir("blocked");
    std::fs::write(&dir, b"a file, not a directory").unwrap();
    let mut c = capture_config(
        "http://127.0.0.1:9",
        &dir.join("captures"),
        CaptureMode::All,
    );
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    let e = ferry_server::bind(c).await.err().expect("bind refuses");
    assert!(e.to_string().contains("cannot create capture.dir"), "{e}");
    let _ = std::fs::remove_file(&dir);
}
