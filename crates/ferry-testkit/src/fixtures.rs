//! Loading files from the workspace `fixtures/` directory.

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// `<workspace>/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures")
}

/// The text of `fixtures/<path>`; panics with the path when it is missing.
pub fn fixture(path: &str) -> String {
    let full = fixtures_dir().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

/// `fixtures/<path>` parsed as JSON.
pub fn fixture_json(path: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(path))
        .unwrap_or_else(|e| panic!("fixture {path}: invalid JSON: {e}"))
}

/// A recorded Claude Code request body, by case name (`"01_say_hi_main"`).
pub fn claude_code_request(case: &str) -> serde_json::Value {
    fixture_json(&format!("requests/claude-code/{case}.json"))
}
