//! Who may use the admin routes: an admin key (`Authorization: Bearer` or `x-api-key`,
//! compared in constant time), or the dashboard's session cookie.
//!
//! The cookie never holds the key. Signing in (`POST {admin.path}/login` with the key in a
//! form) sets `ferry_admin=v1.{issued}.{mac}`, where `mac` is HMAC-SHA256 keyed by the
//! admin key over `ferry-admin-session:v1:{issued}`: any replica with the same config can
//! check it, it expires [`SESSION_TTL`] after `issued`, and replacing the key (a reload)
//! ends every session signed with it. The cookie is `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page can send it, which also keeps other sites from
//! posting to the admin routes) and scoped to the admin path.

use std::time::Duration;

use http::HeaderMap;
use sha2::{Digest as _, Sha256};

use crate::config::{AdminKey, ClientKey};
use crate::error::Error;

/// The session cookie's name.
pub(super) const COOKIE: &str = "ferry_admin";
/// How long a dashboard session lasts (12 hours).
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How a request proved it is an admin's, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// An admin key (its name), presented in a header.
    Key(String),
    /// A valid session cookie (the name of the key that signed it).
    Cookie(String),
    /// Nothing presented.
    Missing,
    /// A client key: valid for `/v1/…`, not here.
    ClientKey,
    /// A key or cookie that matches nothing.
    Invalid,
}

/// Checks the request's headers: a presented key first, then the cookie.
pub(super) fn check(
    admin: &[AdminKey],
    clients: &[ClientKey],
    headers: &HeaderMap,
    now_unix: u64,
) -> Verdict {
    if let Some(presented) = crate::auth::presented_key(headers) {
        return match key_verdict(admin, clients, presented) {
            Some(v) => v,
            None => Verdict::Invalid,
        };
    }
    match cookie(headers, COOKIE) {
        Some(token) => match session_owner(admin, token, now_unix) {
            Some(name) => Verdict::Cookie(name),
            None => Verdict::Invalid,
        },
        None => Verdict::Missing,
    }
}

/// The verdict on a presented key (`None`: it matches nothing). Every key is compared, with
/// no early exit, so timing does not tell which one matched.
pub(super) fn key_verdict(
    admin: &[AdminKey],
    clients: &[ClientKey],
    presented: &[u8],
) -> Option<Verdict> {
    let mut found = None;
    for k in admin {
        if ct_eq(k.key.expose().as_bytes(), presented) {
            found = Some(Verdict::Key(k.name.clone()));
        }
    }
    let mut client = false;
    for k in clients {
        client |= ct_eq(k.key.expose().as_bytes(), presented);
    }
    found.or_else(|| client.then_some(Verdict::ClientKey))
}

/// The error for a request that is not an admin's.
pub(super) fn refusal(verdict: &Verdict) -> Option<Error> {
    match verdict {
        Verdict::Key(_) | Verdict::Cookie(_) => None,
        Verdict::Missing => Some(Error::Unauthorized(
            "missing admin key: send authorization: bearer or x-api-key with an [[admin.keys]] key",
        )),
        Verdict::ClientKey => Some(Error::Forbidden(
            "a client key is not an admin key: the admin API takes only [[admin.keys]] keys",
        )),
        Verdict::Invalid => Some(Error::Unauthorized("invalid admin key or expired session")),
    }
}

/// A new session token signed with `key`, issued at `now_unix`.
pub(super) fn session_token(key: &AdminKey, now_unix: u64) -> String {
    format!("v1.{now_unix}.{}", hex(&mac(key, now_unix)))
}

/// The name of the admin key that signed `token`, when it is valid and not expired.
fn session_owner(admin: &[AdminKey], token: &str, now_unix: u64) -> Option<String> {
    let rest = token.strip_prefix("v1.")?;
    let (issued, sig) = rest.split_once('.')?;
    let issued: u64 = issued.parse().ok()?;
    if issued > now_unix.saturating_add(60)
        || now_unix - issued.min(now_unix) > SESSION_TTL.as_secs()
    {
        return None;
    }
    let mut found = None;
    for k in admin {
        if ct_eq(hex(&mac(k, issued)).as_bytes(), sig.as_bytes()) {
            found = Some(k.name.clone());
        }
    }
    found
}

fn mac(key: &AdminKey, issued: u64) -> [u8; 32] {
    hmac_sha256(
        key.key.expose().as_bytes(),
        format!("ferry-admin-session:v1:{issued}").as_bytes(),
    )
}

/// HMAC-SHA256 (RFC 2104), on the `sha2` the crate already has: a dozen lines, not a crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.map(|x| x ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Constant-time equality: the time depends only on the lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn admin(name: &str, key: &str) -> AdminKey {
        AdminKey {
            name: name.into(),
            key: Secret::new(key),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn sessions_expire_and_die_with_their_key() {
        let keys = [admin("ops", "admin-key-0123456789")];
        let t = session_token(&keys[0], 1_000_000);
        assert!(!t.contains("admin-key"));
        let cookie_headers = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert("cookie", format!("a=b; {COOKIE}={t}").parse().unwrap());
            h
        };
        let at = |now| check(&keys, &[], &cookie_headers(&t), now);
        assert_eq!(at(1_000_000), Verdict::Cookie("ops".into()));
        assert_eq!(
            at(1_000_000 + SESSION_TTL.as_secs()),
            Verdict::Cookie("ops".into())
        );
        assert_eq!(at(1_000_001 + SESSION_TTL.as_secs()), Verdict::Invalid);
        assert_eq!(at(999_000), Verdict::Invalid);
        let rotated = [admin("ops", "admin-key-rotated-9876")];
        assert_eq!(
            check(&rotated, &[], &cookie_headers(&t), 1_000_000),
            Verdict::Invalid
        );
        assert_eq!(
            check(&keys, &[], &cookie_headers("v1.1000000.00"), 1_000_000),
            Verdict::Invalid
        );
        assert_eq!(check(&keys, &[], &HeaderMap::new(), 1), Verdict::Missing);
    }
}
