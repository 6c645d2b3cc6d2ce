//! Client authentication: `x-api-key` or `Authorization: Bearer`, constant-time comparison.

use http::HeaderMap;

use crate::config::ClientKey;
use crate::error::Error;

/// Who is calling: the configured client key's name, or `None` on an open gateway.
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    pub(crate) name: Option<String>,
}

impl Client {
    /// Name for logs and usage records (`-` on an open gateway).
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("-")
    }
}

/// The key the client presented, from `x-api-key` or `Authorization: Bearer`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get("x-api-key") {
        let b = v.as_bytes().trim_ascii();
        if !b.is_empty() {
            return Some(b);
        }
    }
    let auth = headers
        .get(http::header::AUTHORIZATION)?
        .as_bytes()
        .trim_ascii();
    let (scheme, rest) = auth.split_at(auth.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Checks the presented key against every configured key. With no keys configured the
/// gateway is open and everyone is let in.
pub(crate) fn authenticate(keys: &[ClientKey], headers: &HeaderMap) -> Result<Client, Error> {
    if keys.is_empty() {
        return Ok(Client::default());
    }
    let Some(presented) = presented_key(headers) else {
        return Err(Error::Unauthorized(
            "missing api key: send x-api-key or authorization: bearer",
        ));
    };
    // Compare against every key, without early exit, so timing does not say which one
    // (or how much of one) matched.
    let mut found: Option<&ClientKey> = None;
    for k in keys {
        if ct_eq(k.key.expose().as_bytes(), presented) {
            found = Some(k);
        }
    }
    match found {
        Some(k) => Ok(Client {
            name: Some(k.name.clone()),
        }),
        None => Err(Error::Unauthorized("invalid api key")),
    }
}

/// Constant-time equality: the time depends only on the lengths, not on the content.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys() -> Vec<ClientKey> {
        vec![
            ClientKey {
                name: "alice".into(),
                key: Secret::new("sk-alice"),
                budget: crate::cost::Budget::default(),
            },
            ClientKey {
                name: "bob".into(),
                key: Secret::new("sk-bob"),
                budget: crate::cost::Budget::default(),
            },
        ]
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn both_styles_and_wrong_keys() {
        let got: Vec<Option<String>> = [
            headers(&[("x-api-key", "sk-alice")]),
            headers(&[("authorization", "Bearer sk-bob")]),
            headers(&[("authorization", "bearer  sk-bob ")]),
            headers(&[("x-api-key", "sk-alic")]),
            headers(&[("x-api-key", "sk-alice2")]),
            headers(&[("authorization", "Basic sk-bob")]),
            headers(&[]),
        ]
        .iter()
        .map(|h| authenticate(&keys(), h).ok().and_then(|c| c.name))
        .collect();
        assert_eq!(
            got,
            vec![
                Some("alice".into()),
                Some("bob".into()),
                Some("bob".into()),
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn open_gateway_lets_everyone_in() {
        assert_eq!(authenticate(&[], &headers(&[])).unwrap().name, None);
    }
}
