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

mod capture;
pub(crate) mod events;
mod failover;
mod finish;
pub(crate) mod headers;
pub(crate) mod plan;
mod prepare;
pub(crate) mod replay;
pub(crate) mod respond;
mod send;
pub(crate) mod threads;
mod turn_log;
pub(crate) mod usage;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

pub(crate) use self::usage::UsageLog;
use self::usage::UsageRecord;
use crate::body::ResponseBody;
use crate::error::Error;
use crate::state::AppState;

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
    match prepare::prepare(&state, req, &mut record).await {
        Ok(ctx) => {
            let ctx = Arc::new(ctx);
            let resp = failover::run(&ctx, record).await;
            Ok(match &ctx.capture {
                Some(c) => c.tee_response(resp),
                None => resp,
            })
        }
        Err(e) => {
            record.fail(&state, &e);
            Err(e)
        }
    }
}
