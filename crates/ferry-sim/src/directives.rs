//! Reading the request: the prompt of the last user message, its `[[…]]` directives and the
//! declared function tools.

use serde_json::Value;

/// What the prompt asked for.
#[derive(Debug, Default)]
pub(crate) struct Directives {
    pub(crate) tools: Vec<(String, Option<String>)>,
    pub(crate) reply: Option<String>,
    pub(crate) incomplete: bool,
    pub(crate) fail: Option<String>,
    pub(crate) cut: bool,
    pub(crate) status: Option<u16>,
    /// `[[tool-loop:NAME:N]]`.
    pub(crate) tool_loop: Option<(String, usize)>,
    /// `[[overflow:LIMIT]]`.
    pub(crate) overflow: Option<u64>,
    /// Set by [`Plan::new`](crate::plan::Plan::new) when the input is over `overflow`.
    pub(crate) overflowed: bool,
}

pub(crate) fn parse_directives(text: &str) -> Directives {
    let mut d = Directives::default();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let body = &after[..end];
        rest = &after[end + 2..];
        let (name, arg) = match body.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (body.trim(), None),
        };
        match (name, arg) {
            ("tool", Some(spec)) => {
                let (tool, arg) = match spec.split_once(':') {
                    Some((t, a)) => (t.trim(), Some(a.to_owned())),
                    None => (spec.trim(), None),
                };
                if !tool.is_empty() {
                    d.tools.push((tool.to_owned(), arg));
                }
            }
            ("reply", Some(text)) => d.reply = Some(text.to_owned()),
            ("tool-loop", Some(spec)) => {
                if let Some((tool, n)) = spec.rsplit_once(':')
                    && let Ok(n) = n.trim().parse::<usize>()
                    && !tool.trim().is_empty()
                {
                    d.tool_loop = Some((tool.trim().to_owned(), n));
                }
            }
            ("incomplete", None) => d.incomplete = true,
            ("fail", arg) => d.fail = Some(arg.unwrap_or("simulated failure").to_owned()),
            ("cut", None) => d.cut = true,
            ("overflow", Some(limit)) => d.overflow = limit.trim().parse::<u64>().ok(),
            ("status", Some(code)) => {
                d.status = code
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (400..=599).contains(c));
            }
            _ => {}
        }
    }
    d
}

/// Text of a message item's content (a string, or `input_text`/`output_text` parts).
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Removes `<system-reminder>…</system-reminder>` spans (Claude Code's injected context).
pub(crate) fn strip_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        match rest[start..].find(CLOSE) {
            Some(end) => rest = &rest[start + end + CLOSE.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The prompt of a user message's text: the text outside `<system-reminder>` spans, or, when
/// there is none (a client's resume prompt), the reminders' own text.
pub(crate) fn prompt_of(text: &str) -> String {
    let outside = strip_reminders(text);
    if !outside.trim().is_empty() {
        return outside;
    }
    text.replace("<system-reminder>", "")
        .replace("</system-reminder>", "")
        .trim()
        .to_owned()
}

pub(crate) fn is_user_message(item: &Value) -> bool {
    let typ = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    typ == "message" && item.get("role").and_then(Value::as_str) == Some("user")
}

/// A declared function tool.
pub(crate) struct ToolDef<'a> {
    pub(crate) name: &'a str,
    pub(crate) parameters: Option<&'a Value>,
}

/// Top-level `tools`, and (Codex Responses Lite) the tools of `additional_tools` input items.
pub(crate) fn declared_tools(req: &Value) -> Vec<ToolDef<'_>> {
    let lite = req
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("additional_tools"))
        .filter_map(|item| item.get("tools").and_then(Value::as_array));
    req.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .chain(lite)
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| {
            Some(ToolDef {
                name: t.get("name")?.as_str()?,
                parameters: t.get("parameters"),
            })
        })
        .collect()
}

/// The first declared tool the prompt asks for by name ("use the Bash tool", "call get_weather").
pub(crate) fn mentioned_tool<'a>(prompt: &str, tools: &[ToolDef<'a>]) -> Option<&'a str> {
    let words: Vec<&str> = prompt
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let asked = |name: &str| {
        words.iter().enumerate().any(|(i, w)| {
            *w == name
                && [1, 2].iter().any(|back| {
                    i.checked_sub(*back)
                        .and_then(|j| words.get(j))
                        .is_some_and(|v| {
                            let v = v.to_ascii_lowercase();
                            let verb = i - back;
                            // "Do NOT use Read" (Claude Code's compaction prompt) asks for no tool.
                            let negated = verb
                                .checked_sub(1)
                                .and_then(|k| words.get(k))
                                .is_some_and(|n| {
                                    matches!(
                                        n.to_ascii_lowercase().as_str(),
                                        "not" | "never" | "don" | "t" | "no"
                                    )
                                });
                            matches!(v.as_str(), "use" | "call" | "run" | "invoke")
                                && !negated
                                && (*back == 1 || words[i - 1].eq_ignore_ascii_case("the"))
                        })
                })
        })
    };
    tools.iter().find(|t| asked(t.name)).map(|t| t.name)
}
