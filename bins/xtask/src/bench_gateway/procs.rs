//! The processes of the benchmark: starting, pinning, freezing and stopping them.

use super::*;

pub(super) struct Env {
    /// The `ferry` measured (`serve`, `convert request`).
    pub(super) ferry: PathBuf,
    /// The `ferry` whose `sim-upstream` plays the upstream: the plain release build, so that
    /// a profile-guided build's training run profiles the gateway, not the simulator.
    pub(super) sim: PathBuf,
    /// Which build `ferry` is, for the reports ("release build", or the profile-guided one).
    pub(super) build: &'static str,
    pub(super) load: PathBuf,
    /// `ferry-relay`: the byte-level floor of any process in the middle.
    pub(super) relay: PathBuf,
    pub(super) dir: PathBuf,
    /// Gateways (name, process group) frozen with SIGSTOP while another target is measured,
    /// so that an idle gateway's background work cannot steal core 0 from the measured one.
    pub(super) gateways: std::cell::RefCell<Vec<(&'static str, u32)>>,
}

/// A child process in its own process group, stopped (the whole group) on drop.
pub(super) struct Proc {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) addr: String,
    pub(super) name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.pid);
        let _ = Command::new("kill")
            .args(["-CONT", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        say!("bench-gateway: {} had to be killed", self.name);
    }
}

