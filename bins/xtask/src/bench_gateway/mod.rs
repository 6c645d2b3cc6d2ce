//! `cargo xtask bench-gateway [--quick | --sparse] [--pgo]`: ferry against LiteLLM and against the
//! upstream alone, measured in one run, written into the "Gateway" section of
//! `docs/BENCHMARKS.md`. With `--pgo` the ferry measured is the profile-guided build of
//! [`pgo`] (`cargo xtask pgo`); the simulated upstreams stay the plain release build.
//!
//! What it starts, all on 127.0.0.1 (ports picked by the OS):
//! - two `ferry sim-upstream`s: zero-delay (50 text deltas) and paced (`--paced`: 200 ms to the
//!   first event, then 10 ms between events, 50 deltas), pinned to core 1;
//! - `ferry serve` (release build) with one `api_key` account per upstream, pinned to core 0;
//! - the LiteLLM proxy, installed by the harness into `target/bench-venv`
//!   (`pip install 'litellm[proxy]'`, `LITELLM_LOCAL_MODEL_COST_MAP=True`), one worker, pinned
//!   to core 0, routing `/v1/messages` for the same Claude model names to the same upstreams'
//!   `/v1/responses` (`openai/` models go through the Responses API);
//! - two `ferry-relay`s (bins/ferry-bench), byte-level TCP relays to each upstream, pinned to
//!   core 0: the floor of any process in the middle on this machine;
//! - the load: `ferry-load` (bins/ferry-bench), pinned to core 1, which times each request, the
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

pub(crate) mod pgo;
mod procs;
mod report;
mod scenarios;
mod sparse;
mod sys;
mod targets;

use procs::*;
use report::*;
use scenarios::*;
use sys::*;
use targets::*;

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

/// `cargo xtask bench-gateway [--quick | --sparse] [--pgo]` (`--sparse`: only the sparse,
/// paced scenario of [`sparse`], short; `--pgo`: measure the profile-guided build).
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let (mut quick, mut sparse_only, mut use_pgo) = (false, false, false);
    for a in args {
        match a.as_str() {
            "--quick" if !sparse_only => quick = true,
            "--sparse" if !quick => (quick, sparse_only) = (true, true),
            "--pgo" => use_pgo = true,
            _ => {
                bail!("usage: cargo xtask bench-gateway [--quick | --sparse] [--pgo], got {args:?}")
            }
        }
    }
    let plan = Plan::new(quick);
    let started = SystemTime::now();
    for tool in ["taskset", "python3"] {
        if !on_path(tool) {
            bail!("{tool} is needed (apt-get install util-linux python3 python3-venv)");
        }
    }
    let bin = release_build(root)?;
    let dir = root.join("target").join("bench-gateway");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ferry = if use_pgo {
        pgo::build(root, &bin.join("ferry"), &bin.join("ferry-load"))?
    } else {
        bin.join("ferry")
    };
    let env = Env {
        ferry,
        sim: bin.join("ferry"),
        build: if use_pgo {
            "profile-guided release build (`cargo xtask pgo`)"
        } else {
            "release build"
        },
        load: bin.join("ferry-load"),
        relay: bin.join("ferry-relay"),
        dir: dir.clone(),
        gateways: std::cell::RefCell::new(Vec::new()),
    };
    if sparse_only {
        // `--sparse`: only the sparse, paced scenario, short; docs/BENCHMARKS.md untouched.
        let report = sparse::measure(root, &env, true)?;
        say!("{report}\nbench-gateway: --sparse run; docs/BENCHMARKS.md left as it is");
        return Ok(());
    }
    let litellm = litellm_venv(root)?;
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
    machine.insert("ferry_build".into(), env.build.to_owned());
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

    let sparse = sparse::measure(root, &env, plan.quick)?;

    results.took = started.elapsed().unwrap_or_default();
    let report = format!("{}\n\n{sparse}", results.markdown(&plan).trim_end());
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

/// The release builds of `ferry`, `ferry-load` and `ferry-relay`; returns their directory.
pub(crate) fn release_build(root: &Path) -> anyhow::Result<PathBuf> {
    run::status(cargo().args([
        "build",
        "--release",
        "-p",
        "ferry",
        "-p",
        "ferry-bench",
        "--bin",
        "ferry",
        "--bin",
        "ferry-load",
        "--bin",
        "ferry-relay",
    ]))?;
    Ok(root.join("target").join("release"))
}

// ---------------------------------------------------------------------------------------
// Processes
