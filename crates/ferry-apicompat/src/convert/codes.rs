//! The one table of upstream error codes and what each means.
//!
//! An upstream reports a failure with a code: in an HTTP error body (`error.code`, or
//! `error.type` when there is no code), in a failed response (`response.error.code`) or in an
//! `error` event. Whatever the channel, a code means the same thing for the client (which
//! Anthropic error it gets) and for the account pool (whether another account could serve
//! the request). [`UPSTREAM_ERROR_CODES`] is the only place that says so:
//! [`super::UpstreamFailure::error_kind`], the context-overflow check and the failover
//! classifier of `ferry-accounts` all read it.
//!
//! The rows cover the `ResponseError.code` list of the official OpenAI SDKs, the codes of
//! OpenAI's HTTP errors, and the codes the ChatGPT/Codex backend and common relays send.
//! A code not in the table is a server-side failure to the client (`api_error`) and never
//! fails over on its code alone (the HTTP status still decides).

use crate::anthropic::ErrorKind;

/// What an upstream error code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodeMeaning {
    /// The account ran out of rate limit, quota or plan usage. Another account may serve
    /// the request: the pool cools this one down and fails over; with none left the client
    /// gets 429 `rate_limit_error`.
    AccountLimit,
    /// The upstream is overloaded: fail over without a penalty; 529 `overloaded_error`.
    Overloaded,
    /// A failure on the upstream's side: fail over; `api_error`.
    ServerError,
    /// A policy refused the request (cyber, bio, data residency). The request's fault: no
    /// failover, no retry; 403 `permission_error`.
    PolicyRefusal,
    /// The prompt does not fit the context window: 400, worded as the Anthropic API's
    /// `prompt is too long` so the client compacts.
    ContextOverflow,
    /// A `previous_response_id` the upstream no longer knows: the gateway replays the full
    /// history; to a client, 400 `invalid_request_error`.
    StaleContinuation,
    /// Replayed encrypted reasoning the upstream cannot verify (issued under another account
    /// or key): the gateway retries once without it; to a client, 400
    /// `invalid_request_error`.
    RejectedReasoning,
    /// Anything else the request got wrong (an invalid prompt, parameter or image): no
    /// failover, no retry; 400 `invalid_request_error`.
    InvalidRequest,
}

impl CodeMeaning {
    /// The Anthropic error type a client gets for it.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            Self::AccountLimit => ErrorKind::RateLimitError,
            Self::Overloaded => ErrorKind::OverloadedError,
            Self::ServerError => ErrorKind::ApiError,
            Self::PolicyRefusal => ErrorKind::PermissionError,
            Self::ContextOverflow
            | Self::StaleContinuation
            | Self::RejectedReasoning
            | Self::InvalidRequest => ErrorKind::InvalidRequestError,
        }
    }

    /// Whether another account could serve the request (the code alone says so, whatever
    /// the HTTP status it came with).
    pub fn fails_over(self) -> bool {
        matches!(
            self,
            Self::AccountLimit | Self::Overloaded | Self::ServerError
        )
    }

    /// Whether the request itself is at fault: it fails the same on every account.
    pub fn is_request_fault(self) -> bool {
        !self.fails_over()
    }
}

