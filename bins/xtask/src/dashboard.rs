//! The admin dashboard in a real browser: `ferry serve` with an admin key and the built-in
//! simulated upstream, a few `/v1/messages` requests, then headless Chromium signs in
//! through the dashboard's own form and renders the page.
//!
//! The browser opens a local page that posts the admin key to `{admin}/login` (what an
//! operator's form post does); ferry answers with the session cookie and a refresh to the
//! dashboard, whose rendered DOM (`--dump-dom`) must show the figures of the requests just
//! made (their count and the token counts their responses reported) with the hostile key
//! name escaped, and Chromium must log no console message at all (`--enable-logging=stderr`
//! prints them as `CONSOLE` lines: script errors, CSP violations). Nothing here is skipped:
//! a missing Chromium is installed, and any failure fails the suite.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::e2e::{Process, ferry_binary, target_dir};
use crate::install;
use crate::run::{self, Suites, cargo};

/// The test's client key and admin key; neither may show up in ferry's log.
const CLIENT_KEY: &str = "sk-ferry-dash-client-6e0b2d";
const ADMIN_KEY: &str = "ferry-dash-admin-key-41c9f7a2";
/// A key name with markup in it: the page must show it as text.
const KEY_NAME: &str = "dash <b>&</b>";
const KEY_NAME_ESCAPED: &str = "dash &lt;b&gt;&amp;&lt;/b&gt;";
/// Requests made before the page is loaded.
const REQUESTS: u64 = 3;
/// The longest Chromium may take to load and render the page.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Installs Chromium if missing, then runs the browser test; each is one suite.
pub(crate) fn suites(root: &Path, suites: &mut Suites) {
    let mut chromium = None;
    suites.run("install chromium", || {
        chromium = Some(install::chromium()?);
        Ok(())
    });
    suites.run("dashboard: headless chromium", || {
        let Some(chromium) = chromium.as_deref() else {
            bail!("chromium is not installed");
        };
        run::status(cargo().args(["build", "-p", "ferry"]))?;
        run(root, chromium)
    });
}

/// What the responses of the requests reported, summed as the dashboard sums them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Figures {
    requests: u64,
    input_tokens: u64,
    cached_tokens: u64,
    output_tokens: u64,
}

fn run(root: &Path, chromium: &Path) -> anyhow::Result<()> {
    let dir = target_dir(root).join("e2e");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("dashboard.toml");
    fs::write(&config, config_text())
        .with_context(|| format!("cannot write {}", config.display()))?;
    let log = dir.join("dashboard-ferry.log");
    let mut cmd = Command::new(ferry_binary(root));
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .env_remove("OPENAI_API_KEY")
        .env("FERRY_DASH_CLIENT_KEY", CLIENT_KEY)
        .env("FERRY_DASH_ADMIN_KEY", ADMIN_KEY)
        .env("FERRY_LOG_FORMAT", "json");
    let server = Process::start(cmd, "ferry listening on http://", &log)?;
    let result = check(&dir, &server.addr, chromium);
    let stopped = server.stop();
    let text =
        fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    result?;
    stopped?;
    for secret in [CLIENT_KEY, ADMIN_KEY] {
        if text.contains(secret) {
            bail!("a secret appears in {}", log.display());
        }
    }
    Ok(())
}

fn config_text() -> String {
    format!(
        r#"# written by `cargo xtask test` (the dashboard's browser test)
[server]
listen = "127.0.0.1:0"

[[client_keys]]
name = "{KEY_NAME}"
key = "${{FERRY_DASH_CLIENT_KEY}}"

[[accounts]]
name = "dash-sim"
kind = "simulated"

[[admin.keys]]
name = "ops"
key = "${{FERRY_DASH_ADMIN_KEY}}"
"#
    )
}

