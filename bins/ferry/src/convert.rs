//! `ferry convert request|stream|response`: the conversions ferry does, from stdin to stdout,
//! so users can check and snapshot-test them without a server.
//!
//! - `request`: an Anthropic Messages request (JSON) → the body ferry sends upstream, byte
//!   for byte, then a newline. It goes through the server's own plan
//!   ([`ferry_server::convert_for`], [`ferry_server::upstream_request`], serialised by
//!   [`ferry_server::Upstream::body`]) for an account of the `--account` kind (`api`, the
//!   default, or `codex`) with no model mapping (the model passes through unless `--model`
//!   names the upstream model), default settings and no session yet (no prompt cache key, no
//!   continuation). Anything the conversion left out is listed on stderr.
//! - `stream`: a Responses SSE stream → the Anthropic SSE stream ferry emits. A stream that
//!   ends without a terminal event ends in an `error` event, as it would from the server.
//! - `response`: a Responses response object (JSON) → the Anthropic message JSON; a failed
//!   response gives the Anthropic error body and exit status 1.
//!
//! The client model shown in `stream` and `response` output is `--model`, else the model the
//! upstream reports.

use std::io::{Read as _, Write as _};

use anyhow::{Context as _, bail};
use ferry_accounts::{AccountConfig, ModelMapping, OPENAI_BASE_URL, Secret};
use ferry_apicompat::convert::{self, ToolNames};
use ferry_apicompat::{Dropped, anthropic, responses};
use ferry_server::SessionFacts;

/// The kind of account `ferry convert request` plans the request for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AccountArg {
    /// An API-key account (the OpenAI Responses API).
    #[default]
    Api,
    /// An OAuth account (the ChatGPT Codex backend; the Lite shape for the models that need it).
    Codex,
}

/// Longest SSE line accepted on stdin (as the server's default `max_line_bytes`).
const MAX_LINE_BYTES: usize = 40 * 1024 * 1024;

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .context("cannot read stdin")?;
    Ok(buf)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).context("cannot write stdout")?;
    out.flush().context("cannot write stdout")
}

fn report_dropped(dropped: &[Dropped]) {
    let mut err = std::io::stderr().lock();
    for d in dropped {
        let _ = writeln!(err, "ferry: dropped {} ({}): {}", d.path, d.kind, d.detail);
    }
}

/// What the gateway's session would know about the turn (`ferry convert request` flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// The upstream prompt cache key, used when the request carries none.
    pub(crate) prompt_cache_key: Option<String>,
    /// The stored upstream response the turn continues from.
    pub(crate) previous_response_id: Option<String>,
}

/// `ferry convert request`.
pub(crate) fn request(
    upstream_model: Option<&str>,
    account: AccountArg,
    session: &Session,
) -> anyhow::Result<()> {
    let body = read_stdin()?;
    let out = request_bytes(&body, upstream_model, account, session)?;
    write_stdout(&out)
}

/// The body ferry sends upstream for an account of kind `account`, then a newline; what the
/// conversion dropped is reported on stderr.
pub(crate) fn request_bytes(
    body: &[u8],
    upstream_model: Option<&str>,
    account: AccountArg,
    session: &Session,
) -> anyhow::Result<Vec<u8>> {
    let req = anthropic::parse_request(body).context("not a valid Messages request")?;
    // No credential is used: nothing is sent.
    let mut account = match account {
        AccountArg::Api => AccountConfig::api_key("convert", OPENAI_BASE_URL, Secret::new("")),
        AccountArg::Codex => AccountConfig::oauth("convert", Secret::new(""), None),
    };
    if let Some(model) = upstream_model {
        account.model_mapping = ModelMapping::from_rules([("*", model)]);
    }
    let route = account.route_model(&req.model);
    let conversion =
        ferry_server::convert_for(&req, &account, &route, ferry_server::asks_fast_mode(&req))
            .context("cannot convert the request")?;
    report_dropped(&conversion.converted.dropped);
    let mut facts = SessionFacts::without_session(&conversion, &route, req.stream.unwrap_or(false));
    facts.prompt_cache_key.clone_from(&session.prompt_cache_key);
    if let Some(id) = &session.previous_response_id {
        facts.continuation = true;
        facts.previous_response_id = Some(id.clone());
    }
    let upstream =
        ferry_server::upstream_request(conversion.converted.value, &account, &route, &facts, None)
            .context("cannot plan the upstream request")?;
    let mut out = upstream.body().context("cannot encode the request")?;
    out.push(b'\n');
    Ok(out)
}

