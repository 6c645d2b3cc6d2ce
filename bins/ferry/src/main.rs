//! `ferry`: the gateway binary (Anthropic Messages clients → OpenAI Responses upstreams).
//!
//! | command | does |
//! |---|---|
//! | `ferry serve [--config FILE] [--listen ADDR]` | runs the gateway; prints `ferry listening on http://ADDR` to stderr when ready; stops cleanly on SIGINT/SIGTERM; reloads the config on SIGHUP |
//! | `ferry check-config --config FILE` | validates the file, prints every problem at once, exit 1 if any |
//! | `ferry login ACCOUNT --config FILE [--device-code]` | signs an OAuth account in (Codex CLI flow), tokens to the OAuth state dir (`login.rs`) |
//! | `ferry import-codex-auth PATH --config FILE [--account NAME]` | the same from a Codex CLI `auth.json` |
//! | `ferry convert request [--account api\|codex] [--prompt-cache-key KEY] [--previous-response-id ID]\|stream\|response` | stdin → stdout conversions; `request` prints the exact upstream body (see `convert.rs`) |
//! | `ferry replay FILE [--config FILE] [--send [--account NAME]]` | a capture through the converters again, diffed against the recording; exit 0 identical, 1 different, 2 trouble (`replay.rs`) |
//! | `ferry sim-upstream [--listen ADDR] [--paced] …` | the simulated OpenAI Responses upstream alone |
//!
//! Logs go to stderr through `tracing` (`RUST_LOG`-style filter, default `info`): a human
//! format (coloured on a terminal), or JSON lines with `--log-format json` or
//! `FERRY_LOG_FORMAT=json`. Config layering and `FERRY_*` overrides are in `config/`.
#![forbid(unsafe_code)]

