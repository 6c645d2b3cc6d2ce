//! `POST /v1/messages`: the whole pipeline for one request.
//!
//! parse → session key → per attempt: pick an account ([`ferry_accounts::Pool`]) → map the
//! model → convert → continuation, todo guard and cache key ([`ferry_session`]) → OAuth
//! transform → service-tier policy → credential and headers → send (streamed for a streaming
//! client or an OAuth account, else as one JSON answer) → stream to the client, or convert
//! (or accumulate) into one JSON message.
//!
//! Failover happens only before the client got a byte: upstream error statuses, transport
//! errors, and streams that fail or break before the first content block. Response headers
//! are sent only once the first content (or a keep-alive ping, or the whole answer) is
//! ready, so everything before that can still become a clean JSON error or another attempt.

pub(crate) mod events;
pub(crate) mod headers;
pub(crate) mod stream;
pub(crate) mod threads;
pub(crate) mod upstream;
pub(crate) mod usage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferry_accounts::{AccountKind, Disposition, FailoverReason, Lease, Selection};
use ferry_apicompat::convert::{self, FailureKind, ToolNames, UpstreamFailure};
use ferry_apicompat::{anthropic, responses};
use ferry_session::{MissFacts, ResolvedKey, SessionRef, StickyBinding, keys};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::time::Instant;

use self::events::{EventSource, Fault, Pulled};
use self::stream::{Live, MessageStream, encode_events};
use self::upstream::{HttpRequest, UpstreamReply};
pub(crate) use self::usage::UsageLog;
use self::usage::{Outcome, UsageRecord};
use crate::auth;
use crate::body::ResponseBody;
use crate::error::Error;
use crate::routes::{error_response, json_bytes_response, read_body};
use crate::state::AppState;

/// How long reading an upstream error body may take.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A future that finishes the bookkeeping of a request (session bindings).
pub(crate) type Bookkeeping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Handles one `POST …/v1/messages`. Every outcome, error or not, writes one usage record.
pub(crate) async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    request_id: String,
    log: UsageLog,
) -> Result<Response<ResponseBody>, Error> {
    let mut record = UsageRecord::new(&request_id, "-", false, "");
    record.log = Some(log);
    // From here on, the record is written whatever happens, also if hyper drops this
    // future because the client left (see `UsageRecord`).
    record.arm(&state);
    match prepare(&state, req, &mut record).await {
        Ok(ctx) => Ok(run(&Arc::new(ctx), record).await),
        Err(e) => {
            record.finish(&state, e.status().as_u16(), &Outcome::Error(e.kind()));
            Err(e)
        }
    }
}

/// What every attempt of one request shares.
struct Ctx {
    state: Arc<AppState>,
    request_id: String,
    client: auth::Client,
    headers: HeaderMap,
    req: anthropic::MessagesRequest,
    stream: bool,
    fast_mode: bool,
    tool_names: ToolNames,
    resolved: Option<ResolvedKey>,
    sticky: Option<StickyBinding>,
    /// The message thread this turn belongs to (its request already rebuilt).
    thread: Option<threads::ThreadTurn>,
    /// Set once the conversion's drops are counted in `ferry_dropped_fields_total`: every
    /// attempt converts again, the request is counted once.
    dropped_counted: std::sync::atomic::AtomicBool,
}

impl Ctx {
    /// The client key's id for session namespacing (empty on an open gateway).
    fn client_id(&self) -> &str {
        self.client.name.as_deref().unwrap_or("")
    }

    /// Claude Code's agent id (`x-claude-code-agent-id`; empty for the main agent): each
    /// agent of a session continues its own responses.
    fn agent_id(&self) -> &str {
        self.headers
            .get("x-claude-code-agent-id")
            .and_then(|v| v.to_str().ok())
            .map_or("", str::trim)
    }
}

async fn prepare(
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
    let body = read_body(
        req,
        state.config.server.max_body_bytes,
        state.config.server.body_read_timeout,
    )
    .await?;
    let mut parsed =
        anthropic::parse_request(&body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
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
    let resolved = state
        .sessions
        .resolve_cache_key(&parsed, &client_headers, &client_id)
        .await;
    let sticky = match &resolved {
        Some(r) => state.sessions.sticky_account(&client_id, &r.key).await,
        None => None,
    };
    record.prompt_cache_key_source = resolved.as_ref().map(|r| r.source.as_str());
    // Anthropic's fast mode is `speed: "fast"` in the body; the beta header only lets the
    // client send the field, so the header with `speed: "standard"` (or none) is standard.
    let fast_mode = parsed.extra.get("speed").and_then(Value::as_str) == Some("fast");
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
        sticky,
        thread,
        dropped_counted: std::sync::atomic::AtomicBool::new(false),
    })
}

