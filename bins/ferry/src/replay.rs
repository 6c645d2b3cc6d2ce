//! `ferry replay FILE`: runs a capture (docs/captures.md) through this ferry's converters
//! again and compares the result with what was recorded, to check an upgrade against real
//! traffic.
//!
//! - The request: for each recorded attempt, the client's request is planned again for the
//!   attempt's account with the session facts the capture recorded, through the server's own
//!   plan ([`ferry_server::convert_for`], [`ferry_server::upstream_request`]), and compared
//!   with the body that was sent.
//! - The answer: the answered attempt's raw upstream response goes through the server's
//!   response converters ([`ferry_server::replay_answer`]) and is compared with what the
//!   client got.
//!
//! Both sides are parsed before the comparison (JSON objects with their keys sorted, SSE
//! frame by frame), so key order, whitespace and chunking never make a difference, and
//! keep-alive `ping` events (their timing varies) are left out. Exit status: 0 when
//! everything compared is identical, 1 on a difference, 2 when the capture cannot be
//! replayed. `--send` plans the request for a configured account instead, sends it, and
//! prints the upstream's answer converted as a client would get it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ferry_accounts::{AccountConfig, AccountKind, ModelMapping, OPENAI_BASE_URL, Secret};
use ferry_apicompat::anthropic;
use ferry_server::{CaptureFile, CapturedAttempt, SessionFacts};
use serde_json::Value;

/// Longest SSE line accepted in a capture (as the server's default `max_line_bytes`).
const MAX_LINE_BYTES: usize = 40 * 1024 * 1024;

/// What `ferry replay` was asked to do.
pub(crate) struct Args<'a> {
    pub(crate) file: &'a Path,
    /// The gateway's config: its accounts (model mapping, request shape) and settings.
    pub(crate) config: Option<&'a ferry_server::Config>,
    /// Send the request to this configured account instead of comparing.
    pub(crate) send: Option<&'a str>,
}

/// `ferry replay`: the report on stdout; exit 0 identical, 1 different, 2 when the
/// capture (or the config) cannot be used.
pub(crate) fn command(
    file: &Path,
    config: Option<&Path>,
    send: bool,
    account: Option<&str>,
    env: &BTreeMap<String, String>,
) -> ExitCode {
    let trouble = |e: &dyn std::fmt::Display| {
        let _ = writeln!(std::io::stderr().lock(), "ferry: {e}");
        ExitCode::from(2)
    };
    let loaded = match config {
        Some(path) => match crate::config::load_file(Some(path), None, env) {
            Ok(l) => Some(l.config),
            Err(problems) => return trouble(&format!("{}: {problems}", path.display())),
        },
        None => None,
    };
    let recorded_account = || -> Option<String> {
        let text = std::fs::read(file).ok()?;
        let capture: CaptureFile = serde_json::from_slice(&text).ok()?;
        capture.attempts.last().map(|a| a.account.clone())
    };
    let send_to = match (send, account) {
        (false, _) => None,
        (true, Some(a)) => Some(a.to_owned()),
        (true, None) => match recorded_account() {
            Some(a) => Some(a),
            None => return trouble(&"--send: the capture names no account; give --account"),
        },
    };
    let args = Args {
        file,
        config: loaded.as_ref(),
        send: send_to.as_deref(),
    };
    let mut out = String::new();
    let result = run(&args, &mut out);
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => trouble(&format!("{e:#}")),
    }
}

