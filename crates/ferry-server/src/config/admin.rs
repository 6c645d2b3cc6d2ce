//! `[admin]`: the admin API and dashboard, their keys and their path.

use serde::Deserialize;

use super::problems::{Problems, check_unexpanded};
use super::{ClientKey, Secret};

/// The default `[admin] path`.
pub const DEFAULT_ADMIN_PATH: &str = "/admin";

/// One `[[admin.keys]]` entry.
#[derive(Debug, Clone)]
pub struct AdminKey {
    /// Name used in logs.
    pub name: String,
    /// The key an operator presents.
    pub key: Secret,
}

/// `[admin]`
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The path prefix of the admin API and dashboard (`/admin`).
    pub path: String,
    /// `[[admin.keys]]`; none means the admin API and dashboard are off (their paths are
    /// unknown paths, 404).
    pub keys: Vec<AdminKey>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_ADMIN_PATH.to_owned(),
            keys: Vec::new(),
        }
    }
}

impl AdminConfig {
    /// True when admin keys are configured (the admin routes exist).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// `[admin]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// default `/admin`
    pub path: Option<String>,
    /// `[[admin.keys]]`
    pub keys: Vec<RawAdminKey>,
}

/// `[[admin.keys]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdminKey {
    /// Name for logs.
    pub name: Option<String>,
    /// The key.
    pub key: Option<String>,
}

/// Paths the gateway itself answers, which the admin prefix must not shadow.
const RESERVED: &[&str] = &["/health", "/ready", "/metrics", "/v1"];

impl RawAdmin {
    /// Checks the section; `client_keys` are the validated client keys (an admin key must
    /// not be one of them).
    pub(super) fn validate(self, client_keys: &[ClientKey], p: &mut Problems) -> AdminConfig {
        let path = self
            .path
            .unwrap_or_else(|| DEFAULT_ADMIN_PATH.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let path_ok = path.starts_with('/')
            && path.len() > 1
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            && !path.contains("//");
        if !path_ok {
            p.push(
                "admin.path",
                format!("must be a path like \"/admin\" (letters, digits, / - _ .), got {path:?}"),
            );
        } else if RESERVED
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")))
            || path.ends_with("/v1/messages")
            || path.contains("/v1/")
        {
            p.push(
                "admin.path",
                format!("{path:?} would hide a gateway endpoint; pick another prefix"),
            );
        }
        let mut keys: Vec<AdminKey> = Vec::with_capacity(self.keys.len());
        for (i, k) in self.keys.into_iter().enumerate() {
            let name = k.name.unwrap_or_default().trim().to_owned();
            if name.is_empty() {
                p.push(format!("admin.keys[{i}].name"), "is required");
            } else if keys.iter().any(|o| o.name == name) {
                p.push(
                    format!("admin.keys[{i}].name"),
                    format!("duplicate admin key name {name:?}"),
                );
            }
            let key = k.key.unwrap_or_default();
            let at = format!("admin.keys[{i}].key");
            check_unexpanded(p, &at, &key);
            if key.trim().is_empty() {
                p.push(at, "is required and must not be empty");
            } else if key.trim() != key {
                p.push(at, "must not start or end with whitespace");
            } else if key.len() < 16 {
                p.push(
                    at,
                    "must be at least 16 characters (it guards the admin API)",
                );
            } else if keys.iter().any(|o| o.key.expose() == key) {
                p.push(at, "the same key is configured twice");
            } else if let Some(c) = client_keys.iter().find(|c| c.key.expose() == key) {
                // Said by name, never by value.
                p.push(
                    at,
                    format!(
                        "is also the key of client key {:?}: an admin key must not be a client key",
                        c.name
                    ),
                );
            }
            keys.push(AdminKey {
                name,
                key: Secret::new(key),
            });
        }
        AdminConfig { path, keys }
    }
}
