//! Stage 4, `send`: one attempt on one account: credential and headers, the upstream
//! request, and what an error status means; a success is handed to [`super::respond`].

use std::sync::Arc;
use std::time::Duration;

use ferry_accounts::{AccountKind, Disposition, FailoverReason, Lease};
use ferry_apicompat::convert::{self};
use ferry_session::{SessionRef, keys};
use http::{HeaderValue, StatusCode, header};
use tokio::time::Instant;

use super::capture::SentRequest;
use super::failover::Attempt;
use super::finish::Finisher;
use super::plan::{Replay, build};
use super::prepare::Ctx;
use super::respond::{self, Reader, Responder, prompt_too_long};
use super::usage::{self, UsageRecord};
use crate::error::Error;
use crate::upstream::{self, HttpRequest, UpstreamReply};

/// How long reading an upstream error body may take.
pub(crate) const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// One attempt on one account.
pub(crate) async fn attempt(
    ctx: &Arc<Ctx>,
    lease: Lease,
    record: &mut UsageRecord,
    replay: Replay,
    same_account_retries: u32,
) -> Attempt {
    let state = &ctx.state;
    let mut built = match build(ctx, &lease, replay).await {
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
                reason: FailoverReason::TokenRefresh,
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
    let reply = {
        let body: bytes::Bytes = std::mem::take(&mut built.body).into();
        let url = ferry_accounts::responses_url(cfg);
        if let Some(c) = &ctx.capture {
            c.begin_attempt(&SentRequest {
                account: &account,
                kind: cfg.kind,
                upstream_model: &built.upstream_model,
                facts: &built.facts,
                url: &url,
                headers: &upstream_headers,
                body: &body,
            });
        }
        let sent = state
            .http
            .send(HttpRequest {
                url,
                headers: upstream_headers,
                body,
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
                if let Some(c) = &ctx.capture {
                    c.attempt_error(&e.to_string());
                }
                let failure = e.transport_failure();
                return Attempt::from_disposition(
                    state.pool.on_transport_failure(&lease, failure),
                    lease,
                    e,
                );
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
    if let Some(c) = &ctx.capture {
        c.attempt_reply(status, &reply_headers);
    }

    // Redirects are not followed: a 3xx is a misconfigured base URL, an error like a 4xx.
    if !(200..300).contains(&status) {
        let err_body = upstream::read_error_body(&mut body, ERROR_BODY_TIMEOUT).await;
        drop(body);
        if let Some(c) = &ctx.capture {
            c.attempt_body(&err_body);
        }
        // Read once; every rule below looks at this.
        let reply = convert::ErrorReply::parse(&err_body);
        // What the client gets for this status if it is not retried or failed over.
        let as_is = || {
            let (_, message) = upstream::error_message(status, &reply);
            Error::UpstreamStatus {
                status,
                failover: false,
                message: state.redactor.redact(&message),
                retry_after: None,
            }
        };
        if built.continued
            && let Some(session) = &session
            && let Some(kind) = ferry_session::classify_continuation_reply(status, &reply)
        {
            tracing::info!(target: "ferry::session", request_id = %ctx.request_id, kind = kind.as_str(), "previous_response_id rejected; replaying the full history");
            state.metrics.continuations_total.inc([kind.as_str()]);
            match kind {
                ferry_session::ContinuationError::NotFound => {
                    state.sessions.forget_response_id(session).await;
                }
                _ => state.sessions.disable_continuation(session).await,
            }
            return Attempt::ContinuationReset {
                lease,
                error: as_is(),
            };
        }
        // Encrypted reasoning issued under another account or key (a failover, a rotation):
        // the answer does not need it, so the turn is sent once more without it
        // (docs/RELIABILITY.md). A second rejection is the client's 400.
        if !replay.strip_reasoning
            && (built.reasoning_items > 0 || built.continued)
            && ferry_accounts::is_rejected_reasoning_reply(status, &reply)
        {
            tracing::info!(target: "ferry::upstream", request_id = %ctx.request_id, account = %account, reasoning_items = built.reasoning_items, "encrypted reasoning rejected; retrying without it");
            return Attempt::ReasoningReset {
                lease,
                error: as_is(),
            };
        }
        let (upstream_code, message) = upstream::error_message(status, &reply);
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
        let disposition = state.pool.on_upstream_reply(
            &lease,
            code,
            &reply_headers,
            &reply,
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
        return Attempt::from_disposition(disposition, lease, error);
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

    let body = match &ctx.capture {
        Some(c) => c.tee(body),
        None => body,
    };
    let reader = Reader::new(ctx, built.upstream_stream, &reply_headers, body, sent_at);
    let finisher = Finisher::new(ctx, lease, &built, record, replay);
    let client_headers = respond::client_headers(&reply_headers, &built.dropped);
    Responder {
        ctx: Arc::clone(ctx),
        finisher,
        client_headers,
        same_account_retries,
    }
    .answer(reader)
    .await
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
