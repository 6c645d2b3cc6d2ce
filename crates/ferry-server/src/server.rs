//! Listening, connections and graceful shutdown (hyper 1 + hyper-util, no framework).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::StartError;
use crate::messages::UsageLog;
use crate::state::{AppState, ConfigSource, Live, ReloadReport};

/// A bound, not yet running server. [`bind`] it, read [`Server::local_addr`], then
/// [`Server::run`] it.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<Live>,
}

/// Swaps the configuration of a running [`Server`] (`SIGHUP` in `ferry serve`). Cheap to
/// clone.
#[derive(Clone)]
pub struct Reloader {
    state: Arc<Live>,
}

impl Reloader {
    /// Makes `config` (already validated) the one new requests run with: client keys,
    /// accounts, model mappings, limits and timeouts. Requests in flight finish under the
    /// config they started with. Returns the changes that take effect only on restart
    /// (listen address, session store). An error (the accounts cannot be built) keeps the
    /// old config.
    pub fn reload(&self, config: Config) -> Result<Vec<String>, StartError> {
        let notes = self.state.reload(config)?;
        let current = self.state.get();
        tracing::info!(target: "ferry::server", accounts = current.config.accounts.len(), client_keys = current.config.client_keys.len(), "config reloaded");
        Ok(notes)
    }

    /// Sets where [`Reloader::reload_from_source`] reads the config (`ferry serve`: the
    /// file, `FERRY_*` and the flags, read again each time).
    pub fn set_config_source(&self, source: ConfigSource) {
        self.state.set_source(source);
    }

    /// Reads the config from the [`ConfigSource`] and, when it is valid, makes it the one
    /// new requests run with (see [`Reloader::reload`]); a config with problems is refused
    /// and the running one kept. The one reload behind `SIGHUP` and
    /// `POST {admin.path}/api/reload`; it logs what it did and returns it.
    pub fn reload_from_source(&self) -> ReloadReport {
        self.state.reload_from_source()
    }
}

/// Binds the listen address and builds the gateway (session store, upstream clients).
/// Prints nothing; warns through `tracing` when no client key is configured.
pub async fn bind(mut config: Config) -> Result<Server, StartError> {
    let addr = config.server.listen;
    // Simulated accounts get the built-in upstream, on a loopback port of its own.
    let sim = crate::embedded_sim::SimSlot::default();
    sim.resolve(&mut config)?;
    let state = AppState::new(config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    if state.config.client_keys.is_empty() {
        tracing::warn!(target: "ferry::server", "no client_keys configured: the gateway is open to anyone who can reach {addr}");
    }
    Ok(Server {
        listener,
        addr,
        state: Live::new(state, sim),
    })
}

/// Binds and runs until `shutdown` resolves, then shuts down gracefully.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    bind(config).await?.run(shutdown).await
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state requests run with now (for in-crate tests that look behind the HTTP API).
    #[cfg(test)]
    pub(crate) fn current_state(&self) -> Arc<crate::state::AppState> {
        self.state.get()
    }

    /// A handle that reloads this server's configuration while it runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: Arc::clone(&self.state),
        }
    }

    /// Accepts connections until `shutdown` resolves. Then stops accepting, lets in-flight
    /// requests finish for `server.shutdown_grace`, asks still-open streams to end with an
    /// `error` event, and returns once every connection is closed (or a short bound later).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let Self {
            listener,
            addr,
            state,
        } = self;
        tracing::info!(target: "ferry::server", %addr, accounts = state.get().config.accounts.len(), "serving");
        let graceful = GracefulShutdown::new();
        // Client connections at once: past the limit a connection gets a 503 and is closed,
        // rather than fds running out and accept() stalling everyone.
        // Fixed at start: a reload does not change it.
        let slots = Arc::new(tokio::sync::Semaphore::new(
            state.get().config.server.max_connections,
        ));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(target: "ferry::server", error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        refuse(stream, &state.get());
                        continue;
                    };
                    let st = state.clone();
                    let log = UsageLog::new();
                    let conn_log = log.clone();
                    let svc = service_fn(move |req| {
                        // The config current when the request arrives (a keep-alive
                        // connection sees a reload from its next request on).
                        let live = Arc::clone(&st);
                        let st = st.get();
                        let log = conn_log.clone();
                        // Boxed: hyper keeps a slot the size of the service future for the
                        // connection's whole life, so an unboxed handler future would cost
                        // its full size (~7 KiB) per connection, also while only the
                        // response body streams. Boxed, it is freed once the head is ready.
                        Box::pin(async move {
                            Ok::<_, Infallible>(crate::routes::handle(st, &live, req, log).await)
                        })
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    let conn = LoggedConn { conn: Box::pin(graceful.watch(conn)), log };
                    #[expect(clippy::disallowed_methods, reason = "a connection task lives as long as the client's connection, beyond any one request; graceful shutdown tracks it")]
                    tokio::spawn(async move {
                        let _slot = slot;
                        if let Err(e) = conn.await {
                            tracing::debug!(target: "ferry::server", %peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!(target: "ferry::server", "shutting down: waiting for in-flight requests");
        let grace = state.get().config.server.shutdown_grace;
        let closing = graceful.shutdown();
        let mut closing = std::pin::pin!(closing);
        tokio::select! {
            () = &mut closing => return Ok(()),
            () = tokio::time::sleep(grace) => {}
        }
        // Grace is over: streams still open end with an `error` event, then close.
        state.get().shutdown.force_close();
        tokio::select! {
            () = &mut closing => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                tracing::warn!(target: "ferry::server", "connections still open after shutdown; dropping them");
            }
        }
        Ok(())
    }
}

/// Answers a connection past `server.max_connections` with a 503 `overloaded_error` and
/// closes it. The request is read and discarded first (at most 64 KiB, at most 1 s):
/// closing with unread bytes would reset the connection and lose the answer.
fn refuse(mut stream: tokio::net::TcpStream, state: &AppState) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const BODY: &str = r#"{"type":"error","error":{"type":"overloaded_error","message":"too many open connections (server.max_connections); retry later"}}"#;
    state.metrics.connections_refused_total.inc([]);
    tracing::warn!(target: "ferry::server", max = state.config.server.max_connections, "connection refused: too many open connections");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    #[expect(
        clippy::disallowed_methods,
        reason = "answers a refused connection; bounded to 1 s and 64 KiB"
    )]
    tokio::spawn(async move {
        let refuse = async {
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            let mut buf = [0u8; 4096];
            let mut read = 0usize;
            while read < 64 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), refuse).await;
    });
}

/// A client connection that writes its requests' usage lines after each poll, that is
/// after hyper has written what the poll produced (see [`UsageLog`]).
struct LoggedConn<F> {
    conn: Pin<Box<F>>,
    log: UsageLog,
}

impl<F: Future> Future for LoggedConn<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polled = self.conn.as_mut().poll(cx);
        self.log.flush();
        polled
    }
}

impl<F> Drop for LoggedConn<F> {
    fn drop(&mut self) {
        self.log.close();
    }
}
