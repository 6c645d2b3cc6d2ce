//! Upstream failures reported inside a response or stream.

use std::fmt;

use crate::anthropic;
use crate::responses;

/// A response the upstream marked as failed (or incomplete for a reason that is not a
/// normal end), or a stream that broke off. The server maps it to an HTTP status or an SSE
/// `error` event; [`UpstreamFailure::error_kind`] gives the Anthropic error type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamFailure {
    /// What kind of failure this is.
    pub kind: FailureKind,
    /// The upstream error code, when it gave one (`server_error`, `rate_limit_exceeded`, …);
    /// for [`FailureKind::Incomplete`] the incomplete reason.
    pub code: Option<String>,
    /// The upstream message, sanitised (no credentials, no URL query strings, bounded
    /// length).
    pub message: String,
}

/// The kind of an [`UpstreamFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The response has status `failed` (`response.failed`).
    Failed,
    /// The response is `incomplete` for a reason other than `max_output_tokens` or
    /// `content_filter` (or for no reason at all).
    Incomplete,
    /// The response was cancelled.
    Cancelled,
    /// The upstream sent a top-level `error` event.
    ErrorEvent,
    /// The stream ended before a terminal event.
    Truncated,
    /// A terminal event could not be parsed, or the caller gave up on the stream.
    InvalidStream,
    /// The answer consisted only of output items the Anthropic API cannot express (the
    /// code is the first item's type).
    Unexpressible,
}

impl FailureKind {
    /// A short, stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Incomplete => "incomplete",
            Self::Cancelled => "cancelled",
            Self::ErrorEvent => "error_event",
            Self::Truncated => "truncated",
            Self::InvalidStream => "invalid_stream",
            Self::Unexpressible => "unexpressible",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 1000;

impl UpstreamFailure {
    /// A failure of the given kind. The message is sanitised here.
    pub fn new(kind: FailureKind, code: Option<String>, message: &str) -> Self {
        let code = code.filter(|c| !c.is_empty()).map(|c| sanitize(&c));
        Self {
            kind,
            code,
            message: sanitize(message),
        }
    }

    /// The failure of a stream that ended before a terminal event.
    pub fn truncated() -> Self {
        Self::new(
            FailureKind::Truncated,
            None,
            "upstream stream ended before a terminal event",
        )
    }

    /// The failure described by an upstream error object.
    pub fn from_error(kind: FailureKind, error: &responses::ErrorBody) -> Self {
        let code = error.code.clone().or_else(|| error.kind.clone());
        let message = if error.message.trim().is_empty() {
            match kind {
                FailureKind::ErrorEvent => "upstream error",
                _ => "upstream response failed",
            }
        } else {
            error.message.as_str()
        };
        Self::new(kind, code, message)
    }

    /// The Anthropic error type to report this failure with.
    ///
    /// A failed response or an `error` event is typed by its code, through the one table
    /// of upstream codes ([`super::UPSTREAM_ERROR_CODES`]); a context overflow recognised by
    /// its wording is `invalid_request_error` whatever its code. An unknown code, and every
    /// other kind of failure (a cut or unreadable stream), is `api_error`.
    pub fn error_kind(&self) -> anthropic::ErrorKind {
        if !matches!(self.kind, FailureKind::Failed | FailureKind::ErrorEvent) {
            return anthropic::ErrorKind::ApiError;
        }
        if self.is_context_overflow() {
            return anthropic::ErrorKind::InvalidRequestError;
        }
        self.meaning().map_or(
            anthropic::ErrorKind::ApiError,
            super::CodeMeaning::error_kind,
        )
    }

    /// What the failure's code means ([`super::code_meaning`]), when the table knows it.
    pub fn meaning(&self) -> Option<super::CodeMeaning> {
        self.code.as_deref().and_then(super::code_meaning)
    }

    /// Whether the upstream said the prompt does not fit the context window
    /// ([`super::is_context_overflow`]); the server then answers with the Anthropic API's
    /// `prompt is too long` error.
    pub fn is_context_overflow(&self) -> bool {
        super::is_context_overflow(self.code.as_deref(), &self.message)
    }

    /// Whether the upstream rejected replayed encrypted reasoning
    /// ([`super::is_rejected_reasoning`]): the turn can be sent again without it.
    pub fn is_rejected_reasoning(&self) -> bool {
        super::is_rejected_reasoning(self.code.as_deref(), &self.message)
    }

