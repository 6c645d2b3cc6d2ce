//! Routing, request ids, and the plain endpoints (health, ready, metrics, models); the
//! admin prefix is handed to [`crate::admin`].

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::auth;
use crate::body::ResponseBody;
use crate::error::Error;
use crate::http_util::{error_response, json_response, read_body, text_response};
use crate::messages::UsageLog;
use crate::state::{AppState, Live};

/// The routes ferry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Messages,
    CountTokens,
    Models,
    Root,
    Health,
    Ready,
    Metrics,
    /// `GET /v1/models/{id}`.
    Model,
}

/// The `{id}` of a `…/v1/models/{id}` path (percent-decoded), if it is one.
fn model_id(path: &str) -> Option<String> {
    let (_, id) = path.trim_end_matches('/').rsplit_once("/v1/models/")?;
    (!id.is_empty() && !id.contains('/')).then(|| crate::models::percent_decode(id))
}

impl Route {
    /// Paths may carry a prefix (a base URL like `http://host/gw/anthropic` keeps it), so
    /// the API routes match on their suffix. The query string is ignored.
    fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Some(Self::Root);
        }
        match path {
            "/health" => return Some(Self::Health),
            "/ready" => return Some(Self::Ready),
            "/metrics" => return Some(Self::Metrics),
            _ => {}
        }
        if path.ends_with("/v1/messages/count_tokens") {
            Some(Self::CountTokens)
        } else if path.ends_with("/v1/messages") {
            Some(Self::Messages)
        } else if path.ends_with("/v1/models") {
            Some(Self::Models)
        } else if model_id(path).is_some() {
            Some(Self::Model)
        } else {
            None
        }
    }

    fn allows(self, m: &Method) -> bool {
        match self {
            Self::Messages | Self::CountTokens => m == Method::POST,
            Self::Root => m == Method::HEAD || m == Method::GET,
            Self::Models | Self::Model | Self::Health | Self::Ready | Self::Metrics => {
                m == Method::GET || m == Method::HEAD
            }
        }
    }

    fn allow_header(self) -> &'static str {
        match self {
            Self::Messages | Self::CountTokens => "POST",
            _ => "GET, HEAD",
        }
    }
}

/// A fresh request id: `req_` and 32 hex digits, unique across processes and replicas: a
/// random 64-bit prefix drawn once per process, then a per-process counter. (A random
/// UUID per request cost a `getrandom` syscall on every request; an id needs uniqueness,
/// not unpredictability: it names a request in logs and is no credential.)
pub(crate) fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("req_{prefix:016x}{n:016x}")
}

/// Entry point for every request: routes it, turns errors into Anthropic error bodies and
/// stamps `request-id` on every response.
/// `log` is the client connection's queue for usage lines.
pub(crate) async fn handle(
    state: Arc<AppState>,
    live: &Arc<Live>,
    req: Request<Incoming>,
    log: UsageLog,
) -> Response<ResponseBody> {
    let request_id = new_request_id();
    let is_head = req.method() == Method::HEAD;
    let mut resp = match dispatch(&state, live, req, &request_id, log).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    if is_head {
        *resp.body_mut() = ResponseBody::empty();
    }
    resp
}

async fn dispatch(
    state: &Arc<AppState>,
    live: &Arc<Live>,
    req: Request<Incoming>,
    request_id: &str,
    log: UsageLog,
) -> Result<Response<ResponseBody>, Error> {
    let path = req.uri().path();
    // The admin prefix comes first: `/admin/v1/messages` is an admin path, not the API.
    if let Some(sub) = crate::admin::sub_path(state, path) {
        let sub = sub.to_owned();
        return crate::admin::handle(state, live, req, &sub).await;
    }
    let Some(route) = Route::from_path(path) else {
        return Err(Error::NotFound {
            path: path.to_owned(),
        });
    };
    if !route.allows(req.method()) {
        let err = Error::MethodNotAllowed {
            method: req.method().to_string(),
            path: path.to_owned(),
        };
        let mut resp = error_response(&err);
        resp.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static(route.allow_header()),
        );
        return Ok(resp);
    }
    match route {
        Route::Root | Route::Health => Ok(text_response(StatusCode::OK, "ok\n")),
        Route::Ready => Ok(ready(state)),
        Route::Metrics => {
            state.refresh_account_gauges();
            let mut r = text_response(StatusCode::OK, state.metrics.render());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        Route::Models => {
            auth::authenticate(&state.config.client_keys, req.headers())?;
            let query = crate::models::ListQuery::parse(req.uri().query());
            Ok(json_response(
                StatusCode::OK,
                &crate::models::models_page(&state.config, &query)?,
            ))
        }
        Route::Model => {
            auth::authenticate(&state.config.client_keys, req.headers())?;
            let id = model_id(req.uri().path()).unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &crate::models::model_by_id(&state.config, &id)?,
            ))
        }
        Route::CountTokens => {
            let client = auth::authenticate(&state.config.client_keys, req.headers())?;
            let body = read_body(
                req,
                state.config.server.max_body_bytes,
                state.config.server.body_read_timeout,
            )
            .await?;
            let mut parsed =
                ferry_apicompat::anthropic::parse_request(&body).map_err(Error::Convert)?;
            crate::messages::threads::apply_for_count(
                state,
                client.name.as_deref().unwrap_or(""),
                &mut parsed,
            )
            .await?;
            let n = crate::tokens::count_tokens_off_runtime(parsed).await?;
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({ "input_tokens": n }),
            ))
        }
        Route::Messages => {
            crate::messages::handle(state.clone(), req, request_id.to_owned(), log).await
        }
    }
}

fn ready(state: &AppState) -> Response<ResponseBody> {
    let available = state.available_accounts();
    // A degraded session store (Redis away, local state serving) still serves: say so,
    // without failing the probe.
    let store = if state.store.degraded() {
        "degraded"
    } else {
        "ok"
    };
    if available > 0 {
        json_response(
            StatusCode::OK,
            &serde_json::json!({ "status": "ready", "accounts_available": available, "session_store": store }),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "unavailable", "accounts_available": 0, "session_store": store }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_keep_their_shape() {
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let hex = id.strip_prefix("req_").expect("req_ prefix");
            assert_eq!(hex.len(), 32, "{id}");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
        // One process, one random prefix: the ids differ only in the counter half.
        assert!(ids.iter().all(|i| i[4..20] == ids[0][4..20]));
    }

    #[test]
    fn routes_match_with_prefixes_and_trailing_slashes() {
        let got: Vec<_> = [
            "/v1/messages",
            "/gw/anthropic/v1/messages",
            "/v1/messages/count_tokens",
            "/x/v1/messages/count_tokens/",
            "/v1/models",
            "/",
            "/health",
            "/metrics",
            "/ready",
            "/v1/complete",
            "/v1/messagesx",
        ]
        .iter()
        .map(|p| Route::from_path(p))
        .collect();
        assert_eq!(
            got,
            vec![
                Some(Route::Messages),
                Some(Route::Messages),
                Some(Route::CountTokens),
                Some(Route::CountTokens),
                Some(Route::Models),
                Some(Route::Root),
                Some(Route::Health),
                Some(Route::Metrics),
                Some(Route::Ready),
                None,
                None,
            ]
        );
    }
}
