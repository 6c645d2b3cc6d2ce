//! Where requests go (direct, relay, gateways) and the request bodies in both forms.

use super::*;

/// Where a request goes and with which headers.
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) addr: String,
    pub(super) direct: bool,
    pub(super) headers: Vec<String>,
}

impl Target {
    pub(super) fn direct(addr: &str) -> Self {
        Self {
            name: "direct",
            addr: addr.to_owned(),
            direct: true,
            headers: vec![format!("authorization: Bearer {UPSTREAM_KEY}")],
        }
    }

    /// The upstream through `ferry-relay`: the same requests as [`Target::direct`].
    pub(super) fn relay(addr: &str) -> Self {
        Self {
            name: "relay",
            ..Self::direct(addr)
        }
    }

    pub(super) fn gateway(name: &'static str, addr: &str) -> Self {
        Self {
            name,
            addr: addr.to_owned(),
            direct: false,
            headers: vec![
                format!("authorization: Bearer {CLIENT_KEY}"),
                "anthropic-version: 2023-06-01".to_owned(),
            ],
        }
    }

    pub(super) fn path(&self, _body: &Bodies2) -> &'static str {
        if self.direct {
            "/v1/responses"
        } else {
            "/v1/messages"
        }
    }
}

pub(super) struct Targets {
    pub(super) direct: Target,
    pub(super) direct_paced: Target,
    /// `ferry-relay` (pinned to core 0, like the gateways) in front of the upstream.
    pub(super) relay: Target,
    pub(super) relay_paced: Target,
    pub(super) ferry: Target,
    pub(super) litellm: Target,
}

/// One request in its two forms: the Messages body for the gateways and the Responses body
/// ferry would send upstream, for the direct baseline.
pub(super) struct Bodies2 {
    pub(super) messages: PathBuf,
    pub(super) direct: PathBuf,
}

pub(super) struct Bodies {
    pub(super) zero_json: Bodies2,
    pub(super) zero_stream: Bodies2,
    pub(super) paced_stream: Bodies2,
    pub(super) claude_code: Bodies2,
}

impl Bodies {
    pub(super) fn write(root: &Path, env: &Env) -> anyhow::Result<Self> {
        let simple = |model: &str, stream: bool| {
            json!({
                "model": model,
                "max_tokens": 1024,
                "stream": stream,
                "messages": [{"role": "user", "content": "Say hello"}],
            })
        };
        let cc_path = root.join(CLAUDE_CODE_FIXTURE);
        let cc: Value = serde_json::from_str(
            &fs::read_to_string(&cc_path)
                .with_context(|| format!("cannot read {}", cc_path.display()))?,
        )?;
        Ok(Self {
            zero_json: body(env, "zero_json", &simple(MODEL_ZERO, false))?,
            zero_stream: body(env, "zero_stream", &simple(MODEL_ZERO, true))?,
            paced_stream: body(env, "paced_stream", &simple(MODEL_PACED, true))?,
            claude_code: body(env, "claude_code", &cc)?,
        })
    }
}

/// Writes `messages` and the Responses request ferry makes of it (`ferry convert request`),
/// with `stream` as the client asked (ferry itself always streams upstream).
pub(super) fn body(env: &Env, name: &str, messages: &Value) -> anyhow::Result<Bodies2> {
    let m = env.dir.join(format!("{name}.messages.json"));
    fs::write(&m, serde_json::to_vec(messages)?)?;
    let out = Command::new(&env.ferry)
        .args(["convert", "request", "--model", UPSTREAM_MODEL])
        .stdin(fs::File::open(&m)?)
        .output()
        .context("cannot run ferry convert request")?;
    if !out.status.success() {
        bail!(
            "ferry convert request failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut converted: Value = serde_json::from_slice(&out.stdout)?;
    converted["stream"] = json!(messages["stream"].as_bool().unwrap_or(false));
    let d = env.dir.join(format!("{name}.responses.json"));
    fs::write(&d, serde_json::to_vec(&converted)?)?;
    Ok(Bodies2 {
        messages: m,
        direct: d,
    })
}

// ---------------------------------------------------------------------------------------
