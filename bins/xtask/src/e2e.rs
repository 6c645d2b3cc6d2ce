//! The end-to-end suites: real clients against a real `ferry serve`: the official Anthropic
//! Python SDK (`e2e/test_sdk.py`) and Claude Code in print mode (`e2e/test_claude_code.py`,
//! the pinned release installed into `target/e2e-node` by [`install::claude_code`]).
//!
//! Three scenarios, each its own suite:
//! - `simulated`: `ferry serve` with one account of kind `simulated` (the in-process upstream);
//! - `sim-upstream`: `ferry sim-upstream` runs as a separate process and `ferry serve` reaches it
//!   through an `api_key` account, so the reqwest upstream path is exercised too;
//! - `replicas`: two `ferry serve` processes with one config, sharing sessions in a real
//!   `redis-server` (on a free port, persistence off) and continuing responses of the
//!   `sim-upstream` process; only `e2e/test_replicas.py` runs here (a session started on one
//!   replica continues on the other), and only there.
//!
//! Each scenario writes a config under `target/e2e/`, starts the processes on port 0 (the
//! address is read from the `... listening on http://ADDR` line), runs its `e2e/test_*.py`
//! with the venv python (given the base URL, the client key, the `claude` executable and
//! ferry's log file, whose `ferry::usage` records the Claude Code suite reads back; the
//! replicas script gets both base URLs and both logs), then, outside `replicas`, runs
//! `e2e/threads_toolrunner.mjs` with node against the pinned TypeScript SDK in `target/e2e-ts`
//! ([`install::ts_sdk`]; a missing SDK fails the scenario), stops ferry with SIGTERM (it must exit
//! 0), and checks that no secret of the scenario appears in ferry's logs
//! (`target/e2e/<scenario>-*.log`).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};

use crate::install;
use crate::run::{self, Suites, cargo};

/// The key the e2e clients present; it must never show up in ferry's logs.
const CLIENT_KEY: &str = "sk-ferry-e2e-client-3b1f7c";
/// The API key of the `sim-upstream` account; it must never show up in ferry's logs either.
const UPSTREAM_KEY: &str = "sk-ferry-e2e-upstream-9d2a41";
/// How long a process gets to print its ready line, and to stop after SIGTERM.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The script of the `replicas` scenario, which the other scenarios do not run.
const REPLICAS_SCRIPT: &str = "test_replicas.py";
/// The TypeScript SDK's message-thread tool runner, run with node by the `simulated` and
/// `sim-upstream` scenarios (the SDK installed by [`install::ts_sdk`]).
const TS_THREADS_SCRIPT: &str = "threads_toolrunner.mjs";

/// Installs Claude Code if missing, builds `ferry` and runs both scenarios, each as one suite.
pub(crate) fn suites(root: &Path, python: &Path, suites: &mut Suites) {
    let mut claude = None;
    suites.run("install Claude Code", || {
        claude = Some(install::claude_code(root)?);
        Ok(())
    });
    let mut ts_sdk = None;
    suites.run("install the TypeScript SDK", || {
        ts_sdk = Some(install::ts_sdk(root)?);
        Ok(())
    });
    let mut built = false;
    suites.run("build ferry", || {
        run::status(cargo().args(["build", "-p", "ferry"]))?;
        built = true;
        Ok(())
    });
    for scenario in [
        Scenario::Simulated,
        Scenario::SimUpstream,
        Scenario::Replicas,
    ] {
        suites.run(&format!("e2e: {}", scenario.name()), || {
            if !built {
                bail!("ferry did not build");
            }
            // Without Claude Code its script fails (FERRY_E2E_CLAUDE unset); the SDK one
            // still runs.
            scenario.run(root, python, claude.as_deref(), ts_sdk.as_deref())
        });
    }
}

