//! `[capture]`: recording requests and their upstream exchanges to files (docs/captures.md).

use std::path::PathBuf;

use serde::Deserialize;

use super::problems::{MIB, Problems};

/// Which requests are captured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureMode {
    /// Nothing is captured (the default; costs nothing per request).
    #[default]
    Off,
    /// Requests whose outcome was not OK: a retry or failover, an error status to the
    /// client, or an `error` event in its stream.
    Errors,
    /// Every request that reached the upstream stage.
    All,
}

impl CaptureMode {
    /// The mode as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Errors => "errors",
            Self::All => "all",
        }
    }
}

/// The default capture directory (relative to the working directory).
pub const DEFAULT_CAPTURE_DIR: &str = "ferry-captures";
/// The default budget of the whole capture directory: 256 MiB.
pub const DEFAULT_CAPTURE_MAX_BYTES: u64 = 256 * MIB;
/// The default cap on each body recorded in a capture: 4 MiB.
pub const DEFAULT_CAPTURE_MAX_BODY_BYTES: u64 = 4 * MIB;

/// `[capture]`
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Which requests are captured.
    pub mode: CaptureMode,
    /// The directory of the capture files (created with mode 0700).
    pub dir: PathBuf,
    /// Total size of the capture files; the oldest are deleted first when over it.
    pub max_bytes: u64,
    /// Each recorded body (client request, upstream request, upstream response, client
    /// answer) keeps at most this many bytes; a longer one is cut and marked truncated.
    pub max_body_bytes: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            mode: CaptureMode::Off,
            dir: PathBuf::from(DEFAULT_CAPTURE_DIR),
            max_bytes: DEFAULT_CAPTURE_MAX_BYTES,
            max_body_bytes: DEFAULT_CAPTURE_MAX_BODY_BYTES as usize,
        }
    }
}

/// `[capture]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCapture {
    /// `"off"` (default), `"errors"` or `"all"`
    pub mode: Option<String>,
    /// default `ferry-captures`
    pub dir: Option<String>,
    /// default 256 MiB; 1 MiB..=1 TiB
    pub max_bytes: Option<u64>,
    /// default 4 MiB; 1 KiB..=1 GiB
    pub max_body_bytes: Option<u64>,
}

impl RawCapture {
    pub(super) fn validate(self, p: &mut Problems) -> CaptureConfig {
        let default = CaptureConfig::default();
        let mode = match self.mode.as_deref().map(str::trim) {
            None | Some("off") => CaptureMode::Off,
            Some("errors") => CaptureMode::Errors,
            Some("all") => CaptureMode::All,
            Some(other) => {
                p.push(
                    "capture.mode",
                    format!("must be \"off\", \"errors\" or \"all\", got {other:?}"),
                );
                CaptureMode::Off
            }
        };
        let dir = match self.dir {
            Some(d) if d.trim().is_empty() => {
                p.push("capture.dir", "must not be empty");
                default.dir
            }
            Some(d) => {
                super::problems::check_unexpanded(p, "capture.dir", &d);
                PathBuf::from(d)
            }
            None => default.dir,
        };
        let max_bytes = self.max_bytes.unwrap_or(default.max_bytes);
        if !(MIB..=1024 * 1024 * MIB).contains(&max_bytes) {
            p.push(
                "capture.max_bytes",
                format!(
                    "must be between {MIB} and {}, got {max_bytes}",
                    1024 * 1024 * MIB
                ),
            );
        }
        let max_body_bytes = self
            .max_body_bytes
            .unwrap_or(DEFAULT_CAPTURE_MAX_BODY_BYTES);
        if !(1024..=1024 * MIB).contains(&max_body_bytes) {
            p.push(
                "capture.max_body_bytes",
                format!(
                    "must be between 1024 and {}, got {max_body_bytes}",
                    1024 * MIB
                ),
            );
        }
        CaptureConfig {
            mode,
            dir,
            max_bytes,
            max_body_bytes: usize::try_from(max_body_bytes.clamp(1024, 1024 * MIB))
                .unwrap_or(default.max_body_bytes),
        }
    }
}
