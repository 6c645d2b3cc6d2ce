//! `server::Error`: the one place that decides the client's HTTP status and Anthropic error type.

use std::time::Duration;

use ferry_apicompat::anthropic;
use http::StatusCode;

/// Everything that can end a request with an error.
///
/// [`Error::status`], [`Error::anthropic_type`] and [`Error::kind`] are the only mapping
/// from a failure to the client's HTTP answer (lower crates read upstream statuses to
/// classify them, but never decide what a client gets). Messages are lowercase
/// and never contain secrets (upstream messages are sanitised before they get here).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No route for this path.
    #[error("not found: {path}")]
    NotFound {
        /// The request path.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// No or wrong client key.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid key, but not one for this route (a client key on an admin route).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The body is larger than `server.max_body_bytes`.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Reading the request body failed.
    #[error("could not read the request body")]
    BodyRead,
    /// The client did not send its whole body in time.
    #[error("the request body was not received within {secs} s")]
    BodyTimeout {
        /// The limit in seconds.
        secs: u64,
    },
    /// The body is not a valid Messages request (message carries the JSON path).
    #[error("{0}")]
    InvalidRequest(String),
    /// The request could not be read or converted: the converter's own error, with the JSON
    /// path of the offending value (a 400 `invalid_request_error`).
    #[error(transparent)]
    Convert(#[from] ferry_apicompat::ConvertError),
    /// No account serves the requested model.
    #[error(
        "model: {model} is not served by this gateway (add it to an account's model_mapping or set default_model)"
    )]
    UnknownModel {
        /// The model the client asked for.
        model: String,
    },
    /// The account's service-tier policy refuses the request.
    #[error("{0}")]
    PolicyBlocked(String),
    /// Every account is busy, cooling down or failed.
    #[error("{message}")]
    NoAccount {
        /// True when the accounts are rate limited (429), false when overloaded (529).
        rate_limited: bool,
        /// When to retry, if known.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// The client key's budget is spent for a window (refused before going upstream).
    #[error("{message}")]
    BudgetExceeded {
        /// Which budget and how much was spent.
        message: String,
        /// Until the window ends.
        retry_after: Duration,
    },
    /// The upstream answered with an error status before any output.
    #[error("{message}")]
    UpstreamStatus {
        /// The upstream status.
        status: u16,
        /// True when the status was one that fails over (failover was exhausted).
        failover: bool,
        /// Sanitised upstream message.
        message: String,
        /// The upstream's `retry-after`, passed on to the client.
        retry_after: Option<Duration>,
    },
    /// The upstream stream reported a failed response before any output.
    #[error("{message}")]
    UpstreamFailed {
        /// What the failure means for the client (from the upstream code).
        kind: anthropic::ErrorKind,
        /// Sanitised upstream message.
        message: String,
    },
    /// Could not connect to or talk to the upstream.
    #[error("upstream connection failed: {0}")]
    UpstreamConnect(String),
    /// The upstream took too long to answer or went silent.
    #[error("upstream timed out: {0}")]
    UpstreamTimeout(&'static str),
    /// The upstream stream was malformed or ended without a terminal event.
    #[error("{0}")]
    UpstreamProtocol(String),
    /// A message-thread request the gateway cannot serve (docs/threads.md); the body's
    /// `error.details.error_code` tells the SDKs to replay the whole conversation.
    #[error("{message}")]
    Thread {
        /// The `error_code` the SDKs branch on.
        code: ThreadErrorCode,
        /// What happened.
        message: String,
    },
    /// A config reload (`POST {admin.path}/api/reload`) was refused; the running config is
    /// kept. With `problems` the new config is invalid (422, each problem in
    /// `error.details.problems`), without them it could not be applied (500).
    #[error("{message}")]
    ReloadRefused {
        /// What happened.
        message: String,
        /// The config's problems (no secret in them).
        problems: Vec<crate::config::ConfigProblem>,
    },
    /// A bug or an unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What keeps the gateway from starting, or a reload from taking effect: kept apart from
/// [`Error`], which is what a request can end with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up a component failed (session store, account pool).
    #[error("start-up failed: {0}")]
    Startup(String),
}

/// The `error.details.error_code` of a thread error, as the Anthropic SDKs know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadErrorCode {
    /// 404: no thread for `previous_message_id` (the SDKs replay with `create`).
    NotFound,
    /// 400: the request cannot be threaded here (the tool runner goes on without one).
    UnsupportedRequest,
    /// 400: `system` or `tools` differ from the thread's.
    FingerprintMismatch,
}

impl ThreadErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "thread_not_found",
            Self::UnsupportedRequest => "thread_unsupported_request",
            Self::FingerprintMismatch => "thread_fingerprint_mismatch",
        }
    }
}

