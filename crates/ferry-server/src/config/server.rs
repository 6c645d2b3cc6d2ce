//! `[server]`: the listening socket, body limits and shutdown grace.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::problems::{MIB, Problems, secs_in};

/// `[server]`
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Larger request bodies get 413 `request_too_large`.
    pub max_body_bytes: u64,
    /// How long in-flight requests may take to finish after shutdown was asked for.
    pub shutdown_grace: Duration,
    /// How long a client may take to send its whole request body.
    pub body_read_timeout: Duration,
    /// Client connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}
/// `[server]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// default `127.0.0.1:8080`
    pub listen: Option<String>,
    /// default 32 MiB
    pub max_body_bytes: Option<u64>,
    /// default 30
    pub shutdown_grace_secs: Option<u64>,
    /// default 60; 1..=3600
    pub body_read_timeout_secs: Option<u64>,
    /// default 4096; 1..=1000000
    pub max_connections: Option<u64>,
}

impl RawServer {
    pub(super) fn validate(self, p: &mut Problems) -> ServerConfig {
        let listen_raw = self.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = match listen_raw.trim().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                p.push(
                    "server.listen",
                    format!("not a socket address (host:port): {listen_raw:?}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(32 * MIB);
        if !(1024..=1024 * MIB).contains(&max_body_bytes) {
            p.push(
                "server.max_body_bytes",
                format!(
                    "must be between 1024 and {}, got {max_body_bytes}",
                    1024 * MIB
                ),
            );
        }
        let shutdown_grace = secs_in(
            p,
            "server.shutdown_grace_secs",
            self.shutdown_grace_secs,
            30,
            0..=3600,
            false,
        )
        .unwrap_or_default();
        let body_read_timeout = secs_in(
            p,
            "server.body_read_timeout_secs",
            self.body_read_timeout_secs,
            60,
            1..=3600,
            false,
        )
        .unwrap_or(Duration::from_secs(60));
        let max_connections = self.max_connections.unwrap_or(4096);
        if !(1..=1_000_000).contains(&max_connections) {
            p.push(
                "server.max_connections",
                format!("must be between 1 and 1000000, got {max_connections}"),
            );
        }
        ServerConfig {
            listen,
            max_body_bytes,
            shutdown_grace,
            body_read_timeout,
            max_connections: usize::try_from(max_connections.clamp(1, 1_000_000)).unwrap_or(4096),
        }
    }
}