/// Runs the replay; the report goes to `out`. `Ok(true)`: identical (or, with `--send`, a
/// 2xx answer that converted).
pub(crate) fn run(args: &Args<'_>, out: &mut String) -> anyhow::Result<bool> {
    let text =
        std::fs::read(args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let capture: CaptureFile = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a ferry capture", args.file.display()))?;
    if capture.version != ferry_server::CAPTURE_VERSION {
        bail!(
            "capture version {} is not supported (this ferry reads version {})",
            capture.version,
            ferry_server::CAPTURE_VERSION
        );
    }
    let req = client_request(&capture)?;
    match args.send {
        Some(account) => send(&capture, &req, args.config, account, out),
        None => Ok(compare(&capture, &req, args.config, out)),
    }
}

/// The request ferry converted: the thread's rebuilt request, else the client's body.
fn client_request(capture: &CaptureFile) -> anyhow::Result<anthropic::MessagesRequest> {
    let r = &capture.client_request;
    if let Some(planned) = &r.planned {
        let bytes = serde_json::to_vec(planned).context("cannot encode the planned request")?;
        return anthropic::parse_request(&bytes).context("the planned request does not parse");
    }
    if r.body_truncated {
        bail!("the client request was cut at capture.max_body_bytes: it cannot be replayed");
    }
    anthropic::parse_request(r.body.as_bytes()).context("the client request does not parse")
}

/// The account an attempt is planned for: the configured one of that name, else one of the
/// recorded kind that sends every model to the recorded upstream model.
fn account_for(attempt: &CapturedAttempt, config: Option<&ferry_server::Config>) -> AccountConfig {
    if let Some(a) = config.and_then(|c| c.accounts.iter().find(|a| a.name == attempt.account)) {
        return a.clone();
    }
    let mut account = if attempt.account_kind == AccountKind::Oauth.as_str() {
        AccountConfig::oauth(attempt.account.clone(), Secret::new(""), None)
    } else {
        AccountConfig::api_key(attempt.account.clone(), OPENAI_BASE_URL, Secret::new(""))
    };
    account.model_mapping = ModelMapping::from_rules([("*", attempt.upstream_model.as_str())]);
    account
}

/// The body ferry plans for `account` with `facts` filled in by `set_facts`.
fn plan(
    req: &anthropic::MessagesRequest,
    account: &AccountConfig,
    config: Option<&ferry_server::Config>,
    set_facts: impl FnOnce(&mut SessionFacts),
) -> anyhow::Result<Vec<u8>> {
    let route = account.route_model(&req.model);
    let conversion =
        ferry_server::convert_for(req, account, &route, ferry_server::asks_fast_mode(req))
            .context("cannot convert the request")?;
    let mut facts = SessionFacts::without_session(&conversion, &route, req.stream.unwrap_or(false));
    set_facts(&mut facts);
    let template = config.and_then(|c| c.gateway.forced_codex_instructions_template.as_deref());
    let upstream = ferry_server::upstream_request(
        conversion.converted.value,
        account,
        &route,
        &facts,
        template,
    )
    .context("cannot plan the upstream request")?;
    upstream.body().context("cannot encode the request")
}

/// Compares every part of the capture this ferry can redo; true when all are identical.
fn compare(
    capture: &CaptureFile,
    req: &anthropic::MessagesRequest,
    config: Option<&ferry_server::Config>,
    out: &mut String,
) -> bool {
    let mut same = true;
    for (n, attempt) in capture.attempts.iter().enumerate() {
        let what = format!("request of attempt {} (account {})", n + 1, attempt.account);
        if attempt.body_truncated {
            let _ = writeln!(out, "{what}: not compared (cut at capture.max_body_bytes)");
            continue;
        }
        let account = account_for(attempt, config);
        let recorded = &attempt.facts;
        let replanned = plan(req, &account, config, |f| {
            f.client_stream = recorded.client_stream;
            f.continuation = recorded.continuation;
            f.previous_response_id
                .clone_from(&recorded.previous_response_id);
            f.todo_guard = recorded.todo_guard;
            f.prompt_cache_key.clone_from(&recorded.prompt_cache_key);
            f.strip_reasoning = recorded.strip_reasoning;
        });
        let replanned = match replanned {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(e) => format!("error: {e:#}"),
        };
        same &= report(
            out,
            &what,
            &json_text(&attempt.body),
            &json_text(&replanned),
        );
    }
    if capture.attempts.is_empty() {
        let _ = writeln!(out, "request: not compared (no upstream attempt was made)");
    }
    same &= compare_answer(capture, req, out);
    same
}

/// Compares the client's answer with the answered attempt's response converted again.
fn compare_answer(
    capture: &CaptureFile,
    req: &anthropic::MessagesRequest,
    out: &mut String,
) -> bool {
    let client = &capture.client_response;
    let answered = capture
        .attempts
        .iter()
        .rfind(|a| a.outcome == "answered" && a.status.is_some_and(|s| (200..300).contains(&s)));
    let skip = if !client.complete {
        Some("the client left before the end".to_owned())
    } else if client.status != 200 {
        Some(format!("the client got status {}", client.status))
    } else if client.body_truncated {
        Some("the client's answer was cut at capture.max_body_bytes".to_owned())
    } else if answered.is_some_and(|a| a.response_truncated) {
        Some("the upstream's answer was cut at capture.max_body_bytes".to_owned())
    } else {
        answered
            .and_then(|a| a.response_error.as_deref())
            .map(|e| format!("the upstream's answer broke off: {e}"))
    };
    let (Some(attempt), None) = (answered, skip.as_ref()) else {
        let why = skip.unwrap_or_else(|| "no attempt got an upstream answer".to_owned());
        let _ = writeln!(out, "answer: not compared ({why})");
        return true;
    };
    let replayed = answer(
        req,
        &capture.request_id,
        attempt,
        attempt.response.as_bytes(),
    );
    report(
        out,
        "answer",
        &answer_text(&client.body),
        &answer_text(&replayed),
    )
}

/// What the client gets for the upstream answer `raw` to `attempt`'s request (or the
/// error that keeps it from a 200).
fn answer(
    req: &anthropic::MessagesRequest,
    request_id: &str,
    attempt: &CapturedAttempt,
    raw: &[u8],
) -> String {
    let asked_stream = serde_json::from_str::<Value>(&attempt.body)
        .ok()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        .unwrap_or(false);
    let upstream_json = !asked_stream && is_json(&attempt.response_headers);
    match ferry_server::replay_answer(req, request_id, upstream_json, raw, MAX_LINE_BYTES) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("error: {e}"),
    }
}

fn is_json(headers: &BTreeMap<String, String>) -> bool {
    headers.get("content-type").is_some_and(|v| {
        let t = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        t == "application/json" || t.ends_with("+json")
    })
}

