//! A real `redis-server` for tests, on a free 127.0.0.1 port with persistence off.
//!
//! Tests that run several gateway replicas against one session store (shared concurrency
//! slots, sticky bindings seen by every replica) start one with [`RedisServer::start`] and
//! configure its [`RedisServer::url`]. The server is killed when the value is dropped.
//!
//! The binary must be on `PATH`: a missing `redis-server` fails the test loudly, it never
//! skips it (`cargo xtask test` installs it).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server and waits (up to 10 s) until it accepts connections. A port taken
    /// between choosing it and the server binding it is retried with another port.
    pub fn start() -> Self {
        for _ in 0..5 {
            if let Some(server) = Self::try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on a free 127.0.0.1 port after 5 attempts");
    }

    fn try_start() -> Option<Self> {
        Self::try_start_on(free_port())
    }

    /// Starts a server on `port` (one chosen with [`free_port`] earlier, for a gateway
    /// configured before its Redis exists) and waits until it accepts connections.
    pub fn start_on(port: u16) -> Self {
        Self::try_start_on(port)
            .unwrap_or_else(|| panic!("redis-server did not start on 127.0.0.1:{port}"))
    }

    fn try_start_on(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need it; \
                     run `cargo xtask test`, which installs it"
                )
            });
        let mut server = Self { child, port };
        for _ in 0..1000 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            if matches!(server.child.try_wait(), Ok(Some(_))) {
                // Exited: most likely the port was taken meanwhile.
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not listen on port {port} within 10 s");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freezes the server (`SIGSTOP`): connections stay open, nothing is answered.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Thaws a frozen server (`SIGCONT`).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A frozen server still dies of SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
