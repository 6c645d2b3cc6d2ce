//! The admin API and dashboard, under `[admin] path` (`/admin`), behind `[[admin.keys]]`
//! (never a client key). Without admin keys none of this exists: the paths are unknown
//! paths (404).
//!
//! - `auth`: admin keys in headers, the dashboard's session cookie (HMAC-signed, never the key);
//! - `view`: what is shown, gathered once (accounts, client keys, cache figures);
//! - `usage`: requests, tokens and cost per client key per hour, in the session store;
//! - `dashboard`: the server-rendered HTML pages (dashboard, sign-in);
//! - this file: the routes.
//!
//! Routes (under the prefix): `GET /` the dashboard (or the sign-in page), `POST /login`,
//! `POST /logout`, `GET /api/accounts`, `GET /api/client_keys`, `GET /api/cache`,
//! `GET /api/sessions[?client=NAME&limit=N]`, `GET /api/sessions/{id}`,
//! `POST /api/reload` (what `SIGHUP` does, answered with what it did).

mod auth;
mod dashboard;
pub(crate) mod usage;
mod view;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::error::Error;
use crate::http_util::{error_response, json_response, read_body};
use crate::state::{AppState, Live};

use self::auth::Verdict;

/// The admin route for `path`, when admin keys are configured and `path` is under the
/// admin prefix: the rest of the path (`""` for the prefix itself).
pub(crate) fn sub_path<'p>(state: &AppState, path: &'p str) -> Option<&'p str> {
    let admin = &state.config.admin;
    if !admin.enabled() {
        return None;
    }
    let rest = path.strip_prefix(admin.path.as_str())?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Dashboard,
    Login,
    Logout,
    Accounts,
    ClientKeys,
    Cache,
    Reload,
    /// `GET /api/sessions[?client=NAME&limit=N]`
    Sessions,
    /// `GET /api/sessions/{id}`
    Session,
}

impl Page {
    fn of(sub: &str) -> Option<Self> {
        Some(match sub.trim_end_matches('/') {
            "" | "/dashboard" => Self::Dashboard,
            "/login" => Self::Login,
            "/logout" => Self::Logout,
            "/api/accounts" => Self::Accounts,
            "/api/client_keys" => Self::ClientKeys,
            "/api/cache" => Self::Cache,
            "/api/reload" => Self::Reload,
            "/api/sessions" => Self::Sessions,
            other if session_id(other).is_some() => Self::Session,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Self::Login | Self::Logout | Self::Reload => Method::POST,
            _ => Method::GET,
        }
    }
}

/// Answers a request under the admin prefix (`sub` is the rest of its path).
pub(crate) async fn handle(
    state: &Arc<AppState>,
    live: &Arc<Live>,
    req: Request<Incoming>,
    sub: &str,
) -> Result<Response<ResponseBody>, Error> {
    let path = req.uri().path().to_owned();
    let Some(page) = Page::of(sub) else {
        return Err(Error::NotFound { path });
    };
    let method = req.method();
    let allowed = page.method();
    if method != allowed && !(allowed == Method::GET && method == Method::HEAD) {
        let mut resp = error_response(&Error::MethodNotAllowed {
            method: method.to_string(),
            path,
        });
        let allow = if allowed == Method::POST {
            "POST"
        } else {
            "GET, HEAD"
        };
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return Ok(resp);
    }
    let admin = &state.config.admin;
    let now = crate::cost::unix_now();
    if page == Page::Login {
        return login(state, req, now).await;
    }
    let verdict = auth::check(&admin.keys, &state.config.client_keys, req.headers(), now);
    if page == Page::Logout {
        return Ok(dashboard::signed_out(&admin.path, secure(req.headers())));
    }
    if let Some(err) = auth::refusal(&verdict) {
        // A browser without a session gets the sign-in form; anything else the error.
        if page == Page::Dashboard && verdict != Verdict::ClientKey {
            let note = (verdict == Verdict::Invalid).then_some("That key or session is not valid.");
            return Ok(dashboard::login_page(
                &admin.path,
                StatusCode::UNAUTHORIZED,
                note,
            ));
        }
        return Err(err);
    }
    let who = match &verdict {
        Verdict::Key(n) | Verdict::Cookie(n) => n.as_str(),
        _ => "",
    };
    Ok(match page {
        Page::Dashboard => {
            let accounts = view::accounts(state);
            let keys = view::client_keys(state).await;
            let cache = view::cache(state);
            dashboard::page(&admin.path, who, &accounts, &keys, &cache)
        }
        Page::Accounts => json(&serde_json::json!({
            "accounts": view::accounts(state),
            "open_streams": state.metrics.open_streams.get(),
        })),
        Page::ClientKeys => json(&serde_json::json!({
            "client_keys": view::client_keys(state).await,
        })),
        Page::Cache => json(&serde_json::json!(view::cache(state))),
        Page::Sessions => {
            let (client, limit) = sessions_query(req.uri().query());
            json(&crate::session_view::sessions_json(state, client.as_deref(), limit).await)
        }
        Page::Session => {
            let id = session_id(sub.trim_end_matches('/')).unwrap_or_default();
            match crate::session_view::session_json(state, id).await {
                Some(v) => json(&v),
                None => return Err(Error::NotFound { path }),
            }
        }
        Page::Reload => reload(live, who).await?,
        Page::Login | Page::Logout => return Err(Error::NotFound { path }),
    })
}

/// The `{id}` of `/api/sessions/{id}`.
fn session_id(sub: &str) -> Option<&str> {
    sub.strip_prefix("/api/sessions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// `client` and `limit` of the sessions list's query (`limit` clamped by the view).
fn sessions_query(query: Option<&str>) -> (Option<String>, usize) {
    let mut client = None;
    let mut limit = crate::session_view::DEFAULT_LIMIT;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("client", v)) if !v.is_empty() => {
                client = Some(crate::models::percent_decode(v));
            }
            Some(("limit", v)) => {
                limit = v.parse().unwrap_or(limit);
            }
            _ => {}
        }
    }
    (client, limit.min(crate::session_view::MAX_LIMIT))
}

