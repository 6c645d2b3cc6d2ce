//! No import cycle between the top-level modules of a crate (issue 16).

use std::collections::{BTreeMap, BTreeSet};

use pretty_assertions::assert_eq;

use super::sources::{is_test_file, test_module_blocks, workspace_sources};

/// `source` without its inline test modules and its comment lines (lines starting with `//`).
fn code_lines(source: &str) -> String {
    let blocks = test_module_blocks(source);
    source
        .lines()
        .enumerate()
        .filter(|(n, line)| {
            !blocks.iter().any(|b| b.contains(n)) && !line.trim_start().starts_with("//")
        })
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every `crate::` path in `code`: `crate::a::B` gives `a`, and
/// `crate::{a::B, c}` gives `a` and `c`. `$crate::` (macros) is not a path of this crate.
fn crate_path_heads(code: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut heads = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == '$')
        {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // The leading identifier of each comma-separated element at depth 1.
            let (mut depth, mut expect, mut word) = (1, true, String::new());
            for c in group.chars() {
                if depth == 1 && expect && is_ident(c) {
                    word.push(c);
                    continue;
                }
                if !word.is_empty() {
                    heads.push(std::mem::take(&mut word));
                    expect = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => expect = true,
                    _ => {}
                }
            }
        } else {
            let word: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !word.is_empty() {
                heads.push(word);
            }
        }
    }
    heads
}

/// The top-level module a file of a crate belongs to, from its path inside the crate
/// (`src/a.rs` and `src/a/…` are `a`); `None` for the crate roots (`lib.rs`, `main.rs`,
/// `src/bin/…`), which are not nodes of the graph.
fn top_module(path_in_crate: &str) -> Option<&str> {
    let mut parts = path_in_crate.strip_prefix("src/")?.split('/');
    let first = parts.next()?;
    let single = parts.next().is_none();
    match first {
        "lib.rs" | "main.rs" if single => None,
        "bin" if !single => None,
        _ => Some(
            first
                .strip_suffix(".rs")
                .filter(|_| single)
                .unwrap_or(first),
        ),
    }
}

/// The shortest path from `start` back to `start` in `edges` (from -> to -> evidence), by
/// breadth-first search; `None` when `start` is on no cycle.
fn shortest_cycle<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    start: &'a str,
) -> Option<Vec<&'a str>> {
    let mut came_from = std::collections::BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(m) = queue.pop_front() {
        for &n in edges.get(m).into_iter().flat_map(|t| t.keys()) {
            if n == start {
                let mut path = vec![m];
                while let Some(&p) = came_from.get(path[path.len() - 1]) {
                    path.push(p);
                }
                path.reverse();
                return Some(path);
            }
            if !came_from.contains_key(n) {
                came_from.insert(n, m);
                queue.push_back(n);
            }
        }
    }
    None
}

/// Whether `to` is reachable from `from` in `edges` (from -> to -> evidence).
fn path_exists(edges: &BTreeMap<&str, BTreeMap<&str, &str>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut stack = vec![from];
    while let Some(m) = stack.pop() {
        for &n in edges.get(m).into_iter().flat_map(|t| t.keys()) {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                stack.push(n);
            }
        }
    }
    false
}

/// The names a `use` statement binds, with the path each stands for: `use a::{b::C, d as
/// E, f::*};` gives `([a, b, C], C)`, `([a, d], E)` and `([a, f, *], *)`. `statement` is
/// the text after `use`, up to the `;`.
fn use_bindings(statement: &str) -> Vec<(Vec<String>, String)> {
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(n);
                chars.next();
            }
            tokens.push(word);
        } else if c == ':' && chars.next_if_eq(&':').is_some() {
            tokens.push("::".to_owned());
        } else if "{},*".contains(c) {
            tokens.push(c.to_string());
        }
    }
    let mut out = Vec::new();
    let mut pos = 0;
    use_tree(&tokens, &mut pos, Vec::new(), &mut out);
    out
}