/// What one attempt on one account ended with.
enum Attempt {
    /// The client has its response (or its stream has started).
    Done(Response<ResponseBody>),
    /// Try the same account again after a pause (pool mode; OAuth 401 with a refresh).
    Retry {
        after: Duration,
        lease: Lease,
        reason: &'static str,
    },
    /// The upstream rejected `previous_response_id`: replay the full history once.
    ContinuationReset(Lease),
    /// The upstream rejected the replayed encrypted reasoning (`invalid_encrypted_content`,
    /// e.g. signed under another account): send the full history once more without it.
    ReasoningReset(Lease),
    /// Try another account.
    Failover { error: Error, reason: &'static str },
    /// This account does not serve the model; try another without counting a switch.
    Skip,
    /// Answer the client with this error.
    Fatal(Error),
}

/// The attempt loop: account selection, same-account retries and failover, bounded by
/// `gateway.max_account_switches` (one switch during an OAuth 429 storm).
async fn run(ctx: &Arc<Ctx>, mut record: UsageRecord) -> Response<ResponseBody> {
    let state = &ctx.state;
    let pool = &state.pool;
    let max_switches = state.config.gateway.max_account_switches;
    let preferred = ctx.sticky.as_ref().map(|s| s.account.clone());
    let mut excluded: Vec<String> = Vec::new();
    let mut switches = 0u32;
    let mut last_error: Option<Error> = None;
    // Why the last account was left; counted once another account actually takes over.
    let mut pending_failover: Option<&'static str> = None;
    let mut reset = false;
    // Set after an `invalid_encrypted_content` rejection: at most once per request.
    let mut strip_reasoning = false;
    let error = loop {
        let selection = Selection {
            preferred: preferred.as_deref(),
            exclude: &excluded,
        };
        let lease = match pool.acquire(&selection).await {
            Ok(lease) => lease,
            Err(e) => break last_error.take().unwrap_or_else(|| accounts_error(&e)),
        };
        if let Some(reason) = pending_failover.take() {
            state.metrics.failovers_total.inc([reason]);
            record.failovers += 1;
        }
        let account = lease.name().to_owned();
        let mut lease = Some(lease);
        let mut same_account_retries = 0u32;
        let ended = loop {
            let Some(l) = lease.take() else {
                break Attempt::Fatal(Error::Internal("account lease lost".to_owned()));
            };
            record.account.clone_from(&account);
            let replay = Replay {
                reset,
                strip_reasoning,
            };
            match attempt(ctx, l, &mut record, replay, same_account_retries).await {
                Attempt::Retry {
                    after,
                    lease: l,
                    reason,
                } => {
                    state.metrics.failovers_total.inc([reason]);
                    same_account_retries += 1;
                    tokio::time::sleep(after).await;
                    lease = Some(l);
                }
                Attempt::ContinuationReset(l) if !reset => {
                    reset = true;
                    lease = Some(l);
                }
                Attempt::ReasoningReset(l) if !strip_reasoning => {
                    // The stored chain may hold the rejected reasoning too: no continuation.
                    reset = true;
                    strip_reasoning = true;
                    lease = Some(l);
                }
                other => break other,
            }
        };
        match ended {
            Attempt::Done(resp) => return resp,
            Attempt::Fatal(e) => break e,
            Attempt::Skip => excluded.push(account),
            Attempt::Failover { error, reason } => {
                pending_failover = Some(reason);
                tracing::info!(target: "ferry::failover", request_id = %ctx.request_id, account = %account, reason, error = %error, "failing over");
                if let Some(r) = &ctx.resolved {
                    state
                        .sessions
                        .clear_sticky_account_if(ctx.client_id(), &r.key, &account)
                        .await;
                }
                excluded.push(account);
                last_error = Some(error);
                switches += 1;
                let budget = if reason == "rate_limited" && pool.in_rate_limit_storm() {
                    max_switches.min(1)
                } else {
                    max_switches
                };
                if switches > budget {
                    break last_error
                        .take()
                        .unwrap_or_else(|| Error::Internal("no error".into()));
                }
            }
            Attempt::Retry { .. } | Attempt::ContinuationReset(_) | Attempt::ReasoningReset(_) => {
                break Error::Internal("unexpected retry state".to_owned());
            }
        }
    };
    record.finish(
        state,
        error.status().as_u16(),
        &Outcome::Error(error.kind()),
    );
    error_response(&error)
}

/// The error for a pool that has no account to offer.
fn accounts_error(e: &ferry_accounts::AccountsError) -> Error {
    match e {
        ferry_accounts::AccountsError::AllUnavailable { kind, retry_after } => Error::NoAccount {
            rate_limited: *kind == ferry_accounts::Unavailable::RateLimited,
            retry_after: *retry_after,
            message: match kind {
                ferry_accounts::Unavailable::RateLimited => {
                    "every upstream account is rate limited; retry later".to_owned()
                }
                ferry_accounts::Unavailable::Overloaded => {
                    "every upstream account is busy or cooling down; retry later".to_owned()
                }
                _ => "no upstream account is available".to_owned(),
            },
        },
        ferry_accounts::AccountsError::NoAccounts => Error::NoAccount {
            rate_limited: false,
            retry_after: None,
            message: "no upstream accounts are configured".to_owned(),
        },
        other => Error::Internal(other.to_string()),
    }
}

/// How an attempt rebuilds the request after an upstream rejected part of it.
#[derive(Debug, Clone, Copy)]
struct Replay {
    /// Send the full history, without `previous_response_id`.
    reset: bool,
    /// Leave out the replayed reasoning items (their encrypted content was rejected).
    strip_reasoning: bool,
}

/// The request as built for one account.
struct Built {
    /// The JSON body to send.
    body: Vec<u8>,
    /// `service_tier` as sent (after the account's policy).
    service_tier: Option<String>,
    /// `reasoning.effort` as sent.
    reasoning_effort: Option<String>,
    upstream_model: String,
    billing_model: String,
    /// `previous_response_id` was attached.
    continued: bool,
    /// Continuation may be used on this account and model (bind the response id after).
    continuation: bool,
    /// The prompt cache key used for the upstream session (applies to this model).
    cache_key: Option<String>,
    dropped: Vec<&'static str>,
    /// Reasoning items replayed in `input` (encrypted content the upstream may reject).
    reasoning_items: usize,
    /// The upstream was asked to stream (else: one JSON body).
    upstream_stream: bool,
}

/// Model mapping, conversion, session state, OAuth transform and service-tier policy.
async fn build(ctx: &Ctx, lease: &Lease, replay: Replay) -> Result<Built, Attempt> {
    let reset = replay.reset;
    let cfg = lease.config();
    let route = cfg.route_model(&ctx.req.model);
    if cfg.kind != AccountKind::Simulated && is_unmapped(&route.upstream) {
        return Err(Attempt::Skip);
    }
    // Copied only when a model suffix changes it (the body can be large).
    let req: std::borrow::Cow<'_, anthropic::MessagesRequest> = match route
        .suffix_effort
        .and_then(ferry_accounts::anthropic_effort_for_suffix)
    {
        Some(effort) => {
            let mut req = ctx.req.clone();
            apply_suffix_effort(&mut req, effort);
            std::borrow::Cow::Owned(req)
        }
        None => std::borrow::Cow::Borrowed(&ctx.req),
    };
    let mut opts = convert::request::Options::new().with_model(route.upstream.clone());
    if ctx.fast_mode || route.fast {
        opts = opts.with_service_tier("priority");
    }
    let converted = convert::request::convert(&req, &opts)
        .map_err(|e| Attempt::Fatal(Error::InvalidRequest(e.to_string())))?;
    if !ctx
        .dropped_counted
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        for d in &converted.dropped {
            ctx.state.metrics.dropped_total.inc([d.kind]);
        }
    }
    let mut dropped: Vec<&'static str> = converted.dropped.iter().map(|d| d.kind).collect();
    dropped.sort_unstable();
    dropped.dedup();
    for d in &converted.dropped {
        tracing::debug!(target: "ferry::convert", request_id = %ctx.request_id, path = %d.path, kind = d.kind, detail = %d.detail, "dropped in conversion");
    }
    let mut body: responses::Request = converted.value;
    if replay.strip_reasoning {
        let before = body.input.len();
        body.input
            .retain(|item| !matches!(item, responses::InputItem::Reasoning(_)));
        if body.input.len() < before {
            ctx.state.metrics.dropped_total.inc(["rejected_reasoning"]);
            dropped.push("rejected_reasoning");
        }
    }
    let reasoning_items = body
        .input
        .iter()
        .filter(|item| matches!(item, responses::InputItem::Reasoning(_)))
        .count();
    crate::models::clamp_effort(&mut body, &req, cfg.model_spec(&route.upstream).as_ref());
    let oauth = cfg.kind == AccountKind::Oauth;
    // A non-streaming client needs the whole answer before it gets a byte, so the upstream
    // is asked for it as one JSON body: one parse instead of one per event. OAuth (Codex)
    // upstreams only stream.
    let upstream_stream = ctx.stream || oauth;
    body.stream = Some(upstream_stream);

