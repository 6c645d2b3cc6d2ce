//! Stage 2, `plan`: the upstream request for one account: model mapping, conversion,
//! continuation, todo guard and cache key, the Codex transform and the service-tier policy.

use ferry_accounts::{AccountKind, Lease};
use ferry_apicompat::convert::{self};
use ferry_apicompat::{anthropic, responses};
use ferry_session::{SessionRef, keys};
use serde_json::Value;

use super::failover::Attempt;
use super::prepare::Ctx;
use super::threads;
use crate::error::Error;
use crate::models::is_unmapped;

/// How an attempt rebuilds the request after an upstream rejected part of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replay {
    /// Send the full history, without `previous_response_id`.
    pub(crate) reset: bool,
    /// Leave out the replayed reasoning items (their encrypted content was rejected).
    pub(crate) strip_reasoning: bool,
}

/// The request as built for one account.
pub(crate) struct Built {
    /// The JSON body to send.
    pub(crate) body: Vec<u8>,
    /// `service_tier` as sent (after the account's policy).
    pub(crate) service_tier: Option<String>,
    /// `reasoning.effort` as sent.
    pub(crate) reasoning_effort: Option<String>,
    pub(crate) upstream_model: String,
    pub(crate) billing_model: String,
    /// `previous_response_id` was attached.
    pub(crate) continued: bool,
    /// Continuation may be used on this account and model (bind the response id after).
    pub(crate) continuation: bool,
    /// The prompt cache key used for the upstream session (applies to this model).
    pub(crate) cache_key: Option<String>,
    pub(crate) dropped: Vec<&'static str>,
    /// Reasoning items replayed in `input` (encrypted content the upstream may reject).
    pub(crate) reasoning_items: usize,
    /// The upstream was asked to stream (else: one JSON body).
    pub(crate) upstream_stream: bool,
}

/// Model mapping, conversion, session state, OAuth transform and service-tier policy.
pub(crate) async fn build(ctx: &Ctx, lease: &Lease, replay: Replay) -> Result<Built, Attempt> {
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
    let mut cache_key = applies.map(|r| r.key.clone());
    let target = ferry_accounts::Target::for_account(cfg, &route.upstream);
    let template = ctx
        .state
        .config
        .gateway
        .forced_codex_instructions_template
        .as_deref();
    let shaped = target
        .shape(
            &mut body,
            &ferry_accounts::TargetOptions {
                service_tier_policy: cfg.service_tier_policy,
                forced_instructions_template: template,
                original_model: &route.original,
                normalized_model: &route.requested,
                billing_model: &route.billing,
            },
        )
        .map_err(|e| match e {
            ferry_accounts::AccountsError::ServiceTierBlocked { .. } => {
                Attempt::Fatal(Error::PolicyBlocked(e.to_string()))
            }
            // The request asks for something the model's shape cannot carry: the client's to fix.
            ferry_accounts::AccountsError::LiteUnsupportedTool { .. } => {
                Attempt::Fatal(Error::InvalidRequest(e.to_string()))
            }
            e => Attempt::Fatal(Error::Internal(e.to_string())),
        })?;
    let upstream_model = shaped.upstream_model;
    if cache_key.is_none() {
        cache_key = shaped.prompt_cache_key;
    }
    let reasoning_effort = body
        .reasoning
        .as_ref()
        .and_then(|r| r.effort.as_ref())
        .and_then(|e| serde_json::to_value(e).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    let service_tier = body.service_tier.clone();
    let bytes = target.encode(&body).map_err(|e| {
        Attempt::Fatal(Error::Internal(format!(
            "cannot serialise the upstream request: {e}"
        )))
    })?;
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

/// A reasoning suffix on the model (`gpt-5.4-high`) becomes `output_config.effort` unless
/// the client set one (gateway.md §1a).
pub(crate) fn apply_suffix_effort(req: &mut anthropic::MessagesRequest, effort: &str) {
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
