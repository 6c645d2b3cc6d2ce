//! Layers 3 and 4: the `FERRY_*` environment overrides and the `--listen` flag, set on the
//! merged tree before it is deserialised.
//!
//! Each override names its [`RawConfig`] field as a Rust path (`gateway.max_line_bytes`),
//! so the compiler checks that the field exists, and its TOML key and type come from that
//! field: nothing here restates them.

use std::collections::BTreeMap;

use ferry_server::RawConfig;
use ferry_server::config::Problems;
use toml::{Table, Value};

use super::tree::set;

/// A [`RawConfig`] field: its dotted key in the tree, and the TOML type its text is read as.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    /// `section.key`; a raw field's name is its TOML key (no serde renames).
    pub(super) key: &'static str,
    kind: Kind,
}

/// The TOML type an environment override is parsed as.
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Integer,
}

/// The [`Kind`] of a raw field's type.
trait FieldKind {
    const KIND: Kind;
}

impl FieldKind for String {
    const KIND: Kind = Kind::String;
}

impl FieldKind for u64 {
    const KIND: Kind = Kind::Integer;
}

impl FieldKind for u32 {
    const KIND: Kind = Kind::Integer;
}

/// The [`Kind`] of the field `access` reaches; `access` is never called.
const fn kind_of<T: FieldKind>(_access: fn(&mut RawConfig) -> &mut Option<T>) -> Kind {
    T::KIND
}

/// `field!(section.key)`: the [`Field`] of `RawConfig.section.key`.
macro_rules! field {
    ($section:ident . $key:ident) => {
        Field {
            key: concat!(stringify!($section), ".", stringify!($key)),
            kind: kind_of(|raw: &mut RawConfig| &mut raw.$section.$key),
        }
    };
}

/// `FERRY_*` environment variables and the field each one overrides.
pub(super) const ENV_OVERRIDES: &[(&str, Field)] = &[
    ("FERRY_LISTEN", field!(server.listen)),
    ("FERRY_MAX_BODY_BYTES", field!(server.max_body_bytes)),
    (
        "FERRY_SHUTDOWN_GRACE_SECS",
        field!(server.shutdown_grace_secs),
    ),
    (
        "FERRY_BODY_READ_TIMEOUT_SECS",
        field!(server.body_read_timeout_secs),
    ),
    ("FERRY_MAX_CONNECTIONS", field!(server.max_connections)),
    (
        "FERRY_STREAM_KEEPALIVE_INTERVAL_SECS",
        field!(gateway.stream_keepalive_interval_secs),
    ),
    (
        "FERRY_STREAM_DATA_INTERVAL_TIMEOUT_SECS",
        field!(gateway.stream_data_interval_timeout_secs),
    ),
    ("FERRY_MAX_LINE_BYTES", field!(gateway.max_line_bytes)),
    (
        "FERRY_MAX_ACCOUNT_SWITCHES",
        field!(gateway.max_account_switches),
    ),
    (
        "FERRY_UPSTREAM_CONNECT_TIMEOUT_SECS",
        field!(gateway.upstream_connect_timeout_secs),
    ),
    (
        "FERRY_UPSTREAM_HEADER_TIMEOUT_SECS",
        field!(gateway.upstream_header_timeout_secs),
    ),
    (
        "FERRY_UPSTREAM_JSON_TIMEOUT_SECS",
        field!(gateway.upstream_json_timeout_secs),
    ),
    ("FERRY_SESSION_STORE", field!(session.store)),
    ("FERRY_REDIS_URL", field!(session.redis_url)),
    ("FERRY_SESSION_TTL_SECS", field!(session.ttl_secs)),
];

/// The field `--listen` sets.
const LISTEN_FLAG: Field = field!(server.listen);

/// Sets each `FERRY_*` variable of `env` (literally: no `${NAME}` expansion), then
/// `--listen`, on `tree`. A variable that is not of its field's type is a problem.
pub(super) fn apply(
    tree: &mut Table,
    env: &BTreeMap<String, String>,
    listen: Option<&str>,
    problems: &mut Problems,
) {
    for (var, field) in ENV_OVERRIDES {
        let Some(raw) = env.get(*var) else { continue };
        let value = match field.kind {
            Kind::String => Value::String(raw.clone()),
            Kind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Value::Integer(n),
                Err(_) => {
                    problems.push(*var, format!("must be an integer (it sets {})", field.key));
                    continue;
                }
            },
        };
        set(tree, field.key, value);
    }
    if let Some(listen) = listen {
        set(tree, LISTEN_FLAG.key, Value::String(listen.to_owned()));
    }
}
