//! Test support: request builders, the store backends, and a real `redis-server`
//! (`ferry_testkit::redis`).

use std::sync::Arc;

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

/// A real `redis-server` on a free 127.0.0.1 port (shared with the server's replica
/// tests): fails, never skips, when the binary is missing.
pub(crate) use ferry_testkit::redis::RedisServer;

/// What these tests need from a [`RedisServer`] beyond its URL.
pub(crate) trait RedisServerExt {
    /// A store on this server with the default settings.
    async fn store(&self) -> Arc<dyn Store>;
    /// A plain connection, to look at what the store wrote.
    async fn raw(&self) -> redis::aio::MultiplexedConnection;
}

impl RedisServerExt for RedisServer {
    async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(RedisConfig::new(self.url()))
                .await
                .unwrap(),
        )
    }

    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
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
                    let store =
                        $crate::suite::support::RedisServerExt::store(&server).await;
                    super::$name(store).await;
                    drop(server);
                }
            )*
        }
    };
}
