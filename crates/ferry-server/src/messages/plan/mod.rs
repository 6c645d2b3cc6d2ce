//! Stage 2, `plan`: the upstream request for one account. [`build`] reads what the session
//! knows (the response to continue from) and counts what the conversion dropped; the
//! request itself comes from the pure [`upstream`] half: conversion for the model route,
//! continuation, todo guard and cache key, the account's request shape (the Codex
//! transform and Lite shape) and the service-tier policy, serialised once.

pub(crate) mod upstream;

use ferry_accounts::{AccountKind, Lease};
use ferry_session::{SessionRef, keys};

use self::upstream::{SessionFacts, convert_for, upstream_request};
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
    /// What the session knew when the request was planned (a capture records it).
    pub(crate) facts: SessionFacts,
}

/// Model mapping and conversion, the session's facts (the only wait), then the pure
/// [`upstream_request`] and its one serialisation.
pub(crate) async fn build(ctx: &Ctx, lease: &Lease, replay: Replay) -> Result<Built, Attempt> {
    let cfg = lease.config();
    let route = cfg.route_model(&ctx.req.model);
    if is_unmapped(&route.upstream) {
        return Err(Attempt::Skip);
    }
    let conversion = convert_for(&ctx.req, cfg, &route, ctx.fast_mode)
        .map_err(|e| Attempt::Fatal(Error::Convert(e)))?;
    let converted = conversion.converted;
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
    let mut previous_response_id = None;
    if continuation
        && !replay.reset
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
        previous_response_id = match from_thread {
            Some(id) => Some(id),
            None => sessions.previous_response_id(&session, &r.chain).await,
        };
    }
    let facts = SessionFacts {
        client_stream: ctx.stream,
        continuation,
        previous_response_id,
        todo_guard: sessions.config().todo_guard
            && keys::should_auto_inject(&route.family)
            && conversion.wants_todo_guard,
        prompt_cache_key: applies.map(|r| keys::upstream_cache_key(ctx.client_id(), &r.key)),
        strip_reasoning: replay.strip_reasoning,
    };
    let template = ctx
        .state
        .config
        .gateway
        .forced_codex_instructions_template
        .as_deref();
    let planned =
        upstream_request(converted.value, cfg, &route, &facts, template).map_err(|e| match e {
            ferry_accounts::AccountsError::ServiceTierBlocked { .. } => {
                Attempt::Fatal(Error::PolicyBlocked(e.to_string()))
            }
            // The request asks for something the model's shape cannot carry: the client's to fix.
            ferry_accounts::AccountsError::LiteUnsupportedTool { .. } => {
                Attempt::Fatal(Error::InvalidRequest(e.to_string()))
            }
            e => Attempt::Fatal(Error::Internal(e.to_string())),
        })?;
    if planned.stripped_reasoning {
        ctx.state.metrics.dropped_total.inc(["rejected_reasoning"]);
        dropped.push("rejected_reasoning");
    }
    let body = planned.body().map_err(|e| {
        Attempt::Fatal(Error::Internal(format!(
            "cannot serialise the upstream request: {e}"
        )))
    })?;
    Ok(Built {
        body,
        service_tier: planned.service_tier().map(str::to_owned),
        reasoning_effort: planned.reasoning_effort(),
        upstream_stream: planned.stream(),
        cache_key: applies.map(|r| r.key.clone()).or(planned.header_cache_key),
        upstream_model: planned.upstream_model,
        billing_model: route.billing,
        continued: planned.continued,
        continuation,
        dropped,
        reasoning_items: planned.reasoning_items,
        facts,
    })
}
