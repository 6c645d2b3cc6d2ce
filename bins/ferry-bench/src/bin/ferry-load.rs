//! `ferry-load`: a small HTTP/1.1 load client for the gateway benchmarks
//! (`cargo xtask bench-gateway`).
//!
//! It speaks just enough HTTP/1.1 (keep-alive, `content-length` and chunked bodies) to time
//! each request precisely, and it reads SSE bodies frame by frame, so it can tell **when the
//! first text delta arrived** (`response.output_text.delta` from an upstream,
//! `content_block_delta` from a gateway) and **the gaps between deltas**, which generic load
//! tools do not measure.
//!
//! ```text
//! ferry-load --url http://127.0.0.1:8080/v1/messages --body req.json [--header 'k: v']...
//!            [--concurrency C] [--requests N | --duration-ms D] [--rate R]
//!            [--connect-first] [--stall-ms MS] [--warmup N] [--raw] [--pause-ms MIN-MAX]
//! ```
//! - closed loop (default): C connections, each sending its next request when the previous
//!   one ended, until N requests in all or D ms;
//! - open loop (`--rate R`): R requests per second spread over the C connections; latency is
//!   counted from each request's scheduled time, so a slow server is not hidden
//!   (coordinated omission);
//! - `--pause-ms MIN-MAX`: each connection waits MIN to MAX ms (a fixed pseudo-random
//!   sequence) after each request before the next, so every request meets an idle
//!   process (the sparse scenario);
//! - `--connect-first`: open all C connections, then send one request on each at the same
//!   moment (the concurrent-streams scenario).
//!
//! It prints one JSON object: counts, statuses, request/s, and percentiles (microseconds)
//! of latency, time to first delta and inter-delta gap, the longest gap, the number of gaps
//! over `--stall-ms`, and the peak number of requests in flight; with `--raw`, also every
//! request's latency and time to first delta (for pooling runs).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Args {
    host: String,
    path: String,
    body: Vec<u8>,
    headers: Vec<String>,
    concurrency: usize,
    requests: Option<u64>,
    duration: Option<Duration>,
    rate: Option<f64>,
    connect_first: bool,
    stall: Duration,
    warmup: u64,
    raw: bool,
    /// Pause between two requests of one connection, in ms (min, max).
    pause: Option<(u64, u64)>,
}

fn usage() -> String {
    "usage: ferry-load --url URL --body FILE [--header 'k: v']... [--concurrency C] \
     [--requests N | --duration-ms D] [--rate R] [--connect-first] [--stall-ms MS] [--warmup N] [--raw] [--pause-ms MIN-MAX]"
        .to_owned()
}

fn parse_args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let mut url = None;
    let mut body = None;
    let mut a = Args {
        host: String::new(),
        path: String::new(),
        body: Vec::new(),
        headers: Vec::new(),
        concurrency: 1,
        requests: None,
        duration: None,
        rate: None,
        connect_first: false,
        stall: Duration::from_millis(20),
        warmup: 0,
        raw: false,
        pause: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--body" => body = Some(value()?),
            "--header" => a.headers.push(value()?),
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--requests" => a.requests = Some(value()?.parse()?),
            "--duration-ms" => a.duration = Some(Duration::from_millis(value()?.parse()?)),
            "--rate" => a.rate = Some(value()?.parse()?),
            "--connect-first" => a.connect_first = true,
            "--stall-ms" => a.stall = Duration::from_millis(value()?.parse()?),
            "--warmup" => a.warmup = value()?.parse()?,
            "--raw" => a.raw = true,
            "--pause-ms" => {
                let v = value()?;
                let (lo, hi) = v.split_once('-').unwrap_or((&v, &v));
                let (lo, hi): (u64, u64) = (lo.parse()?, hi.parse()?);
                a.pause = Some((lo.min(hi), lo.max(hi)));
            }
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown flag {other}\n{}", usage()).into()),
        }
    }
    let url = url.ok_or_else(usage)?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    a.host = host.to_owned();
    a.path = if path.is_empty() { "/" } else { path }.to_owned();
    a.body = std::fs::read(body.ok_or_else(usage)?)?;
    a.concurrency = a.concurrency.max(1);
    if a.requests.is_none() && a.duration.is_none() {
        a.requests = Some(a.concurrency as u64);
    }
    Ok(a)
}