    let sessions = &ctx.state.sessions;
    let applies = ctx
        .resolved
        .as_ref()
        .filter(|r| r.applies_to(&route.family));
    let continuation = ferry_session::continuation_enabled(
        cfg.kind != AccountKind::Oauth,
        cfg.continuation,
        &route.family,
    ) && applies.is_some();
    if continuation {
        // The upstream continues only from stored responses (`store: false` otherwise).
        body.store = Some(true);
    }
    let mut continued = false;
    if continuation
        && !reset
        && let Some(r) = applies
    {
        let session =
            SessionRef::new(lease.name(), ctx.client_id(), &r.key).with_agent(ctx.agent_id());
        // A thread knows exactly which upstream response its last turn got.
        let from_thread = ctx
            .thread
            .as_ref()
            .and_then(threads::ThreadTurn::upstream)
            .filter(|u| u.account == lease.name())
            .map(|u| u.response_id.clone());
        let prev = match from_thread {
            Some(id) => Some(id),
            None => sessions.previous_response_id(&session, &r.chain).await,
        };
        if let Some(prev) = prev {
            body.previous_response_id = Some(prev);
            ferry_session::trim_to_latest_turn(&mut body.input);
            continued = true;
        }
    }
    // A continuation's upstream conversation already holds the guard (its first turn was
    // sent in full): adding it again would repeat it in every delta.
    if !continued
        && sessions.config().todo_guard
        && keys::should_auto_inject(&route.family)
        && ferry_session::wants_todo_guard(&req)
    {
        ferry_session::insert_todo_guard(&mut body.input);
    }
    if let Some(r) = applies
        && body
            .prompt_cache_key
            .as_deref()
            .is_none_or(|k| k.trim().is_empty())
    {
        body.prompt_cache_key = Some(keys::upstream_cache_key(ctx.client_id(), &r.key));
    }
    let mut upstream_model = route.upstream.clone();
    let mut cache_key = applies.map(|r| r.key.clone());
    let policy = cfg.service_tier_policy;
    let blocked =
        |e: ferry_accounts::AccountsError| Attempt::Fatal(Error::PolicyBlocked(e.to_string()));
    let serialise_failed = |e: serde_json::Error| {
        Attempt::Fatal(Error::Internal(format!(
            "cannot serialise the upstream request: {e}"
        )))
    };
    let (bytes, service_tier, reasoning_effort) = if oauth {
        // The Codex transform rewrites the body as a JSON map.
        let Ok(Value::Object(mut map)) = serde_json::to_value(&body) else {
            return Err(Attempt::Fatal(Error::Internal(
                "cannot serialise the upstream request".into(),
            )));
        };
        let template = ctx
            .state
            .config
            .gateway
            .forced_codex_instructions_template
            .as_deref();
        let outcome = ferry_accounts::apply_codex_transform(
            &mut map,
            &ferry_accounts::CodexTransformOptions {
                forced_instructions_template: template,
                original_model: &route.original,
                normalized_model: &route.requested,
                billing_model: &route.billing,
                responses_lite: cfg.responses_lite(&route.upstream),
            },
        )
        .map_err(|e| match e {
            // The request asks for something the model's shape cannot carry: the client's to fix.
            ferry_accounts::AccountsError::LiteUnsupportedTool { .. } => {
                Attempt::Fatal(Error::InvalidRequest(e.to_string()))
            }
            e => Attempt::Fatal(Error::Internal(e.to_string())),
        })?;
        upstream_model = outcome.upstream_model;
        if cache_key.is_none() {
            cache_key = outcome.prompt_cache_key;
        }
        ferry_accounts::apply_service_tier_policy(policy, &mut map, &upstream_model)
            .map_err(blocked)?;
        // The Codex backend names fast mode `priority` and refuses `auto`/`flex`/`scale`.
        ferry_accounts::adapt_service_tier_for_codex(&mut map);
        let tier = map
            .get("service_tier")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let effort = map
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (
            serde_json::to_vec(&map).map_err(serialise_failed)?,
            tier,
            effort,
        )
    } else {
        // Serialised straight from the typed request (no intermediate JSON tree).
        if let Some(requested) = body.service_tier.take() {
            body.service_tier =
                ferry_accounts::resolve_service_tier(policy, &requested, &upstream_model)
                    .map_err(blocked)?;
        }
        let effort = body
            .reasoning
            .as_ref()
            .and_then(|r| r.effort.as_ref())
            .and_then(|e| serde_json::to_value(e).ok())
            .and_then(|v| v.as_str().map(str::to_owned));
        let tier = body.service_tier.clone();
        (
            serde_json::to_vec(&body).map_err(serialise_failed)?,
            tier,
            effort,
        )
    };
    Ok(Built {
        body: bytes,
        service_tier,
        reasoning_effort,
        upstream_model,
        billing_model: route.billing,
        continued,
        continuation,
        cache_key,
        dropped,
        reasoning_items,
        upstream_stream,
    })
}