/// Writes `identical` or a unified diff of `recorded` against `replayed`; true when
/// identical.
fn report(out: &mut String, what: &str, recorded: &str, replayed: &str) -> bool {
    if recorded == replayed {
        let _ = writeln!(out, "{what}: identical");
        return true;
    }
    let _ = writeln!(out, "{what}: differs");
    let diff = similar::TextDiff::from_lines(recorded, replayed);
    let _ = write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header("recorded", "replayed")
    );
    false
}

/// JSON with sorted keys, pretty-printed (the text itself when it is not JSON).
fn json_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => pretty(&sorted(v)),
        Err(_) => ensure_newline(text.to_owned()),
    }
}

/// An answer for comparison: JSON as [`json_text`]; an SSE stream frame by frame, each as
/// its event name and its data as [`json_text`], `ping` frames left out.
fn answer_text(text: &str) -> String {
    if serde_json::from_str::<Value>(text).is_ok() {
        return json_text(text);
    }
    let mut parser = ferry_sse::Parser::new(MAX_LINE_BYTES);
    let mut frames = Vec::new();
    if parser.feed(text.as_bytes(), &mut frames).is_err() || parser.finish(&mut frames).is_err() {
        return ensure_newline(text.to_owned());
    }
    let mut out = String::new();
    for f in &frames {
        let name = f.event.as_deref().unwrap_or("message");
        if name == "ping" {
            continue;
        }
        let _ = writeln!(out, "event: {name}");
        out.push_str(&json_text(&f.data));
    }
    out
}

fn ensure_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn pretty(v: &Value) -> String {
    ensure_newline(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `v` with every object's keys in order, whatever the map type keeps.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// `--send`: the request planned for the configured account `name` (no session: no
/// continuation), sent, and the upstream's answer converted as the client would get it.
fn send(
    capture: &CaptureFile,
    req: &anthropic::MessagesRequest,
    config: Option<&ferry_server::Config>,
    name: &str,
    out: &mut String,
) -> anyhow::Result<bool> {
    let Some(config) = config else {
        bail!("--send needs --config: the account to send to is a configured one");
    };
    let Some(account) = config.accounts.iter().find(|a| a.name == name) else {
        bail!("the config has no account named {name:?}");
    };
    if account.base_url.as_deref() == Some(ferry_server::SIMULATED_BASE_URL) {
        bail!(
            "{name:?} is the built-in simulated upstream, which runs only inside `ferry serve`: start `ferry sim-upstream` and point an api_key account at it"
        );
    }
    if account.kind != AccountKind::ApiKey {
        bail!(
            "--send sends to api_key accounts only; {name:?} is {}",
            account.kind.as_str()
        );
    }
    let recorded = capture
        .attempts
        .last()
        .map(|a| a.facts.clone())
        .unwrap_or_default();
    let body = plan(req, account, Some(config), |f| {
        f.prompt_cache_key = recorded.prompt_cache_key;
    })?;
    let headers = client_headers(capture);
    let token = account.api_key.clone().unwrap_or_else(|| Secret::new(""));
    let mut upstream_headers =
        ferry_accounts::build_upstream_headers(&ferry_accounts::UpstreamHeaderInput {
            kind: account.kind,
            token: &token,
            client_headers: &headers,
            chatgpt_account_id: None,
            session_id: None,
            turn_state: None,
            force_codex_cli: false,
            codex_client_version: None,
            responses_lite: false,
        })
        .context("cannot build the upstream headers")?;
    let asked_stream = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        .unwrap_or(false);
    if !asked_stream {
        upstream_headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
    }
    let url = ferry_accounts::responses_url(account);
    let (status, response_headers, raw) = post(&url, upstream_headers, body)?;
    let _ = writeln!(out, "sent to {name} ({url}): status {status}");
    if !(200..300).contains(&status) {
        let _ = writeln!(out, "{}", String::from_utf8_lossy(&raw));
        return Ok(false);
    }
    let upstream_json = !asked_stream && is_json(&response_headers);
    match ferry_server::replay_answer(
        req,
        &capture.request_id,
        upstream_json,
        &raw,
        MAX_LINE_BYTES,
    ) {
        Ok(bytes) => {
            out.push_str(&ensure_newline(
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
            Ok(true)
        }
        Err(e) => {
            let _ = writeln!(out, "the answer does not convert: {e}");
            Ok(false)
        }
    }
}

/// The client's recorded headers as a header map (credentials were never recorded).
fn client_headers(capture: &CaptureFile) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &capture.client_request.headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    headers
}

/// POSTs `body` and reads the whole answer.
fn post(
    url: &str,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> anyhow::Result<(u16, BTreeMap<String, String>, Vec<u8>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot build the HTTP client")?;
        let resp = client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot send to {url}"))?;
        let status = resp.status().as_u16();
        let mut response_headers = BTreeMap::new();
        for (k, v) in resp.headers() {
            response_headers.insert(
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
        let raw = resp.bytes().await.context("cannot read the answer")?;
        Ok((status, response_headers, raw.to_vec()))
    })
}