/// Parses one use tree of `tokens` from `pos` under `prefix` into `out` (see [`use_bindings`]).
fn use_tree(
    tokens: &[String],
    pos: &mut usize,
    mut path: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token.as_str() {
            "::" => {}
            "{" => {
                while tokens.get(*pos).is_some_and(|t| t != "}") {
                    use_tree(tokens, pos, path.clone(), out);
                    if tokens.get(*pos).is_some_and(|t| t == ",") {
                        *pos += 1;
                    }
                }
                *pos += 1;
                return;
            }
            "*" => {
                path.push("*".to_owned());
                out.push((path, "*".to_owned()));
                return;
            }
            "}" | "," => return,
            ident => {
                path.push(ident.to_owned());
                if tokens.get(*pos).is_some_and(|t| t == "::") {
                    continue;
                }
                let binding = if tokens.get(*pos).is_some_and(|t| t == "as") {
                    *pos += 2;
                    tokens.get(*pos - 1).cloned().unwrap_or_default()
                } else if ident == "self" && path.len() >= 2 {
                    path[path.len() - 2].clone()
                } else {
                    ident.to_owned()
                };
                out.push((path, binding));
                return;
            }
        }
    }
}

/// The names the crate root re-exports from a module (`pub use crate::a::Thing;` maps
/// `Thing` to `a`), so that `crate::Thing` in another module is an edge to `a`. Glob
/// re-exports (`pub use a::*;`) name nothing and are not followed.
fn root_reexports<'a>(root_code: &str, modules: &BTreeSet<&'a str>) -> BTreeMap<String, &'a str> {
    let mut out = BTreeMap::new();
    let mut rest = root_code;
    while let Some(start) = rest.find("use ") {
        let line_start = rest[..start].rfind('\n').map_or(0, |n| n + 1);
        let prefix = rest[line_start..start].trim();
        let after = &rest[start + "use ".len()..];
        let end = after.find(';').unwrap_or(after.len());
        rest = &after[end..];
        if !matches!(prefix, "" | "pub" | "pub(crate)") {
            continue;
        }
        for (path, binding) in use_bindings(&after[..end]) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let path = match path.as_slice() {
                ["crate" | "self", inner @ ..] => inner,
                all => all,
            };
            if let [head, _, ..] = path
                && let Some(module) = modules.get(*head)
                && binding != "*"
            {
                out.insert(binding, *module);
            }
        }
    }
    out
}

/// Import edges that close a module cycle today, as (crate folder, from, to): the cycle check
/// leaves them out of the graph. Each is a dependency to invert or move (issue 16: "no import
/// cycle inside a crate"); remove the entry when its edge is gone. The test fails on an entry
/// whose edge no longer exists or no longer closes a cycle, so the list only shrinks.
const CYCLE_EDGES_ALLOWED: &[(&str, &str, &str)] = &[];

/// Import cycles between the top-level modules of one crate, one message per cycle, and
/// `allowed` edges (from, to) that are no longer needed (empty = fine). `files` are (path
/// inside the crate, e.g. `src/a/b.rs`, source). An edge `a -> b` is a `crate::b…` path, or
/// a `crate::Thing` the root re-exports from `b`, in the non-test, non-comment code of module
/// `a`; `allowed` edges are left out of the graph.
fn module_cycles(krate: &str, files: &[(String, String)], allowed: &[(&str, &str)]) -> Vec<String> {
    let roots = files
        .iter()
        .filter(|(path, _)| matches!(path.as_str(), "src/lib.rs" | "src/main.rs"));
    let files: Vec<(&str, &str, &str)> = files
        .iter()
        .filter(|(path, _)| !is_test_file(path))
        .filter_map(|(path, source)| Some((top_module(path)?, path.as_str(), source.as_str())))
        .collect();
    let modules: BTreeSet<&str> = files.iter().map(|(m, ..)| *m).collect();
    let mut reexports = BTreeMap::new();
    for (_, source) in roots {
        reexports.extend(root_reexports(&code_lines(source), &modules));
    }
    // from -> to -> the first file that makes the edge
    let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (from, path, source) in &files {
        for head in crate_path_heads(&code_lines(source)) {
            let to = modules.get(head.as_str()).or_else(|| reexports.get(&head));
            if let Some(to) = to
                && to != from
            {
                edges.entry(from).or_default().entry(to).or_insert(path);
            }
        }
    }
    let mut problems = Vec::new();
    for &(from, to) in allowed {
        let closes_a_cycle =
            edges.get(from).is_some_and(|t| t.contains_key(to)) && path_exists(&edges, to, from);
        if !closes_a_cycle {
            problems.push(format!(
                "{krate}: {from} -> {to} closes no module cycle now: remove it from CYCLE_EDGES_ALLOWED"
            ));
        }
    }
    for &(from, to) in allowed {
        if let Some(t) = edges.get_mut(from) {
            t.remove(to);
        }
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for &m in &modules {
        if seen.contains(m) {
            continue;
        }
        let Some(cycle) = shortest_cycle(&edges, m) else {
            continue;
        };
        seen.extend(&cycle);
        let steps: Vec<String> = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .map(|(a, b)| format!("{a} -> {b} ({})", edges[a][b]))
            .collect();
        problems.push(format!("{krate}: module import cycle {}", steps.join(", ")));
    }
    problems
}

/// Every workspace crate's sources, by crate folder (`crates/ferry-sse`), with paths inside
/// the crate.
fn sources_by_crate() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = Default::default();
    for (path, source) in workspace_sources() {
        let (krate, inside) = path.split_at(path.find("/src/").unwrap());
        out.entry(krate.to_owned())
            .or_default()
            .push((inside[1..].to_owned(), source));
    }
    out
}

