//! Puts the git commit the binary was built from into `ferry --version`.
//!
//! `FERRY_GIT_COMMIT` is set for the crate: `$FERRY_BUILD_COMMIT` when the builder sets it
//! (a packager building from a tarball), else `git rev-parse` of the source tree, else
//! `unknown` (no git, or not a checkout: `cargo install` from a copied source still builds).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo::rerun-if-env-changed=FERRY_BUILD_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match std::env::var("FERRY_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
            Some(c) => {
                // Rebuild the version when HEAD moves: HEAD itself (a checkout) and the
                // file of the branch it names (a commit). Worktrees keep both in the git dir.
                if let Some(head) = git(
                    &dir,
                    &["rev-parse", "--path-format=absolute", "--git-path", "HEAD"],
                ) {
                    println!("cargo::rerun-if-changed={head}");
                }
                if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"])
                    && let Some(file) = git(
                        &dir,
                        &["rev-parse", "--path-format=absolute", "--git-path", &branch],
                    )
                {
                    println!("cargo::rerun-if-changed={file}");
                }
                c
            }
            None => "unknown".to_owned(),
        },
    };
    println!("cargo::rustc-env=FERRY_GIT_COMMIT={commit}");
}
