//! What crosses between the client, ferry and the upstream in headers.

use http::{HeaderMap, HeaderName};

/// Upstream response headers passed on to the client, lowercase; every other upstream
/// header stays with ferry.
///
/// Deviation from the reference list: `content-type`, `content-encoding`,
/// `content-language`, `etag`, `last-modified`, `location` and `www-authenticate` are not
/// forwarded. ferry writes a new body (so the upstream's content headers and validators
/// describe bytes the client never sees), and `location`/`www-authenticate` talk about the
/// upstream's URLs and credentials, not ferry's.
const ALLOWED: &[&str] = &[
    "cache-control",
    "expires",
    "vary",
    "x-request-id",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "retry-after",
];

/// The upstream headers to pass on to the client (values appended in order).
pub(crate) fn filter_response_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in ALLOWED {
        let name = HeaderName::from_static(name);
        for v in upstream.get_all(&name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_safe_headers_pass() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("set-cookie", "a=b"),
            ("openai-organization", "org-secret"),
            ("x-request-id", "req_up"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("content-length", "10"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive"),
            ("content-encoding", "gzip"),
            ("www-authenticate", "Bearer realm=openai"),
            ("retry-after", "3"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let got: Vec<(String, String)> = filter_response_headers(&h)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("x-request-id".to_owned(), "req_up".to_owned()),
                ("x-ratelimit-remaining-tokens".to_owned(), "100".to_owned()),
                ("retry-after".to_owned(), "3".to_owned()),
            ]
        );
    }
}