impl Env {
    pub(super) fn spawn(
        &self,
        name: &str,
        core: u32,
        program: &Path,
        args: &[&str],
    ) -> anyhow::Result<Child> {
        let (out, err) = File(self.dir.join(format!("{name}.log"))).open_pair()?;
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(core.to_string()).arg(program).args(args);
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        cmd.spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))
    }

    /// Starts a process that prints `<prefix>http://ADDR` when ready.
    pub(super) fn start_printing(
        &self,
        name: &str,
        core: u32,
        program: &Path,
        args: &[&str],
        prefix: &str,
    ) -> anyhow::Result<Proc> {
        let mut child = self.spawn(name, core, program, args)?;
        let log = self.dir.join(format!("{name}.log"));
        for _ in 0..300 {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| {
                l.find(prefix)
                    .map(|i| l[i + prefix.len()..].trim().to_owned())
            }) {
                return Ok(Proc {
                    pid: child.id(),
                    child,
                    addr,
                    name: name.to_owned(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{name} exited ({status}):\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        bail!("{name} did not get ready in 30 s; see {}", log.display())
    }

    /// `ferry-relay` on core 0 in front of `target`.
    pub(super) fn relay(&self, name: &str, target: &str) -> anyhow::Result<Proc> {
        self.start_printing(
            name,
            0,
            &self.relay,
            &["127.0.0.1:0", target],
            "ferry-relay listening on http://",
        )
    }

    pub(super) fn sim(&self, name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let mut all = vec!["sim-upstream", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        self.start_printing(
            name,
            1,
            &self.sim,
            &all,
            "ferry sim-upstream listening on http://",
        )
    }

    pub(super) fn ferry(&self, name: &str, zero: &str, paced: &str) -> anyhow::Result<Proc> {
        let config = format!(
            r#"[server]
listen = "127.0.0.1:0"

[[client_keys]]
name = "bench"
key = "{CLIENT_KEY}"

[[accounts]]
name = "zero"
kind = "api_key"
base_url = "http://{zero}/v1"
api_key = "{UPSTREAM_KEY}"
concurrency = 50000
[accounts.model_mapping]
"{MODEL_ZERO}" = "{UPSTREAM_MODEL}"

[[accounts]]
name = "paced"
kind = "api_key"
base_url = "http://{paced}/v1"
api_key = "{UPSTREAM_KEY}"
concurrency = 50000
[accounts.model_mapping]
"{MODEL_PACED}" = "{UPSTREAM_MODEL}"
"#
        );
        let path = self.dir.join(format!("{name}.toml"));
        fs::write(&path, config)?;
        let path = path.to_string_lossy().into_owned();
        self.start_printing(
            name,
            0,
            &self.ferry,
            &["serve", "--config", &path],
            "ferry listening on http://",
        )
    }

    pub(super) fn litellm(&self, python: &Path, zero: &str, paced: &str) -> anyhow::Result<Proc> {
        let config = format!(
            r#"model_list:
  - model_name: {MODEL_ZERO}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: http://{zero}/v1
      api_key: {UPSTREAM_KEY}
  - model_name: {MODEL_PACED}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: http://{paced}/v1
      api_key: {UPSTREAM_KEY}
litellm_settings:
  drop_params: true
general_settings:
  master_key: {CLIENT_KEY}
"#
        );
        let path = self.dir.join("litellm.yaml");
        fs::write(&path, config)?;
        let port = free_port()?;
        let litellm = python.with_file_name("litellm");
        let port_text = port.to_string();
        let path_text = path.to_string_lossy().into_owned();
        let args = [
            "--config",
            path_text.as_str(),
            "--host",
            "127.0.0.1",
            "--port",
            port_text.as_str(),
            "--num_workers",
            "1",
        ];
        // The variables apply to the taskset child and so to LiteLLM.
        let (out, err) = File(self.dir.join("litellm.log")).open_pair()?;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(&litellm).args(args);
        cmd.env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("NO_PROXY", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(&self.dir);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().context("cannot start LiteLLM")?;
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..1200 {
            if http_get_ok(&addr, "/health/liveliness") {
                return Ok(Proc {
                    pid: child.id(),
                    child,
                    addr,
                    name: "litellm".to_owned(),
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "LiteLLM exited ({status}); see {}",
                    self.dir.join("litellm.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        bail!("LiteLLM did not get ready in 120 s")
    }

    /// Resumes the gateway called `target` and freezes the others (`None`: resumes all).
    pub(super) fn focus(&self, target: Option<&str>) {
        for (name, pid) in self.gateways.borrow().iter() {
            let signal = if target.is_none_or(|t| t == *name) {
                "-CONT"
            } else {
                "-STOP"
            };
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Runs `ferry-load` (pinned to core 1) against `target` and returns its JSON summary.
    pub(super) fn load(
        &self,
        target: &Target,
        body: &Bodies2,
        extra: &[&str],
    ) -> anyhow::Result<Value> {
        self.focus(Some(target.name));
        let body_path = if target.direct {
            &body.direct
        } else {
            &body.messages
        };
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "1"])
            .arg(&self.load)
            .arg("--url")
            .arg(format!("http://{}{}", target.addr, target.path(body)))
            .arg("--body")
            .arg(body_path);
        for h in &target.headers {
            cmd.arg("--header").arg(h);
        }
        cmd.args(extra);
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run ferry-load")?;
        if !out.status.success() {
            bail!("ferry-load failed ({})", out.status);
        }
        serde_json::from_slice(&out.stdout).context("ferry-load printed no JSON")
    }
}

/// A fresh log file for a child's stdout and stderr.
pub(super) struct File(PathBuf);

impl File {
    pub(super) fn open_pair(&self) -> anyhow::Result<(fs::File, fs::File)> {
        let f = fs::File::create(&self.0)
            .with_context(|| format!("cannot create {}", self.0.display()))?;
        let g = f.try_clone()?;
        Ok((f, g))
    }
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub(super) fn http_get_ok(addr: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Makes sure `target/bench-venv` has LiteLLM's proxy; returns its python.
pub(super) fn litellm_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target").join("bench-venv");
    let python = venv.join("bin").join("python");
    let importable = || {
        run::succeeds(Command::new(&python).args(["-c", "import litellm.proxy.proxy_server"]))
            && venv.join("bin").join("litellm").is_file()
    };
    if python.is_file() && importable() {
        say!("bench venv: {} has litellm[proxy]", venv.display());
        return Ok(python);
    }
    if !python.is_file() {
        run::status(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("cannot create the bench venv (apt-get install python3-venv)")?;
    }
    run::status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "litellm[proxy]",
            ])
            .env("PIP_NO_INPUT", "1"),
    )
    .context("cannot install litellm[proxy] into the bench venv")?;
    if !importable() {
        bail!(
            "litellm[proxy] is still not importable from {}",
            python.display()
        );
    }
    Ok(python)
}

// ---------------------------------------------------------------------------------------
