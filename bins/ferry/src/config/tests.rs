use ferry_server::RawConfig;
use pretty_assertions::assert_eq;

use super::expand::expand;
use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_text(text: &str, env: &BTreeMap<String, String>) -> Result<Loaded, Problems> {
    load(
        &Sources {
            file: Some(("ferry.toml", text)),
            listen: None,
        },
        env,
    )
}

/// The `path: message` lines of a failed load.
fn problems(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    match load_text(text, env) {
        Ok(_) => panic!("expected problems"),
        Err(p) => p.0.iter().map(ToString::to_string).collect(),
    }
}

fn paths(text: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    match load_text(text, env) {
        Ok(_) => panic!("expected problems"),
        Err(p) => p.0.into_iter().map(|p| p.path).collect(),
    }
}

#[test]
fn no_file_no_key_runs_on_the_simulated_upstream() {
    let loaded = load(&Sources::default(), &env(&[])).unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(c.client_keys.len(), 0);
    let accounts: Vec<(&str, &str)> = c
        .accounts
        .iter()
        .map(|a| (a.name.as_str(), a.kind.as_str()))
        .collect();
    // `kind = "simulated"` is an API-key account on the built-in simulated upstream.
    assert_eq!(accounts, vec![("simulated", "api_key")]);
    assert_eq!(
        c.accounts[0].base_url.as_deref(),
        Some(ferry_server::SIMULATED_BASE_URL)
    );
    assert_eq!(loaded.notes.len(), 1);
    assert!(loaded.notes[0].contains("simulated"), "{:?}", loaded.notes);
}

#[test]
fn openai_api_key_alone_gives_an_api_key_account() {
    let loaded = load(
        &Sources::default(),
        &env(&[("OPENAI_API_KEY", "sk-test-123")]),
    )
    .unwrap();
    let a = &loaded.config.accounts;
    assert_eq!(a.len(), 1);
    assert_eq!(
        (
            a[0].name.as_str(),
            a[0].kind.as_str(),
            a[0].base_url.as_deref()
        ),
        ("openai", "api_key", Some("https://api.openai.com/v1"))
    );
    assert_eq!(
        a[0].api_key.as_ref().map(|k| k.expose()),
        Some("sk-test-123")
    );
    assert!(!format!("{:?}", loaded.config).contains("sk-test-123"));
}

#[test]
fn the_default_account_maps_claude_code_models() {
    for env_vars in [vec![], vec![("OPENAI_API_KEY", "sk-test-123")]] {
        let loaded = load(&Sources::default(), &env(&env_vars)).unwrap();
        let account = &loaded.config.accounts[0];
        let upstream = |m: &str| account.route_model(m).upstream;
        assert_eq!(
            (
                upstream("claude-opus-4-8"),
                upstream("claude-haiku-4-5-20251001"),
                upstream("gpt-5.4"),
            ),
            (
                "gpt-5.1".to_owned(),
                "gpt-5.1-codex-mini".to_owned(),
                "gpt-5.4".to_owned()
            ),
            "{env_vars:?}"
        );
    }
}

#[test]
fn embedded_defaults_match_the_server_defaults() {
    let embedded = load(&Sources::default(), &env(&[])).unwrap().config;
    let server = Config::from_raw(RawConfig::default()).unwrap();
    assert_eq!(
        format!("{:?}", embedded.server),
        format!("{:?}", server.server)
    );
    assert_eq!(
        format!("{:?}", embedded.gateway),
        format!("{:?}", server.gateway)
    );
    assert_eq!(
        format!("{:?}", embedded.session),
        format!("{:?}", server.session)
    );
    assert_eq!(
        format!("{:?}", embedded.admin),
        format!("{:?}", server.admin)
    );
    assert_eq!(
        format!("{:?}", embedded.capture),
        format!("{:?}", server.capture)
    );
    assert_eq!(
        format!("{:?}", embedded.rate_limit),
        format!("{:?}", server.rate_limit)
    );
}

#[test]
fn admin_keys_are_read_expanded_and_kept_out_of_problems() {
    let loaded = load_text(
        "[[client_keys]]\nname = \"alice\"\nkey = \"${KEY}\"\n[admin]\npath = \"/ops\"\n[[admin.keys]]\nname = \"ops\"\nkey = \"${ADMIN}\"\n",
        &env(&[("KEY", "client-key-0123456789"), ("ADMIN", "admin-key-0123456789")]),
    )
    .unwrap();
    let admin = &loaded.config.admin;
    assert_eq!(
        (
            admin.path.as_str(),
            admin.keys[0].name.as_str(),
            admin.keys[0].key.expose()
        ),
        ("/ops", "ops", "admin-key-0123456789")
    );
    let problems = load_text(
        "[[client_keys]]\nname = \"alice\"\nkey = \"${KEY}\"\n[[admin.keys]]\nname = \"ops\"\nkey = \"${KEY}\"\n",
        &env(&[("KEY", "client-key-0123456789")]),
    )
    .unwrap_err();
    let text = problems.to_string();
    assert!(
        text.contains("admin.keys[0].key: is also the key of client key \"alice\""),
        "{text}"
    );
    assert!(!text.contains("client-key-0123456789"), "{text}");
}

