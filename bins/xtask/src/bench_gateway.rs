//! `cargo xtask bench-gateway [--quick]`: ferry against LiteLLM and against the upstream
//! alone, measured in one run, written into the "Gateway" section of `docs/BENCHMARKS.md`.
//!
//! What it starts, all on 127.0.0.1 (ports picked by the OS):
//! - two `ferry sim-upstream`s: zero-delay (50 text deltas) and paced (`--paced`: 200 ms to the
//!   first event, then 10 ms between events, 50 deltas), pinned to core 1;
//! - `ferry serve` (release build) with one `api_key` account per upstream, pinned to core 0;
//! - the LiteLLM proxy, installed by the harness into `target/bench-venv`
//!   (`pip install 'litellm[proxy]'`, `LITELLM_LOCAL_MODEL_COST_MAP=True`), one worker, pinned
//!   to core 0, routing `/v1/messages` for the same Claude model names to the same upstreams'
//!   `/v1/responses` (`openai/` models go through the Responses API);
//! - two `ferry-relay`s (ferry-testkit), byte-level TCP relays to each upstream, pinned to
//!   core 0: the floor of any process in the middle on this machine;
//! - the load: `ferry-load` (ferry-testkit), pinned to core 1, which times each request, the
//!   first text delta and the gaps between deltas.
//!
//! "Direct" is the same client against the upstream alone, with the Responses request ferry
//! would send (`ferry convert request`); "relay" is the same through `ferry-relay`. Runs of
//! the targets are interleaved in rounds
//! and pooled, so slow drift of the machine hits all of them alike. CPU is read from
//! `/proc/PID/stat` (utime + stime of the process and its children) before and after a run.
//!
//! Everything it writes lives under `target/bench-gateway/`, plus the section in
//! `docs/BENCHMARKS.md` (only the text between its own heading and the next `## ` heading
//! is replaced).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::run::{self, cargo, on_path};

/// The key clients present to both gateways (also LiteLLM's master key).
const CLIENT_KEY: &str = "sk-bench-7d0c6a1f2e9b48c3a5d7e1f09b2c4d6e";
/// The upstream API key of both gateways' accounts.
const UPSTREAM_KEY: &str = "sk-bench-upstream-5b9e2d";
/// Claude model routed to the zero-delay upstream, and the one routed to the paced one.
const MODEL_ZERO: &str = "claude-opus-4-8";
const MODEL_PACED: &str = "claude-sonnet-4-5";
/// The upstream model both gateways ask for (not a reasoning model: plain text answers).
const UPSTREAM_MODEL: &str = "gpt-4.1";
/// The Claude Code request of scenario 6.
const CLAUDE_CODE_FIXTURE: &str = "fixtures/requests/claude-code/01_say_hi_main.json";
const SECTION: &str = "## Gateway";

/// Concurrent paced streams for the stall check: 50,000 events a second, which the load
/// core (upstream and client together) can generate and read without a late event. Measured
/// on the 2-core machine: at 1,000 streams the upstream alone, without a gateway, already
/// delivers 7,000 events over 20 ms late; at 10,000 (a million events a second) every
/// stream stalls.
const PACEABLE_STREAMS: usize = 500;

/// How much of everything to run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    quick: bool,
    /// Rounds of interleaved runs (latency, TTFE, Claude Code).
    rounds: usize,
    /// Requests per round and target at concurrency 1.
    c1_fast: u64,
    c1_litellm: u64,
    /// Requests for the CPU measurement.
    cpu_fast: u64,
    cpu_litellm: u64,
    /// Paced streams per round for TTFE.
    paced: u64,
    paced_litellm: u64,
    /// Seconds per rate step.
    step_ms: u64,
    /// Concurrent paced streams (capped by the open-file limit).
    streams: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                rounds: 2,
                c1_fast: 100,
                c1_litellm: 20,
                cpu_fast: 1000,
                cpu_litellm: 100,
                paced: 40,
                paced_litellm: 20,
                step_ms: 1000,
                streams: 1000,
            }
        } else {
            Self {
                quick,
                rounds: 4,
                c1_fast: 500,
                c1_litellm: 100,
                cpu_fast: 10_000,
                cpu_litellm: 1000,
                paced: 200,
                paced_litellm: 100,
                step_ms: 2000,
                streams: 10_000,
            }
        }
    }
}