mod config;
mod convert;
mod login;
mod replay;

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ferry_sim::{SimOptions, run_sim_upstream};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc malloc: glibc keeps what a burst of streams freed in its
/// per-thread arenas (RSS stayed at the peak), jemalloc's background thread gives dirty
/// pages back to the OS after its decay time (1 s, set by `JEMALLOC_SYS_WITH_MALLOC_CONF` in
/// `.cargo/config.toml`; 10 s without it). Measured in the commits that chose them.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `ferry --version`: the package version and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FERRY_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = VERSION,
    about = "A gateway that serves Anthropic Messages clients from OpenAI Responses models"
)]
struct Cli {
    /// Log format: `pretty` (human; coloured on a terminal) or `json` (one object per line).
    /// Default: $FERRY_LOG_FORMAT, else pretty. The filter is $RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// TOML config file; without it ferry runs on its embedded defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Listen address (overrides the config and FERRY_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Validate a config file and print every problem in it.
    CheckConfig {
        /// TOML config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Sign a ChatGPT/Codex account (`kind = "oauth"`) in with the Codex CLI's OAuth flow and
    /// store its tokens in the OAuth state directory (`gateway.oauth_state_dir`).
    Login {
        /// The account's `name` in the config.
        account: String,
        /// TOML config file that declares the account.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Headless hosts: show a code to enter on another device instead of a browser login.
        #[arg(long)]
        device_code: bool,
        /// Print the login URL only; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Loopback port of the browser callback (the Codex CLI's client id expects 1455).
        #[arg(long, value_name = "PORT", default_value_t = ferry_accounts::DEFAULT_CALLBACK_PORT)]
        port: u16,
        /// OAuth issuer (default `https://auth.openai.com`).
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Write here instead of the config's gateway.oauth_state_dir.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Import the tokens of a Codex CLI login (`~/.codex/auth.json`) for an OAuth account.
    ImportCodexAuth {
        /// The Codex CLI's auth.json.
        path: PathBuf,
        /// TOML config file that declares the account.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The account's `name` (default: the config's only `kind = "oauth"` account).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Write here instead of the config's gateway.oauth_state_dir.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Convert between the two APIs, stdin to stdout.
    Convert {
        #[command(subcommand)]
        what: ConvertCommand,
    },
    /// Run a capture (docs/captures.md) through this ferry's converters again and print a
    /// diff against what was recorded. Exit status: 0 identical, 1 different, 2 trouble.
    Replay {
        /// The capture file (a `[capture]` directory's `*.json`).
        file: PathBuf,
        /// The gateway's config: the recorded accounts' settings (model mapping, request
        /// shape); without it, a default account of the recorded kind is used.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Send the request to a configured api_key account and print its answer as the
        /// client would get it, instead of comparing (needs --config).
        #[arg(long)]
        send: bool,
        /// With --send: the account to send to (default: the capture's last account).
        #[arg(long, value_name = "NAME", requires = "send")]
        account: Option<String>,
    },
    /// Run the simulated OpenAI Responses upstream alone (POST /v1/responses).
    SimUpstream {
        /// Listen address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Paced mode: 200 ms to the first event, 10 ms between events, 50 text deltas
        /// (each can be changed with the flags below). Without it: zero delay, 12 deltas.
        #[arg(long)]
        paced: bool,
        /// Number of text deltas in an answer.
        #[arg(long, value_name = "N")]
        deltas: Option<usize>,
        /// Milliseconds before the first event of a stream.
        #[arg(long, value_name = "MS")]
        ttft_ms: Option<u64>,
        /// Milliseconds between two events of a stream.
        #[arg(long, value_name = "MS")]
        event_interval_ms: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum ConvertCommand {
    /// Anthropic Messages request (stdin) → the body ferry sends upstream (stdout).
    Request {
        /// Upstream model to put in the request (default: the client's model, unmapped).
        #[arg(long)]
        model: Option<String>,
        /// The kind of account the request is planned for.
        #[arg(long, value_enum, default_value_t)]
        account: convert::AccountArg,
        /// The session's upstream prompt cache key (what the gateway derived for it; see
        /// the `prompt_cache_key` of a request it sent), used when the request has none.
        #[arg(long, value_name = "KEY")]
        prompt_cache_key: Option<String>,
        /// Continue from this stored upstream response (continuation on: `store: true`, the
        /// input trimmed to the latest turn).
        #[arg(long, value_name = "ID")]
        previous_response_id: Option<String>,
    },
    /// Responses SSE stream (stdin) → the Anthropic SSE stream ferry emits (stdout).
    Stream {
        /// Client model shown in the output (default: the upstream's).
        #[arg(long)]
        model: Option<String>,
    },
    /// Responses response JSON (stdin) → the Anthropic message JSON (stdout).
    Response {
        /// Client model shown in the output (default: the upstream's).
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The process environment as a map (variables that are not UTF-8 are skipped).
fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = environment();
    let log_format = match cli.log_format {
        Some(f) => f,
        None => match env
            .get("FERRY_LOG_FORMAT")
            .map(|s| s.trim().to_ascii_lowercase())
        {
            Some(s) if s == "json" => LogFormat::Json,
            Some(s) if s.is_empty() || s == "pretty" => LogFormat::Pretty,
            Some(other) => {
                anyhow::bail!("FERRY_LOG_FORMAT must be `pretty` or `json`, got {other:?}")
            }
            None => LogFormat::Pretty,
        },
    };
    match cli.command {
        Command::Serve { config, listen } => {
            init_logging(log_format)?;
            serve(config.as_deref(), listen.as_deref(), &env)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => Ok(check_config(&config, &env)),
        Command::Login {
            account,
            config,
            device_code,
            no_browser,
            port,
            issuer,
            state_dir,
        } => {
            let target = login::Target {
                config: &config,
                account: Some(&account),
                state_dir: state_dir.as_deref(),
            };
            let opts = login::LoginOptions {
                device_code,
                open_browser: !no_browser,
                port,
                issuer,
            };
            login::login(&target, &opts, &env)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportCodexAuth {
            path,
            config,
            account,
            state_dir,
        } => {
            let target = login::Target {
                config: &config,
                account: account.as_deref(),
                state_dir: state_dir.as_deref(),
            };
            login::import_codex_auth(&path, &target, &env)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert { what } => match what {
            ConvertCommand::Request {
                model,
                account,
                prompt_cache_key,
                previous_response_id,
            } => {
                let session = convert::Session {
                    prompt_cache_key,
                    previous_response_id,
                };
                convert::request(model.as_deref(), account, &session)?;
                Ok(ExitCode::SUCCESS)
            }
            ConvertCommand::Stream { model } => {
                convert::stream(model.as_deref())?;
                Ok(ExitCode::SUCCESS)
            }
            ConvertCommand::Response { model } => Ok(if convert::response(model.as_deref())? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }),
        },
        Command::Replay {
            file,
            config,
            send,
            account,
        } => Ok(replay::command(
            &file,
            config.as_deref(),
            send,
            account.as_deref(),
            &env,
        )),
        Command::SimUpstream {
            listen,
            paced,
            deltas,
            ttft_ms,
            event_interval_ms,
        } => {
            init_logging(log_format)?;
            let (default_deltas, default_ttft, default_interval) =
                if paced { (50, 200, 10) } else { (12, 0, 0) };
            let opts = SimOptions {
                deltas: deltas.unwrap_or(default_deltas).max(1),
                ttft: Duration::from_millis(ttft_ms.unwrap_or(default_ttft)),
                event_interval: Duration::from_millis(
                    event_interval_ms.unwrap_or(default_interval),
                ),
                ..SimOptions::default()
            };
            sim_upstream(listen, opts)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(escaped_fields())
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// The pretty format's fields with every control character escaped (`\n`, `\u{1b}`):
/// field values carry client-supplied text (a `model`, a header), and a raw newline or
/// ANSI escape in one could forge a log line or rewrite the terminal. (The JSON format
/// escapes them already.)
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `text` with each control character written as its Rust escape.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(
    config: Option<&std::path::Path>,
    listen: Option<&str>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let loaded =
        config::load_file(config, listen, env).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    for note in &loaded.notes {
        tracing::info!(target: "ferry", "{note}");
    }
    runtime()?.block_on(async {
        let server = ferry_server::bind(loaded.config)
            .await
            .context("cannot start the gateway")?;
        // A reload (SIGHUP, `POST {admin.path}/api/reload`) reads the config as at start:
        // the file, the environment of that moment and the flags.
        let reloader = server.reloader();
        let path = config.map(std::path::Path::to_path_buf);
        let listen = listen.map(str::to_owned);
        reloader.set_config_source(std::sync::Arc::new(move || {
            config::load_file(path.as_deref(), listen.as_deref(), &environment())
                .map(|loaded| loaded.config)
                .map_err(|problems| problems.0)
        }));
        // Registered before the announcement: from then on SIGHUP reloads, never kills.
        #[cfg(unix)]
        {
            let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("cannot listen for SIGHUP")?;
            #[expect(
                clippy::disallowed_methods,
                reason = "the SIGHUP listener lives as long as the process"
            )]
            tokio::spawn(reload_on_hangup(hangup, reloader));
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "ferry listening on http://{}",
            server.local_addr()
        );
        server
            .run(shutdown_signal())
            .await
            .context("the gateway failed")?;
        tracing::info!(target: "ferry", "stopped");
        Ok(())
    })
}

/// On each SIGHUP: reads the config again (file, `FERRY_*`, `--listen`) and, when it is
/// valid, makes it the running one (`Reloader::reload_from_source`, the same reload as the
/// admin API's). A config with problems is refused, each problem logged, and the running
/// config kept. In-flight requests finish under the config they started with.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangup: tokio::signal::unix::Signal,
    reloader: ferry_server::Reloader,
) {
    while hangup.recv().await.is_some() {
        tracing::info!(target: "ferry", "SIGHUP: reloading the config");
        let reloader = reloader.clone();
        // It reads a file: off the async workers.
        let _ = tokio::task::spawn_blocking(move || reloader.reload_from_source()).await;
    }
}

fn check_config(path: &std::path::Path, env: &BTreeMap<String, String>) -> ExitCode {
    match config::load_file(Some(path), None, env) {
        Ok(loaded) => {
            let c = &loaded.config;
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}: ok ({} account{}, {} client key{}, listen {})",
                path.display(),
                c.accounts.len(),
                if c.accounts.len() == 1 { "" } else { "s" },
                c.client_keys.len(),
                if c.client_keys.len() == 1 { "" } else { "s" },
                c.server.listen,
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let _ = writeln!(std::io::stderr().lock(), "{}: {problems}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn sim_upstream(listen: SocketAddr, opts: SimOptions) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        tracing::info!(
            target: "ferry::sim",
            deltas = opts.deltas,
            ttft_ms = opts.ttft.as_millis() as u64,
            event_interval_ms = opts.event_interval.as_millis() as u64,
            "simulated upstream ready"
        );
        let _ = writeln!(
            std::io::stderr().lock(),
            "ferry sim-upstream listening on http://{addr}"
        );
        run_sim_upstream(listener, opts, shutdown_signal())
            .await
            .context("the simulated upstream failed")
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!(target: "ferry", "shutdown requested");
}
