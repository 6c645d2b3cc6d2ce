//! What the classifier reads from an upstream error: its codes and its lowercased text (the
//! raw body and its messages), and the phrase checks over them.

use ferry_apicompat::convert::{CodeMeaning, ErrorReply, UpstreamFailure, code_meaning};
use http::HeaderMap;
use serde_json::Value;

/// What the classifier reads from an error body.
pub(super) struct ErrorInfo {
    /// `error.code`, `error.type`, `response.error.code`, `code`, `response.code`, `detail.code`.
    pub(super) codes: Vec<String>,
    /// Lowercased messages and the lowercased raw body (capped).
    pub(super) text: String,
    pub(super) looks_like_html: bool,
}

/// Only this much of a body is scanned for phrases.
const SCAN_LIMIT: usize = 64 * 1024;

impl ErrorInfo {
    /// A typed failure's code and message, read as a body holding them would be.
    pub(super) fn of_failure(failure: &UpstreamFailure) -> Self {
        let code = failure
            .code
            .as_deref()
            .map(|c| c.trim().to_ascii_lowercase());
        let mut text = code.clone().unwrap_or_default();
        text.push('\n');
        text.push_str(&failure.message.to_lowercase());
        Self {
            codes: code.into_iter().collect(),
            text,
            looks_like_html: false,
        }
    }

    /// What the classifier reads from a body already parsed.
    pub(super) fn of_reply(reply: &ErrorReply) -> Self {
        let body = reply.raw();
        let raw = &body[..body.len().min(SCAN_LIMIT)];
        let raw_text = String::from_utf8_lossy(raw);
        let head = raw_text
            .trim_start()
            .get(..15)
            .unwrap_or("")
            .to_ascii_lowercase();
        let looks_like_html = head.starts_with("<!doctype html") || head.starts_with("<html");
        let mut codes = Vec::new();
        let mut text = raw_text.to_lowercase();
        if let Some(value) = reply.json() {
            let paths: [&[&str]; 7] = [
                &["error", "code"],
                &["error", "type"],
                &["response", "error", "code"],
                &["code"],
                &["response", "code"],
                &["detail", "code"],
                &["type"],
            ];
            for path in paths {
                if let Some(code) = lookup(value, path).and_then(Value::as_str) {
                    codes.push(code.trim().to_ascii_lowercase());
                }
            }
            let messages: [&[&str]; 5] = [
                &["error", "message"],
                &["message"],
                &["response", "error", "message"],
                &["detail"],
                &["detail", "message"],
            ];
            for path in messages {
                if let Some(message) = lookup(value, path).and_then(Value::as_str) {
                    text.push('\n');
                    text.push_str(&message.to_lowercase());
                }
            }
        }
        Self {
            codes,
            text,
            looks_like_html,
        }
    }

    pub(super) fn has_code(&self, wanted: &[&str]) -> bool {
        self.codes.iter().any(|c| wanted.contains(&c.as_str()))
    }

    /// Whether a code of the body has this meaning in the one code table
    /// ([`ferry_apicompat::convert::UPSTREAM_ERROR_CODES`]).
    pub(super) fn has_meaning(&self, meaning: CodeMeaning) -> bool {
        self.codes.iter().any(|c| code_meaning(c) == Some(meaning))
    }

    pub(super) fn contains(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }

    pub(super) fn is_html(&self, headers: &HeaderMap) -> bool {
        self.looks_like_html
            || headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"))
    }

    pub(super) fn is_cyber_policy(&self) -> bool {
        self.has_meaning(CodeMeaning::PolicyRefusal) || self.contains("cyber_policy")
    }

    pub(super) fn is_continuation_state_error(&self) -> bool {
        self.has_meaning(CodeMeaning::StaleContinuation)
            || self.has_meaning(CodeMeaning::RejectedReasoning)
            || self.contains("previous_response_not_found")
            || ferry_apicompat::convert::is_rejected_reasoning(None, &self.text)
            || (self.contains("previous response") && self.contains("not found"))
    }

    /// The codes and wordings of [`ferry_apicompat::convert::is_context_overflow`]: the
    /// classifier and the converter agree on what an overflow is.
    pub(super) fn is_context_window_error(&self) -> bool {
        self.has_meaning(CodeMeaning::ContextOverflow)
            || ferry_apicompat::convert::is_context_overflow(None, &self.text)
    }

    pub(super) fn is_model_unsupported(&self) -> bool {
        self.contains("model is not supported when using codex with a chatgpt account")
            || (self.contains("model")
                && self.contains("not supported")
                && self.contains("account"))
    }

    pub(super) fn is_account_state_error(&self) -> bool {
        self.has_code(&[
            "account_deactivated",
            "deactivated_workspace",
            "organization_disabled",
        ]) || self.contains("organization has been disabled")
            || self.contains("identity verification is required")
            || self.contains("account has been deactivated")
            || self.contains("account is deactivated")
            || self.contains("workspace has been deactivated")
    }

    pub(super) fn is_request_too_large(&self) -> bool {
        self.has_code(&["request_too_large", "payload_too_large"])
            || self.contains("request entity too large")
            || self.contains("request body too large")
            || self.contains("payload too large")
    }

    pub(super) fn is_overload(&self) -> bool {
        self.has_meaning(CodeMeaning::Overloaded)
            || self.contains("server is overloaded")
            || self.contains("servers are overloaded")
            || self.contains("servers are currently overloaded")
    }

    pub(super) fn is_transient_processing_error(&self, status: u16) -> bool {
        if status >= 400 && self.is_overload() {
            return true;
        }
        status == 400
            && (self.contains("an error occurred while processing your request")
                || self.contains("selected model is at capacity")
                || (self.contains("you can retry your request")
                    && self.contains("help.openai.com")
                    && self.contains("request id")))
    }
}

fn lookup<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}