/// A model that reached the upstream side still named as a Claude model: no mapping rule
/// and no `default_model` applied to it, so the OpenAI upstream cannot serve it.
pub(crate) fn is_unmapped(upstream_model: &str) -> bool {
    upstream_model
        .trim()
        .to_ascii_lowercase()
        .starts_with("claude")
}

/// A reasoning suffix on the model (`gpt-5.4-high`) becomes `output_config.effort` unless
/// the client set one (gateway.md §1a).
fn apply_suffix_effort(req: &mut anthropic::MessagesRequest, effort: &str) {
    let has_effort = req
        .output_config
        .as_ref()
        .is_some_and(|o| o.effort.is_some());
    if has_effort {
        return;
    }
    let Ok(effort) = serde_json::from_value::<anthropic::Effort>(Value::String(effort.to_owned()))
    else {
        return;
    };
    match &mut req.output_config {
        Some(o) => o.effort = Some(effort),
        None => {
            req.output_config =
                serde_json::from_value(serde_json::json!({ "effort": effort })).ok();
        }
    }
}

/// One attempt on one account.
async fn attempt(
    ctx: &Arc<Ctx>,
    lease: Lease,
    record: &mut UsageRecord,
    replay: Replay,
    same_account_retries: u32,
) -> Attempt {
    let state = &ctx.state;
    let built = match build(ctx, &lease, replay).await {
        Ok(b) => b,
        Err(a) => return a,
    };
    let cfg = lease.config();
    record.billing_model.clone_from(&built.billing_model);
    record.upstream_model.clone_from(&built.upstream_model);
    record.service_tier.clone_from(&built.service_tier);
    record.reasoning_effort.clone_from(&built.reasoning_effort);

    let credential = match lease.credential().await {
        Ok(c) => {
            // Refreshed OAuth tokens (access, and the rotated refresh token) are secrets too.
            state.redactor.learn(c.token.expose());
            if let Some(refresh) = &c.refresh_token {
                state.redactor.learn(refresh.expose());
            }
            c
        }
        Err(e) if e.is_account_failure() => {
            return Attempt::Failover {
                error: Error::UpstreamConnect(e.to_string()),
                reason: "token_refresh",
            };
        }
        Err(e) => return Attempt::Fatal(Error::Internal(e.to_string())),
    };
    let oauth = cfg.kind == AccountKind::Oauth;
    let session_id = built
        .cache_key
        .as_deref()
        .and_then(|k| keys::session_uuid(ctx.client_id(), k))
        .map(|u| u.to_string());
    record.continued = built.continued;
    record.session = session_id.as_deref().map(usage::session_tag);
    let session = built
        .cache_key
        .as_deref()
        .map(|k| SessionRef::new(lease.name(), ctx.client_id(), k).with_agent(ctx.agent_id()));
    let turn_state = match (&session, oauth) {
        (Some(s), true) => state.sessions.turn_state(s).await,
        _ => None,
    };
    let upstream_headers =
        match ferry_accounts::build_upstream_headers(&ferry_accounts::UpstreamHeaderInput {
            kind: cfg.kind,
            token: &credential.token,
            client_headers: &ctx.headers,
            chatgpt_account_id: credential.chatgpt_account_id.as_deref(),
            session_id: session_id.as_deref(),
            turn_state: turn_state.as_deref(),
            force_codex_cli: state.config.gateway.force_codex_cli,
            codex_client_version: cfg.codex_client_version.as_deref(),
            responses_lite: cfg.responses_lite(&built.upstream_model),
        }) {
            Ok(mut h) => {
                if !built.upstream_stream {
                    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
                }
                h
            }
            Err(e) => return Attempt::Fatal(Error::Internal(e.to_string())),
        };

    let account = lease.name().to_owned();
    if built.continued {
        state.metrics.continuations_total.inc(["sent"]);
    }
    let sent_at = Instant::now();
    let reply = if cfg.kind == AccountKind::Simulated {
        let request = serde_json::from_slice::<Value>(&built.body).unwrap_or(Value::Null);
        upstream::simulated(&request)
    } else {
        let body = built.body;
        let sent = state
            .http
            .send(HttpRequest {
                url: ferry_accounts::responses_url(cfg),
                headers: upstream_headers,
                body: body.into(),
                proxy: cfg.proxy_url().map(str::to_owned),
                header_timeout: (!built.upstream_stream)
                    .then_some(state.config.gateway.upstream_json_timeout),
            })
            .await;
        match sent {
            Ok(r) => r,
            Err(e) => {
                state
                    .metrics
                    .upstream_requests_total
                    .inc([&account, "error"]);
                tracing::warn!(target: "ferry::upstream", request_id = %ctx.request_id, account = %account, error = %e, "upstream request failed");
                return match ferry_accounts::classify_transport_error() {
                    Disposition::Fatal => Attempt::Fatal(e),
                    _ => Attempt::Failover {
                        error: e,
                        reason: "transport",
                    },
                };
            }
        }
    };
    state
        .metrics
        .upstream_requests_total
        .inc([&account, &reply.status.to_string()]);
    let UpstreamReply {
        status,
        headers: reply_headers,
        mut body,
    } = reply;

    // Redirects are not followed: a 3xx is a misconfigured base URL, an error like a 4xx.
    if !(200..300).contains(&status) {
        let err_body = upstream::read_error_body(&mut body, ERROR_BODY_TIMEOUT).await;
        drop(body);
        if built.continued
            && let Some(session) = &session
            && let Some(kind) = ferry_session::classify_continuation_error(status, &err_body)
        {
            tracing::info!(target: "ferry::session", request_id = %ctx.request_id, kind = kind.as_str(), "previous_response_id rejected; replaying the full history");
            state.metrics.continuations_total.inc([kind.as_str()]);
            match kind {
                ferry_session::ContinuationError::NotFound => {
                    state.sessions.forget_response_id(session).await;
                }
                _ => state.sessions.disable_continuation(session).await,
            }
            return Attempt::ContinuationReset(lease);
        }
        // Encrypted reasoning issued under another account or key (a failover, a rotation):
        // the answer does not need it, so the turn is sent once more without it
        // (docs/RELIABILITY.md). A second rejection is the client's 400.
        if !replay.strip_reasoning
            && (built.reasoning_items > 0 || built.continued)
            && ferry_accounts::is_invalid_encrypted_content(status, &err_body)
        {
            tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %account, reasoning_items = built.reasoning_items, "encrypted reasoning rejected; retrying without it");
            return Attempt::ReasoningReset(lease);
        }
        let (upstream_code, message) = upstream::extract_error_message(status, &err_body);
        // The upstream may echo a credential in any shape (`key:<v>`): cut every known
        // secret out before the text reaches the client or a log line.
        let mut message = state.redactor.redact(&message);
        // A context overflow is the Anthropic API's own 400 "prompt is too long", which
        // Claude Code compacts on (docs/RELIABILITY.md).
        let overflow = convert::is_context_overflow(upstream_code.as_deref(), &message);
        if overflow {
            message = prompt_too_long(ctx, cfg, &built.upstream_model, &message);
        }
        let status = if overflow { 400 } else { status };
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let disposition = state.pool.on_upstream_error(
            &lease,
            code,
            &reply_headers,
            &err_body,
            same_account_retries,
        );
        // Never tell a client to wait longer than an account can be benched.
        let retry_after = ferry_accounts::retry_after(&reply_headers, unix_now())
            .map(|d| d.min(state.pool.max_cooldown()));
        let failover = !matches!(disposition, Disposition::Fatal);
        // A code means the same on every channel (the one table, `convert::code_meaning`): a
        // limit or overload code is answered as one whatever 4xx carried it (a relay's 400
        // `insufficient_quota` is the client's 429, not a 502), a policy refusal is 403
        // `permission_error` as it is when a stream fails with it.
        let client_status = match disposition.reason() {
            Some(FailoverReason::RateLimited) if status < 500 => 429,
            Some(FailoverReason::Overloaded) if status < 500 => 529,
            None if upstream_code.as_deref().and_then(convert::code_meaning)
                == Some(convert::CodeMeaning::PolicyRefusal) =>
            {
                403
            }
            _ => status,
        };
        let error = Error::UpstreamStatus {
            status: client_status,
            failover,
            message,
            retry_after,
        };
        tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %account, status, error = %error, "upstream error status");
        return match disposition {
            Disposition::RetrySameAccount { after, reason } => Attempt::Retry {
                after,
                lease,
                reason: reason.as_str(),
            },
            Disposition::Failover { reason, .. } => Attempt::Failover {
                error,
                reason: reason.as_str(),
            },
            Disposition::Fatal => Attempt::Fatal(error),
        };
    }

    if oauth
        && let Some(session) = &session
        && let Some(ts) = reply_headers
            .get("x-codex-turn-state")
            .and_then(|v| v.to_str().ok())
    {
        state.sessions.bind_turn_state(session, ts).await;
    }
    state.pool.on_success(&lease, &reply_headers);

    let gw = &state.config.gateway;
    // Asked for JSON and got JSON (an upstream that streams anyway takes the SSE path).
    let json_reply = !built.upstream_stream && is_json(&reply_headers);
    let keepalive = if ctx.stream {
        gw.stream_keepalive_interval
    } else {
        None
    };
    let reader = if json_reply {
        Reader::Json(JsonBody {
            body,
            headers_at: Instant::now(),
            deadline: sent_at + gw.upstream_json_timeout,
        })
    } else {
        Reader::Sse(EventSource::new(
            body,
            gw.max_line_bytes,
            gw.stream_data_interval_timeout,
            keepalive,
            Box::pin(state.shutdown.closed()),
        ))
    };
    let finisher = Finisher {
        thread: ctx.thread.clone().map(|turn| threads::Pending {
            turn,
            client_id: ctx.client_id().to_owned(),
            capture: threads::Capture::default(),
            reply: None,
            continuation: built.continuation,
        }),
        record: record.clone(),
        account: lease.name().to_owned(),
        lease: Some(lease),
        binding: ctx.resolved.clone().map(|resolved| SessionBinding {
            resolved,
            client_id: ctx.client_id().to_owned(),
            agent_id: ctx.agent_id().to_owned(),
            continuation: built.continuation,
            sticky: ctx.sticky.clone(),
            reset: replay.reset,
        }),
        reasoning_retry: !replay.strip_reasoning && (built.reasoning_items > 0 || built.continued),
    };
    let mut client_headers = headers::filter_response_headers(&reply_headers);
    if !built.dropped.is_empty()
        && let Ok(v) = HeaderValue::from_str(&built.dropped.join(","))
    {
        client_headers.insert(HeaderName::from_static("x-ferry-dropped"), v);
    }
    // The first events (streams) or the whole answer (JSON) are read in their own task:
    // if the client leaves meanwhile, hyper drops this future, but the upstream is still
    // read to its terminal event so the usage is recorded. A stream that got going hands
    // its body back; dropped unread, the body drains the upstream itself.
    let ctx = Arc::clone(ctx);
    #[expect(
        clippy::disallowed_methods,
        reason = "outlives the request if the client leaves: the upstream answer is read to its terminal event so its usage is recorded; bounded by the data-interval timeout"
    )]
    let task = tokio::spawn(async move {
        match reader {
            Reader::Sse(source) if ctx.stream => {
                respond_stream(&ctx, source, finisher, client_headers, same_account_retries).await
            }
            // Boxed: the JSON futures are large (about 11 KiB) and every request's task, a
            // streaming one too, would otherwise carry their size.
            Reader::Sse(source) => {
                Box::pin(respond_json(
                    &ctx,
                    source,
                    finisher,
                    client_headers,
                    same_account_retries,
                ))
                .await
            }
            Reader::Json(body) => {
                Box::pin(respond_json_body(
                    &ctx,
                    body,
                    finisher,
                    client_headers,
                    same_account_retries,
                ))
                .await
            }
        }
    });
    task.await.unwrap_or_else(|e| {
        Attempt::Fatal(Error::Internal(format!(
            "reading the upstream answer failed: {e}"
        )))
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The JSON `error` object of a failure, for [`ferry_accounts::Pool::on_stream_failure`].
fn failure_json(f: &UpstreamFailure) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": f.code, "message": f.message } }))
        .unwrap_or_default()
}

/// The Anthropic API's message for an upstream context overflow,
/// `prompt is too long: N tokens > M maximum`, with the upstream's figures when it gives
/// them, else ferry's count of the request and the catalog's context window of the model.
fn prompt_too_long(
    ctx: &Ctx,
    account: &ferry_accounts::AccountConfig,
    upstream_model: &str,
    upstream_message: &str,
) -> String {
    let window = account
        .model_spec(upstream_model)
        .map(|spec| spec.context_window);
    convert::prompt_too_long_message(
        upstream_message,
        crate::tokens::count_tokens(&ctx.req),
        window,
    )
}

/// Decides what a failure before any client output means: same-account retry, failover
/// or an error answer.
fn pre_output_failure(
    ctx: &Ctx,
    finisher: Finisher,
    failure: &UpstreamFailure,
    usage: anthropic::Usage,
    same_account_retries: u32,
) -> Attempt {
    let state = &ctx.state;
    let Some(held) = finisher.lease.as_ref() else {
        return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
    };
    // Encrypted reasoning rejected in the stream (`response.failed` or an `error` event)
    // rather than with a 400: the same single retry without it (docs/RELIABILITY.md).
    if finisher.reasoning_retry && failure.is_rejected_reasoning() {
        tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %finisher.account, "encrypted reasoning rejected in the stream; retrying without it");
        let Finisher {
            lease: Some(lease), ..
        } = finisher
        else {
            return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
        };
        return Attempt::ReasoningReset(lease);
    }
    let disposition =
        state
            .pool
            .on_stream_failure(held, &failure_json(failure), same_account_retries);
    let message = if failure.is_context_overflow() {
        prompt_too_long(
            ctx,
            held.config(),
            &finisher.record.upstream_model,
            &failure.message,
        )
    } else {
        failure.message.clone()
    };
    let error = Error::UpstreamFailed {
        kind: failure.error_kind(),
        message: state.redactor.redact(&message),
    };
    tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %finisher.account, failure = %state.redactor.redact(&failure.to_string()), "upstream failed before any output");
    let Finisher {
        mut record,
        lease: Some(lease),
        ..
    } = finisher
    else {
        return Attempt::Fatal(Error::Internal("account lease released early".to_owned()));
    };
    record.usage = usage;
    match disposition {
        Disposition::RetrySameAccount { after, reason } => Attempt::Retry {
            after,
            lease,
            reason: reason.as_str(),
        },
        Disposition::Failover { reason, .. } => Attempt::Failover {
            error,
            reason: reason.as_str(),
        },
        Disposition::Fatal => {
            // The error answer is final: record the usage the upstream reported.
            drop(lease);
            record.finish(
                state,
                error.status().as_u16(),
                &Outcome::Error(error.kind()),
            );
            Attempt::Done(error_response(&error))
        }
    }
}

