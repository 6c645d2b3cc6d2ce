//! The sparse, paced scenario (issue 17): how real traffic meets a gateway. Requests come
//! one at a time, 20–50 ms apart (`ferry-load --pause-ms 20-50`), so every request meets an
//! idle process; the upstream writes every SSE event in its own write with a gap between
//! events (`ferry sim-upstream --paced`, 2 ms to the first event, then 2 ms between events,
//! 20 text deltas: 25 events). Per request and per process in the middle (relay, ferry,
//! LiteLLM): CPU from `/proc/PID/task/*/schedstat` (nanoseconds on the CPU, exact, not
//! 10 ms ticks), context switches from `/proc/PID/task/*/status`, and syscalls from a
//! separate, shorter `strace -c -f` run (strace slows the process, so its run is not the one
//! whose CPU is counted). Direct is the client against the upstream alone. Rounds are
//! interleaved: direct, relay, ferry, LiteLLM, JSON then stream.

use super::*;

/// Counters of a process and its descendants, summed over their threads.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    cpu_ns: u64,
    ctxt: u64,
}

fn family(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(text) = fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let Some(rest) = text.rfind(')').map(|i| &text[i + 2..]) else {
                continue;
            };
            let ppid = rest
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            parents.push((p, ppid));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for (p, pp) in &parents {
            if *pp == parent && !out.contains(p) {
                out.push(*p);
            }
        }
        i += 1;
    }
    out
}

/// Thread ids of `pid` and its descendants.
fn tasks(pid: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for p in family(pid) {
        if let Ok(entries) = fs::read_dir(format!("/proc/{p}/task")) {
            for e in entries.flatten() {
                if let Some(t) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                    out.push((p, t));
                }
            }
        }
    }
    out
}

