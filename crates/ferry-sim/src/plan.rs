//! Everything decided about one answer before any event is written: ids, the output items,
//! token estimates.

use std::hash::{DefaultHasher, Hasher as _};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::SimOptions;
use crate::directives::{
    Directives, content_text, declared_tools, is_user_message, mentioned_tool, parse_directives,
    prompt_of,
};

/// A value plausible for `schema`; `arg` fills the first string it meets.
pub(crate) fn plausible(schema: &Value, arg: &mut Option<String>, depth: usize) -> Value {
    if let Some(Value::Array(options)) = schema.get("enum") {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return plausible(first, arg, depth);
        }
    }
    let typ = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match typ {
        "object" if depth < 6 => {
            let mut out = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = props {
                let chosen: Vec<&String> = if required.is_empty() {
                    props.keys().take(1).collect()
                } else {
                    props
                        .keys()
                        .filter(|k| required.contains(&k.as_str()))
                        .collect()
                };
                // Fill string properties named first in `required` order, so ARG lands on
                // the property the tool cares most about.
                let mut ordered = chosen;
                ordered.sort_by_key(|k| required.iter().position(|r| r == k).unwrap_or(usize::MAX));
                for key in ordered {
                    if let Some(sub) = props.get(key.as_str()) {
                        out.insert(key.clone(), plausible(sub, arg, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "object" => json!({}),
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            match schema.get("items") {
                Some(items) if min > 0 && depth < 6 => {
                    Value::Array(vec![plausible(items, arg, depth + 1)])
                }
                _ => json!([]),
            }
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => Value::String(arg.take().unwrap_or_else(|| "example".to_owned())),
    }
}

/// Cached tokens as OpenAI reports them: nothing below 1,024, then in steps of 128.
pub(crate) fn cache_granular(tokens: u64) -> u64 {
    if tokens >= 1024 {
        tokens / 128 * 128
    } else {
        0
    }
}

/// The conversation size (tokens) carried at the end of a simulated response id
/// (`resp_` + 32 hex of hash + 8 hex of tokens); `None` for any other id.
pub(crate) fn response_id_tokens(id: &str) -> Option<u64> {
    let hex = id.strip_prefix("resp_")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&hex[32..], 16).ok()
}

pub(crate) fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let mut s: String = collapsed.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

/// Splits `text` into exactly `n` non-empty pieces, at word boundaries when it has at least
/// `n` words (fewer pieces only when it has fewer than `n` characters).
pub(crate) fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let n = n.max(1);
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    if words.len() >= n {
        return (0..n)
            .map(|i| words[words.len() * i / n..words.len() * (i + 1) / n].concat())
            .collect();
    }
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= n {
        return chars.iter().map(char::to_string).collect();
    }
    (0..n)
        .map(|i| {
            chars[chars.len() * i / n..chars.len() * (i + 1) / n]
                .iter()
                .collect()
        })
        .collect()
}

/// Appends filler words until `text` has at least `words` words, so a text answer can be
/// streamed as that many word-sized deltas.
pub(crate) fn pad_words(mut text: String, words: usize) -> String {
    let mut have = text.split_inclusive(' ').count();
    let mut filler = FILLER.iter().cycle();
    while have < words {
        if let Some(word) = filler.next() {
            text.push(' ');
            text.push_str(word);
        }
        have += 1;
    }
    text
}

pub(crate) const FILLER: &[&str] = &[
    "This",
    "answer",
    "comes",
    "from",
    "ferry's",
    "built-in",
    "simulated",
    "upstream,",
    "so",
    "it",
    "works",
    "offline",
    "and",
    "is",
    "the",
    "same",
    "every",
    "time.",
];

/// One output item to emit.
pub(crate) enum Item {
    Reasoning {
        summary: Option<String>,
        encrypted: Option<String>,
    },
    Text(String),
    Call {
        name: String,
        arguments: String,
    },
}

/// Everything decided about one answer before any event is written.
pub(crate) struct Plan {
    pub(crate) directives: Directives,
    pub(crate) id_base: String,
    pub(crate) response_id: String,
    pub(crate) created_at: u64,
    pub(crate) deltas: usize,
    pub(crate) echo: Map<String, Value>,
    pub(crate) items: Vec<Item>,
    pub(crate) input_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) reasoning_tokens: u64,
}

impl Plan {
    pub(crate) fn new(req: &Value, opts: &SimOptions) -> Self {
        let body = serde_json::to_string(req).unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        hasher.write(body.as_bytes());
        let h = hasher.finish();
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(h);
        hasher.write(b"ferry-sim");
        let id_base = format!("{h:016x}{:016x}", hasher.finish());
        let created_at = opts.created_at.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });

        let input = match req.get("input") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
            _ => Vec::new(),
        };
        let last_user = input.iter().rposition(is_user_message);
        let prompt = last_user
            .and_then(|i| input[i].get("content"))
            .map(content_text)
            .map(|t| prompt_of(&t))
            .unwrap_or_default();
        let mut directives = parse_directives(&prompt);
        let after_tool = input.last().is_some_and(|item| {
            item.get("type").and_then(Value::as_str) == Some("function_call_output")
        });

        // Usage estimates.
        let size_of = |v: Option<&Value>| v.map_or(0, |v| v.to_string().len());
        let fixed = size_of(req.get("instructions")) + size_of(req.get("tools"));
        let input_size = size_of(req.get("input"));
        let input_tokens = estimate_tokens(fixed + input_size).max(1);
        if directives
            .overflow
            .is_some_and(|limit| input_tokens > limit)
        {
            directives.overflowed = true;
            directives.status = Some(400);
        }
        // The previous request of this conversation ended where the model's last output
        // (assistant message, reasoning, tool call) begins; that prompt is in the cache.
        let is_model_output = |item: &Value| {
            let typ = item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("message");
            match typ {
                "message" => item.get("role").and_then(Value::as_str) == Some("assistant"),
                other => !other.ends_with("_output") && other != "item_reference",
            }
        };
        let previous_end = input.iter().rposition(is_model_output).map(|last| {
            input[..=last]
                .iter()
                .rposition(|i| !is_model_output(i))
                .map_or(0, |i| i + 1)
        });
        let prefix_tokens = previous_end.map_or(0, |end| {
            estimate_tokens(
                fixed
                    + input[..end]
                        .iter()
                        .map(|v| v.to_string().len())
                        .sum::<usize>(),
            )
        });
        // A continuation: the upstream holds the earlier conversation, whose size the
        // previous response id carries (see `response_id_tokens`); all of it is cached.
        let prior = req
            .get("previous_response_id")
            .and_then(Value::as_str)
            .and_then(response_id_tokens);
        let (input_tokens, cached_tokens) = match prior {
            Some(prior) => (prior + input_tokens, cache_granular(prior)),
            None => (
                input_tokens,
                cache_granular(prefix_tokens).min(input_tokens),
            ),
        };

        let mut items = Vec::new();
        let reasoning = req.get("reasoning");
        let effort = reasoning
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
            .filter(|e| *e != "none");
        let reasoning_tokens = match effort {
            None => 0,
            Some("minimal") => 16,
            Some("low") => 64,
            Some("high") => 256,
            Some("xhigh") => 512,
            Some(_) => 128,
        };
        if effort.is_some() {
            let wants_summary = reasoning
                .and_then(|r| r.get("summary"))
                .is_some_and(|s| !s.is_null());
            let wants_encrypted = req
                .get("include")
                .and_then(Value::as_array)
                .is_some_and(|inc| {
                    inc.iter()
                        .any(|v| v.as_str() == Some("reasoning.encrypted_content"))
                });
            let topic = if after_tool {
                "the tool result".to_owned()
            } else {
                format!("\"{}\"", shorten(&prompt, 60))
            };
            items.push(Item::Reasoning {
                summary: wants_summary.then(|| {
                    format!(
                        "**Considering the request**\n\nThe user wrote {topic}. I will answer it directly and keep the reply short."
                    )
                }),
                encrypted: wants_encrypted.then(|| format!("gAAAAABsim_{id_base}_{h:x}")),
            });
        }

        let tools = declared_tools(req);
        let mut calls = Vec::new();
        let count_type = |t: &str| {
            input
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some(t))
                .count()
        };
        let loop_report = format!(
            "outputs={};calls={};items={};developer={};tools={}",
            count_type("function_call_output"),
            count_type("function_call"),
            input.len(),
            input
                .iter()
                .filter(|i| matches!(
                    i.get("role").and_then(Value::as_str),
                    Some("developer" | "system")
                ))
                .count(),
            tools.len(),
        );
        let mut loop_done = false;
        if let Some((name, n)) = &directives.tool_loop {
            if count_type("function_call_output") < *n {
                if let Some(tool) = tools.iter().find(|t| t.name == name) {
                    calls.push((tool, Some(loop_report.clone())));
                }
            } else {
                loop_done = true;
            }
        } else if !after_tool {
            for (name, arg) in &directives.tools {
                if let Some(tool) = tools.iter().find(|t| t.name == name) {
                    calls.push((tool, arg.clone()));
                }
            }
            if calls.is_empty()
                && directives.tools.is_empty()
                && let Some(name) = mentioned_tool(&prompt, &tools)
                && let Some(tool) = tools.iter().find(|t| t.name == name)
            {
                calls.push((tool, None));
            }
            let parallel = req
                .get("parallel_tool_calls")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if !parallel {
                calls.truncate(1);
            }
        }

        if calls.is_empty() {
            let text = if let Some(reply) = &directives.reply {
                reply.clone()
            } else if loop_done {
                format!("Tool loop done: {loop_report}")
            } else if after_tool {
                let output = input
                    .last()
                    .and_then(|i| i.get("output"))
                    .map(|o| match o {
                        Value::String(s) => s.clone(),
                        other => content_text(other),
                    })
                    .unwrap_or_default();
                format!("The tool returned: {}", shorten(&output, 200))
            } else {
                let missing: Vec<&str> = directives
                    .tools
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| !tools.iter().any(|t| t.name == *n))
                    .collect();
                if missing.is_empty() {
                    pad_words(
                        format!("Simulated reply to: \"{}\".", shorten(&prompt, 80)),
                        opts.deltas,
                    )
                } else {
                    format!(
                        "Simulated reply: no tool named {} is declared.",
                        missing.join(", ")
                    )
                }
            };
            items.push(Item::Text(json_mode_text(req, text)));
        } else {
            for (tool, arg) in calls {
                let mut arg = arg;
                // `[[tool:NAME:{…}]]`: the arguments exactly as written.
                let literal = arg
                    .as_deref()
                    .map(str::trim)
                    .filter(|a| a.starts_with('{'))
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                    .filter(Value::is_object);
                let args = match (literal, tool.parameters) {
                    (Some(literal), _) => literal,
                    (None, Some(schema)) => plausible(schema, &mut arg, 0),
                    (None, None) => json!({}),
                };
                items.push(Item::Call {
                    name: tool.name.to_owned(),
                    arguments: args.to_string(),
                });
            }
        }

        let mut echo = Map::new();
        for key in [
            "instructions",
            "max_output_tokens",
            "previous_response_id",
            "prompt_cache_key",
            "tools",
            "tool_choice",
            "temperature",
            "top_p",
            "parallel_tool_calls",
            "store",
            "metadata",
            "text",
            "reasoning",
        ] {
            echo.insert(key.to_owned(), req.get(key).cloned().unwrap_or(Value::Null));
        }
        let defaults = [
            ("tools", json!([])),
            ("tool_choice", json!("auto")),
            ("temperature", json!(1.0)),
            ("top_p", json!(1.0)),
            ("parallel_tool_calls", json!(true)),
            ("store", json!(true)),
            ("metadata", json!({})),
            (
                "text",
                json!({"format": {"type": "text"}, "verbosity": "medium"}),
            ),
            ("reasoning", json!({"effort": null, "summary": null})),
        ];
        for (key, value) in defaults {
            if echo.get(key).is_none_or(Value::is_null) {
                echo.insert(key.to_owned(), value);
            }
        }
        echo.insert(
            "model".to_owned(),
            req.get("model")
                .cloned()
                .unwrap_or_else(|| json!("gpt-5.1")),
        );
        let tier = match req.get("service_tier").and_then(Value::as_str) {
            Some("priority") => "priority",
            Some("flex") => "flex",
            _ => "default",
        };
        echo.insert("service_tier".to_owned(), json!(tier));

        let deltas = opts.deltas.max(1);
        let mut plan = Self {
            directives,
            id_base,
            response_id: String::new(),
            created_at,
            deltas,
            echo,
            items,
            input_tokens,
            cached_tokens,
            reasoning_tokens,
        };
        // The id ends with the conversation's size after this answer, so a continuation
        // (`previous_response_id`) can be priced without server state.
        let (_, output_bytes) = plan.output_items();
        let total = plan.input_tokens + plan.output_tokens(output_bytes);
        plan.response_id = format!(
            "resp_{}{:08x}",
            plan.id_base,
            total.min(u64::from(u32::MAX))
        );
        plan
    }
}

/// The output text, in JSON form when `text.format` asks for it.
pub(crate) fn json_mode_text(req: &Value, text: String) -> String {
    let format = req.get("text").and_then(|t| t.get("format"));
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => json!({"answer": text}).to_string(),
        Some("json_schema") => {
            let mut arg = Some(text);
            let schema = format
                .and_then(|f| f.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            plausible(&schema, &mut arg, 0).to_string()
        }
        _ => text,
    }
}