#[derive(Clone, Copy)]
enum Scenario {
    Simulated,
    SimUpstream,
    Replicas,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Simulated => "simulated",
            Scenario::SimUpstream => "sim-upstream",
            Scenario::Replicas => "replicas",
        }
    }

    /// The `ferry serve` processes: one, or two sharing one Redis.
    fn replicas(self) -> &'static [&'static str] {
        match self {
            Scenario::Simulated | Scenario::SimUpstream => &[""],
            Scenario::Replicas => &["a", "b"],
        }
    }

    fn run(
        self,
        root: &Path,
        python: &Path,
        claude: Option<&Path>,
        ts_sdk: Option<&Path>,
    ) -> anyhow::Result<()> {
        let ferry = ferry_binary(root);
        let dir = target_dir(root).join("e2e");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let name = self.name();

        let redis = match self {
            Scenario::Replicas => {
                install::redis_server()?;
                Some(Redis::start(&dir.join(format!("{name}-redis.log")))?)
            }
            Scenario::Simulated | Scenario::SimUpstream => None,
        };
        let mut upstream = None;
        let mut account = match self {
            Scenario::Simulated => "kind = \"simulated\"".to_owned(),
            Scenario::SimUpstream | Scenario::Replicas => {
                let mut cmd = Command::new(&ferry);
                cmd.args(["sim-upstream", "--listen", "127.0.0.1:0"]);
                let sim = Process::start(
                    cmd,
                    "ferry sim-upstream listening on http://",
                    &dir.join(format!("{name}-upstream.log")),
                )?;
                let account = format!(
                    "kind = \"api_key\"\nbase_url = \"http://{}/v1\"\napi_key = \"${{FERRY_E2E_UPSTREAM_KEY}}\"",
                    sim.addr
                );
                upstream = Some(sim);
                account
            }
        };
        let mut session = String::new();
        if let Some(redis) = &redis {
            // Continuation (previous_response_id) is what the replicas hand over through Redis.
            account.push_str("\ncontinuation = true");
            session = format!(
                "[session]\nstore = \"redis\"\nredis_url = \"{}\"\n",
                redis.url()
            );
        }
        let config = dir.join(format!("{name}.toml"));
        fs::write(&config, config_text(&session, &account))
            .with_context(|| format!("cannot write {}", config.display()))?;

        let mut servers = Vec::new();
        for replica in self.replicas() {
            let log = if replica.is_empty() {
                dir.join(format!("{name}-ferry.log"))
            } else {
                dir.join(format!("{name}-{replica}-ferry.log"))
            };
            let mut cmd = Command::new(&ferry);
            cmd.arg("serve")
                .arg("--config")
                .arg(&config)
                .env_remove("OPENAI_API_KEY")
                .env("FERRY_E2E_CLIENT_KEY", CLIENT_KEY)
                .env("FERRY_E2E_UPSTREAM_KEY", UPSTREAM_KEY)
                .env("FERRY_LOG_FORMAT", "json")
                .env(
                    "RUST_LOG",
                    "debug,hyper=info,reqwest=info,h2=info,rustls=info,redis=info",
                );
            let server = Process::start(cmd, "ferry listening on http://", &log)?;
            say!(
                "ferry serve is up on http://{} (log: {})",
                server.addr,
                log.display()
            );
            servers.push((server, log));
        }

        let scripts = e2e_scripts(root, self)?;
        let mut failures = Vec::new();
        for script in &scripts {
            let mut cmd = Command::new(python);
            cmd.arg(script)
                .env_remove("ANTHROPIC_API_KEY")
                .env_remove("ANTHROPIC_AUTH_TOKEN")
                .env_remove("ANTHROPIC_BASE_URL")
                .env_remove("FERRY_E2E_CLAUDE")
                .env("FERRY_E2E_KEY", CLIENT_KEY)
                .env("FERRY_E2E_SCENARIO", name)
                .env("PYTHONUNBUFFERED", "1");
            for ((server, log), replica) in servers.iter().zip(self.replicas()) {
                let suffix = if replica.is_empty() {
                    String::new()
                } else {
                    format!("_{}", replica.to_ascii_uppercase())
                };
                cmd.env(
                    format!("FERRY_E2E_BASE_URL{suffix}"),
                    format!("http://{}", server.addr),
                )
                .env(format!("FERRY_E2E_LOG{suffix}"), log);
            }
            if let Some(claude) = claude {
                cmd.env("FERRY_E2E_CLAUDE", claude);
            }
            let result = run::status(&mut cmd);
            if let Err(e) = result {
                failures.push(format!("{e:#}"));
            }
        }
        // The TypeScript SDK's tool runner on message threads; a missing SDK is a failure.
        if !matches!(self, Scenario::Replicas) {
            match ts_sdk {
                Some(sdk) => {
                    let (server, _) = &servers[0];
                    let mut cmd = Command::new("node");
                    cmd.arg(root.join("e2e").join(TS_THREADS_SCRIPT))
                        .env_remove("ANTHROPIC_API_KEY")
                        .env_remove("ANTHROPIC_BASE_URL")
                        .env("FERRY_E2E_KEY", CLIENT_KEY)
                        .env("FERRY_E2E_BASE_URL", format!("http://{}", server.addr))
                        .env("FERRY_E2E_TS_SDK", sdk);
                    if let Err(e) = run::status(&mut cmd) {
                        failures.push(format!("{e:#}"));
                    }
                }
                None => failures.push(format!(
                    "{TS_THREADS_SCRIPT} did not run: the TypeScript SDK is not installed"
                )),
            }
        }

        // ferry must stop cleanly on SIGTERM, and never log a secret.
        let mut logs = Vec::new();
        for (server, log) in servers {
            if let Err(e) = server.stop() {
                failures.push(format!("{e:#}"));
            }
            logs.push(log);
        }
        if let Some(Err(e)) = upstream.map(Process::stop) {
            failures.push(format!("{e:#}"));
        }
        drop(redis);
        for log in &logs {
            let text = fs::read_to_string(log)
                .with_context(|| format!("cannot read {}", log.display()))?;
            for secret in [CLIENT_KEY, UPSTREAM_KEY] {
                if text.contains(secret) {
                    failures.push(format!("a secret appears in {}", log.display()));
                }
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(())
    }
}

fn config_text(session: &str, account: &str) -> String {
    format!(
        r#"# written by `cargo xtask e2e`
[server]
listen = "127.0.0.1:0"

{session}
[[client_keys]]
name = "e2e"
key = "${{FERRY_E2E_CLIENT_KEY}}"

[[accounts]]
name = "e2e-upstream"
{account}
default_model = "gpt-5.1"
[accounts.model_mapping]
"claude-opus-4-8" = "gpt-5.1"
"claude-haiku-*" = "gpt-5.1-codex-mini"
"#
    )
}

/// The scenario's `e2e/test_*.py`, sorted: [`REPLICAS_SCRIPT`] for `replicas`, every other
/// one for the rest; none is an error (a suite never passes by running nothing).
fn e2e_scripts(root: &Path, scenario: Scenario) -> anyhow::Result<Vec<PathBuf>> {
    let replicas = matches!(scenario, Scenario::Replicas);
    let dir = root.join("e2e");
    let mut scripts: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("test_") && n.ends_with(".py") && (n == REPLICAS_SCRIPT) == replicas
            })
        })
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        bail!(
            "no e2e/test_*.py scripts found for the {} scenario",
            scenario.name()
        );
    }
    Ok(scripts)
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

