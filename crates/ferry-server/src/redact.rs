//! Redaction by value: every secret ferry knows (account API keys, OAuth access and refresh
//! tokens, including tokens refreshed or rotated since start-up, client keys, the Redis
//! password) is cut out of upstream text before it reaches a client or a log line,
//! whatever its shape. Pattern-based cleaning (`sk-…`, `eyJ…`) misses `key:<v>` and keys
//! of any other shape; this does not.

use std::sync::{PoisonError, RwLock};

use crate::config::{Config, SessionStoreKind};

/// What replaces a secret.
pub(crate) const REDACTED: &str = "[redacted]";
/// Shorter values are not treated as secrets (they would match ordinary text).
const MIN_SECRET_LEN: usize = 8;
/// Tokens learnt at run time (refreshed access and rotated refresh tokens) are kept up to
/// this many.
const MAX_LEARNT: usize = 1024;

/// The secrets to cut out of upstream text.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    configured: Vec<String>,
    learnt: RwLock<Vec<String>>,
}

impl Redactor {
    /// The secrets of `config`.
    pub(crate) fn from_config(config: &Config) -> Self {
        let mut configured = Vec::new();
        for a in &config.accounts {
            for s in [&a.api_key, &a.access_token, &a.refresh_token]
                .into_iter()
                .flatten()
            {
                configured.push(s.expose().to_owned());
            }
        }
        for k in &config.client_keys {
            configured.push(k.key.expose().to_owned());
        }
        if let SessionStoreKind::Redis { url } = &config.session.store
            && let Ok(u) = reqwest::Url::parse(url.expose())
            && let Some(password) = u.password()
        {
            configured.push(password.to_owned());
            if let Ok(decoded) = percent_decode(password) {
                configured.push(decoded);
            }
        }
        configured.retain(|s| s.len() >= MIN_SECRET_LEN);
        // Longest first, so a secret that contains another is cut whole.
        configured.sort_by_key(|s| std::cmp::Reverse(s.len()));
        configured.dedup();
        Self {
            configured,
            learnt: RwLock::new(Vec::new()),
        }
    }

    /// Adds a secret seen at run time (a refreshed access token, a rotated refresh token).
    pub(crate) fn learn(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN || self.configured.iter().any(|s| s == secret) {
            return;
        }
        if self
            .learnt
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|s| s == secret)
        {
            return;
        }
        let mut learnt = self.learnt.write().unwrap_or_else(PoisonError::into_inner);
        if learnt.len() >= MAX_LEARNT {
            learnt.remove(0);
        }
        learnt.push(secret.to_owned());
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.configured {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        for s in self
            .learnt
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// `%XX` escapes decoded (a Redis password in a URL is written percent-encoded).
fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_secret_is_cut_whatever_its_shape() {
        let mut c = Config::for_tests();
        c.accounts = vec![ferry_accounts::AccountConfig::api_key(
            "a",
            "http://127.0.0.1:1",
            crate::config::Secret::new("plainkey0123456789"),
        )];
        let r = Redactor::from_config(&c);
        r.learn("refreshed-token-abcdef");
        let text = "bad key:plainkey0123456789 and authorization=Bearer refreshed-token-abcdef";
        assert_eq!(
            r.redact(text),
            "bad key:[redacted] and authorization=Bearer [redacted]"
        );
        assert_eq!(percent_decode("p%40ss").unwrap(), "p@ss");
    }
}
