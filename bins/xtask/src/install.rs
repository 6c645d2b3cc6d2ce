//! Installing what the suites need: `redis-server` and the e2e Python venv.
//!
//! Everything here is non-interactive (no stdin, `DEBIAN_FRONTEND=noninteractive`,
//! `PIP_NO_INPUT=1`) so it runs on a clean clone as root in CI; every action is printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::run::{self, on_path};

/// The Python package the e2e suites drive ferry with.
const SDK_REQUIREMENT: &str = "anthropic";

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

/// Makes sure `target/e2e-venv` exists with the Anthropic SDK importable; returns its python.
pub(crate) fn e2e_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target").join("e2e-venv");
    let python = venv.join("bin").join("python");
    if python.is_file() && sdk_importable(&python) {
        say!("e2e venv: {} has the anthropic SDK", venv.display());
        return Ok(python);
    }
    if !python.is_file() {
        create_venv(&venv)?;
    }
    say!("e2e venv: installing the anthropic SDK");
    run::status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                SDK_REQUIREMENT,
            ])
            .env("PIP_NO_INPUT", "1"),
    )
    .context("cannot install the anthropic SDK into the e2e venv")?;
    if !sdk_importable(&python) {
        bail!(
            "the anthropic SDK is still not importable from {}",
            python.display()
        );
    }
    Ok(python)
}

fn sdk_importable(python: &Path) -> bool {
    run::succeeds(Command::new(python).args(["-c", "import anthropic"]))
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
