//! The measured scenarios and their raw results.

use super::*;

#[derive(Default)]
pub(super) struct Results {
    pub(super) machine: BTreeMap<String, String>,
    /// CPU use of (ferry, LiteLLM) while idle, in percent of one core.
    pub(super) idle_cpu_percent: (f64, f64),
    /// (target, mode) -> (CPU µs per request, requests, errors)
    pub(super) cpu: BTreeMap<(String, String), (f64, u64, u64)>,
    pub(super) latency_json: Pooled,
    /// The same JSON requests with the gateway core kept busy (see [`busy_core`]).
    pub(super) latency_json_busy: Pooled,
    pub(super) latency_stream: Pooled,
    pub(super) ttfe: Pooled,
    /// Paced streams started at a steady rate (see [`paced_spread`]).
    pub(super) ttfe_spread: Pooled,
    pub(super) claude_code: Pooled,
    pub(super) capacity: BTreeMap<String, Capacity>,
    pub(super) streams: Streams,
    pub(super) took: Duration,
}

/// Raw samples of several interleaved runs, per target.
#[derive(Default)]
pub(super) struct Pooled {
    pub(super) latency: BTreeMap<String, Vec<u64>>,
    pub(super) first: BTreeMap<String, Vec<u64>>,
    pub(super) failed: BTreeMap<String, u64>,
}

impl Pooled {
    /// Adds one `ferry-load --raw` run of `target`.
    pub(super) fn add(&mut self, target: &str, r: &Value) {
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
pub(super) struct Capacity {
    /// Highest rate whose p99 stayed ≤ 5 ms with no errors, and that p99.
    pub(super) best: Option<(f64, u64)>,
    /// (offered rate, achieved rps, p99 µs, errors) per step.
    pub(super) steps: Vec<(f64, f64, u64, u64)>,
}

#[derive(Default)]
pub(super) struct Streams {
    pub(super) n: usize,
    pub(super) direct: Value,
    pub(super) ferry: Value,
    /// The same streams at a size one core can pace ([`PACEABLE_STREAMS`]): the stall check.
    pub(super) paceable_direct: Value,
    pub(super) paceable_ferry: Value,
    pub(super) idle_rss_kib: u64,
    pub(super) peak_rss_kib: u64,
    pub(super) after_rss_kib: u64,
    /// After a second identical run: flat means the allocator keeps freed memory, growth
    /// would mean a leak.
    pub(super) after_second_rss_kib: u64,
    /// `ferry_open_streams` after the runs.
    pub(super) open_streams_after: String,
    /// After the upstream pool's idle timeout (90 s) has closed the idle connections.
    pub(super) after_pool_rss_kib: u64,
}

pub(super) fn cpu_per_request(
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
pub(super) fn interleaved(
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
pub(super) fn rounds(
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
pub(super) fn paced_spread(
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
pub(super) struct Spinner(std::process::Child);

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
pub(super) fn busy_core(
    env: &Env,
    plan: &Plan,
    targets: &Targets,
    body: &Bodies2,
) -> anyhow::Result<Pooled> {
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

pub(super) fn capacity(
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

pub(super) fn streams(
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
pub(super) fn metric(addr: &str, series: &str) -> String {
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