pub(crate) fn ferry_binary(root: &Path) -> PathBuf {
    target_dir(root)
        .join("debug")
        .join(format!("ferry{}", std::env::consts::EXE_SUFFIX))
}

/// A child process that announced its address; killed on drop if still running.
pub(crate) struct Process {
    child: Child,
    pub(crate) addr: String,
    what: String,
}

impl Process {
    /// Starts `cmd` with stdout and stderr appended to `log`, and waits for the stderr line
    /// that starts with `ready` (the rest of that line is the address).
    pub(crate) fn start(mut cmd: Command, ready: &'static str, log: &Path) -> anyhow::Result<Self> {
        let what = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .next()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let stdout = file.try_clone().context("cannot share the log file")?;
        say!("$ {what} ... (log: {})", log.display());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let Some(stderr) = child.stderr.take() else {
            bail!("{what}: no stderr pipe");
        };
        let (tx, rx) = mpsc::channel();
        let log_path = log.to_path_buf();
        // The reader copies every stderr line to the log for as long as the process runs.
        std::thread::spawn(move || {
            let mut out = OpenOptions::new().append(true).open(&log_path).ok();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(ready) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                if let Some(out) = out.as_mut() {
                    let _ = writeln!(out, "{line}");
                }
            }
        });
        let mut process = Process {
            child,
            addr: String::new(),
            what,
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(addr) => {
                process.addr = addr;
                Ok(process)
            }
            Err(_) => {
                let status = process.child.try_wait().ok().flatten();
                let tail = tail(log);
                bail!(
                    "{} did not print `{ready}ADDR` within {}s (exit: {status:?}); log tail:\n{tail}",
                    process.what,
                    READY_TIMEOUT.as_secs()
                )
            }
        }
    }

    /// SIGTERM, then waits: the process must exit 0 within [`STOP_TIMEOUT`].
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        run::status(Command::new("kill").args(["-TERM", &pid]))?;
        let started = SystemTime::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status} after SIGTERM", self.what);
                }
                return Ok(());
            }
            if started.elapsed().unwrap_or_default() > STOP_TIMEOUT {
                bail!(
                    "{} did not stop within {}s of SIGTERM",
                    self.what,
                    STOP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A `redis-server` on a free 127.0.0.1 port with persistence off; killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts it (logging to `log`) and waits until it accepts connections; a port taken
    /// between choosing it and the server binding it is retried with another port.
    fn start(log: &Path) -> anyhow::Result<Self> {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("cannot pick a free port")?
                .port();
            let file =
                File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
            let stderr = file.try_clone().context("cannot share the log file")?;
            say!("$ redis-server --port {port} ... (log: {})", log.display());
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(stderr)
                .spawn()
                .context("cannot start redis-server")?;
            let mut redis = Redis { child, port };
            let started = SystemTime::now();
            while started.elapsed().unwrap_or_default() < READY_TIMEOUT {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(redis);
                }
                if redis.child.try_wait()?.is_some() {
                    break; // most likely the port was taken meanwhile
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if redis.child.try_wait()?.is_none() {
                bail!(
                    "redis-server did not listen on port {port} within {}s; log tail:\n{}",
                    READY_TIMEOUT.as_secs(),
                    tail(log)
                );
            }
        }
        bail!(
            "redis-server did not start on a free port after 5 attempts; log tail:\n{}",
            tail(log)
        )
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(scenario: Scenario) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        e2e_scripts(&root, scenario)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn only_the_replicas_scenario_runs_the_replicas_script() {
        assert_eq!(names(Scenario::Replicas), vec![REPLICAS_SCRIPT.to_owned()]);
        for scenario in [Scenario::Simulated, Scenario::SimUpstream] {
            let scripts = names(scenario);
            assert!(scripts.contains(&"test_sdk.py".to_owned()), "{scripts:?}");
            assert!(
                !scripts.contains(&REPLICAS_SCRIPT.to_owned()),
                "{scripts:?}"
            );
        }
    }

    #[test]
    fn the_replicas_config_shares_sessions_in_redis() {
        let text = config_text(
            "[session]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"\n",
            "kind = \"api_key\"\ncontinuation = true",
        );
        assert!(text.contains("\n[session]\nstore = \"redis\"\n"), "{text}");
        assert!(!config_text("", "kind = \"simulated\"").contains("[session]"));
    }
}