/// A stream that broke before any output: fail over (no penalty) or answer the fault.
fn pre_output_fault(ctx: &Ctx, finisher: Finisher, fault: &Fault) -> Attempt {
    let error = match fault {
        Fault::Idle => Error::UpstreamTimeout("no data from the upstream in time"),
        Fault::Deadline => Error::UpstreamTimeout("the upstream answer did not arrive in time"),
        Fault::ShuttingDown => Error::NoAccount {
            rate_limited: false,
            retry_after: Some(Duration::from_secs(1)),
            message: fault.message(),
        },
        _ => Error::UpstreamProtocol(fault.message()),
    };
    match fault {
        Fault::Read(_) | Fault::Parse(_) | Fault::BadTerminal(_) => {
            drop(finisher);
            Attempt::Failover {
                error,
                reason: "stream",
            }
        }
        Fault::Idle | Fault::Deadline | Fault::ShuttingDown => {
            let Finisher { record, lease, .. } = finisher;
            drop(lease);
            record.finish(
                &ctx.state,
                error.status().as_u16(),
                &Outcome::Error(error.kind()),
            );
            Attempt::Done(error_response(&error))
        }
    }
}

/// The message id a client sees for request `request_id` (`req_x` → `msg_x`), streamed or
/// not.
fn client_message_id(request_id: &str) -> String {
    format!("msg_{}", request_id.trim_start_matches("req_"))
}

