//! Test support: request builders, the store backends, and a real `redis-server`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferry_apicompat::anthropic;
use ferry_session::{MemoryStore, RedisConfig, RedisStore, Store};
use serde_json::Value;

/// Parses a Messages request from JSON, as the server would.
pub(crate) fn req(json: &Value) -> anthropic::MessagesRequest {
    anthropic::parse_request(&serde_json::to_vec(json).unwrap()).unwrap()
}

/// A recorded Claude Code request from `fixtures/requests/claude-code/`.
pub(crate) fn claude_code(case: &str) -> anthropic::MessagesRequest {
    req(&ferry_testkit::claude_code_request(case))
}

/// A `redis-server` on a free 127.0.0.1 port, with persistence off, killed on drop.
pub(crate) struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server and waits until it accepts connections.
    ///
    /// Fails (never skips) when the binary is missing: `cargo xtask test` installs it.
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): the Redis tests need it; \
                     run `cargo xtask test`, which installs it"
                )
            });
        let server = Self { child, port };
        let mut attempts = 0;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            attempts += 1;
            assert!(
                attempts < 1000,
                "redis-server did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// A store on this server with the default settings.
    pub(crate) async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(RedisConfig::new(self.url()))
                .await
                .unwrap(),
        )
    }

    /// A plain connection, to look at what the store wrote.
    pub(crate) async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory store with the default bounds.
pub(crate) fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::default())
}

/// Runs each named `async fn(Arc<dyn Store>)` of the enclosing module against both
/// backends: `memory::<name>` and `redis::<name>` (each with its own redis-server).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::suite::support::memory()).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = $crate::suite::support::RedisServer::start();
                    super::$name(server.store().await).await;
                    drop(server);
                }
            )*
        }
    };
}