#[test]
fn no_module_import_cycle_inside_a_crate() {
    let crates = sources_by_crate();
    assert!(
        crates.len() >= 8,
        "expected every workspace member, found {:?}",
        crates.keys()
    );
    let problems: Vec<String> = crates
        .iter()
        .flat_map(|(krate, files)| {
            let allowed: Vec<(&str, &str)> = CYCLE_EDGES_ALLOWED
                .iter()
                .filter(|(k, ..)| k == krate)
                .map(|&(_, from, to)| (from, to))
                .collect();
            module_cycles(krate, files, &allowed)
        })
        .collect();
    let unknown: Vec<&str> = CYCLE_EDGES_ALLOWED
        .iter()
        .map(|(k, ..)| *k)
        .filter(|k| !crates.contains_key(*k))
        .collect();
    assert_eq!(
        unknown,
        Vec::<&str>::new(),
        "CYCLE_EDGES_ALLOWED names unknown crates"
    );
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn the_cycle_check_catches_cycles() {
    let file = |path: &str, source: &str| (path.to_owned(), source.to_owned());
    let files = vec![
        file(
            "src/lib.rs",
            "mod a;\nmod b;\nmod c;\npub use crate::{a::A, b::B};\n\
             pub use self::g::G as Gee;\npub use h::{H, inner::{self, X}};\npub use i::*;\n",
        ),
        file("src/a.rs", "use crate::{\n    b::B,\n    c,\n};\n"),
        file("src/b/mod.rs", "mod inner;\n"),
        file(
            "src/b/inner.rs",
            "pub(crate) fn f() -> crate::c::C { todo() }\n",
        ),
        file("src/c.rs", "use crate::a::A;\n"),
        // not edges: comments, `$crate`, tests, unknown heads, the root, self paths
        file(
            "src/d.rs",
            "// use crate::a;\n/// crate::a\nmacro_rules! m { () => { $crate::a } }\n\
             use crate::Root;\nuse crate::d::X;\n\
             #[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
        ),
        file("src/a/tests.rs", "use crate::d;\n"),
        file("src/c/tests/x.rs", "use crate::d;\n"),
        file("src/e.rs", "use crate::d;\n"),
        // through the root's re-exports (`crate::H`, `crate::Gee`); a glob names nothing
        file("src/g.rs", "use crate::H;\nuse crate::Star;\n"),
        file("src/h.rs", "pub fn f() -> crate::Gee {}\n"),
        file("src/i.rs", "pub struct Star;\nuse crate::g;\n"),
    ];
    assert_eq!(
        module_cycles("demo", &files, &[]),
        vec![
            "demo: module import cycle a -> c (src/a.rs), c -> a (src/c.rs)".to_owned(),
            "demo: module import cycle b -> c (src/b/inner.rs), c -> a (src/c.rs), a -> b (src/a.rs)"
                .to_owned(),
            "demo: module import cycle g -> h (src/g.rs), h -> g (src/h.rs)".to_owned(),
        ]
    );
    assert_eq!(
        module_cycles("demo", &files[..2], &[]),
        Vec::<String>::new()
    );
    // Allowing the back edges c -> a and h -> g breaks the cycles; stale entries are reported.
    assert_eq!(
        module_cycles(
            "demo",
            &files,
            &[("c", "a"), ("h", "g"), ("e", "d"), ("a", "e")]
        ),
        vec![
            "demo: e -> d closes no module cycle now: remove it from CYCLE_EDGES_ALLOWED"
                .to_owned(),
            "demo: a -> e closes no module cycle now: remove it from CYCLE_EDGES_ALLOWED"
                .to_owned(),
        ]
    );
}
