//! Installing what the suites need: `redis-server`, the e2e Python venv, the pinned
//! Claude Code release the e2e suites drive (npm, into `target/e2e-node`, never globally),
//! and Chromium for the dashboard's browser test.
//!
//! Everything here is non-interactive (no stdin, `DEBIAN_FRONTEND=noninteractive`,
//! `PIP_NO_INPUT=1`) so it runs on a clean clone as root in CI; every action is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::run::{self, on_path};

/// The Anthropic Python SDK release the e2e suites drive ferry with (the newest on PyPI when
/// pinned); an existing venv with another version is upgraded or downgraded to it.
const SDK_VERSION: &str = "2.16.0";

/// The Claude Code release the e2e suites drive (the newest on npm when pinned; the recorded
/// fixtures in `/work/shared/fixtures/requests/claude-code/` come from 2.1.197).
const CLAUDE_CODE_VERSION: &str = "2.1.332";
/// Its npm package; the native binary comes as an optional dependency, no postinstall download.
const CLAUDE_CODE_PACKAGE: &str = "@anthropic-ai/claude-code";

/// Makes sure `redis-server` is on PATH, installing it with apt-get when it is not.
pub(crate) fn redis_server() -> anyhow::Result<()> {
    if on_path("redis-server") {
        say!("redis-server: found on PATH");
        return Ok(());
    }
    say!("redis-server: not on PATH, installing it with apt-get");
    apt_install(&["redis-server"])?;
    if !on_path("redis-server") {
        bail!("apt-get installed redis-server but it is still not on PATH");
    }
    Ok(())
}

/// The Chromium executable for the dashboard's browser test, installing Debian's `chromium`
/// with apt-get when neither `chromium` nor `chromium-browser` is on PATH.
pub(crate) fn chromium() -> anyhow::Result<PathBuf> {
    let found = || {
        ["chromium", "chromium-browser"]
            .into_iter()
            .find(|name| on_path(name))
            .map(PathBuf::from)
    };
    if let Some(path) = found() {
        say!("chromium: {} found on PATH", path.display());
        return Ok(path);
    }
    say!("chromium: not on PATH, installing it with apt-get");
    apt_install(&["chromium"])?;
    found().context("apt-get installed chromium but it is still not on PATH")
}

/// Makes sure `target/e2e-venv` exists with the Anthropic SDK importable; returns its python.
pub(crate) fn e2e_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target").join("e2e-venv");
    let python = venv.join("bin").join("python");
    if python.is_file() && sdk_version(&python).as_deref() == Some(SDK_VERSION) {
        say!("e2e venv: {} has anthropic {SDK_VERSION}", venv.display());
        return Ok(python);
    }
    if !python.is_file() {
        create_venv(&venv)?;
    }
    say!("e2e venv: installing anthropic=={SDK_VERSION}");
    run::status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("anthropic=={SDK_VERSION}"),
            ])
            .env("PIP_NO_INPUT", "1"),
    )
    .context("cannot install the anthropic SDK into the e2e venv")?;
    match sdk_version(&python) {
        Some(v) if v == SDK_VERSION => Ok(python),
        other => bail!(
            "after `pip install`, {} has anthropic {other:?}, not {SDK_VERSION}",
            python.display()
        ),
    }
}

/// Makes sure `target/e2e-node` holds Claude Code [`CLAUDE_CODE_VERSION`], installing it with
/// npm (and node and npm with apt-get) when it does not; returns the `claude` executable.
pub(crate) fn claude_code(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target").join("e2e-node");
    let claude = dir.join("node_modules").join(".bin").join("claude");
    if claude_version(&claude).as_deref() == Some(CLAUDE_CODE_VERSION) {
        say!("claude code: {} is {CLAUDE_CODE_VERSION}", claude.display());
        return Ok(claude);
    }
    npm_install(
        &dir,
        "claude code",
        &format!("{CLAUDE_CODE_PACKAGE}@{CLAUDE_CODE_VERSION}"),
        "--include=optional",
    )
    .context("cannot install Claude Code with npm")?;
    match claude_version(&claude) {
        Some(v) if v == CLAUDE_CODE_VERSION => Ok(claude),
        other => bail!(
            "after `npm install`, {} reports version {other:?}, not {CLAUDE_CODE_VERSION}",
            claude.display()
        ),
    }
}

