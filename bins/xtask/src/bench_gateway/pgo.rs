//! `cargo xtask pgo`: a profile-guided release build of ferry, `target/pgo/release/ferry`.
//!
//! A request meets ferry with cold caches when requests are seconds apart (the sparse
//! scenario), so what it costs is mostly the code and data it touches. Profile-guided
//! optimisation lays the hot path out densely, moves cold branches away and optimises cold
//! functions for size. Measured in the sparse scenario it cuts the CPU per JSON request by
//! about a quarter and per stream by about a sixth (docs/BENCHMARKS.md).
//!
//! Steps, all under `target/`:
//! 1. `llvm-profdata` from the toolchain's `llvm-tools` component (added with `rustup
//!    component add llvm-tools` when missing);
//! 2. an instrumented release build in `target/pgo-gen` (`-Cprofile-generate`);
//! 3. a training run of that build against the plain release build's `ferry sim-upstream`:
//!    the benchmark's requests (JSON and streamed, back to back and spaced out, against a
//!    zero-delay and a paced upstream) and every Claude Code request of
//!    `fixtures/requests/claude-code/` (tools, tool results, errors, the non-streaming
//!    fallback), then a graceful stop, which writes the profile;
//! 4. the merged profile, `target/pgo/ferry-HASH.profdata` (the training run is skipped while
//!    the instrumented build has not changed since);
//! 5. the release build with `-Cprofile-use` in `target/pgo`.
//!
//! The profile depends on the compiler and the source, so it is never committed: every run
//! makes a new one.

use super::*;

/// Requests of each Claude Code fixture in the training run.
const FIXTURE_REQUESTS: u64 = 100;

/// Builds `target/pgo/release/ferry` and returns its path. `plain` is the plain release
/// build (its simulator is the training run's upstream), `load` the `ferry-load` client.
pub(crate) fn build(root: &Path, plain: &Path, load: &Path) -> anyhow::Result<PathBuf> {
    let profdata = llvm_profdata()?;
    let gen_dir = root.join("target").join("pgo-gen");
    let raw = gen_dir.join("profiles");
    say!("pgo: the instrumented build");
    run::status(
        cargo()
            .args(["build", "--release", "-p", "ferry", "--bin", "ferry"])
            .env("CARGO_TARGET_DIR", &gen_dir)
            .env(
                "RUSTFLAGS",
                rustflags(&format!("-Cprofile-generate={}", raw.display())),
            ),
    )?;
    let instrumented = gen_dir.join("release").join("ferry");
    let merged = match trained_profile(root, &instrumented) {
        Some(p) => {
            say!(
                "pgo: {} is newer than the instrumented build; no training run",
                p.display()
            );
            p
        }
        None => {
            say!("pgo: the training run");
            train(root, &raw, &instrumented, plain, load)?;
            merge(root, &profdata, &raw)?
        }
    };
    say!("pgo: the profile-guided build");
    run::status(
        cargo()
            .args(["build", "--release", "-p", "ferry", "--bin", "ferry"])
            .env("CARGO_TARGET_DIR", root.join("target").join("pgo"))
            .env(
                "RUSTFLAGS",
                rustflags(&format!(
                    "-Cprofile-use={} -Cllvm-args=-pgo-warn-missing-function=false",
                    merged.display()
                )),
            ),
    )?;
    let bin = root
        .join("target")
        .join("pgo")
        .join("release")
        .join("ferry");
    say!("pgo: built {}", bin.display());
    Ok(bin)
}

/// Where the path of the last merged profile is kept.
fn record(root: &Path) -> PathBuf {
    root.join("target").join("pgo").join("profile.txt")
}

/// The last merged profile, if it was made from the current instrumented build (so a second
/// `cargo xtask pgo` with no change in between trains nothing and builds nothing).
fn trained_profile(root: &Path, instrumented: &Path) -> Option<PathBuf> {
    let path = PathBuf::from(fs::read_to_string(record(root)).ok()?.trim());
    let made = fs::metadata(&path).ok()?.modified().ok()?;
    let built = fs::metadata(instrumented).ok()?.modified().ok()?;
    (made > built).then_some(path)
}

/// Merges the raw profiles of the training run into `target/pgo/ferry-HASH.profdata`. The
/// content hash in the name puts it into `RUSTFLAGS`, so cargo rebuilds every crate with a
/// new profile instead of keeping code optimised for the last one.
fn merge(root: &Path, profdata: &Path, raw: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target").join("pgo");
    fs::create_dir_all(&dir)?;
    let tmp = dir.join("merged.profdata");
    run::status(
        Command::new(profdata)
            .arg("merge")
            .arg("-o")
            .arg(&tmp)
            .arg(raw),
    )?;
    let bytes = fs::read(&tmp)?;
    // FNV-1a: a name, not a security boundary.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let merged = dir.join(format!("ferry-{hash:016x}.profdata"));
    for old in fs::read_dir(&dir)?.filter_map(Result::ok) {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with("ferry-") && name.ends_with(".profdata") {
            fs::remove_file(old.path())?;
        }
    }
    fs::rename(&tmp, &merged)?;
    fs::write(record(root), merged.to_string_lossy().as_bytes())?;
    Ok(merged)
}

