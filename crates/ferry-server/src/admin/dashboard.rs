//! The dashboard and the sign-in page: plain server-rendered HTML with inline CSS, no
//! script and no external asset (the `Content-Security-Policy` allows nothing else), every
//! piece of text escaped (account and key names are the operator's data, upstream texts
//! are not ours at all).

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use super::view::{AccountView, CacheView, HourView, KeyView};
use crate::body::ResponseBody;

/// `text` with `& < > " '` escaped: safe in element content and in quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}\
table{border-collapse:collapse;background:#fff;margin-bottom:.5em}\
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ready{color:#0a7a2f}.cooling_down{color:#b36b00}.disabled{color:#b00020}\
.muted{color:#777}.bars{display:flex;align-items:flex-end;gap:2px;height:40px}\
.bars span{display:inline-block;width:9px;background:#4a7bd0;min-height:1px}\
form.inline{display:inline}header{display:flex;gap:1em;align-items:baseline;flex-wrap:wrap}";

/// The security headers of every admin page.
fn html_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn start(out: &mut String, title: &str, refresh: Option<&str>) {
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
<link rel=\"icon\" href=\"data:,\">",
        escape(title)
    );
    if let Some(url) = refresh {
        let _ = write!(
            out,
            "<meta http-equiv=\"refresh\" content=\"0;url={}\">",
            escape(url)
        );
    }
    let _ = write!(out, "<style>{CSS}</style></head><body>");
}

/// The sign-in form (`note` says why it is shown again).
pub(super) fn login_page(
    prefix: &str,
    status: StatusCode,
    note: Option<&str>,
) -> Response<ResponseBody> {
    let mut out = String::new();
    start(&mut out, "ferry admin: sign in", None);
    out.push_str("<h1>ferry admin</h1>");
    if let Some(note) = note {
        let _ = write!(
            out,
            "<p class=\"disabled\" id=\"note\">{}</p>",
            escape(note)
        );
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{}/login\"><label>Admin key \
<input type=\"password\" name=\"key\" autocomplete=\"current-password\" required autofocus></label> \
<button type=\"submit\">Sign in</button></form>\
<p class=\"muted\">An <code>[[admin.keys]]</code> key. The browser keeps a signed session cookie for 12 hours, never the key.</p>\
</body></html>",
        escape(prefix)
    );
    html_response(status, out)
}

/// After a good sign-in: the session cookie, and a page that goes on to the dashboard
/// (a refresh rather than a redirect, so the `SameSite=Strict` cookie is sent with it
/// whichever page posted the form).
pub(super) fn signed_in(
    prefix: &str,
    token: &str,
    ttl: Duration,
    secure: bool,
) -> Response<ResponseBody> {
    let mut out = String::new();
    let to = format!("{prefix}/");
    start(&mut out, "ferry admin: signed in", Some(&to));
    let _ = write!(
        out,
        "<p>Signed in. <a href=\"{}\">Open the dashboard</a>.</p></body></html>",
        escape(&to)
    );
    let mut r = html_response(StatusCode::OK, out);
    if let Some(c) = super::session_cookie(prefix, token, ttl, secure) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// After signing out: the cookie cleared, and the sign-in form.
pub(super) fn signed_out(prefix: &str, secure: bool) -> Response<ResponseBody> {
    let mut r = login_page(prefix, StatusCode::OK, Some("Signed out."));
    if let Some(c) = super::session_cookie(prefix, "", Duration::ZERO, secure) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

fn usd(v: f64) -> String {
    format!("${v:.6}")
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

/// The dashboard: accounts, open streams, requests and cost per key (last 24 hours, per
/// hour), the prompt cache's hit ratio and miss reasons.
pub(super) fn page(
    prefix: &str,
    who: &str,
    accounts: &[AccountView],
    keys: &[KeyView],
    cache: &CacheView,
) -> Response<ResponseBody> {
    let mut out = String::new();
    start(&mut out, "ferry admin", None);
    let p = escape(prefix);
    let _ = write!(
        out,
        "<header><h1>ferry admin</h1><span class=\"muted\">signed in as {}; {}</span>\
<form class=\"inline\" method=\"post\" action=\"{p}/api/reload\"><button type=\"submit\">Reload config</button></form>\
<form class=\"inline\" method=\"post\" action=\"{p}/logout\"><button type=\"submit\">Sign out</button></form></header>",
        escape(who),
        crate::cost::rfc3339(crate::cost::unix_now()),
    );
    let _ = write!(
        out,
        "<p>Open streams: <strong id=\"open-streams\">{}</strong></p>",
        cache.open_streams
    );
    accounts_table(&mut out, accounts);
    keys_table(&mut out, keys);
    for k in keys {
        hourly(&mut out, k);
    }
    cache_table(&mut out, cache);
    out.push_str("</body></html>");
    html_response(StatusCode::OK, out)
}

fn accounts_table(out: &mut String, accounts: &[AccountView]) {
    out.push_str(
        "<h2>Accounts</h2><table id=\"accounts\"><tr><th>account</th><th>kind</th><th>state</th>\
<th>cooldown until / why</th><th>in flight</th><th>Codex 5h</th><th>Codex 7d</th><th>last error</th></tr>",
    );
    for a in accounts {
        let why = match (&a.cooldown, a.disabled_reason) {
            (Some(c), _) => format!("{} ({}, {})", c.until, c.reason, c.kind),
            (None, Some(r)) => format!("until restart ({r})"),
            (None, None) => "–".to_owned(),
        };
        let window = |w: Option<&super::view::WindowView>| {
            w.map_or_else(
                || "–".to_owned(),
                |w| {
                    format!(
                        "{} (resets in {} s)",
                        w.used_percent
                            .map_or_else(|| "?".to_owned(), |p| format!("{p:.0}%")),
                        opt(w.reset_in_secs)
                    )
                },
            )
        };
        let codex = a.codex_usage.as_ref();
        let last = a.last_errors.first().map_or_else(
            || "–".to_owned(),
            |e| {
                format!(
                    "{} {} {} {}",
                    e.at,
                    opt(e.status),
                    e.outcome,
                    e.reason.unwrap_or("")
                )
            },
        );
        let _ = write!(
            out,
            "<tr data-account=\"{name}\"><td>{name}</td><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td>\
<td class=\"n\">{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.kind,
            escape(&why),
            a.in_flight,
            a.concurrency,
            escape(&window(codex.and_then(|c| c.five_hour.as_ref()))),
            escape(&window(codex.and_then(|c| c.seven_day.as_ref()))),
            escape(&last),
            name = escape(&a.name),
            state = a.state,
        );
    }
    out.push_str("</table>");
}

fn figures(out: &mut String, h: &HourView) {
    let _ = write!(
        out,
        "<td class=\"n\" data-figure=\"requests\">{}</td><td class=\"n\" data-figure=\"errors\">{}</td>\
<td class=\"n\" data-figure=\"input_tokens\">{}</td><td class=\"n\" data-figure=\"cached_tokens\">{}</td>\
<td class=\"n\" data-figure=\"output_tokens\">{}</td><td class=\"n\" data-figure=\"cost_usd\">{}</td>\
<td class=\"n\" data-figure=\"cache_hit_ratio\">{}</td>",
        h.requests,
        h.errors,
        h.input_tokens,
        h.cached_tokens,
        h.output_tokens,
        usd(h.cost_usd),
        ratio(h.cache_hit_ratio)
    );
}

const FIGURE_HEADS: &str = "<th>requests</th><th>errors</th><th>input tokens</th><th>cached tokens</th>\
<th>output tokens</th><th>cost</th><th>cache hit</th>";

fn keys_table(out: &mut String, keys: &[KeyView]) {
    let _ = write!(
        out,
        "<h2>Client keys, last 24 hours</h2><table id=\"client-keys\"><tr><th>key</th>{FIGURE_HEADS}\
<th>today</th><th>this month</th></tr>"
    );
    for k in keys {
        let _ = write!(out, "<tr data-key=\"{0}\"><td>{0}</td>", escape(&k.name));
        figures(out, &k.last_24h);
        for w in &k.windows {
            let left = match (w.tokens_left, w.usd_left) {
                (None, None) => String::new(),
                (t, u) => format!(
                    "; left: {}{}",
                    t.map(|t| format!("{t} tokens ")).unwrap_or_default(),
                    u.map(usd).unwrap_or_default()
                ),
            };
            let _ = write!(
                out,
                "<td data-window=\"{}\">{} tokens, {}{}</td>",
                w.window,
                w.tokens,
                usd(w.cost_usd),
                escape(&left)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn hourly(out: &mut String, k: &KeyView) {
    let name = escape(&k.name);
    let _ = write!(
        out,
        "<h2>{name}: requests per hour</h2><div class=\"bars\" data-bars=\"{name}\">"
    );
    let max = k
        .hourly
        .iter()
        .map(|h| h.requests)
        .max()
        .unwrap_or(0)
        .max(1);
    for h in &k.hourly {
        let pct = h.requests * 100 / max;
        let _ = write!(
            out,
            "<span style=\"height:{pct}%\" title=\"{}: {} requests, {}\"></span>",
            escape(h.hour.as_deref().unwrap_or("")),
            h.requests,
            usd(h.cost_usd)
        );
    }
    out.push_str("</div>");
    let busy: Vec<&HourView> = k.hourly.iter().filter(|h| h.requests > 0).collect();
    if busy.is_empty() {
        out.push_str("<p class=\"muted\">No requests in the last 24 hours.</p>");
        return;
    }
    let _ = write!(
        out,
        "<table data-hourly=\"{name}\"><tr><th>hour (UTC)</th>{FIGURE_HEADS}</tr>"
    );
    for h in busy {
        let _ = write!(
            out,
            "<tr><td>{}</td>",
            escape(h.hour.as_deref().unwrap_or(""))
        );
        figures(out, h);
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn cache_table(out: &mut String, cache: &CacheView) {
    let _ = write!(
        out,
        "<h2>Prompt cache (this process)</h2><p>Mean cache-hit ratio: <strong id=\"cache-hit-ratio\">{}</strong> over {} requests.</p>\
<table id=\"cache-misses\"><tr><th>miss reason</th><th>count</th></tr>",
        ratio(cache.mean_hit_ratio),
        cache.requests
    );
    for m in &cache.misses {
        let _ = write!(
            out,
            "<tr data-reason=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td></tr>",
            escape(&m.reason),
            m.count
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
