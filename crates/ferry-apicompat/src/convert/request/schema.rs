//! Repairs tool input schemas the Responses API would reject.
//!
//! OpenAI validates function `parameters` even with `strict: false`. Observed rejections:
//! a top level that is not `type: "object"` or that carries `anyOf`/`oneOf`/`allOf`/`enum`/
//! `not`; an object schema without `properties`; an array schema without `items`; a
//! `format` outside the supported set (Claude Code's WebFetch `format: "uri"` is one); a
//! `properties` entry that is not a schema; nested `allOf`. Regex `pattern`s in a dialect
//! the upstream does not implement (lookaround, back-references, `\p{…}`, atomic groups,
//! possessive quantifiers, inline flags) are removed too, since they cannot be honoured.
//! Everything else (descriptions, `enum`, `const`, `default`, bounds, `propertyNames`, …)
//! is kept: with `strict: false` it is guidance for the model, not a constraint.
//!
//! Each repair is described in a short string (never containing user content beyond
//! schema keys and keyword values); `$schema` is removed silently, as it only names the
//! dialect.

use serde_json::{Map, Value};

/// `format` values OpenAI accepts.
const SUPPORTED_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Combinators OpenAI rejects at the top level of function parameters.
const TOP_LEVEL_FORBIDDEN: &[&str] = &["anyOf", "oneOf", "allOf", "enum", "not"];

/// Keywords whose value is a map of name → schema.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Keywords whose value is one schema.
const SCHEMA_VALUES: &[&str] = &[
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
];

/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems", "items"];

/// Sanitises a tool's input schema. Returns the schema to send and the repairs made.
pub(crate) fn sanitize(schema: Option<&Value>) -> (Value, Vec<String>) {
    let mut repairs = Vec::new();
    let mut root = match schema {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => {
            return (
                empty_object(),
                vec!["missing schema replaced by an empty object schema".to_owned()],
            );
        }
        Some(_) => {
            return (
                empty_object(),
                vec!["schema that is not an object replaced by an empty object schema".to_owned()],
            );
        }
    };
    root.remove("$schema");
    fix_root(&mut root, &mut repairs);
    walk(&mut root, "", &mut repairs);
    (Value::Object(root), repairs)
}

fn empty_object() -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::String("object".to_owned()));
    map.insert("properties".to_owned(), Value::Object(Map::new()));
    Value::Object(map)
}

/// Makes the top level a plain object schema.
fn fix_root(root: &mut Map<String, Value>, repairs: &mut Vec<String>) {
    match root.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        None | Some(Value::Null) => {
            root.insert("type".to_owned(), Value::String("object".to_owned()));
            repairs.push("added top-level type \"object\"".to_owned());
        }
        Some(Value::Array(types)) if types.iter().any(|t| t == "object") => {
            root.insert("type".to_owned(), Value::String("object".to_owned()));
            repairs.push("top-level type narrowed to \"object\"".to_owned());
        }
        Some(other) => {
            let shown = other.to_string();
            root.clear();
            root.insert("type".to_owned(), Value::String("object".to_owned()));
            root.insert("properties".to_owned(), Value::Object(Map::new()));
            repairs.push(format!(
                "top-level type {shown} is not \"object\": replaced by an empty object schema"
            ));
            return;
        }
    }
    for key in TOP_LEVEL_FORBIDDEN {
        let Some(value) = root.remove(*key) else {
            continue;
        };
        let merged = match (*key, &value) {
            ("anyOf" | "oneOf" | "allOf", Value::Array(branches)) => {
                merge_branches(root, branches, *key == "allOf")
            }
            _ => 0,
        };
        if merged > 0 {
            repairs.push(format!(
                "top-level `{key}` removed; properties of its {merged} object branches merged"
            ));
        } else {
            repairs.push(format!("top-level `{key}` removed"));
        }
    }
}

/// Merges the `properties` (and, for `allOf`, the `required` lists) of object branches into
/// `target`, without overriding what `target` already has. Returns how many branches were
/// merged.
fn merge_branches(
    target: &mut Map<String, Value>,
    branches: &[Value],
    with_required: bool,
) -> usize {
    let mut merged = 0;
    for branch in branches {
        let Some(branch) = branch.as_object() else {
            continue;
        };
        let Some(props) = branch.get("properties").and_then(Value::as_object) else {
            continue;
        };
        merged += 1;
        let target_props = target
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(target_props) = target_props {
            for (name, schema) in props {
                target_props
                    .entry(name.clone())
                    .or_insert_with(|| schema.clone());
            }
        }
        if with_required && let Some(Value::Array(required)) = branch.get("required") {
            let target_required = target
                .entry("required")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(target_required) = target_required {
                for name in required {
                    if !target_required.contains(name) {
                        target_required.push(name.clone());
                    }
                }
            }
        }
    }
    merged
}

