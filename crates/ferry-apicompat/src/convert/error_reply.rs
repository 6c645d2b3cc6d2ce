//! An upstream HTTP error reply, read once.
//!
//! An error body is looked at by several rules: the continuation check (was
//! `previous_response_id` rejected?), the rejected-reasoning check, the failover classifier,
//! the rate-limit reset of a Codex `usage_limit_reached` body and the message the client
//! gets. [`ErrorReply::parse`] reads the body's JSON once; each rule reads the parsed value
//! (and the raw text, for phrases the JSON escapes would hide) instead of parsing again.

use serde_json::Value;

/// An upstream error body: its raw bytes and, when it is JSON, the parsed value.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    raw: Vec<u8>,
    json: Option<Value>,
}

impl ErrorReply {
    /// Reads `body` (any bytes; JSON or not).
    pub fn parse(body: &[u8]) -> Self {
        Self {
            raw: body.to_vec(),
            json: serde_json::from_slice(body).ok(),
        }
    }

    /// The raw body.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The body's JSON, when it is JSON.
    pub fn json(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    /// The string at `path` in the JSON body (`["error", "code"]`), when there is one.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        path.iter()
            .try_fold(self.json.as_ref()?, |v, key| v.get(key))
            .and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_read_once_and_looked_up_by_path() {
        let r = ErrorReply::parse(br#"{"error":{"code":"x","message":"m"}}"#);
        assert_eq!(r.str_at(&["error", "code"]), Some("x"));
        assert_eq!(r.str_at(&["error", "nope"]), None);
        let html = ErrorReply::parse(b"<html>bad gateway</html>");
        assert_eq!(html.json(), None);
        assert_eq!(html.raw(), b"<html>bad gateway</html>");
    }
}