/// `cargo xtask bench-gateway [--quick]`.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let quick = match args {
        [] => false,
        [q] if q == "--quick" => true,
        other => bail!("usage: cargo xtask bench-gateway [--quick], got {other:?}"),
    };
    let plan = Plan::new(quick);
    let started = SystemTime::now();
    for tool in ["taskset", "python3"] {
        if !on_path(tool) {
            bail!("{tool} is needed (apt-get install util-linux python3 python3-venv)");
        }
    }
    run::status(cargo().args([
        "build",
        "--release",
        "-p",
        "ferry",
        "-p",
        "ferry-testkit",
        "--bin",
        "ferry",
        "--bin",
        "ferry-load",
        "--bin",
        "ferry-relay",
    ]))?;
    let litellm = litellm_venv(root)?;
    let dir = root.join("target").join("bench-gateway");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bin = root.join("target").join("release");
    let env = Env {
        ferry: bin.join("ferry"),
        load: bin.join("ferry-load"),
        relay: bin.join("ferry-relay"),
        dir: dir.clone(),
        gateways: std::cell::RefCell::new(Vec::new()),
    };
    let bodies = Bodies::write(root, &env)?;

    // Anything already running on the cores skews every figure: measure, warn, report.
    let busy = cores_busy(Duration::from_secs(1));
    if busy.iter().any(|b| *b > 10.0) {
        say!(
            "bench-gateway: WARNING: the cores are already busy before the run ({}); the figures will be skewed",
            busy_text(&busy)
        );
    }
    say!("bench-gateway: starting the upstreams, ferry and LiteLLM");
    let sim = env.sim("sim-zero", &["--deltas", "50"])?;
    let paced = env.sim("sim-paced", &["--paced"])?;
    let ferry = env.ferry("ferry", &sim.addr, &paced.addr)?;
    let lite = env.litellm(&litellm, &sim.addr, &paced.addr)?;
    let relay = env.relay("relay-zero", &sim.addr)?;
    let relay_paced = env.relay("relay-paced", &paced.addr)?;
    env.gateways
        .borrow_mut()
        .extend([("ferry", ferry.pid), ("LiteLLM", lite.pid)]);
    let targets = Targets {
        direct: Target::direct(&sim.addr),
        direct_paced: Target::direct(&paced.addr),
        relay: Target::relay(&relay.addr),
        relay_paced: Target::relay(&relay_paced.addr),
        ferry: Target::gateway("ferry", &ferry.addr),
        litellm: Target::gateway("LiteLLM", &lite.addr),
    };
    // Both gateways answer before anything is measured.
    for t in [&targets.ferry, &targets.litellm] {
        let r = env.load(t, &bodies.zero_json, &["--requests", "20"])?;
        if r["ok"] != json!(20) {
            bail!("{} does not answer: {r}", t.name);
        }
    }

    let mut machine = machine();
    machine.insert("busy_before".into(), busy_text(&busy));
    let mut results = Results {
        machine,
        ..Results::default()
    };
    // What each gateway burns when nobody calls it.
    env.focus(None);
    let ticks = clock_ticks();
    let idle_before = (cpu_ticks(ferry.pid), cpu_ticks(lite.pid));
    std::thread::sleep(Duration::from_secs(5));
    results.idle_cpu_percent = (
        (cpu_ticks(ferry.pid) - idle_before.0) as f64 / ticks / 5.0 * 100.0,
        (cpu_ticks(lite.pid) - idle_before.1) as f64 / ticks / 5.0 * 100.0,
    );
    say!("bench-gateway: CPU per request");
    cpu_per_request(&env, &plan, &targets, &bodies, &ferry, &lite, &mut results)?;
    say!("bench-gateway: added latency at concurrency 1");
    results.latency_json = interleaved(&env, &plan, &targets, &bodies.zero_json, false)?;
    results.latency_json_busy = busy_core(&env, &plan, &targets, &bodies.zero_json)?;
    results.latency_stream = interleaved(&env, &plan, &targets, &bodies.zero_stream, false)?;
    say!("bench-gateway: time to first delta (paced upstream)");
    results.ttfe = interleaved(&env, &plan, &targets, &bodies.paced_stream, true)?;
    results.ttfe_spread = paced_spread(&env, &plan, &targets, &bodies.paced_stream)?;
    say!("bench-gateway: requests/s at p99 <= 5 ms");
    results.capacity = capacity(&env, &plan, &targets, &bodies)?;
    say!("bench-gateway: the Claude Code request end to end");
    results.claude_code = interleaved(&env, &plan, &targets, &bodies.claude_code, false)?;
    env.focus(None);
    env.gateways.borrow_mut().clear();
    drop(lite);
    drop(ferry);
    say!("bench-gateway: concurrent paced streams");
    results.streams = streams(&env, &plan, &targets, &bodies, &paced.addr)?;
    drop(paced);
    drop(sim);

    results.took = started.elapsed().unwrap_or_default();
    let report = results.markdown(&plan);
    fs::write(dir.join("results.json"), results.json().to_string())?;
    fs::write(dir.join("report.md"), &report)?;
    if plan.quick {
        say!("{report}\nbench-gateway: --quick run; docs/BENCHMARKS.md left as it is");
    } else {
        write_section(&root.join("docs").join("BENCHMARKS.md"), &report)?;
        say!("{report}\nbench-gateway: written into docs/BENCHMARKS.md");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Processes

struct Env {
    ferry: PathBuf,
    load: PathBuf,
    /// `ferry-relay`: the byte-level floor of any process in the middle.
    relay: PathBuf,
    dir: PathBuf,
    /// Gateways (name, process group) frozen with SIGSTOP while another target is measured,
    /// so that an idle gateway's background work cannot steal core 0 from the measured one.
    gateways: std::cell::RefCell<Vec<(&'static str, u32)>>,
}

/// A child process in its own process group, stopped (the whole group) on drop.
struct Proc {
    child: Child,
    pid: u32,
    addr: String,
    name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.pid);
        let _ = Command::new("kill")
            .args(["-CONT", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        say!("bench-gateway: {} had to be killed", self.name);
    }
}

impl Env {
    fn spawn(&self, name: &str, core: u32, program: &Path, args: &[&str]) -> anyhow::Result<Child> {
        let (out, err) = File(self.dir.join(format!("{name}.log"))).open_pair()?;
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(core.to_string()).arg(program).args(args);
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        cmd.spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))
    }

    /// Starts a process that prints `<prefix>http://ADDR` when ready.
    fn start_printing(
        &self,
        name: &str,
        core: u32,
        program: &Path,
        args: &[&str],
        prefix: &str,
    ) -> anyhow::Result<Proc> {
        let mut child = self.spawn(name, core, program, args)?;
        let log = self.dir.join(format!("{name}.log"));
        for _ in 0..300 {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| {
                l.find(prefix)
                    .map(|i| l[i + prefix.len()..].trim().to_owned())
            }) {
                return Ok(Proc {
                    pid: child.id(),
                    child,
                    addr,
                    name: name.to_owned(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{name} exited ({status}):\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        bail!("{name} did not get ready in 30 s; see {}", log.display())
    }

    /// `ferry-relay` on core 0 in front of `target`.
    fn relay(&self, name: &str, target: &str) -> anyhow::Result<Proc> {
        self.start_printing(
            name,
            0,
            &self.relay,
            &["127.0.0.1:0", target],
            "ferry-relay listening on http://",
        )
    }

    fn sim(&self, name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let mut all = vec!["sim-upstream", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        self.start_printing(
            name,
            1,
            &self.ferry,
            &all,
            "ferry sim-upstream listening on http://",
        )
    }

    fn ferry(&self, name: &str, zero: &str, paced: &str) -> anyhow::Result<Proc> {
        let config = format!(
            r#"[server]
listen = "127.0.0.1:0"

[[client_keys]]
name = "bench"
key = "{CLIENT_KEY}"

[[accounts]]
name = "zero"
kind = "api_key"
base_url = "http://{zero}/v1"
api_key = "{UPSTREAM_KEY}"
concurrency = 50000
[accounts.model_mapping]
"{MODEL_ZERO}" = "{UPSTREAM_MODEL}"

[[accounts]]
name = "paced"
kind = "api_key"
base_url = "http://{paced}/v1"
api_key = "{UPSTREAM_KEY}"
concurrency = 50000
[accounts.model_mapping]
"{MODEL_PACED}" = "{UPSTREAM_MODEL}"
"#
        );
        let path = self.dir.join(format!("{name}.toml"));
        fs::write(&path, config)?;
        let path = path.to_string_lossy().into_owned();
        self.start_printing(
            name,
            0,
            &self.ferry,
            &["serve", "--config", &path],
            "ferry listening on http://",
        )
    }

    fn litellm(&self, python: &Path, zero: &str, paced: &str) -> anyhow::Result<Proc> {
        let config = format!(
            r#"model_list:
  - model_name: {MODEL_ZERO}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: http://{zero}/v1
      api_key: {UPSTREAM_KEY}
  - model_name: {MODEL_PACED}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: http://{paced}/v1
      api_key: {UPSTREAM_KEY}
litellm_settings:
  drop_params: true
general_settings:
  master_key: {CLIENT_KEY}
"#
        );
        let path = self.dir.join("litellm.yaml");
        fs::write(&path, config)?;
        let port = free_port()?;
        let litellm = python.with_file_name("litellm");
        let port_text = port.to_string();
        let path_text = path.to_string_lossy().into_owned();
        let args = [
            "--config",
            path_text.as_str(),
            "--host",
            "127.0.0.1",
            "--port",
            port_text.as_str(),
            "--num_workers",
            "1",
        ];
        // The variables apply to the taskset child and so to LiteLLM.
        let (out, err) = File(self.dir.join("litellm.log")).open_pair()?;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(&litellm).args(args);
        cmd.env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("NO_PROXY", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().context("cannot start LiteLLM")?;
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..1200 {
            if http_get_ok(&addr, "/health/liveliness") {
                return Ok(Proc {
                    pid: child.id(),
                    child,
                    addr,
                    name: "litellm".to_owned(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "LiteLLM exited ({status}); see {}",
                    self.dir.join("litellm.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        bail!("LiteLLM did not get ready in 120 s")
    }

    /// Resumes the gateway called `target` and freezes the others (`None`: resumes all).
    fn focus(&self, target: Option<&str>) {
        for (name, pid) in self.gateways.borrow().iter() {
            let signal = if target.is_none_or(|t| t == *name) {
                "-CONT"
            } else {
                "-STOP"
            };
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Runs `ferry-load` (pinned to core 1) against `target` and returns its JSON summary.
    fn load(&self, target: &Target, body: &Bodies2, extra: &[&str]) -> anyhow::Result<Value> {
        self.focus(Some(target.name));
        let body_path = if target.direct {
            &body.direct
        } else {
            &body.messages
        };
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "1"])
            .arg(&self.load)
            .arg("--url")
            .arg(format!("http://{}{}", target.addr, target.path(body)))
            .arg("--body")
            .arg(body_path);
        for h in &target.headers {
            cmd.arg("--header").arg(h);
        }
        cmd.args(extra);
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run ferry-load")?;
        if !out.status.success() {
            bail!("ferry-load failed ({})", out.status);
        }
        serde_json::from_slice(&out.stdout).context("ferry-load printed no JSON")
    }
}

/// A fresh log file for a child's stdout and stderr.
struct File(PathBuf);

impl File {
    fn open_pair(&self) -> anyhow::Result<(fs::File, fs::File)> {
        let f = fs::File::create(&self.0)
            .with_context(|| format!("cannot create {}", self.0.display()))?;
        let g = f.try_clone()?;
        Ok((f, g))
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn http_get_ok(addr: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Makes sure `target/bench-venv` has LiteLLM's proxy; returns its python.
fn litellm_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target").join("bench-venv");
    let python = venv.join("bin").join("python");
    let importable = || {
        run::succeeds(Command::new(&python).args(["-c", "import litellm.proxy.proxy_server"]))
            && venv.join("bin").join("litellm").is_file()
    };
    if python.is_file() && importable() {
        say!("bench venv: {} has litellm[proxy]", venv.display());
        return Ok(python);
    }
    if !python.is_file() {
        run::status(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("cannot create the bench venv (apt-get install python3-venv)")?;
    }
    run::status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "litellm[proxy]",
            ])
            .env("PIP_NO_INPUT", "1"),
    )
    .context("cannot install litellm[proxy] into the bench venv")?;
    if !importable() {
        bail!(
            "litellm[proxy] is still not importable from {}",
            python.display()
        );
    }
    Ok(python)
}

// ---------------------------------------------------------------------------------------
// Targets and bodies

/// Where a request goes and with which headers.
struct Target {
    name: &'static str,
    addr: String,
    direct: bool,
    headers: Vec<String>,
}

impl Target {
    fn direct(addr: &str) -> Self {
        Self {
            name: "direct",
            addr: addr.to_owned(),
            direct: true,
            headers: vec![format!("authorization: Bearer {UPSTREAM_KEY}")],
        }
    }

    /// The upstream through `ferry-relay`: the same requests as [`Target::direct`].
    fn relay(addr: &str) -> Self {
        Self {
            name: "relay",
            ..Self::direct(addr)
        }
    }

    fn gateway(name: &'static str, addr: &str) -> Self {
        Self {
            name,
            addr: addr.to_owned(),
            direct: false,
            headers: vec![
                format!("authorization: Bearer {CLIENT_KEY}"),
                "anthropic-version: 2023-06-01".to_owned(),
            ],
        }
    }

    fn path(&self, _body: &Bodies2) -> &'static str {
        if self.direct {
            "/v1/responses"
        } else {
            "/v1/messages"
        }
    }
}

struct Targets {
    direct: Target,
    direct_paced: Target,
    /// `ferry-relay` (pinned to core 0, like the gateways) in front of the upstream.
    relay: Target,
    relay_paced: Target,
    ferry: Target,
    litellm: Target,
}

/// One request in its two forms: the Messages body for the gateways and the Responses body
/// ferry would send upstream, for the direct baseline.
struct Bodies2 {
    messages: PathBuf,
    direct: PathBuf,
}

struct Bodies {
    zero_json: Bodies2,
    zero_stream: Bodies2,
    paced_stream: Bodies2,
    claude_code: Bodies2,
}

impl Bodies {
    fn write(root: &Path, env: &Env) -> anyhow::Result<Self> {
        let simple = |model: &str, stream: bool| {
            json!({
                "model": model,
                "max_tokens": 1024,
                "stream": stream,
                "messages": [{"role": "user", "content": "Say hello"}],
            })
        };
        let cc_path = root.join(CLAUDE_CODE_FIXTURE);
        let cc: Value = serde_json::from_str(
            &fs::read_to_string(&cc_path)
                .with_context(|| format!("cannot read {}", cc_path.display()))?,
        )?;
        Ok(Self {
            zero_json: body(env, "zero_json", &simple(MODEL_ZERO, false))?,
            zero_stream: body(env, "zero_stream", &simple(MODEL_ZERO, true))?,
            paced_stream: body(env, "paced_stream", &simple(MODEL_PACED, true))?,
            claude_code: body(env, "claude_code", &cc)?,
        })
    }
}

/// Writes `messages` and the Responses request ferry makes of it (`ferry convert request`),
/// with `stream` as the client asked (ferry itself always streams upstream).
fn body(env: &Env, name: &str, messages: &Value) -> anyhow::Result<Bodies2> {
    let m = env.dir.join(format!("{name}.messages.json"));
    fs::write(&m, serde_json::to_vec(messages)?)?;
    let out = Command::new(&env.ferry)
        .args(["convert", "request", "--model", UPSTREAM_MODEL])
        .stdin(fs::File::open(&m)?)
        .output()
        .context("cannot run ferry convert request")?;
    if !out.status.success() {
        bail!(
            "ferry convert request failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut converted: Value = serde_json::from_slice(&out.stdout)?;
    converted["stream"] = json!(messages["stream"].as_bool().unwrap_or(false));
    let d = env.dir.join(format!("{name}.responses.json"));
    fs::write(&d, serde_json::to_vec(&converted)?)?;
    Ok(Bodies2 {
        messages: m,
        direct: d,
    })
}

// ---------------------------------------------------------------------------------------
// /proc

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (ticks) of `pid` and every descendant.
fn cpu_ticks(pid: u32) -> u64 {
    let mut stats: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(text) = fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // Fields after the `(comm)`, which may contain spaces.
            let Some(rest) = text.rfind(')').map(|i| &text[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split(' ').collect();
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            // state=0 ppid=1 ... utime=11 stime=12 (0-based after comm)
            stats.push((p, field(1) as u32, field(11) + field(12)));
        }
    }
    let mut total = 0;
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        for (p, pp, t) in &stats {
            if *p == parent {
                total += t;
            }
            if *pp == parent && !family.contains(p) {
                family.push(*p);
            }
        }
        i += 1;
    }
    total
}

/// Resident set size of `pid` (and its descendants), in KiB.
fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn open_file_limit() -> usize {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// Per core, the percentage of `over` it spent busy (not idle, not waiting on I/O), from
/// `/proc/stat`.
fn cores_busy(over: Duration) -> Vec<f64> {
    let sample = || -> Vec<(u64, u64)> {
        fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let total: u64 = v.iter().sum();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                (total, idle)
            })
            .collect()
    };
    let a = sample();
    std::thread::sleep(over);
    let b = sample();
    a.iter()
        .zip(&b)
        .map(|((t0, i0), (t1, i1))| {
            let total = t1.saturating_sub(*t0).max(1) as f64;
            100.0 * (total - i1.saturating_sub(*i0) as f64) / total
        })
        .collect()
}

fn busy_text(busy: &[f64]) -> String {
    busy.iter()
        .enumerate()
        .map(|(i, b)| format!("core {i} {b:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn machine() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    m.insert("cpu".into(), cpu);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    m.insert("cores".into(), cores.to_string());
    let out = |p: &str, a: &[&str]| {
        Command::new(p)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    m.insert("kernel".into(), out("uname", &["-r"]));
    m.insert("rustc".into(), out("rustc", &["-V"]));
    m.insert("date".into(), out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    m.insert(
        "load".into(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    );
    m.insert(
        "litellm".into(),
        out(
            "sh",
            &["-c", "target/bench-venv/bin/python -c 'import importlib.metadata as m; print(m.version(\"litellm\"))'"],
        ),
    );
    m
}

// ---------------------------------------------------------------------------------------
// Scenarios

#[derive(Default)]
struct Results {
    machine: BTreeMap<String, String>,
    /// CPU use of (ferry, LiteLLM) while idle, in percent of one core.
    idle_cpu_percent: (f64, f64),
    /// (target, mode) -> (CPU µs per request, requests, errors)
    cpu: BTreeMap<(String, String), (f64, u64, u64)>,
    latency_json: Pooled,
    /// The same JSON requests with the gateway core kept busy (see [`busy_core`]).
    latency_json_busy: Pooled,
    latency_stream: Pooled,
    ttfe: Pooled,
    /// Paced streams started at a steady rate (see [`paced_spread`]).
    ttfe_spread: Pooled,
    claude_code: Pooled,
    capacity: BTreeMap<String, Capacity>,
    streams: Streams,
    took: Duration,
}

/// Raw samples of several interleaved runs, per target.
#[derive(Default)]
struct Pooled {
    latency: BTreeMap<String, Vec<u64>>,
    first: BTreeMap<String, Vec<u64>>,
    failed: BTreeMap<String, u64>,
}

impl Pooled {
    /// Adds one `ferry-load --raw` run of `target`.
    fn add(&mut self, target: &str, r: &Value) {
        let nums = |k: &str| -> Vec<u64> {
            r["raw"][k]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default()
        };
        self.latency
            .entry(target.to_owned())
            .or_default()
            .extend(nums("latency_us"));
        self.first
            .entry(target.to_owned())
            .or_default()
            .extend(nums("first_delta_us"));
        let failed = r["requests"].as_u64().unwrap_or(0) - r["ok"].as_u64().unwrap_or(0);
        *self.failed.entry(target.to_owned()).or_default() += failed;
    }
}

#[derive(Default, Clone)]
struct Capacity {
    /// Highest rate whose p99 stayed ≤ 5 ms with no errors, and that p99.
    best: Option<(f64, u64)>,
    /// (offered rate, achieved rps, p99 µs, errors) per step.
    steps: Vec<(f64, f64, u64, u64)>,
}

#[derive(Default)]
struct Streams {
    n: usize,
    direct: Value,
    ferry: Value,
    /// The same streams at a size one core can pace ([`PACEABLE_STREAMS`]): the stall check.
    paceable_direct: Value,
    paceable_ferry: Value,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    after_rss_kib: u64,
    /// After a second identical run: flat means the allocator keeps freed memory, growth
    /// would mean a leak.
    after_second_rss_kib: u64,
    /// `ferry_open_streams` after the runs.
    open_streams_after: String,
    /// After the upstream pool's idle timeout (90 s) has closed the idle connections.
    after_pool_rss_kib: u64,
}

fn cpu_per_request(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    bodies: &Bodies,
    ferry: &Proc,
    lite: &Proc,
    results: &mut Results,
) -> anyhow::Result<()> {
    let ticks = clock_ticks();
    for (mode, body) in [("json", &bodies.zero_json), ("stream", &bodies.zero_stream)] {
        // Two interleaved halves per gateway.
        for _ in 0..2 {
            for (t, proc_, n) in [
                (&targets.ferry, ferry, plan.cpu_fast / 2),
                (&targets.litellm, lite, plan.cpu_litellm / 2),
            ] {
                let before = cpu_ticks(proc_.pid);
                let n_text = n.to_string();
                let r = env.load(t, body, &["--concurrency", "8", "--requests", &n_text])?;
                let after = cpu_ticks(proc_.pid);
                let ok = r["ok"].as_u64().unwrap_or(0);
                let entry = results
                    .cpu
                    .entry((t.name.to_owned(), mode.to_owned()))
                    .or_insert((0.0, 0, 0));
                entry.0 += (after - before) as f64 / ticks * 1e6;
                entry.1 += ok;
                entry.2 += r["requests"].as_u64().unwrap_or(0) - ok;
            }
        }
    }
    for v in results.cpu.values_mut() {
        v.0 /= v.1.max(1) as f64;
    }
    Ok(())
}

/// Rounds of direct, ferry and LiteLLM runs, one after the other, pooled per target.
fn interleaved(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    body: &Bodies2,
    paced: bool,
) -> anyhow::Result<Pooled> {
    let (direct, relay) = if paced {
        (&targets.direct_paced, &targets.relay_paced)
    } else {
        (&targets.direct, &targets.relay)
    };
    let (fast, slow, conc) = if paced {
        (plan.paced, plan.paced_litellm, "20")
    } else {
        (plan.c1_fast, plan.c1_litellm, "1")
    };
    rounds(
        env,
        plan,
        body,
        &[
            (direct, fast),
            (relay, fast),
            (&targets.ferry, fast),
            (&targets.litellm, slow),
        ],
        &["--concurrency", conc],
    )
}

/// `plan.rounds` rounds of one `ferry-load --raw` run per (target, requests), in order
/// within each round (interleaved), pooled per target.
fn rounds(
    env: &Env,
    plan: &Plan,
    body: &Bodies2,
    runs: &[(&Target, u64)],
    args: &[&str],
) -> anyhow::Result<Pooled> {
    let mut pooled = Pooled::default();
    for _ in 0..plan.rounds {
        for (t, n) in runs {
            let n = n.to_string();
            let mut all = args.to_vec();
            all.extend(["--requests", &n, "--warmup", "5", "--raw"]);
            let r = env.load(t, body, &all)?;
            pooled.add(t.name, &r);
        }
    }
    Ok(pooled)
}

/// Paced streams started at a steady rate, 20 a second over 20 connections, so about 15
/// are open at any moment but no two first deltas leave the upstream in the same
/// millisecond: each request's time to first delta, without the queueing of a burst that
/// the lockstep run ([`interleaved`] with `paced`) measures. Open loop, timed from each
/// request's scheduled start. Rounds interleaved like the others.
fn paced_spread(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    body: &Bodies2,
) -> anyhow::Result<Pooled> {
    let (fast, slow) = (plan.paced / 2, plan.paced_litellm / 2);
    rounds(
        env,
        plan,
        body,
        &[
            (&targets.direct_paced, fast),
            (&targets.relay_paced, fast),
            (&targets.ferry, fast),
            (&targets.litellm, slow),
        ],
        &["--concurrency", "20", "--rate", "20"],
    )
}

/// A busy loop at the lowest priority (nice 19) pinned to the gateway core, killed on drop.
struct Spinner(std::process::Child);

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Direct, relay and ferry at concurrency 1 (JSON) while a nice-19 busy loop shares the
/// gateway core. The scheduler hands the core to a woken gateway at once, so the spinner
/// only removes the idle state between requests: on this VM a halted vCPU costs every
/// wake-up tens of microseconds, for the relay as for ferry. The difference to the
/// idle-core rows is that cost; what remains is the gateway's own work. A decomposition
/// of scenario 2, not a replacement for it.
fn busy_core(env: &Env, plan: &Plan, targets: &Targets, body: &Bodies2) -> anyhow::Result<Pooled> {
    let child = Command::new("taskset")
        .args([
            "-c",
            "0",
            "nice",
            "-n",
            "19",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the busy loop (taskset, nice, sh)")?;
    let _spinner = Spinner(child);
    std::thread::sleep(Duration::from_millis(200));
    let n = plan.c1_fast;
    rounds(
        env,
        plan,
        body,
        &[
            (&targets.direct, n),
            (&targets.relay, n),
            (&targets.ferry, n),
        ],
        &["--concurrency", "1"],
    )
}

fn capacity(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    bodies: &Bodies,
) -> anyhow::Result<BTreeMap<String, Capacity>> {
    let fast: &[f64] = &[
        250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 10000.0,
        12000.0, 15000.0,
    ];
    let slow: &[f64] = &[10.0, 25.0, 50.0, 100.0, 200.0, 400.0];
    let mut out = BTreeMap::new();
    for (t, ladder) in [
        (&targets.direct, fast),
        (&targets.ferry, fast),
        (&targets.litellm, slow),
    ] {
        let mut cap = Capacity::default();
        for &rate in ladder {
            let duration = plan.step_ms.to_string();
            let rate_text = rate.to_string();
            // Enough connections for the rate at a few ms each, few enough that every
            // connection gets several requests per step.
            let conns = ((rate / 20.0) as u64).clamp(2, 64).to_string();
            let r = env.load(
                t,
                &bodies.zero_json,
                &[
                    "--concurrency",
                    &conns,
                    "--rate",
                    &rate_text,
                    "--duration-ms",
                    &duration,
                    "--warmup",
                    "20",
                ],
            )?;
            let requests = r["requests"].as_u64().unwrap_or(0);
            let errors = requests - r["ok"].as_u64().unwrap_or(0);
            let p99 = r["latency_us"]["p99"].as_u64().unwrap_or(u64::MAX);
            let achieved = r["rps"].as_f64().unwrap_or(0.0);
            cap.steps.push((rate, achieved, p99, errors));
            if errors > 0 || p99 > 5000 || achieved < rate * 0.9 {
                break;
            }
            cap.best = Some((rate, p99));
        }
        out.insert(t.name.to_owned(), cap);
    }
    Ok(out)
}

fn streams(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    bodies: &Bodies,
    paced: &str,
) -> anyhow::Result<Streams> {
    // ferry holds two sockets per stream (client and upstream): stay under the fd limit.
    let n = plan
        .streams
        .min(open_file_limit().saturating_sub(200) / 2)
        .max(1);
    let mut s = Streams {
        n,
        ..Streams::default()
    };
    let n_text = n.to_string();
    let args = [
        "--concurrency",
        n_text.as_str(),
        "--connect-first",
        "--stall-ms",
        "20",
    ];
    s.direct = env.load(&targets.direct_paced, &bodies.paced_stream, &args)?;
    // A fresh gateway, so its memory is measured alone (its zero-delay account is unused).
    let ferry = env.ferry("ferry-streams", paced, paced)?;
    let t = Target::gateway("ferry", &ferry.addr);
    env.load(&t, &bodies.paced_stream, &["--requests", "3"])?;
    std::thread::sleep(Duration::from_millis(500));
    s.idle_rss_kib = rss_kib(ferry.pid);
    // Stalls, at a size the load core can pace (see PACEABLE_STREAMS).
    let paceable = PACEABLE_STREAMS.min(n).to_string();
    let paceable_args = [
        "--concurrency",
        paceable.as_str(),
        "--connect-first",
        "--stall-ms",
        "20",
    ];
    s.paceable_direct = env.load(&targets.direct_paced, &bodies.paced_stream, &paceable_args)?;
    s.paceable_ferry = env.load(&t, &bodies.paced_stream, &paceable_args)?;
    std::thread::sleep(Duration::from_secs(2));
    let pid = ferry.pid;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            peak = peak.max(rss_kib(pid));
            if stop_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                return peak;
            }
        }
    });
    let result = env.load(&t, &bodies.paced_stream, &args);
    let _ = stop_tx.send(());
    s.peak_rss_kib = sampler.join().unwrap_or(0);
    s.ferry = result?;
    std::thread::sleep(Duration::from_secs(5));
    s.after_rss_kib = rss_kib(ferry.pid);
    env.load(&t, &bodies.paced_stream, &args)?;
    std::thread::sleep(Duration::from_secs(5));
    s.after_second_rss_kib = rss_kib(ferry.pid);
    s.open_streams_after = metric(&ferry.addr, "ferry_open_streams");
    // The upstream client keeps idle connections for 90 s; after that they are closed.
    std::thread::sleep(Duration::from_secs(if plan.quick { 5 } else { 95 }));
    s.after_pool_rss_kib = rss_kib(ferry.pid);
    Ok(s)
}

/// One series of the gateway's `/metrics`, as text (`?` when unreadable).
fn metric(addr: &str, series: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return "?".to_owned();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return "?".to_owned();
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map_or("?".to_owned(), |v| v.trim().to_owned())
}

// ---------------------------------------------------------------------------------------
// Report

fn pct(v: &[u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    Some(v[((v.len() as f64 - 1.0) * q).round() as usize])
}

fn ms(us: Option<u64>) -> String {
    us.map_or("—".to_owned(), |u| format!("{:.3}", u as f64 / 1000.0))
}

fn added(a: Option<u64>, base: Option<u64>) -> String {
    match (a, base) {
        (Some(a), Some(b)) => format!("{:+.3}", (a as f64 - b as f64) / 1000.0),
        _ => "—".to_owned(),
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

impl Results {
    fn json(&self) -> Value {
        let pooled = |p: &Pooled| {
            let mut m = serde_json::Map::new();
            for (k, v) in &p.latency {
                let f = p.first.get(k).cloned().unwrap_or_default();
                m.insert(
                    k.clone(),
                    json!({
                        "n": v.len(), "failed": p.failed.get(k),
                        "latency_p50_us": pct(v, 0.5), "latency_p99_us": pct(v, 0.99),
                        "first_delta_p50_us": pct(&f, 0.5), "first_delta_p99_us": pct(&f, 0.99),
                    }),
                );
            }
            Value::Object(m)
        };
        json!({
            "machine": self.machine,
            "cpu_us_per_request": self.cpu.iter().map(|((t, m), v)| json!({"target": t, "mode": m, "cpu_us": v.0, "requests": v.1, "errors": v.2})).collect::<Vec<_>>(),
            "latency_json": pooled(&self.latency_json),
            "latency_json_busy_core": pooled(&self.latency_json_busy),
            "latency_stream": pooled(&self.latency_stream),
            "ttfe_paced": pooled(&self.ttfe),
            "ttfe_paced_steady_rate": pooled(&self.ttfe_spread),
            "claude_code": pooled(&self.claude_code),
            "capacity": self.capacity.iter().map(|(k, c)| json!({"target": k, "best": c.best, "steps": c.steps})).collect::<Vec<_>>(),
            "streams": {"n": self.streams.n, "direct": self.streams.direct, "ferry": self.streams.ferry, "paceable_direct": self.streams.paceable_direct, "paceable_ferry": self.streams.paceable_ferry,
                "idle_rss_kib": self.streams.idle_rss_kib, "peak_rss_kib": self.streams.peak_rss_kib,
                "after_rss_kib": self.streams.after_rss_kib,
                "after_second_rss_kib": self.streams.after_second_rss_kib,
                "open_streams_after": self.streams.open_streams_after,
                "after_pool_rss_kib": self.streams.after_pool_rss_kib},
            "idle_cpu_percent": {"ferry": self.idle_cpu_percent.0, "LiteLLM": self.idle_cpu_percent.1},
            "took_s": self.took.as_secs(),
        })
    }

    fn markdown(&self, plan: &Plan) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let _ = writeln!(o, "{SECTION}\n");
        let _ = writeln!(
            o,
            "Measured by `cargo xtask bench-gateway`{} on {} ({} cores, Linux {}), {}, {}, LiteLLM {}; load average at the start {}, busy in the second before the run: {}. The run took {} s.\n",
            if plan.quick { " --quick" } else { "" },
            get("cpu"),
            get("cores"),
            get("kernel"),
            get("rustc"),
            get("date"),
            get("litellm"),
            get("load"),
            get("busy_before"),
            self.took.as_secs(),
        );
        let _ = writeln!(
            o,
            "Method: ferry (release build) and the LiteLLM proxy (one worker) are pinned to core 0; the simulated upstreams (`ferry sim-upstream`, zero-delay with 50 text deltas, and `--paced`: 200 ms to the first event then 10 ms between events) and the load client `ferry-load` are pinned to core 1. Both gateways have client-key auth on and log at their default level. \"Direct\" is the same client against the upstream alone, sending the Responses request ferry would send (`ferry convert request`). \"Relay\" is the same requests as direct through `ferry-relay`, a byte-level TCP relay pinned to core 0 like the gateways: what any process in the middle adds on this machine (two more socket hops, wake-ups across cores), the floor under a gateway's added latency. Latency runs are interleaved in {} rounds (direct, relay, ferry, LiteLLM) and pooled. The \"gateway core kept busy\" rows repeat the JSON latency runs (direct, relay, ferry) with a nice-19 busy loop pinned to core 0: the scheduler gives the core to a woken gateway at once, so the loop only removes the idle state between requests, whose wake-up cost on this VM every process in the middle pays; they split scenario 2 into that cost and the gateway's own work. Time to first delta against the paced upstream is measured two ways: 20 streams a second over 20 connections (open loop, timed from each request's scheduled start: about 15 streams open, first deltas spread out), which is each request's added time; and 20 streams started together, whose first deltas leave the upstream in the same millisecond, which adds the queueing of that burst on one core (the 20th stream waits for 19 others in any process in the middle, the relay included). CPU is utime + stime from `/proc/PID/stat` around the run, divided by the requests. Capacity is an open-loop rate ladder ({} s per step, rate/20 connections (2 to 64), latency counted from the scheduled send time); the best step is the highest whose p99 ≤ 5 ms with no error and ≥ 90 % of the offered rate achieved. All traffic is on 127.0.0.1.\n",
            plan.rounds,
            plan.step_ms as f64 / 1000.0,
        );
        let cpu = |t: &str, mode: &str| self.cpu.get(&(t.to_owned(), mode.to_owned())).map(|v| v.0);
        let _ = writeln!(
            o,
            "| scenario | ferry | LiteLLM | direct | ferry vs LiteLLM / added by ferry | goal | met |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for (mode, label) in [("json", "JSON"), ("stream", "50-delta stream")] {
            let (f, l) = (cpu("ferry", mode), cpu("LiteLLM", mode));
            let ratio = match (f, l) {
                (Some(f), Some(l)) if f > 0.0 => Some(l / f),
                _ => None,
            };
            let _ = writeln!(
                o,
                "| 1. CPU per request, {label} (µs) | {} | {} | — | LiteLLM uses {} | ≥ 100× less than LiteLLM | {} |",
                f.map_or("—".into(), |v| format!("{v:.1}")),
                l.map_or("—".into(), |v| format!("{v:.1}")),
                ratio.map_or("—".into(), |r| format!("{r:.0}× more")),
                yes(ratio.is_some_and(|r| r >= 100.0)),
            );
        }
        let lat = |p: &Pooled, t: &str, q: f64| p.latency.get(t).and_then(|v| pct(v, q));
        let first = |p: &Pooled, t: &str, q: f64| p.first.get(t).and_then(|v| pct(v, q));
        for (p, label, goal) in [
            (&self.latency_json, "JSON", true),
            (
                &self.latency_stream,
                "50-delta stream, whole response",
                false,
            ),
        ] {
            for (q, qn) in [(0.5, "p50"), (0.99, "p99")] {
                let (f, l, d, r) = (
                    lat(p, "ferry", q),
                    lat(p, "LiteLLM", q),
                    lat(p, "direct", q),
                    lat(p, "relay", q),
                );
                let add = f.zip(d).map(|(f, d)| f as f64 - d as f64);
                let (goal_text, met) = if goal && q > 0.9 {
                    ("< 0.3 ms added", yes(add.is_some_and(|a| a < 300.0)))
                } else {
                    ("", "")
                };
                let _ = writeln!(
                    o,
                    "| 2. latency at concurrency 1, {label}, {qn} (ms) | {} | {} | {} | {} (relay {}, LiteLLM {}) | {goal_text} | {met} |",
                    ms(f),
                    ms(l),
                    ms(d),
                    added(f, d),
                    added(r, d),
                    added(l, d),
                );
            }
        }
        for (q, qn) in [(0.5, "p50"), (0.99, "p99")] {
            let p = &self.latency_json_busy;
            let (f, d, r) = (lat(p, "ferry", q), lat(p, "direct", q), lat(p, "relay", q));
            let _ = writeln!(
                o,
                "| 2. latency at concurrency 1, JSON, {qn}, gateway core kept busy (nice-19 spinner: no idle wake-ups) (ms) | {} | — | {} | {} (relay {}) | decomposition | |",
                ms(f),
                ms(d),
                added(f, d),
                added(r, d),
            );
        }
        for (p, label, q, qn) in [
            (
                &self.ttfe_spread,
                "paced upstream, 20 streams a second (about 15 open)",
            ),
            (
                &self.ttfe,
                "paced upstream, 20 concurrent started together (first deltas in the same ms)",
            ),
            (&self.latency_stream, "zero-delay upstream, concurrency 1"),
        ]
        .into_iter()
        .flat_map(|(p, label)| [(p, label, 0.5, "p50"), (p, label, 0.99, "p99")])
        {
            let (f, l, d, r) = (
                first(p, "ferry", q),
                first(p, "LiteLLM", q),
                first(p, "direct", q),
                first(p, "relay", q),
            );
            let add = f.zip(d).map(|(f, d)| f as f64 - d as f64);
            let (goal_text, met) = if q > 0.9 {
                ("< 0.3 ms added", yes(add.is_some_and(|a| a < 300.0)))
            } else {
                ("", "")
            };
            let _ = writeln!(
                o,
                "| 3. time to first text delta, {label}, {qn} (ms) | {} | {} | {} | {} (relay {}, LiteLLM {}) | {goal_text} | {met} |",
                ms(f),
                ms(l),
                ms(d),
                added(f, d),
                added(r, d),
                added(l, d),
            );
        }
        let best = |t: &str| {
            self.capacity
                .get(t)
                .and_then(|c| c.best)
                .map_or("< lowest step".to_owned(), |(r, p)| {
                    format!("{r:.0} (p99 {:.2} ms)", p as f64 / 1000.0)
                })
        };
        let _ = writeln!(
            o,
            "| 4. requests/s at p99 ≤ 5 ms, JSON, gateway on one core | {} | {} | {} | | as high as possible | |",
            best("ferry"),
            best("LiteLLM"),
            best("direct"),
        );
        let s = &self.streams;
        let stalls = |v: &Value| {
            format!(
                "{} stalls in {} of {} streams (peak {} in flight, max gap {} ms)",
                v["stalls"],
                v["streams_with_stall"],
                v["ok"],
                v["peak_in_flight"],
                v["gap_us"]["max"]
                    .as_u64()
                    .map_or("—".into(), |g| format!("{:.1}", g as f64 / 1000.0)),
            )
        };
        let paceable_stalls = s.paceable_ferry["stalls"].as_u64();
        let _ = writeln!(
            o,
            "| 5. {} concurrent paced streams: gaps > 20 ms | {} | not run | {} | | zero | {} |",
            s.paceable_ferry["ok"],
            stalls(&s.paceable_ferry),
            stalls(&s.paceable_direct),
            yes(paceable_stalls == Some(0)
                && s.paceable_ferry["ok"].as_u64() == Some(PACEABLE_STREAMS.min(s.n) as u64)),
        );
        let ferry_stalls = s.ferry["stalls"].as_u64();
        let _ = writeln!(
            o,
            "| 5. {} concurrent paced streams: gaps > 20 ms | {} | not run | {} | | zero | {} |",
            s.n,
            stalls(&s.ferry),
            stalls(&s.direct),
            yes(ferry_stalls == Some(0) && s.ferry["ok"].as_u64() == Some(s.n as u64)),
        );
        let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
        let _ = writeln!(
            o,
            "| 5. peak RSS during the streams | {} | | | | < 512 MiB | {} |",
            mib(s.peak_rss_kib),
            yes(s.peak_rss_kib > 0 && s.peak_rss_kib < 512 * 1024)
        );
        let _ = writeln!(
            o,
            "| 5. RSS 5 s after the streams | {} | | | idle was {} | back near idle | {} |",
            mib(s.after_rss_kib),
            mib(s.idle_rss_kib),
            yes(s.after_rss_kib < s.idle_rss_kib * 2 + 16 * 1024)
        );
        let _ = writeln!(
            o,
            "| 5. RSS 5 s after a second identical run | {} | | | `ferry_open_streams` then: {} | no growth (no leak) | {} |",
            mib(s.after_second_rss_kib),
            s.open_streams_after,
            yes(
                s.after_second_rss_kib <= s.after_rss_kib + s.after_rss_kib / 10
                    && s.open_streams_after == "0"
            ),
        );
        let _ = writeln!(
            o,
            "| 5. RSS once idle upstream connections expired ({} s later) | {} | | | | back near idle | {} |",
            if plan.quick { 5 } else { 95 },
            mib(s.after_pool_rss_kib),
            yes(s.after_pool_rss_kib < s.idle_rss_kib * 2 + 16 * 1024),
        );
        let _ = writeln!(
            o,
            "| 5. idle RSS | {} | | | | < 20 MB | {} |",
            mib(s.idle_rss_kib),
            yes(s.idle_rss_kib > 0 && s.idle_rss_kib * 1024 < 20_000_000)
        );
        for (q, qn) in [(0.5, "p50"), (0.99, "p99")] {
            let p = &self.claude_code;
            let (f, l, d, r) = (
                lat(p, "ferry", q),
                lat(p, "LiteLLM", q),
                lat(p, "direct", q),
                lat(p, "relay", q),
            );
            let _ = writeln!(
                o,
                "| 6. Claude Code request (76 KiB, 24 tools), streamed, {qn} (ms) | {} | {} | {} | {} (relay {}, LiteLLM {}) | report | |",
                ms(f),
                ms(l),
                ms(d),
                added(f, d),
                added(r, d),
                added(l, d),
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Idle CPU (5 s, nobody calling): ferry {:.2} %, LiteLLM {:.2} % of one core. While one target is measured the other gateway is frozen (SIGSTOP), so its background work cannot take core 0.\n",
            self.idle_cpu_percent.0, self.idle_cpu_percent.1,
        );
        let failed: Vec<String> = [
            ("latency JSON", &self.latency_json),
            ("latency JSON, busy core", &self.latency_json_busy),
            ("latency stream", &self.latency_stream),
            ("TTFE", &self.ttfe),
            ("TTFE, steady rate", &self.ttfe_spread),
            ("Claude Code", &self.claude_code),
        ]
        .iter()
        .flat_map(|(n, p)| {
            p.failed
                .iter()
                .filter(|(_, f)| **f > 0)
                .map(move |(t, f)| format!("{n}: {t} {f}"))
        })
        .collect();
        let _ = writeln!(
            o,
            "Failed requests: {}.\n",
            if failed.is_empty() {
                "none".to_owned()
            } else {
                failed.join(", ")
            }
        );
        let _ = writeln!(
            o,
            "Capacity ladders (offered → achieved req/s, p99 ms, errors):\n"
        );
        for (t, c) in &self.capacity {
            let steps: Vec<String> = c
                .steps
                .iter()
                .map(|(r, a, p, e)| format!("{r:.0} → {a:.0}, {:.2}, {e}", *p as f64 / 1000.0))
                .collect();
            let _ = writeln!(o, "- {t}: {}", steps.join("; "));
        }
        let _ = writeln!(
            o,
            "\nRaw numbers: `target/bench-gateway/results.json`; logs of every process next to it."
        );
        o
    }
}

/// Replaces (or appends) the `## Gateway` section of `path`, leaving the rest untouched.
fn write_section(path: &Path, section: &str) -> anyhow::Result<()> {
    let old = fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let new = match old.find(&format!("\n{SECTION}\n")) {
        Some(start) => {
            let start = start + 1;
            let end = old[start + SECTION.len()..]
                .find("\n## ")
                .map_or(old.len(), |i| start + SECTION.len() + i + 1);
            format!("{}{}{}", &old[..start], section.trim_end(), {
                let rest = &old[end..];
                if rest.is_empty() {
                    "\n".to_owned()
                } else {
                    format!("\n\n{rest}")
                }
            })
        }
        None => format!("{}\n\n{}\n", old.trim_end(), section.trim_end()),
    };
    fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}
