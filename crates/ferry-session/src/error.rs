//! The one error type of this crate.

/// A session-store operation failed.
///
/// Messages never contain a secret: a Redis URL is shown with its password replaced by
/// `***`, and any text a backend returns is scrubbed of the password before it lands here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The value is larger than the store accepts; it was not stored, and any value that
    /// was stored under the same key before was removed.
    #[error("value of {len} bytes exceeds the session store limit of {limit} bytes")]
    ValueTooLarge {
        /// Size of the refused value, in bytes.
        len: usize,
        /// The per-value limit, in bytes.
        limit: usize,
    },
    /// The Redis URL could not be parsed.
    #[error("invalid redis url {url}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis could not be reached when the store was opened.
    #[error("cannot connect to redis at {url}: {reason}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why, as the client library put it (password scrubbed).
        reason: String,
    },
    /// A Redis command failed (connection lost, timeout, server error).
    #[error("redis {op} failed: {reason}")]
    Redis {
        /// The operation, e.g. `get` or `acquire_slot`.
        op: &'static str,
        /// Why, as the client library put it (password scrubbed).
        reason: String,
    },
}

impl StoreError {
    /// A short, low-cardinality name of the error, for metrics and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ValueTooLarge { .. } => "value_too_large",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Connect { .. } => "connect",
            Self::Redis { .. } => "redis",
        }
    }
}