/// Streaming client: convert until the first content block (or a keep-alive, or the end),
/// then commit the 200 and hand the rest to [`MessageStream`].
async fn respond_stream(
    ctx: &Ctx,
    mut source: EventSource,
    mut finisher: Finisher,
    client_headers: HeaderMap,
    same_account_retries: u32,
) -> Attempt {
    let opts = convert::stream::Options::new(ctx.req.model.clone(), ctx.tool_names.clone())
        .with_message_id(client_message_id(&ctx.request_id))
        .with_stop_sequences(ctx.req.stop_sequences.clone().unwrap_or_default());
    let mut conv = convert::stream::StreamConverter::new(opts);
    let mut evs = Vec::new();
    let mut prelude = Vec::new();
    loop {
        match source.pull().await {
            Pulled::Event(ev) => {
                conv.on_event(&ev, &mut evs);
                stream::redact_errors(&ctx.state, &mut evs);
                if conv.is_finished()
                    && !conv.started_output()
                    && let Some(failure) = conv.failure()
                {
                    let failure = failure.clone();
                    if failure.kind != FailureKind::Truncated {
                        return pre_output_failure(
                            ctx,
                            finisher,
                            &failure,
                            conv.usage(),
                            same_account_retries,
                        );
                    }
                }
                finisher.observe(&evs);
                encode_events(&mut evs, &mut prelude);
                if conv.is_finished() || conv.started_output() {
                    break;
                }
            }
            Pulled::KeepAlive => {
                finisher.observe(&evs);
                encode_events(&mut evs, &mut prelude);
                prelude.extend_from_slice(ferry_apicompat::anthropic::PING_FRAME);
                break;
            }
            Pulled::Eof => {
                // Ended before a terminal event and before any output: another account
                // may do better (gateway.md §5 "missing terminal").
                drop(finisher);
                return Attempt::Failover {
                    error: Error::UpstreamProtocol(
                        "upstream stream ended before a terminal event".to_owned(),
                    ),
                    reason: "stream",
                };
            }
            Pulled::Failed(fault) => return pre_output_fault(ctx, finisher, &fault),
        }
    }
    let mut resp = Response::new(ResponseBody::Stream(Box::new(MessageStream::new(
        Live {
            state: ctx.state.clone(),
            source,
            conv,
            finisher,
        },
        prelude,
    ))));
    let h = resp.headers_mut();
    *h = client_headers;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Attempt::Done(resp)
}

