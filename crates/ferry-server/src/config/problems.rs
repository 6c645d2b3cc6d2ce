//! What is wrong with a config: [`ConfigProblem`], the [`Problems`] every section reports
//! to, and the range checks the sections share.

use std::fmt;
use std::time::Duration;

/// One thing wrong with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `accounts[1].base_url`.
    pub path: String,
    /// What is wrong (lowercase, no secret values).
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found, in the order the checks found them: the collector the sections
/// report to, and (in `bins/ferry`) the error of loading a config. `Display` prints a
/// count, then one `path: message` line each.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<ConfigProblem>);

impl Problems {
    /// Adds one problem at the dotted key `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} config problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// One mebibyte, the unit of the size limits.
pub(super) const MIB: u64 = 1024 * 1024;

pub(super) fn secs_in(
    p: &mut Problems,
    path: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    zero_off: bool,
) -> Option<Duration> {
    let v = value.unwrap_or(default);
    if v == 0 && zero_off {
        return None;
    }
    if !range.contains(&v) {
        let off = if zero_off { "0 (off) or " } else { "" };
        p.push(
            path,
            format!(
                "must be {off}between {} and {} seconds, got {v}",
                range.start(),
                range.end()
            ),
        );
    }
    Some(Duration::from_secs(v))
}

/// A count or size within `range` (else a problem, and the default).
pub(super) fn int_in(
    p: &mut Problems,
    path: &str,
    value: Option<u64>,
    default: usize,
    range: std::ops::RangeInclusive<u64>,
) -> usize {
    let Some(v) = value else {
        return default;
    };
    match usize::try_from(v) {
        Ok(n) if range.contains(&v) => n,
        _ => {
            p.push(
                path,
                format!(
                    "must be between {} and {}, got {v}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

pub(super) fn check_unexpanded(p: &mut Problems, path: &str, value: &str) {
    if value.contains("${") {
        p.push(
            path,
            "contains an unexpanded ${...} reference (environment variable not set?)",
        );
    }
}
