//! Running commands, reporting progress, and the per-suite tally.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};

/// Writes one progress line to stderr (xtask's only output channel besides the children's).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// A `cargo` command: the cargo that runs xtask (`$CARGO`), else the one on PATH.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Prints the command line, runs it with inherited stdio, and fails unless it exits 0.
pub(crate) fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let line = render(cmd);
    say!("$ {line}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Whether a command exits 0, with its output discarded (used to probe for tools).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `name` is an executable on PATH.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(name);
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && is_executable(&m))
        })
    })
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// Whether `cargo nextest` is installed.
pub(crate) fn has_nextest() -> bool {
    succeeds(cargo().args(["nextest", "--version"]))
}

/// `program arg arg` with the environment variables the command sets in front.
fn render(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The outcome of each suite, in run order.
#[derive(Default)]
pub(crate) struct Suites {
    results: Vec<(String, Duration, Result<(), String>)>,
}

impl Suites {
    /// Runs one suite, timing it; a failure is recorded, not propagated.
    pub(crate) fn run(&mut self, name: &str, suite: impl FnOnce() -> anyhow::Result<()>) {
        say!("\n==> {name}");
        let started = SystemTime::now();
        let result = suite().map_err(|e| format!("{e:#}"));
        let took = started.elapsed().unwrap_or_default();
        match &result {
            Ok(()) => say!("==> {name}: ok ({:.1}s)", took.as_secs_f64()),
            Err(e) => say!("==> {name}: FAILED ({:.1}s): {e}", took.as_secs_f64()),
        }
        self.results.push((name.to_owned(), took, result));
    }

    /// Prints one line per suite and the `N passed, M failed` summary; fails if any failed.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        say!("\nsummary:");
        let mut failed = 0;
        for (name, took, result) in &self.results {
            match result {
                Ok(()) => say!("  ok      {name} ({:.1}s)", took.as_secs_f64()),
                Err(e) => {
                    failed += 1;
                    say!("  FAILED  {name} ({:.1}s): {e}", took.as_secs_f64());
                }
            }
        }
        let passed = self.results.len() - failed;
        say!("{passed} passed, {failed} failed");
        if failed > 0 {
            bail!("{failed} suite(s) failed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("ferry-xtask-no-such-program"));
    }

    #[test]
    fn renders_env_then_program_then_args() {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--workspace"]).env("INSTA_UPDATE", "no");
        assert_eq!(render(&cmd), "INSTA_UPDATE=no cargo test --workspace");
    }

    #[test]
    fn the_tally_fails_when_a_suite_fails() {
        let mut ok = Suites::default();
        ok.run("a", || Ok(()));
        assert!(ok.finish().is_ok());
        let mut bad = Suites::default();
        bad.run("a", || Ok(()));
        bad.run("b", || anyhow::bail!("boom"));
        let err = bad.finish().unwrap_err();
        assert_eq!(err.to_string(), "1 suite(s) failed");
    }
}