/// The version `claude --version` prints (`2.1.332 (Claude Code)` gives `2.1.332`), run with
/// an empty environment apart from PATH so it neither reads nor writes the user's config.
fn claude_version(claude: &Path) -> Option<String> {
    if !claude.exists() {
        return None;
    }
    let out = Command::new(claude)
        .arg("--version")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_claude_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_claude_version(output: &str) -> Option<String> {
    let line = output.lines().next()?.trim();
    let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
    (rest.contains("Claude Code") && !version.is_empty()).then(|| version.to_owned())
}

/// The version of the `anthropic` package importable from `python`, if any.
fn sdk_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import anthropic; print(anthropic.__version__)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !version.is_empty()).then_some(version)
}

fn create_venv(venv: &Path) -> anyhow::Result<()> {
    if !on_path("python3") {
        say!("python3: not on PATH, installing it with apt-get");
        apt_install(&["python3", "python3-venv"])?;
    }
    say!("e2e venv: creating {}", venv.display());
    let create = || run::status(Command::new("python3").arg("-m").arg("venv").arg(venv));
    if let Err(first) = create() {
        // Debian's python3 ships without ensurepip until python3-venv is installed.
        say!("e2e venv: `python3 -m venv` failed ({first:#}); installing python3-venv");
        remove_partial(venv)?;
        apt_install(&["python3-venv"])?;
        create().context("cannot create the e2e venv even with python3-venv installed")?;
    }
    Ok(())
}

fn remove_partial(venv: &Path) -> anyhow::Result<()> {
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("cannot remove the partial venv {}", venv.display()))?;
    }
    Ok(())
}

/// `apt-get update && apt-get install -y PKGS`, as root or through passwordless sudo.
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    if !on_path("apt-get") {
        bail!(
            "{} is missing and there is no apt-get to install it with; install it and re-run",
            packages.join(", ")
        );
    }
    let sudo = !is_root();
    if sudo && !on_path("sudo") {
        bail!(
            "{} is missing; installing it needs root (no sudo on PATH)",
            packages.join(", ")
        );
    }
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "--preserve-env=DEBIAN_FRONTEND", "apt-get"]);
            c
        } else {
            Command::new("apt-get")
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run::status(&mut apt(&["update"]))?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run::status(&mut apt(&install))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The TypeScript SDK release whose default `toolRunner` (message threads on) the threads
/// e2e script drives (`e2e/threads_toolrunner.mjs`).
const TS_SDK_VERSION: &str = "1.16.0";
/// Its npm package.
const TS_SDK_PACKAGE: &str = "@anthropic-ai/sdk";

/// Makes sure `target/e2e-ts` holds [`TS_SDK_PACKAGE`]@[`TS_SDK_VERSION`], installing it with
/// npm from the registry when it does not; returns that directory (it has `node_modules/`).
pub(crate) fn ts_sdk(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target").join("e2e-ts");
    let manifest = dir
        .join("node_modules")
        .join("@anthropic-ai")
        .join("sdk")
        .join("package.json");
    let installed = || {
        std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
    };
    if installed().as_deref() == Some(TS_SDK_VERSION) {
        say!("typescript sdk: {} is {TS_SDK_VERSION}", dir.display());
        return Ok(dir);
    }
    npm_install(
        &dir,
        "typescript sdk",
        &format!("{TS_SDK_PACKAGE}@{TS_SDK_VERSION}"),
        "--prefer-offline",
    )
    .context("cannot install the TypeScript SDK with npm")?;
    match installed() {
        Some(v) if v == TS_SDK_VERSION => Ok(dir),
        other => bail!(
            "after `npm install`, {} holds version {other:?}, not {TS_SDK_VERSION}",
            manifest.display()
        ),
    }
}

/// Installs the npm package `spec` (`name@version`) into `dir` with `--save-exact` and the quiet
/// flags, plus `extra` (e.g. `--include=optional`); installs node and npm with apt-get first
/// when they are not on PATH. `what` names the install in the progress line.
fn npm_install(dir: &Path, what: &str, spec: &str, extra: &str) -> anyhow::Result<()> {
    if !on_path("npm") || !on_path("node") {
        say!("node/npm: not on PATH, installing them with apt-get");
        apt_install(&["nodejs", "npm"])?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    say!("{what}: installing {spec} into {}", dir.display());
    run::status(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(dir)
            .args([
                "--save-exact",
                extra,
                "--no-audit",
                "--no-fund",
                "--no-update-notifier",
                "--loglevel=error",
            ])
            .arg(spec),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_claude_code_version() {
        assert_eq!(
            parse_claude_version("2.1.332 (Claude Code)\n").as_deref(),
            Some("2.1.332")
        );
        assert_eq!(parse_claude_version("v20.20.2\n"), None);
        assert_eq!(parse_claude_version(""), None);
    }
}