impl Error {
    /// The kind of transport failure an error of the upstream client is, for
    /// [`ferry_accounts::classify_transport_error`]: a header timeout, or else a failure to
    /// connect or exchange.
    pub(crate) fn transport_failure(&self) -> ferry_accounts::TransportFailure {
        match self {
            Self::UpstreamTimeout(_) => ferry_accounts::TransportFailure::HeaderTimeout,
            _ => ferry_accounts::TransportFailure::Connect,
        }
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ReloadRefused { problems, .. } => {
                if problems.is_empty() {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            }
            Self::NotFound { .. }
            | Self::UnknownModel { .. }
            | Self::Thread {
                code: ThreadErrorCode::NotFound,
                ..
            } => StatusCode::NOT_FOUND,
            Self::Thread { .. } => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead | Self::InvalidRequest(_) | Self::Convert(_) => StatusCode::BAD_REQUEST,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::PolicyBlocked(_) | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NoAccount {
                rate_limited: true, ..
            }
            | Self::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NoAccount {
                rate_limited: false,
                ..
            } => overloaded(),
            Self::UpstreamStatus {
                status, failover, ..
            } => upstream_status(*status, *failover),
            Self::UpstreamFailed { kind, .. } => match kind {
                anthropic::ErrorKind::InvalidRequestError => StatusCode::BAD_REQUEST,
                anthropic::ErrorKind::RateLimitError => StatusCode::TOO_MANY_REQUESTS,
                anthropic::ErrorKind::PermissionError => StatusCode::FORBIDDEN,
                anthropic::ErrorKind::OverloadedError => overloaded(),
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::UpstreamConnect(_) | Self::UpstreamProtocol(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The Anthropic error `type` for the body and for SSE `error` events.
    pub fn anthropic_type(&self) -> &'static str {
        // An invalid config to reload is the operator's to fix, not the gateway's failure
        // (a 422 from an upstream stays an `api_error`).
        if let Self::ReloadRefused { problems, .. } = self
            && !problems.is_empty()
        {
            return "invalid_request_error";
        }
        match self.status().as_u16() {
            400 | 405 | 408 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// Low-cardinality label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyRead => "body_read",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::InvalidRequest(_) | Self::Convert(_) => "invalid_request",
            Self::UnknownModel { .. } => "unknown_model",
            Self::PolicyBlocked(_) => "policy_blocked",
            Self::NoAccount { .. } => "no_account",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::UpstreamStatus { .. } => "upstream_status",
            Self::UpstreamFailed { .. } => "upstream_failed",
            Self::UpstreamConnect(_) => "upstream_connect",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::UpstreamProtocol(_) => "upstream_protocol",
            Self::Thread { .. } => "thread",
            Self::ReloadRefused { .. } => "reload_refused",
            Self::Internal(_) => "internal",
        }
    }

    /// The body's `error.details`, when the error has one (thread errors).
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::Thread { code, .. } => Some(serde_json::json!({ "error_code": code.as_str() })),
            Self::ReloadRefused { problems, .. } => Some(serde_json::json!({
                "problems": problems
                    .iter()
                    .map(|p| serde_json::json!({ "path": p.path, "message": p.message }))
                    .collect::<Vec<_>>(),
            })),
            _ => None,
        }
    }

    /// Seconds for a `retry-after` header, when the error has one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::NoAccount { retry_after, .. } | Self::UpstreamStatus { retry_after, .. } => {
                *retry_after
            }
            Self::BudgetExceeded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The message for the client (the `Display` text).
    pub fn client_message(&self) -> String {
        match self {
            // The upstream's own words are kept for request errors; for the statuses the
            // gateway owns (auth, quota of *its* accounts) a gateway-side text is clearer.
            Self::UpstreamStatus {
                status,
                failover: true,
                ..
            } => match status {
                401 => "upstream authentication failed, contact the gateway admin".to_owned(),
                403 => "upstream access forbidden, contact the gateway admin".to_owned(),
                429 => "upstream rate limit exceeded".to_owned(),
                529 => "upstream overloaded".to_owned(),
                500 | 502 | 503 | 504 => "upstream temporarily unavailable".to_owned(),
                _ => self.to_string(),
            },
            _ => self.to_string(),
        }
    }
}

fn overloaded() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// The client's status for an upstream error status. A status that does not fail over is
/// about the request itself: a 4xx passes through as it is, a 529 stays 529, anything else is
/// a 502. A status that fails over reaches the client only once failover is exhausted: a 429
/// or 529 stays what it was, anything else (401, 403, 5xx, …) is a 502.
fn upstream_status(status: u16, failover: bool) -> StatusCode {
    if failover {
        return match status {
            429 => StatusCode::TOO_MANY_REQUESTS,
            529 => overloaded(),
            _ => StatusCode::BAD_GATEWAY,
        };
    }
    match status {
        400..=499 => StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        529 => overloaded(),
        _ => StatusCode::BAD_GATEWAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_statuses_map_like_the_reference() {
        let cases = [
            (400, false, 400, "invalid_request_error"),
            (404, false, 404, "not_found_error"),
            (413, false, 413, "request_too_large"),
            (422, false, 422, "api_error"),
            (401, true, 502, "api_error"),
            (403, true, 502, "api_error"),
            (429, true, 429, "rate_limit_error"),
            (529, true, 529, "overloaded_error"),
            (503, true, 502, "api_error"),
        ];
        let got: Vec<_> = cases
            .iter()
            .map(|&(s, f, _, _)| {
                let e = Error::UpstreamStatus {
                    status: s,
                    failover: f,
                    message: "m".into(),
                    retry_after: None,
                };
                (s, f, e.status().as_u16(), e.anthropic_type())
            })
            .collect();
        assert_eq!(got, cases.to_vec());
    }
}
