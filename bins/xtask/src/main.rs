//! ferry's task runner (the rust-analyzer `xtask` pattern): the one entry point that needs
//! nothing but cargo. `cargo xtask test` is the README's test command and what `.ci/run`
//! calls; it installs what is missing first, then runs every suite and never skips one
//! silently: a tool it cannot install fails the run.
//!
//! | command | does |
//! |---|---|
//! | `cargo xtask test` | install `redis-server` (apt) and the e2e venv if missing, then fmt check, clippy, `cargo doc -D warnings`, unit/integration tests, doctests, the end-to-end suites (Anthropic Python SDK and Claude Code, three scenarios), and the admin dashboard in headless Chromium (installed with apt if missing) |
//! | `cargo xtask lint` | fmt check, clippy `-D warnings`, `cargo doc --no-deps` with `RUSTDOCFLAGS=-D warnings` |
//! | `cargo xtask e2e` | the end-to-end suites and the dashboard's browser test only (installs the venv and Chromium if missing) |
//! | `cargo xtask dashboard` | the admin dashboard's browser test only (installs Chromium if missing) |
//! | `cargo xtask bench` | `cargo bench -p ferry-apicompat` |
//! | `cargo xtask bench-gateway [--quick \| --sparse] [--pgo]` | ferry against LiteLLM and the upstream alone (`--sparse`: only the sparse, paced scenario, short; `--pgo`: measure the profile-guided build); writes the Gateway section of `docs/BENCHMARKS.md` |
//! | `cargo xtask pgo` | the profile-guided release build, `target/pgo/release/ferry` (instrumented build, a training run on the benchmark's requests and the Claude Code fixtures, the build with the profile; adds the `llvm-tools` component if missing) |
#![forbid(unsafe_code)]

#[macro_use]
mod run;
mod bench_gateway;
mod dashboard;
mod e2e;
mod install;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::run::{Suites, cargo};

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    if !rest.is_empty() && task != "bench-gateway" {
        bail!("`cargo xtask {task}` takes no arguments, got {rest:?}");
    }
    let root = project_root()?;
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    match task.as_str() {
        "test" => test(&root),
        "lint" => lint(),
        "e2e" => e2e_only(&root),
        "dashboard" => {
            let mut suites = Suites::default();
            dashboard::suites(&root, &mut suites);
            suites.finish()
        }
        "bench" => run::status(cargo().args(["bench", "-p", "ferry-apicompat"])),
        "bench-gateway" => bench_gateway::run(&root, &rest),
        "pgo" => pgo(&root),
        "" | "help" | "-h" | "--help" => {
            say!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <task>
  test   install what is missing, then fmt, clippy, doc, tests, doctests, the e2e suites and the dashboard in Chromium
  lint   fmt --check, clippy -D warnings, cargo doc with RUSTDOCFLAGS=-D warnings
  e2e    the end-to-end suites (Python SDK, Claude Code) against `ferry serve`, and the dashboard in Chromium
  dashboard  the admin dashboard in headless Chromium only
  bench  cargo bench -p ferry-apicompat
  bench-gateway [--quick | --sparse] [--pgo]  ferry vs LiteLLM vs direct (docs/BENCHMARKS.md, Gateway section)
  pgo    the profile-guided release build of ferry: target/pgo/release/ferry";

/// `cargo xtask pgo`: the plain release builds (their simulator and load client drive the
/// training run), then [`bench_gateway::pgo::build`].
fn pgo(root: &Path) -> anyhow::Result<()> {
    let bin = bench_gateway::release_build(root)?;
    bench_gateway::pgo::build(root, &bin.join("ferry"), &bin.join("ferry-load")).map(drop)
}

/// The workspace root: two levels above this crate's manifest (`bins/xtask`).
fn project_root() -> anyhow::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .context("bins/xtask has no workspace root above it")
}

/// `cargo xtask test`: every suite, in order; a failing suite does not stop the others,
/// but the run fails at the end if any did.
fn test(root: &Path) -> anyhow::Result<()> {
    install::redis_server()?;
    let python = install::e2e_venv(root)?;

    let mut suites = Suites::default();
    suites.run("fmt", || {
        run::status(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    suites.run("clippy", clippy);
    suites.run("doc", doc);
    if run::has_nextest() {
        suites.run("tests (nextest)", || {
            run::status(
                cargo()
                    .args(["nextest", "run", "--workspace", "--no-fail-fast"])
                    .env("INSTA_UPDATE", "no"),
            )
        });
        suites.run("doctests", || {
            run::status(
                cargo()
                    .args(["test", "--workspace", "--doc"])
                    .env("INSTA_UPDATE", "no"),
            )
        });
    } else {
        suites.run("tests", || {
            run::status(
                cargo()
                    .args(["test", "--workspace", "--no-fail-fast"])
                    .env("INSTA_UPDATE", "no"),
            )
        });
    }
    e2e::suites(root, &python, &mut suites);
    dashboard::suites(root, &mut suites);
    suites.finish()
}

fn lint() -> anyhow::Result<()> {
    let mut suites = Suites::default();
    suites.run("fmt", || {
        run::status(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    suites.run("clippy", clippy);
    suites.run("doc", doc);
    suites.finish()
}

/// `cargo doc` with warnings as errors: a broken intra-doc link fails the run.
fn doc() -> anyhow::Result<()> {
    run::status(
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}

fn e2e_only(root: &Path) -> anyhow::Result<()> {
    let python = install::e2e_venv(root)?;
    let mut suites = Suites::default();
    e2e::suites(root, &python, &mut suites);
    dashboard::suites(root, &mut suites);
    suites.finish()
}

fn clippy() -> anyhow::Result<()> {
    run::status(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}