/// The caller's `RUSTFLAGS` with `extra` appended.
fn rustflags(extra: &str) -> String {
    match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} {extra}"),
        _ => extra.to_owned(),
    }
}

/// `llvm-profdata` of the toolchain that builds ferry (the profile format follows its LLVM).
fn llvm_profdata() -> anyhow::Result<PathBuf> {
    let find = || -> anyhow::Result<PathBuf> {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let sysroot = Command::new(&rustc)
            .args(["--print", "sysroot"])
            .output()
            .context("cannot run rustc --print sysroot")?;
        let host = Command::new(&rustc)
            .args(["--print", "host-tuple"])
            .output()
            .context("cannot run rustc --print host-tuple")?;
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_owned();
        Ok(PathBuf::from(text(&sysroot))
            .join("lib")
            .join("rustlib")
            .join(text(&host))
            .join("bin")
            .join("llvm-profdata"))
    };
    let path = find()?;
    if path.is_file() {
        return Ok(path);
    }
    say!("pgo: llvm-profdata is missing; adding the llvm-tools component");
    run::status(Command::new("rustup").args(["component", "add", "llvm-tools"]))
        .context("cannot add the llvm-tools component (rustup component add llvm-tools)")?;
    let path = find()?;
    if !path.is_file() {
        bail!("llvm-tools is installed but {} is missing", path.display());
    }
    Ok(path)
}

/// Drives the instrumented `ferry` through the benchmark's requests and the Claude Code
/// fixtures, then stops it gracefully so that it writes its profile into `raw`.
fn train(
    root: &Path,
    raw: &Path,
    instrumented: &Path,
    plain: &Path,
    load: &Path,
) -> anyhow::Result<()> {
    if raw.exists() {
        fs::remove_dir_all(raw).with_context(|| format!("cannot clear {}", raw.display()))?;
    }
    let dir = root.join("target").join("pgo").join("train");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let env = Env {
        ferry: instrumented.to_owned(),
        sim: plain.to_owned(),
        build: "instrumented release build",
        load: load.to_owned(),
        relay: PathBuf::new(),
        dir,
        gateways: std::cell::RefCell::new(Vec::new()),
    };
    let zero = env.sim("sim-zero", &["--deltas", "50"])?;
    let paced = env.sim("sim-paced", sparse::SPARSE_SIM)?;
    let bodies = Bodies::write(root, &env)?;
    let mut fixtures = Vec::new();
    let fixture_dir = root.join("fixtures").join("requests").join("claude-code");
    let mut paths: Vec<PathBuf> = fs::read_dir(&fixture_dir)
        .with_context(|| format!("cannot read {}", fixture_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let mut body: Value = serde_json::from_str(
            &fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        )?;
        body["model"] = json!(MODEL_ZERO);
        let name = path.file_stem().map_or_else(
            || "fixture".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        fixtures.push(targets::body(&env, &format!("fixture-{name}"), &body)?);
    }
    let ferry = env.ferry("ferry-pgo-train", &zero.addr, &paced.addr)?;
    let target = Target::gateway("ferry", &ferry.addr);
    let mut sent = 0;
    // (body, requests, pause between requests): back to back, and spaced out like a user.
    let runs = [
        (&bodies.zero_json, "zero_json", 3000, None),
        (&bodies.zero_stream, "zero_stream", 3000, None),
        (&bodies.zero_json, "zero_json", 200, Some("20-50")),
        (&bodies.paced_stream, "paced_stream", 200, Some("20-50")),
        (&bodies.claude_code, "claude_code", 500, None),
    ];
    for (body, name, requests, pause) in runs {
        let n = requests.to_string();
        let mut args = vec!["--requests", n.as_str()];
        if let Some(p) = pause {
            args.extend(["--pause-ms", p]);
        }
        let r = env.load(&target, body, &args)?;
        if r["ok"] != json!(requests) {
            bail!("training: {name}: not every request succeeded: {r}");
        }
        sent += requests;
    }
    let n = FIXTURE_REQUESTS.to_string();
    for body in &fixtures {
        // Answered requests only: a fixture the simulator cannot answer would train the
        // error path instead of the one users take.
        let r = env.load(&target, body, &["--requests", n.as_str()])?;
        if r["ok"] != json!(FIXTURE_REQUESTS) {
            bail!(
                "training: {}: not every request succeeded: {r}",
                body.messages.display()
            );
        }
        sent += FIXTURE_REQUESTS;
    }
    drop(ferry);
    let written = fs::read_dir(raw).map_or(0, Iterator::count);
    if written == 0 {
        bail!(
            "the instrumented ferry wrote no profile into {}",
            raw.display()
        );
    }
    say!(
        "pgo: trained on {sent} requests ({} Claude Code fixtures)",
        fixtures.len()
    );
    Ok(())
}