fn check(dir: &Path, addr: &str, chromium: &Path) -> anyhow::Result<()> {
    let mut sent = Figures::default();
    for i in 0..REQUESTS {
        let body = format!(
            r#"{{"model":"claude-opus-4-8","max_tokens":256,"messages":[{{"role":"user","content":"dashboard request {i}"}}]}}"#
        );
        let (status, reply) = http(
            addr,
            "POST",
            "/v1/messages",
            &[("x-api-key", CLIENT_KEY)],
            &body,
        )?;
        if status != 200 {
            bail!("POST /v1/messages answered {status}: {reply}");
        }
        let usage = &json(&reply)?["usage"];
        let n = |field: &str| usage[field].as_u64().unwrap_or(0);
        sent.requests += 1;
        sent.input_tokens += n("input_tokens") + n("cache_creation_input_tokens");
        sent.cached_tokens += n("cache_read_input_tokens");
        sent.output_tokens += n("output_tokens");
    }
    if sent.output_tokens == 0 {
        bail!("the simulated upstream reported no output tokens: {sent:?}");
    }
    wait_for_counters(addr, sent.requests)?;

    let browser = dir.join("dashboard-browser");
    let _ = fs::remove_dir_all(&browser);
    fs::create_dir_all(&browser).with_context(|| format!("cannot create {}", browser.display()))?;
    let login = browser.join("login.html");
    fs::write(
        &login,
        format!(
            "<!DOCTYPE html><html><body><form method=\"post\" action=\"http://{addr}/admin/login\">\
<input name=\"key\" value=\"{ADMIN_KEY}\"></form><script>document.forms[0].submit()</script></body></html>"
        ),
    )
    .with_context(|| format!("cannot write {}", login.display()))?;
    let rendered = render(chromium, &browser, &login);
    // The page holds the admin key: gone as soon as the browser is done with it.
    let _ = fs::remove_dir_all(&browser);
    let (dom, console) = rendered?;

    let mut problems = Vec::new();
    if !console.is_empty() {
        problems.push(format!(
            "the browser logged console messages:\n{}",
            console.join("\n")
        ));
    }
    if !dom.contains("signed in as ops") {
        problems.push("the page is not the dashboard of a signed-in admin".to_owned());
    }
    let row = format!(
        "<tr data-key=\"{KEY_NAME_ESCAPED}\"><td>{KEY_NAME_ESCAPED}</td>\
<td class=\"n\" data-figure=\"requests\">{}</td><td class=\"n\" data-figure=\"errors\">0</td>\
<td class=\"n\" data-figure=\"input_tokens\">{}</td><td class=\"n\" data-figure=\"cached_tokens\">{}</td>\
<td class=\"n\" data-figure=\"output_tokens\">{}</td>",
        sent.requests, sent.input_tokens, sent.cached_tokens, sent.output_tokens
    );
    if !dom.contains(&row) {
        problems.push(format!("the dashboard does not show the figures of the requests just made ({sent:?}); expected the row\n  {row}"));
    }
    if dom.contains("<b>&amp;</b>") || dom.contains(KEY_NAME) {
        problems.push("the key name's markup reached the page unescaped".to_owned());
    }
    if !dom.contains("data-account=\"dash-sim\"") {
        problems.push("the dashboard does not list the account".to_owned());
    }
    if !problems.is_empty() {
        let start = dom.find("<body").unwrap_or(0);
        let excerpt: String = dom[start..].chars().take(3000).collect();
        bail!(
            "{}\nrendered DOM (excerpt):\n{excerpt}",
            problems.join("\n")
        );
    }
    say!(
        "dashboard: Chromium rendered {} requests, {} input, {} cached and {} output tokens, no console message",
        sent.requests,
        sent.input_tokens,
        sent.cached_tokens,
        sent.output_tokens
    );
    Ok(())
}

/// The hourly counters are written just after each response: waits until the admin API
/// counts `requests` of them.
fn wait_for_counters(addr: &str, requests: u64) -> anyhow::Result<()> {
    let auth = format!("Bearer {ADMIN_KEY}");
    let started = SystemTime::now();
    loop {
        let (status, body) = http(
            addr,
            "GET",
            "/admin/api/client_keys",
            &[("authorization", &auth)],
            "",
        )?;
        if status != 200 {
            bail!("GET /admin/api/client_keys answered {status}: {body}");
        }
        let counted = json(&body)?["client_keys"][0]["last_24h"]["requests"].as_u64();
        if counted == Some(requests) {
            return Ok(());
        }
        if started.elapsed().unwrap_or_default() > Duration::from_secs(10) {
            bail!("the admin API counts {counted:?} requests, not {requests}: {body}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Loads `page` in headless Chromium with a fresh profile; returns the rendered DOM and the
/// console messages it logged.
fn render(chromium: &Path, profile: &Path, page: &Path) -> anyhow::Result<(String, Vec<String>)> {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        // Time for the form post, the cookie and the refresh to the dashboard.
        "--virtual-time-budget=10000",
        "--dump-dom",
    ])
    .arg(format!(
        "--user-data-dir={}",
        profile.join("profile").display()
    ))
    .arg(format!("file://{}", page.display()));
    say!(
        "$ {} --headless ... --dump-dom {}",
        chromium.display(),
        page.display()
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("chromium: no output pipes");
    };
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = SystemTime::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed().unwrap_or_default() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "chromium did not finish within {}s",
                BROWSER_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = out.join().unwrap_or_default();
    let log = err.join().unwrap_or_default();
    if !status.success() {
        bail!("chromium exited with {status}; stderr:\n{log}");
    }
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Ok((dom, console))
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut conn = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes())?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .with_context(|| format!("{method} {path}: cannot read the answer"))?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {path}: not an HTTP answer: {answer}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

fn json(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_an_admin_key_and_a_hostile_key_name() {
        let text = config_text();
        assert!(
            text.contains("[[admin.keys]]\nname = \"ops\"\nkey = \"${FERRY_DASH_ADMIN_KEY}\""),
            "{text}"
        );
        assert!(text.contains(&format!("name = \"{KEY_NAME}\"")), "{text}");
        assert!(
            !text.contains(ADMIN_KEY) && !text.contains(CLIENT_KEY),
            "{text}"
        );
    }
}