/// Non-streaming client: read the upstream stream to its terminal event, then answer one
/// JSON message.
async fn respond_json(
    ctx: &Ctx,
    mut source: EventSource,
    finisher: Finisher,
    client_headers: HeaderMap,
    same_account_retries: u32,
) -> Attempt {
    let mut acc = ferry_apicompat::convert::Accumulator::new();
    // What the answer may take in memory: as much as one JSON answer may be.
    let cap = ctx.state.config.gateway.max_line_bytes as u64;
    let terminal = loop {
        match source.pull().await {
            Pulled::Event(ev) => {
                if source.bytes_read > cap {
                    let fault = Fault::Parse(format!(
                        "the streamed answer is larger than gateway.max_line_bytes ({cap} bytes), the most a non-streaming answer may buffer"
                    ));
                    return pre_output_fault(ctx, finisher, &fault);
                }
                acc.on_event(&ev);
                if ev.is_terminal() {
                    break *ev;
                }
            }
            Pulled::KeepAlive => {}
            Pulled::Eof => {
                drop(finisher);
                return Attempt::Failover {
                    error: Error::UpstreamProtocol(
                        "upstream stream ended without a terminal response event".to_owned(),
                    ),
                    reason: "stream",
                };
            }
            Pulled::Failed(fault) => return pre_output_fault(ctx, finisher, &fault),
        }
    };
    ctx.state
        .metrics
        .unknown_events_total
        .inc_by([], source.unknown_events);
    let first_event_at = source.first_event_at;
    drop(source);
    let answer = match terminal {
        responses::StreamEvent::Error(e) => Err(e.body()),
        other => match other.into_response() {
            Some(resp) => Ok(acc.supplement(resp)),
            None => {
                return Attempt::Fatal(Error::UpstreamProtocol(
                    "terminal event without a response".to_owned(),
                ));
            }
        },
    };
    answer_json(
        ctx,
        answer,
        first_event_at,
        finisher,
        client_headers,
        same_account_retries,
    )
    .await
}

/// How the upstream answer is read.
#[expect(
    clippy::large_enum_variant,
    reason = "one per attempt, moved once into its task"
)]
enum Reader {
    /// An SSE stream of events.
    Sse(EventSource),
    /// One JSON response object (a non-streaming client, asked of the upstream as JSON).
    Json(JsonBody),
}

/// A non-streamed upstream answer whose headers arrived.
struct JsonBody {
    body: upstream::ByteStream,
    headers_at: Instant,
    /// When the whole body must have arrived (`gateway.upstream_json_timeout` after sending).
    deadline: Instant,
}

/// Whether a response's `content-type` is JSON (`application/json`, `…+json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json")
                || t.get(t.len().saturating_sub(5)..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("+json"))
        })
}