#[test]
fn file_values_override_defaults_and_keep_the_rest() {
    let loaded = load_text(
        "[server]\nlisten = \"127.0.0.1:9000\"\n[gateway]\nmax_account_switches = 5\n",
        &env(&[]),
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(c.server.max_body_bytes, 32 * 1024 * 1024);
    assert_eq!(c.gateway.max_account_switches, 5);
}

#[test]
fn the_capture_section_is_read_and_checked() {
    let c = load_text(
        "[capture]\nmode = \"errors\"\ndir = \"/var/lib/ferry/captures\"\nmax_bytes = 1048576\n",
        &env(&[]),
    )
    .unwrap()
    .config;
    assert_eq!(c.capture.mode, ferry_server::config::CaptureMode::Errors);
    assert_eq!(
        c.capture.dir,
        std::path::Path::new("/var/lib/ferry/captures")
    );
    assert_eq!(c.capture.max_bytes, 1024 * 1024);
    assert_eq!(c.capture.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(
        problems(
            "[capture]\nmode = \"sometimes\"\ndir = \"\"\nmax_bytes = 10\nmax_body_bytes = 1\n",
            &env(&[])
        ),
        [
            "capture.mode: must be \"off\", \"errors\" or \"all\", got \"sometimes\"",
            "capture.dir: must not be empty",
            "capture.max_bytes: must be between 1048576 and 1099511627776, got 10",
            "capture.max_body_bytes: must be between 1024 and 1073741824, got 1",
        ]
    );
}

#[test]
fn env_references_are_expanded_from_the_passed_environment() {
    let text = r#"
[[client_keys]]
name = "alice"
key = "${FERRY_KEY_ALICE}"

[[accounts]]
name = "primary"
kind = "api_key"
base_url = "http://${UP_HOST}:${UP_PORT}/v1"
api_key = "${OPENAI_API_KEY}"
"#;
    let e = env(&[
        ("FERRY_KEY_ALICE", "k-alice"),
        ("UP_HOST", "127.0.0.1"),
        ("UP_PORT", "9999"),
        ("OPENAI_API_KEY", "sk-1"),
    ]);
    let c = load_text(text, &e).unwrap().config;
    assert_eq!(c.client_keys[0].key.expose(), "k-alice");
    assert_eq!(
        c.accounts[0].base_url.as_deref(),
        Some("http://127.0.0.1:9999/v1")
    );
    assert_eq!(
        c.accounts[0].api_key.as_ref().map(|k| k.expose()),
        Some("sk-1")
    );
}

#[test]
fn expand_table() {
    let e = env(&[("A", "1"), ("B_2", "two"), ("EMPTY", "")]);
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("plain", Ok("plain")),
        ("${A}", Ok("1")),
        ("x${A}y${B_2}z", Ok("x1ytwoz")),
        ("${EMPTY}", Ok("")),
        ("cost: $5 and $A", Ok("cost: $5 and $A")),
        ("${MISSING}", Err("environment variable MISSING is not set")),
        (
            "${M1}-${A}-${M2}",
            Err("environment variables M1, M2 are not set"),
        ),
        ("${A", Err("unterminated ${...} reference")),
        (
            "${1X}",
            Err("${1X}: a variable name is letters, digits and '_', not starting with a digit"),
        ),
        (
            "${}",
            Err("${}: a variable name is letters, digits and '_', not starting with a digit"),
        ),
    ];
    for (input, expected) in cases {
        let got = expand(input, &e);
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(got, expected, "input {input:?}");
    }
}

#[test]
fn an_unknown_key_is_an_error_with_its_path() {
    assert_eq!(
        problems("[server]\nlisen = \"127.0.0.1:1\"\n", &env(&[])),
        vec![
            "server.lisen: unknown field `lisen`, expected one of `listen`, `max_body_bytes`, `shutdown_grace_secs`, `body_read_timeout_secs`, `max_connections` in `server`"
                .to_owned()
        ]
    );
    assert_eq!(paths("[sever]\n", &env(&[])), vec!["sever".to_owned()]);
    assert_eq!(
        paths(
            "[[accounts]]\nname = \"a\"\nkind = \"simulated\"\nmodel_maping = {}\n",
            &env(&[])
        ),
        vec!["accounts[0].model_maping".to_owned()]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[server]
listen = "not an address"
max_body_bytes = "big"
typo = 1

[gateway]
stream_keepalive_interval_secs = 4

[session]
store = "disk"

[[client_keys]]
name = "alice"
key = "${KEY_ALICE}"

[[accounts]]
name = "broken"
kind = "api_key"
colour = "blue"

[[accounts]]
kind = "simulated"

[[accounts]]
name = "third"
kind = "api_key"
api_key = ""
concurrency = 0
"#;
    assert_eq!(
        paths(text, &env(&[])),
        vec![
            "client_keys[0].key",
            "server.max_body_bytes",
            "server.typo",
            "accounts[0].colour",
            "accounts[1]",
            "server.listen",
            "gateway.stream_keepalive_interval_secs",
            "session.store",
            "accounts[0].api_key",
            "accounts[2].concurrency",
            "accounts[2].api_key",
        ]
    );
}

#[test]
fn env_overrides_and_the_listen_flag() {
    let file = "[server]\nlisten = \"127.0.0.1:1000\"\n";
    let e = env(&[
        ("FERRY_LISTEN", "127.0.0.1:2000"),
        ("FERRY_MAX_ACCOUNT_SWITCHES", "7"),
        ("FERRY_SESSION_TTL_SECS", "60"),
    ]);
    let c = load_text(file, &e).unwrap().config;
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:2000");
    assert_eq!(c.gateway.max_account_switches, 7);
    assert_eq!(c.session.ttl.as_secs(), 60);

    let flag = load(
        &Sources {
            file: Some(("ferry.toml", file)),
            listen: Some("127.0.0.1:3000"),
        },
        &e,
    )
    .unwrap()
    .config;
    assert_eq!(flag.server.listen.to_string(), "127.0.0.1:3000");

    assert_eq!(
        problems("", &env(&[("FERRY_MAX_LINE_BYTES", "lots")])),
        vec![
            "FERRY_MAX_LINE_BYTES: must be an integer (it sets gateway.max_line_bytes)".to_owned()
        ]
    );
}

#[test]
fn env_override_values_are_not_expanded() {
    // Overrides are literal: only the file's values are templates.
    let c = load(
        &Sources::default(),
        &env(&[
            ("FERRY_REDIS_URL", "redis://${NOT_EXPANDED}@h"),
            ("FERRY_SESSION_STORE", "memory"),
        ]),
    )
    .unwrap()
    .config;
    assert_eq!(format!("{:?}", c.session.store), "Memory");
}

#[test]
fn a_toml_syntax_error_names_the_file() {
    let got = problems("[server\nlisten = 1\n", &env(&[]));
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("ferry.toml: not valid TOML:"), "{got:?}");
}

#[test]
fn secrets_never_appear_in_problems() {
    let text = "[[accounts]]\nname = \"a\"\nkind = \"simulated\"\napi_key = \"sk-secret-value\"\n";
    let all = problems(text, &env(&[])).join("\n");
    assert!(all.contains("accounts[0].api_key"), "{all}");
    assert!(!all.contains("sk-secret-value"), "{all}");
}

/// `KEY=value` lines of an env file (`#` comments and blank lines skipped).
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_contrib_team_config_loads_with_the_contrib_env_file() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib");
    let vars = env_file(&std::fs::read_to_string(contrib.join("ferry.env")).unwrap());
    let loaded =
        load_file(Some(&contrib.join("ferry.toml")), None, &vars).unwrap_or_else(|p| panic!("{p}"));
    let c = &loaded.config;
    let keys: Vec<(&str, &str)> = c
        .client_keys
        .iter()
        .map(|k| (k.name.as_str(), k.key.expose()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("alice", vars["FERRY_KEY_ALICE"].as_str()),
            ("bob", vars["FERRY_KEY_BOB"].as_str()),
            ("ci", vars["FERRY_KEY_CI"].as_str()),
        ]
    );
    let accounts: Vec<(&str, &str, i32)> = c
        .accounts
        .iter()
        .map(|a| (a.name.as_str(), a.kind.as_str(), a.priority))
        .collect();
    assert_eq!(
        accounts,
        vec![
            ("team-api", "api_key", 0),
            ("team-api-backup", "api_key", 1)
        ]
    );
    match &c.session.store {
        ferry_server::config::SessionStoreKind::Redis { url } => {
            assert_eq!(url.expose(), vars["FERRY_REDIS_URL"]);
        }
        ferry_server::config::SessionStoreKind::Memory => panic!("expected the redis store"),
    }
    // A variable missing from the environment is a problem, not a silent empty key.
    let mut partial = vars.clone();
    partial.remove("FERRY_KEY_BOB");
    let problems = load_file(Some(&contrib.join("ferry.toml")), None, &partial).unwrap_err();
    assert!(problems.to_string().contains("FERRY_KEY_BOB"), "{problems}");
}
