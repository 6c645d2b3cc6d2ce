//! Stage 1, `prepare`: authenticates the client, reads and parses the body, resolves the
//! session (cache key, sticky account, message thread) into the [`Ctx`] every attempt shares.

use std::sync::Arc;

use ferry_apicompat::anthropic;
use ferry_apicompat::convert::ToolNames;
use ferry_session::{PrefixFingerprint, ResolvedKey, StickyBinding, keys};
use http::{HeaderMap, Request};
use hyper::body::Incoming;

use super::threads;
use super::usage::UsageRecord;
use crate::auth;
use crate::error::Error;
use crate::http_util::read_body;
use crate::state::AppState;
use crate::upstream;

/// What every attempt of one request shares.
pub(crate) struct Ctx {
    pub(crate) state: Arc<AppState>,
    pub(crate) request_id: String,
    pub(crate) client: auth::Client,
    pub(crate) headers: HeaderMap,
    pub(crate) req: anthropic::MessagesRequest,
    pub(crate) stream: bool,
    pub(crate) fast_mode: bool,
    pub(crate) tool_names: ToolNames,
    pub(crate) resolved: Option<ResolvedKey>,
    /// The prefix fingerprint (for the turn log's miss explanations), with a resolved key.
    pub(crate) fingerprint: Option<Arc<PrefixFingerprint>>,
    pub(crate) sticky: Option<StickyBinding>,
    /// The message thread this turn belongs to (its request already rebuilt).
    pub(crate) thread: Option<threads::ThreadTurn>,
    /// Set once the conversion's drops are counted in `ferry_dropped_fields_total`: every
    /// attempt converts again, the request is counted once.
    pub(crate) dropped_counted: std::sync::atomic::AtomicBool,
    /// The capture of this request (`[capture]` on), else `None`.
    pub(crate) capture: Option<Arc<super::capture::Recorder>>,
}

impl Ctx {
    /// The client key's id for session namespacing (empty on an open gateway).
    pub(crate) fn client_id(&self) -> &str {
        self.client.name.as_deref().unwrap_or("")
    }

    /// Claude Code's agent id (`x-claude-code-agent-id`; empty for the main agent): each
    /// agent of a session continues its own responses.
    pub(crate) fn agent_id(&self) -> &str {
        self.headers
            .get("x-claude-code-agent-id")
            .and_then(|v| v.to_str().ok())
            .map_or("", str::trim)
    }
}

pub(crate) async fn prepare(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    record: &mut UsageRecord,
) -> Result<Ctx, Error> {
    let client = auth::authenticate(&state.config.client_keys, req.headers())?;
    record.client = client.label().to_owned();
    crate::cost::check_budget(state, client.name.as_deref()).await?;
    // A copy that owns its values: a clone would keep hyper's 8 KiB read buffer (which the
    // values are slices of) alive for the whole request.
    let headers = upstream::owned_headers(req.headers());
    let target = state.capturer.is_some().then(|| {
        let path = req.uri().path_and_query().map_or("", |p| p.as_str());
        (req.method().to_string(), path.to_owned())
    });
    let body = read_body(
        req,
        state.config.server.max_body_bytes,
        state.config.server.body_read_timeout,
    )
    .await?;
    let mut parsed = anthropic::parse_request(&body).map_err(Error::Convert)?;
    if parsed.model.trim().is_empty() {
        return Err(Error::InvalidRequest("model: is required".to_owned()));
    }
    record.stream = parsed.stream.unwrap_or(false);
    record.original_model.clone_from(&parsed.model);
    if !state.serves_model(&parsed.model) {
        return Err(Error::UnknownModel {
            model: parsed.model.clone(),
        });
    }
    let hv = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client_headers = keys::ClientHeaders {
        session_id: hv(keys::SESSION_ID_HEADER),
        conversation_id: hv(keys::CONVERSATION_ID_HEADER),
        claude_code_session_id: hv(keys::CLAUDE_CODE_SESSION_HEADER),
    };
    let client_id = client.name.clone().unwrap_or_default();
    // A thread continue becomes the whole conversation before anything looks at it.
    let thread = threads::apply(state, &client_id, &mut parsed).await?;
    let capture = target.and_then(|target| {
        let name = client.name.as_deref();
        super::capture::Recorder::new(state, &record.request_id, name, target, &headers, &body)
    });
    if let (Some(c), Some(_)) = (&capture, &thread) {
        c.set_planned(&parsed);
    }
    let resolved = state
        .sessions
        .resolve_cache_key(&parsed, &client_headers, &client_id)
        .await;
    let sticky = match &resolved {
        Some(r) => state.sessions.sticky_account(&client_id, &r.key).await,
        None => None,
    };
    record.prompt_cache_key_source = resolved.as_ref().map(|r| r.source.as_str());
    // Once per request, from the chain just computed: only the tool list is hashed anew.
    let fingerprint = resolved
        .as_ref()
        .map(|r| Arc::new(PrefixFingerprint::of(&parsed, &r.chain)));
    let fast_mode = super::plan::upstream::asks_fast_mode(&parsed);
    Ok(Ctx {
        state: state.clone(),
        request_id: record.request_id.clone(),
        client,
        fast_mode,
        headers,
        stream: parsed.stream.unwrap_or(false),
        tool_names: ToolNames::from_request(&parsed),
        req: parsed,
        resolved,
        fingerprint,
        sticky,
        thread,
        dropped_counted: std::sync::atomic::AtomicBool::new(false),
        capture,
    })
}
