//! No source file over [`MAX_LINES`] lines, tests excluded (issue 16).

use pretty_assertions::assert_eq;

use super::sources::{is_test_file, test_module_blocks, workspace_sources};

/// Most lines a source file may have, not counting its inline test modules (issue 16).
const MAX_LINES: usize = 600;

/// Files over [`MAX_LINES`] today, each waiting to be split by job (issue 16); the number is
/// the count when the file was listed. Remove an entry once its file is split: the test fails
/// on an entry whose file is no longer over (or gone), so the list only shrinks.
const OVER_LINES_ALLOWED: &[&str] = &[];

/// The lines of `source` that count towards [`MAX_LINES`]: all but those of its inline
/// `#[cfg(test)] mod … { … }` blocks.
fn counted_lines(source: &str) -> usize {
    let tests: usize = test_module_blocks(source).iter().map(|b| b.len()).sum();
    source.lines().count() - tests
}

/// Files over the limit (`files` are (path, source) pairs; test-module files don't count),
/// and allow-list entries that are no longer needed. Empty = fine.
fn size_problems(files: &[(String, String)], allowed: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut over = Vec::new();
    for (path, source) in files.iter().filter(|(p, _)| !is_test_file(p)) {
        let n = counted_lines(source);
        if n > MAX_LINES {
            over.push(path.as_str());
            if !allowed.contains(&path.as_str()) {
                problems.push(format!(
                    "{path}: {n} lines (tests excluded), over {MAX_LINES}: split it by job"
                ));
            }
        }
    }
    for entry in allowed.iter().filter(|a| !over.contains(a)) {
        problems.push(format!(
            "{entry}: no longer over {MAX_LINES} lines (or gone): remove it from OVER_LINES_ALLOWED"
        ));
    }
    problems
}

#[test]
fn no_source_file_over_the_line_limit() {
    let files = workspace_sources();
    assert!(
        files.len() > 100,
        "expected the workspace sources, found {}",
        files.len()
    );
    assert_eq!(
        size_problems(&files, OVER_LINES_ALLOWED),
        Vec::<String>::new()
    );
}

#[test]
fn the_size_check_catches_long_files() {
    let lines = |n: usize| "x\n".repeat(n);
    let tests = |n: usize| {
        format!(
            "#[cfg(test)]\nmod tests {{\n{}}}\n",
            "    y\n".repeat(n - 3)
        )
    };
    let file = |path: &str, source: String| (path.to_owned(), source);
    let files = vec![
        file("crates/a/src/long.rs", lines(601)),
        file("crates/a/src/exact.rs", lines(600)),
        file("crates/a/src/with_tests.rs", lines(600) + &tests(300)),
        file(
            "crates/a/src/test_in_middle.rs",
            lines(300) + &tests(300) + &lines(301),
        ),
        file("crates/a/src/tests.rs", lines(900)),
        file("crates/a/src/x/tests/big.rs", lines(900)),
        file("crates/a/src/listed.rs", lines(700)),
        file("crates/a/src/shrunk.rs", lines(10)),
    ];
    assert_eq!(counted_lines(&(lines(600) + &tests(300))), 600);
    assert_eq!(
        size_problems(
            &files,
            &["crates/a/src/listed.rs", "crates/a/src/shrunk.rs", "crates/a/src/gone.rs"]
        ),
        vec![
            "crates/a/src/long.rs: 601 lines (tests excluded), over 600: split it by job".to_owned(),
            "crates/a/src/test_in_middle.rs: 601 lines (tests excluded), over 600: split it by job"
                .to_owned(),
            "crates/a/src/shrunk.rs: no longer over 600 lines (or gone): remove it from OVER_LINES_ALLOWED"
                .to_owned(),
            "crates/a/src/gone.rs: no longer over 600 lines (or gone): remove it from OVER_LINES_ALLOWED"
                .to_owned(),
        ]
    );
}