fn counters(pid: u32) -> Counters {
    let mut c = Counters::default();
    for (p, t) in tasks(pid) {
        let dir = format!("/proc/{p}/task/{t}");
        if let Some(ns) = fs::read_to_string(format!("{dir}/schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
        {
            c.cpu_ns += ns;
        }
        if let Ok(status) = fs::read_to_string(format!("{dir}/status")) {
            for l in status.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    c.ctxt += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    c
}

/// Per target and mode: (CPU ns, context switches, requests) summed over rounds, pooled
/// latencies, and syscalls per request from the strace run.
#[derive(Default)]
struct Sparse {
    counted: BTreeMap<(String, String), (u64, u64, u64)>,
    latency: BTreeMap<(String, String), Vec<u64>>,
    first: BTreeMap<(String, String), Vec<u64>>,
    failed: BTreeMap<(String, String), u64>,
    syscalls: BTreeMap<(String, String), f64>,
    litellm: Option<String>,
}

/// Syscalls of `pid` (every thread, every descendant) while `load` runs, per request.
fn strace_calls(
    env: &Env,
    pid: u32,
    load: impl FnOnce() -> anyhow::Result<Value>,
) -> anyhow::Result<Option<f64>> {
    if !on_path("strace") {
        return Ok(None);
    }
    let out = env.dir.join(format!("strace-{pid}.txt"));
    let mut cmd = Command::new("strace");
    cmd.args(["-c", "-f", "-o"]).arg(&out);
    for (_, t) in tasks(pid) {
        cmd.arg("-p").arg(t.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start strace")?;
    std::thread::sleep(Duration::from_millis(500));
    let r = load();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let r = r?;
    let ok = r["ok"].as_u64().unwrap_or(0).max(1);
    let text = fs::read_to_string(&out).unwrap_or_default();
    let total = text
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|v| v.parse::<u64>().ok())
        });
    Ok(total.map(|t| t as f64 / ok as f64))
}

/// The sparse scenario's upstream: 20 deltas, each of the 25 events in its own write, 2 ms
/// to the first and 2 ms apart.
pub(super) const SPARSE_SIM: &[&str] = &[
    "--paced",
    "--deltas",
    "20",
    "--ttft-ms",
    "2",
    "--event-interval-ms",
    "2",
];

/// Runs the sparse scenario with its own upstream, ferry, relay and (if it can be installed)
/// LiteLLM, and returns its Markdown subsection.
pub(super) fn measure(root: &Path, env: &Env, quick: bool) -> anyhow::Result<String> {
    let (rounds, fast, slow, traced) = if quick {
        (2, 40, 15, 10)
    } else {
        (4, 100, 30, 20)
    };
    say!("bench-gateway: sparse, paced scenario");
    let sim = env.sim("sim-sparse", SPARSE_SIM)?;
    let ferry = env.ferry("ferry-sparse", &sim.addr, &sim.addr)?;
    let relay = env.relay("relay-sparse", &sim.addr)?;
    let mut s = Sparse::default();
    let lite = match litellm_venv(root).and_then(|py| env.litellm(&py, &sim.addr, &sim.addr)) {
        Ok(p) => Some(p),
        Err(e) => {
            s.litellm = Some(format!("{e:#}"));
            say!("bench-gateway: LiteLLM not available for the sparse scenario: {e:#}");
            None
        }
    };
    let mut gateways = vec![("ferry", ferry.pid)];
    if let Some(l) = &lite {
        gateways.push(("LiteLLM", l.pid));
    }
    *env.gateways.borrow_mut() = gateways;
    let simple = |stream: bool| {
        json!({
            "model": MODEL_ZERO,
            "max_tokens": 1024,
            "stream": stream,
            "messages": [{"role": "user", "content": "Say hello"}],
        })
    };
    let json_body = body(env, "sparse_json", &simple(false))?;
    let stream_body = body(env, "sparse_stream", &simple(true))?;
    let direct = Target::direct(&sim.addr);
    let relay_t = Target::relay(&relay.addr);
    let ferry_t = Target::gateway("ferry", &ferry.addr);
    let lite_t = lite.as_ref().map(|l| Target::gateway("LiteLLM", &l.addr));
    let mut runs: Vec<(&Target, Option<u32>, u64)> = vec![
        (&direct, None, fast),
        (&relay_t, Some(relay.pid), fast),
        (&ferry_t, Some(ferry.pid), fast),
    ];
    if let (Some(t), Some(l)) = (&lite_t, &lite) {
        runs.push((t, Some(l.pid), slow));
    }
    // Every target answers (and is warm enough to have its threads) before counting.
    for (t, _, _) in &runs {
        for b in [&json_body, &stream_body] {
            let r = env.load(t, b, &["--requests", "3"])?;
            if r["ok"] != json!(3) {
                bail!("{} does not answer the sparse requests: {r}", t.name);
            }
        }
    }
    for _ in 0..rounds {
        for (mode, b) in [("json", &json_body), ("stream", &stream_body)] {
            for (t, pid, n) in &runs {
                let key = (t.name.to_owned(), mode.to_owned());
                let n_text = n.to_string();
                env.focus(Some(t.name));
                let before = pid.map(counters);
                let r = env.load(
                    t,
                    b,
                    &[
                        "--concurrency",
                        "1",
                        "--requests",
                        &n_text,
                        "--pause-ms",
                        "20-50",
                        "--raw",
                    ],
                )?;
                let ok = r["ok"].as_u64().unwrap_or(0);
                if let (Some(pid), Some(before)) = (pid, before) {
                    let after = counters(*pid);
                    let e = s.counted.entry(key.clone()).or_default();
                    e.0 += after.cpu_ns.saturating_sub(before.cpu_ns);
                    e.1 += after.ctxt.saturating_sub(before.ctxt);
                    e.2 += ok;
                }
                let nums = |k: &str| -> Vec<u64> {
                    r["raw"][k]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default()
                };
                s.latency
                    .entry(key.clone())
                    .or_default()
                    .extend(nums("latency_us"));
                s.first
                    .entry(key.clone())
                    .or_default()
                    .extend(nums("first_delta_us"));
                *s.failed.entry(key).or_default() += r["requests"].as_u64().unwrap_or(0) - ok;
            }
        }
    }
    // Syscalls, in a separate traced run per target and mode.
    for (mode, b) in [("json", &json_body), ("stream", &stream_body)] {
        for (t, pid, _) in &runs {
            let Some(pid) = pid else { continue };
            env.focus(Some(t.name));
            let n_text = traced.to_string();
            let calls = strace_calls(env, *pid, || {
                env.load(
                    t,
                    b,
                    &[
                        "--concurrency",
                        "1",
                        "--requests",
                        &n_text,
                        "--pause-ms",
                        "20-50",
                    ],
                )
            })?;
            if let Some(c) = calls {
                s.syscalls.insert((t.name.to_owned(), mode.to_owned()), c);
            }
        }
    }
    env.focus(None);
    env.gateways.borrow_mut().clear();
    drop(lite);
    drop(ferry);
    drop(relay);
    drop(sim);
    let md = s.markdown(env.build, rounds, fast, slow, traced);
    fs::write(env.dir.join("sparse.md"), &md)?;
    Ok(md)
}

impl Sparse {
    fn cpu_us(&self, target: &str, mode: &str) -> Option<f64> {
        self.counted
            .get(&(target.to_owned(), mode.to_owned()))
            .filter(|c| c.2 > 0)
            .map(|c| c.0 as f64 / c.2 as f64 / 1000.0)
    }

    fn markdown(&self, build: &str, rounds: usize, fast: u64, slow: u64, traced: u64) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### Sparse, paced requests\n");
        let _ = writeln!(
            md,
            "Method: requests one at a time, each connection pausing 20–50 ms between requests (`ferry-load --pause-ms 20-50`), so every request meets an idle process; the upstream (`ferry sim-upstream --paced --deltas 20 --ttft-ms 2 --event-interval-ms 2`) writes each of the 25 SSE events of a stream in its own write, 2 ms apart, and a JSON answer whole after the time its stream would take (2 ms + 20 × 2 ms). {rounds} interleaved rounds of direct, relay, ferry and LiteLLM ({fast} requests per round and target, {slow} for LiteLLM), JSON then stream. CPU is the nanoseconds on the CPU of every thread of the process in the middle (`/proc/PID/task/*/schedstat`), context switches (voluntary + involuntary) from `/proc/PID/task/*/status`, both read around each run and divided by its requests; syscalls are counted in a separate run of {traced} requests under `strace -c -f` (which slows the process, so that run's CPU is not counted). Latency is the client's, pooled over the rounds. ferry is the {build}.\n"
        );
        if let Some(why) = &self.litellm {
            let _ = writeln!(
                md,
                "LiteLLM was not measured: it could not be installed or started ({}).\n",
                why.lines().next().unwrap_or_default()
            );
        }
        let _ = writeln!(
            md,
            "| target | mode | CPU µs/request | context switches/request | syscalls/request | latency p50 ms | p99 ms | first delta p50 ms | failed |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
        for mode in ["json", "stream"] {
            for t in ["direct", "relay", "ferry", "LiteLLM"] {
                let key = (t.to_owned(), mode.to_owned());
                let Some(lat) = self.latency.get(&key) else {
                    continue;
                };
                let c = self.counted.get(&key);
                let per = |v: u64| {
                    c.filter(|c| c.2 > 0).map_or("—".to_owned(), |c| {
                        format!("{:.1}", v as f64 / c.2 as f64)
                    })
                };
                let first = self.first.get(&key).cloned().unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {t} | {mode} | {} | {} | {} | {} | {} | {} | {} |",
                    self.cpu_us(t, mode)
                        .map_or("—".to_owned(), |v| format!("{v:.0}")),
                    c.map_or("—".to_owned(), |c| per(c.1)),
                    self.syscalls
                        .get(&key)
                        .map_or("—".to_owned(), |v| format!("{v:.1}")),
                    ms(pct(lat, 0.5)),
                    ms(pct(lat, 0.99)),
                    if mode == "stream" {
                        ms(pct(&first, 0.5))
                    } else {
                        "—".to_owned()
                    },
                    self.failed.get(&key).copied().unwrap_or(0),
                );
            }
        }
        let _ = writeln!(md, "\n| ratio | JSON | stream | goal | met |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let show = |r: Option<f64>| r.map_or("—".to_owned(), |r| format!("{r:.1}×"));
        let fr = [
            ratio(self.cpu_us("ferry", "json"), self.cpu_us("relay", "json")),
            ratio(
                self.cpu_us("ferry", "stream"),
                self.cpu_us("relay", "stream"),
            ),
        ];
        let lf = [
            ratio(self.cpu_us("LiteLLM", "json"), self.cpu_us("ferry", "json")),
            ratio(
                self.cpu_us("LiteLLM", "stream"),
                self.cpu_us("ferry", "stream"),
            ),
        ];
        let met = |rs: &[Option<f64>; 2], ok: fn(f64) -> bool| {
            if rs.iter().all(Option::is_some) {
                yes(rs.iter().flatten().all(|r| ok(*r))).to_owned()
            } else {
                "—".to_owned()
            }
        };
        let _ = writeln!(
            md,
            "| CPU per request, ferry / relay | {} | {} | ≤ 1.5× | {} |",
            show(fr[0]),
            show(fr[1]),
            met(&fr, |r| r <= 1.5)
        );
        let _ = writeln!(
            md,
            "| CPU per request, LiteLLM / ferry | {} | {} | ≥ 100× | {} |",
            show(lf[0]),
            show(lf[1]),
            met(&lf, |r| r >= 100.0)
        );
        // Issue 17: ferry's added p99 (over direct) against the relay's, at concurrency 1.
        let added_p99 = |t: &str, mode: &str, first: bool| {
            let key = |t: &str| (t.to_owned(), mode.to_owned());
            let of = |t: &str| {
                let v = if first {
                    self.first.get(&key(t))
                } else {
                    self.latency.get(&key(t))
                };
                v.and_then(|v| pct(v, 0.99))
            };
            of(t).zip(of("direct")).map(|(a, d)| a as f64 - d as f64)
        };
        let added_ratio = |mode: &str, first: bool| match (
            added_p99("ferry", mode, first),
            added_p99("relay", mode, first),
        ) {
            (Some(f), Some(r)) if r > 0.0 => Some(f / r),
            _ => None,
        };
        let ar = [added_ratio("json", false), added_ratio("stream", true)];
        let _ = writeln!(
            md,
            "| added p99 latency (JSON) and time to first delta (stream), ferry / relay | {} | {} | ≤ 1.5× | {} |",
            show(ar[0]),
            show(ar[1]),
            met(&ar, |r| r <= 1.5)
        );
        md
    }
}