/// Reads a whole JSON body: at most `gateway.max_line_bytes`, no gap between chunks longer
/// than the data-interval timeout, done by the deadline, cut short by shutdown.
async fn read_json_body(
    ctx: &Ctx,
    mut body: upstream::ByteStream,
    deadline: Instant,
) -> Result<bytes::Bytes, Fault> {
    use futures_util::StreamExt as _;
    let gw = &ctx.state.config.gateway;
    let mut buf = bytes::BytesMut::new();
    let mut shutdown = std::pin::pin!(ctx.state.shutdown.closed());
    loop {
        let idle_at = gw
            .stream_data_interval_timeout
            .map_or(deadline, |idle| deadline.min(Instant::now() + idle));
        let next = tokio::select! {
            next = body.next() => next,
            () = tokio::time::sleep_until(idle_at) => {
                return Err(if idle_at >= deadline { Fault::Deadline } else { Fault::Idle });
            }
            () = &mut shutdown => return Err(Fault::ShuttingDown),
        };
        match next {
            Some(Ok(chunk)) => {
                if buf.len() + chunk.len() > gw.max_line_bytes {
                    return Err(Fault::Parse(format!(
                        "the answer is larger than gateway.max_line_bytes ({} bytes)",
                        gw.max_line_bytes
                    )));
                }
                if buf.is_empty() {
                    // Most answers arrive in one chunk: keep it without a copy.
                    buf = bytes::BytesMut::from(chunk);
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return Err(Fault::Read(e)),
            None => return Ok(buf.freeze()),
        }
    }
}

/// Non-streaming client, upstream asked for JSON: read the response object and answer one
/// JSON message.
async fn respond_json_body(
    ctx: &Ctx,
    reply: JsonBody,
    finisher: Finisher,
    client_headers: HeaderMap,
    same_account_retries: u32,
) -> Attempt {
    let JsonBody {
        body,
        headers_at,
        deadline,
    } = reply;
    let bytes = match read_json_body(ctx, body, deadline).await {
        Ok(b) => b,
        Err(fault) => return pre_output_fault(ctx, finisher, &fault),
    };
    let resp = match serde_json::from_slice::<responses::Response>(&bytes) {
        Ok(r) => r,
        Err(e) => {
            let fault = Fault::BadTerminal(format!("the answer is not a response object: {e}"));
            return pre_output_fault(ctx, finisher, &fault);
        }
    };
    answer_json(
        ctx,
        Ok(resp),
        Some(headers_at),
        finisher,
        client_headers,
        same_account_retries,
    )
    .await
}

/// Converts the upstream's final answer (or its `error` event) into the client's JSON
/// message, or into a failover / error answer when it failed.
async fn answer_json(
    ctx: &Ctx,
    answer: Result<responses::Response, responses::ErrorBody>,
    first_event_at: Option<Instant>,
    mut finisher: Finisher,
    client_headers: HeaderMap,
    same_account_retries: u32,
) -> Attempt {
    // The client sees a `msg_…` id (as a stream's `message_start` does); the session binds
    // the upstream's own response id, which continuation needs.
    let upstream_id = answer.as_ref().ok().map(|r| r.id.clone());
    let converted = match answer {
        Err(e) => Err((
            UpstreamFailure::from_error(FailureKind::ErrorEvent, &e),
            anthropic::Usage::default(),
        )),
        Ok(resp) => {
            finisher.record.usage_implausible = resp
                .usage
                .as_ref()
                .is_some_and(|u| convert::response::checked_usage(u).1);
            let opts =
                convert::response::Options::new(ctx.req.model.clone(), ctx.tool_names.clone())
                    .with_message_id(client_message_id(&ctx.request_id))
                    .with_stop_sequences(ctx.req.stop_sequences.clone().unwrap_or_default());
            convert::response::convert(&resp, &opts).map_err(|f| {
                let usage = resp
                    .usage
                    .as_ref()
                    .map(convert::response::usage)
                    .unwrap_or_default();
                (f, usage)
            })
        }
    };
    match converted {
        Ok(message) => {
            for d in &message.dropped {
                ctx.state.metrics.response_dropped_total.inc([d.kind]);
            }
            let msg = message.value;
            if let Some(t) = finisher.thread.as_mut() {
                t.set_reply(&msg);
            }
            let usage = msg.usage;
            let response_id = upstream_id.filter(|id| !id.is_empty());
            let body = serde_json::to_vec(&msg).unwrap_or_default();
            let mut resp = json_bytes_response(StatusCode::OK, body);
            let h = resp.headers_mut();
            for (k, v) in &client_headers {
                h.append(k, v.clone());
            }
            let ctx_state = ctx.state.clone();
            if let Some(book) = finisher.finish(
                &ctx_state,
                usage,
                response_id.as_deref(),
                first_event_at,
                200,
                &Outcome::Ok,
            ) {
                book.await;
            }
            Attempt::Done(resp)
        }
        Err((failure, usage)) => {
            pre_output_failure(ctx, finisher, &failure, usage, same_account_retries)
        }
    }
}

/// Session state to write after a successful response.
struct SessionBinding {
    resolved: ResolvedKey,
    client_id: String,
    /// Claude Code's agent id (empty: the main agent).
    agent_id: String,
    continuation: bool,
    sticky: Option<StickyBinding>,
    reset: bool,
}

/// Holds the account lease and the usage record until the response is over, then writes
/// the record, the cache-economy metrics and the session bindings.
pub(crate) struct Finisher {
    record: UsageRecord,
    /// The lease's account.
    account: String,
    /// The account's slot; `None` once released early (the client left and only the
    /// usage is still being read, see [`Finisher::release_slot`]).
    lease: Option<Lease>,
    binding: Option<SessionBinding>,
    /// The message-thread turn to store once the reply is complete.
    thread: Option<threads::Pending>,
    /// The request replays encrypted reasoning (items, or a continued chain) that a retry
    /// could leave out, and has not been retried without it yet.
    reasoning_retry: bool,
}

impl Finisher {
    /// Sees the events about to be sent (a thread turn rebuilds its reply from them).
    pub(crate) fn observe(&mut self, events: &[anthropic::StreamEvent]) {
        if let Some(t) = self.thread.as_mut() {
            t.capture.observe(events);
        }
    }

    /// Frees the account's slot now: the client left, so the upstream is read on only to
    /// learn the usage, and the next client must not wait for that.
    pub(crate) fn release_slot(&mut self) {
        drop(self.lease.take());
    }

    /// Writes the usage record now; returns the session writes to await (on success).
    pub(crate) fn finish(
        self,
        state: &Arc<AppState>,
        usage: anthropic::Usage,
        response_id: Option<&str>,
        first_event_at: Option<Instant>,
        status: u16,
        outcome: &Outcome,
    ) -> Option<Bookkeeping> {
        let Self {
            mut record,
            account,
            lease,
            binding,
            thread,
            reasoning_retry: _,
        } = self;
        // The upstream is done with this request: free the account's slot.
        drop(lease);
        record.usage = usage;
        record.first_token = first_event_at;
        record.response_id = response_id.map(str::to_owned);
        let prompt =
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
        if let Some(b) = &binding
            && ferry_session::is_miss(prompt, usage.cache_read_input_tokens)
        {
            let reason = ferry_session::classify_miss(&MissFacts {
                resolved: &b.resolved,
                sticky: b.sticky.as_ref(),
                account: &account,
                continuation_reset: b.reset,
            });
            state.metrics.cache_miss_total.inc([reason.as_str()]);
        }
        record.finish(state, status, outcome);
        let ok = *outcome == Outcome::Ok || *outcome == Outcome::ClientDisconnected;
        let thread = thread.filter(|_| ok).map(|t| {
            let upstream =
                response_id
                    .filter(|_| t.continuation)
                    .map(|id| ferry_session::UpstreamTurn {
                        account: account.clone(),
                        response_id: id.to_owned(),
                    });
            (t, upstream)
        });
        let binding = binding.filter(|_| ok);
        if binding.is_none() && thread.is_none() {
            return None;
        }
        let sessions = state.sessions.clone();
        let state = Arc::clone(state);
        let response_id = response_id.map(str::to_owned);
        Some(Box::pin(async move {
            // Stored before the client's last bytes: its next turn continues from it.
            if let Some((t, upstream)) = thread {
                t.save(&state, upstream).await;
            }
            let Some(b) = binding else {
                return;
            };
            let key = &b.resolved.key;
            sessions.bind_chain(&b.client_id, &b.resolved).await;
            sessions
                .bind_sticky_account(&b.client_id, key, &account, &b.resolved.chain)
                .await;
            if b.continuation
                && let Some(id) = response_id
            {
                let session = SessionRef::new(&account, &b.client_id, key).with_agent(&b.agent_id);
                sessions
                    .bind_response_id(&session, &id, &b.resolved.chain)
                    .await;
            }
        }))
    }
}