fn json(value: &serde_json::Value) -> Response<ResponseBody> {
    let mut r = json_response(StatusCode::OK, value);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /api/reload`: the `SIGHUP` reload, off the async workers (it reads a file),
/// answered with what it did: 200 `{"applied":true,"notes":[…]}`, or an error
/// ([`Error::ReloadRefused`]: 422 with the config's problems, 500 otherwise).
async fn reload(live: &Arc<Live>, who: &str) -> Result<Response<ResponseBody>, Error> {
    tracing::info!(target: "ferry::server", admin = %who, "admin API: reloading the config");
    let live = Arc::clone(live);
    let report = tokio::task::spawn_blocking(move || live.reload_from_source())
        .await
        .map_err(|_| Error::Internal("the reload task failed".to_owned()))?;
    if report.applied {
        return Ok(json(&serde_json::json!({
            "applied": true,
            "notes": report.notes,
        })));
    }
    let n = report.problems.len();
    let message = match report.error {
        Some(e) => format!("config reload refused: {e}; the running config is kept"),
        None => format!(
            "config reload refused: {n} config problem{}; the running config is kept",
            if n == 1 { "" } else { "s" }
        ),
    };
    Err(Error::ReloadRefused {
        message,
        problems: report.problems,
    })
}

/// The longest sign-in form body read (a key and some slack).
const LOGIN_BODY_LIMIT: u64 = 4096;

/// `POST /login` with `key=…` (a form): the session cookie and a page that goes on to the
/// dashboard, or the form again with 401.
async fn login(
    state: &AppState,
    req: Request<Incoming>,
    now: u64,
) -> Result<Response<ResponseBody>, Error> {
    let admin = &state.config.admin;
    let secure = secure(req.headers());
    let body = read_body(req, LOGIN_BODY_LIMIT, Duration::from_secs(10)).await;
    let presented = body
        .ok()
        .and_then(|b| {
            std::str::from_utf8(&b).ok().and_then(|form| {
                form.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    (k == "key").then(|| crate::models::percent_decode(v))
                })
            })
        })
        .unwrap_or_default();
    let verdict = auth::key_verdict(
        &admin.keys,
        &state.config.client_keys,
        presented.trim().as_bytes(),
    );
    let Some(Verdict::Key(name)) = verdict else {
        tracing::warn!(target: "ferry::server", "admin sign-in refused");
        let note = if verdict == Some(Verdict::ClientKey) {
            "A client key is not an admin key."
        } else {
            "That key is not an admin key."
        };
        return Ok(dashboard::login_page(
            &admin.path,
            StatusCode::UNAUTHORIZED,
            Some(note),
        ));
    };
    let Some(key) = admin.keys.iter().find(|k| k.name == name) else {
        return Err(Error::Internal("admin key vanished".to_owned()));
    };
    tracing::info!(target: "ferry::server", admin = %name, "admin signed in");
    Ok(dashboard::signed_in(
        &admin.path,
        &auth::session_token(key, now),
        auth::SESSION_TTL,
        secure,
    ))
}

/// True when the client reached ferry over HTTPS through a proxy (`x-forwarded-proto:
/// https`): the cookie is then marked `Secure`.
fn secure(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// `Set-Cookie` for the session cookie (an empty value and `Max-Age=0` clear it).
fn session_cookie(path: &str, value: &str, max_age: Duration, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        auth::COOKIE,
        max_age.as_secs()
    ))
    .ok()
}
