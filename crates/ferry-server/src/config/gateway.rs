//! `[gateway]`: streaming timers, upstream timeouts, failover and the OAuth options.

use std::time::Duration;

use serde::Deserialize;

use super::problems::{MIB, Problems, check_unexpanded, secs_in};

/// `[gateway]`
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Anthropic `ping` after this much upstream silence; `None` = off.
    pub stream_keepalive_interval: Option<Duration>,
    /// Upstream silent this long is a failure; `None` = off.
    pub stream_data_interval_timeout: Option<Duration>,
    /// Longest upstream SSE line accepted.
    pub max_line_bytes: usize,
    /// Failover attempts per request.
    pub max_account_switches: u32,
    /// TCP/TLS connect timeout to the upstream.
    pub upstream_connect_timeout: Duration,
    /// Time from sending the upstream request to its response headers.
    pub upstream_header_timeout: Duration,
    /// A non-streaming client's answer, asked of the upstream as one JSON body: longest
    /// time from sending the request to the end of that body.
    pub upstream_json_timeout: Duration,
    /// Where refreshed OAuth credentials are kept across restarts (`None`: memory only).
    pub oauth_state_dir: Option<std::path::PathBuf>,
    /// OAuth accounts: a template the upstream `instructions` are rendered from, with the
    /// request's own instructions and its model names as fields; `None` sends them as they are.
    pub forced_codex_instructions_template: Option<String>,
    /// OAuth accounts: always present the Codex CLI user-agent.
    pub force_codex_cli: bool,
    /// Longest time a shared (Redis) concurrency slot is held before it frees itself, so a
    /// crashed replica cannot keep an account's slot forever.
    pub concurrency_slot_ttl: Duration,
}
/// `[gateway]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    /// default 10; 0 = off; else 5..=300
    pub stream_keepalive_interval_secs: Option<u64>,
    /// default 180; 0 = off; else 30..=3600
    pub stream_data_interval_timeout_secs: Option<u64>,
    /// default 40 MiB; 64 KiB..=1 GiB
    pub max_line_bytes: Option<u64>,
    /// default 3; at most 100
    pub max_account_switches: Option<u32>,
    /// default 10; 1..=300
    pub upstream_connect_timeout_secs: Option<u64>,
    /// default 300; 1..=3600
    pub upstream_header_timeout_secs: Option<u64>,
    /// default 600; 1..=3600
    pub upstream_json_timeout_secs: Option<u64>,
    /// optional directory for refreshed OAuth credentials
    pub oauth_state_dir: Option<String>,
    /// optional OAuth instructions template (`{{ .ExistingInstructions }}` …)
    pub forced_codex_instructions_template: Option<String>,
    /// default false
    pub force_codex_cli: Option<bool>,
    /// default 1800; 60..=86400 (shared concurrency slots, `[session] store = "redis"`)
    pub concurrency_slot_ttl_secs: Option<u64>,
}

impl RawGateway {
    pub(super) fn validate(self, p: &mut Problems) -> GatewayConfig {
        let stream_keepalive_interval = secs_in(
            p,
            "gateway.stream_keepalive_interval_secs",
            self.stream_keepalive_interval_secs,
            10,
            5..=300,
            true,
        );
        let stream_data_interval_timeout = secs_in(
            p,
            "gateway.stream_data_interval_timeout_secs",
            self.stream_data_interval_timeout_secs,
            180,
            30..=3600,
            true,
        );
        let max_line = self.max_line_bytes.unwrap_or(40 * MIB);
        if !(64 * 1024..=1024 * MIB).contains(&max_line) {
            p.push(
                "gateway.max_line_bytes",
                format!("must be between 65536 and {}, got {max_line}", 1024 * MIB),
            );
        }
        let max_account_switches = self.max_account_switches.unwrap_or(3);
        if max_account_switches > 100 {
            p.push(
                "gateway.max_account_switches",
                format!("must be at most 100, got {max_account_switches}"),
            );
        }
        let upstream_connect_timeout = secs_in(
            p,
            "gateway.upstream_connect_timeout_secs",
            self.upstream_connect_timeout_secs,
            10,
            1..=300,
            false,
        )
        .unwrap_or_default();
        let upstream_header_timeout = secs_in(
            p,
            "gateway.upstream_header_timeout_secs",
            self.upstream_header_timeout_secs,
            300,
            1..=3600,
            false,
        )
        .unwrap_or_default();
        let upstream_json_timeout = secs_in(
            p,
            "gateway.upstream_json_timeout_secs",
            self.upstream_json_timeout_secs,
            600,
            1..=3600,
            false,
        )
        .unwrap_or_default();
        let oauth_state_dir = self
            .oauth_state_dir
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if let Some(d) = &oauth_state_dir {
            check_unexpanded(p, "gateway.oauth_state_dir", d);
        }
        let concurrency_slot_ttl = secs_in(
            p,
            "gateway.concurrency_slot_ttl_secs",
            self.concurrency_slot_ttl_secs,
            1800,
            60..=86_400,
            false,
        )
        .unwrap_or_default();
        GatewayConfig {
            stream_keepalive_interval,
            stream_data_interval_timeout,
            max_line_bytes: usize::try_from(max_line).unwrap_or(usize::MAX),
            max_account_switches,
            upstream_connect_timeout,
            upstream_header_timeout,
            upstream_json_timeout,
            oauth_state_dir: oauth_state_dir.map(std::path::PathBuf::from),
            forced_codex_instructions_template: self
                .forced_codex_instructions_template
                .filter(|t| !t.trim().is_empty()),
            force_codex_cli: self.force_codex_cli.unwrap_or(false),
            concurrency_slot_ttl,
        }
    }
}