/// Every upstream error code ferry knows, with its meaning.
pub const UPSTREAM_ERROR_CODES: &[(&str, CodeMeaning)] = &[
    // Account limits.
    ("rate_limit_exceeded", CodeMeaning::AccountLimit),
    ("rate_limit_error", CodeMeaning::AccountLimit),
    ("insufficient_quota", CodeMeaning::AccountLimit),
    ("usage_limit_reached", CodeMeaning::AccountLimit),
    ("usage_not_included", CodeMeaning::AccountLimit),
    (
        "subscription_sharing_usage_limit_exceeded",
        CodeMeaning::AccountLimit,
    ),
    // Overload.
    ("server_is_overloaded", CodeMeaning::Overloaded),
    ("overloaded", CodeMeaning::Overloaded),
    ("overloaded_error", CodeMeaning::Overloaded),
    ("slow_down", CodeMeaning::Overloaded),
    // Server side.
    ("server_error", CodeMeaning::ServerError),
    ("internal_error", CodeMeaning::ServerError),
    ("internal_server_error", CodeMeaning::ServerError),
    ("vector_store_timeout", CodeMeaning::ServerError),
    // Policy refusals.
    ("cyber_policy", CodeMeaning::PolicyRefusal),
    ("cyber_policy_violation", CodeMeaning::PolicyRefusal),
    ("bio_policy", CodeMeaning::PolicyRefusal),
    ("data_residency_mismatch", CodeMeaning::PolicyRefusal),
    // Context window.
    ("context_length_exceeded", CodeMeaning::ContextOverflow),
    ("context_too_large", CodeMeaning::ContextOverflow),
    ("context_window_exceeded", CodeMeaning::ContextOverflow),
    // Continuation state.
    (
        "previous_response_not_found",
        CodeMeaning::StaleContinuation,
    ),
    ("invalid_encrypted_content", CodeMeaning::RejectedReasoning),
    // The request's own errors.
    ("invalid_prompt", CodeMeaning::InvalidRequest),
    ("invalid_request_error", CodeMeaning::InvalidRequest),
    ("invalid_value", CodeMeaning::InvalidRequest),
    ("unsupported_parameter", CodeMeaning::InvalidRequest),
    ("string_above_max_length", CodeMeaning::InvalidRequest),
    ("invalid_image", CodeMeaning::InvalidRequest),
    ("invalid_image_format", CodeMeaning::InvalidRequest),
    ("invalid_base64_image", CodeMeaning::InvalidRequest),
    ("invalid_image_url", CodeMeaning::InvalidRequest),
    ("invalid_image_mode", CodeMeaning::InvalidRequest),
    ("image_too_large", CodeMeaning::InvalidRequest),
    ("image_too_small", CodeMeaning::InvalidRequest),
    ("image_parse_error", CodeMeaning::InvalidRequest),
    (
        "image_content_policy_violation",
        CodeMeaning::InvalidRequest,
    ),
    ("image_file_too_large", CodeMeaning::InvalidRequest),
    ("image_file_not_found", CodeMeaning::InvalidRequest),
    ("unsupported_image_media_type", CodeMeaning::InvalidRequest),
    ("empty_image_file", CodeMeaning::InvalidRequest),
    ("failed_to_download_image", CodeMeaning::InvalidRequest),
];

/// What an upstream error code means, when the table knows it (case and surrounding
/// blanks ignored).
pub fn code_meaning(code: &str) -> Option<CodeMeaning> {
    let code = code.trim();
    UPSTREAM_ERROR_CODES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(code))
        .map(|&(_, meaning)| meaning)
}

/// The codes of one meaning (for callers that search a body for any of them).
pub fn codes_meaning(meaning: CodeMeaning) -> impl Iterator<Item = &'static str> {
    UPSTREAM_ERROR_CODES
        .iter()
        .filter(move |(_, m)| *m == meaning)
        .map(|&(code, _)| code)
}

/// Whether an upstream error (its code and message) rejects replayed encrypted reasoning:
/// the [`CodeMeaning::RejectedReasoning`] code, or OpenAI's wordings of it ("The encrypted
/// content … could not be verified", "… could not be decrypted").
pub fn is_rejected_reasoning(code: Option<&str>, message: &str) -> bool {
    if code.and_then(code_meaning) == Some(CodeMeaning::RejectedReasoning) {
        return true;
    }
    let text = message.to_lowercase();
    let has = |needle: &str| text.contains(needle);
    codes_meaning(CodeMeaning::RejectedReasoning).any(has)
        || has("encrypted content could not be decrypted")
        || has("encrypted_content could not be verified")
        || (has("encrypted content") && has("could not be verified"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_in_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for (code, _) in UPSTREAM_ERROR_CODES {
            assert_eq!(*code, code.to_ascii_lowercase(), "{code}");
            assert!(seen.insert(*code), "{code} is listed twice");
        }
        assert_eq!(
            code_meaning(" Insufficient_Quota "),
            Some(CodeMeaning::AccountLimit)
        );
        assert_eq!(code_meaning("something_new"), None);
    }

    #[test]
    fn rejected_reasoning_is_known_by_code_or_wording() {
        assert!(is_rejected_reasoning(
            Some("invalid_encrypted_content"),
            "x"
        ));
        assert!(is_rejected_reasoning(
            None,
            "The encrypted content gAAA==. could not be verified."
        ));
        assert!(is_rejected_reasoning(
            Some("invalid_request_error"),
            "encrypted content could not be decrypted"
        ));
        assert!(!is_rejected_reasoning(
            Some("server_error"),
            "could not be verified"
        ));
    }
}