/// `ferry convert response`. Returns false when the response is a failure (exit status 1).
pub(crate) fn response(client_model: Option<&str>) -> anyhow::Result<bool> {
    let body = read_stdin()?;
    let (out, ok) = response_bytes(&body, client_model)?;
    write_stdout(&out)?;
    Ok(ok)
}

/// The Anthropic message (or error body) as pretty JSON, and whether it is a success.
pub(crate) fn response_bytes(
    body: &[u8],
    client_model: Option<&str>,
) -> anyhow::Result<(Vec<u8>, bool)> {
    let resp: responses::Response =
        serde_json::from_slice(body).context("not a Responses response object")?;
    let model = client_model.map_or_else(|| resp.model.clone(), str::to_owned);
    let opts = convert::response::Options::new(model, ToolNames::default());
    let (value, ok) = match convert::response::convert(&resp, &opts) {
        Ok(converted) => {
            report_dropped(&converted.dropped);
            (
                serde_json::to_value(&converted.value).context("cannot encode the message")?,
                true,
            )
        }
        Err(failure) => (
            serde_json::to_value(anthropic::ErrorResponse::new(
                failure.error_kind(),
                failure.message.clone(),
            ))
            .context("cannot encode the error")?,
            false,
        ),
    };
    let mut out = serde_json::to_vec_pretty(&value).context("cannot encode the output")?;
    out.push(b'\n');
    Ok((out, ok))
}

/// `ferry convert stream`.
pub(crate) fn stream(client_model: Option<&str>) -> anyhow::Result<()> {
    let body = read_stdin()?;
    let out = stream_bytes(&body, client_model)?;
    write_stdout(&out)
}

/// The Anthropic SSE text for a Responses SSE text.
pub(crate) fn stream_bytes(body: &[u8], client_model: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut parser = ferry_sse::Parser::new(MAX_LINE_BYTES);
    let mut frames = Vec::new();
    parser
        .feed(body, &mut frames)
        .context("not a valid SSE stream")?;
    parser
        .finish(&mut frames)
        .context("not a valid SSE stream")?;

    let mut events = Vec::with_capacity(frames.len());
    for frame in &frames {
        if frame.is_done() {
            break;
        }
        let payload =
            ferry_apicompat::responses::payload_with_type(frame.event.as_deref(), &frame.data);
        match responses::StreamEvent::from_json(&payload) {
            Ok(ev) => events.push(ev),
            Err(e) => {
                let _ = writeln!(std::io::stderr().lock(), "ferry: skipped an event: {e}");
            }
        }
    }
    let model = match client_model {
        Some(m) => m.to_owned(),
        None => frames
            .iter()
            .find_map(|f| {
                let v: serde_json::Value = serde_json::from_str(&f.data).ok()?;
                v.get("response")?.get("model")?.as_str().map(str::to_owned)
            })
            .unwrap_or_default(),
    };

    let mut conv = convert::stream::StreamConverter::new(convert::stream::Options::new(
        model,
        ToolNames::default(),
    ));
    let mut out_events = Vec::new();
    for ev in &events {
        conv.on_event(ev, &mut out_events);
        if conv.is_finished() {
            break;
        }
    }
    if !conv.is_finished() {
        conv.finish(&mut out_events);
    }
    let mut out = Vec::new();
    for ev in &out_events {
        let json = serde_json::to_vec(ev).context("cannot encode an event")?;
        ferry_sse::encode_frame(ev.event_name(), &json, &mut out);
    }
    if out.is_empty() {
        bail!("the stream produced no events");
    }
    Ok(out)
}
