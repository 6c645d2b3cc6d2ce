//! The workspace's source files, and which of them (or of their lines) are test code.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `crates/*/src` and `bins/*/src`, as (path from the workspace root
/// with `/` separators, text), sorted by path.
pub(super) fn workspace_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let root = ferry_testkit::workspace_root();
    let mut paths = Vec::new();
    for dir in ["crates", "bins"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let src = entry.unwrap().path().join("src");
            if src.is_dir() {
                walk(&src, &mut paths);
            }
        }
    }
    let mut out: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap();
            let rel: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
            (rel.join("/"), std::fs::read_to_string(p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// A file that is a test module by its name: `tests.rs`, or anything under a `tests/` folder.
pub(super) fn is_test_file(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.last() == Some(&"tests.rs") || parts[..parts.len() - 1].contains(&"tests")
}

/// The 0-based line ranges of the inline `#[cfg(test)] mod NAME { … }` blocks of `source`
/// (at any depth). A block runs from its `#[cfg(test)]` line to the first later line that
/// is a `}` at the `mod` line's indentation, as rustfmt writes it; a `mod NAME;` declaration
/// is not a block.
pub(super) fn test_module_blocks(source: &str) -> Vec<std::ops::Range<usize>> {
    let lines: Vec<&str> = source.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            i += 1;
            continue;
        }
        let indent = &lines[i][..lines[i].len() - lines[i].trim_start().len()];
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim_start().starts_with("#[") {
            j += 1;
        }
        let Some(decl) = lines.get(j) else { break };
        let item = decl.trim();
        let item = item
            .strip_prefix("pub(crate) ")
            .or_else(|| item.strip_prefix("pub(super) "))
            .or_else(|| item.strip_prefix("pub "))
            .unwrap_or(item);
        if !(item.starts_with("mod ") && item.ends_with('{')) {
            i = j;
            continue;
        }
        let close = format!("{indent}}}");
        let end = (j + 1..lines.len())
            .find(|&k| lines[k] == close)
            .map_or(lines.len(), |k| k + 1);
        blocks.push(i..end);
        i = end;
    }
    blocks
}