/// Repairs one schema object and everything below it. `path` is the JSON path of `node`
/// inside the schema (`""` for the root).
fn walk(node: &mut Map<String, Value>, path: &str, repairs: &mut Vec<String>) {
    let at = |p: &str| {
        if p.is_empty() {
            "the top level".to_owned()
        } else {
            p.to_owned()
        }
    };

    if matches!(node.get("type"), Some(Value::Null)) {
        node.remove("type");
        repairs.push(format!("removed `type: null` at {}", at(path)));
    }
    // Nested allOf: merge object branches into the node.
    if !path.is_empty()
        && let Some(Value::Array(branches)) = node.get("allOf").cloned()
        && branches.iter().all(Value::is_object)
    {
        node.remove("allOf");
        for branch in branches.iter().filter_map(Value::as_object) {
            for (k, v) in branch {
                if k != "properties" && k != "required" {
                    node.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        merge_branches(node, &branches, true);
        repairs.push(format!("merged `allOf` at {}", at(path)));
    }
    if has_type(node, "object") {
        match node.get("properties") {
            Some(Value::Object(_)) => {}
            None => {
                node.insert("properties".to_owned(), Value::Object(Map::new()));
                repairs.push(format!(
                    "added empty `properties` to the object at {}",
                    at(path)
                ));
            }
            Some(_) => {
                node.insert("properties".to_owned(), Value::Object(Map::new()));
                repairs.push(format!("replaced invalid `properties` at {}", at(path)));
            }
        }
    }
    if has_type(node, "array") && !node.contains_key("items") && !node.contains_key("prefixItems") {
        node.insert("items".to_owned(), Value::Object(Map::new()));
        repairs.push(format!("added empty `items` to the array at {}", at(path)));
    }
    if let Some(Value::String(format)) = node.get("format")
        && !SUPPORTED_FORMATS.contains(&format.as_str())
    {
        let format = format.clone();
        node.remove("format");
        repairs.push(format!(
            "removed unsupported format {format:?} at {}",
            at(path)
        ));
    }
    if let Some(Value::String(pattern)) = node.get("pattern")
        && let Some(why) = unsupported_regex(pattern)
    {
        node.remove("pattern");
        repairs.push(format!("removed pattern using {why} at {}", at(path)));
    }
    if matches!(node.get("required"), Some(v) if !v.is_array()) {
        node.remove("required");
        repairs.push(format!("removed invalid `required` at {}", at(path)));
    }

    for key in SCHEMA_MAPS {
        let Some(Value::Object(children)) = node.get_mut(*key) else {
            continue;
        };
        let mut invalid = Vec::new();
        for (name, child) in children.iter_mut() {
            let child_path = join(path, &format!("{key}.{name}"));
            match child {
                Value::Object(child) => walk(child, &child_path, repairs),
                Value::Bool(_) => {}
                _ => invalid.push(name.clone()),
            }
        }
        for name in invalid {
            children.remove(&name);
            repairs.push(format!(
                "removed `{key}.{name}` at {}: not a schema",
                at(path)
            ));
        }
    }
    for key in SCHEMA_VALUES {
        if let Some(Value::Object(child)) = node.get_mut(*key) {
            walk(child, &join(path, key), repairs);
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(children)) = node.get_mut(*key) {
            for (i, child) in children.iter_mut().enumerate() {
                if let Value::Object(child) = child {
                    walk(child, &join(path, &format!("{key}[{i}]")), repairs);
                }
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether the node's `type` is `t` or a list containing `t`.
fn has_type(node: &Map<String, Value>, t: &str) -> bool {
    match node.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(types)) => types.iter().any(|v| v == t),
        _ => false,
    }
}

/// Names the first regex feature in `pattern` outside the portable dialect, if any.
pub(crate) fn unsupported_regex(pattern: &str) -> Option<&'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' => {
                match next {
                    Some('1'..='9') if !in_class => return Some("a back-reference"),
                    Some('k') if !in_class => return Some("a named back-reference"),
                    Some('p' | 'P') => return Some("a Unicode property class"),
                    _ => {}
                }
                i += 2;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class && next == Some('?') => {
                let third = chars.get(i + 2).copied();
                let fourth = chars.get(i + 3).copied();
                match (third, fourth) {
                    (Some('=' | '!'), _) => return Some("a lookahead"),
                    (Some('<'), Some('=' | '!')) => return Some("a lookbehind"),
                    (Some('>'), _) => return Some("an atomic group"),
                    (Some(':' | '<' | 'P'), _) => {}
                    _ => return Some("inline flags"),
                }
            }
            '*' | '+' | '?' | '}' if !in_class && next == Some('+') => {
                return Some("a possessive quantifier");
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[expect(
        clippy::needless_pass_by_value,
        reason = "lets the tests pass json! literals"
    )]
    fn check(schema: Value) -> (Value, Vec<String>) {
        sanitize(Some(&schema))
    }

    #[test]
    fn valid_schema_is_unchanged_except_dollar_schema() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command", "maxLength": 100},
                "timeout": {"type": "number", "minimum": 0, "default": 30},
                "when": {"type": "string", "format": "date-time"},
                "id": {"type": "string", "pattern": "^[a-z]+$"},
                "mode": {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
            },
            "required": ["command"],
            "additionalProperties": false
        });
        let mut want = schema.clone();
        want.as_object_mut().unwrap().remove("$schema");
        assert_eq!(check(schema), (want, vec![]));
    }

    #[test]
    fn missing_and_non_object_schemas() {
        let empty = json!({"type": "object", "properties": {}});
        assert_eq!(sanitize(None).0, empty);
        assert_eq!(sanitize(Some(&Value::Null)).0, empty);
        assert_eq!(check(json!("not a schema")).0, empty);
        assert_eq!(check(json!({"type": "string"})).0, empty);
        assert_eq!(
            check(json!({"type": "object", "required": ["a"]})),
            (
                json!({"type": "object", "properties": {}, "required": ["a"]}),
                vec!["added empty `properties` to the object at the top level".to_owned()]
            )
        );
    }

    #[test]
    fn nested_repairs() {
        let (schema, repairs) = check(json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
                "list": {"type": "array"},
                "any": {"type": null},
                "pw": {"type": "string", "pattern": "(?=x)"},
                "bad": 5,
                "flag": true,
                "deep": {"type": "array", "items": {"type": "object", "properties": {
                    "u": {"type": "string", "format": "uri-reference"}
                }}}
            }
        }));
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "meta": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
                    "list": {"type": "array", "items": {}},
                    "any": {},
                    "pw": {"type": "string"},
                    "flag": true,
                    "deep": {"type": "array", "items": {"type": "object", "properties": {
                        "u": {"type": "string"}
                    }}}
                }
            })
        );
        assert_eq!(
            repairs,
            vec![
                "removed `type: null` at properties.any",
                "removed unsupported format \"uri-reference\" at properties.deep.items.properties.u",
                "added empty `items` to the array at properties.list",
                "added empty `properties` to the object at properties.meta",
                "removed pattern using a lookahead at properties.pw",
                "removed unsupported format \"uri\" at properties.url",
                "removed `properties.bad` at the top level: not a schema",
            ]
        );
    }

    #[test]
    fn top_level_combinators_are_merged() {
        let (schema, repairs) = check(json!({
            "oneOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "boolean"}}}
            ]
        }));
        assert_eq!(
            schema,
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}})
        );
        assert_eq!(repairs.len(), 2);

        let (schema, _) = check(json!({
            "type": "object",
            "allOf": [
                {"properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]}
            ],
            "not": {"required": ["c"]}
        }));
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "required": ["a", "b"]
            })
        );
    }

    #[test]
    fn nested_all_of_is_merged() {
        let (schema, repairs) = check(json!({
            "type": "object",
            "properties": {"x": {"allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"description": "more", "properties": {"b": {"type": "integer"}}}
            ]}}
        }));
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {"x": {
                    "type": "object",
                    "description": "more",
                    "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                    "required": ["a"]
                }}
            })
        );
        assert_eq!(repairs, vec!["merged `allOf` at properties.x"]);
    }

    #[test]
    fn regex_dialect() {
        for (pattern, want) in [
            ("^wf_[a-z0-9-]{6,}$", None),
            ("^(?:a|b)+$", None),
            ("^(?<year>\\d{4})$", None),
            ("[\\d+]", None),
            ("a\\+", None),
            ("^(?=.*x)", Some("a lookahead")),
            ("(?<!x)y", Some("a lookbehind")),
            ("(a)\\1", Some("a back-reference")),
            ("\\p{L}+", Some("a Unicode property class")),
            ("(?i)abc", Some("inline flags")),
            ("a++", Some("a possessive quantifier")),
            ("(?>a)", Some("an atomic group")),
            ("[(?=]", None),
        ] {
            assert_eq!(unsupported_regex(pattern), want, "{pattern}");
        }
    }
}