    /// The Anthropic error body for this failure.
    ///
    /// A context overflow is worded as the Anthropic API words it (`prompt is too long: …`,
    /// figures from the upstream message when it has them); the server, which can count the
    /// request, words the errors it answers before any output itself.
    pub fn to_anthropic(&self) -> anthropic::ErrorBody {
        if self.error_kind() == anthropic::ErrorKind::InvalidRequestError
            && self.is_context_overflow()
        {
            return anthropic::ErrorBody::new(
                anthropic::ErrorKind::InvalidRequestError,
                super::overflow::prompt_too_long_uncounted(&self.message),
            );
        }
        anthropic::ErrorBody::new(self.error_kind(), self.message.clone())
    }
}

impl fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "upstream {} ({code}): {}", self.kind, self.message),
            None => write!(f, "upstream {}: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for UpstreamFailure {}

/// Removes what could be a secret from an upstream message: API keys (`sk-…`), bearer
/// tokens, `key=`/`token=` values and URL query strings; collapses control characters;
/// bounds the length.
pub(crate) fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_BYTES + 3));
    let mut words = message.split(' ').peekable();
    let mut first = true;
    let mut mask_next = false;
    while let Some(word) = words.next() {
        if !first {
            out.push(' ');
        }
        first = false;
        if mask_next && !word.is_empty() {
            out.push_str("***");
            mask_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if lower == "bearer" || lower == "basic" {
            out.push_str(word);
            mask_next = words.peek().is_some();
            continue;
        }
        out.push_str(&sanitize_word(word));
    }
    let mut cleaned: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !cleaned.is_char_boundary(end) {
            end -= 1;
        }
        cleaned.truncate(end);
        cleaned.push('…');
    }
    cleaned
}

/// Masks one whitespace-free word if it looks like a credential or a URL with a query.
fn sanitize_word(word: &str) -> String {
    let trimmed =
        word.trim_matches(|c: char| matches!(c, '"' | '\'' | '(' | ')' | ',' | '.' | ':' | ';'));
    if trimmed.len() >= 12
        && ["sk-", "sess-", "rk-", "eyJ"]
            .iter()
            .any(|p| trimmed.starts_with(p))
    {
        return word.replace(trimmed, &format!("{}***", &trimmed[..3]));
    }
    if (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && let Some((base, _)) = trimmed.split_once('?')
    {
        return word.replace(trimmed, &format!("{base}?***"));
    }
    for key in ["key=", "token=", "api_key=", "access_token=", "secret="] {
        if let Some(pos) = trimmed.to_ascii_lowercase().find(key) {
            let end = pos + key.len();
            if end < trimmed.len() {
                return word.replace(trimmed, &format!("{}***", &trimmed[..end]));
            }
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the code table, with the type a client gets, written out: a new row
    /// fails here until it is given its expected type.
    #[test]
    fn failed_response_codes_map_to_the_anthropic_type() {
        use anthropic::ErrorKind::*;
        let expected = [
            ("rate_limit_exceeded", RateLimitError),
            ("rate_limit_error", RateLimitError),
            ("insufficient_quota", RateLimitError),
            ("usage_limit_reached", RateLimitError),
            ("usage_not_included", RateLimitError),
            ("subscription_sharing_usage_limit_exceeded", RateLimitError),
            ("server_is_overloaded", OverloadedError),
            ("overloaded", OverloadedError),
            ("overloaded_error", OverloadedError),
            ("slow_down", OverloadedError),
            ("server_error", ApiError),
            ("internal_error", ApiError),
            ("internal_server_error", ApiError),
            ("vector_store_timeout", ApiError),
            ("cyber_policy", PermissionError),
            ("cyber_policy_violation", PermissionError),
            ("bio_policy", PermissionError),
            ("data_residency_mismatch", PermissionError),
            ("context_length_exceeded", InvalidRequestError),
            ("context_too_large", InvalidRequestError),
            ("context_window_exceeded", InvalidRequestError),
            ("previous_response_not_found", InvalidRequestError),
            ("invalid_encrypted_content", InvalidRequestError),
            ("invalid_prompt", InvalidRequestError),
            ("invalid_request_error", InvalidRequestError),
            ("invalid_value", InvalidRequestError),
            ("unsupported_parameter", InvalidRequestError),
            ("string_above_max_length", InvalidRequestError),
            ("invalid_image", InvalidRequestError),
            ("invalid_image_format", InvalidRequestError),
            ("invalid_base64_image", InvalidRequestError),
            ("invalid_image_url", InvalidRequestError),
            ("invalid_image_mode", InvalidRequestError),
            ("image_too_large", InvalidRequestError),
            ("image_too_small", InvalidRequestError),
            ("image_parse_error", InvalidRequestError),
            ("image_content_policy_violation", InvalidRequestError),
            ("image_file_too_large", InvalidRequestError),
            ("image_file_not_found", InvalidRequestError),
            ("unsupported_image_media_type", InvalidRequestError),
            ("empty_image_file", InvalidRequestError),
            ("failed_to_download_image", InvalidRequestError),
            ("a_code_nobody_knows", ApiError),
        ];
        let listed: Vec<&str> = super::super::UPSTREAM_ERROR_CODES
            .iter()
            .map(|(c, _)| *c)
            .collect();
        let tested: Vec<&str> = expected
            .iter()
            .map(|(c, _)| *c)
            .take(listed.len())
            .collect();
        assert_eq!(tested, listed, "every table row is tested, in table order");
        for (code, kind) in expected {
            for failure_kind in [FailureKind::Failed, FailureKind::ErrorEvent] {
                let failure = UpstreamFailure::new(failure_kind, Some(code.to_owned()), "m");
                assert_eq!(failure.error_kind(), kind, "{code}");
            }
            let cut = UpstreamFailure::new(FailureKind::Truncated, Some(code.to_owned()), "m");
            assert_eq!(cut.error_kind(), ApiError, "{code}: a cut stream");
        }
    }
}
