//! Readings from `/proc`: CPU time, memory, limits, how busy the cores are, the machine.

use super::*;

pub(super) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (ticks) of `pid` and every descendant.
pub(super) fn cpu_ticks(pid: u32) -> u64 {
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
pub(super) fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub(super) fn open_file_limit() -> usize {
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
pub(super) fn cores_busy(over: Duration) -> Vec<f64> {
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

pub(super) fn busy_text(busy: &[f64]) -> String {
    busy.iter()
        .enumerate()
        .map(|(i, b)| format!("core {i} {b:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn machine() -> BTreeMap<String, String> {
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