fn main() -> std::process::ExitCode {
    let run = || -> Result<Value, Error> {
        let args = parse_args()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(run(args))
    };
    match run() {
        Ok(v) => {
            let _ = writeln!(std::io::stdout().lock(), "{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "ferry-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What one request measured.
#[derive(Debug, Default)]
struct Sample {
    status: u16,
    latency_us: u64,
    first_delta_us: Option<u64>,
    gaps_us: Vec<u64>,
    deltas: u64,
    bytes: u64,
}

/// Shared counters.
#[derive(Default)]
struct Shared {
    issued: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl Shared {
    fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(args: Args) -> Result<Value, Error> {
    let args = Arc::new(args);
    let request = Arc::new(render_request(&args));
    // Warm-up on one connection (not counted).
    if args.warmup > 0 {
        let mut conn = Conn::connect(&args.host).await?;
        for _ in 0..args.warmup {
            conn.exchange(&request, Instant::now()).await?;
        }
    }
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let mut conns = Vec::new();
    if args.connect_first {
        for i in 0..args.concurrency {
            conns.push(Conn::connect(&args.host).await?);
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(args.concurrency));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrency {
        let (args, request, shared, barrier) = (
            args.clone(),
            request.clone(),
            shared.clone(),
            barrier.clone(),
        );
        let conn = conns.pop();
        tasks.spawn(async move {
            worker(
                i, conn, &args, &request, &shared, &barrier, started, deadline,
            )
            .await
        });
    }
    let mut samples = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (s, e) = joined?;
        samples.extend(s);
        for err in e {
            *errors.entry(err).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    Ok(summary(&args, &samples, &errors, elapsed, &shared))
}

#[expect(
    clippy::too_many_arguments,
    reason = "a private worker function fed from one place"
)]
async fn worker(
    index: usize,
    mut conn: Option<Conn>,
    args: &Args,
    request: &[u8],
    shared: &Shared,
    barrier: &tokio::sync::Barrier,
    started: Instant,
    deadline: Option<Instant>,
) -> (Vec<Sample>, Vec<String>) {
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    if args.connect_first {
        barrier.wait().await;
    }
    // Open loop: this connection's share of the rate, offset so connections interleave.
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(args.concurrency as f64 / r.max(0.001)));
    let offset = interval.map(|i| i.mul_f64(index as f64 / args.concurrency as f64));
    let mut k: u32 = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1);
    loop {
        if let Some(n) = args.requests
            && shared.issued.fetch_add(1, Ordering::SeqCst) >= n
        {
            break;
        }
        let scheduled = match (interval, offset) {
            (Some(i), Some(o)) => {
                let at = started + o + i * k;
                k += 1;
                if deadline.is_some_and(|d| at >= d) {
                    break;
                }
                tokio::time::sleep_until(at).await;
                at
            }
            _ => Instant::now(),
        };
        if deadline.is_some_and(|d| scheduled >= d) {
            break;
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match Conn::connect(&args.host).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let mut c = c;
        shared.enter();
        let result = c.exchange(request, scheduled).await;
        shared.leave();
        match result {
            Ok((sample, keep)) => {
                samples.push(sample);
                if keep {
                    conn = Some(c);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        if let Some((lo, hi)) = args.pause {
            // xorshift: a fixed sequence per connection, no dependency.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let ms = lo + seed % (hi - lo + 1);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if args.connect_first && args.requests.is_none() && deadline.is_none() {
            break;
        }
    }
    (samples, errors)
}

fn render_request(args: &Args) -> Vec<u8> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        args.path,
        args.host,
        args.body.len()
    );
    for h in &args.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&args.body);
    out
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(host: &str) -> Result<Self, Error> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Reads more bytes into the buffer; errors at EOF.
    async fn fill(&mut self) -> Result<(), Error> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// Sends one request and reads its whole response; returns the sample and whether the
    /// connection can be reused.
    async fn exchange(
        &mut self,
        request: &[u8],
        scheduled: Instant,
    ) -> Result<(Sample, bool), Error> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        self.buf.drain(..head_end);
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("bad status line")?;
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let length: Option<usize> = header("content-length:").and_then(|v| v.parse().ok());
        let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
        let keep = !header("connection:").is_some_and(|v| v.contains("close"));
        let mut sse = SseClock::new(scheduled);
        let mut bytes = 0u64;
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.buf, b"\r\n") {
                        break p;
                    }
                    self.fill().await?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size_hex = size_text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| format!("bad chunk size {size_text:?}"))?;
                self.buf.drain(..line_end + 2);
                if size == 0 {
                    // No trailers: the empty line that ends the body.
                    while self.buf.len() < 2 {
                        self.fill().await?;
                    }
                    self.buf.drain(..2);
                    break;
                }
                // Data is timestamped as it arrives, not when the chunk is complete.
                let mut remaining = size;
                while remaining > 0 {
                    if self.buf.is_empty() {
                        self.fill().await?;
                    }
                    let take = self.buf.len().min(remaining);
                    sse.feed(&self.buf[..take]);
                    bytes += take as u64;
                    self.buf.drain(..take);
                    remaining -= take;
                }
                while self.buf.len() < 2 {
                    self.fill().await?;
                }
                self.buf.drain(..2);
            }
        } else if let Some(n) = length {
            while self.buf.len() < n {
                self.fill().await?;
            }
            sse.feed(&self.buf[..n]);
            bytes += n as u64;
            self.buf.drain(..n);
        } else {
            loop {
                if !self.buf.is_empty() {
                    sse.feed(&self.buf);
                    bytes += self.buf.len() as u64;
                    self.buf.clear();
                }
                if self.fill().await.is_err() {
                    break;
                }
            }
            return Ok((sse.sample(status, bytes), false));
        }
        Ok((sse.sample(status, bytes), keep))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Timestamps SSE frames as their bytes arrive.
struct SseClock {
    scheduled: Instant,
    frame: Vec<u8>,
    /// The last byte fed was `\n` (a frame ends at an empty line).
    after_newline: bool,
    first_delta: Option<Instant>,
    last_delta: Option<Instant>,
    gaps_us: Vec<u64>,
    deltas: u64,
}

impl SseClock {
    fn new(scheduled: Instant) -> Self {
        Self {
            scheduled,
            frame: Vec::new(),
            after_newline: false,
            first_delta: None,
            last_delta: None,
            gaps_us: Vec::new(),
            deltas: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        let now = Instant::now();
        for &b in data {
            if b == b'\r' {
                continue;
            }
            if b == b'\n' && self.after_newline {
                self.frame_done(now);
                self.after_newline = false;
                continue;
            }
            self.after_newline = b == b'\n';
            if self.frame.len() < 256 {
                self.frame.push(b);
            }
        }
    }

    fn frame_done(&mut self, now: Instant) {
        let is_delta = find(&self.frame, b"output_text.delta").is_some()
            || find(&self.frame, b"content_block_delta").is_some();
        self.frame.clear();
        if !is_delta {
            return;
        }
        self.deltas += 1;
        if self.first_delta.is_none() {
            self.first_delta = Some(now);
        }
        if let Some(prev) = self.last_delta {
            self.gaps_us.push(micros(now - prev));
        }
        self.last_delta = Some(now);
    }

    fn sample(self, status: u16, bytes: u64) -> Sample {
        Sample {
            status,
            latency_us: micros(self.scheduled.elapsed()),
            first_delta_us: self.first_delta.map(|t| micros(t - self.scheduled)),
            gaps_us: self.gaps_us,
            deltas: self.deltas,
            bytes,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// p50, p90, p99, p99.9 and max of `v` (sorted in place), in microseconds.
fn percentiles(v: &mut [u64]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    json!({
        "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p999": at(0.999),
        "max": v[v.len() - 1], "mean": v.iter().sum::<u64>() / v.len() as u64, "n": v.len(),
    })
}

fn summary(
    args: &Args,
    samples: &[Sample],
    errors: &BTreeMap<String, u64>,
    elapsed: Duration,
    shared: &Shared,
) -> Value {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples {
        *statuses.entry(s.status.to_string()).or_default() += 1;
    }
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.status == 200).collect();
    let mut latency: Vec<u64> = ok.iter().map(|s| s.latency_us).collect();
    let mut first: Vec<u64> = ok.iter().filter_map(|s| s.first_delta_us).collect();
    let mut gaps: Vec<u64> = ok.iter().flat_map(|s| s.gaps_us.iter().copied()).collect();
    let stall_us = micros(args.stall);
    let stalls = gaps.iter().filter(|g| **g > stall_us).count();
    let streams_with_stall = ok
        .iter()
        .filter(|s| s.gaps_us.iter().any(|g| *g > stall_us))
        .count();
    let deltas: u64 = ok.iter().map(|s| s.deltas).sum();
    let bytes: u64 = samples.iter().map(|s| s.bytes).sum();
    let raw = args.raw.then(|| {
        json!({
            "latency_us": latency.clone(),
            "first_delta_us": first.clone(),
        })
    });
    json!({
        "raw": raw,
        "requests": samples.len(),
        "ok": ok.len(),
        "statuses": statuses,
        "errors": errors,
        "elapsed_ms": elapsed.as_millis() as u64,
        "rps": samples.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        "bytes": bytes,
        "deltas": deltas,
        "latency_us": percentiles(&mut latency),
        "first_delta_us": percentiles(&mut first),
        "gap_us": percentiles(&mut gaps),
        "stall_threshold_us": stall_us,
        "stalls": stalls,
        "streams_with_stall": streams_with_stall,
        "peak_in_flight": shared.peak_in_flight.load(Ordering::SeqCst),
        "concurrency": args.concurrency,
        "rate": args.rate,
    })
}
