//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// Why every account is unavailable right now (see [`AccountsError::AllUnavailable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// Every usable account is cooling down after a rate limit (429).
    RateLimited,
    /// Accounts are overloaded, cooling down after errors, or all their slots are busy (529).
    Overloaded,
    /// Every account is disabled, or was already tried (excluded) for this request.
    Exhausted,
}

impl Unavailable {
    /// A low-cardinality label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Exhausted => "exhausted",
        }
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the account pool. Messages are lowercase and never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// A config value is invalid (reported at start-up, all problems together).
    #[error("account {account:?}: {field}: {problem}")]
    InvalidConfig {
        /// The account's `name` (may be empty when the name itself is the problem).
        account: String,
        /// The offending config key.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The pool has no accounts at all.
    #[error("no upstream accounts are configured")]
    NoAccounts,
    /// No account can take the request now.
    #[error("all upstream accounts are unavailable ({kind})")]
    AllUnavailable {
        /// Rate limit (→ 429), overload (→ 529) or exhausted.
        kind: Unavailable,
        /// The earliest moment an account becomes usable again, when known.
        retry_after: Option<Duration>,
    },
    /// The account's service-tier policy blocks the request (the server answers 403).
    #[error("service_tier={tier} is not allowed for model {model}")]
    ServiceTierBlocked {
        /// The canonical tier that was requested.
        tier: String,
        /// The upstream model.
        model: String,
    },
    /// Refreshing an OAuth access token failed.
    #[error("token refresh for account {account:?} failed: {reason}")]
    TokenRefresh {
        /// The account's name.
        account: String,
        /// The token endpoint's status, if it answered.
        status: Option<u16>,
        /// A sanitised reason (an OAuth error code or a transport error kind).
        reason: String,
        /// True when retrying cannot help (invalid or reused refresh token): the account is disabled.
        permanent: bool,
    },
    /// A login (`ferry login`, `ferry import-codex-auth`) failed.
    #[error("login failed: {reason}")]
    Login {
        /// What went wrong (statuses and OAuth error codes, never a token).
        reason: String,
    },
    /// The account has no usable credential (for example an OAuth account with neither token).
    #[error("account {account:?} has no usable credential")]
    MissingCredential {
        /// The account's name.
        account: String,
    },
    /// The forced-instructions template could not be rendered.
    #[error("forced instructions template: {problem}")]
    Template {
        /// What is wrong with the template.
        problem: String,
    },
    /// Reading or writing the OAuth credential state file failed.
    #[error("credential state file {}: {source}", path.display())]
    StateFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Responses Lite shape cannot carry a declared tool.
    #[error(
        "the {tool} tool is not available for model {model} on the Codex backend: its Responses Lite request shape takes only function and custom tools (remove the tool, or map the model to one that takes it)"
    )]
    LiteUnsupportedTool {
        /// The tool's Responses type (`web_search`).
        tool: String,
        /// The upstream model.
        model: String,
    },
    /// A header value could not be built (it contained characters HTTP forbids).
    #[error("invalid value for header {name}")]
    InvalidHeader {
        /// The header's name.
        name: &'static str,
    },
}
